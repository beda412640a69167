"""Multirun from the shell: ``retain MODULE lr=0.1,0.01 batch=8,16 --launch`` and its grammar."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import write_module
from retain import ConfigError, Storage, get, grid
from retain._syntax import parse_alternatives, parse_grid, split_alternatives
from retain.cli import main

SWEEP = """
import os
from retain import Component

class Sweep(Component):
    Config = {"lr": 0.1, "batch": 8, "fail": False, "name": "x", "sizes": [1], "model": {"depth": 2}}

    def version_small(self):
        return {"model.depth": 1}

    def version_fast(self, factor=10):
        return {"lr": self.config.lr * factor}

    def __call__(self):
        if self.config.fail:
            raise ValueError("boom")
        self.save_summary(score=self.config.lr * self.config.batch, pid=os.getpid())

    def score(self):
        return self.load_summary()["score"]
"""

TABLE = """
from retain import Interface

class Table(Interface):
    Config = {"rows": 1}
"""


@pytest.fixture
def sweep(project: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    write_module(project, "sweep", SWEEP)
    write_module(project, "table", TABLE)
    monkeypatch.chdir(project)
    import sweep  # type: ignore[import-not-found]

    return sweep.Sweep


def run(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    code = main(list(words))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- the grammar of alternatives ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("0.1,0.01", [0.1, 0.01]),
        ("8", [8]),
        ("adam,sgd", ["adam", "sgd"]),
        ("[1,2]", [[1, 2]]),                      # a JSON list is one value
        ("[1,2],[3]", [[1, 2], [3]]),
        ('{"a":1,"b":"x,)"}', [{"a": 1, "b": "x,)"}]),
        ("'a,b'", ["a,b"]),                       # the word name='a,b' (the shell kept the quotes)
        ("'a,b',c", ["a,b", "c"]),
        ('"a,b"', ["a,b"]),
        ('"1",2', ["1", 2]),
        ("range(3)", [0, 1, 2]),
        ("range(2,8,3)", [2, 5]),
        ("range(-1, 1)", [-1, 0]),
        ("range(2),10", [0, 1, 10]),
        ("'range(2)'", ["range(2)"]),
        ("it's,fine", ["it's", "fine"]),          # a quote inside a value is a character
        ("[1", ["[1"]),                           # unclosed: one value, as before grids
        ("a(b,c", ["a(b,c"]),
        ("'a,b", ["'a,b"]),
        ("", [""]),
    ],
)
def test_alternatives_of_a_value(text: str, values: list[Any]) -> None:
    assert parse_alternatives(text) == values


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("lr=0.1,", "cannot read 'lr=0.1,': an empty alternative between commas; remove the extra comma, or quote a value that holds a comma: \"name='a,b'\""),
        ("lr=,0.1", "an empty alternative"),
        ("seed=range(0)", "range(0) is empty"),
        ("seed=range(a)", "expected range(stop), range(start, stop) or range(start, stop, step) with whole numbers"),
        ("seed=range(1,2,0)", "a step other than 0"),
        ("seed=range(1,2,3,4)", "expected range(stop)"),
        ("~small,fast", "each alternative of a version grid is a version starting with ~ ('~small,~large(2)'); got 'fast'"),
        ("lr", "expected key=value"),
    ],
)
def test_bad_alternatives_say_what_is_wrong(word: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_grid([word])
    assert message in str(raised.value)


def test_words_make_axes_in_order() -> None:
    assert parse_grid(["lr=0.1,0.01", "~small,~large(2, 3)", "~x(1,2)", "model.depth=range(2)", "b=1"]) == [
        ("lr", [0.1, 0.01]), ("~", ["~small", "~large(2, 3)"]), ("~", ["~x(1,2)"]),
        ("model.depth", [0, 1]), ("b", [1]),
    ]
    assert split_alternatives("~large(2,3),~small") == ["~large(2,3)", "~small"]


# -- the command ----------------------------------------------------------------------------------


def test_a_grid_without_launch_lists_its_cells_and_writes_nothing(sweep: Any, capsys: pytest.CaptureFixture[str], store: Storage) -> None:
    cells = grid(sweep, {"lr": [0.1, 0.01], "batch": [8, 16]})
    code, out, err = run(capsys, "sweep", "lr=0.1,0.01", "batch=8,16")
    assert code == 0 and err == "" and not os.path.exists(store.url)
    lines = out.splitlines()
    assert lines[0] == "4 cells of Sweep, 0 committed (--launch runs them, --launch --dry-run says what would run):"
    assert lines[1:] == [
        f"  {cell!r} lr={point['lr']} batch={point['batch']} (not committed; id {cell.id})"
        for point, cell in cells.items()
    ]
    cells[3].commit()
    code, out, _ = run(capsys, "--json", "sweep", "lr=0.1,0.01", "batch=8,16")
    listed = json.loads(out)["cells"]
    assert [c["values"] for c in listed] == cells.points
    assert [c["committed"] for c in listed] == [False, False, False, True]
    assert [c["id"] for c in listed] == [c.id for c in cells] and listed[0]["config"]["lr"] == 0.1


def test_launch_runs_the_grid_then_finds_it_cached(sweep: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sweep", "lr=0.1,0.01", "batch=8,16", "--launch")
    cells = grid(sweep, {"lr": [0.1, 0.01], "batch": [8, 16]})
    assert code == 0 and all(cell.cached() for cell in cells)
    assert [cell.score() for cell in cells] == [pytest.approx(0.8), pytest.approx(1.6), pytest.approx(0.08), pytest.approx(0.16)]
    assert [line for line in out.splitlines() if line.startswith("ran ")] == [
        f"ran {cell!r} lr={point['lr']} batch={point['batch']} (id {cell.id}, run 1) in {cell.local_directory()}"
        for point, cell in cells.items()
    ]
    code, out, _ = run(capsys, "sweep", "lr=0.1,0.01", "batch=8,16", "--launch")
    assert code == 0 and [line.split(" (")[0] for line in out.splitlines()] == [
        f"cached {cell!r} lr={point['lr']} batch={point['batch']}" for point, cell in cells.items()
    ]
    code, out, _ = run(capsys, "--json", "sweep", "lr=0.1,0.5", "--launch", "--commit")
    done = json.loads(out)["cells"]
    assert [(c["values"], c["results"]["launch"]["did"]) for c in done] == [({"lr": 0.1}, "cached"), ({"lr": 0.5}, "ran")]
    assert done[1]["results"]["commit"]["id"] == done[1]["id"] == get(sweep, {"lr": 0.5}).id


def test_one_cell_is_as_before(sweep: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sweep", "batch=3", "--launch", "--score")
    one = get(sweep, {"batch": 3})
    assert code == 0 and out.splitlines()[-2:] == [f"ran {one!r} (id {one.id}, run 1) in {one.local_directory()}", "0.30000000000000004"]
    code, out, _ = run(capsys, "sweep", "batch=range(3,4)", "--launch")  # a range of one value: one cell
    assert code == 0 and out == f"cached {one!r} (id {one.id}) in {one.local_directory()}\n"
    code, out, _ = run(capsys, "sweep", "batch=3")
    assert code == 0 and out.splitlines()[0] == f"{one!r} (committed)"


def test_ranges_lists_and_quoted_commas(sweep: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "sweep", "batch=range(1,6,2)", "--commit")
    assert code == 0 and [get(sweep, {"batch": b}).is_committed() for b in (1, 3, 5)] == [True] * 3
    code, out, _ = run(capsys, "--json", "sweep", "batch=range(2),10")
    assert [c["values"] for c in json.loads(out)["cells"]] == [{"batch": 0}, {"batch": 1}, {"batch": 10}]
    # The shell turns "name='a,b'" into the word name='a,b': one cell, whose name holds a comma.
    code, out, _ = run(capsys, "sweep", "name='a,b'", "--commit")
    assert code == 0 and get(sweep, {"name": "a,b"}).is_committed() and out.startswith("committed Sweep [")
    code, out, _ = run(capsys, "--json", "sweep", "name=a,b")  # unquoted: two cells
    assert [c["values"] for c in json.loads(out)["cells"]] == [{"name": "a"}, {"name": "b"}]
    code, out, _ = run(capsys, "--json", "sweep", "sizes=[1,2]")  # a JSON list: one value
    assert code == 0 and json.loads(out)["config"]["sizes"] == [1, 2]
    code, out, _ = run(capsys, "--json", "sweep", "sizes=[1,2],[3]")
    assert [c["values"] for c in json.loads(out)["cells"]] == [{"sizes": [1, 2]}, {"sizes": [3]}]


def test_versions_in_the_grid(sweep: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sweep", "~small,~fast(2)", "batch=1,2", "--launch")
    small, fast = get(sweep, ["~small", {"batch": 1}]), get(sweep, ["~fast(2)", {"batch": 2}])
    assert code == 0 and small.cached() and fast.cached() and fast.config.lr == pytest.approx(0.2)
    lines = out.splitlines()
    assert len(lines) == 4 and lines[0].startswith(f"ran {small!r} ~small batch=1 (id {small.id}")
    assert lines[3].startswith(f"ran {fast!r} ~fast(2) batch=2 (id")
    code, out, _ = run(capsys, "--json", "sweep", "~fast(2),~small")  # a comma inside arguments stays
    assert [c["values"] for c in json.loads(out)["cells"]] == [{"~": "~fast(2)"}, {"~": "~small"}]


def test_dry_run_says_what_each_cell_would_do(sweep: Any, capsys: pytest.CaptureFixture[str], store: Storage) -> None:
    assert run(capsys, "sweep", "batch=1", "--launch")[0] == 0
    assert run(capsys, "sweep", "batch=2", "fail=true", "--launch")[0] == 1
    before = sorted(os.listdir(store.url))
    code, out, _ = run(capsys, "sweep", "batch=1,2,3", "fail=true,false", "--launch", "--dry-run")
    assert sorted(os.listdir(store.url)) == before  # nothing written
    cells = grid(sweep, {"batch": [1, 2, 3], "fail": [True, False]})
    said = [line.split(" (")[0] for line in out.splitlines()]
    assert code == 0 and said == [
        f"would run {cells[0]!r} batch=1 fail=true",
        f"cached {cells[1]!r} batch=1 fail=false",
        f"would resume {cells[2]!r} batch=2 fail=true",
        f"would run {cells[3]!r} batch=2 fail=false",
        f"would run {cells[4]!r} batch=3 fail=true",
        f"would run {cells[5]!r} batch=3 fail=false",
        "6 cells: 4 would run, 1 cached, 1 would resume",
    ]
    assert "(failed: ValueError: boom; id " in out.splitlines()[2]
    code, out, _ = run(capsys, "--json", "sweep", "batch=1,2", "fail=true", "--launch", "--dry-run")
    states = [(c["results"]["launch"]["state"], c["results"]["launch"]["would_run"]) for c in json.loads(out)["cells"]]
    assert states == [("missing", True), ("failed", True)]


def test_a_grid_launches_with_an_execution(sweep: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sweep", "batch=4,5", "--launch", "--execution", "pool", "processes=2")
    cells = grid(sweep, {"batch": [4, 5]})
    assert code == 0, err
    assert [line.split(" (")[0] for line in out.splitlines() if line.startswith("ran ")] == [
        f"ran {cells[0]!r} batch=4", f"ran {cells[1]!r} batch=5"]
    assert all(c.load_summary()["pid"] != os.getpid() for c in cells)  # in the pool's processes
    assert {c.execution.runs()[0]["execution"]["module"] for c in cells} == {"retain.execution.pool"}


def test_a_failing_cell_fails_the_launch_with_counts(sweep: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sweep", "fail=false,true", "--launch")
    assert code == 1 and err.startswith("retain: error: 1 of 2 component(s) failed (1 ran): Sweep [")
    assert get(sweep, {"fail": False}).cached() and get(sweep, {"fail": True}).execution.state() == "failed"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["sweep", "batch=1,2", "--score"], "--score calls a method of one interface, and the words make a grid of 2 cells (comma-separated values or a range); give one value per key"),
        (["sweep", "batch=1,"], "an empty alternative between commas"),
        (["sweep", "batch=range(0)"], "range(0) is empty"),
        (["sweep", "~small,fast"], "each alternative of a version grid is a version"),
        (["sweep", "batchh=1,2"], "unknown config key 'batchh'"),
        (["sweep", "batch=1,x"], "'batch' of Sweep expects int"),
        (["table", "rows=1,2", "--launch"], "Table is not a Component: --launch runs a component's __call__; use --commit to commit the cells"),
        (["sweep", "batch=1,2", "--dry-run"], "--dry-run goes with --launch"),
    ],
)
def test_bad_grid_words_exit_2(sweep: Any, capsys: pytest.CaptureFixture[str], words: list[str], message: str) -> None:
    code, out, err = run(capsys, *words)
    assert code == 2 and out == "" and message in err, err
