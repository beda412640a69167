"""The SQLite index: one file, no server; the default, at ``<storage>/.retain/index.sqlite``.

Schema (version 1)::

    classes(class, module, qualname, kind)            one row per class (ids never reused)
    interfaces(row, id, class, created, config, canonical, summary)
    config_values(class, key, value, row)             every config leaf, by dotted key

`config_values.value` is typed so that SQL comparisons agree with Python's: numbers as
INTEGER/REAL (``1 == 1.0``), strings as TEXT, None as the empty BLOB ``x''``, booleans as the
one-byte BLOBs ``x'00'``/``x'01'`` (so ``True != 1``), and lists, empty dicts and interface
references as BLOBs of their canonical JSON. SQLite orders numbers < TEXT < BLOB, so every
range is bounded to its type: ``> 5`` is ``value > 5 AND value < ''``. `config_values` is a
WITHOUT ROWID table whose primary key (class, key, value, row) is the index: equality and range
filters are index seeks, and a commit writes one B-tree for its config, not two.

Concurrency: WAL mode (readers never block the writer), ``BEGIN IMMEDIATE`` for every write
(no lock upgrades that could deadlock), a busy timeout, and retries on top. A process keeps its
connection; after a fork, or when the file was replaced (a rebuild of a corrupt index), it
reconnects.
"""

from __future__ import annotations

import os
import time

from .._errors import IndexDatabaseError
from .base import Index, config_leaves

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any, TypeVar

    from ..query import Condition, Filter, Query
    from .base import IndexEntry, IndexRow

    T = TypeVar("T")

__all__ = ["SCHEMA_VERSION", "SqliteIndex", "filesystem_type"]

#: The newest schema this code writes; a database with a higher `PRAGMA user_version` is
#: refused (delete it and rebuild).
SCHEMA_VERSION = 1

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
]

#: File system types on which SQLite's locking is unreliable (so the index could corrupt).
NETWORK_FILE_SYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "lustre", "gpfs", "beegfs",
        "panfs", "orangefs", "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph", "fuse.cephfs",
        "9p", "fuse.sshfs", "sshfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.rclone", "fuse.juicefs",
        "fuse.davfs2", "davfs", "wekafs", "fuse.weka",
    }
)
MOUNTS_FILE = "/proc/mounts"

INODE_CHECK_S = 0.5
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
_CORRUPT_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
_ROW_COLUMNS = "i.id, c.module, c.qualname, c.kind, i.created, i.config, i.summary"
_COLUMN_SQL = {"id": "i.id", "created": "i.created", "module": "c.module", "class": "c.qualname", "kind": "c.kind"}


_instances: Any = None


def _track_for_fork(index: SqliteIndex) -> None:
    """After a fork, the child gets fresh locks (a thread of the parent may have held one)
    and no connection (SQLite connections must not cross a fork)."""
    global _instances
    if _instances is None:
        import weakref

        _instances = weakref.WeakSet()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork)
    _instances.add(index)


def _after_fork() -> None:
    import threading

    for index in list(_instances):
        index._lock = threading.RLock()
        index._conn = None  # not closed: it belongs to the parent
        index._class_ids.clear()
        index._ids = None


