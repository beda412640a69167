"""`Collection`: the committed interfaces a query found, loaded only when touched.

A collection holds index rows (id, class, created time, config, summary and last metric
values as JSON), so its
length, tables, groups and plucked values never read a record; an interface is loaded from
storage when it is accessed (``runs[0]``, iteration) and kept for later accesses.
"""

from __future__ import annotations

from ._errors import ConfigError, InterfaceNotFoundError, ModuleResolutionError
from .identity import REF_KEY, canonical_json, references
from .query import MISSING, compile_where, equal, field_value, matches_all, resolve_field, Condition, Field, Query
from .interface import Interface, load_record
from .storage.annotation_files import read_tags
from .storage.layout import RECORD_FILE, decode_record
from .index.base import parse_summary
from .modules import class_reference
from ._settings import current_storage
from .index import make_index
from .index._updates import flush
from .config import ConfigView

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
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


class _Shared:
    """What the collections derived from one query share: parsed JSON and loaded instances."""

    __slots__ = ("storage", "index", "cls", "configs", "summaries", "metrics", "instances", "tags")

    def __init__(self, storage: Storage, index: Index | None, cls: type | None) -> None:
        self.storage = storage
        self.index = index
        self.cls = cls
        self.configs: dict[str, Any] = {}
        self.summaries: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self.instances: dict[str, Any] = {}
        #: The tags of the interfaces that have some, read once when first needed.
        self.tags: dict[str, list[str]] | None = None


