"""Performance figures of `retain.gc` (issue 13): cleaning a storage up against a script that
does it by hand, measured in the same run on the same disk.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_gc.py              # 100,000 results; updates the "Gc"
                                                         # section of RESULTS.md
    .venv/bin/python benchmarks/bench_gc.py --quick      # 5,000 results; RESULTS.md untouched
                                                         # unless --write-results
    .venv/bin/python benchmarks/bench_gc.py --n 20000    # another size (same rule)

Prints one JSON line per figure on stdout (name, values, baseline, ratio, target, pass), like
`benchmarks/run.py`; progress goes to stderr. The exit status is 0 even when figures miss.

Method: the storage of `bench_verify.py` (commits that skip the index, then `rebuild()`; one
in ten results uses another as an input) is populated once and copied. Two figures:

- `gc (nothing to remove)`: `retain.gc()` on the whole storage (the walk for leftovers of
  killed processes, in worker processes from 10,000 directories on) against opening,
  reading and parsing every record file in one process.
- `gc --older-than (10%)`: `retain.gc(older_than=...)` selecting about the oldest tenth (the index
  rows read and the users found, then each result removed atomically, the index following)
  against a script that reads every record, picks those created before the same time and
  deletes their directories (`shutil.rmtree`), with no care for users, atomicity or the
  index. Each round starts from the same storage (the removed directories and `.retain/`
  copied back, untimed).

Rounds alternate which goes first, after a warm-up; the median is reported.
"""

from __future__ import annotations

import gc as collector
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

from _common import Figures, loadavg, make_log, r, results_parser, run_intro, scratch  # noqa: E402
from bench_verify import populate  # noqa: E402  (the same storage as verify's figures)
import retain  # noqa: E402
from retain._timestamps import parse_iso  # noqa: E402
from retain.storage.layout import STORAGE_META_DIR  # noqa: E402
from retain.storage.local import LocalStorage  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## Gc"
FULL = 100_000
QUICK = 5_000
#: The share of the results that `--older-than` selects.
SHARE = 0.1

FIGURES = Figures()
log = make_log("bench-gc")


def read_all(root: str, names: list[str]) -> list[tuple[str, str]]:
    """(id, created) of every record: opened, read and parsed."""
    out = []
    store = LocalStorage(root)  # its own layout (sharded, for a new storage)
    for name in names:
        with open(store.record_path(name), "rb") as handle:
            out.append((name, json.loads(handle.read())["created"]))
    return out


def copy(source: str, target: str) -> None:
    subprocess.run(["cp", "-a", source, target], check=True)


def restore(pristine: str, root: str, names: list[str]) -> None:
    """Put the directories `names` and `.retain/` (the index) of `pristine` back into `root`."""
    source, target = LocalStorage(pristine), LocalStorage(root)
    into: dict[str, list[str]] = {}  # the directories to copy back, by the directory they go into
    for name in names:
        place = target.local_directory(name)
        if not os.path.exists(place):
            into.setdefault(os.path.dirname(place), []).append(source.local_directory(name))
    for parent, gone in into.items():
        os.makedirs(parent, exist_ok=True)
        for start in range(0, len(gone), 1000):  # one cp per thousand directories
            subprocess.run(["cp", "-a", *gone[start:start + 1000], parent], check=True)
    shutil.rmtree(os.path.join(root, STORAGE_META_DIR))
    copy(os.path.join(pristine, STORAGE_META_DIR), os.path.join(root, STORAGE_META_DIR))


def sync(root: str) -> None:
    """Bring the index of `root` up to date (untimed: the directories were put back behind its
    back, as no user would)."""
    retain.get.all(retain.Interface, storage=root).ids()


def bench_nothing(root: str, names: list[str], rounds: int) -> None:
    def clean() -> retain.GcReport:
        return retain.gc(storage=root)

    report = clean()  # warm the page cache (and the index) for both
    assert report.removed == [] and report.leftovers == [], report
    read_all(root, names)
    reads: list[float] = []
    runs: list[float] = []
    loads: list[float] = []
    for round_ in range(rounds):
        loads.append(round(os.getloadavg()[0], 2))
        for what in ("read", "gc") if round_ % 2 == 0 else ("gc", "read"):
            collector.collect()
            t0 = time.perf_counter()
            read_all(root, names) if what == "read" else clean()
            (reads if what == "read" else runs).append(time.perf_counter() - t0)
    m_read, m_gc = statistics.median(reads), statistics.median(runs)
    FIGURES.add(
        "gc (nothing to remove)",
        {"median_s": r(m_gc, 3), "runs_s": [r(x, 3) for x in runs], "results": len(names),
         "load_average_per_round": loads},
        {"ops": "open + read + json.loads every record file", "median_s": r(m_read, 3),
         "runs_s": [r(x, 3) for x in reads]},
        m_gc / m_read, "reported", True,
        f"{m_gc:.2f} s", f"{m_read:.2f} s (read and parse all {len(names):,} records)",
    )