def filesystem_type(path: str, mounts_file: str = MOUNTS_FILE) -> str | None:
    """The type of the file system that holds `path` (from /proc/mounts), or None if unknown."""
    try:
        with open(mounts_file, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, kind = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape_mount(fields[1])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def _unescape_mount(text: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes (\040 ...).
    if "\\" not in text:
        return text
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


class SqliteIndex(Index):
    """The index in a SQLite file.

    Args:
        path: the database file; created (with its directory) on first use.
        timeout: seconds to wait for another process's write before giving up.
        allow_network_fs: use the file even on a network file system (NFS, SMB, Lustre...),
            where SQLite's locking is unreliable. Only safe when a single machine uses the
            storage. Default: ``RETAIN_INDEX_ALLOW_NETWORK_FS=1`` in the environment.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0, allow_network_fs: bool | None = None) -> None:
        import threading

        self.path = os.path.abspath(os.fspath(path))
        self.timeout = timeout
        self.allow_network_fs = allow_network_fs
        self._lock = threading.RLock()
        _track_for_fork(self)
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._inode = 0
        self._inode_checked = 0.0
        self._class_ids: dict[tuple[str, str, str], int] = {}
        #: Every id in the index as of `_ids_version` (``PRAGMA data_version`` of the
        #: connection, which changes when another connection commits), kept up to date with
        #: this instance's own writes: a storage scan then lists the storage without reading
        #: every id from the database. None: read them again.
        self._ids: set[str] | None = None
        self._ids_version = 0
        self._checked_fs = False

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    # -- connection ---------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is not None and self._pid == os.getpid():
            # Whether the file was replaced (another process rebuilt a corrupt index) is checked
            # at most every INODE_CHECK_S: writes in between go to the old file and are lost,
            # which the journal repairs.
            now = time.monotonic()
            if now < self._inode_checked + INODE_CHECK_S:
                return conn
            try:
                inode = os.stat(self.path).st_ino
            except FileNotFoundError:
                inode = -1
            if inode == self._inode:
                self._inode_checked = now
                return conn
        # First use, a fork, or the file was deleted or replaced (a rebuild): reconnect.
        self._drop_connection(close=self._pid == os.getpid())
        return self._open()

    def _drop_connection(self, close: bool = True) -> None:
        conn, self._conn = self._conn, None
        self._class_ids.clear()
        self._ids = None  # data_version is per connection
        if conn is not None and close:
            try:
                conn.close()
            except Exception:
                pass

    def _open(self) -> sqlite3.Connection:
        import sqlite3

        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise IndexDatabaseError(f"cannot create the index directory {directory}: {exc}") from exc
        if not self._checked_fs:
            self._check_filesystem(directory)
            self._checked_fs = True
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
        try:
            self._retry(lambda: self._setup(conn))
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._pid = os.getpid()
        self._inode = os.stat(self.path).st_ino
        self._inode_checked = time.monotonic()
        return conn

    def _check_filesystem(self, directory: str) -> None:
        kind = filesystem_type(directory)
        if kind is None or kind not in NETWORK_FILE_SYSTEMS:
            return
        allowed = self.allow_network_fs
        if allowed is None:
            allowed = os.environ.get("RETAIN_INDEX_ALLOW_NETWORK_FS", "").strip().lower() in ("1", "true", "yes")
        if not allowed:
            raise IndexDatabaseError(
                f"the index {self.path} would be on a {kind} file system, where SQLite's file "
                "locking is unreliable: processes on several machines would corrupt it. Use a "
                "PostgreSQL index for storages shared between machines (RETAIN_INDEX="
                "postgresql://user@host/db, see docs/scale-out.md), or, if only one machine uses "
                "this storage, set "
                "RETAIN_INDEX_ALLOW_NETWORK_FS=1 (or SqliteIndex(path, allow_network_fs=True))"
            )

    def _setup(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise IndexDatabaseError(f"the index {self.path} cannot use WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at checkpoints, never corrupt
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise self._newer(version)
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            if version > SCHEMA_VERSION:
                raise self._newer(version)
            from .._version import __version__

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

    def _newer(self, version: int) -> IndexDatabaseError:
        return IndexDatabaseError(
            f"the index {self.path} has schema version {version}, newer than this retain "
            f"understands ({SCHEMA_VERSION}); it was written by a newer retain. Upgrade retain, "
            "or delete the file and run retain.index.rebuild(): the index is a cache of the "
            "storage, nothing is lost"
        )

    def _error(self, exc: Exception, doing: str) -> IndexDatabaseError:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        text = str(exc)
        if code in _CORRUPT_CODES or "not a database" in text or "malformed" in text:
            return IndexDatabaseError(
                f"the index {self.path} is corrupt ({text}); delete it (with its -wal and -shm "
                "files) or run retain.index.rebuild(), which replaces it: the index is a cache of "
                "the storage, nothing is lost"
            )
        if code in _BUSY_CODES or "locked" in text:
            return IndexDatabaseError(
                f"the index {self.path} stayed locked by another process for more than "
                f"{self.timeout:g} s ({doing}); try again, or raise SqliteIndex(timeout=...)"
            )
        return IndexDatabaseError(f"the index {self.path} failed ({doing}): {text}")

    def _retry(self, work: Callable[[], T]) -> T:
        import sqlite3

        deadline = time.monotonic() + self.timeout
        delay = 0.001
        reconnected = False
        while True:
            try:
                return work()
            except sqlite3.Error as exc:
                code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
                busy = isinstance(exc, sqlite3.OperationalError) and (
                    code in _BUSY_CODES or "locked" in str(exc)
                )
                if busy and time.monotonic() + delay <= deadline:
                    # The busy handler covers most waits; WAL recovery and some lock races
                    # return BUSY at once, so wait and try again until the timeout.
                    time.sleep(delay)
                    delay = min(delay * 2, 0.1)
                    continue
                if not busy and not reconnected and self._replaced():
                    # The file was deleted or replaced under this connection (a rebuild in
                    # another process, or by hand): reconnect once and try again.
                    reconnected = True
                    self._drop_connection(close=self._pid == os.getpid())
                    continue
                raise self._error(exc, "waiting for a lock" if busy else "query") from exc

    def _replaced(self) -> bool:
        if self._conn is None:
            return False
        try:
            return os.stat(self.path).st_ino != self._inode
        except FileNotFoundError:
            return True

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return self._retry(lambda: work(self._connection()))

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def transaction() -> T:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                self._class_ids.clear()  # it may hold numbers of classes rolled back now
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        with self._lock:
            return self._retry(transaction)

    def close(self) -> None:
        with self._lock:
            self._drop_connection(close=self._pid == os.getpid())

    def reset(self) -> None:
        with self._lock:
            self._drop_connection(close=self._pid == os.getpid())
            for suffix in ("", "-wal", "-shm", "-journal"):
                try:
                    os.unlink(self.path + suffix)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise IndexDatabaseError(f"cannot delete {self.path + suffix}: {exc}") from exc
            self._connection()

    # -- classes ------------------------------------------------------------------------------

    def _class_id(self, conn: sqlite3.Connection, module: str, qualname: str, kind: str) -> int:
        key = (module, qualname, kind)
        found = self._class_ids.get(key)
        if found is None:
            conn.execute(
                "INSERT OR IGNORE INTO classes (module, qualname, kind) VALUES (?, ?, ?)", key
            )
            found = conn.execute(
                "SELECT class FROM classes WHERE module = ? AND qualname = ? AND kind = ?", key
            ).fetchone()[0]
            # Class numbers are never reused (rebuild keeps the table), so caching is safe.
            self._class_ids[key] = found
        return found

    def _class_ids_for(self, conn: sqlite3.Connection, query: Query) -> list[int] | None:
        """The class numbers `query` covers; None for all."""
        if query.classes is None and query.kind is None:
            return None
        sql = "SELECT class, module, qualname, kind FROM classes"
        rows = conn.execute(sql).fetchall()
        wanted = None if query.classes is None else set(query.classes)
        return [
            row[0]
            for row in rows
            if (wanted is None or (row[1], row[2]) in wanted) and (query.kind is None or row[3] == query.kind)
        ]

    # -- writes -------------------------------------------------------------------------------

    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        prepared = [_prepare(entry) for entry in entries]

        def work(conn: sqlite3.Connection) -> list[str]:
            insert = (
                "INSERT OR IGNORE INTO interfaces (id, class, created, config, canonical, summary)"
                " VALUES (?, ?, ?, ?, ?, ?)"
            )
            added = []
            for entry, config, canonical, summary, leaves in prepared:
                klass = self._class_id(conn, entry.module, entry.qualname, entry.kind)
                cursor = conn.execute(insert, (entry.id, klass, entry.created, config, canonical, summary))
                if cursor.rowcount == 1:
                    added.append(entry.id)
                    if leaves:
                        row = cursor.lastrowid
                        args: list[Any] = []
                        for key, value in leaves:
                            args += (klass, key, value, row)
                        conn.execute(_insert_values(len(leaves)), args)
                elif summary is not None:
                    conn.execute("UPDATE interfaces SET summary = ? WHERE id = ?", (summary, entry.id))
            return added

        with self._lock:
            added = self._write(work)
            if self._ids is not None:
                self._ids.update(added)

    def remove(self, ids: Iterable[str]) -> None:
        wanted = list(ids)
        chunks = _chunks(wanted, 500)
        if not chunks:
            return

        def work(conn: sqlite3.Connection) -> None:
            from json import loads

            for chunk in chunks:
                marks = ",".join("?" * len(chunk))
                found = conn.execute(
                    f"SELECT row, class, config FROM interfaces WHERE id IN ({marks})", chunk
                ).fetchall()
                # The stored config gives back the leaves that were inserted: delete by key.
                conn.executemany(
                    "DELETE FROM config_values WHERE class = ? AND key = ? AND value = ? AND row = ?",
                    [
                        (klass, key, sql_value(value), row)
                        for row, klass, config in found
                        for key, value in config_leaves(loads(config))
                    ],
                )
                conn.execute(f"DELETE FROM interfaces WHERE id IN ({marks})", chunk)

        with self._lock:
            self._write(work)
            if self._ids is not None:
                self._ids.difference_update(wanted)

    def replace_all(self, entries: Iterable[IndexEntry], meta: Mapping[str, str]) -> int:
        def work(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM config_values")
            conn.execute("DELETE FROM interfaces")
            # The secondary indexes of `interfaces` are built once, after the rows (one sort
            # instead of a B-tree insert per row), in the same transaction: readers still see
            # the old contents or the new. Taken from the schema, so migrations need not care.
            indexes = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                " AND tbl_name = 'interfaces' AND sql IS NOT NULL"
            ).fetchall()
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            bulk = _BulkInsert(conn)
            number = 0
            class_ids = self._class_ids
            # Consumed as it comes (rebuild reads storage lazily), written in chunks.
            for entry in entries:
                number += 1
                klass = class_ids.get((entry.module, entry.qualname, entry.kind))
                if klass is None:
                    klass = self._class_id(conn, entry.module, entry.qualname, entry.kind)
                bulk.add(entry, number, klass)
            bulk.flush()
            for _, sql in indexes:
                conn.execute(sql)
            _set_meta(conn, meta)
            return number

        with self._lock:
            count = self._write(work)
            self._ids = None  # rebuilt: read again on next use
        try:
            self._read(lambda conn: conn.execute("PRAGMA optimize"))
        except IndexDatabaseError:
            pass
        return count

    def get_meta(self) -> dict[str, str]:
        return self._read(lambda conn: dict(conn.execute("SELECT key, value FROM meta").fetchall()))

    def set_meta(self, values: Mapping[str, str]) -> None:
        self._write(lambda conn: _set_meta(conn, values))

    # -- reads --------------------------------------------------------------------------------

    def select(self, query: Query) -> list[IndexRow]:
        def work(conn: sqlite3.Connection) -> list[IndexRow]:
            compiled = self._compile(conn, query)
            if compiled is None:
                return []
            sql, args = compiled
            return conn.execute(
                f"SELECT {_ROW_COLUMNS} {sql} ORDER BY i.created DESC, i.row DESC", args
            ).fetchall()

        return self._read(work)

    def count(self, query: Query) -> int:
        def work(conn: sqlite3.Connection) -> int:
            compiled = self._compile(conn, query)
            if compiled is None:
                return 0
            sql, args = compiled
            return int(conn.execute(f"SELECT count(*) {sql}", args).fetchone()[0])

        return self._read(work)

    def ids(self) -> set[str]:
        def work(conn: sqlite3.Connection) -> set[str]:
            # The version first: a commit by another connection after it makes the next call
            # read again, even if this read already saw it.
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if self._ids is None or version != self._ids_version:
                self._ids = {row[0] for row in conn.execute("SELECT id FROM interfaces")}
                self._ids_version = version
            return set(self._ids)

        return self._read(work)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"``, or what is wrong."""
        return self._read(
            lambda conn: "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
        )

    def _compile(self, conn: sqlite3.Connection, query: Query) -> tuple[str, list[Any]] | None:
        """The FROM/WHERE clause of `query` and its arguments; None if nothing can match."""
        classes = self._class_ids_for(conn, query)
        if classes is not None and not classes:
            return None
        where: list[str] = []
        args: list[Any] = []
        config = [c for c in query.conditions if c.field.source == "config"]
        scope = classes if classes is not None else [row[0] for row in conn.execute("SELECT class FROM classes")]
        scope_sql = ",".join("?" * len(scope))
        source = "interfaces i"
        if config:
            # Drive from the first config condition (an index seek), join the rows, then probe
            # the other conditions by row.
            first, *rest = config
            test, values = _value_test(first.filter, "v.value")
            source = "config_values v CROSS JOIN interfaces i ON i.row = v.row"
            where.append(f"v.class IN ({scope_sql}) AND v.key = ? AND {test}")
            args += [*scope, first.field.path, *values]
            for condition in rest:
                test, values = _value_test(condition.filter, "w.value")
                where.append(
                    f"i.row IN (SELECT w.row FROM config_values w WHERE w.class IN ({scope_sql})"
                    f" AND w.key = ? AND {test})"
                )
                args += [*scope, condition.field.path, *values]
        elif classes is not None:
            where.append(f"i.class IN ({scope_sql})")
            args += scope
        for condition in query.conditions:
            if condition.field.source == "column":
                test, values = _value_test(condition.filter, _COLUMN_SQL[condition.field.path])
                where.append(test)
                args += values
        sql = f"FROM {source} JOIN classes c ON c.class = i.class"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return sql, args


def _set_meta(conn: sqlite3.Connection, values: Mapping[str, str]) -> None:
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))


