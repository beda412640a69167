"""DaskExecution against a real Dask cluster: a scheduler and workers started as processes on
127.0.0.1 (``python -m distributed.cli.dask_scheduler`` / ``dask_worker``), and a LocalCluster.

Components come from tests/workers/component_worker.py, which the runs import (the launcher's
``sys.path`` travels with each task).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import retain
from retain import ExecutionError, LaunchError, Storage, get

from component_worker import Work


pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals")


@pytest.fixture(autouse=True)
def fast_leases() -> Any:
    with retain.settings(heartbeat=0.1, lease=0.6):
        yield


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    return int(text[text.rfind(")") + 2:].split()[1])


class Cluster:
    """A scheduler and worker processes on loopback."""

    def __init__(self, workers: int) -> None:
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
        self.env["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] = "5s"
        self.scheduler = self._start("dask_scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
                                     "--no-dashboard")
        self.workers = [self.start_worker() for _ in range(workers)]
        self.wait_for_workers(workers)

    def _start(self, program: str, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", f"distributed.cli.{program}", *args], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def start_worker(self) -> subprocess.Popen[bytes]:
        return self._start("dask_worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                           "--host", "127.0.0.1", "--death-timeout", "30")

    def wait_for_workers(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=60)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    started = Cluster(workers=2)
    try:
        yield started
    finally:
        from retain.execution.dask import close_clusters

        close_clusters()
        started.stop()


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_components_run_on_the_cluster_and_failures_are_listed(cluster: Cluster, store: Storage,
                                                                tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    ok = [get(Work, {"index": i, "counter": str(counter)}) for i in range(4)]
    failing = get(Work, {"index": 10, "counter": str(counter), "fail": "broken on purpose"})
    killed = get(Work, {"index": 11, "counter": str(counter), "kill": True})
    with pytest.raises(LaunchError) as raised:
        with get("retain.execution.dask", {"scheduler": cluster.address, "fresh_process": True}):
            for work in [ok[0], failing, ok[1], killed, ok[2], ok[3]]:
                work.launch()
    assert "2 of 6 component(s) failed" in str(raised.value) and "broken on purpose" in str(raised.value)
    by_id = {outcome.id: outcome for outcome in raised.value.failures}
    assert by_id[failing.id].error["type"] == "ValueError"
    assert by_id[killed.id].error["type"] == "ProcessDied" and "SIGKILL" in by_id[killed.id].error["message"]
    assert all(work.cached() for work in ok) and len(lines(counter)) == 6
    report = retain.status([*ok, failing, killed])
    assert report.finished == ok and report.failed == [failing] and report.died == [killed]
    workers = {proc.pid for proc in cluster.workers}
    pids = {work.execution.runs()[0]["pid"] for work in ok}
    assert len(pids) == 4 and not pids & (workers | {os.getpid()})  # a fresh process each
    for work in ok:
        assert work.load_file("result.json")["index"] == work.config.index
        output = work.execution.output()
        assert f"work {work.config.index} to stderr" in output and f"child process of work {work.config.index}" in output
        [run] = work.execution.runs()
        assert run["execution"]["class"] == "DaskExecution"
        assert run["execution"]["config"]["scheduler"] == cluster.address
    assert "ValueError: broken on purpose" in failing.execution.output()
    # Launching again runs nothing that finished, and resumes the failed one.
    with pytest.raises(LaunchError, match="1 of 1"):
        retain.launch([*ok, failing], execution=get("retain.execution.dask", {"scheduler": cluster.address}),
                      only="failed")
    assert len(failing.execution.runs()) == 2 and len(lines(counter)) == 7


@pytest.mark.parametrize("fresh_process", [True, False])
def test_a_worker_killed_mid_run_leaves_the_component_resumable(cluster: Cluster, store: Storage,
                                                                 tmp_path: Path, fresh_process: bool) -> None:
    counter, marker, release = tmp_path / "counter", tmp_path / "started", tmp_path / "release"
    work = get(Work, {"counter": str(counter), "sleep": 60.0, "marker": str(marker), "release": str(release)})
    execution = get("retain.execution.dask", {"scheduler": cluster.address, "fresh_process": fresh_process})
    errors: list[BaseException] = []

    def dispatch() -> None:
        try:
            execution.dispatch([work])
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=dispatch)
    thread.start()
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the component never started"
        time.sleep(0.01)
    [run] = work.execution.runs()
    # The run is a child of a helper (or the helper itself), which is a child of a worker.
    ancestors = {ppid(run["pid"]), ppid(ppid(run["pid"]))}
    [victim] = [proc for proc in cluster.workers if proc.pid in ancestors]
    victim.send_signal(signal.SIGKILL)  # the worker, mid-run: its helper kills the run with it
    victim.wait(10)
    release.touch()  # the resumed run ends at once
    thread.join(60)
    assert not thread.is_alive() and errors == []
    cluster.workers.remove(victim)
    cluster.workers.append(cluster.start_worker())  # for the tests after this one
    assert work.cached() and len(lines(counter)) == 2
    first, second = work.execution.runs()
    assert first["end"]["status"] == "died" and "is gone" in first["end"]["reason"]
    assert second["end"]["status"] == "finished" and second["takeover"]["run"] == 1
    assert second["pid"] != first["pid"]
    cluster.wait_for_workers(2)


def test_a_run_that_kills_its_helper_fails_alone(cluster: Cluster, store: Storage, tmp_path: Path) -> None:
    """With ``fresh_process: False`` a run that kills its process takes the helper with it;
    the next component gets a new helper."""
    counter = tmp_path / "counter"
    killed = get(Work, {"index": 11, "counter": str(counter), "kill": True})
    after = [get(Work, {"index": i, "counter": str(counter)}) for i in range(3)]
    execution = get("retain.execution.dask", {"scheduler": cluster.address, "fresh_process": False})
    with pytest.raises(LaunchError, match="1 of 4") as raised:
        execution.dispatch([killed, *after])
    [failure] = raised.value.failures
    assert failure.error["type"] == "ProcessDied" and "SIGKILL" in failure.error["message"]
    assert all(work.cached() for work in after) and killed.execution.state() == "died"
    pids = {work.execution.runs()[0]["pid"] for work in after}
    assert len(pids) <= 2  # the helpers (one per worker thread) ran them: no fresh process each


def test_an_unreachable_scheduler_is_a_clear_error_and_nothing_runs(store: Storage, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    work = get(Work, {"index": 1, "counter": str(tmp_path / "counter")})
    started = time.monotonic()
    with pytest.raises(ExecutionError) as raised:
        with get("retain.execution.dask", {"scheduler": address, "connect_timeout": 1}):
            work.launch()
    assert time.monotonic() - started < 15
    assert address in str(raised.value) and "dask scheduler" in str(raised.value)
    assert not work.execution.is_started() and not (tmp_path / "counter").exists()


def test_a_missing_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from retain.execution.dask import import_distributed

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'retain\[dask\]'"):
        import_distributed()


def test_a_local_cluster_when_no_scheduler_is_given(store: Storage, tmp_path: Path) -> None:
    from retain.execution.dask import close_clusters

    counter = tmp_path / "counter"
    works = [get(Work, {"index": i, "counter": str(counter)}) for i in range(3)]
    execution = get("retain.execution.dask", {"workers": 1})
    try:
        outcomes = execution.dispatch(works)
        assert [o.status for o in outcomes] == ["finished"] * 3 and all(w.cached() for w in works)
        assert execution.concurrency == 1
        pids = {int(line.split()[1]) for line in lines(counter)}
        assert len(pids) == 1 and os.getpid() not in pids  # the one worker thread's helper ran them
        assert execution.dispatch(works)[0].status == "cached"  # the same cluster, kept: nothing runs
    finally:
        close_clusters()


# -- the conformance suite of executions (retain.testing.execution) -------------------------------

from retain.testing.execution import ExecutionConformance  # noqa: E402


class TestDaskExecutionConformance(ExecutionConformance):
    @pytest.fixture
    def execution(self, cluster: Cluster) -> Any:
        return get("retain.execution.dask", {"scheduler": cluster.address})


class TestDaskExecutionFreshProcessConformance(ExecutionConformance):
    """``fresh_process: True``: each component in a fresh child of its worker thread's helper."""

    @pytest.fixture
    def execution(self, cluster: Cluster) -> Any:
        return get("retain.execution.dask", {"scheduler": cluster.address, "fresh_process": True})
