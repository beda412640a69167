"""The connection of the PostgreSQL index: its URL (parsed, and shown without the password),
the driver check, connecting with a timeout, retries of lost deadlocks and serialization
conflicts, one reconnection after a lost connection, and fork safety.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager

from ..._errors import IndexDatabaseError
from ._schema import SCHEMA_VERSION, migrate, newer, schema_version
from .._sql import ForkTracker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, TypeVar

    import psycopg

    T = TypeVar("T")

#: Seconds to wait for the server to accept a connection (libpq's ``connect_timeout``).
CONNECT_TIMEOUT = 10
SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
INSTALL_HINT = "pip install 'retain[postgres]'"

#: Retries of a transaction that lost a deadlock or a serialization conflict.
_RETRIES = 8


def hide_password(url: str) -> str:
    """`url` with its password replaced by ``***`` (for messages and reprs)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    tail = re.sub(r"(?i)(^|[?&])password=[^&]*", r"\1password=***", tail)
    return f"{scheme}://{credentials}{at}{hosts}{slash}{tail}"


def split_url(url: str) -> tuple[str, str | None]:
    """(libpq URI, schema) from an index URL: the scheme made ``postgresql`` and the
    ``schema`` query parameter taken out."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise IndexDatabaseError(
            f"a PostgreSQL index URL starts with postgresql://; got {hide_password(url)!r}"
        )
    base, question, query = rest.partition("?")
    schema = None
    kept = []
    for part in query.split("&") if question else []:
        name, _, value = part.partition("=")
        if name == "schema":
            from urllib.parse import unquote

            schema = unquote(value)
        elif part:
            kept.append(part)
    conninfo = "postgresql://" + base + ("?" + "&".join(kept) if kept else "")
    return conninfo, schema


def driver() -> None:
    """Raise `ImportError` with the install command unless psycopg 3 can be imported."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"the PostgreSQL index needs the psycopg 3 driver: {INSTALL_HINT} "
            f"(or pip install 'psycopg[binary]'); {exc}"
        ) from exc


