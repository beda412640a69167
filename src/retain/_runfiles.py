"""Reading and writing a component's runtime files (names in `storage/layout.py`).

`RunFiles` holds the logic (claims, ends, the finished marker, logs) over five byte-level
primitives, which it implements on a directory; `storage/_store_runfiles.py` implements them
on an object store.

On a directory, whole files go through `_fs.atomic_write` (a claim or an end is created
exclusively: the first writer wins) and logs are appended with one `O_APPEND` write per line,
so concurrent writers never interleave inside a line.
"""

from __future__ import annotations

import os

from ._errors import RecordError, StorageError
from ._fs import append_bytes, atomic_write, makedirs
from ._host import host_facts
from ._timestamps import now_iso
from .storage.layout import (
    EVENTS_FILE,
    FAILURES_FILE,
    FINISHED_FILE,
    OUTPUT_LOG,
    SUBMISSIONS_FILE,
    claim_file,
    end_file,
    heartbeat_file,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["RunFiles"]


def _dumps(value: dict[str, Any]) -> bytes:
    import json

    return (json.dumps(value, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")


class RunFiles:
    """The runtime files of one component directory."""

    __slots__ = ("directory",)

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    @property
    def output_log(self) -> str:
        """The local path runs write their output to (as it happens)."""
        return os.path.join(self.directory, OUTPUT_LOG)

    def ensure(self, durable: bool = False) -> None:
        makedirs(self.directory, durable=durable)

    # -- the primitives (bytes of one runtime file) -----------------------------------------

    def _exists(self, name: str) -> bool:
        return os.path.exists(os.path.join(self.directory, name))

    def _read_bytes(self, name: str) -> bytes | None:
        path = os.path.join(self.directory, name)
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(exc.errno or 0, f"could not read {path}: {exc.strerror}") from exc

    def _create_bytes(self, name: str, data: bytes, durable: bool) -> bool:
        return atomic_write(self.path(name), lambda handle: handle.write(data), durable=durable, exclusive=True)

    def _put_bytes(self, name: str, data: bytes, durable: bool) -> None:
        atomic_write(self.path(name), lambda handle: handle.write(data), durable=durable)

    def _append_bytes(self, name: str, data: bytes, durable: bool) -> None:
        append_bytes(self.path(name), data, durable=durable)

    # -- the output log ------------------------------------------------------------------

    def prepare_run(self) -> None:
        """Before a run: where the directory is a local cache of the storage, make the run's
        log continue the stored one."""

    def sync_output(self) -> None:
        """Send what a run wrote to `output_log` so far to the storage (where it is elsewhere)."""

    def read_output(self) -> bytes:
        """Everything the runs printed, as far as the storage has it."""
        return self._read_bytes(OUTPUT_LOG) or b""

    # -- reading -------------------------------------------------------------------------

    def is_finished(self) -> bool:
        return self._exists(FINISHED_FILE)

    def latest_run(self) -> int:
        """The number of the latest claimed run; 0 when it never ran.

        Runs are numbered without gaps, so this probes claims 1, 2, ... rather than listing a
        directory that may hold any number of the user's files.
        """
        run = 0
        while self._exists(claim_file(run + 1)):
            run += 1
        return run

    def read(self, name: str) -> dict[str, Any] | None:
        """A whole runtime file as a dict, or None when it does not exist."""
        import json

        data = self._read_bytes(name)
        if data is None:
            return None
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
        import json

        data = self._read_bytes(name)
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
        return self._create_bytes(name, _dumps(value), durable)

    def mark_finished(self, run: int, durable: bool = False) -> None:
        """Publish the finished marker: a hard link to run `run`'s end (one link, no copy)."""
        target = self.path(FINISHED_FILE)
        try:
            os.link(self.path(end_file(run)), target)
        except FileExistsError:
            return
        except OSError:  # a file system without hard links: a copy, atomically
            end = self.end(run)
            if end is not None:
                self.replace(FINISHED_FILE, end, durable)
            return
        if durable:
            from ._fs import fsync_directory

            fsync_directory(self.directory)

    def replace(self, name: str, value: dict[str, Any], durable: bool = False) -> None:
        self._put_bytes(name, _dumps(value), durable)

    def append(self, name: str, value: dict[str, Any], durable: bool = False) -> None:
        """Append one JSON line (a single ``O_APPEND`` write on a directory)."""
        self._append_bytes(name, _dumps(value), durable)

    def event(self, event: str, run: int, durable: bool = False, **fields: Any) -> None:
        facts = host_facts()
        self.append(
            EVENTS_FILE,
            {"event": event, "run": run, "time": now_iso(), "host": facts["host"], "pid": os.getpid(), **fields},
            durable,
        )


def _prefixed(takeover: dict[str, Any]) -> dict[str, Any]:
    return {f"of_{key}": value for key, value in takeover.items()}
