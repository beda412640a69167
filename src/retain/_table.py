"""The rows of `Collection.to_table` and `to_dataframe`, built from index rows a chunk at a
time, and the pass over a million of them shared between forked workers.

A row is made of column names and values (``dict(zip(names, values))``): the configs of one
shape are flattened by a `Shape` made once, from their values alone; the names of a row are
one of a few shared tuples. From `PARALLEL_MIN` rows read by a pass over an index that
`supports_row_ranges`, forked workers read ranges of places, place, parse and flatten their
rows, and send back positions, names and values (`marshal`); this process only makes the dicts.
For a frame they send columns instead (`frame_blocks`): numbers as typed arrays, what pandas
must infer as values, and this process joins them (`frame_columns`). Workers are forked only
where rebuild forks them (`can_fork`: Linux, a single thread); otherwise, or when a worker
dies, the ranges are read here, with the same rows.
"""

from __future__ import annotations

import gc
import marshal
from itertools import compress, repeat
from operator import eq, itemgetter

from .identity import REF_KEY
from .index.base import parse_summary
from .storage.layout import raw_decoder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

    from .index.base import Index, TableRow

    #: (positions, column names, values) of a chunk of rows.
    Chunk = tuple[Sequence[int], list[tuple[str, ...]], list[tuple[Any, ...]]]
    #: Rows that have the same columns, by column (`frame_blocks`): positions, how many, and
    #: for each column name its kind and data.
    Block = tuple[Sequence[int], int, dict[str, tuple[str, Any]]]

__all__ = [
    "HEAD", "PARALLEL_MIN", "Pass", "Shape", "TableRows", "flatten_into", "frame_blocks", "frame_columns", "in_workers",
    "parse_configs", "placed",
]

#: From this many rows, a pass is shared between forked workers. Chosen, not measured: at
#: 1,000,000 they save ~2 s; forking costs milliseconds, and 100,000 rows take ~0.5 s here.
PARALLEL_MIN = 100_000
#: Places per task of a worker: a few tasks per worker, so that the last ones finish together.
TASK_PLACES = 50_000


def parse_configs(texts: list[str]) -> list[Any]:
    """Config texts parsed: one parse for the chunk (the fixed cost per call dominates for
    small texts, and keys are shared)."""
    from json import loads

    try:
        configs: list[Any] = loads("[" + ",".join(texts) + "]")
    except ValueError:
        return [loads(text) for text in texts]  # raises for the damaged one
    return configs


#: The first columns of every `to_table` row.
HEAD = ("id", "module", "class", "created")


