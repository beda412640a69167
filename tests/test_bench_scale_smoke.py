"""benchmarks/bench_scale.py: its --quick run works end to end, and its generated population is
what commits would have written, reused while whole and generated again when not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import retain
from retain import get

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_scale.py"


def test_quick_run_exits_0_and_prints_one_json_line_per_figure(tmp_path: Path) -> None:
    env = {**os.environ, "RETAIN_BENCH_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--no-results"], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    figures = [json.loads(line) for line in done.stdout.splitlines()]
    for figure in figures:
        assert set(figure) == {"name", "values", "baseline", "ratio", "target", "pass"}, figure
    assert [f["name"] for f in figures] == [
        "population_check", "scale_get_hit", "scale_where_equality", "scale_query_after_commit",
        "scale_get_all", "scale_to_table", "scale_to_dataframe", "scale_rebuild", "scale_rebuild_writer",
        # every other figure of the issue, in the same run
        "launch_overhead", "pool_200x50ms", "pool_per_component",
        "pool_200x50ms_fresh", "pool_per_component_fresh", "commit_rate",
        "grid_status", "grid_status_by_class", "grid_launch_cached", "slurm_submit",
    ]
    check = figures[0]
    assert check["pass"] and check["values"]["verify"]["exit"] == 0, check
    assert figures[4]["values"]["memory"]["size"] == 2000
    # The commits measured in the population are deleted again: it is what was generated.
    assert figures[14]["values"]["commits"] == 400
    writer = figures[8]["values"]
    assert writer["results"] == 2000 and writer["write_ms"] > 0 and writer["read_first_ms"] > 0
    assert abs(writer["leaves_ms"] - (writer["write_ms"] - writer["write_without_leaves_ms"])) <= 0.02
    large = next(tmp_path.glob("cache/scale-sharded-2000-*/storage"))
    assert len(get.all(retain.Interface, storage=str(large))) == 2000
    # The index is whole after the rebuild without config leaves: answered by `where`.
    with retain.storage(str(large)):
        assert len(get.all(retain.Interface, where={"group": 7})) == 20
    assert retain.verify(storage=str(large)).ok
    # Both populations are cached, whole, for the next run.
    cached = sorted(os.listdir(tmp_path / "cache"))
    assert len(cached) == 2 and all((tmp_path / "cache" / name / "complete.json").exists() for name in cached)
    assert all(name.startswith("scale-sharded-") for name in cached)  # the default layout of a new storage


@pytest.fixture
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("RETAIN_BENCH_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_scale

    yield bench_scale
    for name in ("bench_scale", "_common"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("layout", ["flat", "sharded"])
def test_the_population_is_what_commits_write_and_passes_verify(bench: ModuleType, layout: str) -> None:
    bench.CHECK_EVERY = 7  # compare with a commit's record often (it raises on a difference)
    root, info = bench.population(60, layout, workers=1)
    assert info["n"] == 60 and info["shard"] == bench.SHARD[layout]
    report = retain.verify(storage=root)
    assert report.problems == [] and report.checked == 60
    with retain.storage(root):
        assert len(get.all(bench.BenchRun)) == 60
        assert len(get.all(bench.BenchRun, where={"group": 7})) == 1
        found = get(bench.BenchRun, bench.config_of(40))
        assert found.is_committed() and found.load_summary() == bench.summary_of(40)
        # A commit of a generated configuration adopts the generated record: same id.
        generated = get(bench.BenchRun, bench.config_of(33))
        again = bench.BenchRun(bench.config_of(33)).commit()
        assert (again.id, again.created) == (generated.id, generated.created)
        assert not get(bench.BenchRun, bench.config_of(60)).is_committed()
    if layout == "sharded":
        assert os.path.isdir(os.path.join(root, found.id[:2], found.id))


def test_the_population_is_reused_when_whole_and_generated_again_when_not(bench: ModuleType) -> None:
    root, info = bench.population(30, "flat", workers=1)
    marker = os.path.join(os.path.dirname(root), "complete.json")
    again, info_again = bench.population(30, "flat", workers=1)
    assert (again, info_again) == (root, info)  # reused: nothing written
    os.remove(marker)  # as a generation killed before its end leaves it
    os.mkdir(os.path.join(root, "leftover"))
    third, info_third = bench.population(30, "flat", workers=1)
    assert third == root and os.path.exists(marker) and not os.path.exists(os.path.join(root, "leftover"))
    with retain.storage(root):
        assert len(get.all(bench.BenchRun)) == 30


def test_the_rebuild_from_disk_is_informational_and_skipped_without_root(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--from-disk` times the read of every record and a rebuild, each after the page cache
    is emptied (here: pretended, a test must not empty the machine's); where that is refused,
    no figure."""
    root, _ = bench.population(40, "sharded", workers=1)
    figures = bench.FIGURES = bench.Figures()
    monkeypatch.setattr(bench, "drop_page_cache", lambda: False)
    bench.bench_rebuild_from_disk(root, 40)
    assert figures == []
    dropped: list[int] = []
    monkeypatch.setattr(bench, "drop_page_cache", lambda: dropped.append(1) or True)
    bench.bench_rebuild_from_disk(root, 40)
    [figure] = figures
    assert figure["name"] == "scale_rebuild_from_disk" and figure["pass"] and len(dropped) == 2
    assert figure["values"]["memory"]["size"] == 40 and figure["baseline"]["median_ms"] > 0
    assert figure["ratio"] == pytest.approx(figure["values"]["median_ms"] / figure["baseline"]["median_ms"], rel=0.05)
    assert figure["target"].startswith("informational")


def test_the_split_rebuild_times_the_writer_with_and_without_the_config_leaves(bench: ModuleType) -> None:
    root, _ = bench.population(60, "sharded", workers=1)
    size, times = bench.rebuild_split(root, leaves=False)
    assert size == 60 and set(times) == {"read_ms", "write_ms"} and min(times.values()) > 0
    with retain.storage(root):
        assert len(get.all(bench.BenchRun)) == 60
        assert len(get.all(bench.BenchRun, where={"group": 7})) == 0  # no config leaves given
    size, times = bench.rebuild_split(root)
    assert size == 60 and min(times.values()) > 0
    with retain.storage(root):
        assert len(get.all(bench.BenchRun, where={"group": 7})) == 1
    # A population whose index was left without leaves (a stopped run) is mended on reuse.
    bench.rebuild_split(root, leaves=False)
    with open(bench._stripped_marker(root), "w"):
        pass
    again, _ = bench.population(60, "sharded", workers=1)
    assert again == root and not os.path.exists(bench._stripped_marker(root))
    with retain.storage(root):
        assert len(get.all(bench.BenchRun, where={"group": 7})) == 1
    # The rebuild reads through retain's own reader again afterwards.
    from retain.index import _rebuild_workers

    assert _rebuild_workers.read_chunks.__module__ == "retain.index._rebuild_workers"
