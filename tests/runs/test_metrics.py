"""Metrics over steps: `Component.log_metrics`, `Interface.metrics`, and their last values in
the index (`metrics.<name>`)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import retain
from retain import CodecError, Component, ConfigError, Interface, RecordError, UnsafePathError, get, gt, lt
from retain.storage.layout import METRICS_FILE, METRICS_LAST_FILE

from conftest import write_module


class Train(Component):
    Config = {"lr": 0.1, "steps": 3, "fail": False}

    def __call__(self) -> None:
        for step in range(self.config.steps):
            self.log_metrics({"loss": self.config.lr / (step + 1), "accuracy": step / 10}, step=step)
        if self.config.fail:
            raise RuntimeError("diverged")


class Counting(Component):
    Config = {"fail": True}

    def __call__(self) -> None:
        self.log_metrics({"loss": 1.0, "lr": 0.5})
        self.log_metrics({"loss": 2.0})
        if self.config.fail and Counting.failures == 0:
            Counting.failures += 1
            raise RuntimeError("first run fails")

    failures = 0


class Data(Interface):
    Config = {"n": 1}


def test_metrics_come_back_in_step_order_then_logging_order() -> None:
    class OutOfOrder(Component):
        def __call__(self) -> None:
            self.log_metrics({"loss": 3.0}, step=2)
            self.log_metrics({"loss": 1.0, "accuracy": 7}, step=0)
            self.log_metrics({"loss": 0.5}, step=0)

    run = get(OutOfOrder).launch()
    rows = run.metrics()
    assert [(r["step"], r["name"], r["value"]) for r in rows] == [
        (0, "loss", 1.0), (0, "accuracy", 7.0), (0, "loss", 0.5), (2, "loss", 3.0),
    ]
    assert all(type(r["value"]) is float for r in rows)
    assert all(r["time"].endswith("Z") and r["time"][:4].isdigit() for r in rows)
    assert [r["value"] for r in run.metrics("loss")] == [1.0, 0.5, 3.0]
    assert run.metrics("nothing") == []


def test_values_are_floats_with_nan_and_infinities_kept() -> None:
    np = pytest.importorskip("numpy")

    class Diverging(Component):
        def __call__(self) -> None:
            self.log_metrics({"loss": float("nan"), "bound": float("inf"), "low": -math.inf}, step=0)
            self.log_metrics({"loss": np.float32(0.5), "count": np.int64(3), "n": 4}, step=1)

    run = get(Diverging).launch()
    values = {(r["name"], r["step"]): r["value"] for r in run.metrics()}
    assert math.isnan(values["loss", 0]) and values["bound", 0] == math.inf and values["low", 0] == -math.inf
    assert values["loss", 1] == 0.5 and values["count", 1] == 3.0 and values["n", 1] == 4.0
    assert all(type(v) is float for v in values.values())


@pytest.mark.parametrize(
    ("values", "step", "message"),
    [
        ({"loss": "0.1"}, None, "metric 'loss' must be a number.*got str"),
        ({"ok": True}, None, "metric 'ok' must be a number.*got bool"),
        ({"loss": None}, None, "must be a number"),
        ({"": 1.0}, None, "non-empty strings"),
        ({1: 1.0}, None, "non-empty strings"),
        ({"loss": 1.0}, 1.5, "step must be an integer"),
        ({"loss": 1.0}, True, "step must be an integer"),
        ([("loss", 1.0)], None, "takes a mapping"),
        ({"big": 10**400}, None, "is not a number"),
    ],
)
def test_bad_metrics_are_refused_and_nothing_is_written(values: Any, step: Any, message: str) -> None:
    class Bad(Component):
        def __call__(self) -> None:
            self.log_metrics({"fine": 1.0}, step=0)
            self.log_metrics(values, step=step)

    with pytest.raises(CodecError, match=message):
        get(Bad).launch()
    run = get(Bad)
    assert [r["name"] for r in run.metrics()] == ["fine"]


def test_omitted_steps_count_up_per_metric_and_continue_in_a_resumed_run() -> None:
    Counting.failures = 0
    run = get(Counting)
    with pytest.raises(RuntimeError, match="first run fails"):
        run.launch()
    run.launch()  # resumes: the series continues
    assert [(r["name"], r["step"], r["value"]) for r in run.metrics()] == [
        ("loss", 0, 1.0), ("lr", 0, 0.5), ("loss", 1, 2.0), ("lr", 1, 0.5),
        ("loss", 2, 1.0), ("loss", 3, 2.0),
    ]


def test_a_torn_last_line_is_ignored_and_the_next_run_starts_a_fresh_line() -> None:
    Counting.failures = 0
    run = get(Counting)
    with pytest.raises(RuntimeError):
        run.launch()
    path = Path(run.local_directory(METRICS_FILE))
    with open(path, "ab") as handle:
        handle.write(b'[7,"2026-01-01T00:00:00.000000Z",{"loss":9')  # a write cut by SIGKILL
    assert [r["step"] for r in run.metrics("loss")] == [0, 1]
    run.launch()
    assert [(r["step"], r["value"]) for r in run.metrics("loss")] == [(0, 1.0), (1, 2.0), (2, 1.0), (3, 2.0)]
    # A line that does not parse in the middle is skipped, not an error.
    with open(path, "ab") as handle:
        handle.write(b"garbage\n")
    assert len(run.metrics()) == 6


def test_a_killed_run_keeps_what_was_flushed_within_a_second(project: Path, store: retain.Storage) -> None:
    write_module(project, "killed_metrics", """
