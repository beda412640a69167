"""The command line: every command, typed values, errors as exit codes, docs kept true."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import retain
from conftest import write_module
from retain import get, lt
from retain._words import nickname
from retain.cli import COMMANDS, PARSERS, Parser, main
from retain._syntax import where_groups
from retain.cli.output import ProgressBar, fit_widths, print_table
from retain._syntax import format_value, parse_value, parse_where
from retain.cli.parse import execution_module

ROOT = Path(__file__).resolve().parents[2]

ESTIMATE_PI = """
from retain import Interface

class EstimatePi(Interface):
    Config = {"samples": 100, "model": {"depth": 2}, "name": "x", "opts": {}}

    def version_large(self, factor=2):
        return {"samples": self.config.samples * factor}

    def summary(self):
        return {"samples": self.config.samples, "depth": self.config.model.depth}
"""


MC_PI = """
import random
from retain import Component

class McPi(Component):
    Config = {"samples": 100, "lr": 0.1, "fail": False}

    def __call__(self):
        if self.config.fail:
            raise ValueError("boom\\nmore detail")
        print("estimating")
        inside = sum(random.random() ** 2 + random.random() ** 2 < 1 for _ in range(self.config.samples))
        self.save_summary(pi=4 * inside / self.config.samples)

    def pi(self):
        return self.load_summary()["pi"]
"""

TYPED_PI = """
import pydantic
from retain import Component

class Config(pydantic.BaseModel):
    samples: int = 100

class TypedPi(Component):
    Config = Config

    def __call__(self):
        pass
"""

TAGGED_EXECUTION = """
from retain.execution.local import LocalExecution

class Tagged(LocalExecution):
    Config = {"echo": False, "tag": "none"}
