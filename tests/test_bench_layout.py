"""Smoke test of `benchmarks/bench_layout.py`: a small population of each layout, every figure
measured, RESULTS.md untouched."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def test_bench_layout_runs_small(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(BENCHMARKS)
    import bench_layout

    results = Path(bench_layout.RESULTS).read_bytes()
    assert bench_layout.main(["--n", "300", "--dir", str(tmp_path / "fs"), "--label", "smoke", "--no-results"]) == 0
    figures = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    names = {f["name"] for f in figures}
    assert names == {f"layout_{what}_smoke" for what in
                     ("first_query_after_commit", "get_hit", "commit", "rebuild", "listing", "settled_query")}
    assert all(f["values"]["results"] == 300 for f in figures)
    assert Path(bench_layout.RESULTS).read_bytes() == results
    assert os.listdir(tmp_path / "fs") == []  # the populations are removed
    sys.modules.pop("bench_layout", None)
