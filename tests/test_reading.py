"""Reading results by id without their code: what views and scripts use (`retain ui`, the CLI).

`ExecutionStatus.of`, `Storage.read_summary`, `Storage.change_token`, `Collection.using` and
`Collection.sort` by values."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import retain
from retain import ConfigError, ExecutionStatus, Interface, InterfaceNotFoundError, RecordError, get

from conftest import write_module

TRAIN = '''
from retain import Component

class Train(Component):
    Config = {"lr": 0.1, "fail": False}

    def __call__(self):
        print("training at", self.config.lr)
        for step in range(3):
            self.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        if self.config.fail:
            raise ValueError("diverged")
'''


def launched_without_code(project: Path, fail: bool = False) -> str:
    """The id of a launched `gone.Train`, whose module is then deleted and forgotten."""
    write_module(project, "gone", TRAIN)
    import gone  # type: ignore[import-not-found]

    component = get(gone.Train, {"fail": fail}).commit()
    if fail:
        with pytest.raises(ValueError, match="diverged"):
            component.launch()
    else:
        component.launch()
    (project / "gone.py").unlink()
    shutil.rmtree(project / "__pycache__", ignore_errors=True)
    del sys.modules["gone"]
    return component.id


def test_status_of_an_id_reads_the_run_without_the_code(project: Path) -> None:
    id = launched_without_code(project)
    status = ExecutionStatus.of(id)
    assert "gone" not in sys.modules
    assert status.state() == "finished" and status.is_finished()
    assert status.error() is None
    assert "training at 0.1" in status.output()
    assert [event["event"] for event in status.events()][-1] == "finished"
    duration = status.duration()
    assert duration is not None and 0 <= duration < 60
    assert [(p["step"], p["value"]) for p in status.metrics("loss")] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert "gone" not in sys.modules


def test_status_of_a_failed_id_gives_its_error(project: Path) -> None:
    id = launched_without_code(project, fail=True)
    status = ExecutionStatus.of(id)
    assert status.state() == "failed"
    error = status.error()
    assert error is not None and error["type"] == "ValueError" and "diverged" in error["message"]
    assert status.state_and_error() == ("failed", error)


def test_status_of_an_id_not_committed_is_missing_and_a_bad_id_an_error() -> None:
    status = ExecutionStatus.of("0" * 32)
    assert status.state() == "missing" and status.duration() is None and status.metrics() == []
    with pytest.raises(InterfaceNotFoundError, match="32 hex"):
        ExecutionStatus.of("29f0")


def test_read_summary_gives_the_values_and_names_a_damaged_file(store: retain.Storage) -> None:
    class Summed(Interface):
        Config = {"x": 1}

    interface = get(Summed).commit()
    assert store.read_summary(interface.id) is None
    interface.save_summary({"loss": 0.5})
    assert store.read_summary(interface.id) == {"loss": 0.5}
    Path(store.local_directory(interface.id), "summary.json").write_text("{not json")
    with pytest.raises(RecordError, match="summary"):
        store.read_summary(interface.id)


def test_the_change_token_changes_with_commits_and_summaries(store: retain.Storage) -> None:
    class Changing(Interface):
        Config = {"x": 1}

    before = store.change_token()
    assert store.change_token() == before
    interface = get(Changing).commit()
    after_commit = store.change_token()
    assert after_commit != before
    interface.save_summary({"loss": 1.0})
    assert store.change_token() != after_commit


class Data(Interface):
    Config = {"n": 1}


class Model(Interface):
    Config = {"data": None, "inputs": [], "depth": 1}


def test_using_finds_the_results_that_hold_an_input_at_any_depth() -> None:
    small, large = get(Data, {"n": 1}).commit(), get(Data, {"n": 2}).commit()
    direct = get(Model, {"data": small}).commit()
    in_list = get(Model, {"inputs": [large, small], "depth": 2}).commit()
    other = get(Model, {"data": large, "depth": 3}).commit()
    models = get.all(Model)
    assert set(models.using(small).ids()) == {direct.id, in_list.id}
    assert models.using(large.id).ids() == [other.id, in_list.id]
    assert get.all(Interface).using(other).ids() == []


def test_sort_by_values_puts_missing_last_and_checks_the_length() -> None:
    made = [get(Data, {"n": n}).commit() for n in (1, 2, 3)]
    runs = get.all(Data).sort("n")
    assert runs.sort([3.0, None, 1.0]).ids() == [made[2].id, made[0].id, made[1].id]
    assert runs.sort([3.0, None, 1.0], reverse=True).ids() == [made[0].id, made[2].id, made[1].id]
    with pytest.raises(ConfigError, match="one value per interface"):
        runs.sort([1.0])


def test_the_ui_reads_through_public_names_only() -> None:
    """`retain ui` is a client of the format: it imports no private run machinery."""
    source = (Path(retain.__file__).parent / "ui" / "_data.py").read_text()
    for private in ("_runfiles", "_claim", "_sweep", "_metrics", "._rows", "._derive", "journal_path", "run_files"):
        assert private not in source, private


def test_show_gives_the_status_of_a_component_without_its_code(project: Path, store: retain.Storage,
                                                               tmp_path: Path) -> None:
    id = launched_without_code(project, fail=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    done = subprocess.run(
        [sys.executable, "-c", "from retain.cli import console; console()", "--storage", store.url, "show", id[:8]],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "  code:      not loaded (no module named 'gone'" in done.stdout
    assert "  status:    failed (ValueError: diverged" in done.stdout
