"""Components in process: launch once, cache, resume, records on disk, seed, hooks, status."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import retain
from retain import (
    AlreadyRunningError,
    Component,
    ComponentDefinitionError,
    ConfigError,
    Execution,
    LaunchError,
    RecordError,
    Storage,
    get,
)
from retain._words import nickname
from retain.execution.local import LocalExecution
from retain.execution.pool import PoolExecution
from retain.storage.layout import FINISHED_FILE, OUTPUT_LOG, claim_file, end_file, heartbeat_file
from retain.runs.files import RunFiles

CALLS: list[tuple[str, Any]] = []


class EstimatePi(Component):
    Config = {"samples": 100}

    def __call__(self) -> None:
        CALLS.append(("call", self.config.samples))
        rng = random.Random(self.seed)
        inside = sum(rng.random() ** 2 + rng.random() ** 2 < 1 for _ in range(self.config.samples))
        self.save_file("result.json", {"pi": 4 * inside / self.config.samples})

    def summary(self) -> float:
        return float(self.load_file("result.json")["pi"])


class PreciserPi(EstimatePi):
    """A subclass: `retain.status(EstimatePi)` includes it."""


class Flaky(Component):
    """Fails while the file named by `gate` does not exist."""

    Config = {"gate": "", "name": "flaky"}

    def __call__(self) -> None:
        CALLS.append(("flaky", self.config.name))
        print(f"flaky {self.config.name} runs")
        if not os.path.exists(self.config.gate):
            raise ValueError(f"gate {self.config.gate} is closed")
        self.save_file("done.txt", "ok")


class Hooked(Component):
    Config = {"fail": False, "fail_finish": False}

    def on_before_dispatch(self) -> None:
        CALLS.append(("before", os.getpid()))

    def __call__(self) -> None:
        CALLS.append(("call", None))
        if self.config.fail:
            raise RuntimeError("boom")

    def on_success(self) -> None:
        CALLS.append(("success", None))

    def on_failure(self, exception: BaseException) -> None:
        CALLS.append(("failure", type(exception).__name__))

    def on_finish(self) -> None:
        CALLS.append(("finish", None))
        if self.config.fail_finish:
            raise OSError("finish failed")

    def on_after_dispatch(self) -> None:
        CALLS.append(("after", self.execution.state()))


class Printer(Component):
    Config = {"text": "hello"}

    def __call__(self) -> None:
        print(f"out: {self.config.text}")
        print(f"err: {self.config.text}", file=sys.stderr)
        os.write(1, b"fd1: raw\n")
        os.system("echo child: from a subprocess; echo child-err: too >&2")
        # Written as it happens: the line is in the log while the run is still going.
        log = self.local_directory(OUTPUT_LOG)
        deadline = time.monotonic() + 5
        while f"out: {self.config.text}" not in Path(log).read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.save_file("seen.json", {"live": f"out: {self.config.text}" in Path(log).read_text()})


class Seeded(Component):
    Config = {"seed": None, "x": 0}

    def __call__(self) -> None:
        import numpy as np

        self.save_file("draws.json", {"random": random.random(), "numpy": float(np.random.random())})


class NoCall(Component):
    Config = {"a": 1}


class Blocking(Component):
    Config = {"k": 0, "fail": False}
    release = threading.Event()
    entered = threading.Event()

    def __call__(self) -> None:
        CALLS.append(("blocking", self.config.k))
        type(self).entered.set()
        assert type(self).release.wait(10)
        if self.config.fail:
            raise ValueError("blocked run failed")


class Recursive(Component):
    def __call__(self) -> None:
        get(Recursive).launch()


class Interrupted(Component):
    def __call__(self) -> None:
        raise KeyboardInterrupt


@pytest.fixture(autouse=True)
def fast_leases() -> Any:
    CALLS.clear()
    with retain.settings(heartbeat=0.05, lease=0.5):
        yield


def runtime(component: Component) -> Path:
    return Path(component.local_directory())


# -- launch once, cache ------------------------------------------------------------------------


def test_launch_runs_once_then_is_cached(store: Storage) -> None:
    exp = get(EstimatePi, {"samples": 150})
    assert not exp.cached() and exp.execution.state() == "missing" and not exp.execution.is_started()
    assert exp.launch() is exp
    assert CALLS == [("call", 150)]
    assert exp.is_committed() and exp.cached()
    assert exp.execution.is_finished() and not exp.execution.is_active() and not exp.execution.is_failed()
    exp.launch()
    get(EstimatePi, {"samples": 150}).launch()
    assert CALLS == [("call", 150)]  # cached: never again, also for a new instance
    again = get(EstimatePi, {"samples": 150})
    assert again.cached() and again.summary() == exp.summary()
    assert [e["event"] for e in exp.execution.events()] == ["started", "finished"]
    names = sorted(p.name for p in runtime(exp).iterdir() if "heartbeat" not in p.name)
    assert names == sorted([".retain.claim-000001.json", ".retain.end-000001.json",
                            FINISHED_FILE, "interface.json", "result.json"])
    assert exp.execution.output() == ""  # it printed nothing: no output.log
    assert os.path.samefile(runtime(exp) / FINISHED_FILE, runtime(exp) / end_file(1))


def test_invalid_config_fails_before_anything_is_written(store: Storage) -> None:
    with pytest.raises(ConfigError, match="sampels"):
        EstimatePi({"sampels": 3}).launch()
    assert not Path(store.url).exists() or list(Path(store.url).iterdir()) == []
    assert CALLS == []


def test_missing_call_is_a_clear_error_and_writes_nothing(store: Storage) -> None:
    with pytest.raises(ComponentDefinitionError, match="does not define __call__"):
        NoCall().launch()
    assert not NoCall().is_committed()
    with pytest.raises(ComponentDefinitionError):
        NoCall()()


def test_records_of_a_run(store: Storage) -> None:
    exp = get(EstimatePi, {"samples": 7}).launch()
    claim = json.loads((runtime(exp) / claim_file(1)).read_text())
    end = json.loads((runtime(exp) / end_file(1)).read_text())
    assert claim["run"] == 1 and claim["pid"] == os.getpid() and claim["component"] == exp.id
    assert claim["host"] and claim["python"] and claim["retain"] == retain.__version__
    assert claim["argv"] == sys.argv and claim["cwd"] == os.getcwd()
    assert claim["started"].endswith("Z") and end["time"].endswith("Z")
    assert claim["execution"]["class"] == "LocalExecution" and claim["lease"] == 0.5
    assert "pytest" in claim["packages"]
    assert end["status"] == "finished" and end["seconds"] >= 0
    [run] = exp.execution.runs()
    assert run["end"]["status"] == "finished" and run["takeover"] is None and run["resumes"] is None
    # Execution settings are recorded but are not part of the identity.
    assert exp.id == EstimatePi({"samples": 7}).id


# -- failures, resume ------------------------------------------------------------------------------


def test_failure_is_recorded_raised_and_resumed(store: Storage, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    flaky = get(Flaky, {"gate": str(gate)})
    with pytest.raises(ValueError, match="is closed") as raised:
        flaky.launch()
    assert raised.value.__traceback__ is not None and "Flaky" not in type(raised.value).__name__
    assert flaky.is_committed() and not flaky.cached()
    assert flaky.execution.is_failed() and flaky.execution.state() == "failed"
    [failure] = flaky.execution.failures()
    assert failure["type"] == "ValueError" and "is closed" in failure["message"]
    assert "Traceback" in failure["traceback"] and "raise ValueError" in failure["traceback"]
    assert failure["time"].endswith("Z") and failure["run"] == 1 and failure["pid"] == os.getpid()
    assert flaky.execution.error()["type"] == "ValueError"  # type: ignore[index]
    directory = flaky.local_directory()

    gate.touch()
    flaky.launch()  # resume: same identity, same directory, run 2
    assert flaky.local_directory() == directory and flaky.cached()
    assert flaky.load_file("done.txt") == "ok"
    assert CALLS == [("flaky", "flaky"), ("flaky", "flaky")]
    assert len(flaky.execution.failures()) == 1  # the failure stays on record
    runs = flaky.execution.runs()
    assert [r["end"]["status"] for r in runs] == ["failed", "finished"]
    assert runs[1]["resumes"] == {"run": 1, "status": "failed"}
    assert "resumed" in [e["event"] for e in flaky.execution.events()]
    assert flaky.execution.error() is None
    output = flaky.execution.output()
    assert "run 1 of Flaky" in output and "ValueError: gate" in output and "run 2 finished" in output
    assert output.count("flaky flaky runs") == 2


def test_keyboard_interrupt_is_recorded_and_propagates(store: Storage) -> None:
    with pytest.raises(KeyboardInterrupt):
        get(Interrupted).launch()
    status = get(Interrupted).execution
    assert status.is_failed() and status.failures()[0]["type"] == "KeyboardInterrupt"


# -- output ------------------------------------------------------------------------------------------


def test_output_log_has_everything_printed_as_it_happens(store: Storage, capfd: pytest.CaptureFixture[str]) -> None:
    printer = get(Printer, {"text": "x1"}).launch()
    log = printer.execution.output()
    for line in ("out: x1", "err: x1", "fd1: raw", "child: from a subprocess", "child-err: too"):
        assert line in log
    assert printer.load_file("seen.json") == {"live": True}
    assert log == Path(printer.local_directory(OUTPUT_LOG)).read_text()
    seen = capfd.readouterr()  # echoed to the launcher's streams too (in process)
    assert "out: x1" in seen.out and "child: from a subprocess" in seen.out and "err: x1" in seen.err


def test_output_only_to_the_log_without_echo(store: Storage, capfd: pytest.CaptureFixture[str]) -> None:
    with LocalExecution({"echo": False}):
        printer = get(Printer, {"text": "quiet"}).launch()
    assert "out: quiet" in printer.execution.output()
    seen = capfd.readouterr()
    assert "quiet" not in seen.out and "quiet" not in seen.err


class Outer(Component):
    """Launches a `Printer` inside its own run."""

    Config = {"text": "nested"}

    def __call__(self) -> None:
        print("outer: before")
        get(Printer, {"text": self.config.text}).launch()
        print("outer: after")


class Background(Component):
    """Leaves a child process that prints after the run has ended."""

    Config = {"text": "late"}
    children: list[Any] = []

    def __call__(self) -> None:
        import subprocess

        self.children.append(subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(0.3); print({self.config.text!r})"]))


def test_runs_one_after_another_share_one_copier_and_keep_their_own_output(
    store: Storage, capfd: pytest.CaptureFixture[str]
) -> None:
    from retain.runs import capture

    printers = [get(Printer, {"text": "run0"}).launch()]
    [copier] = capture._copier
    printers += [get(Printer, {"text": f"run{i}"}).launch() for i in (1, 2)]
    assert capture._copier == [copier] and copier.thread.is_alive()  # not one thread per run
    for i, printer in enumerate(printers):
        log = printer.execution.output()
        assert f"out: run{i}" in log and f"err: run{i}" in log and "fd1: raw" in log
        assert log.count("child: from a subprocess") == 1
        assert all(f"run{j}" not in log for j in range(3) if j != i)
        assert log.endswith("finished after " + log.rsplit("finished after ", 1)[1])  # the trailer is last
    seen = capfd.readouterr()
    assert all(f"out: run{i}" in seen.out for i in range(3))


def test_a_nested_run_prints_to_its_log_and_the_outer_one(store: Storage, capfd: pytest.CaptureFixture[str]) -> None:
    outer = get(Outer).launch()
    inner = get(Printer, {"text": "nested"})
    assert inner.cached()
    inner_log, outer_log = inner.execution.output(), outer.execution.output()
    assert "out: nested" in inner_log and "outer: " not in inner_log
    for line in ("outer: before", "out: nested", "err: nested", "fd1: raw", "child: from a subprocess", "outer: after"):
        assert line in outer_log
    assert outer_log.index("outer: before") < outer_log.index("out: nested") < outer_log.index("outer: after")
    seen = capfd.readouterr()
    assert "out: nested" in seen.out and seen.out.count("out: nested") == 1


def test_a_background_child_keeps_printing_to_its_run_log(store: Storage, capfd: pytest.CaptureFixture[str]) -> None:
    Background.children.clear()
    component = get(Background).launch()
    assert component.cached()  # the run did not wait for its child
    Background.children[0].wait(30)
    deadline = time.monotonic() + 10
    while "late" not in component.execution.output() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "late" in component.execution.output()
    assert "late" in capfd.readouterr().out


# -- seed and nickname ----------------------------------------------------------------------------


def test_seed_is_derived_from_identity_and_applied(store: Storage) -> None:
    import numpy as np

    first, second = get(Seeded, {"x": 1}), get(Seeded, {"x": 2})
    assert first.seed == int(first.id[:8], 16) == get(Seeded, {"x": 1}).seed
    assert first.seed != second.seed
    first.launch()
    expected_random = random.Random(first.seed).random()
    np.random.seed(first.seed % 2**32)
    assert first.load_file("draws.json") == {"random": expected_random, "numpy": float(np.random.random())}
    assert get(Seeded, {"seed": 42}).seed == 42
    get(Seeded, {"seed": 42}).launch()
    assert get(Seeded, {"seed": 42}).load_file("draws.json")["random"] == random.Random(42).random()


def test_nickname_is_deterministic_and_pinned() -> None:
    # Pinned: a change to the word lists or the derivation renames every stored component.
    assert nickname("0" * 32) == "able-acorn"
    assert nickname("d7ce3b" + "0" * 26) == "jovial-acorn"
    assert nickname("f" * 16 + "0" * 16) == "wary-bear"
    assert nickname("0123456789abcdef" * 2) == "giant-creek"
    exp = EstimatePi({"samples": 3})
    assert exp.nickname == nickname(exp.id) and "-" in exp.nickname


# -- hooks ---------------------------------------------------------------------------------------------


def test_hooks_in_order_on_success_and_failure(store: Storage) -> None:
    get(Hooked).launch()
    assert [name for name, _ in CALLS] == ["before", "call", "success", "finish", "after"]
    assert CALLS[-1] == ("after", "finished")
    CALLS.clear()
    with pytest.raises(RuntimeError, match="boom"):
        get(Hooked, {"fail": True}).launch()
    assert CALLS == [("before", os.getpid()), ("call", None), ("failure", "RuntimeError"),
                     ("finish", None), ("after", "failed")]
    CALLS.clear()
    get(Hooked).launch()  # cached: no hook runs
    assert CALLS == []


def test_an_exception_in_on_finish_fails_the_run(store: Storage) -> None:
    hooked = get(Hooked, {"fail_finish": True})
    with pytest.raises(OSError, match="finish failed"):
        hooked.launch()
    assert hooked.execution.is_failed() and not hooked.cached()


# -- executions: queueing ----------------------------------------------------------------------------


def test_with_block_queues_and_dispatches_on_clean_exit(store: Storage) -> None:
    with LocalExecution() as execution:
        a = get(EstimatePi, {"samples": 11}).launch()
        b = get(EstimatePi, {"samples": 12}).launch()
        get(EstimatePi, {"samples": 11}).launch()  # the same identity once
        assert CALLS == [] and a.is_committed() and not a.cached()
    assert isinstance(execution, Execution)
    assert CALLS == [("call", 11), ("call", 12)] and a.cached() and b.cached()


def test_with_block_that_raises_dispatches_nothing(store: Storage) -> None:
    with pytest.raises(KeyError):
        with LocalExecution():
            queued = get(EstimatePi, {"samples": 13}).launch()
            raise KeyError("stop")
    assert CALLS == [] and queued.is_committed() and not queued.cached()
    queued.launch()  # outside the block: runs now
    assert CALLS == [("call", 13)]


def test_batch_failures_do_not_stop_the_others(store: Storage, tmp_path: Path) -> None:
    with pytest.raises(LaunchError) as raised:
        with LocalExecution():
            get(Flaky, {"gate": str(tmp_path / "no"), "name": "f1"}).launch()
            get(EstimatePi, {"samples": 14}).launch()
            get(Flaky, {"gate": str(tmp_path / "no"), "name": "f2"}).launch()
    assert [c for c in CALLS if c[0] == "call"] == [("call", 14)]
    error = raised.value
    assert len(error.failures) == 2 and "2 of 3 component(s) failed" in str(error)
    assert all(o.error["type"] == "ValueError" for o in error.failures)
    assert "Flaky" in str(error) and OUTPUT_LOG in str(error)


def test_executions_by_module_name(store: Storage) -> None:
    pool = get("retain.execution.pool", {"processes": 3})
    assert isinstance(pool, PoolExecution) and pool.concurrency == 3
    assert isinstance(get("retain.execution.local"), LocalExecution)
    with pytest.raises(ConfigError, match="processess"):
        get("retain.execution.pool", {"processess": 3})


# -- exactly once inside one process -------------------------------------------------------------------


def test_wait_false_fails_clearly_while_another_thread_runs_it(store: Storage) -> None:
    Blocking.release.clear()
    Blocking.entered.clear()
    runner = threading.Thread(target=lambda: get(Blocking).launch())
    runner.start()
    try:
        assert Blocking.entered.wait(10)
        blocking = get(Blocking)
        assert blocking.execution.is_active() and blocking.execution.state() == "running"
        with pytest.raises(AlreadyRunningError, match="running elsewhere"):
            blocking.launch(wait=False)
        started = time.monotonic()
        with pytest.raises(AlreadyRunningError):
            blocking.launch(wait=0.3)
        assert 0.25 <= time.monotonic() - started < 3
        time.sleep(0.2)  # several heartbeats: the claim stays alive
        assert blocking.execution.is_active()
        waiter = threading.Thread(target=blocking.launch)  # waits for the runner
        waiter.start()
        time.sleep(0.1)
        assert waiter.is_alive()
    finally:
        Blocking.release.set()
        runner.join(10)
    waiter.join(10)
    assert not waiter.is_alive() and get(Blocking).cached()
    assert len(get(Blocking).execution.runs()) == 1


def test_a_waiter_reports_the_failure_it_waited_for_without_running_again(store: Storage) -> None:
    Blocking.release.clear()
    Blocking.entered.clear()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            get(Blocking, {"fail": True}).launch()
        except ValueError as exc:
            errors.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    assert Blocking.entered.wait(10)
    threading.Timer(0.2, Blocking.release.set).start()
    with pytest.raises(LaunchError, match="blocked run failed.*which this launch waited for") as raised:
        get(Blocking, {"fail": True}).launch()
    runner.join(10)
    assert CALLS == [("blocking", 0)] and len(errors) == 1  # it ran once, in the runner
    assert raised.value.failures[0].error["type"] == "ValueError"
    assert "Traceback" in raised.value.failures[0].error["traceback"]
    Blocking.release.set()
    with pytest.raises(ValueError):  # a later launch resumes (and here fails again)
        get(Blocking, {"fail": True}).launch()
    assert CALLS == [("blocking", 0), ("blocking", 0)]


def test_launching_itself_from_its_own_run_is_an_error(store: Storage) -> None:
    with pytest.raises(AlreadyRunningError, match="inside its own run"):
        get(Recursive).launch()


class BlocksItsHeartbeat(Component):
    """Puts a directory where its heartbeat file goes, so the heartbeats fail for a while."""

    def __call__(self) -> None:
        beat = Path(self.local_directory()) / heartbeat_file(1)
        beat.unlink(missing_ok=True)
        (beat / "in-the-way").mkdir(parents=True)
        time.sleep(0.3)  # six heartbeats at 0.05 s
        shutil.rmtree(beat)


def test_a_failed_heartbeat_is_logged_and_the_run_goes_on(store: Storage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="retain")
    component = get(BlocksItsHeartbeat).launch()
    assert component.execution.is_finished()
    failures = [r for r in caplog.records if r.name == "retain.runs"]
    assert failures and all("heartbeat of run 1" in r.getMessage() and r.exc_info for r in failures)


class Sleeper(Component):
    Config = {"seconds": 0.0, "name": ""}

    def __call__(self) -> None:
        time.sleep(self.config.seconds)


def test_runs_after_the_heartbeat_thread_went_idle_are_beaten_on_time(store: Storage) -> None:
    # The heartbeat thread is not woken when a claim is due after it wakes up anyway: a run
    # that starts while it idles (after a run with a longer heartbeat, too) still gets beats.
    with retain.settings(heartbeat=1, lease=3):
        get(Sleeper, {"name": "slow beats"}).launch()
    for name in ("after a slower one", "after a fast one"):
        component = get(Sleeper, {"seconds": 0.4, "name": name}).launch()
        beat = RunFiles(component.storage, component.id).heartbeat(1)
        assert beat is not None and beat["beats"] >= 3


def test_a_run_in_a_child_forked_after_a_run_here_is_beaten(store: Storage) -> None:
    get(Sleeper, {"name": "here first"}).launch()  # this process's heartbeat thread runs
    child = get(Sleeper, {"seconds": 0.4, "name": "in a forked child"})
    pid = os.fork()
    if pid == 0:  # the thread is not copied by the fork: the child must start its own
        try:
            child.launch()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    beat = RunFiles(child.storage, child.id).heartbeat(1)
    assert child.cached() and beat is not None and beat["beats"] >= 3


def test_runs_in_fresh_processes_of_the_pool_are_beaten(store: Storage) -> None:
    components = [get(Sleeper, {"seconds": 0.4, "name": f"pool {i}"}) for i in range(2)]
    with PoolExecution({"processes": 2}):
        for component in components:
            component.launch()
    for component in components:
        runs = component.execution.runs()
        beat = RunFiles(component.storage, component.id).heartbeat(1)
        assert component.cached() and runs[0]["pid"] != os.getpid()
        assert beat is not None and beat["beats"] >= 3


def test_heartbeat_and_lease_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="twice the heartbeat"):
        with retain.settings(heartbeat=1, lease=1.5):
            EstimatePi().launch()
    with pytest.raises(ConfigError, match="positive"):
        retain.settings(lease=-1)


# -- status --------------------------------------------------------------------------------------------


def fake_claim(component: Component, run: int, **fields: Any) -> None:
    """A claim as another launcher would leave it (to make `running` and `died` states)."""
    from retain._timestamps import now_iso

    files = RunFiles(component.storage, component.id)
    files.ensure()
    claim = {"run": run, "started": now_iso(), "lease": 30.0, "heartbeat": 1.0, "host": "elsewhere",
             "pid": 1, "pidns": None, "component": component.id}
    claim.update(fields)
    assert files.create(claim_file(run), claim)


def test_status_of_a_list_and_of_a_class(store: Storage, tmp_path: Path) -> None:
    done = get(EstimatePi, {"samples": 21}).launch()
    with pytest.raises(ValueError):
        get(Flaky, {"gate": str(tmp_path / "no")}).launch()
    failed = get(Flaky, {"gate": str(tmp_path / "no")})
    missing = get(EstimatePi, {"samples": 22})
    committed = get(EstimatePi, {"samples": 23}).commit()
    running = get(EstimatePi, {"samples": 24}).commit()
    fake_claim(running, 1)
    died = get(EstimatePi, {"samples": 25}).commit()
    fake_claim(died, 1, started="2020-01-01T00:00:00.000000Z")  # heartbeat far older than its lease

    report = retain.status([done, failed, missing, committed, running, died])
    assert report.finished == [done] and report.failed == [failed] and report.running == [running]
    assert report.missing == [missing, committed] and report.died == [died]
    assert report.counts() == {"missing": 2, "queued": 0, "running": 1, "failed": 1, "died": 1, "finished": 1}
    assert report.errors[failed.id]["type"] == "ValueError" and "Traceback" in report.errors[failed.id]["traceback"]
    assert "no heartbeat" in report.errors[died.id]["message"]
    text = repr(report)
    assert text.startswith("StatusReport of 6 component(s): 2 missing, 1 running, 1 failed, 1 died, 1 finished")
    assert f"failed   {failed!r} {failed.nickname}  ValueError: gate" in text
    assert died.execution.is_died() and died.execution.state() == "died"

    by_class = retain.status(EstimatePi)  # every committed EstimatePi in storage
    assert {c.id for c in by_class.components} == {done.id, committed.id, running.id, died.id}
    assert all(isinstance(c, EstimatePi) for c in by_class.components)
    assert retain.status(EstimatePi).counts()["finished"] == 1
    with pytest.raises(KeyError, match="states are"):
        report["broken"]


def test_status_of_a_class_asks_the_index_and_reads_only_its_records(store: Storage, tmp_path: Path) -> None:
    first = get(EstimatePi, {"samples": 41}).commit()
    sub = get(PreciserPi, {"samples": 42}).commit()
    last = get(EstimatePi, {"samples": 43}).commit()
    other = get(Flaky, {"gate": str(tmp_path / "gate")}).commit()
    assert len(get.all(Flaky)) == 1  # indexed
    # Damage the record of another class: a status of EstimatePi has no reason to read it.
    (Path(other.local_directory()) / "interface.json").write_text("damaged")
    report = retain.status(EstimatePi)
    assert [c.id for c in report.components] == [first.id, sub.id, last.id]  # oldest first
    assert type(report.components[1]) is PreciserPi
    assert report.counts()["missing"] == 3
    assert [c.id for c in retain.status(PreciserPi).components] == [sub.id]


def test_status_and_launch_of_a_class_load_only_the_components_not_finished(store: Storage) -> None:
    """A sweep's status by class checks the finished in bulk and reads no record of theirs:
    their records are damaged here, and neither the status nor a launch of the others fails."""
    finished = [get(EstimatePi, {"samples": 50 + i}).launch() for i in range(3)]
    waiting = get(PreciserPi, {"samples": 60}).commit()
    for component in finished:
        (Path(component.local_directory()) / "interface.json").write_text("damaged")
    report = retain.status(EstimatePi)
    assert report.counts()["finished"] == 3 and len(report) == 4
    assert report.missing == [waiting] and type(report.missing[0]) is PreciserPi
    assert report.state(waiting) == "missing"
    assert repr(report).startswith("StatusReport of 4 component(s): 1 missing, 0 running")
    with pytest.raises(RecordError):
        report.finished  # loaded only when asked for
    CALLS.clear()
    assert retain.launch(EstimatePi, only="missing") == [waiting]
    assert CALLS == [("call", 60)] and waiting.cached()


def test_launch_only_missing_and_failed(store: Storage, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    done = get(EstimatePi, {"samples": 31}).launch()
    with pytest.raises(ValueError):
        get(Flaky, {"gate": str(gate)}).launch()
    flaky = get(Flaky, {"gate": str(gate)})
    missing = get(EstimatePi, {"samples": 32})
    died = get(EstimatePi, {"samples": 33}).commit()
    fake_claim(died, 1, started="2020-01-01T00:00:00.000000Z")
    CALLS.clear()
    gate.touch()
    launched = retain.launch([done, flaky, missing, died], only=("missing", "failed"))
    assert launched == [flaky, missing]
    assert sorted(CALLS) == [("call", 32), ("flaky", "flaky")]
    assert flaky.cached() and missing.cached() and not died.cached()
    retain.launch([died], only="died")  # takes the dead claim over
    assert died.cached() and died.execution.runs()[1]["takeover"]["run"] == 1
    assert died.execution.runs()[0]["end"]["status"] == "died"
    with pytest.raises(ConfigError, match="unknown state"):
        retain.launch([done], only=("missing", "fialed"))


class Checkpointed(Component):
    """Saves its checkpoint again and again in its run, also from a thread it starts."""

    Config = {"steps": 3}

    def __call__(self) -> None:
        for step in range(self.config.steps):
            print(f"step {step}")
            self.save_file("checkpoint.json", {"step": step})
        writer = threading.Thread(target=self.save_file, args=("checkpoint.json", {"step": "thread"}))
        writer.start()
        writer.join()
        self.save_file("checkpoint.json", {"step": "last"})


def test_a_component_replaces_its_own_files_in_its_run_only(store: Storage) -> None:
    component = get(Checkpointed).launch()
    assert component.load_file("checkpoint.json") == {"step": "last"}
    with pytest.raises(retain.ImmutableError, match="overwrite=True"):
        component.save_file("checkpoint.json", {"step": "outside"})
    component.save_file("checkpoint.json", {"step": "outside"}, overwrite=True)
    assert get(Checkpointed).load_file("checkpoint.json") == {"step": "outside"}


def test_output_log_is_reserved_for_components(store: Storage) -> None:
    component = get(Checkpointed, {"steps": 1})
    with pytest.raises(retain.UnsafePathError, match="'output.log' is reserved"):
        component.save_file(OUTPUT_LOG, "mine")
    component.launch()
    assert "retain: run 1" in component.load_file(OUTPUT_LOG)
    with pytest.raises(retain.UnsafePathError, match="reserved"):
        component.save_file("./output.log", "mine", overwrite=True)