class Collection(_Generic[I]):
    """Committed interfaces, newest first unless sorted; instances load lazily.

    Indexing gives an interface (``runs[0]``, ``runs[-1]``), slicing a collection
    (``runs[:10]``); iteration loads each interface in turn. Methods that take a *field* (a
    config key such as ``"lr"`` or ``"model.depth"``, ``"summary.<name>"``, ``"metrics.<name>"``
    (the last value of a metric), or ``"id"``,
    ``"created"``, ``"module"``, ``"class"``, ``"kind"``) work from the index rows alone.

    Example:
        >>> runs = get.all(Train, where={"batch_size": 32})
        >>> len(runs), runs.pluck("lr")[:3]
        (12, [0.01, 0.001, 0.1])
        >>> best = runs.sort("summary.loss").first()
    """

    __slots__ = ("_rows", "_shared")

    def __init__(self, rows: list[IndexRow], shared: _Shared) -> None:
        self._rows = rows
        self._shared = shared

    # -- sequence -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def __bool__(self) -> bool:
        return bool(self._rows)

    def __iter__(self) -> Iterator[I]:
        for row in self._rows:
            yield self._load(row)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, slice):
            return self._derive(self._rows[item])
        if isinstance(item, int) or hasattr(item, "__index__"):
            return self._load(self._rows[item])
        raise TypeError(f"a Collection is indexed by position or slice, not {type(item).__name__}")

    def __contains__(self, item: object) -> bool:
        id = getattr(item, "id", item)
        return any(row[0] == id for row in self._rows)

    def __repr__(self) -> str:
        cls = self._shared.cls
        classes = {row[2] for row in self._rows} if cls is None else set()
        name = cls.__qualname__ if cls is not None else classes.pop() if len(classes) == 1 else "Interface"
        return f"<Collection of {len(self._rows)} {name}>"

    def _repr_html_(self) -> str:  # views load when a notebook asks: `import retain` stays cheap
        """Jupyter's view: a table of the first rows (as `to_table`) and the total count."""
        from ._html import collection_html

        return collection_html(self)

    def ids(self) -> list[str]:
        """The ids, in order."""
        return [row[0] for row in self._rows]

    def first(self) -> I | None:
        """The first interface (the newest, unless sorted), or None when empty."""
        return self._load(self._rows[0]) if self._rows else None

    def last(self) -> I | None:
        """The last interface (the oldest, unless sorted), or None when empty."""
        return self._load(self._rows[-1]) if self._rows else None

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
            kept = [row for row in self._rows if self._row_matches(row, conditions, tags)]
            if not kept and summary:
                check_summary_keys([c.field for c in summary], self._rows, self._shared.cls)
            return self._derive(kept)
        if not callable(predicate):
            raise ConfigError(
                f"filter takes a function of the interface or a dict of field -> value; got "
                f"{type(predicate).__name__}"
            )
        return self._derive([row for row in self._rows if predicate(self._load(row))])

    def sort(self, key: str | Callable[[I], Any] | Sequence[Any], reverse: bool = False) -> Collection[I]:
        """Sorted by a field (no loading; missing values last), by a function of the interface,
        or by a sequence of values, one per interface in order (None: missing, last).

        Values of different types sort by type (numbers, then strings, then others)."""
        if not isinstance(key, str) and not callable(key):
            values = list(key)
            if len(values) != len(self._rows):
                raise ConfigError(
                    f"sort by values needs one value per interface: got {len(values)} for "
                    f"{len(self._rows)}"
                )
            pairs = [(value, row) for value, row in zip(values, self._rows) if value is not None]
            pairs.sort(key=lambda pair: _order(pair[0]), reverse=reverse)
            absent = [row for value, row in zip(values, self._rows) if value is None]
            return self._derive([row for _, row in pairs] + absent)
        if callable(key):
            loaded = [(key(self._load(row)), row) for row in self._rows]
            loaded.sort(key=lambda pair: _order(pair[0]), reverse=reverse)
            return self._derive([row for _, row in loaded])
        field = resolve_field(key, self._shared.cls)
        present: list[tuple[Any, IndexRow]] = []
        missing: list[tuple[Any, IndexRow]] = []
        for row in self._rows:
            value = self._field(row, field)
            (missing if value is MISSING or value is None else present).append((value, row))
        if field.source in ("summary", "metrics") and not present and missing:
            check_summary_keys([field], self._rows, self._shared.cls)
        present.sort(key=lambda pair: _order(pair[0]), reverse=reverse)
        return self._derive([row for _, row in present] + [row for _, row in missing])

    def using(self, input: Interface | str) -> Collection[I]:
        """The interfaces whose configuration holds `input` (an interface or its id) as an
        input, at any depth, in order; from the index rows alone."""
        id = input if isinstance(input, str) else input.id
        scan = _decoder()
        # Most rows do not mention the id at all: their text is looked at before it is parsed.
        return self._derive([
            row for row in self._rows if id in row[5] and _refers(scan(row[5])[0], id)
        ])

    def group_by(self, key: str) -> dict[Any, Collection[I]]:
        """Collections by the value of a field, in order of first appearance. Lists become
        tuples (to be dict keys); interfaces in a config are grouped by id; a missing value
        is None."""
        field = resolve_field(key, self._shared.cls)
        groups: dict[Any, list[IndexRow]] = {}
        for row in self._rows:
            groups.setdefault(_hashable(self._field(row, field)), []).append(row)
        return {value: self._derive(rows) for value, rows in groups.items()}

    def pluck(self, key: str) -> list[Any]:
        """The value of a field for each interface, in order (None where missing)."""
        field = resolve_field(key, self._shared.cls)
        values = []
        for row in self._rows:
            value = self._field(row, field)
            values.append(None if value is MISSING else _plain(value))
        return values

    def map(self, function: Callable[[I], R]) -> list[R]:
        """``[function(interface) for interface in self]`` (each one is loaded)."""
        return [function(self._load(row)) for row in self._rows]

    # -- tables -------------------------------------------------------------------------------

    def to_table(self) -> list[dict[str, Any]]:
        """One flat dict per interface, from the index alone: ``id``, ``module``, ``class``,
        ``created``, then ``config.<dotted key>`` for every config leaf and
        ``summary.<name>`` for every summary value and ``metrics.<name>`` for the last value of
        every metric, and ``tags`` (a sorted list) for an interface that has tags. Interfaces in
        a config appear as ids."""
        scan = _decoder()
        # Column names by config key (top level) and by nested path, built once per call: a
        # cached name also has its hash cached, which makes filling 100,000 rows cheaper.
        top: dict[str, str] = {}
        nested: dict[str, dict[str, str]] = {}
        summary_names: dict[str, str] = {}
        metric_names: dict[str, str] = {}
        table: list[dict[str, Any]] = []
        append = table.append
        tags = self._tags() if self._rows else {}
        for id, module, qualname, _, created, config_text, summary_text, metrics_text in self._rows:
            row: dict[str, Any] = {"id": id, "module": module, "class": qualname, "created": created}
            if tags and id in tags:
                row["tags"] = tags[id]
            try:
                # One parse for all: the fixed cost per call dominates for small texts.
                config, summary, metrics = scan(f"[{config_text},{summary_text or 'null'},{metrics_text or 'null'}]")[0]
            except ValueError:  # a damaged summary (or metrics) text
                config, summary = scan(config_text)[0], parse_summary(summary_text)
                metrics = parse_summary(metrics_text)
            # The top level inline (most leaves are there), nested dicts through _flatten.
            for key, item in config.items():
                if type(item) is dict:
                    if item and REF_KEY not in item:
                        _flatten(row, item, key, nested)
                        continue
                    item = _plain(item)
                name = top.get(key)
                if name is None:
                    name = top[key] = "config." + key
                row[name] = item
            if type(summary) is dict:
                for key, value in summary.items():
                    name = summary_names.get(key)
                    if name is None:
                        name = summary_names[key] = "summary." + key
                    row[name] = value
            if type(metrics) is dict:
                for key, value in metrics.items():
                    name = metric_names.get(key)
                    if name is None:
                        name = metric_names[key] = "metrics." + key
                    row[name] = value
            append(row)
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
        table = self.to_table()
        from ._html import table_columns  # (with pandas: at the first frame)

        frame = pandas.DataFrame(table, columns=table_columns(table))
        if len(frame):
            frame["created"] = pandas.to_datetime(frame["created"], utc=True, format="ISO8601")
        return frame

    # -- internals ----------------------------------------------------------------------------

    def _derive(self, rows: list[IndexRow]) -> Collection[I]:
        return Collection(rows, self._shared)

    def _config(self, row: IndexRow) -> Any:
        configs = self._shared.configs
        config = configs.get(row[0])
        if config is None:
            from json import loads

            config = configs[row[0]] = loads(row[5])
        return config

    def _summary(self, row: IndexRow) -> Any:
        if not row[6]:
            return None
        summaries = self._shared.summaries
        summary = summaries.get(row[0])
        if summary is None:
            summary = summaries[row[0]] = parse_summary(row[6]) or {}
        return summary

    def _metrics(self, row: IndexRow) -> Any:
        if not row[7]:
            return None
        cache = self._shared.metrics
        metrics = cache.get(row[0])
        if metrics is None:
            metrics = cache[row[0]] = parse_summary(row[7]) or {}
        return metrics

    def _field(self, row: IndexRow, field: Any) -> Any:
        source = field.source
        if source == "column":
            return _column(row, field.path)
        return field_value(
            field,
            self._config(row) if source == "config" else None,
            self._summary(row) if source == "summary" else None,
            {},
            self._metrics(row) if source == "metrics" else None,
        )

    def _tags(self) -> dict[str, list[str]]:
        """The tags of the interfaces that have some (from the index; else from storage)."""
        shared = self._shared
        if shared.tags is None:
            if shared.index is not None:
                shared.tags = shared.index.tags()
            else:
                found = read_tags(shared.storage, [row[0] for row in self._rows])
                shared.tags = {id: sorted(names) for id, names in found.items() if names}
        return shared.tags

    def _row_matches(self, row: IndexRow, conditions: list[Any], tags: dict[str, list[str]] | None = None) -> bool:
        columns: dict[str, Any] = {name: _column(row, name) for name in ("id", "module", "class", "kind", "created")}
        if tags is not None:
            columns["tags"] = tags.get(row[0], [])
        return matches_all(conditions, self._config(row), self._summary(row), columns, self._metrics(row))

    def _load(self, row: IndexRow) -> Any:
        shared = self._shared
        instance = shared.instances.get(row[0])
        if instance is None:
            instance = shared.instances[row[0]] = _load(row, shared)
        return instance


