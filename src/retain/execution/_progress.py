"""A one-line progress display on a terminal (done, failed, running); silent otherwise."""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 24


class Progress:
    """Shows ``retain: [#####-----] 37/200 done, 2 failed, 4 running, 12 s`` on `stream`
    (default: stderr) when it is a terminal and there is more than one component."""

    def __init__(self, total: int, concurrency: int, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.total = total
        self.concurrency = max(1, concurrency)
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        try:
            self.enabled = total > 1 and bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.enabled = False
        if self.enabled:
            self.draw()

    @property
    def running(self) -> int:
        return min(self.concurrency, self.total - self.done - self.failed)

    def line(self) -> str:
        ended = self.done + self.failed
        filled = _WIDTH * ended // self.total if self.total else _WIDTH
        return (
            f"retain: [{'#' * filled}{'-' * (_WIDTH - filled)}] {self.done}/{self.total} done, "
            f"{self.failed} failed, {self.running} running, {time.monotonic() - self.started:.0f} s"
        )

    def update(self, failed: bool) -> None:
        if failed:
            self.failed += 1
        else:
            self.done += 1
        now = time.monotonic()
        if self.enabled and (now - self._drawn >= 0.1 or self.done + self.failed == self.total):
            self.draw()

    def draw(self) -> None:
        self._drawn = time.monotonic()
        self._write("\r" + self.line() + "\x1b[K")

    def clear(self) -> None:
        if self.enabled:
            self._write("\r\x1b[K")

    def close(self) -> None:
        if self.enabled:
            self.draw()
            self._write("\n")
            self.enabled = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
