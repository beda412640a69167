"""Formatting results: a table on a terminal, plain lines when piped, JSON on request."""

from __future__ import annotations

import json
import sys

from ..identity import REF_KEY
from ..interface import Interface

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection
    from typing import Any, TextIO

__all__ = ["ProgressBar", "format_float", "human", "is_terminal", "print_json", "print_table", "to_jsonable"]

#: The widest a column gets on a terminal before its cells are cut with "…".
MAX_WIDTH = 40
#: The narrowest a column is cut to when the table is wider than the terminal.
MIN_WIDTH = 8
#: The narrowest a wrapped column (free text, such as the details of `retain stale`) gets.
WRAP_WIDTH = 24


def to_jsonable(value: Any) -> Any:
    """Values as JSON; interfaces as their id and class, other objects by repr."""
    if isinstance(value, Interface):
        return {"id": value.id, "class": type(value).__qualname__, "committed": value.is_committed()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


#: Significant digits of a float in a table or `show` (the full value is in JSON and when piped).
FLOAT_DIGITS = 6


def format_float(value: float) -> str:
    """`value` to `FLOAT_DIGITS` significant digits: ``0.30000000000000004`` is ``0.3``; still
    a float to the eye (``1.0``, not ``1``)."""
    if value != value or value in (float("inf"), float("-inf")):
        return json.dumps(value)  # NaN, Infinity, -Infinity as in JSON
    text = f"{value:.{FLOAT_DIGITS}g}"
    return text if any(c in text for c in ".en") else text + ".0"


def human(value: Any, quote: bool = False, rounded: bool = True) -> str:
    """A value for people: JSON, with floats to `FLOAT_DIGITS` significant digits (unless not
    `rounded`: configuration values, where every digit is identity) and each interface (or
    reference to one in a record) as ``Class [shortid]``; strings quoted only inside lists and
    dicts, or with `quote`."""
    if isinstance(value, Interface):
        return repr(value)
    if isinstance(value, dict):
        if REF_KEY in value:
            return f"{value.get('class', '?')} [{str(value[REF_KEY])[:6]}]"
        inner = ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {human(v, True, rounded)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(human(item, True, rounded) for item in value) + "]"
    if isinstance(value, float) and rounded:
        return format_float(value)
    if isinstance(value, str) and not quote:
        return value
    return json.dumps(to_jsonable(value), ensure_ascii=False)


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def print_json(value: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")


def print_table(
    rows: list[dict[str, Any]],
    columns: list[str],
    stream: TextIO | None = None,
    *,
    keep: Collection[str] = (),
    wrap: str | None = None,
) -> None:
    """Aligned columns fitted to the terminal; tab-separated lines (with a header) when piped.

    On a terminal a column is at most `MAX_WIDTH` wide, and the widest columns are narrowed
    (to `MIN_WIDTH`) while the table is wider than the terminal; cut cells end with "…". The
    columns in `keep` (ids, times) are never cut; the column `wrap` (free text) takes the
    width left, at least `WRAP_WIDTH`, and its cells wrap between words onto more lines.
    Floats show `FLOAT_DIGITS` significant digits and interfaces ``Class [shortid]``.
    Piped, nothing is cut or rounded, and tabs and newlines inside cells are written as
    ``\\t``, ``\\n``.
    """
    stream = stream or sys.stdout
    terminal = is_terminal(stream)
    cells = [[_cell(row.get(column), terminal) for column in columns] for row in rows]
    if not terminal:
        stream.write("\t".join(columns) + "\n")
        for line in cells:
            stream.write("\t".join(_escape(cell) for cell in line) + "\n")
        return
    cells = [[" ".join(cell.split()) if "\n" in cell or "\t" in cell else cell for cell in line] for line in cells]
    longest = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    widths = [n if c in keep or c == wrap else min(MAX_WIDTH, n) for n, c in zip(longest, columns)]
    fixed = {i for i, c in enumerate(columns) if c in keep}
    total = _terminal_width()
    at = columns.index(wrap) if wrap in columns else None
    if at is not None:
        others = sum(w for i, w in enumerate(widths) if i != at) + 2 * (len(widths) - 1)
        widths[at] = min(longest[at], max(WRAP_WIDTH, total - others))
        fixed.add(at)
    widths = fit_widths(widths, total, gap=2, fixed=fixed)
    stream.write("  ".join(_fit(c, w) for c, w in zip(columns, widths)).rstrip() + "\n")
    stream.write("  ".join("-" * w for w in widths) + "\n")
    for line in cells:
        extra: list[str] = []
        if at is not None and len(line[at]) > widths[at]:
            import textwrap

            parts = textwrap.wrap(line[at], widths[at]) or [""]
            line = [*line[:at], parts[0], *line[at + 1:]]
            extra = parts[1:]
        stream.write("  ".join(_fit(c, w) for c, w in zip(line, widths)).rstrip() + "\n")
        indent = sum(widths[:at]) + 2 * at if at is not None else 0
        for part in extra:
            stream.write(" " * indent + part + "\n")


def fit_widths(widths: list[int], total: int, gap: int, fixed: Collection[int] = ()) -> list[int]:
    """Narrow the widest columns (but not those in `fixed`), one character at a time, until
    the row fits in `total` characters or every column is at `MIN_WIDTH` (or narrower, if it
    was)."""
    widths = list(widths)
    excess = sum(widths) + gap * max(0, len(widths) - 1) - total
    narrowable = [i for i in range(len(widths)) if i not in fixed]
    while excess > 0:
        widest = max(narrowable, key=lambda i: widths[i], default=None)
        if widest is None or widths[widest] <= MIN_WIDTH:
            break
        widths[widest] -= 1
        excess -= 1
    return widths


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((120, 24)).columns


def _cell(value: Any, terminal: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if terminal:
        return human(value)
    return json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"))


def _escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


class ProgressBar:
    """``progress(done, total)`` for library calls that report progress: a bar redrawn in
    place on a terminal (``label [#####-----] 1,000/5,000``); silent when `stream` is not a
    terminal, so piped output stays plain."""

    WIDTH = 30

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = is_terminal(self.stream)
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        filled = self.WIDTH * done // total if total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done:,}/{total:,}\x1b[K")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """End the bar's line (if one was drawn)."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