def _load(row: IndexRow, shared: _Shared) -> Any:
    import os

    id, storage = row[0], shared.storage
    data = storage.read_record(id)
    if data is None:
        if shared.index is not None:
            try:
                shared.index.remove([id])
            except Exception:
                pass
        raise InterfaceNotFoundError(
            f"{row[2]} [{id[:6]}] ({id}) was removed from {storage.url} after it was listed; "
            "query again for the current contents"
        )
    where = os.path.join(storage.local_directory(id), RECORD_FILE)
    record = decode_record(data, where, id)
    try:
        return load_record(Interface, record, storage)
    except ModuleResolutionError as exc:
        raise ModuleResolutionError(
            f"{row[2]} [{id[:6]}] cannot be loaded: {exc}. Its record is readable without the "
            f"code: to_table(), pluck(...), or `retain show {id[:6]}`"
        ) from exc


_raw_decode: Any = None


def _decoder() -> Any:
    # JSONDecoder.raw_decode: `json.loads` without its per-call checks, for many small texts.
    global _raw_decode
    if _raw_decode is None:
        from json import JSONDecoder

        _raw_decode = JSONDecoder().raw_decode
    return _raw_decode


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


_COLUMN_POSITIONS = {"id": 0, "module": 1, "class": 2, "kind": 3, "created": 4}


