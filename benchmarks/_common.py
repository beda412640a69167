"""What every benchmark script shares: progress lines on stderr, rounding, the figures it prints
as JSON lines, the load average, the results table, and replacing its own `## ` section of
RESULTS.md atomically while keeping the others."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any


def make_log(prefix: str) -> Callable[[str], None]:
    """A `log(message)` that prints `[prefix HH:MM:SS] message` to stderr, flushed."""

    def log(message: str) -> None:
        print(f"[{prefix} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    return log


def r(x: float | None, digits: int = 2) -> float | None:
    """`x` rounded to `digits`; None stays None."""
    return None if x is None else round(x, digits)


class Figures(list[dict[str, Any]]):
    """The figures of one run, in order: each the public entry printed as a JSON line, plus the
    private `_summary` and `_baseline_summary` that `table_rows` shows."""

    def add(self, name: str, values: dict[str, Any], baseline: Any, ratio: float | None, target: str,
            passed: bool, summary: str, baseline_summary: str = "-") -> None:
        """Print the figure as one JSON line on stdout and keep it."""
        entry = {"name": name, "values": values, "baseline": baseline, "ratio": r(ratio, 3), "target": target,
                 "pass": bool(passed)}
        print(json.dumps(entry), flush=True)
        self.append({**entry, "_summary": summary, "_baseline_summary": baseline_summary})

    def json_block(self) -> list[str]:
        """The lines of a fenced block of the figures' JSON lines, without the private keys."""
        return ["```", *(json.dumps({k: v for k, v in f.items() if not k.startswith("_")}) for f in self), "```"]


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "?"


def table_rows(figures: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: name, measured, baseline, ratio, target, pass."""
    rows = []
    for f in figures:
        ratio = "-" if f["ratio"] is None else f"{f['ratio']:.2f}x"
        rows.append(
            f"| {f['name']} | {f['_summary']} | {f['_baseline_summary']} | {ratio} | {f['target']} | "
            f"{'yes' if f['pass'] else '**no**'} |"
        )
    return rows


def replace_section(results: str, title: str, section: str) -> None:
    """Put `section` (starting with the `title` line) in place of that section of `results`."""
    try:
        with open(results, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        text = "# Benchmark results\n"
    start = text.find("\n" + title + "\n")
    if start >= 0:
        end = text.find("\n## ", start + len(title) + 2)
        text = text[:start + 1] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(results + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(results + ".tmp", results)
