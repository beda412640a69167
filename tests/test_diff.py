"""The environment in a record's provenance (`retain show --env`), and how two results differ
(`Interface.diff`, `retain diff`)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import retain
from retain import Interface, InterfaceDiff, Storage, get
from retain._host import package_versions, packages
from retain.cli import main
from retain.storage.layout import RECORD_FILE

from conftest import write_module


def run(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    code = main(list(words))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def commit_in_subprocess(
    cwd: Path, project: Path, module: str, config: dict[str, Any], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Commit `module`'s interface with `config` in a new Python process (storage ./storage
    in `cwd`); its id and provenance."""
    code = (
        "import json, sys, retain\n"
        f"done = retain.get({module!r}, json.loads(sys.argv[1])).commit()\n"
        "print(json.dumps({'id': done.id, 'provenance': done.record['provenance']}))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(project), *sys.path])
    environ.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config)], cwd=cwd, env=environ,
        capture_output=True, text=True, check=True, timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# Each test names its modules apart: the provenance of a module is read once per process.

SWITCH = """
import os
from retain import Interface
if os.environ.get("WITH_NUMPY"):
    import numpy

class Switch(Interface):
    Config = {"x": 1}
"""


# -- the environment in the record ---------------------------------------------------------


def test_the_record_names_python_the_platform_and_the_packages_the_module_imports(project: Path) -> None:
    write_module(project, "env_imports", (
        "import numpy as np\nfrom pydantic import BaseModel\nfrom retain import Interface\n\n"
        "class Imports(Interface):\n    Config = {'x': 1}\n"
    ))
    provenance = get("env_imports").commit().record["provenance"]  # type: ignore[index]
    assert provenance["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert provenance["implementation"] == sys.implementation.name
    assert provenance["platform"] == sys.platform
    assert provenance["machine"] == platform.machine()
    assert provenance["retain"] == retain.__version__
    assert provenance["packages"] == {"numpy": metadata.version("numpy"), "pydantic": metadata.version("pydantic")}


def test_a_module_that_imports_no_third_party_package_records_none(project: Path) -> None:
    write_module(project, "env_plain", (
        "import collections, json, os\nfrom retain import Interface, get\n\n"
        "class Plain(Interface):\n    Config = {'x': 1}\n"
    ))
    assert get("env_plain").commit().record["provenance"]["packages"] == {}  # type: ignore[index]


def test_the_packages_of_the_projects_own_modules_are_recorded(project: Path) -> None:
    """A helper module of the project that imports numpy: the result depends on numpy too."""
    write_module(project, "env_lib.helpers", "import numpy\n\ndef scale(x):\n    return numpy.asarray(x) * 2\n")
    write_module(project, "env_uses_helper", (
        "from env_lib.helpers import scale\nfrom retain import Interface\n\n"
        "class UsesHelper(Interface):\n    Config = {'x': 1}\n"
    ))
    packages_ = get("env_uses_helper").commit().record["provenance"]["packages"]  # type: ignore[index]
    assert packages_ == {"numpy": metadata.version("numpy")}


def test_a_package_installed_under_another_name_is_named_by_its_distribution(project: Path) -> None:
    write_module(project, "env_yaml", "import yaml\nfrom retain import Interface\n\nclass Yaml(Interface):\n    Config = {}\n")
    packages_ = get("env_yaml").commit().record["provenance"]["packages"]  # type: ignore[index]
    assert packages_ == {"PyYAML": metadata.version("PyYAML")}


def test_claims_and_records_read_package_versions_from_one_source() -> None:
    import numpy  # loaded: the claims' packages list it

    assert packages()[numpy.__name__] == package_versions({"numpy"})["numpy"] == metadata.version("numpy")
    assert package_versions({"os", "json", "not_a_loaded_module"}) == {}


def fake_site(tmp_path: Path, dist_info: str, files: dict[str, str]) -> Path:
    """A site-packages directory as installers lay it out: `files` (relative paths: text),
    with METADATA of distribution `dist_info` (``name-version``)."""
    site = tmp_path / "lib" / "site-packages"
    name, _, version = dist_info.partition("-")
    files = {f"{dist_info}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nText\n", **files}
    for relative, text in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)
    return site


