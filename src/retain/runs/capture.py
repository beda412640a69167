"""Everything a run prints goes to its `output.log` as it happens, at the file-descriptor level.

File descriptors 1 and 2 are redirected (`os.dup2`), so output of C extensions and of child
processes of the run is captured too. With `echo`, the output goes through two pipes that a
copier thread tees to the log and to the original stream, so the user still sees it; the log
is then created when the run first prints (a new file costs more than the rest of a run's
bookkeeping on some file systems). Without echo the descriptors point at the log itself. When
`sys.stdout` or `sys.stderr` is not backed by descriptor 1 or 2 (a notebook), it is wrapped to
write to the log as well.

The pipes and the copier thread are made once per process, at the first capture with echo,
and serve every later one: starting a thread and joining it again cost more than the rest of
a short run's bookkeeping. A capture points descriptors 1 and 2 at the pipes, and at its end
points them back and copies what the pipes still hold (it is counted, so a background child
that keeps printing cannot hold the run up) before it lets go of its log. What a background
child of a run prints after the run ended goes on to that run's log (and the terminal) until
the next capture in the process starts.

File descriptors belong to the process: one capture at a time per process. A nested capture in
the same thread (a component launched inside another's run) stacks, and with echo its output
reaches both logs; a capture requested by another thread while one is active is skipped, and
says so in its log.
"""

from __future__ import annotations

import os
import sys

from .._fs import write_all

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, TextIO

__all__ = ["Capture"]

