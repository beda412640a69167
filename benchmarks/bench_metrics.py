"""Performance figures of metrics over steps (`Component.log_metrics`, `Interface.metrics`),
each against its target and a baseline measured in the same run.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_metrics.py           # full run; updates the
                                                           # "Metrics" section of RESULTS.md
    .venv/bin/python benchmarks/bench_metrics.py --quick   # fewer points; RESULTS.md
                                                           # untouched unless --write-results

Prints one JSON line per figure on stdout: name, values, baseline, ratio, target, pass.
Progress goes to stderr. The exit status is 0 even when figures miss (read `pass`).

Method: wall times (`time.perf_counter`) of whole loops, best of several rounds that alternate
with their baseline, in directories of the same file system (`<repo>/.bench-tmp/`, removed at
the end). Logging is measured inside a run (where it is buffered), up to and including the
write of the run's last buffer.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

from _common import Figures, loadavg, make_log, r, results_parser, run_intro, scratch  # noqa: E402
from retain import Component, get, storage  # noqa: E402
from retain.runs.metrics import close_run  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## Metrics"

FIGURES = Figures()
log = make_log("bench-metrics")


class BenchLog(Component):
    """Logs `steps` steps of two metrics, timing the loop and the final write."""

    Config = {"steps": 1000, "round": 0}

    def __call__(self) -> None:
        steps = self.config.steps
        gc.collect()
        t0 = time.perf_counter()
        for step in range(steps):
            self.log_metrics({"loss": 1.0 / (step + 1), "accuracy": step / steps}, step=step)
        close_run(self.local_directory())  # what the run's end writes
        self.save_summary(seconds=time.perf_counter() - t0)


def baseline(path: str, steps: int) -> float:
    """Appending the same JSON lines to a file yourself: one `json.dumps` and one buffered
    write per step, the file flushed and closed at the end."""
    dumps = json.dumps
    gc.collect()
    t0 = time.perf_counter()
    with open(path, "a", encoding="utf-8") as handle:
        write = handle.write
        for step in range(steps):
            write(dumps([step, "2026-01-01T00:00:00.000000Z", {"loss": 1.0 / (step + 1), "accuracy": step / steps}]) + "\n")
    return time.perf_counter() - t0


# -- 1. logging vs appending the JSON lines yourself ---------------------------------------------


def bench_logging(work: str, steps: int, rounds: int) -> None:
    ours: list[float] = []
    theirs: list[float] = []
    with storage(os.path.join(work, "log")):
        for round_ in range(rounds):
            arms = ["ours", "theirs"] if round_ % 2 else ["theirs", "ours"]
            for arm in arms:
                if arm == "ours":
                    run = get(BenchLog, {"steps": steps, "round": round_}).launch()
                    ours.append(run.load_summary()["seconds"])
                    assert len(run.metrics("loss")) == steps
                else:
                    theirs.append(baseline(os.path.join(work, f"plain-{round_}.jsonl"), steps))
            log(f"round {round_}: log_metrics {ours[-1]:.3f} s, json.dumps + write {theirs[-1]:.3f} s")
    best, base = min(ours), min(theirs)
    ratio = best / base
    per_call = best / steps * 1e6
    FIGURES.add(
        "log_metrics",
        {"best_s": r(best, 3), "per_call_us": r(per_call), "steps": steps, "metrics_per_step": 2,
         "rounds": [r(x, 3) for x in ours]},
        {"ops": "json.dumps of the same line + write to a buffered file", "best_s": r(base, 3),
         "per_call_us": r(base / steps * 1e6)},
        ratio,
        "<= 2x the baseline",
        ratio <= 2.0,
        f"{per_call:.2f} us per call ({steps:,} calls of 2 metrics, final write included)",
        f"{base / steps * 1e6:.2f} us per line",
    )


# -- 2. reading back 1,000,000 points ------------------------------------------------------------


def bench_reading(work: str, points: int, rounds: int) -> None:
    with storage(os.path.join(work, "read")):
        t0 = time.perf_counter()
        run = get(BenchLog, {"steps": points // 2, "round": -1}).launch()
        log(f"logged {points:,} points in {time.perf_counter() - t0:.1f} s")
        size = os.path.getsize(run.local_directory("metrics.jsonl"))
        reads: list[float] = []
        frames: list[float] = []
        one: list[float] = []
        for _ in range(rounds):
            gc.collect()
            t0 = time.perf_counter()
            rows = run.metrics()
            reads.append(time.perf_counter() - t0)
            assert len(rows) == points
            del rows
            gc.collect()
            t0 = time.perf_counter()
            loss = run.metrics("loss")
            one.append(time.perf_counter() - t0)
            assert len(loss) == points // 2
            del loss
            try:
                import pandas  # noqa: F401
            except ImportError:
                continue
            gc.collect()
            t0 = time.perf_counter()
            frame = run.metrics(frame=True)
            frames.append(time.perf_counter() - t0)
            assert len(frame) == points
            del frame
            log(f"read {points:,} points: {reads[-1]:.3f} s (one metric {one[-1]:.3f} s, frame "
                f"{frames[-1] if frames else float('nan'):.3f} s)")
    best = min(reads)
    FIGURES.add(
        "metrics_read_1M",
        {"best_s": r(best, 3), "rounds": [r(x, 3) for x in reads], "points": points,
         "file_mb": r(size / 1e6, 1), "one_metric_best_s": r(min(one), 3),
         "frame_best_s": r(min(frames), 3) if frames else None},
        None,
        None,
        "< 1 s",
        best < 1.0,
        f"{best:.2f} s for {points:,} points as dicts ({size / 1e6:.0f} MB); one metric of two "
        f"{min(one):.2f} s" + (f"; as a DataFrame {min(frames):.2f} s" if frames else ""),
    )


# -- results ------------------------------------------------------------------------------------


def write_section(mode: str, seconds: float, load_start: str) -> None:
    intro = run_intro("bench_metrics.py", mode, seconds, load_start)
    notes = [
        "- log_metrics: `self.log_metrics({\"loss\": ..., \"accuracy\": ...}, step=step)` inside a run "
        "(buffered; written by the flusher thread every second and at the end), the final write "
        "included, vs a loop that appends the same JSON line (`json.dumps` of step, time and "
        "values) to a file it opened itself; best of alternating rounds.",
        "- metrics_read_1M: `run.metrics()` of a component that logged 500,000 steps of two "
        "metrics (1,000,000 rows `{step, name, value, time}`), read from `metrics.jsonl` with one "
        "`json.loads` of the whole file; `metrics(\"loss\")` and `metrics(frame=True)` for reference.",
        "- Rounds vary up to 2x when the machine is shared (see the load average above); the best "
        "round is the figure.",
    ]
    FIGURES.write_section(RESULTS, SECTION, intro, notes, log)


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer points")
    args = parser.parse_args(argv)
    steps, rounds, points = (50_000, 3, 200_000) if args.quick else (200_000, 6, 1_000_000)
    start = time.perf_counter()
    load_start = loadavg()
    with scratch("metrics-") as work:
        log(f"mode={'quick' if args.quick else 'full'} work={work} load={load_start}")
        bench_logging(work, steps, rounds)
        bench_reading(work, points, 3)
    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (not args.quick or args.write_results):
        write_section("quick" if args.quick else "full", seconds, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
