"""Writing metrics: the series `Component.log_metrics` appends to (the format and reading are
`retain._metrics`).

Logging only checks the values and appends them to a buffer in memory; inside a run of this
process the buffer is written at least every `FLUSH_SECONDS` by a daemon thread, when it grows
past `FLUSH_CALLS`, and when the run ends (`close_run`); outside a run, at once.
"""

from __future__ import annotations

import atexit
import os
import threading
import time

from .. import _metrics as metrics
from .. import _settings
from .claims import held_here
from .._errors import RecordError
from .._fs import append_bytes, atomic_write, makedirs
from .._log import logger
from .._threads import Daemon
from ..index import _updates
from ..storage.layout import JOURNAL_SUMMARY, METRICS_FILE, METRICS_LAST_FILE, encode_summary

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from ..component import Component
    from ..storage import Storage

__all__ = ["FLUSH_CALLS", "FLUSH_SECONDS", "JOURNAL_SECONDS", "close_run", "series_of"]

#: Buffered calls are written at least this often...
FLUSH_SECONDS = 1.0
#: ...and as soon as this many are waiting (bounds the memory of a fast loop).
FLUSH_CALLS = 100_000
#: A run's writes are journaled for the index at most this often (and at its end).
JOURNAL_SECONDS = 30.0


class _Series:
    """The metrics of one component directory being written by this process."""

    __slots__ = (
        "directory", "path", "storage", "id", "record", "buffered", "lock", "writing",
        "pending", "steps", "last", "top", "changed", "newline", "closed", "journaled", "owed",
    )

    def __init__(self, component: Component, buffered: bool) -> None:
        self.storage: Storage = component.storage
        self.id = component.id
        self.record = component.record
        self.directory = component.local_directory()
        self.path = os.path.join(self.directory, METRICS_FILE)
        self.buffered = buffered
        self.lock = threading.Lock()  # the buffer and the series state
        self.writing = threading.Lock()  # one write at a time, in order
        self.pending: list[tuple[int, str, dict[str, float]]] = []
        self.closed = False
        self.changed = False
        #: When the journal last heard of a write (monotonic), and whether a write came since.
        self.journaled: float | None = None
        self.owed = False
        data = self._stored()
        # A torn line (a killed run) must not swallow the first line written now.
        self.newline = bool(data) and not data.endswith(b"\n")
        #: The greatest step and the value logged there, per metric.
        self.steps: dict[str, int] = {}
        self.last: dict[str, float] = {}
        for step, name, value, _ in metrics.rows(data):
            if step >= self.steps.get(name, step):
                self.steps[name] = step
                self.last[name] = value
        #: The greatest step of any metric (-1: none yet).
        self.top = max(self.steps.values(), default=-1)

    def _stored(self) -> bytes:
        if self.storage.is_remote and not self.buffered:
            # Outside a run nobody brought the stored series into the cache.
            data = self.storage.read_file(self.id, METRICS_FILE) or b""
            makedirs(self.directory)
            atomic_write(self.path, lambda handle: handle.write(data))
            return data
        return metrics.read_local(self.path)

    def log(self, values: Mapping[str, Any], step: Any) -> None:
        # The hot path of a training loop: a plain dict of floats with an int step is checked
        # and queued (a copy: the caller may reuse its dict); anything else is converted first.
        if type(values) is dict:
            for name, value in values.items():
                if type(value) is not float or type(name) is not str or not name:
                    values = metrics.valid_values(values)
                    break
            else:
                values = values.copy()
        else:
            values = metrics.valid_values(values)
        if not values:
            return
        if step is not None and type(step) is not int:
            step = metrics.valid_step(step)
        stamp = metrics.iso_time(time.time())
        with self.lock:
            if step is not None and step >= self.top:
                # At or past every step so far (the usual case): the last values, at once.
                self.pending.append((step, stamp, values))
                self.last.update(values)
                self.steps.update(dict.fromkeys(values, step))
                self.top = step
            else:
                self._log_slowly(values, step, stamp)
            self.changed = True
            waiting = len(self.pending)
        if not self.buffered or waiting >= FLUSH_CALLS:
            self.flush()

    def _log_slowly(self, values: dict[str, float], step: int | None, stamp: str) -> None:
        steps, last = self.steps, self.last
        if step is None:
            # Each metric counts on from its own greatest step.
            groups: dict[int, dict[str, float]] = {}
            for name, value in values.items():
                groups.setdefault(steps.get(name, -1) + 1, {})[name] = value
        else:
            groups = {step: values}
        for at, group in groups.items():
            self.pending.append((at, stamp, group))
            for name, value in group.items():
                if at >= steps.get(name, at):
                    steps[name] = at
                    last[name] = value
            if at > self.top:
                self.top = at

    def flush(self, final: bool = False) -> None:
        """Write what is buffered, then the last values; tell the index."""
        with self.writing:
            with self.lock:
                pending, self.pending = self.pending, []
                last = dict(self.last) if self.changed else None
                self.changed = False
            if not pending:
                if final and self.owed:  # writes the journal has not heard of
                    self._journal()
                return
            data = metrics.encode(pending)
            if self.newline:
                data = b"\n" + data
            durable = _settings.durable()
            append_bytes(self.path, data, durable=durable)
            self.newline = False
            if last is None:
                return
            storage = self.storage
            # Journal first, as for a summary: an index that misses the update (a killed
            # process) finds the id. Not at every write: a week-long run would add megabytes.
            journaled = self.journaled
            if final or not self.buffered or journaled is None or journaled + JOURNAL_SECONDS <= time.monotonic():
                self._journal()
            else:
                self.owed = True  # at the next chance, or the end
            encoded = encode_summary(last)
            atomic_write(
                os.path.join(self.directory, METRICS_LAST_FILE),
                lambda handle: handle.write(encoded),
                durable=durable,
            )
            if storage.is_remote and not self.buffered:  # in a run, the heartbeat sends them
                storage.upload_files(self.id, [METRICS_FILE, METRICS_LAST_FILE])
            if self.record is not None:
                _updates.after_metrics(storage, self.record, last)


    def _journal(self) -> None:
        _updates.journal(self.storage, self.id, JOURNAL_SUMMARY, _settings.durable())
        self.journaled = time.monotonic()
        self.owed = False



