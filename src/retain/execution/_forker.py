"""A single-threaded helper process that runs components, each in a fresh forked child, on
behalf of a multi-threaded host (a Dask worker), which must not fork itself: a fork copies
locks that other threads hold.

It does what a process pool's worker does (`pool._fork_and_run`: a spare child forked ahead
of time takes each payload), over two pipes: the host writes frames (8-byte big-endian length,
then a pickled payload) on the helper's standard input and reads one frame back (the outcome
as a dict) on its standard output. End of file on the input means the host is gone: a run in
progress is killed with it (its claim is then dead, so the component can be resumed), and the
helper exits.

Usage (by `Helper`): ``python -m retain.execution._forker [MODULE_TO_PRELOAD ...]``
"""

from __future__ import annotations

import os
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

__all__ = ["Helper", "main"]

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

    from .pool import _write_all

    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    _write_all(fd, _HEADER.pack(len(data)) + data)


def main(argv: list[str] | None = None) -> None:
    """The helper's loop (see the module's docstring)."""
    from .._run import describe_error
    from . import pool

    preload = list(sys.argv[1:] if argv is None else argv)
    # The protocol gets private descriptors; 0 and 1 are left to whatever the runs print.
    commands, answers = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    pool._init_worker(preload)
    try:
        while True:
            payload = read_frame(commands)
            if payload is None:
                break  # the host closed the pipe: it is done with this helper, or gone
            try:
                result = pool._fork_and_run(payload, watch=commands)
            except pool.OwnerGone:
                break
            except BaseException as exc:
                result = {"id": payload.get("id"), "status": "failed", "run": None, "error": describe_error(exc)}
            try:
                write_frame(answers, result)
            except OSError:  # the host is gone
                break
    finally:
        pool._end_worker()


class Helper:
    """A `_forker` process, from the host's side. Not thread-safe: one run at a time."""

    def __init__(self, preload: list[str]) -> None:
        import subprocess

        self.process: subprocess.Popen[bytes] = subprocess.Popen(
            [sys.executable, "-m", "retain.execution._forker", *preload],
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
        if result is None:  # the helper itself died (killed, out of memory)
            self.close()
            from .._runfiles import now_iso

            code = process.poll()
            return {
                "id": payload["id"], "status": "failed", "run": None,
                "error": {"type": "ProcessDied", "time": now_iso(), "traceback": "",
                          "message": f"the helper process that runs components ended (exit status {code})"},
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


if __name__ == "__main__":
    main()