class _BulkInsert:
    """Rows for `interfaces` and `config_values`, written many per statement: a statement of
    a few hundred rows costs a third of binding them one by one with `executemany`."""

    #: Parameters per statement (SQLite has allowed 32,766 since 3.32; older builds 999).
    PARAMETERS = 999
    #: Interfaces accumulated before they are written.
    CHUNK = 2000

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.rows: list[Any] = []  # flat: 7 values per interface
        self.values: list[Any] = []  # flat: 4 values per config leaf

    def add(self, entry: IndexEntry, number: int, klass: int) -> None:
        config, canonical, summary = _texts(entry)
        self.rows += (number, entry.id, klass, entry.created, config, canonical, summary)
        values = self.values
        leaves = entry.leaves if entry.leaves is not None else config_leaves(entry.config)
        for key, value in leaves:
            kind = type(value)
            if not (kind is str or kind is float or (kind is int and -(2**63) <= value < 2**63)):
                value = sql_value(value)
            values += (klass, key, value, number)
        if len(self.rows) >= 7 * self.CHUNK:
            self.flush()

    def flush(self) -> None:
        _insert_flat(self.conn, _INSERT_ROWS, 7, self.rows)
        # OR IGNORE: keys that collide once dotted ({"a.b": 1, "a": {"b": 1}}) give one leaf.
        _insert_flat(self.conn, _INSERT_VALUES, 4, self.values)
        self.rows, self.values = [], []


