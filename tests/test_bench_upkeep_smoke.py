"""benchmarks/bench_upkeep.py: its --quick run works end to end and measures what it says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_upkeep.py"


def test_quick_run_measures_verify_du_and_gc_in_processes_of_their_own(tmp_path: Path) -> None:
    env = {**os.environ, "RETAIN_BENCH_DIR": str(tmp_path / "cache")}
    results = (ROOT / "benchmarks" / "RESULTS.md").read_bytes()
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--no-results"], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    figures = {f["name"]: f for f in map(json.loads, done.stdout.splitlines())}
    assert list(figures) == ["upkeep_verify", "upkeep_du", "upkeep_gc_dry_run"]
    for figure in figures.values():
        values = figure["values"]
        assert values["exit"] == 0, figure
        # Sampled from the running process: a python process holds some memory, not much here.
        assert 1 < values["private_mb"] <= values["peak_mb"] < 300, figure
    assert "checked 2,000 record(s)" in figures["upkeep_verify"]["values"]["last_line"]
    assert "0 problem(s)" in figures["upkeep_verify"]["values"]["last_line"]
    assert figures["upkeep_du"]["values"]["last_line"].startswith("total: 2,000 result(s)")
    assert figures["upkeep_verify"]["baseline"]["seconds"] > 0 and figures["upkeep_du"]["ratio"] > 0
    assert (ROOT / "benchmarks" / "RESULTS.md").read_bytes() == results  # --no-results
