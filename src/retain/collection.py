"""`Collection`: the committed interfaces a query found, loaded only when touched.

A collection holds the ids (and classes) of its interfaces, in order, and nothing else: a
million take tens of megabytes. Its length and its ids never read anything; its tables,
groups, sorts and plucked values read the index rows (config, summary and last metric values
as JSON) again, in chunks, when they are asked for, and never read a record; an interface is
loaded from storage when it is accessed (``runs[0]``, iteration) and kept for later accesses.
"""

from __future__ import annotations

from itertools import repeat

from ._errors import ConfigError, InterfaceNotFoundError, ModuleResolutionError
from .identity import REF_KEY, canonical_json, references
from .query import MISSING, compile_where, equal, field_value, matches_all, resolve_field, Condition, Field, Query
from .interface import Interface, load_record
from .storage.layout import RECORD_FILE, decode_record, raw_decoder
from .index.base import Listing, parse_summary, table_row
from .modules import class_reference
from ._settings import current_storage
from .index import make_index
from .index._updates import flush
from .config import ConfigView
from ._table import PARALLEL_MIN, Pass, TableRows, frame_columns, in_workers, parse_configs, placed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any, Generic, TypeVar

    from .index.base import Index, IndexRow
    from .storage.base import Storage

    I = TypeVar("I", bound=Interface)
    R = TypeVar("R")

    class _Generic(Generic[I]):
        pass

else:
    # `typing` is not imported at run time (`import retain` stays cheap); `Collection[X]`
    # still works, as the class itself.
    I = None

    class _Generic:
        __slots__ = ()

        def __class_getitem__(cls, item):
            return cls


__all__ = ["Collection", "check_summary_keys", "input_classes", "query_all", "query_records"]

#: Ids per read of their rows by id (`Index.rows`).
BY_ID = 1_000
#: A collection of at least this many reads its rows by one pass over its classes
#: (`Index.scan`) instead of by id, when it holds at least 1/SCAN_SHARE of them: a pass costs
#: about a quarter of a lookup per row.
SCAN_MIN = 20_000
SCAN_SHARE = 4
#: Rows are put in place by an array over row numbers up to this many times the rows.
PLACES_SPAN = 8


class _Shared:
    """What the collections derived from one query share: the index, the names of the classes
    and the loaded instances."""

    __slots__ = ("storage", "index", "cls", "names", "instances", "tags")

    def __init__(self, storage: Storage, index: Index, cls: type | None, names: dict[int, tuple[str, str, str]]) -> None:
        self.storage = storage
        self.index = index
        self.cls = cls
        #: (module, qualname, kind) by the class key of a listing.
        self.names = names
        self.instances: dict[str, Any] = {}
        #: The tags of the interfaces that have some, read once when first needed.
        self.tags: dict[str, list[str]] | None = None


