"""The host's side of a `_forker` helper process (the process pool's and Dask's): start it,
send it a payload, read the outcome. Frames on its pipes are an 8-byte big-endian length,
then a pickled value. Kept apart from `_forker` (the helper's own loop), which imports the
pool: the pool starts helpers."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time

from .._fs import write_all
from .._timestamps import now_iso
from ..storage import make_storage
from ..storage.layout import OUTPUT_LOG

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Helper", "read_frame", "write_frame"]

_HEADER = struct.Struct(">Q")


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> Any:
    """The next pickled frame on `fd`, or None at end of file."""
    import pickle

    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    data = _read_exactly(fd, _HEADER.unpack(header)[0])
    return None if data is None else pickle.loads(data)


def write_frame(fd: int, value: Any) -> None:
    import pickle

    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    write_all(fd, _HEADER.pack(len(data)) + data)


class Helper:
    """A `_forker` process, from the host's side. Not thread-safe: one run at a time."""

    def __init__(self, preload: list[str], *, fresh_process: bool = True) -> None:
        """Start a helper that imports `preload`; it runs each component in a fresh child
        (`fresh_process`), or itself, one after the other."""
        mode = [] if fresh_process else ["--in-process"]
        #: When it started (seconds since the epoch), before it imported anything.
        self.started = time.time()
        self.process: subprocess.Popen[bytes] = subprocess.Popen(
            [sys.executable, "-m", "retain.execution._forker", *mode, *preload],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Run `payload` (see `base.Job.payload`) in a fresh child of the helper; its outcome."""
        process = self.process
        assert process.stdin is not None and process.stdout is not None
        try:
            write_frame(process.stdin.fileno(), payload)
            result = read_frame(process.stdout.fileno())
        except OSError:
            result = None
        if result is None:  # the helper itself died (killed, out of memory, or the run ended it)
            self.close()
            import signal

            code = process.returncode
            how = f"exit status {code}"
            if code is not None and code < 0:
                try:
                    how = f"killed by {signal.Signals(-code).name}"
                except ValueError:
                    how = f"killed by signal {-code}"
            log = os.path.join(make_storage(payload["storage"]).local_directory(payload["id"]), OUTPUT_LOG)
            return {
                "id": payload["id"], "status": "failed", "run": None,
                "error": {"type": "ProcessDied", "time": now_iso(), "traceback": "",
                          "message": f"its process ended without a result: {how}; see {log}"},
            }
        return result  # type: ignore[no-any-return]

    def close(self) -> None:
        """End the helper (its spare child goes too); a run in progress is killed."""
        process = self.process
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            process.wait(10)
        except Exception:
            process.kill()
            process.wait()
