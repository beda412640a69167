"""`retain export`, `retain import`, `retain copy`: moving results from the shell, output and
exit codes."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from conftest import run_cli as cli
import retain
from retain import Interface, Storage, get

def test_export_then_import_twice(chain: tuple[Interface, Interface], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    data, model = chain
    archive = str(tmp_path / "r.tar.gz")
    code, out, err = cli(capsys, "export", model.id[:8], "--with-inputs", "-o", archive)
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert lines[0].startswith(f"exported Data [{data.id}]") and lines[1].startswith(f"exported Model [{model.id}]")
    assert lines[2].startswith("exported 2 result(s), ") and lines[2].endswith(f"to {archive}")
    with tarfile.open(archive) as tar:
        assert f"{model.id}/interface.json" in tar.getnames()
    other = str(tmp_path / "other")
    code, out, _ = cli(capsys, "--storage", other, "import", archive)
    assert code == 0 and out.splitlines()[-1].startswith("imported 2 result(s)")
    code, out, _ = cli(capsys, "--storage", other, "--json", "import", archive)
    report = json.loads(out)
    assert code == 0 and [r["state"] for r in report["results"]] == ["present", "present"]
    assert report["results"][1]["class"] == "Model" and report["storage"] == other
    code, out, _ = cli(capsys, "--storage", other, "import", archive)
    assert out.splitlines()[0].startswith(f"already present Data [{data.id}]")
    assert out.splitlines()[-1].endswith("; 2 already present")
    code, out, _ = cli(capsys, "--storage", other, "ls")
    assert data.id[:6] in out and model.id[:6] in out


def test_refusals_and_their_exit_codes(chain: tuple[Interface, Interface], store: Storage, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data, model = chain
    other = str(tmp_path / "other")
    # An input the target lacks: named, with the option that carries it; nothing written.
    code, out, err = cli(capsys, "copy", model.id, "--to", other)
    assert code == 1 and out == "" and data.id in err and "--with-inputs" in err
    assert not (tmp_path / "other" / model.id).exists()
    code, out, _ = cli(capsys, "copy", model.id, "--with-inputs", "--to", other)
    assert code == 0 and out.splitlines()[-1].startswith("copied 2 result(s)")
    # A collision: the same configuration committed independently on the other side.
    import models  # type: ignore[import-not-found]  (written by the fixture)

    fresh = get(models.Data, {"name": "fresh"}).commit()
    with retain.storage(other):
        theirs = get(models.Data, {"name": "fresh"}).commit()
    assert theirs.id == fresh.id
    code, out, err = cli(capsys, "copy", fresh.id, "--to", other)
    assert code == 1 and f"Data [{fresh.id}]" in err and "created" in err
    # Not an archive, not an id.
    (tmp_path / "plain.tar").write_text("not a tar")
    code, _, err = cli(capsys, "import", str(tmp_path / "plain.tar"))
    assert code == 2 and "not a retain archive" in err
    code, _, err = cli(capsys, "export", "xyz", "-o", str(tmp_path / "x.tar"))
    assert code == 2 and "not an id" in err
    code, _, err = cli(capsys, "export", "abcdef", "-o", str(tmp_path / "x.tar"))
    assert code == 1
    code, _, err = cli(capsys, "export", data.id)
    assert code == 2 and "-o" in err
