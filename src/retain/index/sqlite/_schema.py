"""The tables of the SQLite index, their migrations, and the settings of each connection.

The schema version is ``PRAGMA user_version``; each migration applied is also recorded in
`migrations`. A database with a newer version is refused (delete it and rebuild).
"""

from __future__ import annotations

import time

from ..._errors import IndexDatabaseError
from ..._version import __version__
from .._sql import newer_schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3

#: The newest schema this code writes; a database with a higher `PRAGMA user_version` is
#: refused (delete it and rebuild).
SCHEMA_VERSION = 4
#: How much of the index file a connection reads through a memory map.
MMAP_BYTES = 2**31

#: (version, statements): applied in order, each recorded in `migrations`; never edit a
#: published one, append a new version.
_MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
            "CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL,"
            " retain TEXT NOT NULL)",
            "CREATE TABLE classes (class INTEGER PRIMARY KEY, module TEXT NOT NULL,"
            " qualname TEXT NOT NULL, kind TEXT NOT NULL, UNIQUE (module, qualname, kind))",
            "CREATE TABLE interfaces (row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
            " class INTEGER NOT NULL, created TEXT NOT NULL, config TEXT NOT NULL,"
            " canonical TEXT NOT NULL, summary TEXT)",
            "CREATE INDEX interfaces_by_class ON interfaces (class, created)",
            "CREATE TABLE config_values (class INTEGER NOT NULL, key TEXT NOT NULL,"
            " value NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (class, key, value, row))"
            " WITHOUT ROWID",
        ],
    ),
    # The last value of each metric (`Component.log_metrics`), as JSON text.
    (2, ["ALTER TABLE interfaces ADD COLUMN metrics TEXT"]),
    # Tags (`Interface.tag`), by id: they change after commit, apart from the row.
    (
        3,
        [
            "CREATE TABLE tags (tag TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (tag, id)) WITHOUT ROWID",
            "CREATE INDEX tags_by_id ON tags (id)",
        ],
    ),
    # Indexes in the order of every listing (created, then row; newest first read backwards)
    # holding the id and class too: a collection of a million is read from the index alone,
    # neither sorted nor looked up row by row.
    (
        4,
        [
            "DROP INDEX interfaces_by_class",
            "CREATE INDEX interfaces_by_class ON interfaces (class, created, row, id)",
            "CREATE INDEX interfaces_by_created ON interfaces (created, row, id, class)",
        ],
    ),
]


def setup(conn: sqlite3.Connection, path: str) -> None:
    """Put a new connection to the index at `path` in WAL mode, and bring the schema up to
    date (or refuse a newer one)."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise IndexDatabaseError(f"the index {path} cannot use WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at checkpoints, never corrupt
    # Reads through a memory map of the file (up to MMAP_BYTES), not a read() and a copy per
    # page: half the time of a `where` matching 10,000 of 1,000,000 (row lookups all over the
    # table) and 2/3 of a pass over every row. Writes still go through the WAL.
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}").fetchall()
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise newer(path, version)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
        if version > SCHEMA_VERSION:
            raise newer(path, version)
        for number, statements in _MIGRATIONS:
            if number <= version:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO migrations (version, applied, retain) VALUES (?, ?, ?)",
                (number, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), __version__),
            )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def newer(path: str, version: int) -> IndexDatabaseError:
    """The error for an index of a newer `version` than this code writes."""
    return newer_schema(
        f"the index {path}", version, SCHEMA_VERSION, "delete the file and run retain.index.rebuild()"
    )
