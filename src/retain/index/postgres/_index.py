"""The PostgreSQL index: one database server shared by every machine that uses a storage.

Selected by URL, ``index="postgresql://user:password@host:5432/dbname"`` (libpq's URI: its
query parameters such as ``sslmode`` or ``connect_timeout`` pass through), plus ``schema=NAME``
(default ``retain``) to keep the indexes of several storages in one database. The driver is
psycopg 3 (``pip install 'retain[postgres]'``), imported when the index is first made.

Schema (version 4), in its own PostgreSQL schema::

    classes(class, module, qualname, kind)            one row per class (numbers never reused)
    interfaces(row, id, class, created, config, canonical, summary, metrics)
        indexed in the order of listings: (class, created, row) and (created, row), with
        the id (and class) included for index-only scans
    config_values(class, key, num, val, row)          every config leaf, by dotted key
    tags(tag, id)                                     the tags of each id (`Interface.tag`)
    meta(key, value), migrations(version, applied, retain)

How a config leaf is stored so that SQL comparisons agree with Python's, and the SQL of
queries: `retain.index.postgres._query`. Migrations: `retain.index.postgres._schema`. The
connection, its retries and fork safety: `retain.index.postgres._connection`.

Concurrency, with any number of processes on any number of machines: an upsert is one
statement, ``INSERT ... ON CONFLICT (id) DO NOTHING`` in id order (concurrent writers of one id
wait for each other instead of deadlocking) whose returned rows get their config values in the
same statement, so a row never exists without its values; classes are inserted with
``ON CONFLICT DO NOTHING`` and read back. `replace_all` runs in one transaction that first takes
a lock which excludes other writers but not readers, who see the old contents until it
commits. A query with config conditions reads in one read-only REPEATABLE READ transaction
(the rows matching them are found in one statement and read in the next: both see one
snapshot, so a rebuild committed in between never makes the query find nothing). Deadlocks
and serialization failures are retried; a connection lost between two operations is reopened
once.
"""

from __future__ import annotations

import re

from ..._errors import IndexDatabaseError
from ..._log import logger
from ._connection import CONNECT_TIMEOUT, PostgresConnection, driver, hide_password, split_url
from ._query import compile_query, stored_key, stored_value
from ._schema import DEFAULT_SCHEMA, SCHEMA_VERSION, empty
from .._sql import ROW_COLUMNS, TABLE_COLUMNS, by_row_ranges, covered_classes, texts
from .._entry import config_leaves
from ..base import SCAN_CHUNK, Index, Listing
from ...query import Query

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
    from typing import Any

    import psycopg

    from .._entry import IndexEntry, IndexRow, TableRow

    #: (id, class, created, config text, canonical text, summary text, leaves (key, num, val),
    #: metrics text)
    Prepared = tuple[
        str, int, str, str, str, "str | None", list[tuple[str, "str | None", "bytes | None"]], "str | None"
    ]

