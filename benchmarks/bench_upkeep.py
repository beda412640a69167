"""`retain verify`, `retain du` and `retain gc --dry-run` over the population of
`bench_scale.py` (1,000,000 results): time, each against a baseline measured in the same run,
and the memory of the process that runs them, which must stay bounded (issue 15).

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_upkeep.py             # 1,000,000 results (~10 minutes)
    .venv/bin/python benchmarks/bench_upkeep.py --quick     # 2,000 results, seconds; RESULTS.md
                                                            # untouched unless --write-results

Each operation runs as the command line runs it (`retain --storage ROOT ...`, a new process),
while this process samples that process's private resident memory (``RssAnon`` of
``/proc/PID/status``, every 50 ms) and its peak resident size (``VmHWM``, which also counts the
pages of files it maps, such as the index read through SQLite's memory map). Worker processes
that `verify` and `du` fork check chunks of 1,000 directories each and are not counted.
Baselines, in this process: reading every record file (for `verify`), and `os.lstat` of every
file of the storage (for `du`). The population is `bench_scale.py`'s, generated once and
reused (see there; ``$RETAIN_BENCH_DIR``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import Figures, loadavg, make_log, r, results_parser, run_intro  # noqa: E402
from bench_scale import _child_env, population, read_all  # noqa: E402
from retain.storage.local import LocalStorage  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
#: Private memory (MB) that each operation may take, whatever the size of the storage.
MEMORY_MB = 300
FIGURES = Figures()
log = make_log("bench-upkeep")


def _status(pid: int) -> dict[str, int]:
    found = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "VmHWM"):
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    return found


def command(root: str, words: list[str]) -> dict[str, Any]:
    """Run ``retain --storage root *words`` in a new process; its time, exit status, last line
    of output, and peak memory (MB)."""
    argv = [sys.executable, "-c", "from retain.cli import console; console()", "--storage", root, *words]
    t0 = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_child_env(), text=True)
    private = peak = 0
    while child.poll() is None:
        found = _status(child.pid)
        private = max(private, found.get("RssAnon", 0))
        peak = max(peak, found.get("VmHWM", 0))
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    assert child.stdout is not None
    lines = child.stdout.read().strip().splitlines()
    return {"seconds": r(seconds), "exit": child.returncode, "last_line": lines[-1] if lines else "",
            "private_mb": r(private / 1024), "peak_mb": r(peak / 1024)}


def stat_all(root: str) -> int:
    """`os.lstat` of every file under `root`, in one process: what `du` must at least do."""
    total = 0
    for parent, _, names in os.walk(root):
        for name in names:
            total += os.lstat(os.path.join(parent, name)).st_size
    return total


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 results (seconds)")
    parser.add_argument("--n", type=int, default=None, help="results in the population (1,000,000)")
    parser.add_argument("--layout", choices=("flat", "sharded"), default="sharded", help="as bench_scale.py")
    args = parser.parse_args(argv)
    n = args.n or (2_000 if args.quick else 1_000_000)
    full = not args.quick and n == 1_000_000
    load_start = loadavg()
    root, _ = population(n, args.layout, 2)
    start = time.perf_counter()
    log(f"n={n:,} layout={args.layout} root={root} load={load_start}")
    store = LocalStorage(root)

    baselines = {
        "verify": ("open + read every record file, one process", "read every record", lambda: read_all(store)),
        "du": ("os.walk + os.lstat of every file, one process", "lstat every file", lambda: stat_all(root)),
    }
    for name, (ops, short, baseline) in baselines.items():
        base_s = timed(baseline)
        found = command(root, [name])
        base_s = min(base_s, timed(baseline))  # before and after: the warmer one
        ratio = found["seconds"] / base_s
        FIGURES.add(
            f"upkeep_{name}", found, {"ops": ops, "seconds": r(base_s)},
            ratio, f"ratio <= 3x; private memory <= {MEMORY_MB} MB",
            found["exit"] == 0 and ratio <= 3 and found["private_mb"] <= MEMORY_MB,
            f"{found['seconds']:.1f} s; {found['private_mb']:.0f} MB private, {found['peak_mb']:.0f} MB peak",
            f"{base_s:.1f} s ({short})",
        )
        log(f"{name} done")

    gc = command(root, ["gc", "--older-than", "3650d", "--dry-run"])
    FIGURES.add(
        "upkeep_gc_dry_run", gc, None, None, f"private memory <= {MEMORY_MB} MB",
        gc["exit"] == 0 and gc["private_mb"] <= MEMORY_MB,
        f"{gc['seconds']:.1f} s; {gc['private_mb']:.0f} MB private, {gc['peak_mb']:.0f} MB peak",
    )
    log("gc done")

    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (full or args.write_results):
        mode = f"{n:,} results, {args.layout} layout" + (", quick" if args.quick else "")
        notes = [
            "- upkeep_verify: `retain verify` (every record read, hashed and checked, the index "
            "compared row by row) vs reading every record file in one process (the better of a "
            "read before and one after).",
            "- upkeep_du: `retain du` (every record read, the bytes of every file summed) vs "
            "`os.lstat` of every file in one process.",
            "- upkeep_gc_dry_run: `retain gc --older-than 3650d --dry-run`: the walk for leftovers "
            "and one pass over the index, selecting nothing.",
            "- Memory: the private resident memory (`RssAnon`) of the `retain` process, sampled "
            "every 50 ms, and its peak resident size (`VmHWM`, which counts mapped index pages). "
            "The worker processes of `verify` and `du` each hold one chunk of 1,000 directories.",
        ]
        FIGURES.write_section(RESULTS, "## Upkeep at scale", run_intro("bench_upkeep.py", mode, seconds, load_start),
                              notes, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
