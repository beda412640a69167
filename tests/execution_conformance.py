"""What every execution backend must do: subclass `ExecutionConformance` and provide an
`execution` fixture that returns the `retain.Execution` to test (see tests/test_execution.py
for the in-process and pool executions, tests/test_execution_dask.py and
tests/test_execution_slurm.py for Dask and Slurm).

The contract is the one in storage: every component handed over runs exactly once, a failing
one is recorded (and does not stop the others), finished ones are not run again, output and
the execution's description land in the component's directory, and the execution is never
part of an identity. A batch system's execution returns before the runs end: its subclass
overrides `settle` to wait for them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import retain
from retain import Component, Execution, LaunchError, get

from component_worker import Work


class ExecutionConformance:
    """Subclass with an ``execution`` fixture."""

    #: Whether the execution runs components in processes of their own.
    runs_elsewhere = True

    def settle(self, components: list[Component]) -> None:
        """Wait until the runs handed over have ended (a batch system's execution returns
        when its jobs are queued)."""

    def launch(self, execution: Execution, components: list[Component]) -> list[str]:
        """Hand `components` over; the ids of those the dispatch reported failed."""
        try:
            outcomes = execution.dispatch(components)
        except LaunchError as exc:
            failed = [outcome.id for outcome in exc.failures]
        else:
            failed = [outcome.id for outcome in outcomes if outcome.failed]
        self.settle(components)
        return failed

    def test_each_component_runs_once_and_records_its_run(self, execution: Execution, tmp_path: Path) -> None:
        counter = tmp_path / "counter"
        works = [get(Work, {"index": i, "counter": str(counter)}) for i in range(3)]
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
            if self.runs_elsewhere:
                assert run["pid"] != os.getpid()
        # The execution is not part of the identity.
        assert works[0].id == Work({"index": 0, "counter": str(counter)}).id

    def test_a_failure_is_recorded_and_the_others_run(self, execution: Execution, tmp_path: Path) -> None:
        counter = tmp_path / "counter"
        ok = [get(Work, {"index": i, "counter": str(counter)}) for i in range(2)]
        failing = get(Work, {"index": 9, "counter": str(counter), "fail": "conformance failure"})
        failed = self.launch(execution, [ok[0], failing, ok[1]])
        assert failed in ([failing.id], [])  # [] for a batch system: it only submitted
        report = retain.status([*ok, failing])
        assert report.finished == ok and report.failed == [failing]
        assert report.errors[failing.id]["type"] == "ValueError"
        assert "conformance failure" in failing.execution.output()
        assert len(counter.read_text().splitlines()) == 3

    def test_finished_components_are_not_run_again(self, execution: Execution, tmp_path: Path) -> None:
        counter = tmp_path / "counter"
        done = get(Work, {"index": 1, "counter": str(counter)}).launch()  # in process
        new = get(Work, {"index": 2, "counter": str(counter)})
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
