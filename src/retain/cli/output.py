"""Formatting results: a table on a terminal, plain lines when piped, JSON on request."""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

__all__ = ["ProgressBar", "is_terminal", "print_json", "print_table", "to_jsonable"]

#: The widest a column gets on a terminal before its cells are cut with "…".
MAX_WIDTH = 40
#: The narrowest a column is cut to when the table is wider than the terminal.
MIN_WIDTH = 8


def to_jsonable(value: Any) -> Any:
    """Values as JSON; interfaces as their id and class, other objects by repr."""
    from ..interface import Interface

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


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def print_json(value: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")


def print_table(rows: list[dict[str, Any]], columns: list[str], stream: TextIO | None = None) -> None:
    """Aligned columns fitted to the terminal; tab-separated lines (with a header) when piped.

    On a terminal a column is at most `MAX_WIDTH` wide, and the widest columns are narrowed
    (to `MIN_WIDTH`) while the table is wider than the terminal; cut cells end with "…".
    Piped, nothing is cut, and tabs and newlines inside cells are written as ``\\t``, ``\\n``.
    """
    stream = stream or sys.stdout
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    if not is_terminal(stream):
        stream.write("\t".join(columns) + "\n")
        for line in cells:
            stream.write("\t".join(_escape(cell) for cell in line) + "\n")
        return
    cells = [[" ".join(cell.split()) if "\n" in cell or "\t" in cell else cell for cell in line] for line in cells]
    widths = [min(MAX_WIDTH, max([len(c)] + [len(line[i]) for line in cells])) for i, c in enumerate(columns)]
    widths = fit_widths(widths, _terminal_width(), gap=2)
    stream.write("  ".join(_fit(c, w) for c, w in zip(columns, widths)).rstrip() + "\n")
    stream.write("  ".join("-" * w for w in widths) + "\n")
    for line in cells:
        stream.write("  ".join(_fit(c, w) for c, w in zip(line, widths)).rstrip() + "\n")


def fit_widths(widths: list[int], total: int, gap: int) -> list[int]:
    """Narrow the widest columns, one character at a time, until the row fits in `total`
    characters or every column is at `MIN_WIDTH` (or narrower, if it was)."""
    widths = list(widths)
    excess = sum(widths) + gap * max(0, len(widths) - 1) - total
    while excess > 0:
        widest = max(range(len(widths)), key=lambda i: widths[i], default=None)
        if widest is None or widths[widest] <= MIN_WIDTH:
            break
        widths[widest] -= 1
        excess -= 1
    return widths


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((120, 24)).columns


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
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
