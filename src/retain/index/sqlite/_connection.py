"""The connection of the SQLite index: one per process, in WAL mode, checked for a network file
system (where SQLite's locking is unreliable), retried while another process holds the lock,
reopened after a fork or when the file was replaced, with corruption reported as such.

Concurrency: WAL mode (readers never block the writer), ``BEGIN IMMEDIATE`` for every write
(no lock upgrades that could deadlock), a busy timeout, and retries on top. A process keeps its
connection; after a fork, or when the file was replaced (a rebuild of a corrupt index), it
reconnects.

Damage: SQLite keeps no checksums, so a file damaged on disk (random bytes) can answer a query
with rows missing. Beside the database, ``index.sqlite-checked`` holds the state (inode, size,
modification time) of the file when retain last knew it whole: a process that changes the file
(a checkpoint, when it commits or closes) notes the new state if the file was as noted before.
A connection opened on a file in another state runs ``PRAGMA integrity_check`` first (once;
the cost of reading the whole file), and a damaged file is an `IndexDatabaseError` that says
to rebuild. Damage to the WAL file is caught by its own checksums: SQLite drops the frames
from the damaged one on, which the storage's journal brings back.
"""

from __future__ import annotations

import os
import time

from ..._errors import IndexDatabaseError
from ..._fs import atomic_write
from ..._log import logger
from .._sql import ForkTracker
from ._schema import setup

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

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
#: Suffix of the file beside the database that notes its state when last known whole.
CHECKED_SUFFIX = "-checked"
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
_CORRUPT_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
#: What SQLite, or Python's driver, says of a damaged file under other codes.
_CORRUPT_SIGNS = ("not a database", "malformed", "Could not decode", "unsupported file format")


def _after_fork(db: SqliteConnection) -> None:
    """After a fork, the child gets a fresh lock (a thread of the parent may have held it)
    and no connection (SQLite connections must not cross a fork)."""
    import threading  # (see SqliteConnection.__init__)

    db.lock = threading.RLock()
    db._conn = None  # not closed: it belongs to the parent
    db._forget()


forks = ForkTracker(_after_fork)
_closing_registered = False


def close_connections() -> None:
    """Close every connection of this process (at exit, after the queued index updates are
    written: see `retain.index._updates`): closing checkpoints the WAL into the database file,
    and noting the new state then spares the next process a check of the whole file."""
    for db in list(forks.instances or ()):
        try:
            db.close()
        except Exception as exc:  # the next process checks the file instead
            logger("retain.index").debug("could not close the index %s at exit: %s", db.path, exc)