_active: list[tuple[int, Capture]] = []  # (thread id, capture), innermost last


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _fd_of(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


class _Log:
    """The log file, opened (and its header written) at the first write; shared by the copier
    thread, the stream wrappers and the run's own notes."""

    def __init__(self, path: str, header: str) -> None:
        import threading

        self.path = path
        self.header = header
        self.fd = -1
        self.lock = threading.Lock()
        self.users = 1  # the capture, plus the copier while this log is one of its targets

    def open(self) -> int:
        with self.lock:
            if self.fd < 0:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(self.fd, self.header.encode("utf-8", "replace"))
            return self.fd

    def write(self, data: bytes) -> None:
        try:
            os.write(self.open(), data)
        except OSError:
            pass

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0 and self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


class _TeeText:
    """A text stream that writes to the log, and with `echo` to `stream` too (for streams
    without a descriptor)."""

    def __init__(self, stream: Any, log: _Log, echo: bool) -> None:
        self._stream = stream
        self._log = log
        self._echo = echo

    def write(self, text: str) -> int:
        self._log.write(text.encode("utf-8", "replace"))
        if self._echo:
            self._stream.write(text)
        return len(text)

    def flush(self) -> None:
        if self._echo:
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Target:
    """Where the copier sends what one capture's run prints: its log, then `out` (copies of
    the descriptors 1 and 2 the capture found), or, for a capture nested in another one with
    echo (whose pipes those descriptors were), on to the target below."""

    __slots__ = ("log", "out")

    def __init__(self, log: _Log, out: tuple[int, int] | None) -> None:
        self.log = log
        self.out = out

    def drop(self) -> None:
        if self.out is not None:
            for fd in self.out:
                os.close(fd)
        self.log.release()


class _Copier:
    """The process's two pipes (for descriptors 1 and 2) and the daemon thread that copies
    them to the targets of the active captures, innermost first."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()  # held while a chunk is read and delivered
        self.pipes: list[tuple[int, int]] = []
        for _ in range(2):
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)  # the end of a run reads only what is there
            self.pipes.append((read_end, write_end))
        self.targets: list[_Target] = []
        #: The last outermost target once its capture ended: what a background child of that
        #: run prints later goes there, until the next capture.
        self.after: _Target | None = None
        from .._threads import Daemon

        self.thread = Daemon(self._loop)  # (not threading.Thread: see Daemon)

    def _loop(self) -> None:
        import select

        reads = [read_end for read_end, _ in self.pipes]
        while True:
            try:
                ready, _, _ = select.select(reads, [], [])
            except InterruptedError:
                continue
            except (OSError, ValueError):
                return  # the pipes were closed (a forked child resets its own copier)
            for index, read_end in enumerate(reads):
                if read_end in ready:
                    with self.lock:
                        try:
                            chunk = os.read(read_end, 65536)
                        except BlockingIOError:
                            continue  # the end of a capture took it meanwhile
                        except OSError:
                            return
                        self._deliver(index, chunk)

    def _deliver(self, index: int, chunk: bytes) -> None:
        targets = self.targets or ([self.after] if self.after is not None else [])
        for target in reversed(targets):
            target.log.write(chunk)
            if target.out is not None:
                try:
                    write_all(target.out[index], chunk)
                except OSError:
                    pass
                return

    def drain(self) -> None:
        """Deliver what the pipes hold now (call with `lock` held). Counted first, so a
        background child that keeps printing cannot keep this going."""
        import fcntl
        import termios

        waiting = bytearray(4)
        for index, (read_end, _) in enumerate(self.pipes):
            try:
                fcntl.ioctl(read_end, termios.FIONREAD, waiting)
            except OSError:
                continue
            left = int.from_bytes(waiting, sys.byteorder)
            while left > 0:
                try:
                    chunk = os.read(read_end, min(left, 65536))
                except OSError:
                    break
                if not chunk:
                    break
                left -= len(chunk)
                self._deliver(index, chunk)

    def push(self, target: _Target) -> None:
        with self.lock:
            if target.out is not None and self.after is not None:
                self.after.drop()
                self.after = None
            self.targets.append(target)

    def pop(self, target: _Target) -> None:
        """Deliver what `target`'s run printed, and stop sending output to it (but for an
        outermost target, which receives what comes later until the next capture)."""
        with self.lock:
            self.drain()
            if target not in self.targets:  # a child forked during the run ends the parent's capture
                target.drop()
                return
            self.targets.remove(target)
            if target.out is not None and not self.targets:
                if self.after is not None:
                    self.after.drop()
                self.after = target
            else:
                target.drop()

    def forget(self) -> None:
        """In a forked child: the thread is the parent's; close this process's copies of the
        pipes (a descriptor 1 or 2 pointing at them still reaches the parent's copier)."""
        for read_end, write_end in self.pipes:
            for fd in (read_end, write_end):
                try:
                    os.close(fd)
                except OSError:
                    pass


_copier: list[_Copier] = []


def _the_copier() -> _Copier:
    if not _copier:
        _copier.append(_Copier())
    return _copier[0]


def _after_fork() -> None:
    if _copier:
        _copier.pop().forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class Capture:
    """A context manager that sends descriptors 1 and 2 to the log at `path`."""

    def __init__(self, path: str, header: str, echo: bool) -> None:
        self.echo = echo and sys.platform != "win32"  # the copier thread selects on pipes
        self.active = False
        self._log = _Log(path, header)
        self._saved: list[int] = []
        self._target: _Target | None = None
        self._wrapped: list[tuple[str, TextIO]] = []
        self._rebuffered: list[Any] = []

    def write(self, text: str) -> None:
        """Write to the log directly (not to the user's terminal)."""
        self._log.write(text.encode("utf-8", "replace"))

    def __enter__(self) -> Capture:
        import threading

        me = threading.get_ident()
        if _active and _active[-1][0] != me:
            self.write("retain: output of this run is not captured: another run in this process "
                       "holds its standard streams\n")
            return self
        _flush()
        self._saved = [os.dup(1), os.dup(2)]
        if self.echo:
            copier = _the_copier()
            # Nested in a capture with echo, descriptors 1 and 2 are the pipes already: the
            # output goes to this log, then on to the outer capture's target. (A child forked
            # during a run inherits the run's capture, not its copier: not nested there.)
            outer = _active[-1][1]._target if _active else None
            nested = outer is not None and outer in copier.targets
            out = None if nested else (os.dup(self._saved[0]), os.dup(self._saved[1]))
            self._target = _Target(self._log, out)
            self._log.users += 1  # the copier's, until it lets go of the target
            copier.push(self._target)
            os.dup2(copier.pipes[0][1], 1)
            os.dup2(copier.pipes[1][1], 2)
        else:
            log_fd = self._log.open()
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
        for name, fd in (("stdout", 1), ("stderr", 2)):
            stream = getattr(sys, name)
            if stream is not None and _fd_of(stream) != fd:
                self._wrapped.append((name, stream))
                setattr(sys, name, _TeeText(stream, self._log, self.echo))
            elif stream is not None and getattr(stream, "line_buffering", True) is False:
                # Into a file or pipe Python buffers whole blocks: line by line, a log shows
                # progress as it happens.
                try:
                    stream.reconfigure(line_buffering=True)
                    self._rebuffered.append(stream)
                except (AttributeError, ValueError, OSError):
                    pass
        _active.append((me, self))
        self.active = True
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.active:
            return
        _flush()
        for name, stream in reversed(self._wrapped):
            setattr(sys, name, stream)
        for stream in self._rebuffered:
            try:
                stream.reconfigure(line_buffering=False)
            except (AttributeError, ValueError, OSError):
                pass
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        if self._target is not None:
            if _copier:
                _copier[0].pop(self._target)
            else:  # a child forked during the run, without a copier of its own
                self._target.drop()
            self._target = None
        _active.remove(next(entry for entry in _active if entry[1] is self))
        self.active = False

    def close(self, trailer: str = "") -> None:
        """Write `trailer` (if the log exists: a run that printed nothing leaves none) and
        release the log."""
        if trailer and self._log.fd >= 0:
            self.write(trailer)
        self._log.release()
