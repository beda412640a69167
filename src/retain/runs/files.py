"""Reading and writing a component's runtime files (names in `storage/layout.py`).

`RunFiles` holds the logic (claims, ends, the finished marker, logs) over the file primitives
of the `Storage` contract: `read_file`, `has_file`, `create_file` (a claim or an end is
created exclusively: the first writer wins), `replace_file` and `append_file` (logs, one
line per append, so concurrent writers never interleave inside a line). It serves every
backend: where the storage is remote (`Storage.is_remote`), the output log and the metrics
that a run appends to in the local cache are sent with each heartbeat and at the run's end.
"""

from __future__ import annotations

import os
import _thread

from .._errors import RecordError
from .._fs import atomic_write, fsync_directory, makedirs
from .._timestamps import now_iso
from ..storage.layout import (
    EVENTS_FILE,
    FAILURES_FILE,
    FINISHED_FILE,
    METRICS_FILE,
    METRICS_LAST_FILE,
    OUTPUT_LOG,
    SUBMISSIONS_FILE,
    claim_file,
    end_file,
    heartbeat_file,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..storage.base import Storage

__all__ = ["RunFiles"]


#: The files a run appends to in the local cache of a remote storage, sent with each heartbeat
#: and at its end.
_SENT = (OUTPUT_LOG, METRICS_FILE, METRICS_LAST_FILE)


# `import retain` loads this module (a component's state is read through it); json (which
# loads `re`) and the host facts (socket, platform) load at the first run file used.


def _dumps(value: dict[str, Any]) -> bytes:
    import json  # see above

    return (json.dumps(value, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")


class RunFiles:
    """The runtime files of component `id` in `storage`.

    `directory` is ``storage.local_directory(id)``: where runs write their output (for a
    remote storage, its local cache; every other runtime file is read from and written to
    the storage, never cached: they change).
    """

    __slots__ = ("storage", "id", "directory", "_sent", "_sending")

    def __init__(self, storage: Storage, id: str) -> None:
        self.storage = storage
        self.id = id
        self.directory = storage.local_directory(id)
        #: (size, mtime) of each file of `_SENT` when last sent (a remote storage only).
        self._sent: dict[str, tuple[int, int] | None] = {}
        # The heartbeat thread and the run's end both send the log: one at a time, so that an
        # older copy never lands after a newer one.
        # `_thread`, not `threading`: `import retain` loads this module and no threads.
        self._sending = _thread.allocate_lock() if storage.is_remote else None

    @property
    def output_log(self) -> str:
        """The local path runs write their output to (as it happens)."""
        return os.path.join(self.directory, OUTPUT_LOG)

    def ensure(self, durable: bool = False) -> None:
        self.storage.prepare_directory(self.id)
        makedirs(self.directory, durable=durable)

    # -- the output log ------------------------------------------------------------------

    def prepare_run(self) -> None:
        """Before a run: where the directory is a local cache of the storage, make the run's
        log and metrics continue the stored ones."""
        if not self.storage.is_remote:
            return
        # Cached files the run reads are checked against the store by `load_file`; the log and
        # the metrics are appended to here, so they must start as the stored ones.
        self.ensure()
        for name in _SENT:
            path = os.path.join(self.directory, name)
            stored = self.storage.read_file(self.id, name)
            if stored is None:
                _remove(path)
                self._sent[name] = None
                continue
            atomic_write(path, lambda handle: handle.write(stored))
            self._sent[name] = _size_and_time(path)

    def sync_output(self) -> None:
        """Send what a run wrote to `output_log` (and its metrics) so far to the storage,
        where it is elsewhere."""
        if self._sending is None:
            return
        with self._sending:
            changed = []
            for name in _SENT:
                now = _size_and_time(os.path.join(self.directory, name))
                if now is not None and now != self._sent.get(name):
                    changed.append((name, now))
            if not changed:
                return
            self.storage.upload_files(self.id, [name for name, _ in changed])
            for name, now in changed:
                self._sent[name] = now

    def read_output(self) -> bytes:
        """Everything the runs printed, as far as the storage has it."""
        return self.storage.read_file(self.id, OUTPUT_LOG) or b""

    # -- reading -------------------------------------------------------------------------

    def is_finished(self) -> bool:
        return self.storage.has_file(self.id, FINISHED_FILE)

    def latest_run(self) -> int:
        """The number of the latest claimed run; 0 when it never ran.

        Runs are numbered without gaps, so this probes claims 1, 2, ... rather than listing a
        directory that may hold any number of the user's files.
        """
        run = 0
        while self.storage.has_file(self.id, claim_file(run + 1)):
            run += 1
        return run

    def read(self, name: str) -> dict[str, Any] | None:
        """A whole runtime file as a dict, or None when it does not exist."""
        data = self.storage.read_file(self.id, name)
        if data is None:
            return None
        import json  # see `_dumps`

        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise RecordError(
                f"runtime file {name!r} of {self.directory!r} is corrupted (files here are written "
                "atomically: was it edited by hand?); move it aside to let the component run again"
            )
        return value

    def claim(self, run: int) -> dict[str, Any] | None:
        return self.read(claim_file(run))

    def heartbeat(self, run: int) -> dict[str, Any] | None:
        return self.read(heartbeat_file(run))

    def end(self, run: int) -> dict[str, Any] | None:
        return self.read(end_file(run))

    def read_lines(self, name: str) -> list[dict[str, Any]]:
        """The entries of an append-only log (a line cut short by a crash is skipped)."""
        import json  # see `_dumps`

        data = self.storage.read_file(self.id, name)
        out = []
        for line in (data or b"").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def events(self) -> list[dict[str, Any]]:
        """Every event, oldest first: each run's start (``started``, or ``resumed`` after an
        earlier run), ``takeover`` and end (``finished``, ``failed``, ``died``) from its claim
        and end files, and the rare facts recorded nowhere else (``superseded``) from the log."""
        out = []
        run = 1
        while (claim := self.claim(run)) is not None:
            base = {"run": run, "host": claim.get("host"), "pid": claim.get("pid")}
            if claim.get("takeover"):
                out.append({**base, "event": "takeover", "time": claim["started"], **_prefixed(claim["takeover"])})
            out.append({**base, "event": "resumed" if run > 1 else "started", "time": claim["started"]})
            end = self.end(run)
            if end is not None:
                extra = {k: v for k, v in end.items() if k not in ("run", "status", "time")}
                out.append({**base, "event": end.get("status"), "time": end.get("time"), **extra})
            run += 1
        out.extend(self.read_lines(EVENTS_FILE))
        return sorted(out, key=lambda event: str(event.get("time")))

    def failures(self) -> list[dict[str, Any]]:
        return self.read_lines(FAILURES_FILE)

    def submission(self) -> dict[str, Any] | None:
        """The latest hand-over to a batch system (see `SUBMISSIONS_FILE`), or None."""
        entries = self.read_lines(SUBMISSIONS_FILE)
        return entries[-1] if entries else None

    # -- writing -------------------------------------------------------------------------

    def create(self, name: str, value: dict[str, Any], durable: bool = False) -> bool:
        """Write `name` unless it exists (exclusive, atomic); False when another writer won."""
        return self.storage.create_file(self.id, name, _dumps(value), durable=durable)

    def mark_finished(self, run: int, durable: bool = False) -> None:
        """Publish the finished marker: a copy of run `run`'s end (where the directory is the
        storage, a hard link to it: one link, no copy)."""
        if self.storage.is_remote:
            end = self.end(run)
            if end is not None:
                self.create(FINISHED_FILE, end, durable)
            return
        target = os.path.join(self.directory, FINISHED_FILE)
        try:
            os.link(os.path.join(self.directory, end_file(run)), target)
        except FileExistsError:
            return
        except OSError:  # a file system without hard links: a copy, atomically
            end = self.end(run)
            if end is not None:
                self.replace(FINISHED_FILE, end, durable)
            return
        if durable:
            fsync_directory(self.directory)

    def replace(self, name: str, value: dict[str, Any], durable: bool = False) -> None:
        self.storage.replace_file(self.id, name, _dumps(value), durable=durable)

    def append(self, name: str, value: dict[str, Any], durable: bool = False) -> None:
        """Append one JSON line (a single ``O_APPEND`` write on a directory)."""
        self.storage.append_file(self.id, name, _dumps(value), durable=durable)

    def event(self, event: str, run: int, durable: bool = False, **fields: Any) -> None:
        from .._host import host_facts  # see `_dumps`

        facts = host_facts()
        self.append(
            EVENTS_FILE,
            {"event": event, "run": run, "time": now_iso(), "host": facts["host"], "pid": os.getpid(), **fields},
            durable,
        )


def _prefixed(takeover: dict[str, Any]) -> dict[str, Any]:
    return {f"of_{key}": value for key, value in takeover.items()}


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