class Collection(_Generic[I]):
    """Committed interfaces, newest first unless sorted; instances load lazily.

    Indexing gives an interface (``runs[0]``, ``runs[-1]``), slicing a collection
    (``runs[:10]``); iteration loads each interface in turn. Methods that take a *field* (a
    config key such as ``"lr"`` or ``"model.depth"``, ``"summary.<name>"``, ``"metrics.<name>"``
    (the last value of a metric), or ``"id"``,
    ``"created"``, ``"module"``, ``"class"``, ``"kind"``) work from the index rows alone, read
    in chunks when asked (memory stays bounded however large the collection; a summary saved
    since the query shows). An interface removed from the index after the query shows with
    its id and class only.

    Example:
        >>> runs = get.all(Train, where={"batch_size": 32})
        >>> len(runs), runs.pluck("lr")[:3]
        (12, [0.01, 0.001, 0.1])
        >>> best = runs.sort("summary.loss").first()
    """

    __slots__ = ("_ids", "_of", "_places", "_shared")

    def __init__(self, ids: list[str], of: Any, places: Any, shared: _Shared) -> None:
        self._ids = ids
        #: The class key of each interface (an array), or of them all (an int).
        self._of = of
        #: Where each row is in the index (`Listing.places`; a hint), or None.
        self._places = places
        self._shared = shared

    # -- sequence -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    def __bool__(self) -> bool:
        return bool(self._ids)

    def __iter__(self) -> Iterator[I]:
        for position in range(len(self._ids)):
            yield self._load(position)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, slice):
            of, places = self._of, self._places
            return Collection(
                self._ids[item], of if type(of) is int else of[item], None if places is None else places[item], self._shared
            )
        if isinstance(item, int) or hasattr(item, "__index__"):
            position = item.__index__()
            if position < 0:
                position += len(self._ids)
            if not 0 <= position < len(self._ids):
                raise IndexError(f"Collection index {item} out of range (it holds {len(self._ids)})")
            return self._load(position)
        raise TypeError(f"a Collection is indexed by position or slice, not {type(item).__name__}")

    def __contains__(self, item: object) -> bool:
        return getattr(item, "id", item) in self._ids

    def __repr__(self) -> str:
        cls = self._shared.cls
        if cls is not None:
            name = cls.__qualname__
        else:
            names = self._shared.names
            of = self._of
            classes = ({names[of][1]} if self._ids else set()) if type(of) is int else {names[key][1] for key in set(of)}
            name = classes.pop() if len(classes) == 1 else "Interface"
        return f"<Collection of {len(self._ids)} {name}>"

    def _repr_html_(self) -> str:  # views load when a notebook asks: `import retain` stays cheap
        """Jupyter's view: a table of the first rows (as `to_table`) and the total count."""
        from ._html import collection_html

        return collection_html(self)

    def ids(self) -> list[str]:
        """The ids, in order."""
        return list(self._ids)

    def first(self) -> I | None:
        """The first interface (the newest, unless sorted), or None when empty."""
        return self._load(0) if self._ids else None

    def last(self) -> I | None:
        """The last interface (the oldest, unless sorted), or None when empty."""
        return self._load(len(self._ids) - 1) if self._ids else None

    # -- derived collections ------------------------------------------------------------------

    def filter(self, predicate: Callable[[I], object] | dict[str, Any]) -> Collection[I]:
        """The interfaces that pass `predicate`, in order.

        Args:
            predicate: a dict of field -> value or filter, as `where` of `get.all`, evaluated
                over the index rows (nothing is loaded); or a function of the interface
                (each one is loaded).
        """
        if isinstance(predicate, dict):
            native, summary, _ = compile_where(self._shared.cls, predicate)
            conditions = native + summary
            tags = self._tags() if any(c.field.source == "tags" for c in native) else None
            needs = any(c.field.source == "config" for c in conditions)

            def passes(row: IndexRow, config: Any) -> bool:
                columns: dict[str, Any] = {"id": row[0], "module": row[1], "class": row[2], "kind": row[3], "created": row[4]}
                if tags is not None:
                    columns["tags"] = tags.get(row[0], [])
                return matches_all(conditions, config, _parsed(row[6]), columns, _parsed(row[7]))

            kept = self._where(self._values(passes, needs))
            if not kept and summary:
                check_summary_keys([c.field for c in summary], self._rows(), self._shared.cls)
            return kept
        if not callable(predicate):
            raise ConfigError(
                f"filter takes a function of the interface or a dict of field -> value; got "
                f"{type(predicate).__name__}"
            )
        return self._where([bool(predicate(self._load(p))) for p in range(len(self._ids))])

    def sort(self, key: str | Callable[[I], Any] | Sequence[Any], reverse: bool = False) -> Collection[I]:
        """Sorted by a field (no loading; missing values last), by a function of the interface,
        or by a sequence of values, one per interface in order (None: missing, last).

        Values of different types sort by type (numbers, then strings, then others)."""
        if not isinstance(key, str) and not callable(key):
            values = list(key)
            if len(values) != len(self._ids):
                raise ConfigError(
                    f"sort by values needs one value per interface: got {len(values)} for "
                    f"{len(self._ids)}"
                )
            return self._sorted(values, reverse)
        if callable(key):
            loaded = [key(self._load(p)) for p in range(len(self._ids))]
            present = [p for p in range(len(loaded))]
            present.sort(key=lambda p: _order(loaded[p]), reverse=reverse)
            return self._pick(present)
        field = resolve_field(key, self._shared.cls)
        values = self._field_values(field)
        if field.source in ("summary", "metrics") and values and all(v is MISSING or v is None for v in values):
            check_summary_keys([field], self._rows(), self._shared.cls)
        return self._sorted(values, reverse)

    def using(self, input: Interface | str) -> Collection[I]:
        """The interfaces whose configuration holds `input` (an interface or its id) as an
        input, at any depth, in order; from the index rows alone."""
        id = input if isinstance(input, str) else input.id
        scan = raw_decoder()
        # Most rows do not mention the id at all: their text is looked at before it is parsed.
        return self._where(self._values(lambda row, _: id in row[5] and _refers(scan(row[5])[0], id), False))

    def _users(self) -> dict[str, list[int]]:
        """The positions of the interfaces that hold each input, by the input's id: `using`
        of every input at once, in one pass over the rows (only configs that mention an
        input are parsed)."""
        scan = raw_decoder()
        inputs = self._values(
            lambda row, _: [found[REF_KEY] for found in references(scan(row[5])[0])] if REF_KEY in row[5] else None,
            False,
        )
        users: dict[str, list[int]] = {}
        for position, held in enumerate(inputs):
            for id in dict.fromkeys(held or ()):
                users.setdefault(id, []).append(position)
        return users

    def group_by(self, key: str) -> dict[Any, Collection[I]]:
        """Collections by the value of a field, in order of first appearance. Lists become
        tuples (to be dict keys); interfaces in a config are grouped by id; a missing value
        is None."""
        field = resolve_field(key, self._shared.cls)
        groups: dict[Any, list[int]] = {}
        for position, value in enumerate(self._field_values(field)):
            groups.setdefault(_hashable(value), []).append(position)
        return {value: self._pick(positions) for value, positions in groups.items()}

    def pluck(self, key: str) -> list[Any]:
        """The value of a field for each interface, in order (None where missing)."""
        field = resolve_field(key, self._shared.cls)
        return [None if value is MISSING else _plain(value) for value in self._field_values(field)]

    def map(self, function: Callable[[I], R]) -> list[R]:
        """``[function(interface) for interface in self]`` (each one is loaded)."""
        return [function(self._load(p)) for p in range(len(self._ids))]

    # -- tables -------------------------------------------------------------------------------

    def to_table(self) -> list[dict[str, Any]]:
        """One flat dict per interface, from the index alone: ``id``, ``module``, ``class``,
        ``created``, then ``config.<dotted key>`` for every config leaf and
        ``summary.<name>`` for every summary value and ``metrics.<name>`` for the last value of
        every metric, and ``tags`` (a sorted list) for an interface that has tags. Interfaces in
        a config appear as ids."""
        table: list[Any] = [None] * len(self._ids)
        with _paused_gc():
            for positions, names, values in self._table_chunks(True):
                # table[position] = dict(zip(names, row)) for each row, the loop in C.
                _consume(map(table.__setitem__, positions, map(dict, map(zip, names, values))))
        return table

    def to_dataframe(self) -> Any:
        """`to_table` as a pandas DataFrame (``created`` as UTC datetimes).

        Raises:
            ImportError: pandas is not installed (``pip install 'retain[pandas]'``).
        """
        try:
            import pandas
        except ImportError as exc:
            raise ImportError(
                "Collection.to_dataframe needs pandas: pip install 'retain[pandas]'"
            ) from exc
        with _paused_gc():
            return self._frame(pandas)

    def _frame(self, pandas: Any) -> Any:
        # By column (`retain._table.frame_blocks`): the columns of plain numbers come as typed
        # arrays, made by the workers where there are some; pandas infers the type of every
        # other column from its values as it does from the dicts of `to_table` (the same
        # constructor, over the rows of those columns alone). Then the rows are put in order.
        import numpy

        from ._html import table_columns  # (with pandas: at the first frame)

        blocks: list[Any] = []
        for chunk in self._table_chunks(False, frame=True):
            blocks += chunk
        columns = table_columns([names for _, _, names in blocks])
        if not blocks:
            return pandas.DataFrame([], columns=columns)
        order, arrays, others = frame_columns(blocks, columns)
        del blocks
        inferred_values = dict(others)
        del others
        # `created` (text, or None for a result removed since) parsed from its values, not
        # made a column of text first.
        created = pandas.to_datetime(inferred_values.pop("created"), utc=True, format="ISO8601")
        inferred = pandas.DataFrame(list(zip(*inferred_values.values())), columns=list(inferred_values))
        del inferred_values
        if (order[1:] < order[:-1]).any():
            at = numpy.argsort(order, kind="stable")
            inferred = inferred.take(at)
            arrays = {name: array[at] for name, array in arrays.items()}
            created = created.take(at)
        data = {name: created if name == "created" else arrays[name] if name in arrays else inferred[name].array
                for name in columns}
        return pandas.DataFrame(data, columns=columns)

    def _table_chunks(self, tags: bool, frame: bool = False) -> Iterator[Any]:
        """Every row as `to_table` makes it, in chunks of (positions, column names, values):
        a row is ``dict(zip(names, values))``; `tags` adds the tags column. With `frame`, each
        chunk is a list of `retain._table.frame_blocks` instead. A pass over many rows is
        shared between forked workers where it can be (`retain._table`)."""
        count = len(self._ids)
        tag_map = self._tags() if tags and count else {}
        index = self._shared.index
        plan: Any = False  # not decided yet
        if count >= PARALLEL_MIN and index.supports_row_ranges:
            plan = self._pass()
            chunks = None
            if plan is not None and plan[1] is not None:
                classes, at = plan
                job = Pass(index, classes, at, [*self._ids, None], self._name, self._fixed(), tag_map, frame)
                chunks = in_workers(job, len(at))
            if chunks is not None:
                done = bytearray(count)
                left = count
                for chunk in chunks:
                    for positions in ([block[0] for block in chunk] if frame else [chunk[0]]):
                        _consume(map(done.__setitem__, positions, repeat(1)))
                        left -= len(positions)
                    yield chunk
                if left:  # rows the pass did not place (stale places, or removed): by id
                    build = TableRows(tag_map, self._name, self._fixed())
                    for positions, rows in self._by_id([p for p in range(count) if not done[p]], True):
                        yield _made(build, positions, rows, frame)
                return
        build = TableRows(tag_map, self._name, self._fixed())
        for positions, rows in self._chunks(True, plan):
            yield _made(build, positions, rows, frame)

    # -- internals ----------------------------------------------------------------------------

    def _pick(self, positions: list[int]) -> Collection[I]:
        """The collection of the interfaces at `positions`, in that order."""
        from array import array

        ids, of, places = self._ids, self._of, self._places
        if type(of) is not int:
            of = array("l", [of[p] for p in positions])
        if places is not None:
            places = array("q", [places[p] for p in positions])
        return Collection([ids[p] for p in positions], of, places, self._shared)

    def _where(self, keep: list[Any]) -> Collection[I]:
        """The collection of the interfaces whose value in `keep` is true."""
        return self._pick([p for p, kept in enumerate(keep) if kept])

    def _sorted(self, values: list[Any], reverse: bool) -> Collection[I]:
        """Sorted by `values` (one per interface; None or MISSING: last, in order)."""
        present = [p for p, value in enumerate(values) if value is not None and value is not MISSING]
        present.sort(key=lambda p: _order(values[p]), reverse=reverse)
        absent = [p for p, value in enumerate(values) if value is None or value is MISSING]
        return self._pick(present + absent)

    def _name(self, position: int) -> tuple[str, str, str]:
        of = self._of
        return self._shared.names[of if type(of) is int else of[position]]

    def _fixed(self) -> tuple[str, str] | None:
        """(module, qualname) of every interface, when they are of one class."""
        of = self._of
        return self._shared.names[of][:2] if type(of) is int and self._ids else None

    def _absent(self, position: int) -> IndexRow:
        """The row of an interface removed from the index since the query: what the
        collection knows of it."""
        module, qualname, kind = self._name(position)
        return (self._ids[position], module, qualname, kind, None, "{}", None, None)  # type: ignore[return-value]

    def _pass(self) -> tuple[list[tuple[str, str]], Any] | None:
        """(classes, position of each place or None) when the rows are read by one pass over
        the classes (a large part of them), else None (by id). Brings the index up to date
        with this process first."""
        count = len(self._ids)
        if not count:
            return None
        index = self._shared.index
        flush()  # what this process saved since the query (a summary) is read too
        if count < SCAN_MIN:
            return None
        of = self._of
        keys = {of} if type(of) is int else set(of)
        classes = sorted({self._shared.names[key][:2] for key in keys})
        if count * SCAN_SHARE < index.count(Query(classes)):
            return None
        places = self._places
        top = max(places) + 1 if places is not None else 0
        if places is None or top > PLACES_SPAN * count:
            return classes, None
        from array import array

        # Position by place: an array lookup per row read, cheaper than hashing its id
        # (unless row numbers are far sparser than the rows: then by id).
        at = array("l", [-1]) * top
        _consume(map(at.__setitem__, places, range(count)))  # at[place] = position, in C
        return classes, at

    def _chunks(self, table: bool = False, plan: Any = False) -> Iterator[tuple[Sequence[int], list[Any]]]:
        """Every row, in chunks of (positions, rows): in order, read by id; or, for a large
        part of its classes, in the index's order, by one pass over the classes. With `table`,
        the rows are `TableRow`s (the columns a table needs), else `IndexRow`s. `plan`: what
        `_pass` answered, when it was asked already."""
        ids = self._ids
        count = len(ids)
        if plan is False:
            plan = self._pass()
        if plan is None:
            if count:
                yield from self._by_id(range(count), table)
            return
        classes, at = plan
        index = self._shared.index
        done = bytearray(count)
        left = count
        position_of: dict[str, int] | None = None
        checked: list[Any] = [*ids, None] if at is not None else []  # as `placed` takes them
        for chunk_places, rows in (index.table_scan if table else index.scan)(classes):
            if at is not None and chunk_places is not None:
                if chunk_places and chunk_places[-1] >= len(at):  # rows newer than the listing
                    from bisect import bisect_left

                    cut = bisect_left(chunk_places, len(at))
                    chunk_places, rows = chunk_places[:cut], rows[:cut]
                positions, kept = placed(chunk_places, rows, at, checked)
                _consume(map(done.__setitem__, positions, repeat(1)))
            else:
                positions, kept = [], []
                if position_of is None:
                    position_of = dict(zip(ids, range(count)))
                take = position_of.pop
                for row in rows:
                    p = take(row[0], -1)
                    if p >= 0:
                        done[p] = 1
                        positions.append(p)
                        kept.append(row)
            if kept:
                left -= len(kept)
                yield positions, kept
            if not left:
                return  # every row read: the rest of the pass is not needed
        # Rows the pass did not place (stale places, or removed): by id, else absent.
        yield from self._by_id([p for p in range(count) if not done[p]], table)

    def _by_id(self, positions: Sequence[int], table: bool) -> Iterator[tuple[Sequence[int], list[Any]]]:
        """The rows at `positions`, read by id, in chunks, in order (the absent as such); as
        `TableRow`s with `table`."""
        ids, index = self._ids, self._shared.index
        for start in range(0, len(positions), BY_ID):
            chunk = positions[start:start + BY_ID]
            found = {row[0]: row for row in index.rows([ids[p] for p in chunk])}
            rows = [found.get(ids[p]) or self._absent(p) for p in chunk]
            yield chunk, list(map(table_row, rows)) if table else rows

    def _rows(self) -> Iterator[IndexRow]:
        """Every row, one by one (in no particular order)."""
        for _, rows in self._chunks():
            yield from rows

    def _values(self, function: Callable[[IndexRow, Any], Any], config: bool) -> list[Any]:
        """``function(row, parsed config)`` for each interface, in order (the config is parsed
        only when `config` is true, else None)."""
        values: list[Any] = [None] * len(self._ids)
        with _paused_gc():
            for positions, rows in self._chunks():
                configs = _configs(rows) if config else [None] * len(rows)
                for position, row, parsed in zip(positions, rows, configs):
                    values[position] = function(row, parsed)
        return values

    def _field_values(self, field: Field) -> list[Any]:
        """The value of `field` for each interface, in order (`MISSING` where it has none)."""
        source, path = field.source, field.path
        if source == "column" and path != "created":
            if path == "id":
                return list(self._ids)
            at = ("module", "class", "kind").index(path)
            of, names = self._of, self._shared.names
            if type(of) is int:
                return [names[of][at]] * len(self._ids)
            return [names[key][at] for key in of]
        if source == "column":
            return self._values(lambda row, _: row[4], False)
        if source == "config":
            return self._values(lambda _, config: field_value(field, config, None, {}), True)
        column = 6 if source == "summary" else 7
        return self._values(lambda row, _: field_value(field, None, *_twice(_parsed(row[column]))), False)

    def _tags(self) -> dict[str, list[str]]:
        """The tags of the interfaces that have some (from the index)."""
        shared = self._shared
        if shared.tags is None:
            shared.tags = shared.index.tags()
        return shared.tags

    def _load(self, position: int) -> Any:
        shared = self._shared
        id = self._ids[position]
        instance = shared.instances.get(id)
        if instance is None:
            instance = shared.instances[id] = _load(id, self._name(position)[1], shared)
        return instance


