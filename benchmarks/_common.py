"""What every benchmark script shares: the load average, the results table, and replacing its
own `## ` section of RESULTS.md atomically while keeping the others."""

from __future__ import annotations

import os
from typing import Any


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
