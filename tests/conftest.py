from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import retain
from retain import Storage


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    """Every test runs in its own directory with its own storage."""
    monkeypatch.chdir(tmp_path)
    for name in ("RETAIN_STORAGE", "RETAIN_DURABLE", "RETAIN_INDEX"):
        monkeypatch.delenv(name, raising=False)
    with retain.storage(tmp_path / "storage") as storage:
        yield storage
    close_default_indexes()


def close_default_indexes() -> None:
    """Close the storages' own indexes opened by a test (three descriptors each: a whole run
    would otherwise exceed the 1,024 that `select` takes)."""
    from retain.index import _resolve, _updates

    _updates.flush()
    for index in list(_resolve._defaults.values()):
        close = getattr(index, "close", None)
        if close is not None:
            close()
    _resolve._defaults.clear()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for modules a test writes; they are forgotten afterwards."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if getattr(module, "__file__", None) and str(root) in os.fspath(module.__file__):
            del sys.modules[name]


def write_module(root: Path, dotted: str, source: str) -> Path:
    """Write module `dotted` (packages included) under `root`."""
    parts = dotted.split(".")
    directory = root
    for package in parts[:-1]:
        directory = directory / package
        directory.mkdir(exist_ok=True)
        (directory / "__init__.py").touch()
    path = directory / f"{parts[-1]}.py"
    path.write_text(source)
    return path
