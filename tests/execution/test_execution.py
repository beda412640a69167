"""Executions with real processes: exactly-once claims across processes, takeover of dead
claims, the process pool, progress.

Launchers in other processes run ``python -m component_worker launch ...``
(tests/workers/component_worker.py); pool workers import the same module to reload its components.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import retain
from retain import Component, LaunchError, NotImportableError, Storage, get
from retain._timestamps import now_iso
from retain.execution._progress import Progress
from retain.storage.layout import OUTPUT_LOG, claim_file

from component_worker import EnvProbe, Work
from conftest import ROOT, WORKERS_DIR


pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals")


@pytest.fixture(autouse=True)
def fast_leases() -> Any:
    with retain.settings(heartbeat=0.1, lease=0.6):
        yield


def worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (WORKERS_DIR, env.get("PYTHONPATH")) if p)
    return env


def launcher(store: Storage, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "component_worker", "launch", "--storage", store.url, *args],
        cwd=WORKERS_DIR, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def finish(procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err.decode()


def wait_for(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# -- exactly once across processes ---------------------------------------------------------------------


def test_four_processes_launching_one_component_run_it_exactly_once(store: Storage, tmp_path: Path) -> None:
    counter, start, salt = tmp_path / "counter", tmp_path / "start", os.urandom(6).hex()
    outs = [tmp_path / f"out-{n}.json" for n in range(4)]
    procs = [
        launcher(store, "--counter", str(counter), "--sleep", "0.4", "--salt", salt, "--start", str(start),
                 "--out", str(out))
        for out in outs
    ]
    time.sleep(0.5)  # let the interpreters start, so that they launch together
    start.touch()
    finish(procs)
    results = [json.loads(out.read_text()) for out in outs]
    assert [r.get("state") for r in results] == ["finished"] * 4, results
    assert len(lines(counter)) == 1  # __call__ ran once, across four processes
    work = get(Work, {"counter": str(counter), "sleep": 0.4, "salt": salt})
    assert work.cached() and len(work.execution.runs()) == 1
    assert [e["event"] for e in work.execution.events()] == ["started", "finished"]
    assert sorted(p.name for p in Path(work.local_directory()).glob(".retain.claim-*")) == [claim_file(1)]


def test_a_killed_run_is_taken_over_and_finished(store: Storage, tmp_path: Path) -> None:
    counter, marker, release = tmp_path / "counter", tmp_path / "started", tmp_path / "release"
    salt = os.urandom(6).hex()
    args = ["--counter", str(counter), "--sleep", "30", "--salt", salt, "--marker", str(marker),
            "--release", str(release)]
    proc = launcher(store, *args)
    try:
        wait_for(marker)
        work = get(Work, {"counter": str(counter), "sleep": 30.0, "salt": salt, "marker": str(marker),
                          "release": str(release)})
        assert work.execution.is_active()
        refused = tmp_path / "refused.json"
        finish([launcher(store, *args, "--wait", "false", "--out", str(refused))])
        assert json.loads(refused.read_text())["error"] == "AlreadyRunningError"
        assert "running elsewhere" in json.loads(refused.read_text())["message"]
        proc.send_signal(signal.SIGKILL)  # mid-run: no chance to record anything
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert work.execution.state() == "died" and "is gone" in work.execution.error()["message"]  # type: ignore[index]
    release.touch()  # the next run of the same identity ends at once
    started = time.monotonic()
    finish([launcher(store, *args)])
    assert time.monotonic() - started < 20  # the process was gone: no need to wait for the lease
    assert work.cached() and work.execution.is_finished() and len(lines(counter)) == 2
    runs = work.execution.runs()
    assert len(runs) == 2 and runs[0]["end"]["status"] == "died" and runs[1]["end"]["status"] == "finished"
    assert runs[1]["takeover"]["run"] == 1 and runs[1]["takeover"]["pid"] == proc.pid
    assert runs[1]["resumes"] == {"run": 1, "status": "died"}
    assert "takeover" in [e["event"] for e in work.execution.events()]
    output = work.execution.output()
    assert "run 1 of Work" in output and "run 2 of Work" in output and "run 2 finished" in output


def test_a_stopped_run_loses_its_lease(store: Storage, tmp_path: Path) -> None:
    """A process that stops beating (here: SIGSTOP; alive, so only the lease tells) is taken
    over after its lease; when it wakes up it sees it and does not mark itself finished."""
    counter, marker, salt = tmp_path / "counter", tmp_path / "started", os.urandom(6).hex()
    proc = launcher(store, "--counter", str(counter), "--sleep", "1.0", "--salt", salt, "--marker", str(marker),
                    "--heartbeat", "0.1", "--lease", "0.6")
    try:
        wait_for(marker)
        proc.send_signal(signal.SIGSTOP)
        work = get(Work, {"counter": str(counter), "sleep": 1.0, "salt": salt, "marker": str(marker)})
        started = time.monotonic()
        work.launch()  # waits while the claim is alive, then takes it over
        waited = time.monotonic() - started
        assert 0.3 < waited, waited
        assert work.cached() and len(lines(counter)) == 2
        runs = work.execution.runs()
        assert runs[0]["end"]["status"] == "died" and "heartbeat" in runs[1]["takeover"]["reason"]
    finally:
        proc.send_signal(signal.SIGCONT)
    finish([proc])
    events = [e["event"] for e in work.execution.events()]
    assert "finished_superseded" in events and events.count("finished") == 1
    assert work.execution.runs()[0]["end"]["status"] == "died"  # the stopped run did not rewrite it


def test_only_one_of_several_takers_wins_a_dead_claim(store: Storage, tmp_path: Path) -> None:
    counter, start, salt = tmp_path / "counter", tmp_path / "start", os.urandom(6).hex()
    work = get(Work, {"counter": str(counter), "sleep": 0.3, "salt": salt}).commit()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from retain._host import host_facts

    files = RunFiles(work.storage, work.id)
    files.ensure()
    facts = host_facts()
    files.create(claim_file(1), {"run": 1, "started": now_iso(), "lease": 60.0, "heartbeat": 10.0,
                                 "host": facts["host"], "pidns": facts["pidns"], "pid": dead.pid})
    assert work.execution.state() == "died"
    outs = [tmp_path / f"out-{n}.json" for n in range(3)]
    procs = [launcher(store, "--counter", str(counter), "--sleep", "0.3", "--salt", salt, "--start", str(start),
                      "--out", str(out)) for out in outs]
    time.sleep(0.5)
    start.touch()
    finish(procs)
    assert [json.loads(out.read_text()).get("state") for out in outs] == ["finished"] * 3
    assert len(lines(counter)) == 1
    runs = work.execution.runs()
    assert [r["run"] for r in runs] == [1, 2] and runs[0]["end"]["status"] == "died"
    assert [e["event"] for e in work.execution.events()].count("takeover") == 1


# -- the process pool --------------------------------------------------------------------------------


def test_pool_runs_each_component_in_a_fresh_process(store: Storage, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    works = [get(Work, {"index": i, "counter": str(counter), "sleep": 0.05}) for i in range(5)]
    works.append(get(Work, {"index": 5, "counter": str(counter), "sleep": 0.05, "atexit": str(tmp_path / "exit")}))
    with get("retain.execution.pool", {"processes": 3, "fresh_process": True}) as pool:
        for work in works:
            work.launch()
        assert lines(counter) == [] and all(w.is_committed() for w in works)  # queued only
    assert all(w.cached() for w in works)
    pids = {int(line.split()[1]) for line in lines(counter)}
    assert len(lines(counter)) == 6 and len(pids) == 6 and os.getpid() not in pids  # fresh processes
    # Exit functions the run registered ran when its process ended (and only those).
    assert lines(tmp_path / "exit") == [f"atexit {works[5].execution.runs()[0]['pid']}"]
    for work in works:
        assert work.load_file("result.json")["index"] == work.config.index
        output = work.execution.output()
        assert f"work {work.config.index} in" in output and f"work {work.config.index} to stderr" in output
        assert f"child process of work {work.config.index}" in output
        [run] = work.execution.runs()
        assert run["execution"]["class"] == "PoolExecution" and run["execution"]["config"]["processes"] == 3
        assert run["launcher"]["pid"] == os.getpid() and run["pid"] != os.getpid()
    assert pool.concurrency == 3
    # Execution settings are not part of the identity.
    assert works[0].id == Work({"index": 0, "counter": str(counter), "sleep": 0.05}).id


def test_pool_without_fresh_processes_runs_components_one_after_the_other(store: Storage, tmp_path: Path) -> None:
    """`fresh_process: False`: each process runs its components in turn; what a component does
    to its process stays with the others that run there, and a component that ends its
    process fails alone (the next one gets a new process)."""
    counter = tmp_path / "counter"
    works = [get(Work, {"index": i, "counter": str(counter)}) for i in range(8)]
    failing = get(Work, {"index": 20, "counter": str(counter), "fail": "broken on purpose"})
    killed = get(Work, {"index": 21, "counter": str(counter), "kill": True})
    pool = get("retain.execution.pool", {"processes": 2, "fresh_process": False})
    with pytest.raises(LaunchError) as raised:
        pool.dispatch([*works[:4], failing, killed, *works[4:]])
    assert all(w.cached() for w in works)
    pids = {int(line.split()[1]) for line in lines(counter)}
    assert len(lines(counter)) == 10 and os.getpid() not in pids
    assert len(pids) <= 3  # two processes, and the one that replaced the killed one
    by_id = {o.id: o for o in raised.value.failures}
    assert set(by_id) == {failing.id, killed.id}
    assert by_id[failing.id].error["type"] == "ValueError"
    assert by_id[killed.id].error["type"] == "ProcessDied" and "SIGKILL" in by_id[killed.id].error["message"]
    for work in works:
        output = work.execution.output()
        assert f"work {work.config.index} in" in output and f"child process of work {work.config.index}" in output
        [run] = work.execution.runs()
        assert run["execution"]["config"]["fresh_process"] is False and run["pid"] == work.load_file("result.json")["pid"]
    assert retain.status(killed).died == [killed]
    # The processes stay for the next dispatch, unless the component's module changed since.
    again = [get(Work, {"index": i, "counter": str(counter)}) for i in range(30, 34)]
    pool.dispatch(again[:2])
    assert {w.load_file("result.json")["pid"] for w in again[:2]} <= pids
    import component_worker

    source = Path(component_worker.__file__)
    before = source.stat()
    try:
        os.utime(source, (before.st_atime, time.time() + 1))
        pool.dispatch(again[2:])
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not {w.load_file("result.json")["pid"] for w in again[2:]} & pids
    with pytest.raises(retain.ConfigError, match="'fresh_process' of PoolExecution expects bool"):
        get("retain.execution.pool", {"fresh_process": "no"})


def test_an_interrupted_pool_ends_the_runs_of_its_processes(store: Storage, tmp_path: Path) -> None:
    """Ctrl-C in the launcher (the dispatch left early): the default pool starts nothing more
    and ends the runs its processes hold; their claims are dead, so a launch resumes them."""
    from retain.execution.base import Job
    from retain.runs.dispatch import RunOptions

    pool = get("retain.execution.pool", {"processes": 2})
    quick = get(Work, {"index": 40}).commit()
    slow = get(Work, {"index": 41, "sleep": 60.0, "marker": str(tmp_path / "started")}).commit()
    later = [get(Work, {"index": 42 + i}).commit() for i in range(3)]
    options = RunOptions(wait=True, echo=False, execution=pool.describe())
    runs = pool.run([Job(c, options) for c in [slow, quick, *later]])
    t0 = time.monotonic()
    finished = [next(runs)[0].component]
    wait_for(tmp_path / "started", 30)
    runs.close()  # as a KeyboardInterrupt in the launcher's loop would
    assert time.monotonic() - t0 < 30 and finished[0].id != slow.id
    deadline = time.monotonic() + 30
    while retain.status(slow).counts()["died"] != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert retain.status(slow).died == [slow]


def test_a_prepared_worker_leaves_nothing_to_import_to_its_fresh_processes(store: Storage, tmp_path: Path) -> None:
    """A pool worker (or a Dask helper) imports before it forks what every run imports; a fresh
    child that imports (and, without bytecode caches, compiles) a module pays for it every run."""
    work = get(Work, {"index": 1, "counter": str(tmp_path / "counter")})
    work.commit()
    script = (
        "import sys, pickle\n"
        "from retain.execution import pool, base\n"
        "payload = pickle.loads(sys.stdin.buffer.read())\n"
        "pool.init_worker(['component_worker'])\n"
        "base.prepare_payload(payload)\n"
        "before = set(sys.modules)\n"
        "assert base.run_prepared(payload)['status'] == 'finished'\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('retain')))\n"
    )
    import pickle

    from retain.runs.dispatch import RunOptions
    from retain.execution.base import Job

    done = subprocess.run(
        [sys.executable, "-c", script], input=pickle.dumps(Job(work, RunOptions()).payload()),
        capture_output=True, timeout=60, cwd=WORKERS_DIR, env={**os.environ, "PYTHONPATH": WORKERS_DIR},
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines()[-1] == "[]"
    assert work.cached()


def test_a_fresh_child_runs_in_the_environment_of_its_own_payload(store: Storage, tmp_path: Path) -> None:
    """A child forked ahead of time skips preparing what its worker prepared before the fork,
    and only that: a payload with another environment or directory is prepared in the child."""
    from retain.execution._helper import Helper
    from retain.execution.base import Job
    from retain.runs.dispatch import RunOptions

    probes = [get(EnvProbe, {"name": "RETAIN_PROBE", "i": i}).commit() for i in range(4)]
    other = tmp_path / "elsewhere"
    other.mkdir()
    wanted = [("one", WORKERS_DIR), ("one", WORKERS_DIR), ("two", WORKERS_DIR), ("two", str(other))]
    helper = Helper(["component_worker"], fresh_process=True)
    try:
        for probe, (value, cwd) in zip(probes, wanted):
            payload = Job(probe, RunOptions()).payload()
            payload["environ"] = {**payload["environ"], "RETAIN_PROBE": value}
            payload["cwd"] = cwd
            assert helper.run(payload)["status"] == "finished"
    finally:
        helper.close()
    seen = [probe.load_file("env.json") for probe in probes]
    assert [(s["value"], os.path.realpath(s["cwd"])) for s in seen] == [(v, os.path.realpath(c)) for v, c in wanted]


def test_pool_failures_and_crashes_do_not_stop_the_others(store: Storage, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    ok = [get(Work, {"index": i, "counter": str(counter)}) for i in range(3)]
    failing = get(Work, {"index": 10, "counter": str(counter), "fail": "broken on purpose"})
    killed = get(Work, {"index": 11, "counter": str(counter), "kill": True})
    with pytest.raises(LaunchError) as raised:
        retain.launch([ok[0], failing, ok[1], killed, ok[2]], execution="retain.execution.pool")
    assert all(w.cached() for w in ok) and len(lines(counter)) == 5
    error = raised.value
    assert "2 of 5 component(s) failed" in str(error)
    by_id = {o.id: o for o in error.failures}
    assert by_id[failing.id].error["type"] == "ValueError" and "broken on purpose" in str(error)
    assert by_id[killed.id].error["type"] == "ProcessDied" and "SIGKILL" in by_id[killed.id].error["message"]
    report = retain.status([*ok, failing, killed])
    assert report.failed == [failing] and report.died == [killed] and report.finished == ok
    assert "Traceback" in failing.execution.failures()[0]["traceback"]
    assert "ValueError: broken on purpose" in failing.execution.output()


def test_a_run_killed_in_the_pool_died_with_its_output_and_runs_again(store: Storage, tmp_path: Path) -> None:
    from component_worker import Fragile

    doomed = get(Fragile, {"index": 1, "kill": "self", "once": str(tmp_path / "once")})
    with pytest.raises(LaunchError):
        retain.launch([doomed], execution="retain.execution.pool")
    assert retain.status(doomed).died == [doomed]
    assert "fragile 1 printed this" in Path(doomed.local_directory(OUTPUT_LOG)).read_text()
    retain.launch(Fragile, only=("failed", "died"), execution="retain.execution.pool")
    assert doomed.cached() and doomed.execution.output().count("fragile 1 printed this") == 2


def kill_worker_when_started(started: Path, release: Path | None = None, *, also: tuple[Path, ...] = ()) -> Any:
    """A thread that kills the pool worker whose run wrote `started` (from outside, as an
    operator or the kernel would), once the runs that write `also` have started too, then
    creates `release`."""
    import threading

    def kill() -> None:
        for path in (started, *also):
            wait_for(path, 60)
        os.kill(int(started.read_text()), signal.SIGKILL)
        if release is not None:
            time.sleep(0.3)  # the launcher sees its pool broken while the run still runs
            release.touch()

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_pool_worker_killed_from_outside_fails_no_component(store: Storage, tmp_path: Path) -> None:
    """A dead worker breaks the executor, which stops every worker; their runs outlive them and
    are waited for, and the components that had not started run in a new pool."""
    from component_worker import Fragile

    release = tmp_path / "release"
    running = [get(Fragile, {"index": i, "started": str(tmp_path / f"started{i}"), "release": str(release)})
               for i in range(2)]
    later = [get(Fragile, {"index": i}) for i in range(2, 5)]
    # Both runs in flight when the worker dies: the second is then the broken pool's, finished
    # in its worker; had it not started, the new pool would find it done ("cached").
    kill = kill_worker_when_started(tmp_path / "started0", release, also=(tmp_path / "started1",))
    outcomes = get("retain.execution.pool", {"processes": 2, "fresh_process": True}).dispatch([*running, *later])
    kill.join()
    assert [o.status for o in outcomes] == ["finished"] * 5
    report = retain.status([*running, *later])
    assert report.finished == [*running, *later], report
    for fragile in (*running, *later):
        assert f"fragile {fragile.config.index} printed this" in fragile.execution.output()
        assert len(fragile.execution.runs()) == 1


def test_a_run_that_dies_with_its_pool_worker_died_and_runs_again(store: Storage, tmp_path: Path) -> None:
    """As when the kernel kills a worker and its run for memory: the run is `died` with what it
    printed, the others run, and launching the failed and died ones again runs it."""
    from component_worker import Fragile

    doomed = get(Fragile, {"index": 0, "started": str(tmp_path / "started"), "kill": "both",
                           "once": str(tmp_path / "once")})
    others = [get(Fragile, {"index": i}) for i in range(1, 4)]
    with pytest.raises(LaunchError) as raised:
        get("retain.execution.pool", {"processes": 1, "fresh_process": True}).dispatch([doomed, *others])
    assert "1 of 4 component(s) failed" in str(raised.value), raised.value
    [failure] = raised.value.failures
    assert failure.id == doomed.id and failure.error["type"] == "ProcessDied", failure.error
    assert OUTPUT_LOG in failure.error["message"]
    report = retain.status([doomed, *others])
    assert report.died == [doomed] and report.finished == others, report
    assert "fragile 0 printed this" in Path(doomed.local_directory(OUTPUT_LOG)).read_text()
    retain.launch(Fragile, only=("failed", "died"), execution=get("retain.execution.pool", {"fresh_process": True}))
    assert doomed.cached() and len(doomed.execution.runs()) == 2
    assert all(len(o.execution.runs()) == 1 for o in others)


def test_a_pool_whose_workers_die_on_start_fails_its_components_once(
    store: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dies_on_import.py").write_text("import os\nos._exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    works = [get(Work, {"index": i}) for i in range(2)]
    execution = get("retain.execution.pool", {"processes": 1, "start_method": "spawn", "preload": ["dies_on_import"], "fresh_process": True})
    with pytest.raises(LaunchError) as raised:
        execution.dispatch(works)
    assert "2 of 2 component(s) failed" in str(raised.value)
    assert all("BrokenProcessPool" in o.error["type"] for o in raised.value.failures)
    assert retain.status(works).missing == works


def test_pool_hooks_run_in_the_launcher_and_in_the_fresh_process(store: Storage, tmp_path: Path) -> None:
    from component_worker import Hooked

    ok, bad = tmp_path / "ok", tmp_path / "bad"
    with pytest.raises(LaunchError, match="hooked failure"):
        with get("retain.execution.pool", {"processes": 2, "fresh_process": True}):
            get(Hooked, {"trace": str(ok)}).launch()
            get(Hooked, {"trace": str(bad), "fail": True}).launch()
    me = os.getpid()
    names = [line.split()[0] for line in lines(ok)]
    assert names == ["before", "call", "success", "finish", "after"]
    pids = [int(line.split()[1]) for line in lines(ok)]
    assert pids[0] == pids[4] == me and pids[1] == pids[2] == pids[3] != me
    assert [line.split()[0] for line in lines(bad)] == ["before", "call", "failure", "finish", "after"]
    assert lines(bad)[2].endswith("RuntimeError") and lines(bad)[4] == f"after {me} failed"


def test_pool_refuses_classes_it_cannot_import(store: Storage) -> None:
    class Local(Component):
        def __call__(self) -> None:
            pass

    local = Local().commit()
    with pytest.raises(NotImportableError, match="inside a function") as raised:
        with get("retain.execution.pool", {"processes": 2}):
            local.launch()
            get(Work, {"index": 99}).launch()
    assert "Move the class into a module" in str(raised.value)
    assert not Path(local.local_directory(), claim_file(1)).exists()  # nothing ran
    assert not get(Work, {"index": 99}).execution.is_started()


@pytest.mark.parametrize("fresh", [True, False])
def test_unguarded_script_gets_a_clear_error(tmp_path: Path, store: Storage, fresh: bool) -> None:
    """Fresh processes come from `multiprocessing`, which imports the main script again: it
    must launch under `if __name__ == '__main__':`. The processes the pool keeps otherwise
    import only the components' modules."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from retain import get, storage\n"
        "from component_worker import Work\n"
        f"with storage({store.url!r}), get('retain.execution.pool', {{'processes': 1, 'fresh_process': {fresh}}}):\n"
        "    get(Work, {'index': 5}).launch()\n"
    )
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=worker_env(),
                          capture_output=True, text=True, timeout=60)
    if fresh:
        assert done.returncode != 0
        assert "if __name__ == '__main__':" in done.stderr and "LaunchError" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert get(Work, {"index": 5}).cached()


