"""Reading every record of a storage for `rebuild`, in worker processes when there are many.

A rebuild reads two small files per interface and parses the record: most of its time, and
independent from one interface to the next, while the index takes the rows from one writer.
With more than one CPU and many records, worker processes read chunks of ids and send back what
the index stores (texts, and config leaves, which the index would otherwise compute here),
encoded with `marshal` (the cheapest encoding of plain values), while this process writes.

Workers are forked, and only from a process with a single thread, where no other thread can
hold a lock (of Python, of SQLite) that a child would wait for forever. Not from a fork server
or by spawning: those run the main module again in each worker, which in a script without an
``if __name__ == "__main__":`` guard would be the user's whole script. Otherwise (threads, one
CPU, below `PARALLEL_MIN` records, no working semaphores, a broken worker) reading happens in
this process, with the same results.
"""

from __future__ import annotations

import gc
import marshal
import os
import sys
import threading
from collections import deque
from contextlib import contextmanager

from .._errors import RecordError
from .._fs import read_small_file
from .._threads import running
from .._log import logger
from ..storage.layout import METRICS_LAST_FILE, RECORD_FILE, SUMMARY_FILE, index_fields, summary_text
from ..storage.local import LocalStorage
from ._entry import IndexEntry, config_leaves
from ._records import read_entries

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Future, ProcessPoolExecutor
    from typing import Any

    from ..storage.base import Storage

    #: (id, entry or None when there is no record or it is damaged, error message or None)
    Read = tuple[str, "IndexEntry | None", "str | None"]

__all__ = ["MAX_WORKERS", "PARALLEL_MIN", "can_fork", "paused_gc", "read_chunks"]

#: Records below which reading in this process is faster than starting forked workers.
PARALLEL_MIN = 10_000
#: At most this many workers (reading is bound by the one writer beyond that).
MAX_WORKERS = 4


@contextmanager
def read_chunks(storage: Storage, ids: list[str], size: int) -> Iterator[Iterator[list[Read]]]:
    """In the block, an iterator over the chunks of `size` ids in turn: for each,
    ``(id, entry, error)`` for each of its ids; the entry is None when the record is missing or
    damaged (then `error` says why). Workers, when there are some, start on entering: before
    the caller opens its transaction, so a forked worker holds nothing of it."""
    chunks = [ids[start:start + size] for start in range(0, len(ids), size)]
    pool, workers = _pool(storage, len(ids))
    if pool is None:
        yield (_read_here(storage, chunk) for chunk in chunks)
        return
    from concurrent.futures.process import BrokenProcessPool

    ahead: deque[Future[bytes]] = deque()
    try:
        # A few chunks ahead of the writer: bounds memory when the writer is slower.
        for chunk in chunks[:4 * workers]:
            ahead.append(pool.submit(_read_in_worker, chunk))
    except (BrokenProcessPool, OSError):  # the workers could not start
        ahead.clear()
    try:
        yield _collect(storage, pool, chunks, ahead)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _collect(storage: Storage, pool: ProcessPoolExecutor, chunks: list[list[str]], ahead: deque[Future[bytes]]) -> Iterator[list[Read]]:
    from concurrent.futures.process import BrokenProcessPool

    submitted, done = len(ahead), 0
    try:
        while ahead:
            data = ahead.popleft().result()
            done += 1
            if submitted < len(chunks):
                ahead.append(pool.submit(_read_in_worker, chunks[submitted]))
                submitted += 1
            yield _unpack(data)
    except (BrokenProcessPool, OSError) as exc:
        # A worker died (out of memory?): read the rest here. An error reading a record
        # comes back here too, and is raised again by reading that chunk here.
        logger("retain.index").warning("a rebuild worker failed (%s); reading the rest in this process", exc)
    for chunk in chunks[done:]:
        yield _read_here(storage, chunk)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector in the block. A rebuild makes millions of short-lived
    objects and no cycles; the collector would walk them again and again (a fifth of the time
    of a rebuild). Reference counting still frees everything meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_here(storage: Storage, chunk: list[str]) -> list[Read]:
    return [
        (id, entry, None if error is None else str(error))
        for id, entry, error in read_entries(storage, chunk)
    ]