class TableRows:
    """Makes `to_table` rows from `TableRow`s, a chunk at a time, as column names and values
    (a row is ``dict(zip(names, values))``; a frame places the values by name).

    The configs of one shape (the same keys at every level and no dict among the leaves:
    nearly every row of a class) are flattened by their `Shape`, made once. A chunk of rows of
    one class whose configs all have one shape is made column by column (`Shape.columns`:
    the loops are in C); any other chunk row by row, from the shape's values where a config
    has it, else key by key. The names of a row are one of a few tuples, shared by the rows
    that have the same columns."""

    def __init__(
        self, tags: dict[str, list[str]], name: Callable[[int], tuple[str, str, str]], fixed: tuple[str, str] | None = None
    ) -> None:
        self.tags = tags
        #: The (module, qualname, kind) of the row at a position.
        self.name = name
        #: (module, qualname) of every row, when there is one class.
        self.fixed = fixed
        self.shape: Shape | None = None
        self.shapes: dict[tuple[str, ...], Shape] = {}
        #: Row names by (config names, summary keys, metrics keys, tagged).
        self.names: dict[tuple[Any, ...], tuple[str, ...]] = {}
        #: The config names of rows walked key by key, each kept once.
        self.heads: dict[tuple[str, ...], tuple[str, ...]] = {}

    def __call__(self, positions: Sequence[int], rows: list[TableRow]) -> tuple[list[tuple[str, ...]], list[tuple[Any, ...]]]:
        if not rows:
            return [], []
        configs = parse_configs([row[2] for row in rows])
        made = self._by_columns(rows, configs) if self.fixed is not None else None
        return made if made is not None else self._by_rows(positions, rows, configs)

    def blocks(self, positions: Sequence[int], rows: list[TableRow]) -> list[Block]:
        """The rows for a frame, as `frame_blocks`: a chunk of one class whose configs all have
        one shape straight from its columns, without making the rows."""
        if not rows:
            return []
        configs = parse_configs([row[2] for row in rows])
        if self.fixed is not None:
            made = self._columns(rows, configs)
            if made is not None:
                columns, more, summaries, metrics = made
                assert self.shape is not None
                if not more:
                    return [_block(positions, len(rows), self.shape.row_names, columns)]
                return self._split(positions, columns, more, summaries, metrics)
        return frame_blocks(positions, *self._by_rows(positions, rows, configs))

    def _columns(
        self, rows: list[TableRow], configs: list[Any]
    ) -> tuple[list[Sequence[Any]], list[int], Sequence[str | None], Sequence[str | None]] | None:
        """The columns (id, module, class, created, config leaves) of rows of one class whose
        configs all have the shape of the first, which rows have more columns (a summary,
        metrics, tags), and the summary and metrics texts; else None."""
        assert self.fixed is not None
        shape = self.shape
        if shape is None or shape.keys != tuple(configs[0]):
            shape = self.shape = self._shape(configs[0])
        leaves = shape.columns(configs)
        if leaves is None or any(dict in map(type, column) for column in leaves):
            return None
        count = len(rows)
        ids, created, _, summaries, metrics = zip(*rows)
        module, qualname = self.fixed
        more: set[int] = set()
        if summaries.count(None) != count:
            more.update(k for k, text in enumerate(summaries) if text)
        if metrics.count(None) != count:
            more.update(k for k, text in enumerate(metrics) if text)
        if self.tags:
            tags = self.tags
            more.update(k for k, id in enumerate(ids) if id in tags)
        columns = [ids, list(repeat(module, count)), list(repeat(qualname, count)), created, *leaves]
        return columns, sorted(more), summaries, metrics

    def _split(
        self, positions: Sequence[int], columns: list[Sequence[Any]], more: list[int],
        summaries: Sequence[str | None], metrics: Sequence[str | None],
    ) -> list[Block]:
        """Blocks of the rows in `columns` without more columns, and of those with them."""
        assert self.shape is not None
        names, values = [], []
        for k in more:
            row_names, row = self._more(tuple([column[k] for column in columns]), self.shape.names, summaries[k], metrics[k])
            names.append(row_names)
            values.append(row)
        keep = [True] * len(positions)
        for k in more:
            keep[k] = False
        kept = list(compress(positions, keep))
        extra = frame_blocks([positions[k] for k in more], names, values)
        if not kept:
            return extra
        return [_block(kept, len(kept), self.shape.row_names, [list(compress(column, keep)) for column in columns]), *extra]

    def _shape(self, config: dict[str, Any]) -> Shape:
        keys = tuple(config)
        shape = self.shapes.get(keys)
        if shape is None:
            shape = self.shapes[keys] = Shape(config, "config.")
        return shape

    def _by_columns(self, rows: list[TableRow], configs: list[Any]) -> tuple[list[tuple[str, ...]], list[tuple[Any, ...]]] | None:
        """The rows of one class, when every config has the shape of the first; else None."""
        made = self._columns(rows, configs)
        if made is None:
            return None
        columns, more, summaries, metrics = made
        shape = self.shape
        assert shape is not None
        values: list[tuple[Any, ...]] = list(zip(*columns))
        names = [shape.row_names] * len(rows)
        # The few rows with more columns (a summary, metrics, tags) made again with them.
        for k in more:
            names[k], values[k] = self._more(values[k], shape.names, summaries[k], metrics[k])
        return names, values

    def _by_rows(
        self, positions: Sequence[int], rows: list[TableRow], configs: list[Any]
    ) -> tuple[list[tuple[str, ...]], list[tuple[Any, ...]]]:
        tags, name, heads = self.tags, self.name, self.heads
        shape = self.shape
        columns: list[tuple[str, ...]] = []
        values: list[tuple[Any, ...]] = []
        add_names, add_values = columns.append, values.append
        for position, (id, created, _, summary_text, metrics_text), config in zip(positions, rows, configs):
            module, qualname, _ = name(position)
            if shape is None or (leaves := shape.values(config)) is None:
                shape = self._shape(config)
                leaves = shape.values(config)
            if leaves is not None and dict not in map(type, leaves):
                head: tuple[str, ...] = shape.names
            else:  # another shape below the top, or a dict as a leaf (an input, {})
                flat: dict[str, Any] = {}
                flatten_into(config, "config.", flat)
                head, leaves = tuple(flat), tuple(flat.values())
                head = heads.setdefault(head, head)  # shared, as a shape's names are
            row = (id, module, qualname, created) + leaves
            if summary_text or metrics_text or (tags and id in tags):
                names, row = self._more(row, head, summary_text, metrics_text)
            elif head is shape.names:
                names = shape.row_names
            else:
                names = self._names(head, (), (), False)
            add_names(names)
            add_values(row)
        self.shape = shape
        return columns, values

    def _more(
        self, row: tuple[Any, ...], head: tuple[str, ...], summary_text: str | None, metrics_text: str | None
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """The names and values of a row with its tags, summary and metrics, from those of
        its id, module, class, created and config (`row`, `head`)."""
        summary = _parsed(summary_text) if summary_text else None
        metrics = _parsed(metrics_text) if metrics_text else None
        tags = self.tags.get(row[0]) if self.tags else None
        if tags is not None:
            row = row[:4] + (tags,) + row[4:]
        if summary:
            row += tuple(summary.values())
        if metrics:
            row += tuple(metrics.values())
        return self._names(head, tuple(summary) if summary else (), tuple(metrics) if metrics else (), tags is not None), row

    def _names(self, head: tuple[str, ...], summary: tuple[str, ...], metrics: tuple[str, ...], tagged: bool) -> tuple[str, ...]:
        key = (head, summary, metrics, tagged)
        names = self.names.get(key)
        if names is None:
            names = self.names[key] = (
                HEAD + (("tags",) if tagged else ()) + head
                + tuple(["summary." + k for k in summary]) + tuple(["metrics." + k for k in metrics])
            )
        return names


def _parsed(text: str) -> dict[str, Any] | None:
    """`parse_summary(text)`, without `json.loads`'s cost per call (a tenth of a million rows
    may have a summary)."""
    try:
        value, end = raw_decoder()(text)
    except ValueError:
        return parse_summary(text)  # (leading blanks, or damaged)
    if end != len(text) and text[end:].strip():
        return None  # something after the value: damaged
    return value if type(value) is dict else None


class Shape:
    """Configs with these keys, in this order, at every level, flattened: their leaves in
    column order, from their values alone."""

    __slots__ = ("keys", "nested", "names", "row_names")
    keys: tuple[str, ...]
    nested: list[tuple[int, Shape]]
    names: tuple[str, ...]
    row_names: tuple[str, ...]

    def __init__(self, config: dict[str, Any], prefix: str) -> None:
        self.keys = tuple(config)
        nested: list[tuple[int, Shape]] = []
        names: list[str] = []
        for at, (key, item) in enumerate(config.items()):
            if type(item) is dict and item and REF_KEY not in item:
                inner = Shape(item, f"{prefix}{key}.")
                nested.append((at, inner))
                names += inner.names
            else:
                names.append(prefix + key)
        #: (position among the keys, shape) of the nested dicts, last first: spliced in from
        #: the end, the positions of the earlier ones stay right.
        self.nested = nested[::-1]
        self.names = tuple(names)
        self.row_names = HEAD + self.names

    def columns(self, configs: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        """The leaves of `configs` in column order, a tuple of values per column, or None
        when the keys of one differ somewhere. A leaf may be a dict (the caller checks)."""
        count = len(configs)
        if list(map(tuple, configs)).count(self.keys) != count:
            return None
        if not self.keys:
            return []
        columns: list[tuple[Any, ...]] = list(zip(*map(dict.values, configs)))
        for at, inner in self.nested:
            column = columns[at]
            if list(map(type, column)).count(dict) != count:
                return None
            part = inner.columns(column)
            if part is None:
                return None
            columns[at:at + 1] = part
        return columns

    def values(self, config: dict[str, Any]) -> tuple[Any, ...] | None:
        """The leaves of `config` in column order, or None when its keys differ somewhere.
        A leaf may be a dict (the caller checks: such a row takes the general walk)."""
        if tuple(config) != self.keys:
            return None
        values = tuple(config.values())
        for at, inner in self.nested:
            item = values[at]
            if type(item) is not dict:
                return None
            part = inner.values(item)
            if part is None:
                return None
            values = values[:at] + part + values[at + 1:]
        return values


def flatten_into(value: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    """The leaves of a config dict into `out` as ``<prefix><dotted key>`` (nested dicts
    flattened in place; inputs as their ids)."""
    for key, item in value.items():
        if type(item) is dict:
            if item and REF_KEY not in item:
                flatten_into(item, f"{prefix}{key}.", out)
                continue
            if REF_KEY in item:
                item = item[REF_KEY]  # an input, as its id
        out[prefix + key] = item


class Pass:
    """What a pass over the rows of a collection needs: the index and classes to read, the
    position of each place (`at`; -1: none), the ids that decide (a place is a hint; followed
    by None, as `placed` takes them), the names of each position's class (or of all, `fixed`)
    and the tags of a table (or none)."""

    __slots__ = ("index", "classes", "at", "ids", "name", "fixed", "tags", "frame")

    def __init__(
        self, index: Index, classes: list[tuple[str, str]], at: Any, ids: list[Any],
        name: Callable[[int], tuple[str, str, str]], fixed: tuple[str, str] | None, tags: dict[str, list[str]],
        frame: bool = False,
    ) -> None:
        self.index, self.classes, self.at, self.ids = index, classes, at, ids
        self.name, self.fixed, self.tags = name, fixed, tags
        #: Whether the rows are for a frame: the workers send `frame_blocks`.
        self.frame = frame

    def rows(self) -> TableRows:
        """A maker of the rows of this pass."""
        return TableRows(self.tags, self.name, self.fixed)

    def span(self, span: tuple[int, int], build: TableRows) -> Chunk:
        """The rows of the places in `span` that are the collection's, made."""
        positions: list[int] = []
        names: list[tuple[str, ...]] = []
        values: list[tuple[Any, ...]] = []
        for places, rows in self.index.table_scan(self.classes, span):
            if places is None:
                continue
            where, kept = placed(places, rows, self.at, self.ids)
            chunk_names, chunk_values = build(where, kept)
            positions += where
            names += chunk_names
            values += chunk_values
        return positions, names, values

    def span_blocks(self, span: tuple[int, int], build: TableRows) -> list[Block]:
        """The rows of the places in `span` that are the collection's, for a frame."""
        blocks: list[Block] = []
        for places, rows in self.index.table_scan(self.classes, span):
            if places is not None:
                blocks += build.blocks(*placed(places, rows, self.at, self.ids))
        return blocks


def placed(places: Sequence[int], rows: list[Any], at: Any, ids: list[Any]) -> tuple[list[int], list[Any]]:
    """The positions of those of `rows` (at `places`, each below ``len(at)``) that are the
    collection's, and those rows: a place is a hint (a rebuild renumbers rows), the id
    decides. `ids` is the collection's ids followed by None (the id at position -1: none).
    The loops are in C."""
    positions = list(map(at.__getitem__, places))
    if list(map(ids.__getitem__, positions)) == list(map(_first, rows)):  # (40% less than by `eq`)
        return positions, rows
    found = list(map(eq, map(ids.__getitem__, positions), map(_first, rows)))
    return list(compress(positions, found)), list(compress(rows, found))


_first = itemgetter(0)


_pass: Pass | None = None


def in_workers(job: Pass, top: int) -> Iterator[Any] | None:
    """The rows of the places below `top`, made by forked workers, in chunks (`Chunk`s, or
    lists of `Block`s for a frame) in any order; or None when workers cannot be forked here."""
    from .index._rebuild_workers import forked_pool  # loads threading: only here

    global _pass
    _pass = job  # what the workers inherit
    made = forked_pool(gc.disable)
    if made is None:
        _pass = None
        return None
    pool = made[0]
    spans = [(start, min(top, start + TASK_PLACES)) for start in range(0, top, TASK_PLACES)]
    return _collect(job, pool, spans)


def _collect(job: Pass, pool: Any, spans: list[tuple[int, int]]) -> Iterator[Any]:
    global _pass
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    left = dict(enumerate(spans))
    try:
        with pool:
            pending = {pool.submit(_span_in_worker, span): k for k, span in left.items()}
            _pass = None  # the workers are forked: this process holds no reference for them
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    data = future.result()  # an error of a row (a damaged config) is raised here
                    del left[pending.pop(future)]
                    yield _unpack_blocks(data) if job.frame else _unpack(data)
    except (BrokenProcessPool, OSError) as exc:  # a worker died (out of memory?): the rest here
        from ._log import logger

        logger("retain").warning("a table worker failed (%s); reading the rest in this process", exc)
    finally:
        _pass = None
    build = job.rows()
    for span in left.values():
        yield job.span_blocks(span, build) if job.frame else job.span(span, build)


def _span_in_worker(span: tuple[int, int]) -> bytes:
    """A span made in a worker, marshalled: positions, the distinct names, which names each
    row has, values."""
    assert _pass is not None
    if _pass.frame:
        return _pack_blocks(_pass.span_blocks(span, _pass.rows()))
    positions, names, values = _pass.span(span, _pass.rows())
    distinct: list[tuple[str, ...]] = []
    which: list[int] = []
    known: dict[int, int] = {}
    for row_names in names:  # the names of a row are one of a few shared tuples
        k = known.get(id(row_names))
        if k is None:
            k = known[id(row_names)] = len(distinct)
            distinct.append(row_names)
        which.append(k)
    return marshal.dumps((positions, distinct, which, values))  # type: ignore[arg-type]


def _unpack(data: bytes) -> Chunk:
    positions, distinct, which, values = marshal.loads(data)
    return positions, list(map(distinct.__getitem__, which)), values


# -- frames -------------------------------------------------------------------------------------
#
# A frame is made by column: pandas infers a column's type from its values, one column at a
# time, and the columns of plain numbers (every value an int, or a float) need no inference: as
# typed arrays they are made by the workers and joined here. Every other column goes through
# pandas' inference exactly as the rows of `to_table` would (`frame_columns`).

#: Kinds of column data in a `Block`: int64 and float64 arrays, or the values as they are.
INT, FLOAT, VALUES = "i", "f", "o"


def frame_blocks(positions: Sequence[int], names: list[tuple[str, ...]], values: list[tuple[Any, ...]]) -> list[Block]:
    """A chunk of rows as blocks of the rows that have the same columns (a row's names are one
    of a few shared tuples), each by column: a column of ints (within int64) or of floats as
    an array, any other as its values. A name that a row has twice keeps its last value, as in
    the dict of `to_table`."""
    if not values:
        return []
    keys = list(map(id, names))
    distinct = set(keys)
    if len(distinct) > FEW_SHAPES:
        return [_wide_block(positions, names, values, keys, distinct)]
    if len(distinct) == 1:
        groups = [(names[0], positions, values)]
    else:
        groups = []
        for key in distinct:
            mask = list(map(key.__eq__, keys))
            groups.append((names[keys.index(key)], list(compress(positions, mask)), list(compress(values, mask))))
    return [
        _block(at, len(rows), row_names, [list(map(itemgetter(k), rows)) for k in range(len(row_names))])
        for row_names, at, rows in groups
    ]


#: Above this many sets of columns in a chunk, its rows make one block over all their columns
#: (a row's missing ones NaN, as in the frame): a block per set would cost a pass per set.
FEW_SHAPES = 8


def _wide_block(
    positions: Sequence[int], names: list[tuple[str, ...]], values: list[tuple[Any, ...]], keys: list[int], distinct: set[int]
) -> Block:
    from operator import add, call

    shapes = {key: names[keys.index(key)] for key in distinct}
    # At least id, module, class and created: an itemgetter of several indexes gives tuples.
    union = tuple(dict.fromkeys(name for row_names in shapes.values() for name in row_names))
    getters = {}
    for key, row_names in shapes.items():
        at = {name: k for k, name in enumerate(row_names)}  # of a name given twice, the last
        getters[key] = itemgetter(*[at.get(name, len(row_names)) for name in union])
    # getters[id(names)](row + (nan,)) for each row, then by column.
    rows = list(map(call, map(getters.__getitem__, keys), map(add, values, repeat((float("nan"),)))))
    return _block(positions, len(rows), union, [list(column) for column in zip(*rows)])


def _block(positions: Sequence[int], count: int, names: tuple[str, ...], columns: list[Sequence[Any]]) -> Block:
    """A block of `count` rows with `names`, from their `columns` (of a name that comes twice,
    the last, as in the dict of a row)."""
    last = {name: k for k, name in enumerate(names)}
    return positions, count, {name: _typed(columns[k]) for name, k in last.items()}


def _typed(column: Sequence[Any]) -> tuple[str, Any]:
    import numpy

    kinds = set(map(type, column))
    if kinds == {int}:
        try:
            return INT, numpy.array(column, dtype=numpy.int64)
        except OverflowError:  # beyond int64: pandas makes these objects (or uint64)
            return VALUES, column
    if kinds == {float}:
        return FLOAT, numpy.array(column, dtype=numpy.float64)
    return VALUES, column


def frame_columns(blocks: list[Block], columns: list[str]) -> tuple[Any, dict[str, Any], list[tuple[str, list[Any]]]]:
    """The positions of the rows of `blocks` (in the order of the blocks), the columns that are
    arrays (ints on every row: int64; ints, floats or missing values: float64, as pandas infers
    them), and the others as lists of values (missing: NaN), for pandas to infer."""
    import numpy

    order = numpy.concatenate([numpy.asarray(at, dtype=numpy.int64) for at, _, _ in blocks])
    absent = ("", None)
    arrays: dict[str, Any] = {}
    others: list[tuple[str, list[Any]]] = []
    for name in columns:
        pieces = [(columns_of.get(name, absent), count) for _, count, columns_of in blocks]
        kinds = {kind for (kind, _), _ in pieces}
        if kinds == {INT}:
            arrays[name] = numpy.concatenate([data for (_, data), _ in pieces])
        elif kinds <= {INT, FLOAT, ""}:
            arrays[name] = numpy.concatenate([
                numpy.full(count, numpy.nan) if not kind else data.astype(numpy.float64, copy=False)
                for (kind, data), count in pieces
            ])
        else:
            values: list[Any] = []
            for (kind, data), count in pieces:
                if not kind:
                    values += repeat(float("nan"), count)
                else:
                    values += data if kind == VALUES else data.tolist()
            others.append((name, values))
    return order, arrays, others


def _pack_blocks(blocks: list[Block]) -> bytes:
    return marshal.dumps([
        (list(at), count, {name: (kind, data.tobytes() if kind != VALUES else data) for name, (kind, data) in columns.items()})
        for at, count, columns in blocks
    ])


def _unpack_blocks(data: bytes) -> list[Block]:
    import numpy

    types = {INT: numpy.int64, FLOAT: numpy.float64}
    return [
        (at, count, {name: (kind, numpy.frombuffer(raw, dtype=types[kind]) if kind != VALUES else raw)
                     for name, (kind, raw) in columns.items()})
        for at, count, columns in marshal.loads(data)
    ]
