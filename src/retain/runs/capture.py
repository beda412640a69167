"""Everything a run prints goes to its `output.log` as it happens, at the file-descriptor level.

File descriptors 1 and 2 are redirected (`os.dup2`), so output of C extensions and of child
processes of the run is captured too. With `echo`, a thread copies each pipe to the log and to
the original stream, so the user still sees the output; the log is then created when the run
first prints (a new file costs more than the rest of a run's bookkeeping on some file
systems). When `sys.stdout` or `sys.stderr` is not backed by descriptor 1 or 2 (a notebook),
it is wrapped to write to the log as well.

File descriptors belong to the process: one capture at a time per process. A nested capture in
the same thread (a component launched inside another's run) stacks, and with echo its output
reaches both logs; a capture requested by another thread while one is active is skipped, and
says so in its log.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
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
    """The log file, opened (and its header written) at the first write; shared by the copying
    thread, the stream wrappers and the run's own notes."""

    def __init__(self, path: str, header: str) -> None:
        import threading

        self.path = path
        self.header = header
        self.fd = -1
        self.lock = threading.Lock()
        self.closing = False
        self.users = 1  # the capture, plus the copying thread while it runs

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


def _copy(sources: dict[int, int], log: _Log) -> None:
    """Copy each pipe in `sources` (read fd -> original fd) to the log and the original; close
    all of them (they are this thread's own copies) at the end of the pipes."""
    import select

    open_fds = list(sources)
    try:
        while open_fds:
            try:
                ready, _, _ = select.select(open_fds, [], [])
            except InterruptedError:
                continue
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    open_fds.remove(fd)
                    os.close(fd)
                    os.close(sources[fd])
                    continue
                log.write(chunk)
                try:
                    os.write(sources[fd], chunk)
                except OSError:
                    pass
    finally:
        log.release()


class Capture:
    """A context manager that sends descriptors 1 and 2 to the log at `path`."""

    def __init__(self, path: str, header: str, echo: bool) -> None:
        self.echo = echo and sys.platform != "win32"  # the copying thread selects on pipes
        self.active = False
        self._log = _Log(path, header)
        self._saved: list[int] = []
        self._thread: threading.Thread | None = None
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
            sources: dict[int, int] = {}
            for target, saved in ((1, self._saved[0]), (2, self._saved[1])):
                read_end, write_end = os.pipe()
                os.dup2(write_end, target)
                os.close(write_end)
                sources[read_end] = os.dup(saved)  # the thread's own: it may outlive the run
            # The pipes may outlive the run (a background child keeping them open): the thread
            # then keeps copying, and the last of it and the capture closes the log.
            self._log.users += 1
            self._thread = threading.Thread(target=_copy, args=(sources, self._log), name="retain-output", daemon=True)
            self._thread.start()
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
        if self._thread is not None:
            # Normally the pipes end now; a child process still holding them (one left
            # running in the background) keeps the copy going after the run returns.
            self._thread.join(timeout=2.0)
        _active.remove(next(entry for entry in _active if entry[1] is self))
        self.active = False

    def close(self, trailer: str = "") -> None:
        """Write `trailer` (if the log exists: a run that printed nothing leaves none) and
        release the log."""
        if trailer and self._log.fd >= 0:
            self.write(trailer)
        self._log.release()
