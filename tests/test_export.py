"""Moving results between storages and people: `retain.export`, `retain.ingest` (``retain
import``) and `retain.copy`: the same ids on both sides, inputs carried, collisions refused,
twice a no-op, identity baselines carried, hostile archives refused, SIGKILL in the middle of
an import, object stores."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

import retain
from conftest import WORKERS_DIR, id_directories, write_module
from retain import (
    ArchiveError,
    CollisionError,
    Component,
    InterfaceNotFoundError,
    InUseError,
    Interface,
    RecordError,
    Storage,
    UnsafePathError,
    get,
    has,
)
from retain._fs import TEMP_PREFIX
from retain.storage import make_storage
from retain.storage.layout import RECORD_FILE, baseline_name

MODELS = """
from retain import Component, Interface

class Data(Interface):
    Config = {"name": "a", "rows": 10}

class Train(Component):
    Config = {"data": None, "lr": LR, "opt": {"momentum": 0.9}}

    def __call__(self):
        print("training")
        self.save_file("model/weights.txt", "w" * 3000)
        self.save_summary(loss=self.config.lr * 2)
        self.log_metrics({"loss": 0.5})
"""


def write_models(project: Path, lr: float = 0.1) -> Any:
    """Write and import module `models` (again: a new version of the code)."""
    write_module(project, "models", MODELS.replace("LR", repr(lr)))
    sys.modules.pop("models", None)
    import models  # type: ignore[import-not-found]

    return models


def forget_models(project: Path) -> None:
    """The user's code is gone: the module file and the loaded module."""
    (project / "models.py").unlink()
    shutil.rmtree(project / "__pycache__", ignore_errors=True)
    sys.modules.pop("models", None)


def chain(project: Path) -> tuple[Interface, Component]:
    models = write_models(project)
    data = get(models.Data, {"name": "b"})
    data.save_file("rows.txt", "1,2\n3,4\n")
    data.commit()
    train = get(models.Train, {"data": data, "lr": 0.2}).launch()
    return data, train