_open = metrics.open_series
_registry = threading.Lock()
_thread: Daemon | None = None


def series_of(component: Component) -> _Series:
    """The series `Component.log_metrics` writes to (kept on the instance)."""
    series = component.__dict__["_retain_metrics"] = _series(component)
    return series


def _series(component: Component) -> _Series:
    if not component.is_committed():
        raise RecordError(
            f"{component!r} is not committed: log_metrics records metrics of a committed "
            "component (inside __call__, or after launch()/commit())"
        )
    directory = component.local_directory()
    with _registry:
        series = _open.get(directory)
        if series is None or series.closed:
            # Inside a run of this process: buffered, written by the flusher and at the end.
            buffered = held_here(directory)
            series = _Series(component, buffered)
            if buffered:
                _open[directory] = series
                _start()
    return series


def _start() -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = Daemon(_loop)
        atexit.register(_flush_all)


def _loop() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        _flush_all()


def _flush_all() -> None:
    for series in list(_open.values()):
        try:
            series.flush()
        except Exception as exc:  # the next flush tries again; the run goes on
            logger("retain.metrics").warning("could not write the metrics of %s: %s", series.directory, exc)


def close_run(directory: str) -> None:
    """At the end of a run: write its buffered metrics and forget the series (raises what the
    write raised)."""
    with _registry:
        series = _open.pop(directory, None)
    if series is not None:
        series.closed = True
        series.flush(final=True)


def _flush_directory(directory: str) -> None:
    series = _open.get(directory)
    if series is not None:
        series.flush()


def _after_fork() -> None:
    global _thread, _registry
    # The parent writes its own buffers; the child's copies must never be written twice.
    for series in _open.values():
        series.closed = True
        series.pending = []
    _open.clear()
    _thread = None
    _registry = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
