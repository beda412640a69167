"""What every benchmark script shares: progress lines on stderr, rounding, the figures it prints
as JSON lines, the load average, a scratch directory under `<repo>/.bench-tmp/`, the results
table, and replacing its own `## ` section of RESULTS.md (or, for run.py, what comes before the
first section) atomically while keeping the others."""

from __future__ import annotations

import argparse

import contextlib
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

TMP_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".bench-tmp")
TABLE_HEADER = ["| Figure | Measured | Baseline | Ratio | Target | Pass |", "|---|---|---|---|---|---|"]


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

    def passed(self) -> str:
        """How many figures pass, of how many: `"3/3"`."""
        return f"{sum(f['pass'] for f in self)}/{len(self)}"

    def markdown(self, head: list[str], notes: list[str]) -> str:
        """`head`, the table of the figures, `notes`, then their JSON lines, a blank line between
        each; ends with a newline."""
        return "\n".join([*head, "", *TABLE_HEADER, *table_rows(self), "", *notes, "", *self.json_block(), ""])

    def write_section(self, results: str, title: str, intro: str, notes: list[str],
                      log: Callable[[str], None]) -> None:
        """Replace the `title` section of `results` with `intro`, the figures and `notes`."""
        replace_section(results, title, self.markdown([title, "", intro], notes))
        log(f"updated the {title!r} section of {results}")


def run_intro(script: str, mode: str, seconds: float, load_start: str, versions: str = "") -> str:
    """The first line of a section: when and how `benchmarks/<script>` ran (mode, cores, Python
    and `versions`, duration, load average at start and end)."""
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    extra = f"; {versions}" if versions else ""
    return (
        f"Latest run of `benchmarks/{script}` ({now}; {mode}; {os.cpu_count()} cores; "
        f"Python {sys.version.split()[0]}{extra}; run took {seconds:.0f} s; load average "
        f"{load_start} at start, {loadavg()} at end)."
    )


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "?"


@contextlib.contextmanager
def scratch(prefix: str, keep: bool = False, log: Callable[[str], None] | None = None,
            timed: bool = False) -> Iterator[str]:
    """A new directory `TMP_ROOT/<prefix>...` for the block, then removed with TMP_ROOT if that is
    empty; with `keep`, kept and `log` says so. With `timed`, `log` says how long removal took."""
    os.makedirs(TMP_ROOT, exist_ok=True)
    work = tempfile.mkdtemp(prefix=prefix, dir=TMP_ROOT)
    try:
        yield work
    finally:
        if keep:
            if log:
                log(f"kept {work}")
        else:
            t0 = time.perf_counter()
            shutil.rmtree(work, ignore_errors=True)
            try:
                os.rmdir(TMP_ROOT)
            except OSError:
                pass
            if log and timed:
                log(f"cleaned up in {time.perf_counter() - t0:.1f} s")


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


def _read(path: str, default: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return default


def _write(path: str, text: str) -> None:
    """Write `text` to a sibling file, then put that in place of `path`."""
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)


def replace_section(results: str, title: str, section: str) -> None:
    """Put `section` (starting with the `title` line) in place of that section of `results`."""
    text = _read(results, "# Benchmark results\n")
    start = text.find("\n" + title + "\n")
    if start >= 0:
        end = text.find("\n## ", start + len(title) + 2)
        text = text[:start + 1] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    _write(results, text)


def replace_preamble(results: str, text: str) -> None:
    """Put `text` in place of what `results` holds before its first `## ` section, keeping the
    sections (run.py writes the top; the other scripts their own sections)."""
    old = _read(results, "")
    kept = old[old.find("\n## ") + 1:] if "\n## " in old else ""
    _write(results, text + ("\n" + kept if kept else ""))


#: The learning rates of the sweep population that the index and UI benchmarks commit.
LRS = [0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001]


def config_of(i: int) -> dict[str, Any]:
    """Cell `i` of that sweep: six config leaves, two of them nested."""
    return {
        "i": i,
        "lr": LRS[i % len(LRS)],
        "batch_size": (16, 32, 64, 128)[i % 4],
        "group": i % 100,  # an equality on group matches 1%
        "model.depth": 1 + i % 8,
    }


def results_parser(doc: str, write_help: str = "update RESULTS.md in quick mode too") -> argparse.ArgumentParser:
    """The command line every benchmark script shares (described by the first paragraph of its
    docstring): ``--write-results`` and ``--no-results``; the script adds its own sizes."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--write-results", action="store_true", help=write_help)
    parser.add_argument("--no-results", action="store_true", help="do not touch RESULTS.md")
    return parser