def _made(build: TableRows, positions: Sequence[int], rows: list[Any], frame: bool) -> Any:
    """A chunk of rows made here, as `_table_chunks` gives it."""
    return build.blocks(positions, rows) if frame else (positions, *build(positions, rows))


def _consume(iterator: Iterable[Any]) -> None:
    """Runs `iterator` to its end, keeping nothing: a loop in C over a `map`."""
    from collections import deque  # not at `import retain`: `collections` is slow to import

    deque(iterator, maxlen=0)


def _paused_gc() -> Any:
    """The cyclic garbage collector paused (`paused_gc`): a bulk read makes millions of
    short-lived objects and no cycles, which the collector would walk again and again (at
    1,000,000 rows, more than the read itself)."""
    from .index._rebuild_workers import paused_gc  # with the rebuild's machinery: only when used

    return paused_gc()


def _twice(parsed: Any) -> tuple[Any, dict[str, Any], Any]:
    """`field_value`'s summary, columns and metrics arguments for a summary or metrics field."""
    return parsed, {}, parsed


def _parsed(text: str | None) -> Any:
    """A summary (or last metric values) text as a dict; None for none, {} when damaged."""
    if not text:
        return None
    return parse_summary(text) or {}


def _configs(rows: list[IndexRow]) -> list[Any]:
    """The parsed configs of `rows`."""
    return parse_configs([row[5] for row in rows])


