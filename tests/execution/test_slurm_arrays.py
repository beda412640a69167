"""SlurmExecution splits a large launch into job arrays below the cluster's MaxArraySize (read
with ``scontrol show config``), one ``sbatch`` each, and every component runs exactly once.
Against the real single-node Slurm of ``scripts/services/slurm.sh``; without it these tests
fail, saying so (never skip)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import retain
from retain import ExecutionError, Storage, get, grid
from retain.execution.slurm import max_array_size

from component_worker import Work


@pytest.fixture(scope="module", autouse=True)
def slurm() -> Iterator[None]:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        pytest.fail("Slurm's commands are not installed: run scripts/services/slurm.sh as root (scripts/test does)")
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or not done.stdout.split():
        pytest.fail(f"Slurm is not running (sinfo: {done.stderr.strip()!r}): run scripts/services/slurm.sh as root")
    yield


@pytest.fixture(autouse=True)
def fast_leases() -> Any:
    with retain.settings(heartbeat=0.2, lease=1.0):
        yield


def specs(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("job-*.json"), key=lambda p: int(p.stem[4:]))]


def test_a_grid_larger_than_max_array_size_is_split_below_it(store: Storage, tmp_path: Path) -> None:
    limit = max_array_size()  # the cluster's MaxArraySize: array indexes stay below it
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    assert re.search(rf"^MaxArraySize\s*=\s*{limit}\s*$", out, re.M)
    cells = grid(Work, {"index": list(range(limit + 2))})
    folder = tmp_path / "scripts"
    slurm = get("retain.execution.slurm", {"dry_run": True, "directory": str(folder)})
    outcomes = slurm.dispatch(list(cells))
    assert [o.status for o in outcomes] == ["dry_run"] * len(cells)
    [run] = list(folder.iterdir())
    written = specs(run)
    assert [len(spec["components"]) for spec in written] == [limit, 2]
    listed = [item["id"] for spec in written for item in spec["components"]]
    assert listed == [cell.id for cell in cells]  # each cell once, in grid order
    scripts = sorted(run.glob("job-*.sbatch"), key=lambda p: int(p.stem[4:]))
    assert [re.findall(r"^#SBATCH --array=(\S+)$", p.read_text(), re.M) for p in scripts] == [[f"0-{limit - 1}"], ["0-1"]]


def test_every_cell_of_a_split_grid_runs_exactly_once(store: Storage, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    cells = grid(Work, {"index": list(range(7)), "counter": [str(counter)]})
    slurm = get("retain.execution.slurm", {"time": "10:00", "max_array_size": 3})
    started = time.monotonic()
    outcomes = slurm.dispatch(list(cells))
    assert time.monotonic() - started < 20
    jobs = [o.job["id"] for o in outcomes]  # type: ignore[index]
    bases = [job.split("_")[0] for job in jobs]
    assert len(set(bases)) == 3 and bases[0:3] == [bases[0]] * 3 and bases[3:6] == [bases[3]] * 3
    assert [job.split("_")[1] for job in jobs[:6]] == ["0", "1", "2"] * 2 and "_" not in jobs[6]
    deadline = time.monotonic() + 120
    while (report := cells.status()).counts()["finished"] < len(cells):
        assert time.monotonic() < deadline, f"{report!r}\n{report.jobs}"
        time.sleep(0.5)
    ran = sorted(int(line.split()[0]) for line in counter.read_text().splitlines())
    assert ran == list(range(7))  # each cell once
    again = slurm.dispatch(list(cells))
    assert [o.status for o in again] == ["cached"] * 7
    assert len(counter.read_text().splitlines()) == 7


def test_a_controller_that_accepts_no_more_jobs_is_named_in_the_error(
    store: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real refusal needs a cluster at its MaxJobCount; this sbatch says and does what
    # Slurm's does then (it waits and retries, silently but for that line).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "sbatch"
    fake.write_text(
        "#!/bin/sh\necho 'sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying.' >&2\n"
        "exec sleep 30\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    slurm = get("retain.execution.slurm", {"submit_retries": 1, "retry_delay": 0.1, "command_timeout": 1.0})
    started = time.monotonic()
    with pytest.raises(ExecutionError) as raised:
        slurm.dispatch([get(Work, {"index": 1})])
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert "sbatch refused" in message and "2 time(s)" in message
    assert "did not answer within 1 s (sbatch: error: Slurm temporarily unable to accept job" in message
    assert "MaxJobCount" in message and "every task of an array counts" in message