def message(exc: BaseException) -> str:
    """The driver's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _after_fork(db: PostgresConnection) -> None:
    """A child must never talk on its parent's connection, nor close it: closing sends the
    server a goodbye on the shared socket, which ends the parent's session. The child's copy of
    the socket is pointed at /dev/null, and the connection is dropped; the child reconnects."""
    import threading

    db.lock = threading.RLock()
    conn, db._conn = db._conn, None
    db._forget()
    if conn is not None:
        try:
            fd = conn.pgconn.socket
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
        except Exception:
            _orphans.append(conn)  # never finalized in the child, so never closed


forks = ForkTracker(_after_fork)
#: Inherited connections whose socket could not be redirected.
_orphans: list[Any] = []


class PostgresConnection:
    """This process's connection to a PostgreSQL index, for `PostgresIndex`: opened on first
    use with the schema brought up to date, and `run`, which every operation goes through.

    Args:
        conninfo: the libpq URI (see `split_url`).
        schema: the schema that holds the tables (a plain identifier).
        connect_timeout: see `PostgresIndex`.
        forget: called whenever a transaction failed or the connection is dropped, for the
            index to drop what it cached from it.
    """

    def __init__(self, conninfo: str, schema: str, connect_timeout: float, forget: Callable[[], None]) -> None:
        import threading  # with the first index, not at `import retain`

        self.conninfo = conninfo
        self.schema = schema
        self.connect_timeout = connect_timeout
        #: The quoted schema name, for SQL.
        self.s = f'"{schema}"'
        self._forget = forget
        #: Held around every use of the connection.
        self.lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = 0
        forks.add(self)

    @property
    def display_url(self) -> str:
        """The URL without its password, and the schema: for messages."""
        return f"{hide_password(self.conninfo)} (schema {self.schema})"

    def connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and self._pid == os.getpid() and not conn.closed:
            return conn
        self.drop()
        return self.open()

    def close(self) -> None:
        with self.lock:
            self.drop()

    def drop(self) -> None:
        """Forget the connection (closed if this process opened it); the next use reconnects."""
        conn, self._conn = self._conn, None
        self._forget()
        if conn is not None and self._pid == os.getpid():
            try:
                conn.close()
            except Exception:
                pass

    def open(self, check: bool = True) -> psycopg.Connection[Any]:
        """Connect; with `check`, bring the schema up to date (or refuse a newer one) and keep
        the connection for this process."""
        driver()
        import psycopg

        options: dict[str, Any] = {"autocommit": True}
        given = psycopg.conninfo.conninfo_to_dict(self.conninfo)
        defaults = {
            "connect_timeout": str(max(2, int(self.connect_timeout))),
            "application_name": "retain",
            # A server that vanished (a crash, a cut network) is noticed within a minute.
            "keepalives": "1",
            "keepalives_idle": "30",
            "keepalives_interval": "10",
            "keepalives_count": "3",
        }
        for name, value in defaults.items():
            if name not in given:
                options[name] = value
        started = time.monotonic()
        try:
            conn = psycopg.connect(self.conninfo, **options)
        except psycopg.Error as exc:
            elapsed = time.monotonic() - started
            raise IndexDatabaseError(
                f"cannot connect to the PostgreSQL index at {self.display_url} (after "
                f"{elapsed:.1f} s): {message(exc)}. Check that the server runs and accepts "
                "connections from this machine, and the user name, password and database name"
            ) from exc
        if not check:
            return conn
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._pid = os.getpid()
        return conn

    def _setup(self, conn: psycopg.Connection[Any]) -> None:
        driver()
        with self.failing("set up"):
            version = schema_version(conn, self.s)
            if version == SCHEMA_VERSION:
                return
            if version > SCHEMA_VERSION:
                raise newer(self.display_url, version)
            with conn.transaction():
                migrate(conn, self.schema, self.display_url)

    @contextmanager
    def failing(self, doing: str) -> Iterator[None]:
        """A driver error in the block raised as ``cannot {doing} the PostgreSQL index``."""
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            raise IndexDatabaseError(
                f"cannot {doing} the PostgreSQL index at {self.display_url}: {message(exc)}"
            ) from exc

    def run(self, work: Callable[[psycopg.Connection[Any]], T], doing: str, *, transaction: bool = False,
             snapshot: bool = False, retry: bool = True) -> T:
        """`work` on this process's connection (in a transaction if asked; with `snapshot`, in
        a read-only one whose statements all read one snapshot), retrying lost deadlocks and
        serialization conflicts, and reconnecting once after a lost connection or tables
        dropped under it (another process reset the index)."""
        driver()
        import psycopg
        from psycopg import errors

        with self.lock:
            attempt = 0
            reconnected = False
            while True:
                conn = self.connection()
                try:
                    if snapshot:
                        return _in_snapshot(conn, work)
                    if transaction:
                        with conn.transaction():
                            return work(conn)
                    return work(conn)
                except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
                    self._forget()
                    attempt += 1
                    if not retry or attempt > _RETRIES:
                        raise IndexDatabaseError(
                            f"the PostgreSQL index at {self.display_url} failed ({doing}) after "
                            f"{attempt} attempts: {message(exc)}"
                        ) from exc
                    time.sleep(min(0.005 * 2**attempt, 0.5))
                except (psycopg.OperationalError, errors.UndefinedTable, errors.InvalidSchemaName) as exc:
                    self._forget()
                    lost = conn.closed or isinstance(exc, (errors.UndefinedTable, errors.InvalidSchemaName))
                    if lost and retry and not reconnected:
                        reconnected = True
                        self.drop()
                        continue
                    if conn.closed:
                        self.drop()
                    raise IndexDatabaseError(
                        f"the PostgreSQL index at {self.display_url} failed ({doing}): {message(exc)}"
                    ) from exc
                except psycopg.Error as exc:
                    self._forget()
                    raise IndexDatabaseError(
                        f"the PostgreSQL index at {self.display_url} failed ({doing}): {message(exc)}"
                    ) from exc
                except BaseException:
                    self._forget()
                    raise


def _in_snapshot(conn: psycopg.Connection[Any], work: Callable[[psycopg.Connection[Any]], T]) -> T:
    """`work` in a read-only REPEATABLE READ transaction: every statement of it reads the one
    snapshot taken at its first, so a query that fetches row numbers in one statement and the
    rows in the next never sees a rebuild committed in between (it sees the old rows or the
    new, never none). A read-only snapshot never fails to serialize."""
    import psycopg

    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        result = work(conn)
    except BaseException:
        if not conn.closed:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                pass  # the connection is reopened by the caller if it is gone
        raise
    conn.execute("COMMIT")
    return result
