"""Performance figures of cached functions (`retain.cached`), each against a baseline measured
in the same run: a hit against `joblib.Memory(...).cache` on the same call, and the argument
hash against hashing the same bytes with hashlib.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_cached.py           # full run; updates the
                                                          # "Cached functions" section of RESULTS.md
    .venv/bin/python benchmarks/bench_cached.py --quick   # fewer repetitions; RESULTS.md
                                                          # untouched unless --write-results

Prints one JSON line per figure on stdout: name, values, baseline, ratio, target, pass.
Progress goes to stderr. The exit status is 0 even when figures miss (read `pass`).

Method: `time.perf_counter_ns` around one call, medians over many repetitions, measured in
alternating rounds with the baseline (the order flips each round; round 0 warms up and is not
kept), both caches in directories of the same file system (`<repo>/.bench-tmp/`, removed at the
end).
"""

from __future__ import annotations

import gc
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

import joblib  # noqa: E402
import numpy as np  # noqa: E402

import retain  # noqa: E402
from _common import Figures, loadavg, make_log, r, results_parser, run_intro, scratch  # noqa: E402
from retain._cached import array_hash  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## Cached functions"
FIGURES = Figures()
log = make_log("bench-cached")


def fit(data: Any, ridge: float = 0.1) -> dict[str, float]:
    """The benchmarked function: small array in, small dict out."""
    return {"total": float(data.sum()) * ridge, "n": float(data.size)}


def median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000.0


def alternate(arms: dict[str, Callable[[], Any]], reps: int, rounds: int) -> dict[str, list[int]]:
    """Nanoseconds of each call of each arm, `reps // rounds` calls per arm per round, the
    order of the arms flipping each round; round 0 warms up and is not kept."""
    per_round = max(1, reps // rounds)
    samples: dict[str, list[int]] = {name: [] for name in arms}
    clock = time.perf_counter_ns
    names = list(arms)
    for round_ in range(rounds + 1):
        gc.collect()
        for name in names if round_ % 2 else reversed(names):
            call = arms[name]
            got = []
            for _ in range(per_round):
                t0 = clock()
                call()
                got.append(clock() - t0)
            if round_:
                samples[name] += got
    return samples


def bench_hit(work: str, reps: int, rounds: int) -> None:
    x = np.linspace(0.0, 1.0, 100)
    ours = retain.cached(fit)
    memory = joblib.Memory(os.path.join(work, "joblib"), verbose=0)
    theirs = memory.cache(fit)
    with retain.storage(os.path.join(work, "retain")):
        assert ours(x, ridge=1.0) == theirs(x, ridge=1.0) == fit(x, ridge=1.0)  # the misses
        samples = alternate({"retain": lambda: ours(x, ridge=1.0), "joblib": lambda: theirs(x, ridge=1.0)},
                            reps, rounds)
        assert ours.get(x, ridge=1.0).cached()
    hit, baseline = median_us(samples["retain"]), median_us(samples["joblib"])
    FIGURES.add(
        "cached_hit",
        {"retain_hit_median_us": r(hit), "repetitions": len(samples["retain"])},
        {"ops": "joblib.Memory(...).cache, a hit of the same call", "median_us": r(baseline),
         "joblib": joblib.__version__},
        hit / baseline,
        "hit <= 1x joblib.Memory",
        hit <= baseline,
        f"{hit:.0f} us per hit (100 float64 in, a 2-key dict out, from .json)",
        f"{baseline:.0f} us (joblib {joblib.__version__})",
    )


def bench_hash(reps: int, rounds: int, megabytes: int) -> None:
    array = np.random.default_rng(0).random(megabytes * 131072)  # float64: 8 bytes each
    samples = alternate({
        "retain": lambda: array_hash(array),
        "hashlib": lambda: hashlib.blake2b(memoryview(array).cast("B"), digest_size=16).hexdigest(),
    }, reps, rounds)
    ours, baseline = median_us(samples["retain"]), median_us(samples["hashlib"])
    FIGURES.add(
        "argument_hash",
        {"array_hash_median_us": r(ours), "megabytes": megabytes, "repetitions": len(samples["retain"]),
         "gb_per_s": r(megabytes / 1024 / (ours / 1e6))},
        {"ops": "hashlib.blake2b over the same bytes", "median_us": r(baseline)},
        ours / baseline,
        "<= 1.1x hashlib on the same bytes",
        ours <= 1.1 * baseline,
        f"{ours:.0f} us for {megabytes} MB",
        f"{baseline:.0f} us (hashlib.blake2b)",
    )


def write_section(mode: str, seconds: float, load_start: str) -> None:
    intro = run_intro("bench_cached.py", mode, seconds, load_start)
    notes = [
        "- cached_hit: a hit of `@retain.cached` (bind the arguments, hash the array, resolve the "
        "call's identity, see its finished marker, read `result.json`) vs a hit of "
        "`joblib.Memory(...).cache` on the same function and arguments (hash the arguments, read "
        "its pickle), in alternating rounds, both on local storage.",
        "- argument_hash: the content hash of a numpy argument (`retain._cached.array_hash`: "
        "blake2b over dtype, shape and the buffer) vs `hashlib.blake2b` over the same bytes.",
    ]
    FIGURES.write_section(RESULTS, SECTION, intro, notes, log)


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    reps, rounds, hash_reps = (600, 6, 30) if args.quick else (6000, 10, 200)
    start = time.perf_counter()
    load_start = loadavg()
    with scratch("cached-") as work:
        log(f"mode={'quick' if args.quick else 'full'} work={work} load={load_start}")
        bench_hit(work, reps, rounds)
        log("hit done")
        bench_hash(hash_reps, rounds, 8)
        log("hash done")
    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (not args.quick or args.write_results):
        write_section("quick" if args.quick else "full", seconds, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
