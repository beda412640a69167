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
import sys
import threading

from ._helper import read_frame, write_frame
from ..runs.dispatch import describe_error
from . import pool
from .base import prepare_payload, run_prepared

__all__ = ["main"]

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


if __name__ == "__main__":
    main()