_INSERT_ROWS = "INSERT INTO interfaces (row, id, class, created, config, canonical, summary) VALUES "
_INSERT_VALUES = "INSERT OR IGNORE INTO config_values (class, key, value, row) VALUES "
_statements: dict[tuple[str, int], str] = {}


def _insert_flat(conn: sqlite3.Connection, head: str, width: int, flat: list[Any]) -> None:
    """Insert `flat` (`width` values per row) with statements of many rows each."""
    per = _BulkInsert.PARAMETERS // width * width
    for start in range(0, len(flat), per):
        part = flat[start:start + per]
        count = len(part) // width
        sql = _statements.get((head, count))
        if sql is None:
            marks = "(" + ",".join("?" * width) + ")"
            sql = _statements[head, count] = head + ",".join([marks] * count)
        conn.execute(sql, part)


_insert_sql: dict[int, str] = {}


def _insert_values(count: int) -> str:
    # One statement per commit rather than executemany: a third of the time for a few rows.
    sql = _insert_sql.get(count)
    if sql is None:
        sql = _insert_sql[count] = (
            "INSERT OR IGNORE INTO config_values (class, key, value, row) VALUES "
            + ",".join(["(?,?,?,?)"] * count)
        )
    return sql


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


_dumps: Any = None
_canonical: Any = None


