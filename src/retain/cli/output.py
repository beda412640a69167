"""Formatting results: a table on a terminal, plain lines when piped, JSON on request."""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

__all__ = ["print_json", "print_table", "to_jsonable"]


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


def print_json(value: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")


def print_table(rows: list[dict[str, Any]], columns: list[str], stream: TextIO | None = None) -> None:
    """Aligned columns on a terminal; tab-separated lines (with a header) when piped."""
    stream = stream or sys.stdout
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    if not stream.isatty():
        stream.write("\t".join(columns) + "\n")
        for line in cells:
            stream.write("\t".join(line) + "\n")
        return
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    widths = [min(w, 60) for w in widths]
    stream.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
    stream.write("  ".join("-" * w for w in widths) + "\n")
    for line in cells:
        stream.write("  ".join(_fit(c, w) for c, w in zip(line, widths)).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"))


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"