def test_a_distribution_is_found_by_its_record_when_named_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    """No top_level.txt (hatchling, flit, meson write none): the RECORD says what it installed."""
    site = fake_site(tmp_path, "Fancy_Tools-3.1.4", {
        "fancytools/__init__.py": "VALUE = 1\n",
        "fancy_single.py": "def helper():\n    return 2\n",
        "Fancy_Tools-3.1.4.dist-info/RECORD": (
            "fancytools/__init__.py,sha256=x,10\nfancy_single.py,sha256=y,10\n"
            "Fancy_Tools-3.1.4.dist-info/METADATA,,\n../../bin/fancy,,\n"
        ),
    })
    monkeypatch.syspath_prepend(str(site))
    write_module(project, "env_fancy", (
        "import fancytools\nfrom fancy_single import helper\nfrom retain import Interface\n\n"
        "class Fancy(Interface):\n    Config = {}\n"
    ))
    packages_ = get("env_fancy").commit().record["provenance"]["packages"]  # type: ignore[index]
    assert packages_ == {"Fancy_Tools": "3.1.4"}


def test_an_editable_install_is_named_only_when_it_points_to_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    """`pip install -e`: the code lives in the project, the metadata in site-packages."""
    source = tmp_path / "checkout"
    (source / "src").mkdir(parents=True)
    write_module(source / "src", "edited.core", "def f():\n    return 1\n")
    write_module(project, "sharesname", "def g():\n    return 2\n")  # not installed: a name only
    url = json.dumps({"url": source.as_uri(), "dir_info": {"editable": True}})
    site = fake_site(tmp_path, "edited-0.2.0", {"edited-0.2.0.dist-info/direct_url.json": url})
    fake_site(tmp_path, "sharesname-9.9", {
        "sharesname-9.9.dist-info/direct_url.json": json.dumps({"url": (tmp_path / "x").as_uri(), "dir_info": {"editable": True}}),
    })
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(source / "src"))
    write_module(project, "env_editable", (
        "from edited.core import f\nfrom sharesname import g\nfrom retain import Interface\n\n"
        "class Editable(Interface):\n    Config = {}\n"
    ))
    packages_ = get("env_editable").commit().record["provenance"]["packages"]  # type: ignore[index]
    assert packages_ == {"edited": "0.2.0"}


def test_the_environment_is_never_part_of_identity(tmp_path: Path, project: Path) -> None:
    """Two processes, one with numpy imported by the module, one without: one identity."""
    write_module(project, "env_switch", SWITCH)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with_numpy = commit_in_subprocess(tmp_path / "one", project, "env_switch", {"x": 3}, {"WITH_NUMPY": "1"})
    without = commit_in_subprocess(tmp_path / "two", project, "env_switch", {"x": 3})
    assert with_numpy["provenance"]["packages"] == {"numpy": metadata.version("numpy")}
    assert without["provenance"]["packages"] == {}
    assert with_numpy["id"] == without["id"] == get("env_switch", {"x": 3}).id


# -- retain show --env ---------------------------------------------------------------------