"""


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def pi(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_module(project, "estimate_pi", ESTIMATE_PI)
    write_module(project, "mc_pi", MC_PI)
    write_module(project, "typed_pi", TYPED_PI)
    monkeypatch.chdir(project)
    return project


def run(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    """main(words): the exit code, stdout and stderr."""
    code = main(list(words))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("retain: error:"), err
    return lines[0]


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("1", 1), ("-3", -3), ("1.0", 1.0), ("1e-3", 0.001), ("true", True), ("False", False),
        ("null", None), ("none", None), ("[1,2]", [1, 2]), ('{"a": 1}', {"a": 1}),
        ('"1"', "1"), ("'quoted words'", "quoted words"), ("adam", "adam"), ("[1", "[1"),
        ("", ""),
    ],
)
def test_values_are_typed_as_a_user_expects(word: str, value: object) -> None:
    parsed = parse_value(word)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("value", ["1", "true", "adam", "a b", "", " x", "@x", "[1", 3, 2.5, None, True, [1, "a"], {"a": {"b": 1}}])
def test_format_value_parses_back(value: object) -> None:
    parsed = parse_value(format_value(value))
    assert parsed == value and type(parsed) is type(value)


def test_get_describes_without_writing(pi: Path, capsys: pytest.CaptureFixture[str], store: object) -> None:
    assert main(["estimate_pi", "samples=150", "model.depth=4", "~large(2)"]) == 0
    out = capsys.readouterr().out
    assert "not committed" in out and '"samples": 300' in out and '"depth": 4' in out
    assert not os.path.exists(os.path.join(store.url))  # type: ignore[attr-defined]


def test_commit_and_methods_in_order(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate_pi", "samples=150", "--commit", "--summary"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("committed EstimatePi [")
    assert json.loads(lines[1]) == {"samples": 150, "depth": 2}
    import estimate_pi  # type: ignore[import-not-found]

    assert get(estimate_pi.EstimatePi, {"samples": 150}).is_committed()
    assert main(["--json", "estimate_pi", "samples=150", "--summary"]) == 0
    assert json.loads(capsys.readouterr().out)["results"] == {"summary": {"samples": 150, "depth": 2}}


def test_find_exit_codes(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["find", "estimate_pi", "samples=7"]) == 1
    main(["estimate_pi", "samples=7", "--commit"])
    capsys.readouterr()
    assert main(["find", "estimate_pi", "samples=7.0"]) == 0
    found = capsys.readouterr().out.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", found)


def test_show_and_recreate(pi: Path, capsys: pytest.CaptureFixture[str], store: retain.Storage) -> None:
    main(["estimate_pi", "samples=9", "name=\"1\"", "opts.x=[1,2]", "--commit"])
    capsys.readouterr()
    main(["find", "estimate_pi", "samples=9", "name=\"1\"", "opts.x=[1,2]"])
    id = capsys.readouterr().out.strip()
    assert main(["show", id[:7]]) == 0
    out = capsys.readouterr().out
    assert id in out and "estimate_pi:EstimatePi" in out and "interface.json" in out
    assert main(["show", id[:7], "--cli"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("retain estimate_pi:EstimatePi ")
    import shlex

    words = shlex.split(line)[1:]
    assert main(["find", *words]) == 0
    assert capsys.readouterr().out.strip() == id
    assert main(["--json", "show", id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == id and shown["directory"] == os.path.join(store.url, id[:2], id)  # where it is


@pytest.mark.parametrize(
    ("words", "code", "message"),
    [
        (["no_such_module"], 2, "no module named 'no_such_module'"),
        (["estimate_pi", "samplez=3"], 2, "unknown config key 'samplez'"),
        (["estimate_pi", "samples"], 2, "expected key=value"),
        (["estimate_pi", "~large("], 2, "malformed version"),
        (["estimate_pi", "--nothing"], 2, "no method 'nothing'"),
        (["estimate_pi", "-x"], 2, "unknown option"),
        (["show", "abcdef"], 1, "no interface id starts with 'abcdef'"),
        (["show", "zz"], 2, "not an id"),
        (["show", "zzz"], 2, "'zzz' is not an id or id prefix"),
        (["show", "0" * 33], 2, "not an id"),
        (["show", "0" * 32], 1, "no interface 000"),
        (["ls", "mc_pi", "--where", "lr<abc"], 2, "'lr' of McPi is a number (its default is 0.1)"),
        (["find", "estimate_pi", "samples=12345"], 1, "is not committed"),
        (["estimate_pi", "--launch"], 2, "not a Component"),
        (["mc_pi", "--dry-run"], 2, "--dry-run goes with --launch"),
        (["mc_pi", "--launch", "--dry-run", "--commit"], 2, "cannot go with --commit"),
        (["mc_pi", "--execution", "pool"], 2, "add --launch"),
        (["mc_pi", "--launch", "--execution"], 2, "--execution needs a name"),
        (["mc_pi", "--launch", "--execution", "no_such_backend"], 2, "--execution no_such_backend: no execution of retain has that name and no module of yours either; retain's executions: dask, local, pool, slurm"),
        (["mc_pi", "--launch", "--execution", "poool"], 2, "retain's executions: dask, local, pool, slurm; did you mean 'pool'?"),
        (["mc_pi", "--launch", "--execution", "estimate_pi.Nope"], 2, "no module named 'estimate_pi.Nope'"),
        (["mc_pi", "--launch", "--execution", "estimate_pi"], 2, "not an Execution"),
        (["mc_pi", "--launch", "--execution", "pool", "procesez=2"], 2, "unknown config key 'procesez'"),
        (["mc_pi", "samples=abc", "--launch", "--dry-run"], 2, "'samples' of McPi expects int"),
        (["mc_pi", "fail=1", "--launch", "--dry-run"], 2, "'fail' of McPi expects bool"),
        (["estimate_pi", "name=123"], 2, "quote text that reads as a number: name='\"123\"'"),
        (["typed_pi", "samples=many", "--launch"], 2, "samples"),
        (["ls", "no_such_module"], 2, "no module named 'no_such_module'"),
        (["ls", "mc_pi", "--where", "lx<1"], 2, "unknown config key 'lx'"),
        (["ls", "--where", "lr!=1"], 2, "'!=' is not supported"),
        (["ls", "--where", "lr"], 2, "expected KEY OP VALUE"),
        (["ls", "--where", "lr<[1]"], 2, "lr<[1]"),
        (["ls", "--limit", "0"], 2, "positive whole number"),
        (["ls", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["ls"], 1, "no committed interface in"),
        (["ls", "mc_pi", "--where", "lr<0.5"], 1, "no committed mc_pi with lr<0.5"),
        (["status", "mc_pi"], 1, "no committed mc_pi"),
        (["status", "estimate_pi"], 2, "not a Component"),
        (["status", "estimate_pi", "samples=3"], 2, "not a Component"),
        (["status", "mc_pi", "samplez=3"], 2, "unknown config key 'samplez'"),
        (["status"], 2, "the following arguments are required: module"),
        (["stale", "no_such_module"], 2, "no module named 'no_such_module'"),
        (["index"], 2, "required: ACTION"),
        (["index", "rebuilt"], 2, "invalid choice: 'rebuilt'"),
        ([], 2, "usage"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    pi: Path, capsys: pytest.CaptureFixture[str], store: retain.Storage, words: list[str], code: int, message: str
) -> None:
    os.makedirs(store.url)  # an empty storage (without one, reading commands say so first)
    assert main(words) == code
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert message in text
    if words:
        assert captured.err.count("\n") == 1 and captured.err.startswith("retain: error:")


def test_ambiguous_prefix_is_a_usage_error(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import estimate_pi

    ids = [get(estimate_pi.EstimatePi, {"samples": n}).commit().id for n in range(40)]
    first = sorted(ids)[0]
    shared = next(first[:k] for k in range(1, 4) if sum(i.startswith(first[:k]) for i in ids) > 1)
    assert main(["show", shared]) == 2
    assert "ambiguous" in capsys.readouterr().err


def test_debug_shows_the_traceback(pi: Path) -> None:
    with pytest.raises(Exception, match="samplez"):
        main(["--debug", "estimate_pi", "samplez=3"])




# -- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "key", "condition"),
    [
        ("lr<0.01", "lr", lt(0.01)),
        ("lr <= 1", "lr", retain.le(1)),
        ("summary.loss>0.5", "summary.loss", retain.gt(0.5)),
        ("model.depth>=4", "model.depth", retain.ge(4)),
        ("batch_size=8", "batch_size", 8),
        ("batch_size==8", "batch_size", 8),
        ("name=a<b", "name", "a<b"),
        ("name=", "name", ""),
        ("created>2024-05", "created", retain.gt("2024-05")),
        ("flag=true", "flag", True),
    ],
)
def test_where_expressions_become_index_filters(expression: str, key: str, condition: object) -> None:
    parsed = parse_where(expression)
    assert parsed == (key, condition) and type(parsed[1]) is type(condition)


def test_conditions_on_one_key_go_to_successive_groups() -> None:
    assert where_groups(["lr>0.001", "batch=8", "lr<0.1"]) == [
        {"lr": retain.gt(0.001), "batch": 8},
        {"lr": lt(0.1)},
    ]


def test_execution_names() -> None:
    assert execution_module("pool") == "retain.execution.pool"
    assert execution_module("local") == "retain.execution.local"
    assert execution_module("my_cluster") == "my_cluster"
    assert execution_module("pkg.slurm:Slurm") == "pkg.slurm:Slurm"


def test_tables_fit_a_terminal_and_stay_whole_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fit_widths([40, 10, 5], 50, gap=2) == [31, 10, 5]
    assert fit_widths([40, 40], 10, gap=2) == [8, 8]
    assert fit_widths([3, 4], 100, gap=2) == [3, 4]
    rows = [{"a": "x" * 50, "b": 1.5, "c": None}, {"a": "tab\there", "b": [1, 2], "c": "new\nline"}]
    piped = io.StringIO()
    print_table(rows, ["a", "b", "c"], piped)
    assert piped.getvalue().splitlines() == ["a\tb\tc", "x" * 50 + "\t1.5\t", "tab\\there\t[1,2]\tnew\\nline"]
    monkeypatch.setattr("retain.cli.output._terminal_width", lambda: 30)
    terminal = Tty()
    print_table(rows, ["a", "b", "c"], terminal)
    lines = terminal.getvalue().splitlines()
    assert lines[0].split() == ["a", "b", "c"] and set(lines[1]) == {"-", " "}
    assert all(len(line) <= 30 for line in lines)
    assert lines[2].startswith("x" * 11 + "…  1.5") and lines[3].startswith("tab here")
    assert "[1, 2]" in lines[3]


def test_terminal_tables_round_floats_and_keep_ids_times_and_text_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    from retain.cli.output import format_float, human

    assert [format_float(v) for v in (0.1 + 0.2, 1.0, 123456789.0, 1e-9, 2 / 3, float("nan"))] == [
        "0.3", "1.0", "1.23457e+08", "1e-09", "0.666667", "NaN",
    ]
    assert human({"a": [0.1 + 0.2, "s"], "ref": {"$interface": "29f034" + "0" * 26, "class": "Train"}}) == (
        '{"a": [0.3, "s"], "ref": Train [29f034]}'
    )
    details = "source: module stale.py changed since (sha256 0123abcd, now 4567ef01); defaults: lr 0.1 -> 0.2"
    rows = [{"id": "29f034", "created": "2026-12-03 05:29:48", "loss": 0.1 + 0.2, "details": details}]
    piped = io.StringIO()
    print_table(rows, ["id", "created", "loss", "details"], piped, keep=("id", "created"), wrap="details")
    assert piped.getvalue().splitlines()[1] == f"29f034	2026-12-03 05:29:48	0.30000000000000004	{details}"
    monkeypatch.setattr("retain.cli.output._terminal_width", lambda: 60)
    terminal = Tty()
    print_table(rows, ["id", "created", "loss", "details"], terminal, keep=("id", "created"), wrap="details")
    lines = terminal.getvalue().splitlines()
    assert lines[2].startswith("29f034  2026-12-03 05:29:48  0.3   ")
    assert all(len(line) <= 60 for line in lines) and "…" not in terminal.getvalue()
    column = lines[0].index("details")
    # The text wraps between words under its column: nothing is cut.
    assert " ".join(line[column:].strip() for line in lines[2:]) == details
    assert all(line[:column].strip() == "" for line in lines[3:])


def test_progress_bar_only_on_a_terminal() -> None:
    terminal = Tty()
    bar = ProgressBar("rebuilding", terminal)
    bar(1000, 4000)
    bar(4000, 4000)
    bar.close()
    text = terminal.getvalue()
    assert "rebuilding [#######-----------------------] 1,000/4,000" in text
    assert text.endswith("rebuilding [" + "#" * 30 + "] 4,000/4,000\x1b[K\n")
    piped = io.StringIO()
    quiet = ProgressBar("rebuilding", piped)
    quiet(1, 2)
    quiet.close()
    assert not quiet.enabled and piped.getvalue() == ""


# -- launch ---------------------------------------------------------------------------------------


def test_launch_runs_once_then_is_cached(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "mc_pi", "samples=150", "--launch", "--pi")
    import mc_pi  # type: ignore[import-not-found]

    component = get(mc_pi.McPi, {"samples": 150})
    assert code == 0 and component.cached()
    line = next(line for line in out.splitlines() if line.startswith("ran "))
    assert line == f"ran {component!r} (id {component.id}, run 1) in {component.local_directory()}"
    assert float(out.strip().splitlines()[-1]) == component.load_summary()["pi"]  # --pi after the run
    code, out, _ = run(capsys, "mc_pi", "samples=150", "--launch")
    assert code == 0 and out == f"cached {component!r} (id {component.id}) in {component.local_directory()}\n"
    assert component.execution.runs()[0]["end"]["run"] == 1 and len(component.execution.runs()) == 1
    code, out, _ = run(capsys, "--json", "mc_pi", "samples=151", "--launch")
    launched = json.loads(out)["results"]["launch"]  # JSON only: the run's own output is not echoed
    assert code == 0 and launched["did"] == "ran" and launched["run"] == 1 and launched["id"] == json.loads(out)["id"]


def test_dry_run_says_what_would_run_and_writes_nothing(pi: Path, capsys: pytest.CaptureFixture[str], store: object) -> None:
    code, out, _ = run(capsys, "mc_pi", "samples=5", "--launch", "--dry-run")
    assert code == 0 and out.startswith("would run McPi [") and "(missing; id " in out
    assert not os.path.exists(store.url)  # type: ignore[attr-defined]
    assert run(capsys, "mc_pi", "fail=true", "--launch")[0] == 1
    code, out, _ = run(capsys, "mc_pi", "fail=true", "--launch", "--dry-run")
    assert code == 0 and out.startswith("would resume McPi [") and "(failed: ValueError: boom; id" in out
    run(capsys, "mc_pi", "samples=5", "--launch")
    before = sorted(os.listdir(store.url))  # type: ignore[attr-defined]
    code, out, _ = run(capsys, "--json", "mc_pi", "samples=5", "--launch", "--dry-run", "--execution", "pool")
    result = json.loads(out)["results"]["launch"]
    assert code == 0 and result["state"] == "finished" and result["would_run"] is False
    assert sorted(os.listdir(store.url)) == before  # type: ignore[attr-defined]


def test_failing_launch_exits_1_with_the_error_on_one_line(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "mc_pi", "fail=true", "--launch")
    import mc_pi

    component = get(mc_pi.McPi, {"fail": True})
    line = one_error_line(err)
    assert code == 1 and "ran " not in out
    assert f"{component!r} failed: ValueError: boom (id {component.id}; output: {component.local_directory('output.log')})" in line
    assert component.execution.state() == "failed"
    code, out, err = run(capsys, "--json", "mc_pi", "fail=true", "--launch")
    assert code == 1 and out == "" and "ValueError: boom" in one_error_line(err)


def test_execution_words_configure_the_execution(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_module(pi, "tagged", TAGGED_EXECUTION)
    code, out, _ = run(capsys, "mc_pi", "samples=7", "--launch", "--execution", "tagged", "tag=x", "--pi")
    import mc_pi

    component = get(mc_pi.McPi, {"samples": 7})
    execution = component.execution.runs()[0]["execution"]
    assert code == 0 and execution["module"] == "tagged" and execution["config"]["tag"] == "x"
    assert float(out.splitlines()[-1]) == component.pi()  # --pi is an action, not an execution word
    assert run(capsys, "mc_pi", "samples=8", "--launch", "--execution", "local", "echo=false")[0] == 0
    execution = get(mc_pi.McPi, {"samples": 8}).execution.runs()[0]["execution"]
    assert execution["module"] == "retain.execution.local" and execution["config"] == {"echo": False}


# -- show, status, ls, stale, index ---------------------------------------------------------------


def test_show_includes_the_status_of_a_component(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "mc_pi", "fail=true", "--launch")
    run(capsys, "mc_pi", "--launch")
    import mc_pi

    failed, done = get(mc_pi.McPi, {"fail": True}), get(mc_pi.McPi)
    assert "  status:    failed (ValueError: boom)" in run(capsys, "show", failed.id)[1].splitlines()
    assert "  status:    finished" in run(capsys, "show", done.id[:8])[1].splitlines()
    shown = json.loads(run(capsys, "--json", "show", failed.id)[1])
    assert shown["status"] == "failed" and shown["error"]["message"] == "boom\nmore detail"
    plain = get("estimate_pi").commit()
    assert "  status:" not in run(capsys, "show", plain.id)[1]
    assert "status" not in json.loads(run(capsys, "--json", "show", plain.id)[1])


def test_status_of_a_configuration_or_of_every_committed_one(
    pi: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, "mc_pi", "samples=3", "--launch")
    run(capsys, "mc_pi", "fail=true", "--launch")
    import mc_pi

    get(mc_pi.McPi, {"samples": 4}).commit()
    code, out, _ = run(capsys, "--json", "status", "mc_pi")
    states = {row["id"]: (row["state"], row["error"] and row["error"]["message"]) for row in json.loads(out)}
    assert code == 0 and states == {
        get(mc_pi.McPi, {"samples": 3}).id: ("finished", None),
        get(mc_pi.McPi, {"fail": True}).id: ("failed", "boom\nmore detail"),
        get(mc_pi.McPi, {"samples": 4}).id: ("missing", None),
    }
    code, out, _ = run(capsys, "status", "mc_pi", "samples=99")
    lines = out.splitlines()
    assert code == 0 and lines[0].split("\t") == ["id", "class", "state", "nickname", "error", "directory"]
    assert len(lines) == 2 and lines[1].split("\t")[:3] == [get(mc_pi.McPi, {"samples": 99}).id, "McPi", "missing"]
    code, out, _ = run(capsys, "status", "mc_pi", "fail=true")
    assert code == 0 and out.splitlines()[1].split("\t")[2:5] == ["failed", get(mc_pi.McPi, {"fail": True}).nickname, "ValueError: boom"]
    monkeypatch.setattr(sys, "stdout", Tty())
    assert main(["status", "mc_pi"]) == 0
    assert "3 component(s): 1 missing, 1 failed, 1 finished" in sys.stdout.getvalue()  # type: ignore[attr-defined]


def test_ls_filters_in_the_index(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import mc_pi

    made = [get(mc_pi.McPi, {"samples": n, "lr": lr}).commit() for n, lr in [(10, 0.1), (20, 0.01), (30, 0.001)]]
    made[0].save_summary(pi=3.0)
    made[1].save_summary(pi=3.2)
    get("estimate_pi").commit()

    def ids(*words: str) -> list[str]:
        code, out, _ = run(capsys, "--json", "ls", *words)
        assert code == 0
        return [row["id"] for row in json.loads(out)]

    assert ids("mc_pi") == [c.id for c in reversed(made)]  # newest first
    assert len(ids()) == 4  # every class
    assert ids("mc_pi", "--where", "lr<0.05") == [made[2].id, made[1].id]
    assert ids("mc_pi", "--where", "lr>0.0005", "--where", "lr<=0.01") == [made[2].id, made[1].id]
    assert ids("mc_pi", "--where", "samples=20") == [made[1].id]
    assert ids("mc_pi", "--where", "summary.pi>=3.1") == [made[1].id]
    assert ids("mc_pi", "--limit", "1") == [made[2].id]
    code, out, _ = run(capsys, "ls", "mc_pi", "--where", "samples>=20")  # piped: tab-separated, whole values
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == ["id", "class", "created", "fail", "lr", "samples", "summary.pi"]
    assert lines[1] == [made[2].id, "McPi", made[2].created, "false", "0.001", "30", ""]
    assert lines[2][:6] == [made[1].id, "McPi", made[1].created, "false", "0.01", "20"] and len(lines) == 3
    row = json.loads(run(capsys, "--json", "ls", "mc_pi", "--limit", "1")[1])[0]
    assert row["config.lr"] == 0.001 and row["module"] == "mc_pi"


def test_ls_on_a_terminal_is_an_aligned_table(pi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mc_pi

    first = get(mc_pi.McPi, {"samples": 10}).commit()
    first.save_summary(pi=3.0)
    monkeypatch.setattr(sys, "stdout", Tty())
    assert main(["ls", "mc_pi"]) == 0
    header, rule, line = sys.stdout.getvalue().splitlines()  # type: ignore[attr-defined]
    assert header.split() == ["id", "class", "created", "fail", "lr", "samples", "summary.pi"]
    assert line.split()[:2] == [first.id[:6], "McPi"] and line.split()[-1] == "3.0"
    assert line.split()[2:4] == first.created[:19].split("T")  # to the second
    assert [match.start() for match in re.finditer(r"-+", rule)] == [header.index(name) for name in header.split()]


def test_stale_finds_changed_code_and_changed_defaults(project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    path = write_module(project, "mc_stale", MC_PI)
    monkeypatch.chdir(project)
    run(capsys, "mc_stale", "samples=5", "--launch")
    run(capsys, "mc_stale", "samples=5", "lr=0.1", "--commit")  # the same identity
    run(capsys, "mc_stale", "samples=6", "lr=0.5", "--commit")
    code, out, err = run(capsys, "stale")
    assert code == 0 and out == "" and err.startswith("nothing stale in ")
    assert json.loads(run(capsys, "--json", "stale", "mc_stale")[1]) == []
    path.write_text(MC_PI.replace('"lr": 0.1', '"lr": 0.25'))
    del sys.modules["mc_stale"]  # as a new process would see it
    importlib.invalidate_caches()
    code, out, _ = run(capsys, "--json", "stale", "mc_stale")
    import mc_stale  # type: ignore[import-not-found]

    found = {row["id"]: [reason["kind"] for reason in row["reasons"]] for row in json.loads(out)}
    default_lr = get(mc_stale.McPi, {"samples": 5, "lr": 0.1})  # found by its own value
    explicit_lr = get(mc_stale.McPi, {"samples": 6, "lr": 0.5})
    assert default_lr.is_committed() and explicit_lr.is_committed()
    assert code == 0 and found == {default_lr.id: ["source", "defaults", "identity"], explicit_lr.id: ["source"]}
    code, out, _ = run(capsys, "stale")
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["id", "class", "created", "why", "details"] and len(rows) == 3
    assert "defaults changed since (lr: 0.1 then, 0.25 now)" in out and f"{path} changed since" in out
    # Today's default is a configuration of its own: it runs, and the old result stays.
    code, out, err = run(capsys, "mc_stale", "samples=5", "--launch")
    assert code == 0 and "\nran McPi" in out and err == ""
    code, out, err = run(capsys, "mc_stale", "samples=5", "lr=0.1", "--launch")
    assert code == 0 and out.startswith("cached ")


def test_stale_counts_git_commits_when_asked(project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "first")
    write_module(project, "mc_git", MC_PI)
    monkeypatch.chdir(project)
    assert run(capsys, "mc_git", "--commit")[0] == 0
    import mc_git  # type: ignore[import-not-found]

    assert get(mc_git.McPi).record["provenance"]["git"]["root"] == str(project)  # type: ignore[index]
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "second")
    assert json.loads(run(capsys, "--json", "stale", "mc_git")[1]) == []  # its source is unchanged
    found = json.loads(run(capsys, "--json", "stale", "mc_git", "--git")[1])
    assert [reason["kind"] for reason in found[0]["reasons"]] == ["git"]


def test_index_rebuild_reports_the_count_with_a_bar_on_a_terminal(
    pi: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: object
) -> None:
    import mc_pi

    for n in range(3):
        get(mc_pi.McPi, {"samples": n}).commit()
    import shutil

    shutil.rmtree(os.path.join(store.url, ".retain"))  # type: ignore[attr-defined]
    code, out, err = run(capsys, "index", "rebuild")
    assert code == 0 and out == f"indexed 3 interface(s) in {store.url}\n" and err == ""  # type: ignore[attr-defined]
    assert json.loads(run(capsys, "--json", "index", "rebuild")[1])["indexed"] == 3
    monkeypatch.setattr(sys, "stderr", Tty())
    assert main(["index", "rebuild"]) == 0
    assert sys.stderr.getvalue() == "\rrebuilding index [" + "#" * 30 + "] 3/3\x1b[K\n"  # type: ignore[attr-defined]
    assert capsys.readouterr().out.startswith("indexed 3 ")
    assert len(json.loads(run(capsys, "--json", "ls", "mc_pi")[1])) == 3


# -- every command, help, docs, the console script ------------------------------------------------

EVERY_COMMAND = {  # name: (words, what stdout holds); ID stands for the id of mc_pi samples=2
    "run": (["mc_pi", "samples=2", "--launch"], "ran McPi [ID6] (id ID, run 1)"),
    "find": (["find", "mc_pi", "samples=2"], "ID\n"),
    "show": (["show", "ID"], "  status:    finished\n"),
    "diff": (["diff", "ID", "ID"], "  no differences\n"),
    "ls": (["ls", "mc_pi"], "\nID\tMcPi\t"),
    "status": (["status", "mc_pi"], "\nID\tMcPi\tfinished\t"),
    "stale": (["--json", "stale", "mc_pi"], "[]\n"),
    "index": (["index", "rebuild"], "indexed 1 interface(s)"),
    "rm": (["rm", "ID", "--dry-run"], "would remove McPi [ID]"),
    "launch": (["launch", "mc_pi", "--only", "finished", "--dry-run"], "would launch McPi [ID] (finished)"),
    "rerun": (["rerun", "ID"], "ran McPi [ID6] again (id ID)"),
    "du": (["du", "mc_pi"], "\nmc_pi:McPi\t1\t"),
    "verify": (["verify"], "checked 1 record(s) in "),
    "export": (["export", "ID", "-o", "r.tar"], "exported McPi [ID]"),
    "import": (["import", "r.tar"], "already present McPi [ID]"),
    "copy": (["copy", "ID", "--to", "copied"], "copied McPi [ID]"),
    "tag": (["tag", "ID", "best"], "McPi [ID6]  tags: best\n"),
    "note": (["note", "ID", "fine"], "  note: fine\n"),
    "gc": (["gc", "--status", "failed", "--dry-run"], "would remove 0 result(s) and 0 leftover(s)"),
}


def test_every_command_is_run_by_a_test() -> None:
    # `retain ui` serves until stopped: tests/ui/test_ui.py runs it as a process.
    assert set(EVERY_COMMAND) | {"ui"} == set(COMMANDS)


def test_every_command_runs(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import mc_pi

    id = get(mc_pi.McPi, {"samples": 2}).id
    for name, (words, expected) in EVERY_COMMAND.items():
        code, out, err = run(capsys, *(id if word == "ID" else word for word in words))
        assert code == 0 and expected.replace("ID6", id[:6]).replace("ID", id) in out, (name, out, err)


@pytest.mark.parametrize(
    "words",
    [["--help"], ["mc_pi", "--help"], *([name, "--help"] for name in COMMANDS if name != "run"), ["index", "rebuild", "--help"]],
)
def test_help_everywhere(pi: Path, capsys: pytest.CaptureFixture[str], words: list[str]) -> None:
    code, out, err = run(capsys, *words)
    assert code == 0 and "usage:" in out and err == ""


def test_storage_option_and_console_script(pi: Path, tmp_path: Path) -> None:
    """Through the installed `retain` script: a pool launch, then ls and status when piped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    script = Path(sys.executable).parent / "retain"
    elsewhere = str(tmp_path / "elsewhere")

    def retain_(*words: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), "--storage", elsewhere, *words], cwd=pi, env=env, capture_output=True, text=True, check=check)

    done = retain_("mc_pi", "samples=3", "--launch", "--execution", "pool", "processes=2")
    assert done.stdout.startswith("ran McPi [") and elsewhere in done.stdout, done.stderr
    done = retain_("ls")
    assert done.stdout.splitlines()[0] == "id\tclass\tcreated\tfail\tlr\tsamples\tsummary.pi"
    listed_id = done.stdout.splitlines()[1].split("\t")[0]
    assert json.loads(retain_("--json", "status", "mc_pi").stdout)[0] == {
        "id": listed_id, "class": "McPi", "state": "finished", "nickname": nickname(listed_id),
        "error": None, "directory": os.path.join(elsewhere, listed_id[:2], listed_id),
    }
    failed = retain_("mc_pi", "fail=true", "--launch", "--execution", "pool", check=False)
    assert failed.returncode == 1 and "ValueError: boom" in one_error_line(failed.stderr)
    text = retain_("--help").stdout
    listed = [line.split()[0] for line in text[text.index("commands:"):].splitlines() if line.startswith("  ")]
    assert listed == ["MODULE", *sorted(name for name in COMMANDS if name != "run")]


