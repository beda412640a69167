"""Metrics over steps: `Component.log_metrics` writes them, `Interface.metrics` reads them.

A component's metrics live in ``metrics.jsonl`` in its directory, one line per call (and step):
``[step, "time", {"name": value, ...}]``. Logging only formats the line and appends it to a
buffer in memory; the buffer is written with one ``O_APPEND`` write at least every second (a
daemon thread), when it grows large, and when the run ends. After each write the last value of
each metric is replaced (atomically) in ``.retain.metrics-last.json``, which the index reads
like ``summary.json``: ``where={"metrics.loss": lt(0.1)}``.

A process killed mid-write leaves a torn last line: readers ignore what follows the last
newline, and the next run starts its lines on a fresh one (any line that does not parse is
skipped). On an object store the files are written in the local cache and sent with the
heartbeat and at the run's end, like ``output.log``.
"""

from __future__ import annotations

import os
import threading
import time

from ._errors import CodecError, RecordError, StorageError
from .storage.layout import JOURNAL_SUMMARY, METRICS_FILE, METRICS_LAST_FILE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .component import Component
    from .interface import Interface
    from .storage import Storage

__all__ = ["COLUMNS", "FLUSH_SECONDS", "close_run", "log", "read", "read_last"]

#: The keys of a metric row, and the columns of `Interface.metrics(frame=True)`.
COLUMNS = ("step", "name", "value", "time")
#: Buffered lines are written at least this often.
FLUSH_SECONDS = 1.0
#: ...and as soon as this many are waiting (bounds the memory of a fast loop).
FLUSH_LINES = 10_000