def _load(id: str, qualname: str, shared: _Shared) -> Any:
    import os

    storage = shared.storage
    data = storage.read_record(id)
    if data is None:
        try:
            shared.index.remove([id])
        except Exception:
            pass
        raise InterfaceNotFoundError(
            f"{qualname} [{id[:6]}] ({id}) was removed from {storage.url} after it was listed; "
            "query again for the current contents"
        )
    where = os.path.join(storage.local_directory(id), RECORD_FILE)
    record = decode_record(data, where, id)
    try:
        return load_record(Interface, record, storage)
    except ModuleResolutionError as exc:
        raise ModuleResolutionError(
            f"{qualname} [{id[:6]}] cannot be loaded: {exc}. Its record is readable without the "
            f"code: to_table(), pluck(...), or `retain show {id[:6]}`"
        ) from exc


def _flatten(row: dict[str, Any], value: dict[str, Any], path: str, nested: dict[str, dict[str, str]]) -> None:
    """The leaves of the config dict at dotted `path` into `row` as ``config.<path>.<key>``
    columns (`nested` caches the column names by path)."""
    names = nested.get(path)
    if names is None:
        names = nested[path] = {}
    for key, item in value.items():
        if type(item) is dict:
            if item and REF_KEY not in item:
                _flatten(row, item, f"{path}.{key}", nested)
                continue
            item = _plain(item)
        name = names.get(key)
        if name is None:
            name = names[key] = f"config.{path}.{key}"
        row[name] = item


