"""Metrics over steps: `Component.log_metrics` writes them, `Interface.metrics` reads them.

A component's metrics live in ``metrics.jsonl`` in its directory. Logging only checks the values
and appends them to a buffer in memory; the buffer is written with one ``O_APPEND`` write at
least every second (a daemon thread), when it grows large, and when the run ends, as one JSON
line per run of calls that logged the same names, in columns::

    [["loss", "accuracy"], [0, 1, 2], ["2026-05-01T12:00:00.000001Z", ...], "<base64>"]

names, the step and ISO 8601 UTC time of each call, then the values call by call (loss0, acc0,
loss1, acc1...) as little-endian IEEE 754 doubles in base64: exact, NaN and infinities included,
and a million of them decode in milliseconds where parsing their text takes most of a second.
Reading a million points parses a few long lines, not a million small objects. After
each write the last value of each metric is replaced (atomically) in
``.retain.metrics-last.json``, which the index reads like ``summary.json``:
``where={"metrics.loss": lt(0.1)}``.

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
from ._fs import append_bytes
from ._log import logger
from .storage.layout import JOURNAL_SUMMARY, METRICS_FILE, METRICS_LAST_FILE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .component import Component
    from .interface import Interface
    from .storage import Storage

__all__ = ["COLUMNS", "FLUSH_SECONDS", "close_run", "read", "read_last", "series_of"]

#: The keys of a metric row, and the columns of `Interface.metrics(frame=True)`.
COLUMNS = ("step", "name", "value", "time")
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
        for step, name, value, _ in _rows(data):
            if step >= self.steps.get(name, step):
                self.steps[name] = step
                self.last[name] = value
        #: The greatest step of any metric (-1: none yet).
        self.top = max(self.steps.values(), default=-1)

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
        # The hot path of a training loop: a plain dict of floats with an int step is checked
        # and queued (a copy: the caller may reuse its dict); anything else is converted first.
        if type(values) is dict:
            for name, value in values.items():
                if type(value) is not float or type(name) is not str or not name:
                    values = _clean(values)
                    break
            else:
                values = values.copy()
        else:
            values = _clean(values)
        if not values:
            return
        if step is not None and type(step) is not int:
            step = _step(step)
        stamp = _iso(time.time())
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
            from . import _settings
            from ._fs import atomic_write
            from .index import _updates
            from .storage.layout import encode_summary

            data = _encode(pending)
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
                storage._upload(self.id, [METRICS_FILE, METRICS_LAST_FILE])  # type: ignore[attr-defined]
            if self.record is not None:
                _updates.after_metrics(storage, self.record, last)


    def _journal(self) -> None:
        from . import _settings
        from .index import _updates

        _updates.journal(self.storage, self.id, JOURNAL_SUMMARY, _settings.durable())
        self.journaled = time.monotonic()
        self.owed = False


def _encode(pending: list[tuple[int, str, dict[str, float]]]) -> bytes:
    """The lines of buffered calls: one per run of calls that logged the same names."""
    dumps = _encoder()
    lines = []
    names: tuple[str, ...] | None = None
    steps: list[int] = []
    times: list[str] = []
    values: list[float] = []
    for step, stamp, group in pending:
        keys = tuple(group)
        if keys != names:
            if names is not None:
                lines.append(dumps([names, steps, times, _pack(values)]))
            names, steps, times, values = keys, [], [], []
        steps.append(step)
        times.append(stamp)
        values += group.values()
    lines.append(dumps([names, steps, times, _pack(values)]))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _pack(values: list[float]) -> str:
    import base64
    from array import array

    packed = array("d", values)
    if _BIG_ENDIAN:
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _unpack(text: str) -> list[float]:
    """The values of a line (raises ValueError if `text` is not whole doubles in base64)."""
    import base64
    import binascii
    from array import array

    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
    if len(data) % 8:
        raise ValueError("not whole doubles")
    packed = array("d", data)
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tolist()


_BIG_ENDIAN = __import__("sys").byteorder == "big"


def _clean(values: Any) -> dict[str, float]:
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
    return clean


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


def _checked(lines: list[Any]) -> list[Any]:
    """The lines of the expected shape (a line edited by hand is skipped)."""
    out = []
    for line in lines:
        if type(line) is not list or len(line) != 4 or type(line[3]) is not str:
            continue
        names, steps, times, packed = line
        if not (type(names) is list and type(steps) is list and type(times) is list):
            continue
        try:
            values = _unpack(packed)
        except ValueError:
            continue
        if (
            all(type(n) is str for n in names) and all(type(s) is int for s in steps)
            and all(type(t) is str for t in times) and len(times) == len(steps)
            and len(values) == len(names) * len(steps)
        ):
            out.append(line)
    return out


def _points(data: bytes, name: str | None) -> list[dict[str, Any]]:
    """The points of `data` as rows, in step order, then logging order."""
    lines = _lines(data)
    try:
        rows = _build(lines, name)
    except (TypeError, ValueError, AttributeError, IndexError):  # a line of another shape
        rows = _build(_checked(lines), name)
    if rows and type(rows[-1]) is bool:  # steps went back somewhere: sort (stable)
        rows.pop()
        rows.sort(key=_by_step)
    return rows


def _by_step(row: dict[str, Any]) -> Any:
    return row["step"]


def _build(lines: list[Any], name: str | None) -> list[Any]:
    """Rows from parsed lines; a final ``True`` marks rows out of step order."""
    rows: list[Any] = []
    previous = -(2**63)
    ordered = True
    for names, steps, times, packed in lines:
        values = _unpack(packed)
        width = len(names)
        if len(values) != width * len(steps) or len(times) != len(steps):
            raise ValueError("not a metrics line")
        if steps:
            # Sorting a sorted list is linear, in C: cheaper than comparing pairs here.
            if ordered and (steps[0] < previous or steps != sorted(steps)):
                ordered = False
            previous = steps[-1]
        if name is not None:
            if name not in names:
                continue
            names, values, width = [name], values[names.index(name)::width], 1
        if width == 1:
            metric = names[0]
            rows += [{"step": s, "name": metric, "value": v, "time": t} for s, t, v in zip(steps, times, values)]
            continue
        # Column by column into their places: comprehensions build dicts faster than a loop.
        block: list[Any] = [None] * len(values)
        for column, metric in enumerate(names):
            block[column::width] = [
                {"step": s, "name": metric, "value": v, "time": t}
                for s, t, v in zip(steps, times, values[column::width])
            ]
        rows += block
    if not ordered:
        rows.append(True)
    return rows


def _columns(data: bytes, name: str | None) -> tuple[list[int], list[str], list[float], list[str]]:
    """Step, name, value and time of each point, in step order, then logging order (for a
    DataFrame: lists, without a dict per point)."""
    lines = _lines(data)
    try:
        return _build_columns(lines, name)
    except (TypeError, ValueError, AttributeError, IndexError):  # a line of another shape
        return _build_columns(_checked(lines), name)


def _build_columns(lines: list[Any], name: str | None) -> tuple[list[int], list[str], list[float], list[str]]:
    steps: list[int] = []
    names: list[str] = []
    values: list[float] = []
    times: list[str] = []
    for metrics, at, when, packed in lines:
        points = _unpack(packed)
        width = len(metrics)
        if len(points) != width * len(at) or len(when) != len(at):
            raise ValueError("not a metrics line")
        if name is not None:
            if name not in metrics:
                continue
            points, metrics, width = points[metrics.index(name)::width], [name], 1
        if width == 1:
            steps += at
            times += when
        else:
            steps += [step for step in at for _ in metrics]
            times += [stamp for stamp in when for _ in metrics]
        names += metrics * len(at)
        values += points
    if steps != sorted(steps):
        order = sorted(range(len(steps)), key=steps.__getitem__)  # stable: logging order kept
        steps = [steps[i] for i in order]
        names = [names[i] for i in order]
        values = [values[i] for i in order]
        times = [times[i] for i in order]
    return steps, names, values, times


def _rows(data: bytes) -> list[tuple[int, str, float, str]]:
    return [(row["step"], row["name"], row["value"], row["time"]) for row in _points(data, None)]


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
    if not frame:
        return _points(data, name)
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


def read_last(interface: Interface) -> dict[str, float]:
    """The last value of each metric (at its greatest step), as the index has them."""
    from .storage.layout import decode_summary

    if not interface.is_committed():
        return {}
    _flush_directory(interface.local_directory())
    data = interface.storage.read_file(interface.id, METRICS_LAST_FILE)
    return {} if data is None else decode_summary(data, METRICS_LAST_FILE)