class _Series:
    """The metrics of one component directory being written by this process."""

    __slots__ = (
        "directory", "path", "storage", "id", "record", "buffered", "lock", "writing",
        "pending", "steps", "last", "changed", "newline", "closed",
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
        self.pending: list[str] = []
        self.closed = False
        self.changed = False
        data = self._stored()
        # A torn line (a killed run) must not swallow the first line written now.
        self.newline = bool(data) and not data.endswith(b"\n")
        #: The greatest step and the value logged there, per metric.
        self.steps: dict[str, int] = {}
        self.last: dict[str, float] = {}
        for step, name, value, _ in _rows(data):
            if step >= self.steps.get(name, step):
                self.steps[name] = step
                self.last[name] = value

    def _stored(self) -> bytes:
        if self.storage.is_remote and not self.buffered:
            # Outside a run nobody brought the stored series into the cache.
            data = self.storage.run_files(self.id)._read_bytes(METRICS_FILE) or b""
            from ._fs import atomic_write, makedirs

            makedirs(self.directory)
            atomic_write(self.path, lambda handle: handle.write(data))
            return data
        return _read_local(self.path)

    def log(self, values: Mapping[str, Any], step: Any) -> None:
        if not hasattr(values, "items"):
            raise CodecError(
                f"log_metrics takes a mapping of names to numbers, e.g. {{'loss': 0.1}}; got "
                f"{type(values).__name__}"
            )
        clean: dict[str, float] = {}
        for name, value in values.items():
            if type(name) is not str or not name:
                raise CodecError(f"metric names are non-empty strings; got {name!r}")
            clean[name] = value if type(value) is float else _number(name, value)
        if not clean:
            return
        if step is not None and type(step) is not int:
            step = _step(step)
        stamp = _iso(time.time())
        dumps = _encoder()
        with self.lock:
            steps, last = self.steps, self.last
            if step is None:
                # Each metric counts on from its own greatest step.
                groups: dict[int, dict[str, float]] = {}
                for name, value in clean.items():
                    groups.setdefault(steps.get(name, -1) + 1, {})[name] = value
            else:
                groups = {step: clean}
            for at, group in groups.items():
                self.pending.append(f'[{at},"{stamp}",{dumps(group)}]\n')
                for name, value in group.items():
                    if at >= steps.get(name, at):
                        steps[name] = at
                        last[name] = value
            self.changed = True
            waiting = len(self.pending)
        if not self.buffered or waiting >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered, then the last values; tell the index."""
        with self.writing:
            with self.lock:
                pending, self.pending = self.pending, []
                last = dict(self.last) if self.changed else None
                self.changed = False
            if not pending:
                return
            from . import _settings
            from ._fs import atomic_write
            from .index import _hooks
            from .storage.layout import encode_summary

            data = "".join(pending).encode("utf-8")
            if self.newline:
                data = b"\n" + data
            durable = _settings.durable()
            _append(self.path, data, durable)
            self.newline = False
            if last is None:
                return
            storage = self.storage
            # Journal first, as for a summary: an index that misses the update finds the id.
            _hooks.journal(storage, self.id, JOURNAL_SUMMARY, durable)
            encoded = encode_summary(last)
            atomic_write(
                os.path.join(self.directory, METRICS_LAST_FILE),
                lambda handle: handle.write(encoded),
                durable=durable,
            )
            if storage.is_remote and not self.buffered:  # in a run, the heartbeat sends them
                storage._upload(self.id, [METRICS_FILE, METRICS_LAST_FILE])  # type: ignore[attr-defined]
            if self.record is not None:
                _hooks.after_metrics(storage, self.record, last)


def _append(path: str, data: bytes, durable: bool) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StorageError(exc.errno or 0, f"could not append metrics to {path}: {exc.strerror}") from exc


def _number(name: str, value: Any) -> float:
    kind = type(value)
    if kind is not bool and kind is not str and kind is not bytes and hasattr(kind, "__float__") and (
        "bool" not in kind.__name__
    ):
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"metric {name!r}: {value!r} is not a number ({exc})") from None
    raise CodecError(
        f"metric {name!r} must be a number (float, int, or a numpy scalar); got "
        f"{kind.__name__} {value!r}. Save other results with save_summary or save_file"
    )


def _step(step: Any) -> int:
    import operator

    if type(step) is not bool:
        try:
            return operator.index(step)
        except TypeError:
            pass
    raise CodecError(f"step must be an integer (or omitted to count up); got {type(step).__name__} {step!r}")


_iso_second = -1
_iso_prefix = ""


def _iso(now: float) -> str:
    """`now` as ISO 8601 UTC with microseconds (as `now_iso`), the date formatted once a second."""
    global _iso_second, _iso_prefix
    second = int(now)
    if second != _iso_second:
        _iso_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _iso_second = second
    return f"{_iso_prefix}.{int((now - second) * 1e6):06d}Z"


_dumps: Any = None


def _encoder() -> Any:
    global _dumps
    if _dumps is None:
        import json

        # NaN and infinities are kept (as `NaN`, `Infinity`): a diverged loss is a result too.
        _dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return _dumps


# -- the series this process writes ------------------------------------------------------------

_open: dict[str, _Series] = {}
_registry = threading.Lock()
_thread: threading.Thread | None = None


def log(component: Component, values: Mapping[str, Any], step: Any = None) -> None:
    """What `Component.log_metrics` does."""
    series: _Series | None = component.__dict__.get("_retain_metrics")
    if series is None or series.closed:
        series = component.__dict__["_retain_metrics"] = _series(component)
    series.log(values, step)


def _series(component: Component) -> _Series:
    if not component.is_committed():
        raise RecordError(
            f"{component!r} is not committed: log_metrics records metrics of a committed "
            "component (inside __call__, or after launch()/commit())"
        )
    from ._claim import _heartbeats

    directory = component.local_directory()
    with _registry:
        series = _open.get(directory)
        if series is None or series.closed:
            # Inside a run of this process: buffered, written by the flusher and at the end.
            buffered = _heartbeats.held(directory) is not None
            series = _Series(component, buffered)
            if buffered:
                _open[directory] = series
                _start()
    return series


def _start() -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        import atexit

        _thread = threading.Thread(target=_loop, name="retain-metrics", daemon=True)
        _thread.start()
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
            import sys

            print(f"retain: could not write the metrics of {series.directory}: {exc}", file=sys.stderr)


def close_run(directory: str) -> None:
    """At the end of a run: write its buffered metrics and forget the series (raises what the
    write raised)."""
    with _registry:
        series = _open.pop(directory, None)
    if series is not None:
        series.closed = True
        series.flush()


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


# -- reading ----------------------------------------------------------------------------------


def _read_local(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return b""
    except OSError as exc:
        raise StorageError(exc.errno or 0, f"could not read {path}: {exc.strerror}") from exc


def _stored_bytes(interface: Interface) -> bytes:
    storage = interface.storage
    directory = interface.local_directory()
    _flush_directory(directory)  # what this process logged so far is part of the answer
    if storage.is_remote and directory not in _open:
        return storage.run_files(interface.id)._read_bytes(METRICS_FILE) or b""
    return _read_local(os.path.join(directory, METRICS_FILE))


def _lines(data: bytes) -> list[Any]:
    """The complete lines of `data`, parsed; lines that do not parse are skipped."""
    import json

    end = data.rfind(b"\n") + 1
    if not end:
        return []
    body = data[:end - 1]
    try:
        # One parse for the whole file: many times faster than a parse per line.
        lines: list[Any] = json.loads(b"[" + body.replace(b"\n", b",") + b"]")
    except ValueError:
        lines = []
        for line in body.split(b"\n"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue  # a line torn by a killed run, continued by the next
    return lines


def _well_formed(line: Any) -> bool:
    return (
        type(line) is list and len(line) == 3 and type(line[0]) is int and type(line[1]) is str
        and type(line[2]) is dict
        and all(type(v) is float or (type(v) is int) for v in line[2].values())
    )


def _columns(data: bytes, name: str | None) -> tuple[list[int], list[str], list[float], list[str]]:
    """Step, name, value and time of each point, in step order, then logging order."""
    lines = _lines(data)
    if not all(map(_well_formed, lines)):
        lines = [line for line in lines if _well_formed(line)]
    steps: list[int] = []
    names: list[str] = []
    values: list[float] = []
    times: list[str] = []
    if name is None:
        for step, stamp, group in lines:
            count = len(group)
            if count == 1:
                steps.append(step)
                times.append(stamp)
            else:
                steps += [step] * count
                times += [stamp] * count
            names += group
            values += group.values()
    else:
        for step, stamp, group in lines:
            if name in group:
                steps.append(step)
                times.append(stamp)
                values.append(group[name])
        names = [name] * len(steps)
    values = [float(v) for v in values] if any(type(v) is not float for v in values) else values
    if any(a > b for a, b in zip(steps, steps[1:])):
        order = sorted(range(len(steps)), key=steps.__getitem__)  # stable: logging order kept
        steps = [steps[i] for i in order]
        names = [names[i] for i in order]
        values = [values[i] for i in order]
        times = [times[i] for i in order]
    return steps, names, values, times


def _rows(data: bytes) -> list[tuple[int, str, float, str]]:
    return list(zip(*_columns(data, None)))


def read(interface: Interface, name: str | None = None, frame: bool = False) -> Any:
    """What `Interface.metrics` does."""
    if name is not None and (type(name) is not str or not name):
        raise CodecError(f"a metric name is a non-empty string; got {name!r}")
    if frame:
        try:
            import pandas
        except ImportError as exc:
            raise ImportError("Interface.metrics(frame=True) needs pandas: pip install 'retain[pandas]'") from exc
    data = _stored_bytes(interface) if interface.is_committed() else b""
    steps, names, values, times = _columns(data, name)
    if frame:
        result = pandas.DataFrame(
            {"step": pandas.Series(steps, dtype="int64"), "name": pandas.Series(names, dtype=object),
             "value": pandas.Series(values, dtype="float64"), "time": pandas.Series(times, dtype=object)},
            columns=list(COLUMNS),
        )
        if len(result):
            result["time"] = pandas.to_datetime(result["time"], utc=True, format="ISO8601")
        return result
    return [
        {"step": step, "name": metric, "value": value, "time": stamp}
        for step, metric, value, stamp in zip(steps, names, values, times)
    ]


def read_last(interface: Interface) -> dict[str, float]:
    """The last value of each metric (at its greatest step), as the index has them."""
    from .storage.layout import decode_summary

    if not interface.is_committed():
        return {}
    _flush_directory(interface.local_directory())
    data = interface.storage.read_file(interface.id, METRICS_LAST_FILE)
    return {} if data is None else decode_summary(data, METRICS_LAST_FILE)
