"""`benchmarks/bench_grid.py --quick` runs and reports its three figures (the full run is
not part of the tests: see benchmarks/RESULTS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_grid_quick_reports_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_grid.py"), "--quick", "--no-results", "--repeat", "1"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = {entry["name"]: entry for entry in map(json.loads, done.stdout.splitlines())}
    assert list(figures) == ["grid_status", "grid_status_by_class", "grid_launch_cached", "slurm_submit"], done.stdout
    status = figures["grid_status"]
    # The last 1% never launched; of the others, the cells with b == 99 failed.
    assert status["values"]["cells"] == 1000 and status["values"]["counts"] == {
        "missing": 10, "failed": 9, "finished": 981}
    assert status["values"]["seconds"] > 0 and status["baseline"]["seconds"] > 0
    launch = figures["grid_launch_cached"]
    assert launch["values"]["cells"] == 981 and launch["ratio"] > 0
    slurm = figures["slurm_submit"]  # Slurm runs here (scripts/services/slurm.sh): measured
    assert slurm["values"]["seconds"] > 0 and slurm["values"]["cells"] == 200, slurm
    assert slurm["values"]["arrays"] == 4 and slurm["values"]["array_size"] == 64, slurm
    assert "[bench-grid" in done.stderr  # progress on stderr