def _order(value: Any) -> tuple[int, Any]:
    kind = type(value)
    if kind is bool:
        return (1, value)
    if kind is int or kind is float:
        return (0, value)
    if kind is str:
        return (2, value)
    if value is None or value is MISSING:
        return (4, 0)

    return (3, canonical_json(value))


def _plain(value: Any) -> Any:
    """A config value for a table or a list: interface references as their ids."""
    if type(value) is dict and REF_KEY in value:
        return value[REF_KEY]
    return value


def _refers(value: Any, id: str) -> bool:
    """Whether a config value holds the interface `id` (at any depth)."""
    return any(reference[REF_KEY] == id for reference in references(value))


def _hashable(value: Any) -> Any:
    if value is MISSING:
        return None
    value = _plain(value)
    if type(value) is list:
        return tuple(_hashable(v) for v in value)
    if type(value) is dict:
        return canonical_json(value)
    return value


def input_classes(collection: Collection[Any]) -> dict[str, str]:
    """The class name of each interface the configs of `collection` refer to, by id (from the
    index rows: `to_table` shows such inputs as ids)."""
    from json import loads

    found: dict[str, str] = {}
    for row in collection._rows():
        if REF_KEY in row[5]:
            for reference in references(loads(row[5])):
                found[str(reference[REF_KEY])] = str(reference.get("class", "?"))
    return found