def _pool(storage: Storage, count: int) -> tuple[ProcessPoolExecutor | None, int]:
    """A process pool to read `count` records of `storage` with and its number of workers, or
    None to read here."""
    if type(storage) is not LocalStorage or count < PARALLEL_MIN:
        return None, 0
    return forked_pool(_start_worker, (storage,)) or (None, 0)


def forked_pool(initializer: Any, initargs: tuple[Any, ...] = ()) -> tuple[ProcessPoolExecutor, int] | None:
    """A pool of workers forked from this process, one per CPU (up to `MAX_WORKERS`), and
    their number; None where they may not be forked (`can_fork`), on one CPU, or where
    process pools do not work."""
    cpus = usable_cpus()
    if cpus < 2 or not can_fork():
        return None
    # multiprocessing and the process pool load only when there are workers to start.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(cpus, MAX_WORKERS)
    try:
        pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=initializer, initargs=initargs,
        )
    except (OSError, ImportError, NotImplementedError, ValueError):
        return None  # no working semaphores (some sandboxes)
    return pool, workers


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Whether workers may be forked: on Linux (elsewhere system libraries do not survive a
    fork), from a process with no other thread (see the module docstring)."""
    import multiprocessing

    return (
        sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
        and not running()  # `_threads.Daemon`s, which `threading` does not count
    )


_storage: Storage | None = None


def _start_worker(storage: Storage) -> None:
    global _storage
    _storage = storage
    gc.disable()  # a worker only makes short-lived objects without cycles (see paused_gc)


def _read_in_worker(chunk: list[str]) -> bytes:
    """A chunk read in a worker, marshalled: for each id, ``(id, module, qualname, kind,
    created, config_text, canonical_text, summary_text, leaves, metrics_text)``, or ``(id, error)`` without
    an entry. What `_read_here` does for a `LocalStorage`, in fewer steps (one directory path
    per id, no IndexEntry on this side). The config travels as text and leaves, which is what
    backends write, not as a dict: a third of the objects for the writer to decode."""

    assert _storage is not None
    directory = _storage.local_directory
    share = _shared.setdefault
    out: list[tuple[Any, ...]] = []
    for id in chunk:
        base = directory(id)
        where = f"{base}/{RECORD_FILE}"
        record = read_small_file(where)
        if record is None:
            out.append((id, None))
            continue
        try:
            fields = index_fields(record, where, id)
        except RecordError as exc:
            out.append((id, str(exc)))
            continue
        summary = read_small_file(f"{base}/{SUMMARY_FILE}")
        metrics = read_small_file(f"{base}/{METRICS_LAST_FILE}")
        module, qualname, kind = fields["module"], fields["class"], fields["kind"]
        out.append((
            id, share(module, module), share(qualname, qualname), share(kind, kind),
            fields["created"], fields["config_text"], fields["canonical_text"],
            None if summary is None else summary_text(summary),
            [(share(key, key), value) for key, value in config_leaves(fields["config"])],
            None if metrics is None else summary_text(metrics),
        ))
    return marshal.dumps(out)


#: Strings that repeat from one entry to the next (config keys, class names), one object each:
#: marshal writes a repeated object once, and the writer then makes fewer objects.
_shared: dict[str, str] = {}


def _unpack(data: bytes) -> list[Read]:
    out: list[Read] = []
    for item in marshal.loads(data):
        if len(item) == 2:
            out.append((item[0], None, item[1]))
            continue
        id, module, qualname, kind, created, config_text, canonical_text, summary_text, leaves, metrics = item
        # The config is parsed from its text if a backend asks for it (see IndexEntry.config).
        out.append((id, IndexEntry(
            id, module, qualname, kind, created, None, {}, None, config_text=config_text,
            canonical_text=canonical_text, summary_text=summary_text, leaves=leaves, metrics_text=metrics,
        ), None))
    return out
