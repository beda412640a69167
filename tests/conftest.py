from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import retain
from retain import Storage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Modules that tests start in other processes (`python -m component_worker`) or import: they are
# on pytest's `pythonpath` (pyproject.toml); subprocesses get this directory on PYTHONPATH.
WORKERS_DIR = os.path.join(ROOT, "tests", "workers")
S3_SCRIPT = os.path.join(ROOT, "scripts", "services", "s3.sh")


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


def run_cli(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    """``retain *words`` in this process: its exit code, stdout and stderr."""
    from retain.cli import main

    code = main(list(words))
    out, err = capsys.readouterr()
    return code, out, err


CHAIN_MODELS = """
from retain import Interface

class Data(Interface):
    Config = {"name": "a"}

class Model(Interface):
    Config = {"data": None, "lr": 0.1}
"""


@pytest.fixture
def chain(project: Path) -> tuple[retain.Interface, retain.Interface]:
    """A committed `models.Data` (with a file) and a committed `models.Model` that uses it."""
    write_module(project, "models", CHAIN_MODELS)
    import models  # type: ignore[import-not-found]

    data = retain.get(models.Data, {"name": "a"})
    data.save_file("rows.txt", "x" * 2000)
    data.commit()
    return data, retain.get(models.Model, {"data": data}).commit()


def id_directories(root: str | os.PathLike[str]) -> dict[str, Path]:
    """The interface directories (committed or not) of the local storage at `root`, by id, in
    either layout (`<root>/<id>` or `<root>/<id[:n]>/<id>`), read from the disk itself: what a
    test that checks the disk behind retain's back lists."""
    from retain.identity import is_id

    found: dict[str, Path] = {}
    base = Path(root)
    if not base.is_dir():
        return found
    for entry in base.iterdir():
        if is_id(entry.name):
            found[entry.name] = entry
        elif 0 < len(entry.name) <= 3 and entry.is_dir() and not entry.name.startswith("."):
            found.update((inner.name, inner) for inner in entry.iterdir()
                         if is_id(inner.name) and inner.name.startswith(entry.name))
    return found


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


# -- the S3 test server (tests/storage/test_storage_s3.py, tests/test_baselines.py) --------------

NAMES = ("RETAIN_TEST_S3_ENDPOINT", "RETAIN_TEST_S3_BUCKET", "RETAIN_TEST_S3_KEY", "RETAIN_TEST_S3_SECRET")


#: The prefixes this session's tests made in the test bucket (`new_url`), removed at its end: a
#: server that outlives many runs (a developer's) would otherwise fill its volumes.
_S3_PREFIXES: list[str] = []


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """The test server's endpoint, bucket and credentials (starting it if needed); what the
    session's tests wrote there is removed after them."""
    found = {name: os.environ.get(name, "") for name in NAMES}
    if not all(found.values()):
        try:
            done = subprocess.run(["bash", S3_SCRIPT], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"the S3 test server did not start ({S3_SCRIPT}): {exc}")
        if done.returncode != 0:
            pytest.fail(f"the S3 test server did not start: {S3_SCRIPT} failed:\n{done.stderr}")
        for line in done.stdout.splitlines():
            name, _, value = line.partition("=")
            if name in NAMES:
                found[name] = value
    endpoint = found["RETAIN_TEST_S3_ENDPOINT"]
    host, port = endpoint.split("://", 1)[1].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"no S3 test server answers at {endpoint} ({exc}); run {S3_SCRIPT}")
    yield found
    if _S3_PREFIXES:
        _remove_prefixes(found, _S3_PREFIXES)


def _remove_prefixes(server: dict[str, str], prefixes: list[str]) -> None:
    import warnings

    import s3fs

    fs = s3fs.S3FileSystem(
        key=server["RETAIN_TEST_S3_KEY"], secret=server["RETAIN_TEST_S3_SECRET"],
        endpoint_url=server["RETAIN_TEST_S3_ENDPOINT"], skip_instance_cache=True,
    )
    bucket = server["RETAIN_TEST_S3_BUCKET"]
    try:
        found = [f"{bucket}/{prefix}" for prefix in prefixes if fs.exists(f"{bucket}/{prefix}")]
        if found:
            fs.rm(found, recursive=True)
    except Exception as exc:  # the tests passed or failed already: a warning, not an error
        warnings.warn(f"could not remove the test prefixes from {server['RETAIN_TEST_S3_ENDPOINT']}: {exc}")
    del prefixes[:]


@pytest.fixture
def s3_env(s3_server: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["RETAIN_TEST_S3_KEY"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["RETAIN_TEST_S3_SECRET"])
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RETAIN_CACHE_DIR", str(tmp_path / "cache"))
    return s3_server


def new_url(server: dict[str, str]) -> str:
    """A fresh prefix in the test bucket: every test has an empty storage (removed at the end
    of the session)."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    _S3_PREFIXES.append(prefix)
    return f"s3://{server['RETAIN_TEST_S3_BUCKET']}/{prefix}?endpoint_url={server['RETAIN_TEST_S3_ENDPOINT']}"


@pytest.fixture
def object_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``object_store(kind)``: a fresh, empty object store, ``"memory"`` or ``"s3"`` (the test
    server), with its local cache in the test's directory."""
    from retain.storage import make_storage

    def make(kind: str) -> Storage:
        monkeypatch.setenv("RETAIN_CACHE_DIR", str(tmp_path / "cache"))
        if kind == "memory":
            return make_storage(f"memory://retain-{uuid.uuid4().hex[:8]}")
        return make_storage(new_url(request.getfixturevalue("s3_env")))

    return make