def check_summary_keys(fields: list[Any], rows: Iterable[IndexRow], cls: type | None) -> None:
    """Raise `ConfigError` when a summary (or metrics) field is held by none of `rows`, listing
    the names they have: a misspelt name must be an error, not an empty result.

    Args:
        fields: summary and metrics `Field`s.
        rows: every row the fields could have been found in (read once).
        cls: the class queried, for the message (None: any).
    """
    sources = [
        (source, column, what_values, saver)
        for source, column, what_values, saver in (
            ("summary", 6, "summary values saved", "save_summary saves them"),
            ("metrics", 7, "metrics logged", "log_metrics logs them"),
        )
        if any(field.source == source for field in fields)
    ]
    names: dict[str, set[str]] = {source: set() for source, *_ in sources}
    damaged: set[str] = set()  # a damaged file might hold the name: not provably a typo
    seen = False
    for row in rows:
        seen = True
        for source, column, *_ in sources:
            values = parse_summary(row[column])
            if values:
                names[source].update(values)
            elif row[column] and values is None:
                damaged.add(source)
    if not seen:
        return  # nothing committed to tell a typo from a value not saved yet
    for source, _, what_values, saver in sources:
        if source in damaged:
            continue
        known_names = names[source]
        for field in fields:
            if field.source != source or field.path in known_names:
                continue
            import difflib

            what = cls.__qualname__ if cls is not None else "interface"
            close = difflib.get_close_matches(field.path, sorted(known_names), n=1)
            hint = f"; did you mean '{source}.{close[0]}'?" if close else ""
            known = ", ".join(sorted(known_names)) if known_names else f"(none: {saver})"
            kind = "summary value" if source == "summary" else "metric"
            raise ConfigError(
                f"no committed {what} has a {kind} {field.path!r} ({field.name}); the "
                f"{what_values} are: {known}{hint}"
            )


