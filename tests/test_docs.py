"""The front door: every Python block of README.md runs as written in a fresh directory and
prints the ids its comments show; README.md and docs/ refer only to files in the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, dedented body) of every fenced code block."""
    return [(m["info"].strip(), textwrap.dedent(m["body"])) for m in _FENCE.finditer(text)]


PYTHON_BLOCKS = [body for info, body in fenced_blocks(README.read_text()) if info == "python"]


def script_name(block: str) -> str:
    """The file a block is saved as: named by its first line (``# quickstart.py ...``)."""
    first = re.match(r"#\s*([A-Za-z_]\w*\.py)\b", block)
    return first[1] if first else "example.py"


def test_readme_has_python_blocks_and_only_plain_python_fences() -> None:
    infos = [info for info, _ in fenced_blocks(README.read_text())]
    assert len(PYTHON_BLOCKS) >= 3
    odd = [info for info in infos if info.lower().startswith("py") and info != "python"]
    assert not odd, f"README fences that look like Python but are not run by this test: {odd}"
    assert all(info in ("python", "bash") for info in infos), infos


def test_a_fenced_block_parser_sees_indented_blocks() -> None:
    text = "- item:\n  ```python\n  x = 1\n  ```\n\n```bash\nls\n```\n"
    assert fenced_blocks(text) == [("python", "x = 1\n"), ("bash", "ls\n")]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[script_name(b) for b in PYTHON_BLOCKS])
def test_readme_python_block_runs_in_a_fresh_directory(block: str, tmp_path: Path) -> None:
    name = script_name(block)
    (tmp_path / name).write_text(block)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{name} failed:\n{block}\n--- stderr:\n{done.stderr}"
    comments = "\n".join(line.partition("#")[2] for line in block.splitlines() if "#" in line)
    # An id a comment shows (`MnistData [d146e1]`, `storage/d146e12c...`) is what the block prints.
    for shown in re.findall(r"\b[A-Z]\w* \[[0-9a-f]{6}\]", comments):
        assert shown in done.stdout, f"{name}: the comment shows {shown}, the block printed:\n{done.stdout}"
    for prefix in re.findall(r"storage/([0-9a-f]{6,})", comments):
        assert f"storage/{prefix}" in done.stdout, f"{name}: no storage/{prefix} in:\n{done.stdout}"


def test_the_quickstart_shows_the_ids_it_prints() -> None:
    [quickstart] = [b for b in PYTHON_BLOCKS if script_name(b) == "quickstart.py"]
    assert re.search(r"\bMnistData \[[0-9a-f]{6}\]", quickstart)


# -- references stay inside the repository -----------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`\s]+)`")
_TOP = ("docs/", "scripts/", "examples/", "benchmarks/", "tests/", "src/")
_MARKDOWN = {path.name for path in ROOT.rglob("*.md") if ".venv" not in path.parts and ".git" not in path.parts}


def outside_references(text: str, where: Path) -> list[str]:
    """What `text` (a document in directory `where`) refers to that is not a file of the
    repository: relative links and paths that leave it or do not exist, and Markdown files it
    names that the repository lacks."""
    problems = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor
        path = (where / target.split("#")[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            problems.append(f"link {target}")
    for code in _CODE.findall(text):
        code = code.split("::")[0].rstrip(",.;:")
        if code.startswith("../") or "/shared/DESIGN" in code:
            path = (where / code).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                problems.append(f"path {code}")
        elif code.startswith(_TOP) and "*" not in code and "<" not in code:
            if not (ROOT / code).exists():
                problems.append(f"path {code}")
    for name in re.findall(r"\b[\w.-]+\.md\b", text):
        if name not in _MARKDOWN:
            problems.append(f"file {name}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_docs_refer_only_to_files_in_the_repository(doc: Path) -> None:
    assert outside_references(doc.read_text(), doc.parent) == []


def test_a_reference_outside_the_repository_is_caught() -> None:
    text = (
        "See `../shared/DESIGN.md`, [the brief](../../shared/DESIGN.md), `docs/nowhere.md`, "
        "[ok](https://example.org), [here](#identity), [cli](cli.md) and `docs/cli.md`.\n"
    )
    assert outside_references(text, ROOT / "docs") == [
        "link ../../shared/DESIGN.md", "path ../shared/DESIGN.md", "path docs/nowhere.md",
        "file DESIGN.md", "file DESIGN.md", "file nowhere.md",
    ]


# -- scripts/setup installs only when something changed ---------------------------------------


def test_setup_installs_again_only_when_pyproject_or_the_extras_change(tmp_path: Path) -> None:
    """scripts/setup in a copy of the repository's layout whose .venv/bin/python logs what it is
    asked to do instead of installing anything."""
    import shutil

    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup", tmp_path / "scripts" / "setup")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    log = tmp_path / "calls.log"
    (venv_bin / "python").write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    (venv_bin / "python").chmod(0o755)

    def setup(*extras: str, **env: str) -> list[str]:
        subprocess.run(["bash", str(tmp_path / "scripts" / "setup"), *extras], check=True, timeout=60,
                       env={**os.environ, "PYTHON": sys.executable, **env})
        return [line for line in log.read_text().splitlines() if " -e " in line] if log.exists() else []

    assert setup("numpy") == ["-m pip install --quiet -e .[numpy]"]
    assert len(setup("numpy")) == 1  # nothing changed: no install
    assert setup()[-1] == "-m pip install --quiet -e .[test]"  # scripts/test's extra
    assert len(setup("numpy")) == 2 and len(setup()) == 2  # both remembered
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\ndependencies = ['y']\n")
    assert len(setup("numpy")) == 3 and len(setup("numpy")) == 3
    assert len(setup()) == 4  # the test extra too, for the new pyproject.toml
    assert len(setup("numpy", SETUP_FORCE="1")) == 5


def test_demo_installs_what_the_quickstart_uses_and_not_the_test_tools() -> None:
    demo = (ROOT / "scripts" / "demo").read_text()
    assert "scripts/setup numpy" in demo and "test" not in demo.split("scripts/setup", 1)[1].splitlines()[0]
    quickstart = (ROOT / "examples" / "quickstart.py").read_text()
    imports = set(re.findall(r"^\s*(?:import|from) (\w+)", quickstart, re.M))
    assert imports <= {"__future__", "retain", "numpy"}, imports