def _column(row: IndexRow, name: str) -> Any:
    return row[_COLUMN_POSITIONS[name]]


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
    for row in collection._rows:
        if REF_KEY in row[5]:
            for reference in references(loads(row[5])):
                found[str(reference[REF_KEY])] = str(reference.get("class", "?"))
    return found


def check_summary_keys(fields: list[Any], rows: list[IndexRow], cls: type | None) -> None:
    """Raise `ConfigError` when a summary (or metrics) field is held by none of `rows`, listing
    the names they have: a misspelt name must be an error, not an empty result.

    Args:
        fields: summary and metrics `Field`s.
        rows: every row the fields could have been found in.
        cls: the class queried, for the message (None: any).
    """
    if not rows:
        return  # nothing committed to tell a typo from a value not saved yet
    for source, column, what_values, saver in (
        ("summary", 6, "summary values saved", "save_summary saves them"),
        ("metrics", 7, "metrics logged", "log_metrics logs them"),
    ):
        wanted = [field for field in fields if field.source == source]
        if not wanted:
            continue
        names: set[str] = set()
        damaged = False
        for row in rows:
            values = parse_summary(row[column])
            if values:
                names.update(values)
            elif row[column] and values is None:
                damaged = True  # a damaged file might hold the name: not provably a typo
                break
        if damaged:
            continue
        for field in wanted:
            if field.path in names:
                continue
            import difflib

            what = cls.__qualname__ if cls is not None else "interface"
            close = difflib.get_close_matches(field.path, sorted(names), n=1)
            hint = f"; did you mean '{source}.{close[0]}'?" if close else ""
            known = ", ".join(sorted(names)) if names else f"(none: {saver})"
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
    classes = sorted({(row[1], row[2]) for row in idx.query(Query(None, None, named, []))})
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
    rows = idx.query(query)
    if not rows and summary:
        # Nothing matched: a summary name no interface has is a typo, not an empty result.
        everything = idx.query(Query(query.classes, query.kind, [], []))
        check_summary_keys([c.field for c in summary], everything, cls)
    shared = _Shared(store, idx, cls)
    if predicate is not None:
        from json import loads

        kept = []
        configs = shared.configs
        for row in rows:
            config = configs[row[0]] = loads(row[5])
            if predicate(ConfigView(config)):
                kept.append(row)
        rows = kept
    return Collection(rows, shared)