def _prepare(entry: IndexEntry) -> tuple[IndexEntry, str, str, str | None, list[tuple[str, Any]]]:
    leaves = entry.leaves if entry.leaves is not None else config_leaves(entry.config)
    return entry, *_texts(entry), [(key, sql_value(value)) for key, value in leaves]


def _texts(entry: IndexEntry) -> tuple[str, str, str | None]:
    """The config, canonical config and summary of `entry` as stored (JSON text)."""
    global _dumps
    if _dumps is None:
        import json

        _dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    summary = entry.summary_text if entry.summary is None else _dumps(entry.summary)
    config = entry.config_text if entry.config_text is not None else _dumps(entry.config)
    canonical = entry.canonical_text if entry.canonical_text is not None else _dumps(entry.canonical)
    return config, canonical, summary


_TRUE = b"\x01"
_FALSE = b"\x00"
_NONE = b""


def sql_value(value: Any) -> Any:
    """The stored form of a config leaf (see the module docstring)."""
    kind = type(value)
    if kind is str or kind is float:
        return value
    if value is None:
        return _NONE
    if kind is int:
        return value if -(2**63) <= value < 2**63 else float(value)
    if kind is bool:
        return _TRUE if value else _FALSE
    global _canonical
    if _canonical is None:
        import json

        _canonical = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode
    from ..element import normalize_json

    return _canonical(normalize_json(value)).encode("utf-8")


def _value_test(filter: Filter, column: str) -> tuple[str, list[Any]]:
    """SQL that is true where `column` passes `filter`, and its arguments."""
    op, value = filter.op, filter.value
    if op == "eq":
        return f"{column} = ?", [sql_value(value)]
    if op == "in":
        if not value:
            return "0", []
        return f"{column} IN ({','.join('?' * len(value))})", [sql_value(v) for v in value]
    if op == "between":
        low, high = value
        return f"{column} >= ? AND {column} <= ?", [sql_value(low), sql_value(high)]
    symbol = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
    text = type(value) is str
    if op in ("lt", "le"):
        # Numbers sort below text and text below blobs: bound the range to the bound's type.
        return (f"{column} {symbol} ? AND {column} >= ''", [value]) if text else (f"{column} {symbol} ?", [sql_value(value)])
    upper = "x''" if text else "''"
    return f"{column} {symbol} ? AND {column} < {upper}", [sql_value(value)]