__all__ = ["DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresIndex", "hide_password"]

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class PostgresIndex(Index):
    """The index in a PostgreSQL database, safe for processes on many machines at once.

    Args:
        url: ``postgresql://user:password@host:port/dbname``, with libpq's query parameters
            (``sslmode``, ``connect_timeout``...) and ``schema=NAME``. A password may also come
            from ``PGPASSWORD`` or ``~/.pgpass``, as for any libpq client.
        schema: the PostgreSQL schema that holds the tables (default: the URL's ``schema``,
            else ``retain``); created on first use, with the tables.
        connect_timeout: seconds to wait for the server when connecting (unless the URL sets
            ``connect_timeout``); libpq's minimum is 2.

    Raises:
        ImportError: psycopg is not installed (``pip install 'retain[postgres]'``).
        IndexDatabaseError: the URL or schema name is malformed.
    """

    supports_multiple_hosts = True
    supports_row_ranges = True

    def __init__(self, url: str, *, schema: str | None = None, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        driver()
        self._url = url
        conninfo, self._url_schema = split_url(url)
        chosen = schema or self._url_schema or DEFAULT_SCHEMA
        if not _SCHEMA_NAME.fullmatch(chosen):
            raise IndexDatabaseError(
                f"the schema name {chosen!r} is not a plain identifier (letters, digits and "
                "underscores, not starting with a digit, at most 63)"
            )
        self._db = PostgresConnection(conninfo, chosen, connect_timeout, self._forget)
        #: Class numbers by (module, qualname, kind), as read or written on this connection.
        self._class_ids: dict[tuple[str, str, str], int] = {}

    @property
    def schema(self) -> str:
        """The PostgreSQL schema that holds the tables."""
        return self._db.schema

    @property
    def connect_timeout(self) -> float:
        return self._db.connect_timeout

    @property
    def display_url(self) -> str:
        """The URL without its password, and the schema: for messages."""
        return self._db.display_url

    def _forget(self) -> None:
        """Drop what was cached from the connection (a transaction failed, or it was dropped)."""
        self._class_ids.clear()

    @property
    def url(self) -> str:
        if self.schema == (self._url_schema or DEFAULT_SCHEMA):
            return self._url
        # The schema was given apart: say it in the URL, instead of the URL's own.
        base, _, query = self._db.conninfo.partition("?")
        return f"{base}?{query + '&' if query else ''}schema={self.schema}"

    def __repr__(self) -> str:
        return f"PostgresIndex({hide_password(self.url)!r})"

    def close(self) -> None:
        self._db.close()

    def reset(self) -> None:
        """Empty the index. Tables of the current version are emptied (classes kept, so the
        numbers other processes cached stay right); tables of another version are dropped and
        made anew."""
        driver()
        with self._db.lock:
            self._db.drop()
            conn = self._db.open(check=False)  # whatever version the tables have
            try:
                with self._db.failing("reset"), conn.transaction():
                    empty(conn, self.schema, self.display_url)
            finally:
                conn.close()

    # -- classes ------------------------------------------------------------------------------

    def _class_id(self, conn: psycopg.Connection[Any], module: str, qualname: str, kind: str) -> int:
        key = (module, qualname, kind)
        found = self._class_ids.get(key)
        if found is None:
            row = conn.execute(
                f"INSERT INTO {self._db.s}.classes (module, qualname, kind) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING class",
                key,
            ).fetchone()
            if row is None:
                row = conn.execute(
                    f"SELECT class FROM {self._db.s}.classes WHERE module = %s AND qualname = %s AND kind = %s",
                    key,
                ).fetchone()
            assert row is not None
            found = int(row[0])
            # Class numbers are never reused (reset keeps the table), so caching is safe; a
            # failed write clears the cache, as its insert may have been rolled back.
            self._class_ids[key] = found
        return found

    def _class_ids_for(self, conn: psycopg.Connection[Any], query: Query) -> list[int] | None:
        """The class numbers `query` covers; None for all."""
        sql = f"SELECT class, module, qualname, kind FROM {self._db.s}.classes"
        return covered_classes(query, lambda: conn.execute(sql).fetchall())

    # -- writes -------------------------------------------------------------------------------

    def _prepare(self, conn: psycopg.Connection[Any], entries: Iterable[IndexEntry]) -> list[Prepared]:
        """The rows to write, one per id (an id given twice keeps its first entry and its last
        summary and metrics), sorted by id: one lock order for every writer."""
        out: dict[str, Prepared] = {}
        for entry in entries:
            config, canonical, summary, metrics = texts(entry)
            found = out.get(entry.id)
            if found is not None:
                out[entry.id] = (
                    *found[:5], found[5] if summary is None else summary, found[6],
                    found[7] if metrics is None else metrics,
                )
                continue
            klass = self._class_id(conn, entry.module, entry.qualname, entry.kind)
            found_leaves = entry.leaves if entry.leaves is not None else config_leaves(entry.config)
            leaves = list({(stored_key(key), *stored_value(value)) for key, value in found_leaves})
            out[entry.id] = (entry.id, klass, entry.created, config, canonical, summary, leaves, metrics)
        return [out[id] for id in sorted(out)]

    def _insert(self, conn: psycopg.Connection[Any], prepared: list[Prepared]) -> None:
        """Insert the entries that are new, with their config values, in one statement."""
        if not prepared:
            return
        value_ids: list[str] = []
        keys: list[str] = []
        nums: list[str | None] = []
        vals: list[bytes | None] = []
        for p in prepared:
            for key, num, val in p[6]:
                value_ids.append(p[0])
                keys.append(key)
                nums.append(num)
                vals.append(val)
        s = self._db.s
        conn.execute(
            f"WITH added AS (INSERT INTO {s}.interfaces (id, class, created, config, canonical, summary, metrics)"
            " SELECT * FROM unnest(%b::text[], %b::int[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[])"
            " ORDER BY 1 ON CONFLICT (id) DO NOTHING RETURNING row, id, class)"
            f" INSERT INTO {s}.config_values (class, key, num, val, row)"
            " SELECT a.class, v.key, v.num, v.val, a.row"
            " FROM unnest(%b::text[], %b::text[], %b::text[]::numeric[], %b::bytea[]) AS v(id, key, num, val)"
            " JOIN added a ON a.id = v.id",
            (
                [p[0] for p in prepared], [p[1] for p in prepared], [p[2] for p in prepared],
                [p[3] for p in prepared], [p[4] for p in prepared], [p[5] for p in prepared],
                [p[7] for p in prepared], value_ids, keys, nums, vals,
            ),
        )

    def _update_summaries(self, conn: psycopg.Connection[Any], prepared: list[Prepared]) -> None:
        """Set the summaries and last metric values that `prepared` carries (fields 5 and 7)."""
        for column, field in (("summary", 5), ("metrics", 7)):
            changed = [(p[0], p[field]) for p in prepared if p[field] is not None]
            if changed:
                conn.execute(
                    f"UPDATE {self._db.s}.interfaces i SET {column} = n.value"
                    " FROM unnest(%b::text[], %b::text[]) AS n(id, value)"
                    f" WHERE i.id = n.id AND i.{column} IS DISTINCT FROM n.value",
                    ([id for id, _ in changed], [value for _, value in changed]),
                )

    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        if not entries:
            return

        def work(conn: psycopg.Connection[Any]) -> None:
            # Each statement is atomic on its own (autocommit): a row with its values, then
            # the summaries of rows that existed already. A class inserted before a failure
            # stays, unused, which is harmless.
            prepared = self._prepare(conn, entries)
            self._insert(conn, prepared)
            self._update_summaries(conn, prepared)
            tagged = {entry.id: entry.tags for entry in entries if entry.tags is not None}
            if tagged:
                _write_tags(conn, s, tagged)

        s = self._db.s
        self._db.run(work, "upsert")

    def remove(self, ids: Iterable[str]) -> None:
        wanted = sorted(set(ids))
        if not wanted:
            return
        s = self._db.s
        self._db.run(
            lambda conn: conn.execute(
                f"WITH gone AS (DELETE FROM {s}.interfaces WHERE id = ANY(%b::text[]) RETURNING row),"
                f" untagged AS (DELETE FROM {s}.tags WHERE id = ANY(%b::text[]))"
                f" DELETE FROM {s}.config_values WHERE row IN (SELECT row FROM gone)",
                (wanted, wanted),
            ),
            "remove",
        )

    def replace_all(self, entries: Iterable[IndexEntry], meta: Mapping[str, str]) -> int:
        s = self._db.s

        def work(conn: psycopg.Connection[Any]) -> int:
            # Excludes other writers (who wait), not readers (who see the old contents until
            # the commit); taken first, so that no writer holds a row this transaction needs.
            conn.execute(f"LOCK TABLE {s}.interfaces IN SHARE ROW EXCLUSIVE MODE")
            conn.execute(f"DELETE FROM {s}.config_values")
            conn.execute(f"DELETE FROM {s}.interfaces")
            conn.execute(f"DELETE FROM {s}.tags")
            number = 0
            chunk: list[IndexEntry] = []
            tagged: dict[str, Collection[str]] = {}
            # Consumed as it comes (rebuild reads storage lazily), written in chunks.
            for entry in entries:
                number += 1
                chunk.append(entry)
                if entry.tags:
                    tagged[entry.id] = entry.tags
                if len(chunk) >= 2000:
                    self._insert(conn, self._prepare(conn, chunk))
                    chunk = []
            self._insert(conn, self._prepare(conn, chunk))
            _write_tags(conn, s, tagged)
            _set_meta(conn, s, meta)
            return number

        # Not retried: `entries` may be a generator, consumed by the first attempt.
        count = self._db.run(work, "rebuild", transaction=True, retry=False)
        try:
            # Fresh statistics, and the visibility map that makes the value index's scans
            # index-only (autovacuum would get there later).
            self._db.run(lambda conn: conn.execute(f"VACUUM (ANALYZE) {s}.interfaces, {s}.config_values"), "vacuum")
        except IndexDatabaseError as exc:  # statistics only: the rebuild itself succeeded
            logger("retain.index").debug("VACUUM (ANALYZE) failed after the rebuild of %s: %s", self.display_url, exc)
        return count

    def set_tags(self, ids: Collection[str], read: Callable[[Collection[str]], Mapping[str, Collection[str]]]) -> None:
        s = self._db.s

        def work(conn: psycopg.Connection[Any]) -> None:
            # One tag writer at a time, on any machine, each reading the storage inside: the
            # last to write has read every change the others wrote.
            conn.execute(f"LOCK TABLE {s}.tags IN SHARE ROW EXCLUSIVE MODE")
            _write_tags(conn, s, read(ids))

        self._db.run(work, "tag", transaction=True)

    def tags(self, ids: Iterable[str] | None = None) -> dict[str, list[str]]:
        s = self._db.s
        sql = f"SELECT t.id, t.tag FROM {s}.tags t JOIN {s}.interfaces i ON i.id = t.id"

        def work(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
            if ids is None:
                rows = conn.execute(sql).fetchall()
            else:
                rows = conn.execute(sql + " WHERE t.id = ANY(%b::text[])", (sorted(set(ids)),)).fetchall()
            out: dict[str, list[str]] = {}
            for id, tag in rows:
                out.setdefault(id, []).append(tag)
            return {id: sorted(names) for id, names in out.items()}

        return self._db.run(work, "read tags")

    def get_meta(self) -> dict[str, str]:
        return self._db.run(
            lambda conn: {row[0]: row[1] for row in conn.execute(f"SELECT key, value FROM {self._db.s}.meta")},
            "read meta",
        )

    def set_meta(self, values: Mapping[str, str]) -> None:
        if values:
            self._db.run(lambda conn: _set_meta(conn, self._db.s, values), "write meta")

    # -- reads --------------------------------------------------------------------------------

    def select(self, query: Query) -> list[IndexRow]:
        def work(conn: psycopg.Connection[Any]) -> list[IndexRow]:
            compiled = self._compile(conn, query)
            if compiled is None:
                return []
            sql, args = compiled
            rows = conn.execute(f"SELECT {ROW_COLUMNS} {sql} ORDER BY i.created DESC, i.row DESC", args).fetchall()
            return rows

        return self._db.run(work, "query", snapshot=_two_statements(query))

    def listing(self, query: Query) -> Listing:
        if query.summary_conditions:
            return super().listing(query)  # decided over the rows' texts

        def work(conn: psycopg.Connection[Any]) -> Listing:
            from array import array

            compiled = self._compile(conn, query)
            if compiled is None:
                return Listing([], {}, 0)
            sql, args = compiled
            names = {int(row[0]): (row[1], row[2], row[3]) for row in conn.execute(
                f"SELECT class, module, qualname, kind FROM {self._db.s}.classes"
            )}
            rows = conn.execute(f"SELECT i.id, i.row, i.class {sql} ORDER BY i.created DESC, i.row DESC", args).fetchall()
            ids = [row[0] for row in rows]
            places = array("q", [row[1] for row in rows])
            of = array("l", [row[2] for row in rows])
            return Listing(ids, {key: names[key] for key in set(of)}, of, places)

        return self._db.run(work, "query", snapshot=True)

    def rows(self, ids: Sequence[str]) -> list[IndexRow]:
        wanted = list(ids)
        if not wanted:
            return []
        return self._db.run(
            lambda conn: conn.execute(
                f"SELECT {ROW_COLUMNS} FROM {self._db.s}.interfaces i JOIN {self._db.s}.classes c"
                " ON c.class = i.class WHERE i.id = ANY(%b::text[])", (wanted,)
            ).fetchall(),
            "read rows",
        )

    def scan(self, classes: list[tuple[str, str]] | None) -> Iterator[tuple[Sequence[int] | None, list[IndexRow]]]:
        s = self._db.s
        return self._scan(classes, None, f"{ROW_COLUMNS} FROM {s}.interfaces i JOIN {s}.classes c ON c.class = i.class")

    def table_scan(
        self, classes: list[tuple[str, str]] | None, rows: tuple[int, int] | None = None
    ) -> Iterator[tuple[Sequence[int] | None, list[TableRow]]]:
        return self._scan(classes, rows, f"{TABLE_COLUMNS} FROM {self._db.s}.interfaces i")

    def _scan(
        self, classes: list[tuple[str, str]] | None, rows: tuple[int, int] | None, source: str
    ) -> Iterator[tuple[Sequence[int] | None, list[Any]]]:
        """The rows of `classes` (numbered in [start, stop) of `rows`) as `SELECT i.row,
        <source>` gives them, in chunks of row ranges."""
        numbers = self._db.run(lambda conn: self._class_ids_for(conn, Query(classes)), "query")
        if numbers is not None and not numbers:
            return
        scope = "" if numbers is None else " AND i.class = ANY(%b::int[])"
        before = "" if rows is None else " AND i.row < %s"
        sql = f"SELECT i.row, {source} WHERE i.row > %s{before}{scope} ORDER BY i.row LIMIT {SCAN_CHUNK}"
        tail: list[Any] = [*(() if rows is None else (rows[1],)), *(() if numbers is None else (numbers,))]
        yield from by_row_ranges(
            lambda after: self._db.run(lambda conn: conn.execute(sql, [after, *tail]).fetchall(), "scan"),
            -1 if rows is None else rows[0] - 1, SCAN_CHUNK,
        )

    def count(self, query: Query) -> int:
        def work(conn: psycopg.Connection[Any]) -> int:
            compiled = self._compile(conn, query)
            if compiled is None:
                return 0
            sql, args = compiled
            row = conn.execute(f"SELECT count(*) {sql}", args).fetchone()
            return int(row[0]) if row is not None else 0

        return self._db.run(work, "count", snapshot=_two_statements(query))

    def ids(self) -> set[str]:
        return self._db.run(lambda conn: {row[0] for row in conn.execute(f"SELECT id FROM {self._db.s}.interfaces")}, "list ids")

    def ids_with_prefix(self, prefix: str) -> set[str]:
        # A range over the unique index on ids: ids are lowercase hex, and "g" follows them in
        # byte order and in the usual collations alike (digits before letters).
        return self._db.run(
            lambda conn: {
                row[0] for row in conn.execute(
                    f"SELECT id FROM {self._db.s}.interfaces WHERE id >= %s AND id < %s", (prefix, prefix + "g")
                ) if row[0].startswith(prefix)
            },
            "list ids",
        )

    def migrations(self) -> list[tuple[int, str, str]]:
        """The migrations applied to this database: (version, time applied, retain version)."""
        return self._db.run(
            lambda conn: [
                (int(row[0]), row[1].isoformat(), row[2])
                for row in conn.execute(f"SELECT version, applied, retain FROM {self._db.s}.migrations ORDER BY version")
            ],
            "read migrations",
        )

    def _compile(self, conn: psycopg.Connection[Any], query: Query) -> tuple[str, list[Any]] | None:
        """The FROM/WHERE clause of `query` and its arguments; None if nothing can match."""
        return compile_query(conn, self._db.s, query, self._class_ids_for(conn, query))


def _two_statements(query: Query) -> bool:
    """Whether `query` finds its rows in two statements (the numbers of the rows whose config
    matches, then the rows), which must then read one snapshot (see `_in_snapshot`); other
    queries are one statement (the classes they read before are never removed)."""
    return any(condition.field.source == "config" for condition in query.conditions)


def _write_tags(conn: psycopg.Connection[Any], s: str, tags: Mapping[str, Collection[str]]) -> None:
    """Replace the tags of the ids in `tags`, in one transaction (a savepoint inside one)."""
    if not tags:
        return
    ids = sorted(tags)
    pairs = [(id, tag) for id in ids for tag in sorted(set(tags[id]))]
    with conn.transaction():
        conn.execute(f"DELETE FROM {s}.tags WHERE id = ANY(%b::text[])", (ids,))
        conn.execute(
            f"INSERT INTO {s}.tags (id, tag) SELECT * FROM unnest(%b::text[], %b::text[]) ON CONFLICT DO NOTHING",
            ([p[0] for p in pairs], [p[1] for p in pairs]),
        )


def _set_meta(conn: psycopg.Connection[Any], s: str, values: Mapping[str, str]) -> None:
    items = sorted(values.items())  # one lock order for every writer
    conn.execute(
        f"INSERT INTO {s}.meta (key, value) SELECT * FROM unnest(%b::text[], %b::text[])"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        ([k for k, _ in items], [v for _, v in items]),
    )
