"""A single-threaded helper process that runs components, each in a fresh forked child, on
behalf of a multi-threaded host (a Dask worker), which must not fork itself: a fork copies
locks that other threads hold.

It does what a process pool's worker does (`pool.fork_and_run`: a spare child forked ahead
of time takes each payload), over two pipes: the host writes frames (8-byte big-endian length,
then a pickled payload) on the helper's standard input and reads one frame back (the outcome
as a dict) on its standard output. End of file on the input means the host is gone: a run in
progress is killed with it (its claim is then dead, so the component can be resumed), and the
helper exits.

With ``--in-process`` the helper runs each component itself instead, one after the other (no
fork per component); a watcher thread then ends the helper when the host goes away mid-run.

Usage (by `Helper`): ``python -m retain.execution._forker [--in-process] [MODULE_TO_PRELOAD ...]``
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import time

from .._fs import write_all
from ..runs.dispatch import describe_error
from . import pool
from .base import prepare_payload, run_prepared
from .._timestamps import now_iso
from ..storage import make_storage
from ..storage.layout import OUTPUT_LOG

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

    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    write_all(fd, _HEADER.pack(len(data)) + data)


def main(argv: list[str] | None = None) -> None:
    """The helper's loop (see the module's docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    in_process = bool(args) and args[0] == "--in-process"
    preload = args[1:] if in_process else args
    # The protocol gets private descriptors; 0 and 1 are left to whatever the runs print.
    commands, answers = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    pool.init_worker(preload)
    running = _watch(commands) if in_process else None
    try:
        while True:
            payload = read_frame(commands)
            if payload is None:
                break  # the host closed the pipe: it is done with this helper, or gone
            try:
                if running is not None:
                    running.set()
                    try:
                        prepare_payload(payload)
                        result = run_prepared(payload)
                    finally:
                        running.clear()
                else:
                    result = pool.fork_and_run(payload, watch=commands)
            except pool.OwnerGone:
                break
            except BaseException as exc:
                result = {"id": payload.get("id"), "status": "failed", "run": None, "error": describe_error(exc)}
            try:
                write_frame(answers, result)
            except OSError:  # the host is gone
                break
    finally:
        pool.end_worker()


def _watch(commands: int) -> threading.Event:
    """For runs in this process: a thread that ends the process when the host goes away while
    a run is in progress (set the returned event during runs), as a forked run dies with it.

    Between runs the host writes the next payload, which the main thread reads before it sets
    the event; so the pipe counts as closed only when it is readable with nothing to read."""

    def loop() -> None:
        import select

        while True:
            running.wait()
            ready, _, _ = select.select([commands], [], [], 0.2)
            if ready and running.is_set() and _at_end(commands):
                os._exit(1)

    running = threading.Event()
    threading.Thread(target=loop, name="retain-host-watch", daemon=True).start()
    return running


def _at_end(fd: int) -> bool:
    """Whether pipe `fd` is at end of file now: readable, with no byte to read."""
    import fcntl
    import select
    import termios

    if not select.select([fd], [], [], 0)[0]:
        return False  # what made it readable was a payload, read meanwhile
    waiting = bytearray(4)
    try:
        fcntl.ioctl(fd, termios.FIONREAD, waiting)
    except OSError:
        return False
    return int.from_bytes(waiting, sys.byteorder) == 0


class Helper:
    """A `_forker` process, from the host's side. Not thread-safe: one run at a time."""

    def __init__(self, preload: list[str], *, fresh_process: bool = True) -> None:
        """Start a helper that imports `preload`; it runs each component in a fresh child
        (`fresh_process`), or itself, one after the other."""
        import subprocess

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


if __name__ == "__main__":
    main()
