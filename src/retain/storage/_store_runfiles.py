"""The runtime files of a component on an object store: `RunFiles` over the store's calls.

Creating uses the store's put-if-absent, an append rewrites the object (on S3 only if nobody
wrote it in between: ``If-Match``), and `output.log` and the metrics (`metrics.jsonl`, and their last values) are
written to the local cache as they happen and sent with each heartbeat and when the run ends.
"""

from __future__ import annotations

import os
import threading

from .._fs import atomic_write
from .._runfiles import RunFiles
from .layout import FINISHED_FILE, METRICS_FILE, METRICS_LAST_FILE, OUTPUT_LOG

#: The files a run appends to in the local cache, sent with each heartbeat and at its end.
_SENT = (OUTPUT_LOG, METRICS_FILE, METRICS_LAST_FILE)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .fsspec import FsspecStorage

__all__ = ["StoreRunFiles"]


class StoreRunFiles(RunFiles):
    """The runtime files of a component whose directory is in an object store.

    `directory` is the local cache directory of the component (where `output_log` is written);
    every other file is read from and written to the store, never cached: they change.
    """

    __slots__ = ("storage", "id", "_sent", "_sending")

    def __init__(self, storage: FsspecStorage, id: str) -> None:
        super().__init__(storage.local_directory(id))
        self.storage = storage
        self.id = id
        #: (size, mtime) of each file of `_SENT` when last sent.
        self._sent: dict[str, tuple[int, int] | None] = {}
        # The heartbeat thread and the run's end both send the log: one at a time, so that an
        # older copy never lands after a newer one.
        self._sending = threading.Lock()

    def _key(self, name: str) -> str:
        return self.storage._key(self.id, name)

    def _exists(self, name: str) -> bool:
        return self.storage._exists(self._key(name))

    def _read_bytes(self, name: str) -> bytes | None:
        return self.storage._cat(self._key(name))

    def _create_bytes(self, name: str, data: bytes, durable: bool) -> bool:
        return self.storage._create(self._key(name), data)

    def _put_bytes(self, name: str, data: bytes, durable: bool) -> None:
        self.storage._put_bytes(self._key(name), data)

    def _append_bytes(self, name: str, data: bytes, durable: bool) -> None:
        self.storage._append(self._key(name), data)

    def mark_finished(self, run: int, durable: bool = False) -> None:
        end = self.end(run)
        if end is not None:
            self.create(FINISHED_FILE, end)

    def prepare_run(self) -> None:
        # Cached files the run reads are checked against the store by `load_file`; the log and
        # the metrics are appended to here, so they must start as the stored ones.
        self.ensure()
        for name in _SENT:
            path = os.path.join(self.directory, name)
            stored = self._read_bytes(name)
            if stored is None:
                _remove(path)
                self._sent[name] = None
                continue
            atomic_write(path, lambda handle: handle.write(stored))
            self._sent[name] = _size_and_time(path)

    def sync_output(self) -> None:
        with self._sending:
            changed = []
            for name in _SENT:
                now = _size_and_time(os.path.join(self.directory, name))
                if now is not None and now != self._sent.get(name):
                    changed.append((name, now))
            if not changed:
                return
            self.storage._upload(self.id, [name for name, _ in changed])
            for name, now in changed:
                self._sent[name] = now


def _size_and_time(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
