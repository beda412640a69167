"""What every execution backend must do: subclass `ExecutionConformance` and provide an
`execution` fixture that returns the `retain.Execution` to test (retain's own tests run it for
the in-process, pool, Dask and Slurm executions).

The contract is the one in storage: every component handed over runs exactly once, a failing
one is recorded (and does not stop the others), finished ones are not run again, output and
the execution's description land in the component's directory, and the execution is never
part of an identity. What differs between backends is what they declare:
``runs_elsewhere`` (the runs are in other processes), ``supports_unimportable_classes``, and
``supports_job_states`` (a batch system: `dispatch` returns once the jobs are queued, and the
suite waits for the runs with `settle`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

import retain
from retain import Component, Execution, LaunchError, get

__all__ = ["ConformanceWork", "ExecutionConformance"]


def _count(path: str, text: str) -> None:
    # One write with O_APPEND: lines from runs in other processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


class ConformanceWork(Component):
    """The component the suite runs: appends ``"<index> <pid>"`` to `counter` when it starts,
    prints to stdout and stderr, fails with `fail` as message when given one, and saves
    ``result.json``. Workers import it by name from this module."""

    Config: ClassVar[Any] = {"index": 0, "counter": "", "fail": ""}

    def __call__(self) -> None:
        config = self.config
        if config.counter:
            _count(config.counter, f"{config.index} {os.getpid()}")
        print(f"work {config.index} in {os.getpid()}")
        print(f"work {config.index} to stderr", file=sys.stderr)
        if config.fail:
            raise ValueError(config.fail)
        self.save_file("result.json", {"index": config.index, "pid": os.getpid()})


class ExecutionConformance:
    """Behaviour every `Execution` backend shares: subclass it and provide an ``execution``
    fixture returning the execution to test."""

    #: How long `settle` waits for a batch system's runs, in seconds.
    settle_timeout: float = 60

    def settle(self, components: Sequence[Component]) -> None:
        """Wait until the runs handed over have ended; called after each dispatch to an
        execution that declares ``supports_job_states`` (it returns when its jobs are queued).
        Override to show more when they do not end (the jobs' logs)."""
        deadline = time.monotonic() + self.settle_timeout
        while True:
            report = retain.status(components)
            counts = report.counts()
            if counts["finished"] + counts["failed"] == len(components):
                return
            assert time.monotonic() < deadline, f"not done after {self.settle_timeout} s:\n{report!r}"
            time.sleep(0.3)

    def launch(self, execution: Execution, components: Sequence[Component]) -> list[str]:
        """Hand `components` over; the ids of those the dispatch reported failed."""
        try:
            outcomes = execution.dispatch(components)
        except LaunchError as exc:
            failed = [outcome.id for outcome in exc.failures]
        else:
            failed = [outcome.id for outcome in outcomes if outcome.failed]
        if execution.supports_job_states:
            self.settle(components)
        return failed

    def test_each_component_runs_once_and_records_its_run(self, execution: Execution, tmp_path: Path) -> None:
        counter = tmp_path / "counter"
        works = [get(ConformanceWork, {"index": i, "counter": str(counter)}) for i in range(3)]
        assert self.launch(execution, works) == []
        assert all(work.cached() for work in works)
        assert retain.status(works).counts()["finished"] == 3
        assert sorted(int(line.split()[0]) for line in counter.read_text().splitlines()) == [0, 1, 2]
        for work in works:
            assert work.load_file("result.json")["index"] == work.config.index
            assert f"work {work.config.index} to stderr" in work.execution.output()
            [run] = work.execution.runs()
            assert run["execution"]["class"] == type(execution).__qualname__
            assert run["end"]["status"] == "finished"
            if execution.runs_elsewhere:
                assert run["pid"] != os.getpid()
            else:
                assert run["pid"] == os.getpid()
        # The execution is not part of the identity.
        assert works[0].id == ConformanceWork({"index": 0, "counter": str(counter)}).id

    def test_a_failure_is_recorded_and_the_others_run(self, execution: Execution, tmp_path: Path) -> None:
        counter = tmp_path / "counter"
        ok = [get(ConformanceWork, {"index": i, "counter": str(counter)}) for i in range(2)]
        failing = get(ConformanceWork, {"index": 9, "counter": str(counter), "fail": "conformance failure"})
        failed = self.launch(execution, [ok[0], failing, ok[1]])
        if execution.supports_job_states:
            assert failed in ([failing.id], [])  # [] when the jobs were only submitted
        else:
            assert failed == [failing.id]
        report = retain.status([*ok, failing])
        assert report.finished == ok and report.failed == [failing]
        assert report.errors[failing.id]["type"] == "ValueError"
        assert "conformance failure" in failing.execution.output()
        assert len(counter.read_text().splitlines()) == 3

    def test_finished_components_are_not_run_again(self, execution: Execution, tmp_path: Path) -> None:
        counter = tmp_path / "counter"
        done = get(ConformanceWork, {"index": 1, "counter": str(counter)}).launch()  # in process
        new = get(ConformanceWork, {"index": 2, "counter": str(counter)})
        assert self.launch(execution, [done, new]) == []
        assert len(counter.read_text().splitlines()) == 2 and new.cached()
        assert len(done.execution.runs()) == 1

    def test_classes_it_cannot_import_are_refused_before_anything_runs(self, execution: Execution) -> None:
        class Local(Component):
            def __call__(self) -> None:
                pass

        if execution.supports_unimportable_classes:  # it runs them in this process
            self.launch(execution, [Local()])
            assert Local().cached()
            return
        with pytest.raises(retain.NotImportableError, match="inside a function"):
            execution.dispatch([Local()])
        assert not Local().execution.is_started()
