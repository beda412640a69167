"""The module convention, and classes defined in `__main__`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import write_module
from retain import Interface, ModuleResolutionError, get


def test_module_convention(project: Path) -> None:
    write_module(project, "estimate_gravity", "from retain import Interface\nclass EstimateGravity(Interface):\n    Config = {'g': 9.8}\n")
    write_module(project, "evolution.simulate_offspring", textwrap.dedent("""
        from retain import Interface
        from estimate_gravity import EstimateGravity  # imported classes are not candidates
        class SimulateOffspring(Interface):
            Config = {'rate': 0.5}
    """))
    gravity = get("estimate_gravity")
    evolution = get("evolution.simulate_offspring", {"rate": 0.1})
    import estimate_gravity  # type: ignore[import-not-found]
    from evolution.simulate_offspring import SimulateOffspring  # type: ignore[import-not-found]

    assert type(gravity) is estimate_gravity.EstimateGravity
    assert type(evolution) is SimulateOffspring and evolution.config.rate == 0.1
    assert gravity == get(estimate_gravity.EstimateGravity)
    assert get("evolution.simulate_offspring:SimulateOffspring", {"rate": 0.1}) == evolution
    evolution.commit()
    assert get("evolution.simulate_offspring", {"rate": 0.1}).is_committed()


def test_module_with_several_or_no_classes(project: Path) -> None:
    write_module(project, "two", "from retain import Interface\nclass A(Interface): pass\nclass B(Interface): pass\n")
    write_module(project, "none_here", "from retain import Interface\nx = 1\n")
    write_module(project, "only_imported", "from two import A\n")
    with pytest.raises(ModuleResolutionError, match=r"several Interface classes \(A, B\).*'two:A'"):
        get("two")
    assert type(get("two:B")).__name__ == "B"
    with pytest.raises(ModuleResolutionError, match="defines no Interface subclass"):
        get("none_here")
    with pytest.raises(ModuleResolutionError, match="imported, not defined there: A"):
        get("only_imported")
    with pytest.raises(ModuleResolutionError, match="has no class 'C'"):
        get("two:C")


def test_unknown_and_broken_modules(project: Path) -> None:
    write_module(project, "broken", "import not_installed_dependency_xyz\n")
    write_module(project, "raising", "raise RuntimeError('boom')\n")
    with pytest.raises(ModuleResolutionError, match="no module named 'does.not.exist'") as info:
        get("does.not.exist")
    assert isinstance(info.value, ImportError)
    with pytest.raises(ModuleResolutionError, match="found but failed to import.*not_installed_dependency_xyz"):
        get("broken")
    with pytest.raises(ModuleResolutionError, match="RuntimeError: boom"):
        get("raising")
    for bad in ("", "   ", 3, object()):
        with pytest.raises(ModuleResolutionError):
            get(bad)  # type: ignore[call-overload]
    with pytest.raises(ModuleResolutionError, match="neither"):
        get(dict)  # type: ignore[call-overload]


SCRIPT = textwrap.dedent("""
    import sys
    import retain
    from retain import Interface, get

    class Experiment(Interface):
        Config = {"n": 1}

    if __name__ == "__main__":
        exp = get(Experiment, {"n": int(sys.argv[1])})
        exp.commit()
        reloaded = Interface.from_directory(exp.local_directory())
        assert type(reloaded) is Experiment, type(reloaded)  # the running script's own class
        print(exp.id, exp.record["module"])
""")


def test_classes_defined_in_a_script(tmp_path: Path) -> None:
    script = tmp_path / "my_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "RETAIN_STORAGE": str(tmp_path / "s")}
    out = subprocess.run([sys.executable, str(script), "3"], env=env, capture_output=True, text=True, check=True)
    id, module = out.stdout.split()
    assert module == "my_script"
    # Another process, importing the script as a module, finds the same identity.
    check = (
        "import retain, my_script; "
        f"e = retain.get(my_script.Experiment, {{'n': 3}}); assert e.is_committed() and e.id == {id!r}; "
        f"assert type(retain.get.by_id({id[:8]!r})) is my_script.Experiment; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", check], env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_classes_defined_interactively(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        from retain import Interface, get
        class Notebook(Interface):
            Config = {"x": 1}
        first = get(Notebook, {"x": 2}).commit()
        assert first.record["module"] == "__main__"
        assert type(Interface.from_directory(first.local_directory())) is Notebook
        assert get(Notebook, {"x": 2}).is_committed()
        print("ok")
    """)
    env = {**os.environ, "RETAIN_STORAGE": str(tmp_path / "s")}
    out = subprocess.run([sys.executable, "-"], input=code, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_classes_defined_in_functions_reload_in_the_same_process() -> None:
    class Local(Interface):
        Config = {"a": 1}

    local = Local().commit()
    assert type(Interface.from_directory(local.local_directory())) is Local


def test_misspelt_classes_and_class_paths_get_a_hint(project: Path) -> None:
    write_module(project, "experiments", "from retain import Interface\nclass Train(Interface): pass\nclass Evaluate(Interface): pass\n")
    write_module(project, "pkg.experiments", "from retain import Interface\nclass Train(Interface): pass\n")
    with pytest.raises(ModuleResolutionError, match=r"no class 'Trian' \(its Interface classes: Evaluate, Train\); did you mean 'experiments:Train'\?"):
        get("experiments:Trian")
    with pytest.raises(ModuleResolutionError, match=r"did you mean 'experiments:Train'\?"):
        get("experiments:train")
    with pytest.raises(ModuleResolutionError, match=r"no class 'Zzz' \(its Interface classes: Evaluate, Train\)$"):
        get("experiments:Zzz")
    with pytest.raises(ModuleResolutionError, match=r"no module named 'experiments.Train' \(a class is named with a colon: did you mean 'experiments:Train'\?\)"):
        get("experiments.Train")
    with pytest.raises(ModuleResolutionError, match=r"did you mean 'pkg.experiments:Train'\?"):
        get("pkg.experiments.Train")
    with pytest.raises(ModuleResolutionError, match=r"no module named 'experiments.nothing'; check"):
        get("experiments.nothing")  # no such class either: no hint
