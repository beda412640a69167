"""The benchmarks that make their own storages run end to end in their quick modes, in the
layout a new storage has (they once built `<root>/<id>` paths by hand), and leave RESULTS.md
alone when told to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"

CASES = {
    "run.py": (["--quick"], {"get_committed", "get_absent", "from_directory", "commit", "commit_rate", "import"}),
    "bench_index.py": (["--n", "2000"], {"index_rebuild", "index_get_all", "index_where_equality"}),
    "bench_verify.py": (["--quick"], {"verify"}),
    "bench_gc.py": (["--quick"], set()),
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_a_quick_run_measures_every_figure(script: str, tmp_path: Path) -> None:
    words, expected = CASES[script]
    before = RESULTS.read_bytes()
    env = {**os.environ, "RETAIN_BENCH_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *words, "--no-results"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert figures, done.stdout
    measured = [figure for figure in figures if "target" in figure]  # run.py also prints its setup
    for figure in measured:
        assert {"name", "values", "baseline", "ratio", "target", "pass"} <= set(figure), figure
    assert measured and expected <= {figure["name"] for figure in measured}
    assert RESULTS.read_bytes() == before
