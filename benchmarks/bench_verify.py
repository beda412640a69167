"""Performance figures of `retain.verify` (issue 13): verifying a storage against reading every
record yourself, measured in the same run on the same disk.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_verify.py              # 100,000 results; updates the
                                                             # "Verify" section of RESULTS.md
    .venv/bin/python benchmarks/bench_verify.py --quick      # 5,000 results; RESULTS.md
                                                             # untouched unless --write-results
    .venv/bin/python benchmarks/bench_verify.py --n 20000    # another size (same rule)

Prints one JSON line per figure on stdout (name, values, baseline, ratio, target, pass), like
`benchmarks/run.py`; progress goes to stderr. The exit status is 0 even when figures miss.

Method: the storage is populated with commits that skip the index (`retain.index.updates("off")`),
each with two summary values, one in ten using another result as an input; `rebuild()` then
builds the index. `verify()` (every record parsed and hashed again, inputs, summaries, each
directory listed for temporaries, the index compared row by row; in worker processes from
10,000 directories on) alternates with the baseline,
opening, reading and parsing (`json.loads`) every record file in one process, after a warm-up
of both; the median of the rounds is reported.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import statistics
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

from _common import Figures, config_of, loadavg, make_log, r, results_parser, scratch  # noqa: E402
import retain  # noqa: E402
from retain import Interface, storage  # noqa: E402
from retain.storage.local import LocalStorage  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## Verify"
FULL = 100_000
QUICK = 5_000


class BenchRun(Interface):
    """A sweep-like interface: six config leaves, two of them nested."""

    Config = {"i": 0, "lr": 0.1, "batch_size": 32, "group": 0, "model": {"depth": 2, "width": 64}}


class BenchUse(Interface):
    """A result that uses a BenchRun as an input."""

    Config: Any = {"run": None, "i": 0}


FIGURES = Figures()
log = make_log("bench-verify")


def populate(root: str, n: int) -> float:
    t0 = time.perf_counter()
    with storage(root), retain.index.updates("off"):
        last = None
        for i in range(n):
            if i % 10 == 9 and last is not None:
                BenchUse({"run": last, "i": i}).commit()
                continue
            last = BenchRun(config_of(i)).commit()
            last.save_summary(loss=1.0 / (1 + i % 1000), accuracy=(i % 97) / 97)
            if i and i % 20_000 == 0:
                log(f"  {i:,} committed")
    retain.index.rebuild(root)
    return time.perf_counter() - t0


def bench_verify(root: str, n: int, rounds: int) -> None:
    store = LocalStorage(root)  # its own layout (sharded, for a new storage)
    paths = [store.record_path(name) for name in store.iter_directories()]
    assert len(paths) == n, len(paths)

    def read_all() -> int:
        total = 0
        for path in paths:
            with open(path, "rb") as handle:
                total += len(json.loads(handle.read()))
        return total

    def verify() -> retain.VerifyReport:
        return retain.verify(storage=root)

    report = verify()  # warm the page cache (and the index) for both
    assert report.ok and report.checked == n, report.problems[:5]
    read_all()
    reads: list[float] = []
    verifies: list[float] = []
    loads: list[float] = []
    for round_ in range(rounds):
        loads.append(round(os.getloadavg()[0], 2))
        order = ("read", "verify") if round_ % 2 == 0 else ("verify", "read")
        for what in order:
            gc.collect()
            t0 = time.perf_counter()
            (read_all if what == "read" else verify)()
            seconds = time.perf_counter() - t0
            (reads if what == "read" else verifies).append(seconds)
    m_read, m_verify = statistics.median(reads), statistics.median(verifies)
    ratio = m_verify / m_read
    FIGURES.add(
        "verify",
        {"median_s": r(m_verify, 3), "runs_s": [r(x, 3) for x in verifies], "results": n,
         "load_average_per_round": loads},
        {"ops": "open + read + json.loads every record file", "median_s": r(m_read, 3),
         "runs_s": [r(x, 3) for x in reads]},
        ratio, "ratio <= 3x", ratio <= 3.0,
        f"{m_verify:.2f} s", f"{m_read:.2f} s (read and parse all {n:,} records)",
    )


def write_section(n: int, seconds: float, populate_s: float, load_at_start: str) -> None:
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    intro = (
        f"Latest run of `benchmarks/bench_verify.py` ({now}; {n:,} results, one in ten using "
        f"another as an input, two summary values each; populated and indexed in {populate_s:.0f} s; "
        f"run took {seconds:.0f} s; load average at start {load_at_start}, at end {loadavg()})."
        + ("" if n == FULL else f" Not the target's {FULL:,}: the machine of this run is shared.")
    )
    notes = [
        "- verify: `retain.verify()` (list the storage; read, parse and hash every record again; "
        "inputs; summaries; list every directory for temporaries; compare every index row with its "
        "record; from 10,000 directories on, in forked worker processes, as `rebuild` reads) vs "
        "opening, reading and parsing every record file in one process; alternating rounds, warm "
        "cache, median. The machine is shared (2 CPUs): the 1-minute load average of each round is "
        "in the JSON line.",
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
    with scratch("verify-", keep=args.keep, log=log) as work:
        root = os.path.join(work, "storage")
        log(f"n={n:,} work={work} load={load_at_start}")
        populate_s = populate(root, n)
        log(f"populated and indexed {n:,} in {populate_s:.1f} s")
        bench_verify(root, n, rounds=5 if n >= 20_000 else 3)
        log("verify done")
    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (full or args.write_results):
        write_section(n, seconds, populate_s, load_at_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
