"""Performance figures of sweeps (`retain.grid`) at scale: the status of a 100,000-cell grid,
launching 100,000 cells that are finished already, and submitting 10,000 cells to Slurm, each
against a baseline measured in the same run.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_grid.py           # full run; updates the "Grids" section
                                                        # of RESULTS.md
    .venv/bin/python benchmarks/bench_grid.py --quick   # 1,000 cells and 200 for Slurm;
                                                        # RESULTS.md untouched unless
                                                        # --write-results

Prints one JSON line per figure on stdout: name, values, baseline, ratio, target, pass.
Progress goes to stderr. The exit status is 0 even when figures miss (read `pass`).

Method: the population is a grid of `--cells` cells (``a`` x ``b``, ``b`` over 100 values)
launched in process in a new local storage under `<repo>/.bench-tmp/` (or `--population DIR`,
kept and reused by the next run with that option); the cells with ``b == 99`` fail (1%) and
the last 1% of the grid is never launched (missing). Each time is
`time.perf_counter` around one call, the median of `--repeat` calls. The Slurm figure needs a
running Slurm (``scripts/services/slurm.sh``): its jobs are submitted held (``--hold``) and
cancelled at once, so nothing runs; without Slurm the figure says so and does not pass.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

import retain  # noqa: E402
from _common import Figures, loadavg, make_log, r, results_parser, run_intro, scratch  # noqa: E402
from _grid_cell import GridCell  # noqa: E402
from retain._errors import LaunchError  # noqa: E402
from retain.runs.files import RunFiles  # noqa: E402
from retain.storage.layout import FINISHED_FILE  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## Grids"
FIGURES = Figures()
log = make_log("bench-grid")
#: The targets of the issue, for 100,000 cells (status, launch) and 10,000 (Slurm); a quick
#: run scales them to its sizes.
STATUS_S, LAUNCH_S, SLURM_S = 1.0, 2.0, 10.0


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """(median seconds of `repeat` calls, the last call's result)."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def axes(cells: int, offset: int = 0) -> dict[str, list[int]]:
    return {"a": list(range(offset, offset + max(1, cells // 100))), "b": list(range(100))}


def populate(cells: int, population: str) -> tuple[retain.Grid[GridCell], float, int]:
    """The grid in storage `population`, launched but for its last 1% (unless a run before
    did, which left its marker): (grid, seconds `retain.grid` took: a `get` of each cell,
    committed or not, cells launched)."""
    launched = cells - cells // 100
    marker = os.path.join(population, f"bench-grid-{cells}.done")
    with retain.storage(population):
        if not os.path.exists(marker):
            t0 = time.perf_counter()
            try:
                retain.grid(GridCell, axes(cells))[:launched].launch()
            except LaunchError as exc:
                assert len(exc.failures) == launched // 100, len(exc.failures)  # b == 99: 1 in 100
            open(marker, "w").close()
            log(f"populated {launched} of {cells} cells in {time.perf_counter() - t0:.0f} s")
        else:
            log(f"reusing the population of {population}")
        t0 = time.perf_counter()
        grid = retain.grid(GridCell, axes(cells))
        built = time.perf_counter() - t0
    log(f"grid of {len(grid)} built in {built:.1f} s")
    return grid, built, launched


def bench_status(grid: retain.Grid[GridCell], launched: int, repeat: int, scale: float) -> retain.StatusReport:
    seconds, report = timed(grid.status, repeat)
    counts = report.counts()
    failed = sum(1 for point in grid.points[:launched] if point["b"] == 99)
    expected = {"finished": launched - failed, "failed": failed, "missing": len(grid) - launched}
    assert {k: v for k, v in counts.items() if v} == {k: v for k, v in expected.items() if v}, counts
    # The floor: one existence check of each cell's finished marker, paths computed before.
    storage = grid[0].storage
    paths = [os.path.join(storage.local_directory(cell.id), FINISHED_FILE) for cell in grid]
    floor, found = timed(lambda: sum(map(os.path.lexists, paths)), repeat)
    assert found == expected["finished"]
    target = STATUS_S * scale
    FIGURES.add(
        "grid_status",
        {"seconds": r(seconds, 3), "cells": len(grid), "counts": {k: v for k, v in counts.items() if v},
         "repeat": repeat},
        {"ops": "os.path.lexists of each cell's finished marker (paths computed before)", "seconds": r(floor, 3)},
        seconds / floor,
        f"<= {target:g} s for {len(grid):,} cells",
        seconds <= target,
        f"{seconds:.2f} s for {len(grid):,} cells ({seconds / len(grid) * 1e6:.1f} us each)",
        f"{floor:.2f} s (an lstat per cell)",
    )
    # The same question by class, as `retain.status(GridCell)` or a fresh process asks it:
    # the components come from the index, and only those not finished are loaded.
    by_class, again = timed(lambda: retain.status(GridCell), repeat)
    assert again.counts() == {**counts, "missing": 0}, again.counts()
    FIGURES.add(
        "grid_status_by_class",
        {"seconds": r(by_class, 3), "cells": len(again), "repeat": repeat},
        {"ops": "os.path.lexists of each cell's finished marker (paths computed before)", "seconds": r(floor, 3)},
        by_class / floor,
        f"<= {target:g} s for {len(grid):,} cells",
        by_class <= target,
        f"{by_class:.2f} s for the {len(again):,} committed cells of the class",
        f"{floor:.2f} s (an lstat per cell)",
    )
    return report


def bench_launch(report: retain.StatusReport, built: float, cells: int, repeat: int, scale: float) -> None:
    finished = report.finished
    before = sum(1 for component in finished if component.execution.is_started())
    seconds, launched = timed(lambda: retain.launch(finished), repeat)
    assert len(launched) == len(finished)
    # Nothing ran: the cells still have one run each (sampled: a full check costs as much).
    sample = finished[:: max(1, len(finished) // 200)]
    assert all(component.execution.runs()[-1:] and len(component.execution.runs()) == 1 for component in sample)
    assert before == len(finished)
    # The baseline: `get` of each cell (what building the grid did), for as many cells.
    baseline = built * len(finished) / cells
    target = LAUNCH_S * scale
    FIGURES.add(
        "grid_launch_cached",
        {"seconds": r(seconds, 3), "cells": len(finished), "repeat": repeat},
        {"ops": "get of each cell (retain.grid of the same cells), scaled to the finished ones",
         "seconds": r(baseline, 3)},
        seconds / baseline,
        f"<= {target:g} s for {len(finished):,} finished cells",
        seconds <= target,
        f"{seconds:.2f} s for {len(finished):,} cells ({seconds / len(finished) * 1e6:.1f} us each)",
        f"{baseline:.2f} s (get of each)",
    )


def slurm_running() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    return done.returncode == 0 and bool(done.stdout.split())


def bench_slurm(cells: int, scale: float, max_array_size: int | None) -> None:
    target = SLURM_S * scale
    name = "slurm_submit"
    if not slurm_running():
        FIGURES.add(name, {"seconds": None, "cells": cells}, None, None, f"<= {target:g} s", False,
                    "not measured: no Slurm here (run scripts/services/slurm.sh as root)")
        return
    from retain.execution.slurm import max_array_size as cluster_max

    grid = retain.grid(GridCell, axes(cells, offset=10**6))
    config: dict[str, Any] = {"sbatch": ["--hold"], "job_name": "retain-bench-grid"}
    if max_array_size is not None:
        config["max_array_size"] = max_array_size
    slurm = retain.get("retain.execution.slurm", config)
    t0 = time.perf_counter()
    try:
        submitted = grid.launch(execution=slurm)
        seconds = time.perf_counter() - t0
    finally:
        # Whatever was submitted is cancelled, even when the launch failed half way.
        jobs = [RunFiles(cell.storage, cell.id).submission() for cell in grid]
        arrays = sorted({str(job.get("job")).split("_")[0] for job in jobs if job is not None})
        if arrays:
            cancel = subprocess.run(["scancel", *arrays], capture_output=True, text=True, timeout=120)
            assert cancel.returncode == 0, cancel.stderr
    assert all(job is not None for job in jobs) and len(submitted) == len(grid)
    size = min(cluster_max(), max_array_size or cluster_max())
    expected = -(-len(grid) // size)
    # The baseline: committing as many new cells, which every launch does first.
    fresh = retain.grid(GridCell, axes(cells, offset=2 * 10**6))
    t0 = time.perf_counter()
    for cell in fresh:
        cell.commit()
    baseline = time.perf_counter() - t0
    FIGURES.add(
        name,
        {"seconds": r(seconds, 3), "cells": len(grid), "arrays": expected, "array_size": size,
         "max_array_size": cluster_max()},
        {"ops": "commit() of as many new cells", "seconds": r(baseline, 3)},
        seconds / baseline,
        f"<= {target:g} s for {len(grid):,} cells, arrays below MaxArraySize",
        seconds <= target and len(arrays) == expected,
        f"{seconds:.2f} s for {len(grid):,} cells in {expected} arrays of <= {size}",
        f"{baseline:.2f} s (commit of each)",
    )


def write_section(mode: str, seconds: float, load_start: str) -> None:
    intro = run_intro("bench_grid.py", mode, seconds, load_start)
    notes = [
        "- grid_status: `grid.status()` of a grid whose cells are 98% finished, 1% failed and 1% "
        "never launched (the grid built before, as a user holds it), vs the floor of one "
        "`os.path.lexists` per cell of its finished marker. Finished cells cost one existence "
        "check each, asked of the storage in bulk; only the others have their run files read.",
        "- grid_status_by_class: `retain.status(GridCell)`: the committed cells found by one index "
        "query, the finished among them by one existence check each, and only the others "
        "loaded from their records (same floor).",
        "- grid_launch_cached: `retain.launch` of the finished cells (nothing runs) vs `get` of "
        "as many cells (the time `retain.grid` took to build them, per cell).",
        "- slurm_submit: `grid.launch(execution=slurm)` of new cells (committed by the launch), "
        "submitted held and cancelled at once, as job arrays chunked below the cluster's "
        "MaxArraySize (`scontrol show config`), one `sbatch` per array, vs `commit()` of as many "
        "new cells: the ratio is what submitting adds to committing them (per cell, one line "
        "appended to its submission log; per array, one spec, one script, one `sbatch`).",
        "- The population (the grid launched in process: 99,000 runs) is built once and reused "
        "with `--population DIR`; the load average above (other sessions share the 2 cores and "
        "the disk) slows the file-system-bound figures, the ratios less.",
    ]
    FIGURES.write_section(RESULTS, SECTION, intro, notes, log)


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 cells, 200 for Slurm")
    parser.add_argument("--cells", type=int, help="cells of the grid (default 100,000; quick 1,000)")
    parser.add_argument("--slurm-cells", type=int, help="cells submitted to Slurm (default 10,000; quick 200)")
    parser.add_argument("--repeat", type=int, default=3, help="calls of each timed operation")
    parser.add_argument("--population", help="a directory for the grid's storage, kept and reused by "
                        "later runs (default: a new one, removed at the end)")
    args = parser.parse_args(argv)
    cells = args.cells or (1_000 if args.quick else 100_000)
    slurm_cells = args.slurm_cells or (200 if args.quick else 10_000)
    start = time.perf_counter()
    load_start = loadavg()
    with scratch("grid-") as work:
        population = os.path.abspath(args.population or os.path.join(work, "population"))
        log(f"mode={'quick' if args.quick else 'full'} cells={cells} slurm={slurm_cells} work={work} "
            f"population={population} load={load_start}")
        grid, built, launched = populate(cells, population)
        with retain.storage(population):
            report = bench_status(grid, launched, args.repeat, cells / 100_000)
            log("status done")
            bench_launch(report, built, len(grid), args.repeat, cells / 100_000)
            log("launch done")
        with retain.storage(os.path.join(work, "slurm")):
            # A quick run splits its few cells into several arrays, as a large grid is split.
            bench_slurm(slurm_cells, slurm_cells / 10_000, 64 if args.quick else None)
        log("slurm done")
    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (not args.quick or args.write_results):
        write_section("quick" if args.quick else "full", seconds, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