import os, signal, time
from retain import Component

class Killed(Component):
    def __call__(self):
        for step in range(3):
            self.log_metrics({"loss": float(step)}, step=step)
        time.sleep(1.6)  # the flusher writes them meanwhile
        self.log_metrics({"loss": 99.0}, step=3)  # buffered: lost with the process
        os.kill(os.getpid(), signal.SIGKILL)
""")
    env = {**os.environ, "RETAIN_STORAGE": store.url, "PYTHONPATH": str(project)}
    code = "from retain import get; from killed_metrics import Killed; get(Killed).launch()"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    from killed_metrics import Killed

    run = get(Killed)
    assert [(r["step"], r["value"]) for r in run.metrics()] == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert get.all(Killed, where={"metrics.loss": 2.0}).ids() == [run.id]


def test_buffered_metrics_are_written_at_least_every_second() -> None:
    seen: dict[str, Any] = {}

    class Slow(Component):
        def __call__(self) -> None:
            self.log_metrics({"loss": 1.0}, step=0)
            path = self.local_directory(METRICS_FILE)
            seen["at once"] = os.path.exists(path) and os.path.getsize(path) > 0
            time.sleep(1.5)
            seen["later"] = open(path, "rb").read().count(b"\n")

    get(Slow).launch()
    assert seen == {"at once": False, "later": 1}


def test_metrics_read_in_the_running_process_include_what_is_buffered() -> None:
    class Reading(Component):
        def __call__(self) -> None:
            self.log_metrics({"loss": 1.0}, step=0)
            self.save_summary(seen=len(self.metrics()))

    assert get(Reading).launch().load_summary() == {"seen": 1}


def test_outside_a_run_metrics_of_a_committed_component_are_written_at_once() -> None:
    run = get(Train, {"steps": 1}).launch()
    run.log_metrics({"test_loss": 0.25})
    data = Path(run.local_directory(METRICS_FILE)).read_bytes()
    assert data.count(b"\n") == 2 and b"test_loss" in data
    assert json.loads(Path(run.local_directory(METRICS_LAST_FILE)).read_text())["test_loss"] == 0.25
    assert get.all(Train, where={"metrics.test_loss": 0.25}).ids() == [run.id]


def test_an_uncommitted_component_cannot_log() -> None:
    with pytest.raises(RecordError, match="not committed"):
        get(Train, {"lr": 0.5}).log_metrics({"loss": 1.0})


def test_an_interface_without_metrics_has_none() -> None:
    data = get(Data).commit()
    assert data.metrics() == [] and get(Data, {"n": 2}).metrics() == []
    pandas = pytest.importorskip("pandas")
    frame = data.metrics(frame=True)
    assert list(frame.columns) == ["step", "name", "value", "time"] and len(frame) == 0
    assert isinstance(frame, pandas.DataFrame)


def test_metrics_as_a_dataframe() -> None:
    pandas = pytest.importorskip("pandas")
    run = get(Train).launch()
    frame = run.metrics(frame=True)
    assert list(frame.columns) == ["step", "name", "value", "time"]
    assert frame["step"].tolist() == [0, 0, 1, 1, 2, 2]
    assert frame["name"].tolist() == ["loss", "accuracy"] * 3
    assert str(frame["value"].dtype) == "float64"
    assert isinstance(frame["time"].iloc[0], pandas.Timestamp) and str(frame["time"].dt.tz) == "UTC"
    assert run.metrics("loss", frame=True)["value"].tolist() == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_a_missing_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    run = get(Train).launch()
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'retain\[pandas\]'"):
        run.metrics(frame=True)


def test_the_metrics_file_is_reserved() -> None:
    with pytest.raises(UnsafePathError, match="reserved"):
        get(Data).save_file(METRICS_FILE, "x")


def test_last_values_are_queryable_sortable_and_columns_of_tables() -> None:
    runs = [get(Train, {"lr": lr}).launch() for lr in (0.1, 0.3, 0.6)]
    get(Train, {"lr": 0.9, "steps": 0}).launch()  # no metrics at all
    found = get.all(Train, where={"metrics.loss": lt(0.05)})
    assert found.ids() == [runs[0].id]  # last loss: lr / 3
    assert get.all(Train, where={"metrics.loss": gt(0.05), "lr": lt(0.5)}).ids() == [runs[1].id]
    ordered = get.all(Train).sort("metrics.loss")
    assert ordered.pluck("lr") == [0.1, 0.3, 0.6, 0.9]  # missing last
    assert ordered.filter({"metrics.accuracy": 0.2}).pluck("lr") == [0.1, 0.3, 0.6]
    row = [r for r in get.all(Train).to_table() if r["config.lr"] == 0.3][0]
    assert row["metrics.loss"] == pytest.approx(0.1) and row["metrics.accuracy"] == 0.2
    pandas = pytest.importorskip("pandas")
    frame = get.all(Train).to_dataframe()
    assert list(frame.columns)[-2:] == ["metrics.accuracy", "metrics.loss"]
    assert pandas.isna(frame[frame["config.lr"] == 0.9]["metrics.loss"]).all()


def test_the_last_value_is_the_one_at_the_greatest_step() -> None:
    class Back(Component):
        def __call__(self) -> None:
            self.log_metrics({"loss": 5.0}, step=10)
            self.log_metrics({"loss": 1.0}, step=3)

    run = get(Back).launch()
    assert get.all(Back).pluck("metrics.loss") == [5.0]
    assert run.metrics("loss")[-1]["value"] == 5.0


def test_a_misspelt_metric_is_an_error_with_a_hint() -> None:
    get(Train).launch()
    with pytest.raises(ConfigError, match=r"no committed Train has a metric 'los'.*did you mean 'metrics.loss'"):
        get.all(Train, where={"metrics.los": lt(1)})


def test_the_index_is_rebuilt_with_the_last_values() -> None:
    run = get(Train).launch()
    assert retain.index.rebuild() == 1
    assert get.all(Train, where={"metrics.loss": lt(0.05)}).ids() == [run.id]


def test_a_damaged_last_values_file_keeps_the_row_in_the_index() -> None:
    run = get(Train).launch()
    Path(run.local_directory(METRICS_LAST_FILE)).write_text("{not json}")
    assert retain.index.rebuild() == 1
    assert get.all(Train).ids() == [run.id]
    assert get.all(Train, where={"metrics.loss": lt(1)}).ids() == []
    [row] = get.all(Train).to_table()
    assert row["config.lr"] == 0.1 and not any(key.startswith("metrics.") for key in row)


def test_a_long_run_journals_its_metrics_for_the_index_rarely(monkeypatch: pytest.MonkeyPatch,
                                                               store: retain.Storage) -> None:
    from retain.runs import metrics as _metrics
    from retain.storage.layout import journal_path

    monkeypatch.setattr(_metrics, "FLUSH_SECONDS", 0.05)

    class Often(Component):
        def __call__(self) -> None:
            for step in range(3):
                self.log_metrics({"loss": float(step)}, step=step)
                time.sleep(1.2 if step == 0 else 0.4)

    run = get(Often).launch()
    lines = Path(run.local_directory(METRICS_FILE)).read_bytes().count(b"\n")
    assert lines >= 3  # written several times during the run
    journal = Path(journal_path(str(store.local_root()))).read_text().splitlines()
    assert len([line for line in journal if line.startswith(f"{run.id} s ")]) == 2  # first write, end
    assert get.all(Often, where={"metrics.loss": 2.0}).ids() == [run.id]


def test_the_frame_holds_the_rows_in_the_same_order() -> None:
    pytest.importorskip("pandas")

    class Mixed(Component):
        def __call__(self) -> None:
            self.log_metrics({"loss": 3.0, "acc": 0.1}, step=5)
            self.log_metrics({"loss": 1.0}, step=1)
            self.log_metrics({"loss": 0.5, "acc": 0.2, "lr": 0.01}, step=1)
            self.log_metrics({"acc": 0.3})

    run = get(Mixed).launch()
    for name in (None, "loss", "acc"):
        rows = run.metrics(name)
        frame = run.metrics(name, frame=True)
        assert [(r["step"], r["name"], r["value"]) for r in rows] == list(
            zip(frame["step"], frame["name"], frame["value"])
        )
        assert [r["time"][:19] for r in rows] == [t.strftime("%Y-%m-%dT%H:%M:%S") for t in frame["time"]]
    assert [(r["step"], r["name"]) for r in run.metrics()] == [
        (1, "loss"), (1, "loss"), (1, "acc"), (1, "lr"), (5, "loss"), (5, "acc"), (6, "acc"),
    ]
