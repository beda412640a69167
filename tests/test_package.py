"""The front door: exports, import cost, typing, examples."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import retain

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_sorted_and_complete() -> None:
    assert retain.__all__ == sorted(retain.__all__)
    public = {name for name in dir(retain) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(retain, name)) is type(retain)}
    assert public - modules - {"annotations"} == set(retain.__all__) - {"__version__"}
    assert all(getattr(retain, name) is not None for name in retain.__all__)  # lazy ones load
    for name in retain.__all__:
        assert getattr(retain, name) is not None


def test_import_loads_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "from retain import Interface, get\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(m for m in new if m not in sys.stdlib_module_names and m != 'retain'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_loads_no_heavy_standard_library_modules() -> None:
    """`threading` or `collections` alone cost `import retain` a fifth of its time."""
    code = (
        "import sys; before = set(sys.modules)\n"
        "import retain\n"
        "print(sorted(m for m in set(sys.modules) - before if not m.startswith('retain')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(out.stdout))
    assert not loaded & {"threading", "collections", "functools", "typing", "json", "hashlib", "datetime", "subprocess", "inspect"}


def test_typed_package() -> None:
    assert (Path(retain.__file__).parent / "py.typed").exists()


def test_quickstart_example_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    for run in (1, 2):
        out = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py")],
            cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
        )
        assert "reloaded" in out.stdout, out.stdout
        files = {p: p.stat().st_mtime_ns for p in (tmp_path / "storage").rglob("*")
                 if p.is_file() and ".retain" not in p.parts}
        if run == 1:
            first = files
    # The second run finds what the first committed and writes nothing into it (a committed
    # interface's files are frozen).
    assert files == first and any(p.name == "inputs.npy" for p in files)


def test_every_error_and_warning_is_in_the_tree_drawn_in_errors_docstring() -> None:
    """The tree in `retain._errors`'s docstring names every public error and warning, each
    under its retain base, and every one derives from RetainError or RetainWarning."""
    from retain import _errors

    assert _errors.__doc__ is not None
    drawn = _errors.__doc__.split("::", 1)[1]
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in drawn.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        name = line.split()[0]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    public = {
        name for name in retain.__all__
        if isinstance(getattr(retain, name), type) and issubclass(getattr(retain, name), (Exception, Warning))
    }
    assert public <= set(parents) == set(_errors.__all__)
    for name, parent in parents.items():
        cls = getattr(_errors, name)
        assert issubclass(cls, (retain.RetainError, retain.RetainWarning))
        if parent is not None:
            assert getattr(_errors, parent) in cls.__bases__, (name, parent)
