"""The SQLite index: one file, no server; the default, at ``<storage>/.retain/index.sqlite``.

Schema (version 4)::

    classes(class, module, qualname, kind)            one row per class (ids never reused)
    interfaces(row, id, class, created, config, canonical, summary, metrics)
        indexed by (class, created, row, id) and (created, row, id, class): the order of
        listings (`listing`), read without sorting or reading rows
    config_values(class, key, value, row)             every config leaf, by dotted key
    tags(tag, id)                                     the tags of each id (`Interface.tag`)

`config_values.value` is typed so that SQL comparisons agree with Python's (see
`retain.index.sqlite._query`, which also builds the SQL of queries). `config_values` is a
WITHOUT ROWID table whose primary key (class, key, value, row) is the index: equality and range
filters are index seeks, and a commit writes one B-tree for its config, not two. Migrations:
`retain.index.sqlite._schema`.

Concurrency: WAL mode, ``BEGIN IMMEDIATE`` for every write, a busy timeout and retries; a
process keeps its connection and reconnects after a fork or when the file was replaced (see
`retain.index.sqlite._connection`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from operator import itemgetter

from ..._errors import IndexDatabaseError
from ..._log import logger
from .._sql import ROW_COLUMNS, TABLE_COLUMNS, by_row_ranges, covered_classes, texts
from ._connection import CHECKED_SUFFIX, SqliteConnection, filesystem_type
from ._insert import BulkInsert
from ._query import compile_query, rechecked, sql_value
from ._schema import MMAP_BYTES, SCHEMA_VERSION
from .._entry import config_leaves, filter_rows
from ..base import SCAN_CHUNK, Index, Listing
from ...query import Query

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
    from contextlib import AbstractContextManager
    from typing import Any

    from .._entry import IndexEntry, IndexRow, TableRow

__all__ = ["SCHEMA_VERSION", "SqliteIndex", "filesystem_type"]


#: From this size of the index file, a pass over whole classes (a listing, a count) reads it
#: without the memory map (`_unmapped_pass`).
UNMAPPED_PASS_BYTES = 64 * 2**20


class SqliteIndex(Index):
    """The index in a SQLite file.

    Args:
        path: the database file; created (with its directory) on first use.
        timeout: seconds to wait for another process's write before giving up.
        allow_network_fs: use the file even on a network file system (NFS, SMB, Lustre...),
            where SQLite's locking is unreliable. Only safe when a single machine uses the
            storage. Default: ``RETAIN_INDEX_ALLOW_NETWORK_FS=1`` in the environment.
    """

    supports_row_ranges = True

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0, allow_network_fs: bool | None = None) -> None:
        self._db = SqliteConnection(os.path.abspath(os.fspath(path)), timeout, allow_network_fs, self._forget)
        #: Class numbers by (module, qualname, kind), as read or written on this connection.
        self._class_ids: dict[tuple[str, str, str], int] = {}
        #: Every id in the index as of `_ids_version` (``PRAGMA data_version`` of the
        #: connection, which changes when another connection commits), kept up to date with
        #: this instance's own writes: a storage scan then lists the storage without reading
        #: every id from the database. None: read them again.
        self._ids: set[str] | None = None
        self._ids_version = 0

    @property
    def path(self) -> str:
        """The database file."""
        return self._db.path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _forget(self) -> None:
        """Drop what was cached from the connection (it was dropped, or a write rolled back)."""
        self._class_ids.clear()
        self._ids = None  # data_version is per connection

    def close(self) -> None:
        self._db.close()

    def reset(self) -> None:
        with self._db.lock:
            self._db.drop()
            for suffix in ("", "-wal", "-shm", "-journal", CHECKED_SUFFIX):
                try:
                    os.unlink(self.path + suffix)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise IndexDatabaseError(f"cannot delete {self.path + suffix}: {exc}") from exc
            self._db.connection()

    def _check_kept_tables(self, conn: sqlite3.Connection) -> None:
        """Raise `IndexDatabaseError` if the tables a rebuild keeps (the class numbers, the
        bookkeeping) are damaged: rows that disagree with their own unique index, or text
        that does not decode. The others are written anew."""
        for table in ("classes", "meta"):
            found = conn.execute(f"PRAGMA integrity_check({table})").fetchone()[0]
            if found != "ok":
                raise self._db.corrupt(f"table {table}: {str(found).splitlines()[-1]}")
        for row in conn.execute("SELECT class, module, qualname, kind FROM classes"):
            if not (type(row[0]) is int and all(type(text) is str and text for text in row[1:])):
                raise self._db.corrupt(f"table classes: row {row!r}")
        self._class_ids.clear()  # numbers cached before the file was checked

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
        sql = "SELECT class, module, qualname, kind FROM classes"
        return covered_classes(query, lambda: conn.execute(sql).fetchall())

    # -- writes -------------------------------------------------------------------------------

    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        # The new rows of a batch in a few statements of many rows each (`BulkInsert`, as a
        # rebuild writes them), numbered here: a statement per commit made the index writer's
        # thread take the GIL back at every one, and the committing thread waited for it at
        # each of its system calls.
        def work(conn: sqlite3.Connection) -> list[str]:
            present: set[str] = set()
            for chunk in _chunks(list({entry.id: None for entry in entries}), 500):
                present.update(row[0] for row in conn.execute(
                    f"SELECT id FROM interfaces WHERE id IN ({','.join('?' * len(chunk))})", chunk
                ))
            number = conn.execute("SELECT max(row) FROM interfaces").fetchone()[0] or 0
            bulk = BulkInsert(conn)
            added: list[str] = []
            again: list[IndexEntry] = []  # already there (or earlier in the batch): their updates
            tags: dict[str, Any] = {}
            for entry in entries:
                if entry.id in present:
                    again.append(entry)
                else:
                    number += 1
                    bulk.add(entry, number, self._class_id(conn, entry.module, entry.qualname, entry.kind))
                    present.add(entry.id)
                    added.append(entry.id)
                if entry.tags is not None:
                    tags[entry.id] = entry.tags
            bulk.flush()
            for entry in again:
                summary, metrics = texts(entry)[2:]
                if summary is not None:
                    conn.execute("UPDATE interfaces SET summary = ? WHERE id = ?", (summary, entry.id))
                if metrics is not None:
                    conn.execute("UPDATE interfaces SET metrics = ? WHERE id = ?", (metrics, entry.id))
            if tags:
                _write_tags(conn, tags)
            return added

        with self._db.lock:
            added = self._db.write(work)
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
                conn.execute(f"DELETE FROM tags WHERE id IN ({marks})", chunk)

        with self._db.lock:
            self._db.write(work)
            if self._ids is not None:
                self._ids.difference_update(wanted)

    def replace_all(self, entries: Iterable[IndexEntry], meta: Mapping[str, str]) -> int:
        def work(conn: sqlite3.Connection) -> int:
            # Without the memory map: the rebuild reads every page of the old contents (to
            # empty them) and of the new (to sort them), and each mapped page would stay in
            # this process (+530 MB at 1,000,000 results), for no gain in time.
            with _unmapped(conn):
                return fill(conn)

        def fill(conn: sqlite3.Connection) -> int:
            self._check_kept_tables(conn)
            conn.execute("DELETE FROM config_values")
            conn.execute("DELETE FROM interfaces")
            conn.execute("DELETE FROM tags")
            # The secondary indexes of `interfaces` are built once, after the rows (one sort
            # instead of a B-tree insert per row), in the same transaction: readers still see
            # the old contents or the new. Taken from the schema, so migrations need not care.
            indexes = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                " AND tbl_name = 'interfaces' AND sql IS NOT NULL"
            ).fetchall()
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            bulk = BulkInsert(conn, staged=True)
            tagged: dict[str, Collection[str]] = {}
            number = 0
            class_ids = self._class_ids
            # Consumed as it comes (rebuild reads storage lazily), written in chunks.
            for entry in entries:
                number += 1
                klass = class_ids.get((entry.module, entry.qualname, entry.kind))
                if klass is None:
                    klass = self._class_id(conn, entry.module, entry.qualname, entry.kind)
                bulk.add(entry, number, klass)
                if entry.tags:
                    tagged[entry.id] = entry.tags
            # The sorts that follow (staged leaves, then the indexes) run while the readers
            # have finished: SQLite's sorter may use the idle CPUs (6.3 -> 4.3 s for 6,000,000
            # leaves on 2 CPUs).
            with _pragma(conn, "threads", _sorter_threads(), 0):
                bulk.finish()
                _write_tags(conn, tagged)
                for _, sql in indexes:
                    conn.execute(sql)
            _set_meta(conn, meta)
            return number

        with self._db.lock:
            count = self._db.write(work)
            self._ids = None  # rebuilt: read again on next use
        try:
            self._db.read(lambda conn: conn.execute("PRAGMA optimize"))
        except IndexDatabaseError as exc:  # statistics only: the rebuild itself succeeded
            logger("retain.index").debug("PRAGMA optimize failed after the rebuild of %s: %s", self.path, exc)
        return count

    def set_tags(self, ids: Collection[str], read: Callable[[Collection[str]], Mapping[str, Collection[str]]]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            _write_tags(conn, read(ids))

        with self._db.lock:
            self._db.write(work)

    def tags(self, ids: Iterable[str] | None = None) -> dict[str, list[str]]:
        def work(conn: sqlite3.Connection) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            base = "SELECT t.id, t.tag FROM tags t JOIN interfaces i ON i.id = t.id"
            if ids is None:
                rows: list[Any] = conn.execute(base).fetchall()
            else:
                rows = []
                for chunk in _chunks(sorted(set(ids)), 500):
                    rows += conn.execute(f"{base} WHERE t.id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            for id, tag in rows:
                out.setdefault(id, []).append(tag)
            return {id: sorted(names) for id, names in out.items()}

        return self._db.read(work)

    def get_meta(self) -> dict[str, str]:
        return self._db.read(lambda conn: dict(conn.execute("SELECT key, value FROM meta").fetchall()))

    def set_meta(self, values: Mapping[str, str]) -> None:
        self._db.write(lambda conn: _set_meta(conn, values))

    # -- reads --------------------------------------------------------------------------------

    def select(self, query: Query) -> list[IndexRow]:
        def work(conn: sqlite3.Connection) -> list[IndexRow]:
            compiled = self._compile(conn, query)
            if compiled is None:
                return []
            sql, args = compiled
            rows: list[IndexRow] = conn.execute(
                f"SELECT {ROW_COLUMNS} {sql} ORDER BY i.created DESC, i.row DESC", args
            ).fetchall()
            return rows

        exact = rechecked(query)
        rows = self._db.read(work)
        return filter_rows(rows, exact) if exact else rows

    def listing(self, query: Query) -> Listing:
        if rechecked(query) or query.summary_conditions:
            return super().listing(query)  # decided over the rows' texts

        def work(conn: sqlite3.Connection) -> Listing:
            from array import array

            names = {int(row[0]): (row[1], row[2], row[3]) for row in conn.execute(
                "SELECT class, module, qualname, kind FROM classes"
            )}
            classes = self._class_ids_for(conn, query)
            compiled = compile_query(conn, query, classes, names=False)
            if compiled is None:
                return Listing([], {}, 0)
            sql, args = compiled
            scope = list(names) if classes is None else classes
            # Served by interfaces_by_class (one class) or interfaces_by_created, read
            # backwards: no sort, no row read. Fetched in chunks: no million tuples at once.
            single = len(scope) == 1
            ids: list[str] = []
            places = array("q")
            of = array("l")
            first, second, third = itemgetter(0), itemgetter(1), itemgetter(2)
            with _unmapped_pass(conn, query):
                cursor = conn.execute(
                    f"SELECT i.id, i.row{'' if single else ', i.class'} {sql} ORDER BY i.created DESC, i.row DESC",
                    args,
                )
                while True:
                    chunk = cursor.fetchmany(20_000)
                    if not chunk:
                        break
                    ids += map(first, chunk)
                    places.extend(map(second, chunk))
                    if not single:
                        of.extend(map(third, chunk))
            if single:
                return Listing(ids, {scope[0]: names[scope[0]]}, scope[0], places)
            return Listing(ids, {key: names[key] for key in set(of)}, of, places)

        return self._db.read(work)

    def rows(self, ids: Sequence[str]) -> list[IndexRow]:
        wanted = list(ids)

        def work(conn: sqlite3.Connection) -> list[IndexRow]:
            found: list[IndexRow] = []
            for chunk in _chunks(wanted, 500):
                found += conn.execute(
                    f"SELECT {ROW_COLUMNS} FROM interfaces i JOIN classes c ON c.class = i.class"
                    f" WHERE i.id IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
            return found

        return self._db.read(work) if wanted else []

    def scan(self, classes: list[tuple[str, str]] | None) -> Iterator[tuple[Sequence[int] | None, list[IndexRow]]]:
        return self._scan(classes, None, f"{ROW_COLUMNS} FROM interfaces i CROSS JOIN classes c ON c.class = i.class")

    def table_scan(
        self, classes: list[tuple[str, str]] | None, rows: tuple[int, int] | None = None
    ) -> Iterator[tuple[Sequence[int] | None, list[TableRow]]]:
        return self._scan(classes, rows, f"{TABLE_COLUMNS} FROM interfaces i")

    def _scan(
        self, classes: list[tuple[str, str]] | None, rows: tuple[int, int] | None, source: str
    ) -> Iterator[tuple[Sequence[int] | None, list[Any]]]:
        """The rows of `classes` (numbered in [start, stop) of `rows`) as `SELECT i.row,
        <source>` gives them, in chunks of row ranges."""
        numbers = self._db.read(lambda conn: self._class_ids_for(conn, Query(classes)))
        if numbers is not None and not numbers:
            return
        # `+i.class`: not by the index on classes, which would sort the class for every chunk.
        scope = "" if numbers is None else f" AND +i.class IN ({','.join('?' * len(numbers))})"
        # By ranges of row numbers, one short read each: no read transaction stays open
        # between chunks (it would hold the WAL back), and rows come in table order.
        before = "" if rows is None else " AND i.row < ?"
        sql = f"SELECT i.row, {source} WHERE i.row > ?{before}{scope} ORDER BY i.row LIMIT {SCAN_CHUNK}"
        tail = [*(() if rows is None else (rows[1],)), *(numbers or ())]
        yield from by_row_ranges(
            lambda after: self._db.read(lambda conn: conn.execute(sql, [after, *tail]).fetchall()),
            -1 if rows is None else rows[0] - 1, SCAN_CHUNK,
        )

    def count(self, query: Query) -> int:
        if rechecked(query):
            return len(self.select(query))

        def work(conn: sqlite3.Connection) -> int:
            compiled = self._compile(conn, query)
            if compiled is None:
                return 0
            sql, args = compiled
            with _unmapped_pass(conn, query):
                return int(conn.execute(f"SELECT count(*) {sql}", args).fetchone()[0])

        return self._db.read(work)

    def ids(self) -> set[str]:
        def work(conn: sqlite3.Connection) -> set[str]:
            # The version first: a commit by another connection after it makes the next call
            # read again, even if this read already saw it.
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if self._ids is None or version != self._ids_version:
                self._ids = {row[0] for row in conn.execute("SELECT id FROM interfaces")}
                self._ids_version = version
            return set(self._ids)

        return self._db.read(work)

    def ids_with_prefix(self, prefix: str) -> set[str]:
        # A range over the unique index on ids (ids are lowercase hex: "g" follows them all).
        return self._db.read(
            lambda conn: {
                row[0] for row in conn.execute(
                    "SELECT id FROM interfaces WHERE id >= ? AND id < ?", (prefix, prefix + "g")
                ) if row[0].startswith(prefix)
            }
        )

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"``, or what is wrong."""
        return self._db.read(
            lambda conn: "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
        )

    def _compile(self, conn: sqlite3.Connection, query: Query) -> tuple[str, list[Any]] | None:
        """The FROM/WHERE clause of `query` and its arguments; None if nothing can match."""
        return compile_query(conn, query, self._class_ids_for(conn, query))


