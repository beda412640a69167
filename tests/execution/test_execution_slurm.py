"""SlurmExecution against a real single-node Slurm (Debian's slurm-wlm and munge), which
``scripts/services/slurm.sh`` installs, configures and starts (``scripts/test`` runs it). Without
it these tests fail, saying so: they never skip.

Components come from tests/workers/component_worker.py; the jobs run this interpreter, with the
launcher's ``sys.path``, so they import it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import retain
from retain import Component, ExecutionError, Storage, get

from component_worker import Work


SERVICE = "scripts/services/slurm.sh"


@pytest.fixture(scope="module", autouse=True)
def slurm() -> Iterator[None]:
    """Fail (never skip) when no Slurm answers here."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        pytest.fail(f"Slurm's commands are not installed: run {SERVICE} as root (scripts/test does)")
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    states = done.stdout.split()
    if done.returncode != 0 or not any(s.rstrip("*~#") in ("idle", "mix", "alloc", "comp") for s in states):
        pytest.fail(
            f"Slurm is not running or has no usable node (sinfo: {done.stdout.strip() or done.stderr.strip()!r}): "
            f"run {SERVICE} as root (scripts/test does)"
        )
    yield


@pytest.fixture(autouse=True)
def fast_leases() -> Any:
    with retain.settings(heartbeat=0.2, lease=1.0):
        yield


def wait_until_done(components: list[Component], timeout: float = 60) -> retain.StatusReport:
    deadline = time.monotonic() + timeout
    while True:
        report = retain.status(components)
        counts = report.counts()
        if counts["finished"] + counts["failed"] == len(components):
            return report
        assert time.monotonic() < deadline, f"not done after {timeout} s:\n{report!r}\n{report.jobs}\n{job_logs(components)}"
        time.sleep(0.3)