def files_of(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# -- the round trip -------------------------------------------------------------------------------


def test_export_then_import_keeps_ids_files_and_index_without_the_code(project: Path, store: Storage,
                                                                       tmp_path: Path) -> None:
    data, train = chain(project)
    # An annotation (tags, notes) lives in the interface's directory: it comes along.
    annotations = Path(store.local_directory(train.id)) / ".retain" / "annotations"
    annotations.mkdir(parents=True)
    (annotations / "tags.json").write_text('["best"]')
    # What stays behind: a killed writer's temporary and the heartbeat of a run.
    (Path(store.local_directory(train.id)) / f"{TEMP_PREFIX}x.1.ab").write_text("half")
    (Path(store.local_directory(train.id)) / ".retain.heartbeat-000001.json").write_text("{}")
    forget_models(project)

    archive = tmp_path / "results.tar"
    moved = retain.export([train.id[:8]], archive, with_inputs=True)
    assert [(m.id, m.state, m.qualname) for m in moved] == [(data.id, "exported", "Data"), (train.id, "exported", "Train")]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[0] == "retain-export.json" and names[-1] == f"{train.id}/{RECORD_FILE}"
    assert names.index(f"{data.id}/{RECORD_FILE}") < names.index(f"{train.id}/model/weights.txt")
    assert f"{train.id}/.retain/annotations/tags.json" in names
    assert not any(TEMP_PREFIX in name or "heartbeat" in name for name in names)
    assert f".retain/{baseline_name('models', 'Train', 1)}" in names
    # `tar tf` reads it.
    listed = subprocess.run(["tar", "tf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert f"{data.id}/rows.txt" in listed.split()

    other = tmp_path / "other"
    with retain.storage(other) as target:
        moved = retain.ingest(archive)
        assert [(m.id, m.state) for m in moved] == [(data.id, "imported"), (train.id, "imported")]
        source_files = files_of(Path(store.local_directory(train.id)))
        copied = files_of(Path(target.local_directory(train.id)))
        assert copied == {k: v for k, v in source_files.items() if TEMP_PREFIX not in k and "heartbeat" not in k}
        assert files_of(Path(target.local_directory(data.id))) == files_of(Path(store.local_directory(data.id)))
        # The index follows, from the records alone (the code is gone).
        rows = get.all("models:Train").to_table()
        assert [row["id"] for row in rows] == [train.id] and rows[0]["summary.loss"] == 0.4
        assert sorted(get.all(Interface).ids()) == sorted([data.id, train.id])
        assert retain.verify().ok
        # With the code back, `get` computes the same ids in the new storage.
        models = write_models(project)
        found = get(models.Train, {"data": get(models.Data, {"name": "b"}), "lr": 0.2})
        assert found.is_committed() and found.id == train.id
        assert found.load_file("model/weights.txt") == "w" * 3000 and found.execution.is_finished()
        assert found.launch().load_summary()["loss"] == 0.4  # finished: not run again


def test_importing_twice_is_a_no_op(project: Path, tmp_path: Path) -> None:
    data, train = chain(project)
    archive = tmp_path / "r.tar.gz"
    retain.export([train], archive, with_inputs=True)
    with tarfile.open(archive, "r:gz") as tar:  # compressed by its name
        assert "retain-export.json" in tar.getnames()
    with retain.storage(tmp_path / "other") as target:
        retain.ingest(archive)
        before = files_of(Path(target.local_directory(train.id)))
        again = retain.ingest(archive)
        assert [m.state for m in again] == ["present", "present"]
        assert files_of(Path(target.local_directory(train.id))) == before


def test_an_input_absent_on_the_target_is_named_and_nothing_lands(project: Path, tmp_path: Path) -> None:
    data, train = chain(project)
    archive = tmp_path / "r.tar"
    assert [m.id for m in retain.export([train], archive)] == [train.id]
    with retain.storage(tmp_path / "other") as target:
        with pytest.raises(InterfaceNotFoundError) as info:
            retain.ingest(archive)
        assert f"Train [{train.id}] uses Data [{data.id}]" in str(info.value)
        assert "--with-inputs" in str(info.value)
        assert list(target.iter_directories()) == []
        # With the input there first, the same archive imports.
        retain.copy([data], target, storage=data.storage)
        assert [m.state for m in retain.ingest(archive)] == ["imported"]
        assert target.has_record(train.id)


def test_a_collision_names_the_id_and_what_differs(project: Path, tmp_path: Path) -> None:
    models = write_models(project)
    mine = get(models.Data, {"name": "c"}).commit()
    archive = tmp_path / "r.tar"
    retain.export([mine], archive)
    with retain.storage(tmp_path / "other") as target:
        time.sleep(0.01)
        theirs = get(models.Data, {"name": "c"}).commit()  # the same configuration, committed apart
        other = get(models.Data, {"name": "d"}).commit()
        assert theirs.id == mine.id
        with pytest.raises(CollisionError) as info:
            retain.ingest(archive)
        assert f"Data [{mine.id}]" in str(info.value) and "created" in str(info.value)
        assert target.read_record(mine.id) == theirs.storage.read_record(theirs.id)  # untouched
        assert other.is_committed()


def test_a_record_that_does_not_match_its_id_is_refused(project: Path, tmp_path: Path) -> None:
    models = write_models(project)
    data = get(models.Data, {"name": "c"}).commit()
    archive = tmp_path / "r.tar"
    retain.export([data], archive)
    tampered = tmp_path / "t.tar"
    with tarfile.open(archive) as tar, tarfile.open(tampered, "w") as out:
        for member in tar.getmembers():
            content = tar.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.endswith(RECORD_FILE):
                content = content.replace(b'"rows": 10', b'"rows": 11', 1).replace(b'"name": "c"', b'"name": "x"')
                member.size = len(content)
            out.addfile(member, io.BytesIO(content))
    with retain.storage(tmp_path / "other") as target:
        with pytest.raises(RecordError):
            retain.ingest(tampered)
        assert not target.has_record(data.id)


# -- identity baselines ------------------------------------------------------------------------------


def test_baselines_come_along_when_the_target_has_none(project: Path, tmp_path: Path) -> None:
    models = write_models(project, lr=0.1)
    data = get(models.Data).commit()
    first = get(models.Train, {"data": data}).commit()  # lr at its baseline 0.1: left out of the id
    archive = tmp_path / "r.tar"
    retain.export([first], archive, with_inputs=True)
    with retain.storage(tmp_path / "other"):
        retain.ingest(archive)
        # Today's default is 0.3, but the imported baseline (0.1) decides the ids here too.
        models = write_models(project, lr=0.3)
        assert get(models.Train, {"data": get(models.Data), "lr": 0.1}).id == first.id
        new = get(models.Train, {"data": get(models.Data)})
        assert new.id != first.id and not new.is_committed()


def test_different_baselines_for_a_key_are_a_collision(project: Path, tmp_path: Path) -> None:
    models = write_models(project, lr=0.1)
    data = get(models.Data).commit()
    first = get(models.Train, {"data": data, "lr": 0.5}).commit()
    archive = tmp_path / "r.tar"
    retain.export([first], archive, with_inputs=True)
    with retain.storage(tmp_path / "other") as target:
        models = write_models(project, lr=0.2)  # another default when this storage first saw it
        get(models.Train, {"data": get(models.Data, {"name": "q"}).commit()}).commit()
        with pytest.raises(CollisionError) as info:
            retain.ingest(archive)
        message = str(info.value)
        assert "models:Train" in message and "'lr'" in message and "0.1" in message and "0.2" in message
        assert not target.has_record(first.id)


def test_keys_the_target_lacks_are_added_to_its_baselines(project: Path, tmp_path: Path) -> None:
    models = write_models(project)
    data = get(models.Data).commit()
    other = tmp_path / "other"
    # The target knows Data without `rows` (an older version of the class).
    write_module(project, "models", MODELS.replace("LR", "0.1").replace(', "rows": 10', ""))
    sys.modules.pop("models", None)
    import models as older  # type: ignore[import-not-found]

    with retain.storage(other):
        get(older.Data, {"name": "z"}).commit()
    retain.copy([data], other)
    with retain.storage(other) as target:
        models = write_models(project)
        found = get(models.Data)
        assert found.id == data.id and found.is_committed()
        assert get(models.Data, {"name": "z"}).is_committed()  # the older result is still found
        assert target.read_meta(baseline_name("models", "Data", 2)) is not None


# -- hostile archives ----------------------------------------------------------------------------


def _archive_with(tmp_path: Path, good: Path, extra: tarfile.TarInfo, content: bytes = b"x") -> Path:
    bad = tmp_path / f"bad-{extra.name.replace('/', '_')[:20]}-{extra.type!r}.tar"
    with tarfile.open(good) as tar, tarfile.open(bad, "w") as out:
        for member in tar.getmembers():
            out.addfile(member, tar.extractfile(member))
        extra.size = len(content) if extra.isfile() else 0
        out.addfile(extra, io.BytesIO(content) if extra.isfile() else None)
    return bad


@pytest.mark.parametrize("name, kind", [
    ("../escaped.txt", tarfile.REGTYPE),
    ("/tmp/absolute.txt", tarfile.REGTYPE),
    ("ID/../../escaped.txt", tarfile.REGTYPE),
    ("ID/link", tarfile.SYMTYPE),
    ("ID/hard", tarfile.LNKTYPE),
    ("ID/fifo", tarfile.FIFOTYPE),
    ("elsewhere/file.txt", tarfile.REGTYPE),
])
def test_a_malicious_archive_writes_nothing(project: Path, tmp_path: Path, name: str, kind: bytes) -> None:
    models = write_models(project)
    data = get(models.Data).commit()
    good = tmp_path / "good.tar"
    retain.export([data], good)
    extra = tarfile.TarInfo(name.replace("ID", data.id))
    extra.type = kind
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        extra.linkname = "/etc/passwd"
    bad = _archive_with(tmp_path, good, extra)
    target_root = tmp_path / "deep" / "other"
    with retain.storage(target_root) as target:
        with pytest.raises(UnsafePathError) as info:
            retain.ingest(bad)
        assert "nothing was imported" in str(info.value)
        assert not target.has_record(data.id) and not (target_root / data.id).exists()
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "deep" / "escaped.txt").exists()
    assert not Path("/tmp/absolute.txt").exists()


def test_what_is_not_an_archive_is_said_so(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(ArchiveError, match="not a retain archive"):
        retain.ingest(tmp_path / "plain.txt")
    with tarfile.open(tmp_path / "other.tar", "w") as tar:
        info = tarfile.TarInfo("0123456789abcdef0123456789abcdef/file.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArchiveError, match="retain-export.json"):
        retain.ingest(tmp_path / "other.tar")
    with pytest.raises(ArchiveError, match="no archive"):
        retain.ingest(tmp_path / "missing.tar")


def test_a_symbolic_link_in_the_targets_directory_is_not_followed(project: Path, tmp_path: Path) -> None:
    models = write_models(project)
    data = get(models.Data)
    data.save_file("sub/file.txt", "inside")
    data.commit()
    archive = tmp_path / "r.tar"
    retain.export([data], archive)
    outside = tmp_path / "outside"
    outside.mkdir()
    with retain.storage(tmp_path / "other") as target:
        planted = Path(target.local_directory(data.id))
        planted.mkdir(parents=True)
        (planted / "sub").symlink_to(outside)  # an uncommitted directory with a planted link
        with pytest.raises(UnsafePathError):
            retain.ingest(archive)
        assert list(outside.iterdir()) == [] and not target.has_record(data.id)


# -- running components, unknown ids ----------------------------------------------------------------


class Exporting(Component):
    Config: ClassVar[Any] = {"n": 1}
    seen: ClassVar[list[str]] = []

    def __call__(self) -> None:
        try:
            retain.export([self.id], "self.tar")
        except InUseError as exc:
            Exporting.seen.append(str(exc))


def test_a_running_component_is_not_moved(store: Storage) -> None:
    Exporting.seen.clear()
    run = Exporting({"n": 1}).launch()
    assert len(Exporting.seen) == 1 and f"Exporting [{run.id}] is running" in Exporting.seen[0]
    assert not Path("self.tar").exists()
    assert [m.state for m in retain.export([run.id], "self.tar")] == ["exported"]  # finished: it moves


def test_unknown_and_uncommitted_are_refused(store: Storage, tmp_path: Path) -> None:
    with pytest.raises(InterfaceNotFoundError, match="matches nothing"):
        retain.export(["abcdef"], tmp_path / "r.tar")
    with pytest.raises(InterfaceNotFoundError, match="not committed"):
        retain.export([Exporting({"n": 2})], tmp_path / "r.tar")
    assert not (tmp_path / "r.tar").exists()


# -- other storages -------------------------------------------------------------------------------


def test_copy_into_a_sharded_storage_and_back(project: Path, tmp_path: Path, store: Storage) -> None:
    data, train = chain(project)
    sharded = f"file://{tmp_path / 'sharded'}?shard=2"
    moved = retain.copy([train], sharded, with_inputs=True)
    assert [m.state for m in moved] == ["imported", "imported"]
    target = make_storage(sharded)
    assert Path(target.local_directory(train.id)).parent.name == train.id[:2]
    with retain.storage(target):
        assert get.all(Interface).ids() == [train.id, data.id] or sorted(get.all(Interface).ids()) == sorted([train.id, data.id])
    assert [m.state for m in retain.copy([train], sharded, with_inputs=True)] == ["present", "present"]
    with pytest.raises(retain.StorageError, match="storage the results are in"):
        retain.copy([train], store)


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_object_store_both_ways(kind: str, object_store: Any, project: Path, tmp_path: Path, store: Storage) -> None:
    data, train = chain(project)
    remote = object_store(kind)
    moved = retain.copy([train], remote, with_inputs=True)
    assert [m.state for m in moved] == ["imported", "imported"]
    assert remote.has_record(train.id) and remote.has_record(data.id)
    assert remote.read_file(train.id, "model/weights.txt") == b"w" * 3000
    assert remote.read_meta(baseline_name("models", "Train", 1)) is not None
    assert ".retain.finished.json" in remote.stored_files(train.id)
    forget_models(project)
    # And back, through an archive written from the object store, into a new local storage.
    archive = tmp_path / "from-remote.tar"
    for id in (data.id, train.id):  # nothing cached: the files come from the store
        shutil.rmtree(remote.local_directory(id))
    assert [m.id for m in retain.export([train.id], archive, with_inputs=True, storage=remote)] == [data.id, train.id]
    with retain.storage(tmp_path / "back") as back:
        retain.ingest(archive)
        assert files_of(Path(back.local_directory(train.id))) == files_of(Path(store.local_directory(train.id)))
        assert retain.verify().ok
    with retain.storage(remote):
        assert sorted(get.all(Interface).ids()) == sorted([data.id, train.id])
        assert [m.state for m in retain.ingest(archive)] == ["present", "present"]


# -- a kill in the middle of an import ------------------------------------------------------------

RESULTS = 120
FILES = ("a.bin", "b/c.bin", "d.bin")
KILLS = 6

IMPORTER = """
import sys
import retain
print("start", flush=True)
with retain.storage(sys.argv[2]):
    retain.ingest(sys.argv[1])
print("done", flush=True)
"""


class Bulk(Interface):
    Config: ClassVar[Any] = {"n": 0}


def test_random_kills_during_an_import(tmp_path: Path, store: Storage) -> None:
    """A worker imports a big archive and is killed at random times, again and again: each id is
    whole (record and every file) or has no record; importing again completes it, and `verify`
    finds no damage."""
    rng = random.Random(5)
    blob = os.urandom(100_000)
    expected: dict[str, dict[str, bytes]] = {}
    for n in range(RESULTS):
        item = Bulk({"n": n})
        for index, name in enumerate(FILES):  # written as a user's own code would, under local_directory()
            path = Path(item.local_directory()) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob[index:] + str(n).encode())
        item.commit()
        expected[item.id] = files_of(Path(store.local_directory(item.id)))
    archive = tmp_path / "big.tar"
    retain.export(list(expected), archive)
    target = tmp_path / "target"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([WORKERS_DIR, os.environ.get("PYTHONPATH", "")])}

    def start(into: Path) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen([sys.executable, "-c", IMPORTER, str(archive), str(into)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert worker.stdout is not None and worker.stdout.readline() == b"start\n"
        return worker

    # The kills land within the time a whole import takes on this machine, measured first.
    probe = start(tmp_path / "probe")
    began = time.monotonic()  # from "start": the interpreter and `import retain` are not the import
    assert probe.wait() == 0
    whole = time.monotonic() - began
    partial = 0
    left = RESULTS
    for _ in range(KILLS):
        if not left:
            break  # a kill after the import ended tests nothing more
        worker = start(target)
        # Within the time what is left takes: a resumed import skips what is there already.
        time.sleep(whole * left / RESULTS * (0.1 + rng.random() * 0.4))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        directories = id_directories(target)
        committed = {id for id, directory in directories.items() if (directory / RECORD_FILE).exists()}
        for id in committed:
            found = {k: v for k, v in files_of(directories[id]).items() if TEMP_PREFIX not in k}
            assert found == expected[id], id
        partial += 0 < len(committed) < RESULTS
        left = RESULTS - len(committed)
    assert partial, "no kill landed in the middle of an import: make the archive bigger"
    with retain.storage(target):
        moved = retain.ingest(archive)
        assert {m.id for m in moved} == set(expected)
        directories = id_directories(target)
        for id, files in expected.items():
            assert {k: v for k, v in files_of(directories[id]).items() if TEMP_PREFIX not in k} == files
        assert sorted(get.all(Interface).ids()) == sorted(expected)
        report = retain.verify()
        assert {p.kind for p in report.problems} <= {"temporary"}, report.problems
        assert [m.state for m in retain.ingest(archive)] == ["present"] * RESULTS


def test_the_manifest_says_what_the_archive_holds(project: Path, tmp_path: Path) -> None:
    data, train = chain(project)
    archive = tmp_path / "r.tar"
    retain.export([train], archive, with_inputs=True)
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("retain-export.json").read())  # type: ignore[union-attr]
    assert manifest["format"] == "retain.export" and manifest["ids"] == [data.id, train.id]


def test_an_archive_unpacked_and_packed_again_with_tar_imports(project: Path, tmp_path: Path) -> None:
    data, train = chain(project)
    archive = tmp_path / "r.tar"
    retain.export([train], archive, with_inputs=True)
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "xf", str(archive), "-C", str(unpacked)], check=True)
    again = tmp_path / "again.tar.gz"
    subprocess.run(["tar", "czf", str(again), "-C", str(unpacked), "."], check=True)  # "./" and directory entries
    with retain.storage(tmp_path / "other") as target:
        assert [m.state for m in retain.ingest(again)] == ["imported", "imported"]
        assert files_of(Path(target.local_directory(train.id))) == files_of(unpacked / train.id)


def test_a_file_where_the_record_stands_is_refused(project: Path, tmp_path: Path) -> None:
    models = write_models(project)
    data = get(models.Data).commit()
    good = tmp_path / "good.tar"
    retain.export([data], good)
    extra = tarfile.TarInfo(f"{data.id}/{RECORD_FILE}/inside.txt")
    with pytest.raises(ArchiveError, match="where the record is"):
        retain.ingest(_archive_with(tmp_path, good, extra))


def test_a_link_out_of_a_results_directory_is_not_exported(project: Path, tmp_path: Path) -> None:
    models = write_models(project)
    data = get(models.Data)
    data.save_file("inside.txt", "mine")
    data.commit()
    secret = tmp_path / "secret.txt"
    secret.write_text("not the result's")
    directory = Path(data.local_directory())
    (directory / "alias.txt").symlink_to(directory / "inside.txt")  # inside: exported as the file
    assert [m.state for m in retain.export([data], tmp_path / "ok.tar")] == ["exported"]
    with tarfile.open(tmp_path / "ok.tar") as tar:
        assert tar.extractfile(f"{data.id}/alias.txt").read() == b"mine"  # type: ignore[union-attr]
    (directory / "leak.txt").symlink_to(secret)
    with pytest.raises(UnsafePathError, match="outside the result's directory"):
        retain.export([data], tmp_path / "leak.tar")
    assert not (tmp_path / "leak.tar").exists()


LEGACY = Path(__file__).parent / "data" / "legacy_storage"


def test_a_storage_of_the_previous_release_both_ways(project: Path, tmp_path: Path) -> None:
    """A storage without baseline files (an earlier release): its results carry the baselines
    its records imply, and results imported into it leave its own ids as they were."""
    legacy = tmp_path / "legacy"
    shutil.copytree(LEGACY / "storage", legacy)
    shutil.copy(LEGACY / "legacy_train.py", project / "legacy_train.py")
    expected = json.loads((LEGACY / "ids.json").read_text())
    archive = tmp_path / "legacy.tar"
    with retain.storage(legacy):
        retain.export(list(expected.values()), archive)
    assert not (legacy / ".retain" / "baselines").exists()  # exporting writes nothing there
    from legacy_train import Train  # type: ignore[import-not-found]

    with retain.storage(tmp_path / "fresh"):
        retain.ingest(archive)
        assert get(Train).id == expected["default"] and get(Train).is_committed()
        assert get(Train, {"holdout": 0.3}).id == expected["holdout"]
    # Into the earlier release's storage: its own results keep their ids.
    models = write_models(project)
    other = get(models.Data, {"name": "new"}).commit()
    retain.export([other], tmp_path / "new.tar")
    with retain.storage(legacy):
        assert [m.state for m in retain.ingest(tmp_path / "new.tar")] == ["imported"]
        assert get(models.Data, {"name": "new"}).is_committed()
        for name, values in (("default", {}), ("holdout", {"holdout": 0.3}), ("deep", {"model.depth": 4})):
            assert get(Train, values).id == expected[name] and get(Train, values).is_committed(), name
        assert (legacy / ".retain" / "baselines" / "ready.json").is_file()


S3_COPIER = """
import sys
import retain
from retain.storage import make_storage
target = make_storage(sys.argv[2])
list(target.iter_ids())  # the store's libraries loaded and connected: the copy starts now
print("start", flush=True)
with retain.storage(sys.argv[1]):
    retain.copy(sys.argv[3].split(","), target)
print("done", flush=True)
"""


def test_random_kills_during_a_copy_to_s3(object_store: Any, tmp_path: Path, store: Storage) -> None:
    """A worker copies results with files into S3 and is killed at random times: each id is
    whole in the store or has no record; copying again completes it."""
    remote = object_store("s3")
    rng = random.Random(7)
    blob = os.urandom(60_000)
    expected: dict[str, bytes] = {}
    for n in range(40):
        item = Bulk({"n": n})
        path = Path(item.local_directory()) / "a.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob + str(n).encode())
        item.commit()
        expected[item.id] = path.read_bytes()
    ids = ",".join(expected)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([WORKERS_DIR, os.environ.get("PYTHONPATH", "")])}
    partial = 0
    for _ in range(3):
        before = len(list(remote.iter_ids()))
        worker = subprocess.Popen([sys.executable, "-c", S3_COPIER, str(store.url), remote.url, ids],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert worker.stdout is not None and worker.stdout.readline() == b"start\n"
        deadline = time.monotonic() + 60
        while len(list(remote.iter_ids())) <= before and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # until the copy lands its first result
        time.sleep(rng.random() * 0.4)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        committed = list(remote.iter_ids())
        partial += 0 < len(committed) < len(expected)
        for id in committed:
            assert remote.read_file(id, "a.bin") == expected[id], id
    assert partial, "no kill landed in the middle of a copy"
    moved = retain.copy(list(expected), remote)
    assert {m.id for m in moved} == set(expected)
    assert sorted(remote.iter_ids()) == sorted(expected)
    for id, content in expected.items():
        assert remote.read_file(id, "a.bin") == content
    with retain.storage(remote):
        assert sorted(get.all(Interface).ids()) == sorted(expected)
        report = retain.verify()
        assert report.ok, report.problems


def test_the_order_asked_is_kept_among_independent_results(project: Path, tmp_path: Path) -> None:
    models = write_models(project)
    made = [get(models.Data, {"name": name}).commit() for name in ("x", "y", "z")]
    order = [made[2], made[0], made[1]]
    assert [m.id for m in retain.export(order, tmp_path / "r.tar")] == [item.id for item in order]


# -- tags and notes come along ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_tags_and_notes_come_along_and_are_indexed(kind: str, object_store: Any, project: Path, tmp_path: Path, store: Storage) -> None:
    data, train = chain(project)
    train.tag("best", "v1")
    train.note("the one to cite")
    target = make_storage(tmp_path / "other") if kind == "local" else object_store(kind)
    retain.copy([train], target, with_inputs=True)
    with retain.storage(target):
        assert get.all(Interface, where={"tags": has("best")}).ids() == [train.id]
        moved = get.by_id(train.id)
        assert moved.tags == frozenset({"best", "v1"})
        assert moved.notes[-1].text == "the one to cite"
        retain.index.rebuild()  # another machine's index: the events are found again
        assert get.all(Interface, where={"tags": has("v1")}).ids() == [train.id]
