"""Daemon threads started without waiting for them to run."""

from __future__ import annotations

import _thread
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Daemon", "running"]

#: The daemons started in this process that have not ended (a forked child starts with none).
_running: dict[int, int] = {}  # pid -> count
_count_lock = _thread.allocate_lock()


class Daemon:
    """A daemon thread that runs `target`, started without waiting for it.

    `threading.Thread.start()` waits until the new thread has run, which on a busy machine
    took milliseconds (a median of 3.6 ms in a fresh fork under load 5, measured): paid by
    every run of the process pool, whose fresh processes start their threads anew.
    """

    __slots__ = ("_pid", "_alive", "_ended")

    def __init__(self, target: Callable[[], object]) -> None:
        self._pid = os.getpid()
        self._alive = True
        self._ended = _thread.allocate_lock()
        self._ended.acquire()

        def run() -> None:
            try:
                target()
            finally:
                self._alive = False
                with _count_lock:
                    _running[self._pid] -= 1
                self._ended.release()

        # Counted before it starts: `threading` does not know these threads, and whoever
        # forks must (`running`).
        with _count_lock:
            _running[self._pid] = _running.get(self._pid, 0) + 1
        _thread.start_new_thread(run, ())

    def is_alive(self) -> bool:
        """Whether it runs, in this process (a forked child has none of its parent's threads)."""
        return self._alive and self._pid == os.getpid()

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for it to end (no longer counted by `running`); whether
        it has."""
        if self._pid != os.getpid():
            return True  # a forked child has none of its parent's threads
        if not self._ended.acquire(timeout=max(timeout, 0.0)):
            return False
        self._ended.release()
        return True


def running() -> int:
    """How many daemons run in this process: threads that `threading.active_count` does not
    count, and that a fork must take into account as it does the others."""
    return _running.get(os.getpid(), 0)