def query_all(
    cls: type,
    where: Any = None,
    *,
    storage: Any = None,
    index: Any = None,
) -> Collection[Any]:
    """What `get.all` does: the committed interfaces of `cls` that pass `where`."""
    if not (isinstance(cls, type) and issubclass(cls, Interface)):
        raise ModuleResolutionError(
            f"get.all lists committed interfaces; {getattr(cls, '__qualname__', cls)!r} is not "
            "an Interface subclass"
        )
    native, summary, predicate = compile_where(cls, where)
    if cls is Interface:
        query = Query(None, None, native, summary)
    elif cls.__module__.split(".")[0] == "retain":  # a base class of retain: all of its kind
        query = Query(None, getattr(cls, "kind", None), native, summary)
    else:
        query = Query([class_reference(cls)], None, native, summary)
    store, idx = _ready(storage, index)
    return _collect(query, cls if cls is not Interface else None, summary, predicate, store, idx)


def query_records(
    reference: str,
    where: Any,
    error: BaseException,
    *,
    storage: Any = None,
    index: Any = None,
) -> Collection[Any]:
    """What `get.all` does for a module name (or ``module:Class``) whose class cannot be
    loaded: the index rows of the class recorded under that name, from the records alone (a
    record is readable without its code). Config keys in `where` are not checked.

    Raises:
        `error`: nothing is recorded under that name either.
        ModuleResolutionError: records of several classes of that module, and no class named.
    """
    module, _, qualname = reference.strip().partition(":")
    named = [Condition(Field("column", "module", "module"), equal(module, "module"))]
    if qualname:
        named.append(Condition(Field("column", "class", "class"), equal(qualname, "class")))
    store, idx = _ready(storage, index)
    listing = idx.listing(Query(None, None, named, []))
    keys = ({listing.of} if listing.ids else set()) if type(listing.of) is int else set(listing.of)
    classes = sorted({listing.names[key][:2] for key in keys})
    if not classes:
        raise error
    if len(classes) > 1:
        names = ", ".join(f"{module}:{name}" for _, name in classes)
        raise ModuleResolutionError(
            f"{error}; the storage holds records of several classes of {module!r} ({names}): "
            "name one of them"
        ) from None
    native, summary, predicate = compile_where(None, where)
    query = Query(classes, None, native, summary)
    return _collect(query, None, summary, predicate, store, idx)


def _ready(storage: Any, index: Any) -> tuple[Storage, Index]:
    """The storage and its index, brought up to date."""
    store = current_storage(storage)
    idx = make_index(index, store)
    flush()  # what this process committed is written before the query
    idx.sync(store)
    return store, idx


def _collect(
    query: Any, cls: type | None, summary: list[Any], predicate: Any, store: Storage, idx: Index
) -> Collection[Any]:
    """The collection of `query`'s rows that pass `predicate` (a function of the config)."""
    with _paused_gc():
        listing: Listing = idx.listing(query)
    if not listing.ids and summary:
        # Nothing matched: a summary name no interface has is a typo, not an empty result.
        kind = query.kind
        everything = (row for _, rows in idx.scan(query.classes) for row in rows if kind is None or row[3] == kind)
        check_summary_keys([c.field for c in summary], everything, cls)
    collection: Collection[Any] = Collection(listing.ids, listing.of, listing.places, _Shared(store, idx, cls, listing.names))
    if predicate is not None:
        collection = collection._where(collection._values(lambda _, config: predicate(ConfigView(config)), True))
    return collection
