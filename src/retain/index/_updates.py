"""What commits and summaries do to the index: journal first, publish, then index.

Kept cheap, because it is on the commit path: one append to the journal (open, write, close:
a few µs) before the record is published, and after it an append to an in-memory queue that a
background thread writes to the index, many commits per transaction, on a connection the
process keeps open. Failures never fail a commit: the index is a cache, and the next query
repairs it from the journal.
"""

from __future__ import annotations

import os
import time
import warnings
from contextvars import ContextVar

from .._errors import ConfigError, IndexWarning
from ..storage.annotation_files import read_tags
from ..storage.layout import encode_journal_line, journal_path
from ._entry import IndexEntry
from ._records import read_summary
from ._resolve import default_index, index_setting, make_index

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..storage.base import Storage
    from .base import Index

    #: (storage, record, with_summary, summary, index setting)
    _Item = tuple[
        Storage, dict[str, Any], bool, "dict[str, Any] | None", "Index | str | None", "dict[str, Any] | None"
    ]

__all__ = [
    "after_annotate", "after_metrics", "after_publish", "after_remove", "after_summary", "deferred", "flush",
    "journal", "updates",
]

#: "on": commits update the index; "deferred": journal only (the next query indexes in one
#: batch); "off": neither (benchmarks and tests of what a crash leaves).
_mode: ContextVar[str] = ContextVar("retain_index_updates", default="on")
#: How long the index writer lets commits accumulate before writing them in one transaction.
LINGER_S = 0.05


class _Mode:
    def __init__(self, mode: str) -> None:
        self._mode = mode
        self._tokens: list[Any] = []

    def __enter__(self) -> None:
        self._tokens.append(_mode.set(self._mode))

    def __exit__(self, *exc: object) -> None:
        _mode.reset(self._tokens.pop())


def deferred() -> _Mode:
    """Inside the block, commits skip the index update and only append to the journal; the
    next query indexes them all in one transaction. Useful for large imports.

    Example:
        >>> with retain.index.deferred():
        ...     for i in range(100_000):
        ...         Item({"i": i}).commit()
    """
    return _Mode("deferred")


def updates(mode: str) -> _Mode:
    """Set how commits treat the index in a block: ``"on"``, ``"deferred"`` or ``"off"``.

    ``"off"`` skips the journal too, so a commit in the block is found only by a scan of the
    storage (for a new directory) or by `retain.index.rebuild()`: meant for benchmarks and
    tests, not for use.
    """
    if mode not in ("on", "deferred", "off"):
        raise ConfigError(f"index updates are 'on', 'deferred' or 'off'; got {mode!r}")
    return _Mode(mode)


def journal(storage: Storage, id: str, kind: str, durable: bool = False) -> None:
    """Append `id` to the storage's journal (before the change it announces is published)."""
    missed = _append(storage, id, kind, durable)
    if missed is not None:
        _warn(missed)


class journaled:
    """``with journaled(storage, id, kind, durable): <the change>``: `journal`, but a journal
    that could not be appended to is reported only once the change is made. A change that
    fails says itself what was wrong (a read-only storage fails both), and a warning that the
    index may miss it would be false."""

    __slots__ = ("storage", "id", "kind", "durable", "missed")

    def __init__(self, storage: Storage, id: str, kind: str, durable: bool = False) -> None:
        self.storage, self.id, self.kind, self.durable = storage, id, kind, durable
        self.missed: str | None = None

    def __enter__(self) -> None:
        self.missed = _append(self.storage, self.id, self.kind, self.durable)

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None and self.missed is not None:
            _warn(self.missed)


def _append(storage: Storage, id: str, kind: str, durable: bool) -> str | None:
    """Append the line; what to warn of if it could not be appended, else None."""
    if _mode.get() == "off":
        return None
    root = storage.local_root()
    if root is None:
        return None
    path = journal_path(root)
    line = encode_journal_line(id, kind, time.time_ns())
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    try:
        try:
            fd = os.open(path, flags, 0o666)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, flags, 0o666)
        try:
            # Never fsynced, even in durable mode: the journal is a hint for repair. A line lost
            # to a power cut is covered by the scan of the storage's listing, whose new entry
            # the durable commit did fsync.
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        if not os.path.isdir(root):
            return None  # the storage itself is unusable: the publish that follows says so
        return (f"could not append to the index journal {path} ({exc.strerror or exc}); the index "
                "may miss interfaces committed now until retain.index.rebuild()")
    return None


def after_publish(storage: Storage, record: dict[str, Any], with_summary: bool = False) -> None:
    """Queue a record just published for the index (with the summary saved before the commit,
    if `with_summary`: a summary saved by another instance is found through the journal).
    Never raises."""
    if _mode.get() == "on":
        _writer.put(storage, record, with_summary, None, index_setting())


def after_summary(storage: Storage, record: dict[str, Any], summary: dict[str, Any]) -> None:
    """Queue new summary values of a committed interface for the index; never raises."""
    if _mode.get() == "on":
        _writer.put(storage, record, False, summary, index_setting())


def after_metrics(storage: Storage, record: dict[str, Any], last: dict[str, Any]) -> None:
    """Queue the last values of the metrics of a committed component for the index; never
    raises."""
    if _mode.get() == "on":
        _writer.put(storage, record, False, None, index_setting(), last)


def after_remove(storage: Storage, ids: list[str]) -> None:
    """Drop ids just removed from storage from the index (the queued updates first: one of
    them could add an id back). Never raises: the journal's removal lines repair the index at
    the next query."""
    if _mode.get() != "on" or not ids:
        return
    flush()
    index = index_setting()
    try:
        (default_index(storage) if index is None else make_index(index)).remove(ids)
    except Exception as exc:
        _warn(f"the index of {storage.url} was not updated after a removal ({exc}); the next "
              "query repairs it")


