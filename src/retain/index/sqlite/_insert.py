"""The statements that write rows to the SQLite index: many rows per statement, whether the
few of the commits in one batch of the index writer or a rebuild's many (`BulkInsert`)."""

from __future__ import annotations

from .._sql import texts
from ._query import sql_value
from .._entry import config_leaves

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from typing import Any

    from .._entry import IndexEntry


class BulkInsert:
    """Rows for `interfaces` and `config_values`, written many per statement: a statement of
    a few hundred rows costs a third of binding them one by one with `executemany`."""

    #: Parameters per statement (SQLite has allowed 32,766 since 3.32; older builds 999).
    PARAMETERS = 999
    #: Interfaces accumulated before they are written.
    CHUNK = 2000

    def __init__(self, conn: sqlite3.Connection, staged: bool = False) -> None:
        self.conn = conn
        self.rows: list[Any] = []  # flat: 8 values per interface
        self.values: list[Any] = []  # flat: 4 values per config leaf
        #: Config leaves written to a temporary table first, then to `config_values` in the
        #: order of its key (`finish`): a B-tree filled in order, not at random places.
        self.staged = staged
        if staged:
            conn.execute("CREATE TEMP TABLE staged_values (class, key, value, row)")

    def add(self, entry: IndexEntry, number: int, klass: int) -> None:
        config, canonical, summary, metrics = texts(entry)
        self.rows += (number, entry.id, klass, entry.created, config, canonical, summary, metrics)
        values = self.values
        leaves = entry.leaves if entry.leaves is not None else config_leaves(entry.config)
        for key, value in leaves:
            kind = type(value)
            if not (kind is str or kind is float or (kind is int and -(2**63) <= value < 2**63)):
                value = sql_value(value)
            values += (klass, key, value, number)
        if len(self.rows) >= 8 * self.CHUNK:
            self.flush()

    def flush(self) -> None:
        _insert_flat(self.conn, _INSERT_ROWS, 8, self.rows)
        # OR IGNORE: keys that collide once dotted ({"a.b": 1, "a": {"b": 1}}) give one leaf.
        _insert_flat(self.conn, _INSERT_STAGED if self.staged else _INSERT_VALUES, 4, self.values)
        self.rows, self.values = [], []

    def finish(self) -> None:
        """Write what is left (and the staged leaves, sorted by SQLite within its memory
        bounds)."""
        self.flush()
        if self.staged:
            self.conn.execute(
                "INSERT OR IGNORE INTO config_values (class, key, value, row)"
                " SELECT class, key, value, row FROM temp.staged_values ORDER BY class, key, value, row"
            )
            self.conn.execute("DROP TABLE temp.staged_values")


_INSERT_ROWS = "INSERT INTO interfaces (row, id, class, created, config, canonical, summary, metrics) VALUES "
_INSERT_VALUES = "INSERT OR IGNORE INTO config_values (class, key, value, row) VALUES "
_INSERT_STAGED = "INSERT INTO temp.staged_values (class, key, value, row) VALUES "
_statements: dict[tuple[str, int], str] = {}


def _insert_flat(conn: sqlite3.Connection, head: str, width: int, flat: list[Any]) -> None:
    """Insert `flat` (`width` values per row) with statements of many rows each."""
    per = BulkInsert.PARAMETERS // width * width
    for start in range(0, len(flat), per):
        part = flat[start:start + per]
        count = len(part) // width
        sql = _statements.get((head, count))
        if sql is None:
            marks = "(" + ",".join("?" * width) + ")"
            sql = _statements[head, count] = head + ",".join([marks] * count)
        conn.execute(sql, part)
