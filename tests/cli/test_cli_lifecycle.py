"""`retain rm`: removal from the shell, its output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli as cli, write_module
from retain import Interface, Storage, get

def test_rm_refuses_users_then_cascades(chain: tuple[Interface, Interface], store: Storage,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data, model = chain
    code, out, err = cli(capsys, "rm", data.id[:8])
    assert code == 1 and out == ""
    assert err.startswith("retain: error: ") and f"Model [{model.id}]" in err and "--cascade" in err
    assert store.has_record(data.id)
    code, out, _ = cli(capsys, "rm", data.id[:8], "--cascade", "--dry-run")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(f"would remove Model [{model.id}]")
    assert lines[1].startswith(f"would remove Data [{data.id}]") and lines[1].endswith("kB")
    assert lines[2].startswith("would remove 2 interface(s), ") and store.has_record(data.id)
    code, out, _ = cli(capsys, "--json", "rm", data.id, "--cascade")
    report = json.loads(out)
    assert code == 0 and [r["id"] for r in report["removed"]] == [model.id, data.id]
    assert report["removed"][1]["class"] == "Data" and report["bytes"] >= 2000 and not report["dry_run"]
    assert not store.has_record(data.id) and not store.has_record(model.id)
    code, out, _ = cli(capsys, "ls", "Interface")
    assert data.id[:6] not in out


def test_rm_exit_codes(chain: tuple[Interface, Interface], store: Storage, capsys: pytest.CaptureFixture[str]) -> None:
    data, model = chain
    code, out, _ = cli(capsys, "rm", model.id)
    assert code == 0 and out.splitlines()[0].startswith(f"removed Model [{model.id}]")
    code, _, err = cli(capsys, "rm", model.id)  # gone: not found
    assert code == 1 and "no interface" in err
    code, _, err = cli(capsys, "rm", "not-an-id")
    assert code == 2 and "is not an id" in err
    code, _, err = cli(capsys, "rm")
    assert code == 2 and "ID" in err
    code, _, err = cli(capsys, "rm", data.id, "--force")
    assert code == 2 and store.has_record(data.id)


def test_rm_works_without_the_code(chain: tuple[Interface, Interface], store: Storage,
                                   capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Removal reads records and index rows only: no class is loaded (its code may be gone)."""
    import retain.collection
    import retain.interface
    import retain.modules

    def no_code(*args: object, **kwargs: object) -> None:
        raise AssertionError("removal loaded a class")

    for module in (retain.modules, retain.interface, retain.collection):
        for name in ("resolve_class", "load_record"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, no_code)
    data, model = chain
    code, out, _ = cli(capsys, "rm", data.id, "--cascade")
    assert code == 0 and "removed Data" in out and not store.has_record(data.id)


FLAKY = """
import os
from retain import Component

class Flaky(Component):
    Config = {"n": 0}

    def __call__(self):
        if self.config.n % 2 and not os.environ.get("FLAKY_FIXED"):
            raise ValueError(f"odd {self.config.n}")
        self.save_summary(n=self.config.n)
"""


def test_launch_only_failed(project: Path, store: Storage, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(project, "flaky", FLAKY)
    import flaky  # type: ignore[import-not-found]

    code, _, err = cli(capsys, "launch", "flaky")
    assert code == 1 and "no storage at" in err  # nothing committed yet
    for n in range(4):
        code, _, _ = cli(capsys, "flaky", f"n={n}", "--launch")
        assert code == (1 if n % 2 else 0)
    code, out, _ = cli(capsys, "launch", "flaky", "--only", "failed", "--dry-run")
    ids = sorted(get(flaky.Flaky, {"n": n}).id for n in (1, 3))
    assert code == 0 and sorted(line.split("[")[1][:32] for line in out.splitlines()[:-1]) == ids
    assert out.splitlines()[-1] == "would launch 2 of 4 component(s)"
    code, _, err = cli(capsys, "launch", "flaky", "--only", "failed")
    assert code == 1 and "odd 1" in err  # they failed again; the others were not run
    monkeypatch.setenv("FLAKY_FIXED", "1")
    code, out, _ = cli(capsys, "--json", "launch", "flaky", "--only", "failed,died")
    report = json.loads(out)
    assert code == 0 and sorted(row["id"] for row in report["launched"]) == ids
    assert all(get(flaky.Flaky, {"n": n}).execution.is_finished() for n in range(4))
    code, out, _ = cli(capsys, "launch", "flaky", "--only", "failed")
    assert code == 0 and out.startswith("nothing to launch: 0 of 4 component(s)")
    code, out, _ = cli(capsys, "launch", "flaky", "n=7", "--execution", "local", "echo=false")
    assert code == 0 and out.splitlines()[0].startswith("launched Flaky [") and "(was missing)" in out
    code, _, err = cli(capsys, "launch", "flaky", "--only", "failed,broken")
    assert code == 2 and "unknown state(s) 'broken'" in err


def test_rerun(project: Path, store: Storage, capsys: pytest.CaptureFixture[str],
               monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(project, "flaky", FLAKY)
    import flaky

    code, _, _ = cli(capsys, "flaky", "n=1", "--launch")
    assert code == 1
    run = get(flaky.Flaky, {"n": 1})
    code, _, err = cli(capsys, "rerun", run.id[:8])
    assert code == 1 and "odd 1" in err and len(run.execution.runs()) == 1
    monkeypatch.setenv("FLAKY_FIXED", "1")
    code, out, _ = cli(capsys, "--json", "rerun", run.id, "--execution", "local", "echo=false")
    assert code == 0 and json.loads(out) == {"id": run.id, "state": "finished"}
    assert len(run.execution.runs()) == 1 and run.load_summary() == {"n": 1}
    code, _, err = cli(capsys, "rerun", "0" * 32)
    assert code == 1 and "no interface" in err
    code, _, err = cli(capsys, "rerun", "xyz")
    assert code == 2 and "is not an id" in err
