"""Metrics over steps: their format, and reading them (`Interface.metrics`); `Component.log_metrics`
writes them through `retain.runs.metrics`.

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
import time

from ._errors import CodecError, StorageError
from .storage.layout import METRICS_FILE, METRICS_LAST_FILE, decode_summary

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .interface import Interface

__all__ = [
    "COLUMNS",
    "encode",
    "iso_time",
    "open_series",
    "read",
    "read_last",
    "read_local",
    "rows",
    "valid_step",
    "valid_values",
]

#: The keys of a metric row, and the columns of `Interface.metrics(frame=True)`.
COLUMNS = ("step", "name", "value", "time")


def encode(pending: list[tuple[int, str, dict[str, float]]]) -> bytes:
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


def valid_values(values: Any) -> dict[str, float]:
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


def valid_step(step: Any) -> int:
    import operator

    if type(step) is not bool:
        try:
            return operator.index(step)
        except TypeError:
            pass
    raise CodecError(f"step must be an integer (or omitted to count up); got {type(step).__name__} {step!r}")


_iso_second = -1
_iso_prefix = ""


def iso_time(now: float) -> str:
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


# -- the series this process writes (kept by `retain.runs.metrics`) -----------------------------

#: The series being written by runs of this process, by directory: what they buffered is
#: part of what a reader in this process is answered.
open_series: dict[str, Any] = {}


def _flush_directory(directory: str) -> None:
    series = open_series.get(directory)
    if series is not None:
        series.flush()


# -- reading ----------------------------------------------------------------------------------


def read_local(path: str) -> bytes:
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
    if storage.is_remote and directory not in open_series:
        return storage.read_file(interface.id, METRICS_FILE) or b""
    return read_local(os.path.join(directory, METRICS_FILE))


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


def rows(data: bytes) -> list[tuple[int, str, float, str]]:
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
    if not interface.is_committed():
        return {}
    _flush_directory(interface.local_directory())
    data = interface.storage.read_file(interface.id, METRICS_LAST_FILE)
    return {} if data is None else decode_summary(data, METRICS_LAST_FILE)
