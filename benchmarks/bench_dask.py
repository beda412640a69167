"""Performance of the Dask execution against its target, with baselines measured in the same run.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_dask.py           # full run; updates the "Dask" section
                                                        # of RESULTS.md
    .venv/bin/python benchmarks/bench_dask.py --quick   # fewer components and repetitions;
                                                        # RESULTS.md untouched unless --write-results

Prints one JSON line per figure on stdout: name, values, baseline, ratio, target, pass.
Progress goes to stderr. The exit status is 0 even when figures miss (read `pass`).

Method: a `LocalCluster` of 2 worker processes (1 thread each) on 127.0.0.1 runs N components
that each sleep 20 ms, in the helper processes of the workers (the default, see
`retain.execution.dask`), and again with `fresh_process: True` (a fresh process each); the figure is the
wall time of `dispatch` (components committed before, cluster and helpers warmed up by a first
dispatch), median of the repetitions, against the ideal N x 20 ms / 2. In alternating rounds,
the same number of components on `PoolExecution(processes=2)` (the same machine, no
scheduler) and N empty Dask tasks (the scheduler's own cost) are measured as baselines.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install
sys.path.insert(0, HERE)  # the workers import this module's component by name

from _common import Figures, loadavg, make_log, r, results_parser, run_intro, scratch  # noqa: E402
from retain import Component, get, storage  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## Dask"
SLEEP = 0.02
WORKERS = 2


class BenchDaskSleep(Component):
    """A component that sleeps 20 ms."""

    Config = {"i": 0, "salt": ""}

    def __call__(self) -> None:
        time.sleep(SLEEP)


FIGURES = Figures()
log = make_log("bench-dask")


def _noop(x: int) -> int:
    return x


def bench_dask(work: str, count: int, repeats: int) -> None:
    import distributed

    from retain.execution.dask import close_clusters

    dask = get("retain.execution.dask", {"workers": WORKERS, "threads_per_worker": 1})
    fresh = get("retain.execution.dask", {"workers": WORKERS, "threads_per_worker": 1, "fresh_process": True})
    pool = get("retain.execution.pool", {"processes": WORKERS})
    ideal = count * SLEEP / WORKERS
    walls: dict[str, list[float]] = {"dask": [], "fresh": [], "pool": [], "noop": []}
    with storage(os.path.join(work, "storage")):
        t0 = time.perf_counter()
        dask.dispatch([BenchDaskSleep({"i": -1, "salt": "warm-up"})])  # starts the cluster and helpers
        warm_up = time.perf_counter() - t0
        fresh.dispatch([BenchDaskSleep({"i": -3, "salt": "warm-up"})])
        pool.dispatch([BenchDaskSleep({"i": -2, "salt": "warm-up"})])  # starts the forkserver
        client = dask._client(distributed)
        for repeat in range(repeats):
            arms = ["dask", "fresh", "pool", "noop"]
            if repeat % 2:
                arms.reverse()
            for arm in arms:
                gc.collect()
                if arm == "noop":
                    t0 = time.perf_counter()
                    futures = client.map(_noop, range(count), pure=False)
                    for _ in distributed.as_completed(futures, loop=client.loop):
                        pass
                    walls[arm].append(time.perf_counter() - t0)
                    del futures
                    continue
                components = [BenchDaskSleep({"i": i, "salt": f"{arm}-{repeat}"}) for i in range(count)]
                for component in components:
                    component.commit()
                execution = {"dask": dask, "fresh": fresh, "pool": pool}[arm]
                t0 = time.perf_counter()
                execution.dispatch(components)
                walls[arm].append(time.perf_counter() - t0)
                assert all(c.cached() for c in components)
                pids = {c.execution.runs()[0]["pid"] for c in components}
                if arm == "fresh":
                    assert len(pids) == count  # a fresh process for every component
                elif arm == "dask":
                    assert len(pids) <= WORKERS  # the helpers ran them
            log(f"round {repeat}: dask {walls['dask'][-1]:.2f} s, dask fresh process {walls['fresh'][-1]:.2f} s, "
                f"pool {walls['pool'][-1]:.2f} s, "
                f"{count} empty dask tasks {walls['noop'][-1]:.2f} s (ideal {ideal:.2f} s)")
    close_clusters()
    wall, pool_wall, noop = (statistics.median(walls[k]) for k in ("dask", "pool", "noop"))
    ratio = wall / ideal
    per_component_ms = (wall - ideal) / (count / WORKERS) * 1000
    FIGURES.add(
        f"dask_{count}x20ms",
        {"median_s": r(wall, 3), "best_s": r(min(walls["dask"]), 3), "runs": [r(w, 3) for w in walls["dask"]],
         "overhead_per_component_ms": r(per_component_ms), "warm_up_s": r(warm_up, 3), "components": count,
         "workers": WORKERS, "pool_median_s": r(pool_wall, 3), "pool_ratio": r(pool_wall / ideal, 3),
         "empty_tasks_median_s": r(noop, 3)},
        {"ops": f"ideal: {count} x {SLEEP * 1000:.0f} ms / {WORKERS}", "seconds": r(ideal, 3)},
        ratio,
        "median <= 1.5x ideal",
        ratio <= 1.5,
        f"{wall:.2f} s median of {len(walls['dask'])} ({min(walls['dask']):.2f} s best); "
        f"{per_component_ms:.1f} ms per component over its sleep",
        f"{ideal:.2f} s (ideal); same run: process pool of {WORKERS} {pool_wall:.2f} s "
        f"({pool_wall / ideal:.2f}x), {count} empty Dask tasks {noop:.2f} s",
    )
    wall = statistics.median(walls["fresh"])
    ratio = wall / ideal
    per_component_ms = (wall - ideal) / (count / WORKERS) * 1000
    FIGURES.add(
        f"dask_{count}x20ms_fresh_process",
        {"median_s": r(wall, 3), "best_s": r(min(walls["fresh"]), 3),
         "runs": [r(w, 3) for w in walls["fresh"]], "overhead_per_component_ms": r(per_component_ms),
         "components": count, "workers": WORKERS},
        {"ops": f"ideal: {count} x {SLEEP * 1000:.0f} ms / {WORKERS}", "seconds": r(ideal, 3)},
        ratio,
        "informational (the target is the default's)",
        True,
        f"{wall:.2f} s median of {len(walls['fresh'])} ({min(walls['fresh']):.2f} s best); "
        f"{per_component_ms:.1f} ms per component over its sleep",
        f"{ideal:.2f} s (ideal)",
    )


# -- results ------------------------------------------------------------------------------------


def write_section(mode: str, seconds: float, load_start: str) -> None:
    import distributed

    intro = run_intro("bench_dask.py", mode, seconds, load_start, f"distributed {distributed.__version__}")
    notes = [
        "- dask_500x20ms: `DaskExecution(workers=2, threads_per_worker=1).dispatch` of 500 committed "
        "components that each sleep 20 ms, on a LocalCluster (127.0.0.1) warmed up by a first "
        "dispatch; each worker thread's helper process runs its components one after the other (the default). Ratio "
        "against the ideal 500 x 20 ms / 2. Baselines of the same rounds: the process pool with 2 "
        "processes on the same components, and 500 empty Dask tasks (the scheduler's own cost).",
        "- dask_500x20ms_fresh_process: the same with `fresh_process: True`: each component in a "
        "fresh process forked by the helper, as the process pool does (informational: the target "
        "applies to the default).",
        "- Everything shares the machine's 2 cores: the scheduler and the client (one process), "
        "2 workers, their helpers and the runs; the figures need an otherwise idle machine. A fresh "
        "process costs 4-9 ms per component here (the fork is under 1 ms; the rest is the run's "
        "first-touch work in a new process: copy-on-write faults and cold caches), which the pool "
        "pays too (see its ratio).",
    ]
    FIGURES.write_section(RESULTS, SECTION, intro, notes, log)


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="100 components, 2 repetitions")
    args = parser.parse_args(argv)
    count, repeats = (100, 2) if args.quick else (500, 3)
    start = time.perf_counter()
    load_start = loadavg()
    with scratch("dask-") as work:
        log(f"mode={'quick' if args.quick else 'full'} work={work} load={load_start}")
        bench_dask(work, count, repeats)
    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (not args.quick or args.write_results):
        write_section("quick" if args.quick else "full", seconds, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