def test_show_env_prints_python_the_platform_and_the_packages(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_module(project, "env_show", "import numpy\nfrom retain import Interface\n\nclass Shown(Interface):\n    Config = {}\n")
    done = get("env_show").commit()
    code, out, _ = run(capsys, "show", "--env", done.id[:8])
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == f"Shown [{done.id[:6]}]  env_show:Shown  environment"
    assert f"  python:         {platform.python_version()}" in lines
    assert f"  implementation: {sys.implementation.name}" in lines
    assert f"  platform:       {sys.platform}" in lines
    assert lines[-2:] == ["  packages:", f"    numpy  {metadata.version('numpy')}"]
    code, out, _ = run(capsys, "--json", "show", "--env", done.id)
    shown = json.loads(out)
    assert code == 0 and shown["id"] == done.id
    assert shown["environment"]["packages"] == {"numpy": metadata.version("numpy")}
    assert shown["environment"]["python"] == platform.python_version()


def make_old(store: Storage, id: str) -> None:
    """Rewrite a record as retain wrote it before it recorded the environment."""
    path = Path(store.local_directory(id)) / RECORD_FILE
    record = json.loads(path.read_text())
    for key in ("implementation", "machine", "libc", "packages"):
        del record["provenance"][key]
    path.write_text(json.dumps(record))


class Old(Interface):
    Config = {"x": 1}


def test_records_written_before_the_environment_still_load_show_and_diff(
    store: Storage, capsys: pytest.CaptureFixture[str]
) -> None:
    old = get(Old, {"x": 1}).commit()
    make_old(store, old.id)
    new = get(Old, {"x": 2}).commit()
    again = get(Old, {"x": 1})
    assert again.is_committed() and "packages" not in again.record["provenance"]  # type: ignore[index]
    code, out, _ = run(capsys, "show", "--env", old.id)
    assert code == 0
    assert "  packages:       (not recorded)" in out.splitlines()
    assert f"  python:         {platform.python_version()}" in out.splitlines()
    assert run(capsys, "show", old.id)[0] == 0
    difference = again.diff(new)
    assert difference.config == {"x": (1, 2)}
    # What the old record lacks is missing on its side (this module imports pytest).
    assert set(difference.environment) == {"implementation", "machine", "libc", "packages.pytest"}
    assert difference.environment["implementation"] == (InterfaceDiff.MISSING, sys.implementation.name)
    assert run(capsys, "diff", old.id, new.id)[0] == 0


# -- Interface.diff ------------------------------------------------------------------------


class Data(Interface):
    Config = {"n": 1}


class Train(Interface):
    Config = {"lr": 0.1, "model": {"depth": 2, "width": 16}, "data": None, "extra": {}}


def test_diff_lists_the_config_keys_that_differ_with_both_values() -> None:
    a = get(Train, {"lr": 0.1}).commit()
    b = get(Train, {"lr": 0.01, "model.depth": 4, "extra": {"note": "bigger"}}).commit()
    difference = a.diff(b)
    missing = InterfaceDiff.MISSING
    assert difference.config == {
        "lr": (0.1, 0.01),
        "model.depth": (2, 4),
        "extra": ({}, missing),  # an empty mapping is a value of its own
        "extra.note": (missing, "bigger"),
    }
    assert difference.inputs == difference.provenance == difference.environment == {}
    assert difference and list(difference.changes())[0] == ("config", "lr", 0.1, 0.01)
    assert str(difference).splitlines() == [
        f"Train [{a.id[:6]}] -> Train [{b.id[:6]}]",
        "  config:",
        "    lr           0.1 -> 0.01",
        "    model.depth  2 -> 4",
        "    extra        {} -> (missing)",
        "    extra.note   (missing) -> bigger",
    ]
    assert repr(difference) == f"<InterfaceDiff {difference}>"
    assert b.diff(a).config["lr"] == (0.01, 0.1)


def test_no_difference_is_false_and_says_so() -> None:
    a = get(Train).commit()
    same = a.diff(get(Train))
    assert not same and same == InterfaceDiff(a.record, a.record, {}, {}, {}, {})  # type: ignore[arg-type]
    assert str(same).splitlines()[1] == "  no differences"
    assert same.to_dict()["same"] is True


def test_diff_lists_inputs_that_differ_with_their_class() -> None:
    one, two = get(Data, {"n": 1}), get(Data, {"n": 2})
    a = get(Train, {"data": one}).commit()
    b = get(Train, {"data": two}).commit()
    difference = a.diff(b)
    missing = InterfaceDiff.MISSING
    module = Data.__module__
    assert difference.inputs == {one.id: (f"{module}:Data", missing), two.id: (missing, f"{module}:Data")}
    assert list(difference.config) == ["data"]
    assert f"    data  Data [{one.id[:6]}] -> Data [{two.id[:6]}]" in str(difference).splitlines()


def test_an_uncommitted_side_is_compared_as_it_would_be_recorded(store: Storage) -> None:
    a = get(Train).commit()
    planned = get(Train, {"lr": 0.5})
    assert a.diff(planned).config == {"lr": (0.1, 0.5)}
    assert not planned.is_committed() and not store.has_record(planned.id)  # nothing written


def test_diff_of_two_classes_shows_each_ones_keys_missing_on_the_other() -> None:
    data, train = get(Data).commit(), get(Train).commit()
    difference = data.diff(train)
    missing = InterfaceDiff.MISSING
    assert difference.config["n"] == (1, missing) and difference.config["lr"] == (missing, 0.1)
    assert difference.a["class"] == "Data" and difference.b["class"] == "Train"
    assert str(difference).splitlines()[0] == f"Data [{data.id[:6]}] -> Train [{train.id[:6]}]"
    assert difference.to_dict()["config"]["n"] == {"a": 1}


def test_diff_refuses_what_is_not_an_interface() -> None:
    with pytest.raises(TypeError, match="diff compares two interfaces; got dict"):
        get(Train).diff({"lr": 0.1})  # type: ignore[arg-type]


def test_diff_shows_code_provenance_that_differs(tmp_path: Path, project: Path) -> None:
    """Two commits of a module from two git states: the commit and the source hash differ."""
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    path = write_module(project, "env_git", "from retain import Interface\n\nclass Versioned(Interface):\n    Config = {'x': 1}\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    first = commit_in_subprocess(tmp_path, project, "env_git", {"x": 1})
    path.write_text(path.read_text() + "# changed\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    second = commit_in_subprocess(tmp_path, project, "env_git", {"x": 2})
    difference = get("env_git", {"x": 1}).diff(get("env_git", {"x": 2}))
    assert set(difference.provenance) == {"git.commit", "source_sha256"}
    assert difference.provenance["git.commit"] == (
        first["provenance"]["git"]["commit"], second["provenance"]["git"]["commit"]
    )


# -- retain diff ---------------------------------------------------------------------------


def test_retain_diff_shows_an_environment_change_between_processes(
    tmp_path: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_module(project, "env_diff_switch", SWITCH)
    a = commit_in_subprocess(tmp_path, project, "env_diff_switch", {"x": 1}, {"WITH_NUMPY": "1"})["id"]
    b = commit_in_subprocess(tmp_path, project, "env_diff_switch", {"x": 2})["id"]
    version = metadata.version("numpy")
    code, out, _ = run(capsys, "diff", a[:8], b)
    assert code == 0
    assert out.splitlines() == [
        f"Switch [{a[:6]}] -> Switch [{b[:6]}]",
        "  config:",
        "    x  1 -> 2",
        "  environment:",
        f"    packages.numpy  {version} -> (missing)",
    ]
    code, out, _ = run(capsys, "--json", "diff", a, b)
    shown = json.loads(out)
    assert code == 0 and shown["same"] is False
    assert shown["a"]["id"] == a and shown["b"] == {"id": b, "module": "env_diff_switch", "class": "Switch"}
    assert shown["config"] == {"x": {"a": 1, "b": 2}}
    assert shown["environment"] == {"packages.numpy": {"a": version}}
    assert shown["inputs"] == shown["provenance"] == {}


def test_retain_diff_and_show_env_work_without_the_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The module is on no path of this process (DESIGN decision 12: records suffice)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_module(elsewhere, "env_gone", SWITCH)
    a = commit_in_subprocess(tmp_path, elsewhere, "env_gone", {"x": 1}, {"WITH_NUMPY": "1"})["id"]
    b = commit_in_subprocess(tmp_path, elsewhere, "env_gone", {"x": 2})["id"]
    code, out, _ = run(capsys, "diff", a, b)
    assert code == 0 and "    x  1 -> 2" in out.splitlines()
    code, out, _ = run(capsys, "show", "--env", a)
    assert code == 0 and f"    numpy  {metadata.version('numpy')}" in out.splitlines()
    assert "env_gone" not in sys.modules


def test_retain_diff_of_identical_results_says_so_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    a = get(Train).commit()
    code, out, _ = run(capsys, "diff", a.id, a.id[:6])
    assert code == 0 and out.splitlines()[1] == "  no differences"


@pytest.mark.parametrize(("words", "code", "message"), [
    (["diff", "abcdef"], 2, "the following arguments are required: id2"),
    (["diff", "zz", "abcdef"], 2, "'zz' is not an id or id prefix"),
    (["diff", "{a}", "abcdef"], 1, "no interface id starts with 'abcdef'"),
    (["diff", "abcdef", "{a}"], 1, "no interface id starts with 'abcdef'"),
])
def test_retain_diff_exit_codes(words: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    a = get(Train).commit().id
    got, out, err = run(capsys, *(word.format(a=a) for word in words))
    assert got == code and out == "" and message in err