def _write_tags(conn: sqlite3.Connection, tags: Mapping[str, Collection[str]]) -> None:
    """Replace the tags of the ids in `tags`."""
    ids = list(tags)
    for chunk in _chunks(ids, 500):
        conn.execute(f"DELETE FROM tags WHERE id IN ({','.join('?' * len(chunk))})", chunk)
    conn.executemany("INSERT OR IGNORE INTO tags (tag, id) VALUES (?, ?)", [(tag, id) for id in ids for tag in tags[id]])


def _set_meta(conn: sqlite3.Connection, values: Mapping[str, str]) -> None:
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))


@contextmanager
def _pragma(conn: sqlite3.Connection, name: str, value: int, after: int) -> Iterator[None]:
    """The block with ``PRAGMA name=value``, set to `after` when it ends (also by an error)."""
    conn.execute(f"PRAGMA {name}={value}").fetchall()
    try:
        yield
    finally:
        conn.execute(f"PRAGMA {name}={after}").fetchall()


def _unmapped(conn: sqlite3.Connection) -> AbstractContextManager[None]:
    """The block without SQLite's memory map (`MMAP_BYTES` again after it)."""
    return _pragma(conn, "mmap_size", 0, MMAP_BYTES)


def _unmapped_pass(conn: sqlite3.Connection, query: Query) -> AbstractContextManager[None]:
    """`_unmapped` when `query` passes over whole classes (no condition) of a file over
    `UNMAPPED_PASS_BYTES`, else nothing. Such a pass reads an index whose pages lie all over
    the file: mapped, each page brings its neighbours into this process's memory (+430 MB
    for a listing of 1,000,000 rows, +460 MB for their count, against nothing kept in
    SQLite's small page cache), for 0.1 s less. Below that size it is at most the file, and
    turning the map off and on again would cost more than the pass (~20 us of a 65 us
    listing)."""
    if query.conditions or _file_bytes(conn) <= UNMAPPED_PASS_BYTES:
        return nullcontext()
    return _unmapped(conn)


def _sorter_threads() -> int:
    """Helper threads for SQLite's sorter in a rebuild: one per other CPU, up to 3."""
    from .._rebuild_workers import usable_cpus  # loaded by the rebuild already

    return max(0, min(usable_cpus() - 1, 3))


def _file_bytes(conn: sqlite3.Connection) -> int:
    """The size of the database `conn` reads (which may no longer be the file at its path)."""
    return int(conn.execute("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()").fetchone()[0])


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