# -- progress --------------------------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_only() -> None:
    terminal = FakeTerminal()
    progress = Progress(4, 2, terminal)
    progress.update(failed=False)
    progress.update(failed=True)
    progress.close()
    text = terminal.getvalue()
    assert text.startswith("\r") and text.endswith("\n")
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("retain: [############------------] 1/4 done, 1 failed, 2 running, ")
    quiet = io.StringIO()
    Progress(4, 2, quiet).close()
    assert quiet.getvalue() == ""
    single = FakeTerminal()
    Progress(1, 1, single).close()  # one component: no progress line
    assert single.getvalue() == ""


def test_no_progress_noise_when_stderr_is_not_a_terminal(store: Storage, tmp_path: Path,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    works = [get(Work, {"index": i, "counter": str(tmp_path / "c")}) for i in range(3)]
    retain.launch(works, execution="retain.execution.pool")
    assert all(w.cached() for w in works)
    captured = capfd.readouterr()
    assert "retain: [" not in captured.err and "work 0" not in captured.out  # not echoed by the pool
    assert "work 0 in" in Path(works[0].local_directory(OUTPUT_LOG)).read_text()  # logged instead


def test_components_example_runs_twice(tmp_path: Path) -> None:
    example = Path(ROOT) / "examples" / "estimate_pi.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    first, second = (
        subprocess.run([sys.executable, str(example)], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120, check=True)
        for _ in range(2)
    )
    assert "points inside" in first.stdout and "cached: True" in first.stdout
    assert "points inside" not in second.stdout  # everything was finished: nothing ran again
    assert "4 finished" in second.stdout and first.stdout.count("samples=") == 3


# -- the conformance suite of executions (retain.testing.execution) -------------------------------

from retain.testing.execution import ExecutionConformance  # noqa: E402
from retain.runs.files import RunFiles


class TestLocalExecutionConformance(ExecutionConformance):
    @pytest.fixture
    def execution(self) -> Any:
        return get("retain.execution.local", {"echo": False})


class TestPoolExecutionConformance(ExecutionConformance):
    @pytest.fixture
    def execution(self) -> Any:
        return get("retain.execution.pool", {"processes": 2})