def test_docs_describe_every_command_and_option() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for name in COMMANDS:
        if name != "run":
            assert f"## `retain {name}" in text, f"docs/cli.md does not document `retain {name}`"
        parser = Parser(prog=name)
        PARSERS[name](parser)
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in text, f"docs/cli.md does not mention {option} of `retain {name}`"
    for word in ("retain MODULE", "--launch", "--dry-run", "--execution", "index rebuild", "--storage", "--debug"):
        assert word in text
    readme = (ROOT / "README.md").read_text()
    assert "## Command line" in readme and "docs/cli.md" in readme


# -- reading never creates a storage; pipes that close early -----------------------------------


CONSOLE = [sys.executable, "-c", "from retain.cli import console; console()"]


def console_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}


@pytest.mark.parametrize(
    "words",
    [["ls"], ["ls", "mc_pi"], ["status", "mc_pi"], ["show", "29f034"], ["find", "mc_pi"], ["stale"], ["index", "rebuild"]],
)
def test_reading_commands_without_storage_create_nothing(pi: Path, tmp_path: Path, words: list[str]) -> None:
    before = sorted(p.name for p in pi.iterdir())
    done = subprocess.run([*CONSOLE, *words], cwd=pi, env=console_env(), capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr)
    assert f"no storage at {pi / 'storage'}" in line and done.stdout == ""
    assert sorted(p.name for p in pi.iterdir()) == before  # no ./storage, no .retain/