def job_logs(components: list[Component]) -> str:
    """The end of each component's latest job log: what a failing test shows."""
    shown = []
    for component in components:
        job = component.execution.job() or {}
        log = Path(job.get("submission", {}).get("log") or "/nonexistent")
        shown.append(f"--- {log}:\n{log.read_text()[-2000:] if log.exists() else '(none)'}")
    return "\n".join(shown)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_single_job_and_arrays_run_their_components(store: Storage, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    single = get(Work, {"index": 0, "counter": str(counter), "fail": "broken on purpose"})
    many = [get(Work, {"index": i, "counter": str(counter), "sleep": 0.2}) for i in range(1, 4)]
    slurm = get("retain.execution.slurm", {"time": "10:00", "max_array_size": 2, "throttle": 2})
    with slurm:
        single.launch()  # queued in the block, submitted at its end: a single job
    started = time.monotonic()
    outcomes = slurm.dispatch(many)  # two arrays: 2 + 1 (max_array_size)
    assert time.monotonic() - started < 10  # submits and returns
    assert [o.status for o in outcomes] == ["submitted"] * 3
    jobs = [o.job["id"] for o in outcomes]  # type: ignore[index]
    assert jobs[0].endswith("_0") and jobs[1].endswith("_1") and jobs[0].split("_")[0] == jobs[1].split("_")[0]
    assert "_" not in jobs[2]  # a chunk of one is a plain job
    from retain.execution.slurm import max_array_size

    assert max_array_size() >= 2  # the cluster's MaxArraySize, from `scontrol show config`
    assert "#SBATCH --array=0-1%2" in Path(outcomes[0].job["script"]).read_text()  # type: ignore[index]
    report = retain.status([single, *many])
    assert all(state in ("queued", "running", "finished", "failed") for _, state in report)
    assert set(report.jobs) <= {c.id for c in [single, *many]}
    # Launching again while they are queued or running submits nothing more.
    again = slurm.dispatch(many)
    assert all(o.status == "cached" or (o.job or {}).get("already") for o in again)

    report = wait_until_done([single, *many])
    assert report.finished == many and report.failed == [single]
    assert report.errors[single.id]["type"] == "ValueError"
    assert len(lines(counter)) == 4  # each ran once
    for work, job in zip(many, jobs):
        assert work.load_file("result.json")["index"] == work.config.index
        [run] = work.execution.runs()
        assert run["execution"]["class"] == "SlurmExecution" and run["execution"]["job"]["node"]
        assert run["execution"]["job"].get("array_task_id", "0") == (job.split("_")[1] if "_" in job else "0")
        # The job itself may still be ending (its task exits after the component finished).
        assert work.execution.job()["state"] in ("COMPLETED", "COMPLETING", "RUNNING")  # type: ignore[index]
        assert f"work {work.config.index} to stderr" in work.execution.output()
    job = single.execution.job()
    assert job is not None and job["state"] in ("FAILED", "COMPLETING", "RUNNING")
    assert "broken on purpose" in single.execution.output()
    log = Path(job["submission"]["log"])
    deadline = time.monotonic() + 30
    while f"component {single.id} failed: ValueError: broken on purpose" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def test_dry_run_writes_the_scripts_and_submits_nothing(store: Storage, tmp_path: Path) -> None:
    works = [get(Work, {"index": i, "counter": str(tmp_path / "counter")}) for i in range(3)]
    name = f"retain-dry-{os.urandom(4).hex()}"
    config = {
        "dry_run": True, "partition": "nowhere", "time": "1:00:00", "cpus": 4, "memory": "8G", "gpus": 1,
        "sbatch": ["--constraint=skylake", "#SBATCH --exclusive"], "setup": ["module load cuda"],
        "job_name": name, "throttle": 5, "directory": str(tmp_path / "scripts"),
    }
    outcomes = get("retain.execution.slurm", config).dispatch(works)
    assert [o.status for o in outcomes] == ["dry_run"] * 3
    scripts = {o.job["script"] for o in outcomes}  # type: ignore[index]
    assert len(scripts) == 1
    script = Path(scripts.pop())
    assert script.parent.parent == tmp_path / "scripts"
    text = script.read_text()
    for line in ("#SBATCH --partition=nowhere", "#SBATCH --time=1:00:00", "#SBATCH --cpus-per-task=4",
                 "#SBATCH --mem=8G", "#SBATCH --gpus=1", "#SBATCH --constraint=skylake", "#SBATCH --exclusive",
                 "#SBATCH --array=0-2%5", f"#SBATCH --job-name={name}", "#SBATCH --requeue",
                 "#SBATCH --signal=B:USR1@120", "module load cuda", "-m retain.execution.slurm_task"):
        assert line in text, line
    spec = script.with_suffix(".json")
    assert spec.exists() and all(w.id in spec.read_text() for w in works)
    queue = subprocess.run(["squeue", "-h", "-n", name], capture_output=True, text=True, check=True)
    assert queue.stdout.strip() == ""  # nothing submitted
    report = retain.status(works)
    assert report.counts()["missing"] == 3 and report.jobs == {}
    assert all(w.execution.submissions() == [] for w in works)


def test_a_refused_submission_is_a_clear_error_after_bounded_retries(store: Storage, tmp_path: Path) -> None:
    work = get(Work, {"index": 1, "counter": str(tmp_path / "counter")})
    slurm = get("retain.execution.slurm", {"partition": "no-such-partition", "submit_retries": 2, "retry_delay": 0.1})
    started = time.monotonic()
    with pytest.raises(ExecutionError) as raised:
        slurm.dispatch([work])
    assert time.monotonic() - started < 20
    message = str(raised.value)
    assert "sbatch refused" in message and "3 time(s)" in message and "partition" in message.lower()
    assert not work.execution.is_started() and work.execution.submissions() == []


def test_a_job_cancelled_before_it_ran_shows_as_died(store: Storage, tmp_path: Path) -> None:
    work = get(Work, {"index": 5, "counter": str(tmp_path / "counter")})
    [outcome] = get("retain.execution.slurm", {"sbatch": ["--hold"]}).dispatch([work])
    job = outcome.job["id"]  # type: ignore[index]
    assert work.execution.state() == "queued" and work.execution.is_queued()
    found = work.execution.job()
    assert found is not None and found["state"] == "PENDING" and found["pending"] and found["reason"]
    assert f"job {job} PENDING" in repr(retain.status([work]))
    subprocess.run(["scancel", job], check=True, timeout=30)
    deadline = time.monotonic() + 30
    while work.execution.state() != "died":
        assert time.monotonic() < deadline, repr(work.execution)
        time.sleep(0.2)
    assert f"job {job} ended CANCELLED before it ran the component" in work.execution.error()["message"]  # type: ignore[index]
    # It can be submitted again (its job is over).
    [again] = get("retain.execution.slurm", {"time": "10:00"}).dispatch([work])
    assert again.status == "submitted" and again.job["id"] != job  # type: ignore[index]
    assert wait_until_done([work]).finished == [work]


def test_a_job_array_cancelled_before_its_tasks_started_shows_them_as_died(store: Storage, tmp_path: Path) -> None:
    """Slurm reports the pending tasks of a cancelled array as one range (``ArrayTaskId=0-1``
    in ``scontrol``, ``123_[0-1]`` in ``sacct``): each task is found in it."""
    works = [get(Work, {"index": i, "counter": str(tmp_path / "counter")}) for i in (7, 8)]
    outcomes = get("retain.execution.slurm", {"sbatch": ["--hold"]}).dispatch(works)
    jobs = [o.job["id"] for o in outcomes]  # type: ignore[index]
    base = jobs[0].split("_")[0]
    assert jobs == [f"{base}_0", f"{base}_1"]
    assert [state for _, state in retain.status(works)] == ["queued", "queued"]
    subprocess.run(["scancel", base], check=True, timeout=30)
    deadline = time.monotonic() + 30
    while [w.execution.state() for w in works] != ["died", "died"]:
        assert time.monotonic() < deadline, (repr(retain.status(works)), retain.status(works).jobs)
        time.sleep(0.2)
    for work, job in zip(works, jobs):
        assert f"job {job} ended CANCELLED before it ran the component" in work.execution.error()["message"]  # type: ignore[index]


def test_array_ranges_as_slurm_reports_them_cover_their_tasks() -> None:
    """The forms of the commands this cluster cannot show (sacct needs accounting): a range
    with a step, a list, a throttle."""
    from retain.execution.slurm import _reported

    wanted = {"89_0", "89_1", "89_3", "89_4", "89_7", "90_1", "91"}
    assert _reported("89_[0-1]", wanted) == ["89_0", "89_1"]
    assert _reported("89_[1,3-7:2%2]", wanted) == ["89_1", "89_3", "89_7"]  # not 89_4
    assert _reported("89_[4]", wanted) == ["89_4"] and _reported("89_4", wanted) == ["89_4"]
    assert _reported("91", wanted) == ["91"] and _reported("9", wanted) == []
    assert _reported("90_[0,2-9]", wanted) == [] and _reported("89_[x-y]", wanted) == []


def test_a_second_dispatch_leaves_a_component_its_job_runs_alone(store: Storage, tmp_path: Path) -> None:
    """While a job runs a component, dispatching it again submits nothing (a second job would
    only hold a CPU, waiting for the first one's run)."""
    counter, marker, release = tmp_path / "counter", tmp_path / "started", tmp_path / "release"
    work = get(Work, {"index": 9, "counter": str(counter), "sleep": 60.0, "marker": str(marker),
                      "release": str(release)})
    slurm = get("retain.execution.slurm", {"time": "10:00"})
    try:
        [first] = slurm.dispatch([work])
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline, "the job never started the component"
            time.sleep(0.1)
        assert work.execution.state() == "running"
        [again] = slurm.dispatch([work])
        assert again.status == "submitted" and again.job["already"], again.job  # type: ignore[index]
        assert again.job["id"] == first.job["id"]  # type: ignore[index]
        assert [s["job"] for s in work.execution.submissions()] == [first.job["id"]]  # type: ignore[index]
    finally:
        release.touch()
    assert wait_until_done([work]).finished == [work]
    assert len(lines(counter)) == 1


def test_a_requeued_job_resumes_its_component(store: Storage, tmp_path: Path) -> None:
    """The job requeues itself when Slurm signals it (as before its time limit); the next
    start of the job takes over the interrupted run and finishes the component."""
    counter, marker, release = tmp_path / "counter", tmp_path / "started", tmp_path / "release"
    work = get(Work, {"counter": str(counter), "sleep": 60.0, "marker": str(marker), "release": str(release)})
    [outcome] = get("retain.execution.slurm", {"time": "10:00"}).dispatch([work])
    job = outcome.job["id"]  # type: ignore[index]
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the job never started the component"
        time.sleep(0.1)
    assert work.execution.state() == "running"
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True, timeout=30)
    deadline = time.monotonic() + 30
    while True:  # Slurm holds a requeued job for a while before it may start again
        report = retain.status([work])
        found = report.jobs.get(work.id) or {}
        if report.state(work) == "queued" and found.get("pending"):
            break
        assert time.monotonic() < deadline, f"the job was not requeued: {report!r} {found}"
        time.sleep(0.2)
    assert work.execution.runs()[0]["end"] is None or work.execution.runs()[0]["end"]["status"] == "died"
    release.touch()  # the resumed run ends at once
    # slurmd refuses to start a job again within the second its credential was revoked (its
    # log: "Job credential revoked"); Slurm's own requeue delay avoids this, the test skips it.
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"jobid={job}", "starttime=now"], check=True, timeout=30)
    report = wait_until_done([work])
    assert report.finished == [work] and len(lines(counter)) == 2
    first, second = work.execution.runs()
    assert first["end"]["status"] == "died" and second["end"]["status"] == "finished"
    assert second["takeover"]["run"] == 1
    assert second["execution"]["job"]["id"] == job and second["execution"]["job"]["restart"] == "1"
    assert "requeueing job" in Path(outcome.job["log"]).read_text()  # type: ignore[index]


# -- the conformance suite of executions (retain.testing.execution) -------------------------------

from retain.testing.execution import ExecutionConformance  # noqa: E402


class TestSlurmExecutionConformance(ExecutionConformance):
    def settle(self, components: list[Component]) -> None:
        wait_until_done(components)

    @pytest.fixture
    def execution(self) -> Any:
        return get("retain.execution.slurm", {"time": "10:00"})
