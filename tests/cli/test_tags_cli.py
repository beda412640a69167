"""`retain tag`, `retain note`, `retain ls --tag` and the tags and note in `retain show`: by id,
without the classes' code (DESIGN 12)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import run_cli as cli, write_module
from retain import Interface, Storage, get

MODELS = """
from retain import Interface

class Train(Interface):
    Config = {"lr": 0.1}
"""


@pytest.fixture
def runs(project: Path) -> list[Interface]:
    """Three committed results whose module is gone afterwards: the commands read records only."""
    path = write_module(project, "tagged_models", MODELS)
    import tagged_models  # type: ignore[import-not-found]

    made = [get(tagged_models.Train, {"lr": lr}).commit() for lr in (0.1, 0.2, 0.3)]
    path.unlink()
    del sys.modules["tagged_models"]
    return made


def test_tag_and_remove(runs: list[Interface], store: Storage, capsys: pytest.CaptureFixture[str]) -> None:
    a = runs[0]
    code, out, err = cli(capsys, "tag", a.id[:8], "best", "v1")
    assert (code, err) == (0, "") and out == f"Train [{a.id[:6]}]  tags: best, v1\n"
    code, out, _ = cli(capsys, "tag", a.id, "v1", "--remove")
    assert code == 0 and out == f"Train [{a.id[:6]}]  tags: best\n"
    code, out, _ = cli(capsys, "--json", "tag", a.id, "more")
    assert code == 0 and json.loads(out) == {"id": a.id, "tags": ["best", "more"], "note": None}
    assert a.tags == {"best", "more"}


def test_bad_input_and_missing_ids(runs: list[Interface], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "tag", runs[0].id, "a b")
    assert code == 2 and out == "" and "'a b' is not a valid tag: a tag is 1 to 100 characters" in err
    code, _, err = cli(capsys, "tag", "f" * 32, "best")
    assert code == 1 and "no interface ffff" in err
    code, _, err = cli(capsys, "tag", "nothex", "best")
    assert code == 2 and "is not an id or id prefix" in err
    code, _, err = cli(capsys, "tag", runs[0].id)
    assert code == 2 and "NAME" in err
    code, _, err = cli(capsys, "ls", "--tag", "a,b")
    assert code == 2 and "not a valid tag" in err
    assert runs[0].tags == frozenset()


def test_note_replace_print_and_clear(runs: list[Interface], capsys: pytest.CaptureFixture[str]) -> None:
    a = runs[1]
    code, out, _ = cli(capsys, "note", a.id[:6], "lr too high")
    assert code == 0 and out.splitlines() == [f"Train [{a.id[:6]}]  tags: (none)", "  note: lr too high"]
    cli(capsys, "note", a.id, "fine after all")
    code, out, _ = cli(capsys, "note", a.id)
    lines = out.splitlines()
    assert code == 0 and [line.split("  ", 1)[1] for line in lines] == ["lr too high", "fine after all"]
    assert lines[0].split("  ")[0].endswith("Z")
    cli(capsys, "note", a.id, "")
    code, out, _ = cli(capsys, "--json", "note", a.id)
    found = json.loads(out)
    assert found["note"] is None and [text for _, text in found["notes"]] == ["lr too high", "fine after all", ""]
    code, out, _ = cli(capsys, "note", runs[2].id)
    assert code == 0 and out == f"Train [{runs[2].id[:6]}] has no note\n"


def test_ls_tag_is_repeatable_and_all_must_hold(runs: list[Interface], capsys: pytest.CaptureFixture[str]) -> None:
    a, b, c = runs
    cli(capsys, "tag", a.id, "best", "v1")
    cli(capsys, "tag", b.id, "v1")
    code, out, _ = cli(capsys, "--json", "ls", "--tag", "v1")
    table = json.loads(out)
    assert code == 0 and [row["id"] for row in table] == [b.id, a.id]
    assert [row["tags"] for row in table] == [["v1"], ["best", "v1"]]
    code, out, _ = cli(capsys, "--json", "ls", "--tag", "v1", "--tag", "best")
    assert [row["id"] for row in json.loads(out)] == [a.id]
    code, out, _ = cli(capsys, "--json", "ls", "--tag", "v1", "--where", "lr>0.15")
    assert [row["id"] for row in json.loads(out)] == [b.id]
    code, out, err = cli(capsys, "ls", "--tag", "nope")
    assert code == 1 and "with tag nope" in err
    code, out, _ = cli(capsys, "ls")  # piped: tab-separated, tags after the fixed columns
    header, *rows = out.splitlines()
    assert header.split("\t")[:4] == ["id", "class", "created", "tags"]
    assert {row.split("\t")[0]: row.split("\t")[3] for row in rows} == {a.id: "best,v1", b.id: "v1", c.id: ""}


def test_show_prints_tags_and_note(runs: list[Interface], capsys: pytest.CaptureFixture[str]) -> None:
    a = runs[0]
    code, out, _ = cli(capsys, "show", a.id)
    assert code == 0 and "tags:" not in out and "note:" not in out
    cli(capsys, "tag", a.id, "best", "v1")
    cli(capsys, "note", a.id, "the one")
    code, out, _ = cli(capsys, "show", a.id[:6])
    assert "  tags:      best, v1\n" in out and "  note:      the one\n" in out
    code, out, _ = cli(capsys, "--json", "show", a.id)
    shown = json.loads(out)
    assert shown["tags"] == ["best", "v1"] and shown["note"] == "the one"