def bench_older_than(pristine: str, work: str, names: list[str], rounds: int) -> None:
    created = sorted(parse_iso(when) for _, when in read_all(pristine, names))
    # Between two commits: gc's "older than" (from its own clock, read a moment after this
    # process computed the age) and the script's cutoff select the same results. Near the
    # oldest tenth, where two commits are furthest apart (commits come every ~0.2 ms: the
    # middle of an ordinary gap is closer to either side than that moment may last). A
    # multiple of ten: a result and its user are on the same side.
    share = int(len(created) * SHARE)
    oldest = max(range(max(10, share // 2 // 10 * 10), share * 3 // 2 + 1, 10),
                 key=lambda k: created[k] - created[k - 1])
    cutoff = (created[oldest - 1] + created[oldest]) / 2
    selected = [name for name, when in read_all(pristine, names) if parse_iso(when) < cutoff]
    mine, theirs = os.path.join(work, "gc"), os.path.join(work, "script")
    log(f"copying the storage twice ({len(names):,} results)")
    copy(pristine, mine)
    copy(pristine, theirs)
    sync(mine)

    def run_gc() -> int:
        report = retain.gc(older_than=time.time() - cutoff, storage=mine)
        assert not report.skipped and not report.leftovers, report
        return len(report.removed)

    def script() -> int:
        gone = 0
        store = LocalStorage(theirs)
        for name, when in read_all(theirs, list(store.iter_directories())):
            if parse_iso(when) < cutoff:
                shutil.rmtree(store.local_directory(name))
                gone += 1
        return gone

    runs: list[float] = []
    scripts: list[float] = []
    loads: list[float] = []
    counts: set[int] = set()
    for round_ in range(rounds + 1):  # the first round warms up both
        loads.append(round(os.getloadavg()[0], 2))
        for what in ("script", "gc") if round_ % 2 == 0 else ("gc", "script"):
            collector.collect()
            t0 = time.perf_counter()
            counts.add(script() if what == "script" else run_gc())
            seconds = time.perf_counter() - t0
            if round_:
                (scripts if what == "script" else runs).append(seconds)
        for root in (mine, theirs):
            restore(pristine, root, selected)
        sync(mine)
    assert counts == {len(selected)}, (counts, len(selected))
    m_gc, m_script = statistics.median(runs), statistics.median(scripts)
    FIGURES.add(
        "gc --older-than (10%)",
        {"median_s": r(m_gc, 3), "runs_s": [r(x, 3) for x in runs], "results": len(names),
         "removed": len(selected), "load_average_per_round": loads[1:]},
        {"ops": "read + json.loads every record, rmtree those created before the cutoff",
         "median_s": r(m_script, 3), "runs_s": [r(x, 3) for x in scripts]},
        m_gc / m_script, "reported", True,
        f"{m_gc:.2f} s ({len(selected):,} removed)",
        f"{m_script:.2f} s (read every record, rm -rf {len(selected):,} directories)",
    )


def write_section(n: int, seconds: float, populate_s: float, load_at_start: str) -> None:
    intro = run_intro(
        "bench_gc.py", f"{n:,} results, one in ten using another as an input, populated and indexed in "
        f"{populate_s:.0f} s", seconds, load_at_start,
    ) + ("" if n == FULL else f" Not the target's {FULL:,}: the machine of this run is shared.")
    notes = [
        "- gc (nothing to remove): `retain.gc()` (the walk of every directory for temporaries of "
        "killed writers and orphans, without reading the records; from 10,000 directories on in "
        "forked worker processes, as `verify`; the removal area) vs opening, reading and parsing "
        "every record file in one process.",
        "- gc --older-than (10%): `retain.gc(older_than=...)` selecting about the oldest tenth "
        "(5-15%, cut between the two commits furthest apart there; that walk; "
        "the index rows read, once to select and once more before removing, and the users of each "
        "result found from them; each result journaled, moved into the removal area and deleted, "
        "the index following) vs a script reading every record and deleting with `shutil.rmtree` "
        "the directories of those created before the cutoff (no users checked, not atomic, the "
        "index left stale). Alternating rounds after a warm-up, warm cache, median. No target: "
        "the figures say what the safety costs. The machine is shared (2 CPUs): the 1-minute "
        "load average of each round is in the JSON line.",
    ]
    FIGURES.write_section(RESULTS, SECTION, intro, notes, log)


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__, "update RESULTS.md even with --quick or --n")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK:,} results, fewer rounds")
    parser.add_argument("--n", type=int, default=None, help=f"results to populate (default {FULL:,})")
    parser.add_argument("--keep", action="store_true", help="keep the temporary storage")
    args = parser.parse_args(argv)
    n = args.n or (QUICK if args.quick else FULL)
    full = n == FULL and not args.quick
    start = time.perf_counter()
    load_at_start = loadavg()
    rounds = 3 if n >= 20_000 else 2
    with scratch("gc-", keep=args.keep, log=log) as work:
        pristine = os.path.join(work, "pristine")
        log(f"n={n:,} work={work} load={load_at_start}")
        populate_s = populate(pristine, n)
        log(f"populated and indexed {n:,} in {populate_s:.1f} s")
        names = list(LocalStorage(pristine).iter_directories())
        assert len(names) == n, len(names)
        bench_nothing(pristine, names, rounds)
        log("gc (nothing to remove) done")
        bench_older_than(pristine, work, names, rounds)
        log("gc --older-than done")
    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (full or args.write_results):
        write_section(n, seconds, populate_s, load_at_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
