"""The command line: every command, typed values, errors as exit codes, docs kept true."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_module
from retain import get
from retain.cli import COMMANDS, main
from retain.cli.parse import format_value, parse_value

ROOT = Path(__file__).resolve().parent.parent

ESTIMATE_PI = """
from retain import Interface

class EstimatePi(Interface):
    Config = {"samples": 100, "model": {"depth": 2}, "name": "x", "opts": {}}

    def version_large(self, factor=2):
        return {"samples": self.config.samples * factor}

    def summary(self):
        return {"samples": self.config.samples, "depth": self.config.model.depth}
"""


@pytest.fixture
def pi(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_module(project, "estimate_pi", ESTIMATE_PI)
    monkeypatch.chdir(project)
    return project


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


def test_show_and_recreate(pi: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
    assert json.loads(capsys.readouterr().out)["id"] == id


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
        (["show", "zz"], 1, "not an id"),
        ([], 2, "usage"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    pi: Path, capsys: pytest.CaptureFixture[str], words: list[str], code: int, message: str
) -> None:
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


def test_storage_option_and_console_script(pi: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    script = Path(sys.executable).parent / "retain"
    command = [str(script), "--storage", str(tmp_path / "elsewhere"), "estimate_pi", "samples=3", "--commit"]
    done = subprocess.run(command, cwd=pi, env=env, capture_output=True, text=True, check=True)
    assert str(tmp_path / "elsewhere") in done.stdout
    done = subprocess.run([str(script), "--help"], cwd=pi, env=env, capture_output=True, text=True, check=True)
    for name in COMMANDS:
        assert name in done.stdout


def test_docs_describe_every_command() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for name in COMMANDS:
        if name != "run":
            assert f"retain {name}" in text, f"docs/cli.md does not document `retain {name}`"
    assert "retain MODULE" in text
