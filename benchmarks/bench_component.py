"""Performance figures of Components and executions, each against its target and a baseline
measured in the same run.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_component.py           # full run; updates the
                                                             # "Components" section of RESULTS.md
    .venv/bin/python benchmarks/bench_component.py --quick   # fewer repetitions; RESULTS.md
                                                             # untouched unless --write-results

Prints one JSON line per figure on stdout: name, values, baseline, ratio, target, pass.
Progress goes to stderr. The exit status is 0 even when figures miss (read `pass`).

Method: in-process times are `time.perf_counter_ns` around one call, medians over many
repetitions, measured in alternating rounds with their baseline, in directories of the same
file system (`<repo>/.bench-tmp/`, removed at the end). Pool figures are wall times of whole
dispatches, after a warm-up dispatch that starts the forkserver.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

from _common import Figures, loadavg, make_log, r, results_parser, run_intro, scratch  # noqa: E402
from retain import Component, Interface, get, storage  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## Components"
SLEEP = 0.05


class BenchPlain(Interface):
    """The baseline: an interface with the same configuration as `BenchEmpty`."""

    Config = {"i": 0}


class BenchEmpty(Component):
    """A component whose run does nothing: what `launch()` adds to `commit()`."""

    Config = {"i": 0}

    def __call__(self) -> None:
        pass


class BenchSleep(Component):
    """A component that sleeps 50 ms (the pool figure)."""

    Config = {"i": 0, "salt": ""}

    def __call__(self) -> None:
        time.sleep(SLEEP)


FIGURES = Figures()
log = make_log("bench-component")
#: The pool's targets are the default's; with a fresh process per component, what it costs.
FRESH_TARGET = "informational: fresh_process=True (the targets are the default pool's)"


def median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000.0


# -- 1. launch() of an empty component vs commit() ----------------------------------------------


def bench_launch(work: str, reps: int, rounds: int) -> None:
    root = os.path.join(work, "launch")
    per_round = max(1, reps // rounds)
    samples: dict[str, list[int]] = {"launch": [], "commit": [], "cached": [], "create": []}
    clock = time.perf_counter_ns
    key = 0
    scratch = os.path.join(work, "scratch")
    os.makedirs(scratch)
    with storage(root):
        for round_ in range(rounds + 1):  # round 0 warms up and is not kept
            gc.collect()
            arms = ["launch", "commit", "create"] if round_ % 2 else ["create", "commit", "launch"]
            for arm in arms:
                got: list[int] = []
                if arm == "launch":
                    items: list[Any] = [BenchEmpty({"i": key + j}) for j in range(per_round)]
                    for item in items:
                        t0 = clock()
                        item.launch()
                        got.append(clock() - t0)
                    for item in items:  # launch() of a finished component: a no-op
                        t0 = clock()
                        item.launch()
                        samples["cached"].append(clock() - t0) if round_ else None
                elif arm == "commit":
                    items = [BenchPlain({"i": key + j}) for j in range(per_round)]
                    for item in items:
                        t0 = clock()
                        item.commit()
                        got.append(clock() - t0)
                else:  # the cost of one new file here: a run creates two (claim, end)
                    for j in range(per_round):
                        path = os.path.join(scratch, f"{key + j}")
                        t0 = clock()
                        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                        os.write(fd, b"x" * 400)
                        os.close(fd)
                        got.append(clock() - t0)
                if round_:
                    samples[arm] += got
            key += per_round
        last = BenchEmpty({"i": key - 1})
        assert last.cached() and last.execution.is_finished()
    launch, commit = median_us(samples["launch"]), median_us(samples["commit"])
    overhead = launch - commit
    create = median_us(samples["create"])
    FIGURES.add(
        "launch_overhead",
        {"launch_median_us": r(launch), "overhead_us": r(overhead), "cached_launch_median_us":
         r(median_us(samples["cached"])), "new_file_median_us": r(create), "repetitions": len(samples["launch"])},
        {"ops": "commit() of an Interface with the same config", "median_us": r(commit)},
        launch / commit,
        "launch() - commit() <= 600 us",
        overhead <= 600,
        f"{launch:.0f} us; overhead {overhead:.0f} us; launch() when cached {median_us(samples['cached']):.1f} us",
        f"{commit:.0f} us (commit()); a new file costs {create:.0f} us on this disk",
    )


# -- 2. the process pool: 200 components x 50 ms on 4 processes --------------------------------


def bench_pool(work: str, count: int, processes: int, repeats: int, fresh: bool = False) -> None:
    pool = get("retain.execution.pool", {"processes": processes, "fresh_process": fresh})
    ideal = count * SLEEP / processes
    walls = []
    with storage(os.path.join(work, "pool" if fresh else "pool-reused")):
        t0 = time.perf_counter()
        # starts the forkserver; without fresh processes, the processes the pool keeps
        pool.dispatch([BenchSleep({"i": -1 - k, "salt": "warm-up"}) for k in range(1 if fresh else processes)])
        warm_up = time.perf_counter() - t0
        for repeat in range(repeats):
            components = [BenchSleep({"i": i, "salt": f"r{repeat}"}) for i in range(count)]
            for component in components:
                component.commit()
            gc.collect()
            t0 = time.perf_counter()
            pool.dispatch(components)
            walls.append(time.perf_counter() - t0)
            assert all(c.cached() for c in components)
            pids = {c.execution.runs()[0]["pid"] for c in components}
            assert len(pids) == (count if fresh else processes)  # a fresh process for each, or not
            log(f"pool {count} x {SLEEP * 1000:.0f} ms on {processes}: {walls[-1]:.3f} s")
    wall = statistics.median(walls)
    ratio = wall / ideal
    per_component_ms = (wall - ideal) / (count / processes) * 1000
    FIGURES.add(
        "pool_200x50ms_fresh" if fresh else "pool_200x50ms",
        {"median_s": r(wall, 3), "best_s": r(min(walls), 3), "runs": [r(w, 3) for w in walls],
         "overhead_per_component_ms": r(per_component_ms), "warm_up_s": r(warm_up, 3),
         "components": count, "processes": processes},
        {"ops": f"ideal: {count} x {SLEEP * 1000:.0f} ms / {processes}", "seconds": r(ideal, 3)},
        ratio,
        FRESH_TARGET if fresh else "median <= 1.15x ideal",
        fresh or ratio <= 1.15,
        f"{wall:.2f} s median of {len(walls)} ({min(walls):.2f} s best); {per_component_ms:.1f} ms "
        "per component over its sleep",
        f"{ideal:.2f} s (ideal)",
    )


def bare_fork_ms(count: int) -> list[float]:
    """Wall times of `count` bare fork + _exit + waitpid of this process, in ms."""
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def bench_pool_latency(work: str, count: int, repeats: int, fresh: bool = False) -> None:
    """One process at a time, components that do nothing: the cost of a run in the process the
    pool keeps (or in a fresh process, with `fresh`), vs a bare fork of this process
    (alternating)."""
    pool = get("retain.execution.pool", {"processes": 1, "fresh_process": fresh})
    pers: list[float] = []
    forks: list[float] = []
    with storage(os.path.join(work, "latency" if fresh else "latency-reused")):
        pool.dispatch([BenchEmpty({"i": 9_999_999})])  # its workers start
        for repeat in range(repeats):
            components = [BenchEmpty({"i": 10_000_000 + repeat * count + i}) for i in range(count)]
            for component in components:
                component.commit()
            gc.collect()
            forks += bare_fork_ms(count // 2)
            t0 = time.perf_counter()
            pool.dispatch(components)
            pers.append((time.perf_counter() - t0) / count * 1000)
            forks += bare_fork_ms(count // 2)
            assert all(c.cached() for c in components)
    per, fork = statistics.median(pers), statistics.median(forks)
    FIGURES.add(
        "pool_per_component_fresh" if fresh else "pool_per_component",
        {"ms_per_component": r(per), "runs": [r(p) for p in pers], "components": count},
        {"ops": "fork + _exit + waitpid of the launcher", "median_ms": r(fork)},
        per / fork,
        FRESH_TARGET if fresh else "<= 4 ms per component",
        fresh or per <= 4,
        f"{per:.1f} ms per component (empty run, 1 process: fork, run, records, report)",
        f"{fork:.2f} ms (a bare fork of the launcher)",
    )


# -- results ------------------------------------------------------------------------------------


def write_section(mode: str, seconds: float, load_start: str) -> None:
    intro = run_intro("bench_component.py", mode, seconds, load_start)
    notes = [
        "- launch_overhead: `launch()` of a fresh component whose `__call__` does nothing (commit, "
        "claim, capture, seed, run, end, finished marker; in process, the default) vs `commit()` of a "
        "fresh interface with the same configuration, alternating rounds. A run creates two files "
        "(its claim and its end; `output.log` too once it prints) and links a third (the finished "
        "marker), so on a disk where creating a file is slow (`new_file_median_us`) the overhead "
        "is about three times that plus ~0.2 ms.",
        "- pool_200x50ms: `PoolExecution(processes=4).dispatch` of 200 committed components that "
        "each sleep 50 ms, by default: each of the pool's 4 processes (kept from one dispatch to "
        "the next, started by a warm-up dispatch) runs its components one after the other; vs the "
        "ideal 200 x 50 ms / 4; median of the repetitions.",
        "- pool_per_component: the same pool with one process and components that do nothing, "
        "median of the repetitions, vs a bare fork + _exit + waitpid of the launcher (measured "
        "before and after each repetition).",
        "- pool_200x50ms_fresh, pool_per_component_fresh: the same with `fresh_process: True`: "
        "each component in a fresh process, forked by a long-lived worker for it.",
        "- The pool figures need an otherwise idle machine: on the 2-core VM of these runs each "
        "component costs 5-10 ms of CPU in a fresh process (a fork, ~900 copy-on-write faults, "
        "its records), so other busy processes stretch them (see docs/design.md, 'Speed of "
        "launch, pool and commit').",
    ]
    FIGURES.write_section(RESULTS, SECTION, intro, notes, log)


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    reps, rounds, repeats = (300, 6, 2) if args.quick else (1500, 10, 3)
    start = time.perf_counter()
    load_start = loadavg()
    with scratch("component-") as work:
        log(f"mode={'quick' if args.quick else 'full'} work={work} load={load_start}")
        bench_launch(work, reps, rounds)
        log("launch done")
        bench_pool(work, 200, 4, repeats)
        bench_pool_latency(work, 100, repeats)
        bench_pool(work, 200, 4, repeats, fresh=True)
        bench_pool_latency(work, 100, repeats, fresh=True)
        log("pool done")
    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (not args.quick or args.write_results):
        write_section("quick" if args.quick else "full", seconds, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