def test_storage_option_naming_a_missing_directory_is_an_error(pi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo"
    for words in (["ls"], ["stale"], ["show", "29f034"]):
        code, out, err = run(capsys, "--storage", str(missing), *words)
        assert code == 1 and f"no storage at {missing} (does not exist)" in one_error_line(err)
    assert not missing.exists()
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "--storage", str(tmp_path / "file"), "ls")
    assert code == 1 and "not a directory" in one_error_line(err)


def test_storage_option_wins_over_an_enclosing_storage_block(pi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--storage", str(tmp_path / "other"), "estimate_pi", "--commit"])
    capsys.readouterr()
    assert (tmp_path / "other").is_dir() and not (tmp_path / "storage").exists()


@pytest.mark.parametrize("words", [["--help"], ["ls"], ["ls", "--help"], ["--json", "ls"]])
def test_a_closed_pipe_ends_quietly(pi: Path, store: retain.Storage, words: list[str]) -> None:
    main(["estimate_pi", "--commit"])
    # The reader is gone before the command writes (`retain ls | true`).
    process = subprocess.Popen([*CONSOLE, "--storage", store.url, *words], cwd=pi, env=console_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read().decode()
    code = process.wait()
    assert err == "" and code in (0, 141)


# -- a read-only storage (an archive) is listed and queried --------------------------------------


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """``mount(directory)``: `directory` bind-mounted read-only (a real read-only file system,
    which stops root too); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(source: Path) -> Path:
        target = tmp_path / f"mounted-{len(mounted)}"
        target.mkdir()
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
        mounted.append(target)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", str(target)], check=False)
        if os.path.ismount(target):
            subprocess.run(["umount", "-l", str(target)], check=True)


def archived_storage(pi: Path, store: retain.Storage, tmp_path: Path) -> tuple[Path, str, str]:
    """A storage with an interface (with a summary) and a finished component, copied to
    ``tmp_path/archive/storage``; (archive, interface id, component id)."""
    import shutil

    import estimate_pi
    import mc_pi  # type: ignore[import-not-found]

    plain = get(estimate_pi.EstimatePi, {"samples": 7}).commit()
    plain.save_summary(loss=0.25)
    component = get(mc_pi.McPi, {"samples": 5})
    component.launch()
    retain.index.rebuild()
    archive = tmp_path / "archive"
    shutil.copytree(store.url, archive / "storage")
    return archive, plain.id, component.id


def check_read_only_storage(pi: Path, storage: Path, cache: Path, plain: str, component: str) -> None:
    env = {**console_env(), "RETAIN_CACHE_DIR": str(cache)}

    def retain_(*words: str) -> str:
        done = subprocess.run([*CONSOLE, "--storage", str(storage), *words], cwd=pi, env=env, capture_output=True, text=True)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        return done.stdout

    listed = retain_("ls").splitlines()
    assert listed[0].split("\t")[:3] == ["id", "class", "created"] and len(listed) == 3
    assert retain_("ls", "estimate_pi").splitlines()[1].startswith(plain)
    assert f"id:        {plain}" in retain_("show", plain[:8])
    assert "status:    finished" in retain_("show", component)
    assert json.loads(retain_("--json", "status", "mc_pi"))[0]["state"] == "finished"
    script = (
        "import retain, sys\n"
        "from retain import get\n"
        "with retain.storage(sys.argv[1]):\n"
        "    runs = get.all('estimate_pi')\n"
        "    print(runs.ids(), runs[0].load_summary(), get.by_id(sys.argv[2]).config.samples)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(storage), plain], cwd=pi, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.strip() == f"['{plain}'] {{'loss': 0.25}} 7"


def test_a_read_only_mount_is_listed_and_queried(
    pi: Path, store: retain.Storage, tmp_path: Path, read_only_mount: Callable[[Path], Path]
) -> None:
    archive, plain, component = archived_storage(pi, store, tmp_path)
    mounted = read_only_mount(archive)
    with pytest.raises(OSError):
        (mounted / "storage" / "probe").write_text("x")  # read-only, even for root
    before = tree_state(archive)
    check_read_only_storage(pi, mounted / "storage", tmp_path / "cache", plain, component)
    # Also without the index that was copied along: built from the records alone.
    for path in (archive / "storage" / ".retain").glob("index.sqlite*"):
        subprocess.run(["mount", "-o", "remount,rw,bind", str(mounted)], check=True)
        path.unlink()
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mounted)], check=True)
    before = tree_state(archive)
    check_read_only_storage(pi, mounted / "storage", tmp_path / "cache2", plain, component)
    assert tree_state(archive) == before


def test_a_read_only_plain_storage_of_an_earlier_release_is_read(
    pi: Path, tmp_path: Path, read_only_mount: Callable[[Path], Path]
) -> None:
    """A plain storage without a marker (what earlier releases wrote) on a read-only mount:
    the marker its first write would add cannot be written, and is not needed."""
    import estimate_pi

    from retain.storage import LocalStorage
    from retain.storage.layout import marker_path

    source = tmp_path / "old" / "storage"
    with retain.storage(LocalStorage(source, shard=0)):
        plain = get(estimate_pi.EstimatePi, {"samples": 7}).commit()
        retain.index.rebuild()
    os.unlink(marker_path(str(source)))
    mounted = read_only_mount(tmp_path / "old") / "storage"
    before = tree_state(tmp_path / "old")
    opened = LocalStorage(mounted)
    assert opened.shard == 0 and opened.prepare_directory(plain.id) == str(mounted / plain.id)
    with retain.storage(opened):
        assert get.by_id(plain.id[:8]) == plain and get.all(estimate_pi.EstimatePi).ids() == [plain.id]
    assert tree_state(tmp_path / "old") == before


def test_a_storage_made_read_only_with_chmod_is_not_written(pi: Path, store: retain.Storage, tmp_path: Path) -> None:
    """``chmod -R a-w`` on an archive: root could still write, but nothing is written."""
    archive, plain, component = archived_storage(pi, store, tmp_path)
    for path in (archive / "storage" / ".retain").glob("index.sqlite*"):
        path.unlink()
    subprocess.run(["chmod", "-R", "a-w", str(archive)], check=True)
    try:
        before = tree_state(archive)
        check_read_only_storage(pi, archive / "storage", tmp_path / "cache", plain, component)
        assert tree_state(archive) == before
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(archive)], check=True)


# -- records are readable without their code ----------------------------------------------------


GONE_THING = """
from retain import Interface

class Thing(Interface):
    Config = {"a": 1, "b": 0.1}
"""

GONE_USER = """
from retain import Interface

class User(Interface):
    Config = {"thing": None, "things": [], "x": 2}
"""


def test_records_are_read_without_their_code(tmp_path: Path, store: retain.Storage) -> None:
    """Committed from modules in a directory that the reading process does not have."""
    code = tmp_path / "code"
    code.mkdir()
    write_module(code, "gone_thing", GONE_THING)
    write_module(code, "gone_user", GONE_USER)
    script = (
        "import retain, sys\n"
        "from retain import get\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "with retain.storage(sys.argv[1]):\n"
        "    thing = get('gone_thing', {'a': 3}).commit()\n"
        "    thing.save_summary(loss=0.1 + 0.2)\n"
        "    user = get('gone_user', {'thing': thing, 'things': [thing]}).commit()\n"
        "    print(thing.id, user.id)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, store.url, str(code)], cwd=tmp_path, env=console_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    thing, user = done.stdout.split()
    elsewhere = tmp_path / "elsewhere"  # a fresh process, without `code` on sys.path
    elsewhere.mkdir()

    def retain_(*words: str) -> str:
        done = subprocess.run([*CONSOLE, "--storage", store.url, *words], cwd=elsewhere, env=console_env(), capture_output=True, text=True)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        return done.stdout

    listed = retain_("ls", "gone_thing").splitlines()
    assert listed[0] == "id\tclass\tcreated\ta\tb\tsummary.loss"
    assert listed[1].startswith(f"{thing}\tThing\t") and listed[1].endswith("\t3\t0.1\t0.30000000000000004")
    assert retain_("ls", "gone_user", "--where", "x=2").splitlines()[1].startswith(user)
    assert retain_("ls", "gone_thing:Thing").splitlines()[1].startswith(thing)
    shown = retain_("show", user[:6]).splitlines()
    assert shown[0] == f"User [{user[:6]}]  gone_user:User  (Interface)"
    assert f'  config:    {{"thing": Thing [{thing[:6]}], "things": [Thing [{thing[:6]}]], "x": 2}}' in shown
    assert any(line.startswith("  code:      not loaded (no module named 'gone_user'") for line in shown)
    shown = retain_("show", thing).splitlines()
    assert '  summary:   {"loss": 0.3}' in shown
    assert json.loads(retain_("--json", "show", thing))["summary"] == {"loss": 0.30000000000000004}
    reader = (
        "import retain, sys\n"
        "from retain import get\n"
        "with retain.storage(sys.argv[1]):\n"
        "    runs = get.all('gone_thing', where={'a': 3})\n"
        "    print(repr(runs), runs.ids(), runs.pluck('summary.loss'), len(get.all('gone_thing', where={'a': 4})))\n"
        "    try:\n"
        "        runs[0]\n"
        "    except retain.ModuleResolutionError as exc:\n"
        "        print(exc)\n"
        "    try:\n"
        "        get.all('gone_thinG')\n"
        "    except retain.ModuleResolutionError as exc:\n"
        "        print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", reader, store.url], cwd=elsewhere, env=console_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"<Collection of 1 Thing> ['{thing}'] [0.30000000000000004] 0"
    assert lines[1].startswith(f"Thing [{thing[:6]}] cannot be loaded: no module named 'gone_thing'") and "retain show" in lines[1]
    assert lines[2].startswith("no module named 'gone_thinG'")  # not recorded either: the import error


def test_terminal_tables_show_inputs_as_class_and_short_id(pi: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(pi, "uses_pi", "from retain import Interface\n\nclass UsesPi(Interface):\n    Config = {'pi': None, 'more': []}\n")
    import estimate_pi

    source = get(estimate_pi.EstimatePi).commit()
    user = get("uses_pi", {"pi": source, "more": [source]}).commit()
    terminal = Tty()
    with monkeypatch.context() as patched:
        patched.setattr("sys.stdout", terminal)
        assert main(["ls", "uses_pi"]) == 0
    out = terminal.getvalue()
    row = out.splitlines()[2]
    assert row.startswith(user.id[:6]) and f"EstimatePi [{source.id[:6]}]" in row
    assert f"[EstimatePi [{source.id[:6]}]]" in row
    assert main(["ls", "uses_pi"]) == 0  # piped: whole ids, for scripts
    assert source.id in capsys.readouterr().out


def test_ls_sorts_by_a_key(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import estimate_pi

    made = {n: get(estimate_pi.EstimatePi, {"samples": n}).commit() for n in (20, 5, 300)}
    for n, interface in made.items():
        interface.save_summary(error=1 / n)

    def order(*words: str) -> list[int]:
        code, out, err = run(capsys, "ls", "estimate_pi", *words)
        assert code == 0, err
        lines = out.splitlines()
        at = lines[0].split("\t").index("samples")
        return [int(line.split("\t")[at]) for line in lines[1:]]

    assert order("--sort", "samples") == [5, 20, 300]
    assert order("--sort", "-samples") == [300, 20, 5]
    assert order("--sort=-summary.error") == [5, 20, 300]
    assert order("--sort", "summary.error", "--limit", "2") == [300, 20]
    assert order("--sort", "created") == [20, 5, 300]
    assert order("--sort", "-created") == [300, 5, 20]
    code, _, err = run(capsys, "ls", "estimate_pi", "--sort", "samplez")
    assert code == 2 and "unknown config key 'samplez'" in one_error_line(err)
    code, _, err = run(capsys, "ls", "estimate_pi", "--sort", "-summary.eror")
    assert code == 2 and "did you mean 'summary.error'" in one_error_line(err)


LAUNCHER = """
from retain import Interface, get

class Launcher(Interface):
    Config = {}

    def go(self):
        execution = get("retain.execution.local", {"echo": False})
        execution.dispatch([
            get("mc_pi", {"samples": 3}),             # cached: launched before
            get("mc_pi", {"samples": 4}),             # runs now
            get("mc_pi", {"samples": 5}),             # runs now
            get("mc_pi", {"fail": True}),             # fails
        ])
"""


def test_launch_error_counts_ran_cached_and_failed(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_module(pi, "launcher", LAUNCHER)
    assert run(capsys, "mc_pi", "samples=3", "--launch")[0] == 0
    code, _, err = run(capsys, "launcher", "--go")
    line = one_error_line(err)
    assert code == 1 and line.startswith("retain: error: 1 of 4 component(s) failed (2 ran, 1 cached): McPi [")
    assert "failed: ValueError: boom" in line and line.endswith("; launch again to resume (--debug shows the traceback)")
    import launcher  # type: ignore[import-not-found]

    with pytest.raises(retain.LaunchError, match=r"1 of 4 component\(s\) failed \(3 cached\):"):
        get(launcher.Launcher).go()
    code, _, err = run(capsys, "mc_pi", "fail=true", "--launch")  # alone: no counts
    assert code == 1 and one_error_line(err).startswith("retain: error: McPi [")


def test_ls_shows_the_last_metric_values_after_the_summary(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_module(project, "fitting", """
from retain import Component

class Fitting(Component):
    Config = {"zeta": 1}

    def __call__(self):
        self.save_summary(acc=0.5)
        for step in range(3):
            self.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
""")
    from fitting import Fitting

    runs = [get(Fitting, {"zeta": z}).launch() for z in (1, 2)]
    code, out, _ = run(capsys, "ls", "fitting", "--where", "metrics.loss<0.5", "--sort", "-zeta")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "id\tclass\tcreated\tzeta\tsummary.acc\tmetrics.loss"
    assert [line.split("\t")[0] for line in lines[1:]] == [runs[1].id, runs[0].id]
    assert lines[1].endswith("\t2\t0.5\t0.3333333333333333")