def file_state(path: str) -> str | None:
    """What changes when the file at `path` is written: inode, size, modification time."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{info.st_ino} {info.st_size} {info.st_mtime_ns}"


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
    import re  # rarely needed: `import retain` does not load re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


class SqliteConnection:
    """This process's connection to one SQLite file, for `SqliteIndex`: `read` and `write` run
    work on it, opened on first use, retried while the database is busy.

    Args:
        path: the database file; created (with its directory) on first use.
        timeout: seconds to wait for another process's write before giving up.
        allow_network_fs: see `SqliteIndex`.
        forget: called whenever the connection is dropped (a fork, a reconnection, a rolled
            back write), for the index to drop what it cached from it.
    """

    def __init__(self, path: str, timeout: float, allow_network_fs: bool | None, forget: Callable[[], None]) -> None:
        import threading  # with the first index, not at `import retain`

        self.path = path
        self.timeout = timeout
        self.allow_network_fs = allow_network_fs
        self._forget = forget
        #: Held around every use of the connection (the index holds it across its own caches).
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._inode = 0
        self._inode_checked = 0.0
        self._checked_fs = False
        forks.add(self)

    def close(self) -> None:
        with self.lock:
            self.drop()

    def connection(self) -> sqlite3.Connection:
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
        self.drop()
        return self._open()

    def drop(self) -> None:
        """Forget the connection (closed if this process opened it); the next use reconnects."""
        conn, self._conn = self._conn, None
        self._forget()
        if conn is not None and self._pid == os.getpid():
            try:
                # The last connection to close checkpoints the WAL into the file.
                self._noting_changes(conn.close)
            except Exception:
                pass

    def _open(self) -> sqlite3.Connection:
        import sqlite3  # it loads datetime: on first use, not at `import retain`

        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise IndexDatabaseError(f"cannot create the index directory {directory}: {exc}") from exc
        if not self._checked_fs:
            self._check_filesystem(directory)
            self._checked_fs = True
        global _closing_registered
        if not _closing_registered:
            import atexit

            _closing_registered = True
            atexit.register(close_connections)
        known = file_state(self.path)
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
        try:
            if known is not None and known != self._noted_state():
                self._retry(lambda: self._check_whole(conn))
            self._retry(lambda: setup(conn, self.path))
            if known is None or known != file_state(self.path):
                self._note_state(file_state(self.path))
            elif known != self._noted_state():
                self._note_state(known)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._pid = os.getpid()
        self._inode = os.stat(self.path).st_ino
        self._inode_checked = time.monotonic()
        return conn

    def _noted_state(self) -> str | None:
        try:
            with open(self.path + CHECKED_SUFFIX, encoding="ascii") as handle:
                return handle.read().strip()
        except (OSError, ValueError):
            return None

    def _note_state(self, state: str | None) -> None:
        if state is None:
            return
        data = state.encode("ascii")
        try:
            atomic_write(self.path + CHECKED_SUFFIX, lambda handle: handle.write(data))
        except OSError:  # a read-only storage: the next process checks the file again
            pass

    def _noting_changes(self, action: Callable[[], T]) -> T:
        """Run `action` (which may checkpoint the WAL into the database file), then note the
        file's new state if it was the noted one before (changed by retain, not damaged)."""
        before = file_state(self.path)
        result = action()
        after = file_state(self.path)
        if after != before and after is not None and before == self._noted_state():
            self._note_state(after)
        return result

    def _check_whole(self, conn: sqlite3.Connection) -> None:
        """Raise `IndexDatabaseError` if ``PRAGMA integrity_check`` finds the file damaged."""
        import sqlite3  # (see _open)

        try:
            found = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
        except sqlite3.DatabaseError:
            raise  # "malformed", "not a database": _retry says it is corrupt
        if found != ["ok"]:
            raise self.corrupt(str(found[0]).replace("*** in database main ***\n", "").split("\n")[0])

    def corrupt(self, what: str) -> IndexDatabaseError:
        error = IndexDatabaseError(
            f"the index {self.path} is corrupt ({what}); run retain.index.rebuild() (or `retain "
            "index rebuild`), which makes it anew, or delete it with its -wal and -shm files: the "
            "index is a cache of the storage, nothing is lost"
        )
        error.corrupt = True
        return error

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

    def _error(self, exc: Exception, doing: str) -> IndexDatabaseError:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        text = str(exc)
        if (
            code in _CORRUPT_CODES
            or isinstance(exc, UnicodeDecodeError)
            or any(sign in text for sign in _CORRUPT_SIGNS)
        ):
            return self.corrupt(text[:200])
        if code in _BUSY_CODES or "locked" in text:
            return IndexDatabaseError(
                f"the index {self.path} stayed locked by another process for more than "
                f"{self.timeout:g} s ({doing}); try again, or raise SqliteIndex(timeout=...)"
            )
        return IndexDatabaseError(f"the index {self.path} failed ({doing}): {text}")

    def _retry(self, work: Callable[[], T]) -> T:
        import sqlite3  # (see _open)

        deadline = time.monotonic() + self.timeout
        delay = 0.001
        reconnected = False
        while True:
            try:
                return work()
            except UnicodeDecodeError as exc:  # damaged text, decoded by Python's driver
                raise self._error(exc, "query") from exc
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
                    self.drop()
                    continue
                raise self._error(exc, "waiting for a lock" if busy else "query") from exc

    def _replaced(self) -> bool:
        if self._conn is None:
            return False
        try:
            return os.stat(self.path).st_ino != self._inode
        except FileNotFoundError:
            return True

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self.lock:
            return self._retry(lambda: work(self.connection()))

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in a ``BEGIN IMMEDIATE`` transaction, retried while the database is busy."""

        def transaction() -> T:
            conn = self.connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                self._forget()  # the index may have cached numbers of classes rolled back now
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        with self.lock:
            # A commit may checkpoint the WAL into the database file.
            return self._noting_changes(lambda: self._retry(transaction))
