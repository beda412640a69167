"""What the SQLite and PostgreSQL backends share: the columns of an index row, the JSON texts
of an entry, the class and column filters of a query, the paging of a scan, the reset of
instances after a fork, and the error for a schema newer than this code.
"""

from __future__ import annotations

import os

from .._errors import IndexDatabaseError
from ..element import normalize_json
from ..identity import canonical_json as identity_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any

    from ..query import Filter, Query
    from ._entry import IndexEntry

    #: SQL that is true where a column passes a filter, and its arguments.
    ColumnTest = Callable[[Filter, str], tuple[str, list[Any]]]

#: The columns of an `IndexRow`, from ``interfaces i`` joined with ``classes c``.
ROW_COLUMNS = "i.id, c.module, c.qualname, c.kind, i.created, i.config, i.summary, i.metrics"
#: The columns of a `TableRow`, from ``interfaces i`` alone.
TABLE_COLUMNS = "i.id, i.created, i.config, i.summary, i.metrics"
#: The SQL of each column a query condition can name.
COLUMN_SQL = {"id": "i.id", "created": "i.created", "module": "c.module", "class": "c.qualname", "kind": "c.kind"}


class ForkTracker:
    """The live instances of a backend, each passed to `reset` in a forked child; the fork hook
    is registered when the first instance is added."""

    def __init__(self, reset: Callable[[Any], None]) -> None:
        self.reset = reset
        self.instances: Any = None

    def add(self, index: object) -> None:
        if self.instances is None:
            import weakref

            self.instances = weakref.WeakSet()
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=self.after_fork)
        self.instances.add(index)

    def after_fork(self) -> None:
        for index in list(self.instances):
            self.reset(index)


_dumps: Any = None


def texts(entry: IndexEntry) -> tuple[str, str, str | None, str | None]:
    """The config, canonical config, summary and last metric values of `entry` as stored
    (JSON text)."""
    global _dumps
    if _dumps is None:
        import json

        _dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    summary = entry.summary_text if entry.summary is None else _dumps(entry.summary)
    config = entry.config_text if entry.config_text is not None else _dumps(entry.config)
    canonical = entry.canonical_text if entry.canonical_text is not None else _dumps(entry.canonical)
    metrics = entry.metrics_text if entry.metrics is None else _dumps(entry.metrics)
    return config, canonical, summary, metrics


def canonical_json(value: Any) -> str:
    """A config leaf that is no number, string, boolean or None (a list, an empty dict, an
    interface reference) as canonical JSON text: equal values, equal texts (identity's
    spelling, numbers normalised as in the canonical configuration)."""
    return identity_json(normalize_json(value))


def covered_classes(query: Query, read: Callable[[], Iterable[Sequence[Any]]]) -> list[int] | None:
    """The class numbers `query` covers, among the rows (class, module, qualname, kind) that
    `read` returns (called only when `query` names classes or a kind); None for all."""
    if query.classes is None and query.kind is None:
        return None
    rows = read()
    wanted = None if query.classes is None else set(query.classes)
    return [
        int(row[0])
        for row in rows
        if (wanted is None or (row[1], row[2]) in wanted) and (query.kind is None or row[3] == query.kind)
    ]


def from_where(
    source: str, where: list[str], args: list[Any], query: Query, column_test: ColumnTest,
    *, tags: str = "tags", mark: str = "?",
) -> tuple[str, list[Any]]:
    """``FROM source WHERE ...`` and its arguments: the tests in `where` (arguments in `args`),
    then one per column condition of `query`, by `column_test`, and one per tag a tag
    condition names (`tags`: the table of tags, `mark`: the parameter mark)."""
    for condition in query.conditions:
        if condition.field.source == "column":
            test, values = column_test(condition.filter, COLUMN_SQL[condition.field.path])
            where.append(test)
            args += values
        elif condition.field.source == "tags":
            for name in condition.filter.value:
                where.append(f"i.id IN (SELECT t.id FROM {tags} t WHERE t.tag = {mark})")
                args.append(name)
    sql = f"FROM {source}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql, args


def by_row_ranges(
    fetch: Callable[[int], list[Any]], after: int, limit: int
) -> Iterator[tuple[list[int], list[Any]]]:
    """The rows of a scan, in chunks of (row numbers, rows): `fetch(after)` reads the next
    `limit` rows numbered above `after` (its first column), one short statement each, so no
    transaction stays open between chunks."""
    while True:
        chunk = fetch(after)
        if not chunk:
            return
        after = chunk[-1][0]
        yield [row[0] for row in chunk], [row[1:] for row in chunk]
        if len(chunk) < limit:
            return


def newer_schema(index: str, version: int, understood: int, remedy: str) -> IndexDatabaseError:
    """The error for `index` (its description), whose schema `version` is newer than the one
    this code `understood`; `remedy` is what to do instead of upgrading retain."""
    return IndexDatabaseError(
        f"{index} has schema version {version}, newer than this retain understands "
        f"({understood}); it was written by a newer retain. Upgrade retain, or {remedy}: the "
        "index is a cache of the storage, nothing is lost"
    )