def after_annotate(storage: Storage, id: str) -> None:
    """Give the index the tags of `id` after a change, read from storage inside the index's
    write (so that of two processes tagging at once, the last writer has seen both). Never
    raises: the journal's ``t`` line repairs the index at the next query."""
    if _mode.get() != "on":
        return
    index = index_setting()
    try:
        (default_index(storage) if index is None else make_index(index)).set_tags(
            [id], lambda ids: read_tags(storage, ids)
        )
    except Exception as exc:
        _warn(f"the index of {storage.url} was not updated after a tag change ({exc}); the next "
              "query repairs it")


def flush(timeout: float = 60.0) -> None:
    """Wait until this process's queued index updates are written (queries call this first,
    so a process always finds what it committed)."""
    _writer.flush(timeout)


def _flush_and_close() -> None:
    """At exit: write the queued updates, then close the SQLite connections (closing
    checkpoints the WAL into the database file; see `close_connections`)."""
    flush(10.0)
    from .sqlite._connection import close_connections  # here: `import retain` need not load it

    close_connections()


class _Writer:
    """Writes queued index updates from a background thread, many commits per transaction.

    A commit only appends to a list (about a µs) instead of waiting for an SQLite transaction:
    the writer takes whatever has accumulated, in one transaction. Updates still queued when
    the process is killed are repaired from the journal by the next query; at a normal exit
    they are written (atexit). After a fork, the child starts with an empty queue (the parent
    writes its own).

    The thread ends when it finds the queue empty, and the next commit starts another: an idle
    process has no thread of retain's, so it may fork workers (`to_table`, rebuild), which a
    process with other threads must not.
    """

    def __init__(self) -> None:
        self._items: list[_Item] = []
        self._cond: Any = None
        self._thread: Any = None
        self._ended: Any = None  # the last thread that ended: a flush waits until it has
        self._daemon: Any = None  # retain._threads.Daemon, imported with the first commit
        self._busy = False
        self._flushing = 0

    def put(
        self,
        storage: Storage,
        record: dict[str, Any],
        with_summary: bool,
        summary: dict[str, Any] | None,
        index: Index | str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        """Queue an update for `index` (the setting in force where the commit ran; None: the
        storage's own index)."""
        cond = self._cond
        if cond is None:
            cond = self._start()
        with cond:
            self._items.append((storage, record, with_summary, summary, index, metrics))
            if self._thread is None:
                self._thread = self._daemon(self._run)
            elif len(self._items) == 1:
                if self._thread.is_alive():
                    cond.notify()
                else:  # ended by an error out of `_write` (its batch is left to the journal)
                    self._thread = self._daemon(self._run)

    def _start(self) -> Any:
        # With the first commit, not at `import retain` (threading and sqlite3 are not cheap).
        import atexit
        import sqlite3  # noqa: F401  (here, not in the thread: a test may swap sys.path meanwhile)
        import threading

        from .._threads import Daemon

        self._daemon = Daemon
        self._cond = threading.Condition(threading.Lock())
        if not _Writer._registered:
            _Writer._registered = True
            atexit.register(_flush_and_close)
        return self._cond

    _registered = False

    def flush(self, timeout: float) -> None:
        cond = self._cond
        if cond is None:
            return
        deadline = time.monotonic() + timeout
        with cond:
            self._flushing += 1
            cond.notify_all()
            try:
                while self._items or self._busy:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._thread is None or not self._thread.is_alive():
                        return  # the journal repairs what is left
                    cond.wait(min(left, 0.5))
            finally:
                self._flushing -= 1
            ended = self._ended if self._thread is None else None
        if ended is not None:
            # It has said it ends; until it has, it counts as a thread (no fork).
            ended.join(max(deadline - time.monotonic(), 0.0))

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                if not self._items:
                    self._ended, self._thread = self._thread, None  # the next put starts another
                    return
                if not self._flushing:
                    # Let a burst of commits accumulate: one transaction for all of them costs
                    # about what one costs alone. `flush` cuts the wait short.
                    cond.wait(LINGER_S)
                batch, self._items = self._items, []
                self._busy = True
            try:
                _write(batch)
            finally:
                with cond:
                    self._busy = False
                    cond.notify_all()

    def reset_after_fork(self) -> None:
        self.__init__()  # type: ignore[misc]


def _write(batch: list[_Item]) -> None:
    by_storage: dict[tuple[Storage, Index | str | None], list[IndexEntry]] = {}
    for storage, record, with_summary, summary, index, metrics in batch:
        if with_summary and summary is None and storage.supports_local_files:
            try:
                # Saved before the commit: in the local directory (an object store's cache too).
                summary = read_summary(storage.local_directory(record["id"]))
            except Exception:
                summary = None  # a damaged summary must not keep the record out of the index
        entry = IndexEntry.from_record(record, summary)
        entry.metrics = metrics
        by_storage.setdefault((storage, index), []).append(entry)
    for (storage, index), entries in by_storage.items():
        root = storage.local_root() if index is None else ""
        if index is None and (root is None or (not storage.is_remote and not os.path.isdir(root))):
            continue  # the storage was deleted meanwhile: do not bring its directory back
        try:
            if index is None:
                default_index(storage).upsert(entries)
            else:
                make_index(index).upsert(entries)
        except Exception as exc:
            _warn(f"the index of {storage.url} was not updated ({exc}); what was committed is "
                  "safe, and the next query repairs the index")


_writer = _Writer()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_writer.reset_after_fork)


def _warn(message: str) -> None:
    # No per-commit details in the message: the warnings filter then shows it once per place.
    warnings.warn(message, IndexWarning, stacklevel=3)
