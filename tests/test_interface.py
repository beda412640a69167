"""Interface: commit, reload, get, files, inputs, storage selection, changed defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import retain
from retain import (
    FileMissingError,
    ImmutableError,
    Interface,
    InterfaceNotFoundError,
    RecordError,
    Storage,
    UnsafePathError,
    get,
)


class MnistData(Interface):
    """A dataset of handwritten characters"""

    Config = {"batch_size": 8, "name": "mnist"}

    def version_large(self, factor: float = 2) -> dict[str, int]:
        return {"batch_size": int(self.config.batch_size * factor)}


class Model(Interface):
    Config = {"data": None, "depth": 2, "more": []}


class Other(Interface):
    Config = {"batch_size": 8, "name": "mnist"}


def test_quickstart(store: Storage) -> None:
    mnist = MnistData()
    directory = mnist.local_directory()
    assert directory == os.path.join(store.url, mnist.id[:2], mnist.id)  # a new storage is sharded
    assert not mnist.is_committed() and not os.path.exists(directory)
    assert mnist.commit() is mnist
    assert repr(mnist) == f"MnistData [{mnist.id[:6]}]"
    assert mnist.local_directory() == directory and mnist.is_committed()
    reloaded = Interface.from_directory(directory)
    assert type(reloaded) is MnistData and reloaded == mnist
    found = get(MnistData, {"batch_size": 8})
    assert found == mnist and found.is_committed() and found.created == mnist.created
    large = get(MnistData, "~large(3)")
    assert large.config.batch_size == 24 and not large.is_committed()


def test_instantiation_and_get_share_identity_and_commit_state() -> None:
    direct = MnistData({"batch_size": 4})
    assert direct == get(MnistData, {"batch_size": 4})
    get(MnistData, {"batch_size": 4}).commit()
    assert direct.is_committed()


def test_commit_is_idempotent_and_writes_one_record(store: Storage) -> None:
    first = MnistData().commit()
    record = Path(first.local_directory(), "interface.json").read_bytes()
    second = MnistData().commit()
    assert Path(first.local_directory(), "interface.json").read_bytes() == record
    assert second.created == first.created
    # Beside the interface (in its shard), only the storage's own directory (index, journal).
    assert sorted(p.name for p in Path(store.url).iterdir()) == sorted([first.id[:2], ".retain"])
    assert [p.name for p in Path(store.url, first.id[:2]).iterdir()] == [first.id]


def test_record_is_human_readable_and_complete() -> None:
    mnist = MnistData("~large(3)").commit()
    record = json.loads(Path(mnist.local_directory(), "interface.json").read_text())
    assert record["format"] == "retain.interface" and record["scheme"] == 1
    assert record["id"] == mnist.id and record["kind"] == "Interface"
    assert record["module"] == __name__ and record["class"] == "MnistData"
    assert record["version"] == ["~large(3)"]
    assert record["config"] == {"batch_size": 24, "name": "mnist"}
    assert record["canonical_config"] == {"batch_size": 24}
    assert record["created"].endswith("Z")
    provenance = record["provenance"]
    assert provenance["source_file"] == os.path.abspath(__file__)
    assert len(provenance["source_sha256"]) == 64
    assert {"host", "python", "retain"} <= set(provenance)
    assert mnist.record == record


def test_provenance_records_git_commit_and_dirty_flag(project: Path) -> None:
    from conftest import write_module

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(project), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    write_module(project, "tracked_mod", "from retain import Interface\nclass T(Interface):\n    Config = {'a': 1}\n")
    git("add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x")
    from tracked_mod import T  # type: ignore[import-not-found]

    record = get(T).commit().record
    assert record is not None
    assert record["provenance"]["git"] == {"commit": git("rev-parse", "HEAD"), "dirty": False, "root": str(project)}
    # A dirty tree is seen by a new process (state is read once per process).
    (project / "tracked_mod.py").write_text((project / "tracked_mod.py").read_text() + "# edit\n")
    script = "import retain, tracked_mod; print(retain.get(tracked_mod.T, {'a': 2}).commit().record['provenance']['git']['dirty'])"
    env = {**os.environ, "PYTHONPATH": str(project), "RETAIN_STORAGE": str(project / "s")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_from_directory_errors(tmp_path: Path, store: Storage) -> None:
    with pytest.raises(RecordError, match="does not exist"):
        Interface.from_directory(tmp_path / "nope")
    mnist = MnistData()
    mnist.save_file("a.txt", "x")
    with pytest.raises(RecordError, match="interface.json is missing"):
        Interface.from_directory(mnist.local_directory())
    committed = MnistData({"batch_size": 2}).commit()
    record_path = Path(committed.local_directory(), "interface.json")
    original = record_path.read_bytes()
    for content, match in [
        (b"{not json", "not valid JSON"),
        (b"\x00\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "not a retain record"),
        (b'{"hello": "world"}', "not a retain record"),
        (original.replace(b'"kind"', b'"kinds"'), "'kind' is missing"),
        (original.replace(b'"scheme": 1', b'"scheme": "1"'), "'scheme' should be an integer"),
        (original.replace(b'"canonical_config": {"batch_size": 2}', b'"canonical_config": {"batch_size": 3}'), "hashes to"),
        (original.replace(b'"scheme": 1', b'"scheme": 99'), "upgrade retain"),
    ]:
        record_path.write_bytes(content)
        with pytest.raises(RecordError, match=match):
            Interface.from_directory(committed.local_directory())
        with pytest.raises(RecordError):
            get(MnistData, {"batch_size": 2})
    record_path.write_bytes(original)
    moved = Path(store.url, "0" * 32)
    os.rename(committed.local_directory(), moved)
    with pytest.raises(RecordError, match="lives in directory"):
        Interface.from_directory(moved)


def test_get_checks_the_content_of_the_record_it_finds() -> None:
    """A `get` hit compares the record with the config it resolved instead of hashing it
    again: edits that compare equal as numbers, or change the class, are still caught."""
    committed = MnistData({"batch_size": 2}).commit()
    record_path = Path(committed.local_directory(), "interface.json")
    original = record_path.read_bytes()
    canonical = b'"canonical_config": {"batch_size": 2}'
    assert canonical in original
    for edit in [
        original.replace(canonical, b'"canonical_config": {"batch_size": 2.0}'),
        original.replace(canonical, b'"canonical_config": {"batch_size": true}'),
        original.replace(b'"class": "MnistData"', b'"class": "Other"'),
    ]:
        assert edit != original
        record_path.write_bytes(edit)
        with pytest.raises(RecordError, match="hashes to"):
            get(MnistData, {"batch_size": 2})
    record_path.write_bytes(original)
    assert get(MnistData, {"batch_size": 2}).is_committed()


def test_from_directory_checks_the_class() -> None:
    mnist = MnistData().commit()
    assert MnistData.from_directory(mnist.local_directory()) == mnist
    with pytest.raises(RecordError, match="not a Model"):
        Model.from_directory(mnist.local_directory())


def test_different_classes_with_equal_configs_are_different() -> None:
    assert MnistData() != Other()
    MnistData().commit()
    assert not get(Other).is_committed()


def test_get_never_writes(store: Storage) -> None:
    get(MnistData, {"batch_size": 3})
    get(MnistData, "~large")
    assert not os.path.exists(store.url)


def test_bad_input_writes_nothing(store: Storage) -> None:
    for version in ({"batchsize": 1}, "~nothing", "~large("):
        with pytest.raises(retain.RetainError):
            get(MnistData, version).commit()
    model = Model({"more": [object()]})
    with pytest.raises(retain.IdentityError, match="'more\\[0\\]'"):
        model.commit()
    assert not os.path.exists(store.url)


def test_files_before_and_after_commit() -> None:
    mnist = MnistData({"batch_size": 5})
    path = mnist.save_file("prediction.txt", "a string")
    assert path == os.path.join(mnist.local_directory(), "prediction.txt")
    assert mnist.load_file("prediction.txt") == "a string"
    assert not mnist.is_committed()
    mnist.commit()
    mnist.save_file("results/settings.json", {"neurons": [1, 2]})
    again = get(MnistData, {"batch_size": 5})
    assert again.load_file("prediction.txt") == "a string"
    assert again.load_file("results/settings.json") == {"neurons": [1, 2]}


def test_missing_files() -> None:
    mnist = MnistData()
    with pytest.raises(FileMissingError, match="no file 'x.json'"):
        mnist.load_file("x.json")
    assert mnist.load_file("x.json", default=None) is None
    assert mnist.load_file("x.json", default={"a": 1}) == {"a": 1}


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../x.txt", "leaves"),
        ("a/../../x.txt", "leaves"),
        ("/etc/x.txt", "absolute"),
        ("", "empty"),
        ("./", "empty"),
        ("a\x00b.txt", "NUL"),
        ("x" * 300 + ".txt", "longer than"),
        ("interface.json", "reserved"),
        (".retain-tmp-x.txt", "reserved"),
        (3, "must be strings"),
    ],
)
def test_unsafe_file_names(name: object, match: str, store: Storage, tmp_path: Path) -> None:
    mnist = MnistData()
    with pytest.raises(UnsafePathError, match=match):
        mnist.save_file(name, "x")  # type: ignore[arg-type]
    assert not os.path.exists(store.url)
    assert {p.name for p in tmp_path.iterdir()} == set()


def test_local_directory_parts_and_create() -> None:
    mnist = MnistData()
    path = mnist.local_directory("data", "raw", create=True)
    assert os.path.isdir(path) and path == os.path.join(mnist.local_directory(), "data", "raw")
    with pytest.raises(UnsafePathError):
        mnist.local_directory("..", "x")


def test_interfaces_as_inputs() -> None:
    data = MnistData({"batch_size": 32})
    model = Model({"data": data, "more": [MnistData({"batch_size": 1})]})
    assert model.canonical_config["data"]["$interface"] == data.id
    model.commit()
    assert data.is_committed() and MnistData({"batch_size": 1}).is_committed()
    assert model.record is not None and set(model.record["inputs"]) == {data.id, MnistData({"batch_size": 1}).id}
    reloaded = Interface.from_directory(model.local_directory())
    assert isinstance(reloaded.config.data, MnistData)
    assert reloaded.config.data == data and reloaded.config.data.is_committed()
    assert reloaded.config.more[0].config.batch_size == 1
    assert get(Model, {"data": MnistData({"batch_size": 32}), "more": [MnistData({"batch_size": 1})]}) == model
    assert Model({"data": MnistData({"batch_size": 33})}) != model


def test_committed_interfaces_are_immutable() -> None:
    mnist = get(MnistData).commit()
    with pytest.raises(ImmutableError, match="committed"):
        mnist.version({"batch_size": 3})
    fresh = MnistData()
    with pytest.raises(ImmutableError):
        fresh.version("~large")
    uncommitted = MnistData({"batch_size": 3})
    uncommitted.version("~large")
    assert uncommitted.config.batch_size == 6


def test_get_by_id_and_prefix(store: Storage) -> None:
    committed = [MnistData({"batch_size": n}).commit() for n in range(40)]
    first = committed[0]
    assert get.by_id(first.id) == first
    assert type(get.by_id(first.id[:8])) is MnistData
    assert get.by_id(first.id.upper()[:10]) == first
    prefixes: dict[str, list[str]] = {}
    for item in committed:
        prefixes.setdefault(item.id[0], []).append(item.id)
    shared = next(p for p, ids in prefixes.items() if len(ids) > 1)
    with pytest.raises(InterfaceNotFoundError, match=f"'{shared}' is ambiguous.*{prefixes[shared][0][:6]}"):
        get.by_id(shared)
    with pytest.raises(InterfaceNotFoundError, match="no interface"):
        get.by_id("f" * 32 if not first.id.startswith("f" * 32) else "e" * 32)
    with pytest.raises(InterfaceNotFoundError, match="not an id"):
        get.by_id("xyz")
    MnistData({"batch_size": 1000}).save_file("a.txt", "uncommitted")
    with pytest.raises(InterfaceNotFoundError):
        get.by_id(MnistData({"batch_size": 1000}).id)


def test_storage_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Storage) -> None:
    assert get(MnistData).storage == store
    with retain.storage(tmp_path / "outer"):
        assert get(MnistData).storage.url == str(tmp_path / "outer")
        with retain.storage(tmp_path / "inner"):
            assert get(MnistData).storage.url == str(tmp_path / "inner")
            explicit = get(MnistData, storage=tmp_path / "explicit")
            assert explicit.storage.url == str(tmp_path / "explicit")
        assert get(MnistData).storage.url == str(tmp_path / "outer")


def test_environment_and_default_storage(tmp_path: Path) -> None:
    script = (
        "import retain\n"
        "class A(retain.Interface):\n    Config = {'a': 1}\n"
        "print(A().commit().local_directory())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(str(tmp_path / "storage") + os.sep)
    env["RETAIN_STORAGE"] = str(tmp_path / "from-env")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(str(tmp_path / "from-env") + os.sep)


def test_interface_keeps_the_storage_it_was_created_in(tmp_path: Path) -> None:
    with retain.storage(tmp_path / "elsewhere"):
        mnist = MnistData()
    mnist.commit()
    assert os.path.isdir(tmp_path / "elsewhere" / mnist.id[:2] / mnist.id)


def test_a_changed_default_is_a_new_identity_and_the_old_result_is_found_by_its_value() -> None:
    class Evolving(Interface):
        Config = {"lr": 0.1, "name": "a"}

    committed = get(Evolving, {"lr": 0.5}).commit()
    Evolving.Config = {"lr": 0.1, "name": "b"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fresh = get(Evolving, {"lr": 0.5})
        assert not fresh.is_committed() and fresh != committed
        assert fresh.config.name == "b"
        # The old value, now not a default, still names the stored result.
        found = get(Evolving, {"lr": 0.5, "name": "a"})
        assert found == committed and found.is_committed() and found.config.name == "a"
        fresh.commit()
        assert get(Evolving, {"lr": 0.5}) == fresh != get(Evolving, {"lr": 0.5, "name": "a"})
    finally:
        Evolving.Config = {"lr": 0.1, "name": "a"}
    assert get(Evolving, {"lr": 0.5}) == committed


def test_settings_no_longer_take_changed_defaults() -> None:
    with pytest.raises(TypeError):
        retain.settings(changed_defaults="warn")  # type: ignore[call-arg]


def test_durable_mode_commits_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    with retain.settings(durable=True):
        mnist = MnistData({"batch_size": 9})
        mnist.save_file("x.json", [1])
        mnist.commit()
    assert Interface.from_directory(mnist.local_directory()).load_file("x.json") == [1]
    monkeypatch.setenv("RETAIN_DURABLE", "1")
    assert MnistData({"batch_size": 10}).commit().is_committed()


def test_unwritable_storage_fails_clearly_and_keeps_what_is_stored(tmp_path: Path) -> None:
    with retain.storage(tmp_path / "good"):
        committed = MnistData().commit()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the storage directory should be")
    with retain.storage(blocked):
        with pytest.raises(retain.StorageError, match="could not create directory") as info:
            MnistData().commit()
    assert isinstance(info.value, OSError)
    assert blocked.read_text().startswith("a file")
    with retain.storage(tmp_path / "good"):
        assert get(MnistData) == committed and get(MnistData).is_committed()


def test_commit_without_hard_links(monkeypatch: pytest.MonkeyPatch, store: Storage) -> None:
    """File systems that refuse os.link still commit whole records, once."""
    import errno

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    from retain import _fs

    monkeypatch.setattr(os, "link", refuse)
    # The refusal turns off unnamed creates for the process: for this test only, or later
    # tests of them would find them off.
    monkeypatch.setattr(_fs, "_TMPFILE", list(_fs._TMPFILE))
    first = MnistData({"batch_size": 77}).commit()
    second = MnistData({"batch_size": 77}).commit()
    assert second.created == first.created
    assert sorted(os.listdir(first.local_directory())) == ["interface.json"]
    assert get(MnistData, {"batch_size": 77}).is_committed()


def test_files_of_a_committed_interface_are_not_replaced_silently() -> None:
    mnist = MnistData({"batch_size": 6})
    mnist.save_file("a.json", 1)
    mnist.save_file("a.json", 2)  # before commit: saved freely
    mnist.commit()
    with pytest.raises(ImmutableError, match=r"'a\.json'.*overwrite=True"):
        mnist.save_file("a.json", 3)
    again = get(MnistData, {"batch_size": 6})
    with pytest.raises(ImmutableError, match="overwrite=True"):
        again.save_file("./a.json", 3)
    assert again.load_file("a.json") == 2
    again.save_file("a.json", 4, overwrite=True)
    assert mnist.load_file("a.json") == 4
    mnist.save_file("new/b.json", 1)  # a new file of a committed interface is fine
    with pytest.raises(ImmutableError, match="new/b.json"):
        mnist.save_file("new/b.json", 2)


def test_load_file_never_follows_a_symlink_out_of_the_directory(tmp_path: Path) -> None:
    mnist = MnistData().commit()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, mnist.local_directory("planted.txt"))
    with pytest.raises(UnsafePathError, match="outside"):
        mnist.load_file("planted.txt")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_text("secret")
    os.symlink(outside, mnist.local_directory("sub"))
    with pytest.raises(UnsafePathError, match="outside"):
        mnist.load_file("sub/x.txt")
    # A symlink that stays inside the directory is fine.
    mnist.save_file("real.txt", "inside")
    os.symlink("real.txt", mnist.local_directory("alias.txt"))
    assert mnist.load_file("alias.txt") == "inside"


def test_save_file_through_a_symlink_creates_nothing_outside(tmp_path: Path) -> None:
    mnist = MnistData()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.makedirs(mnist.local_directory())
    os.symlink(outside, mnist.local_directory("sub"))
    with pytest.raises(UnsafePathError, match="outside"):
        mnist.save_file("sub/new/deeper/x.txt", "x")
    assert list(outside.iterdir()) == []
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, mnist.local_directory("planted.txt"))
    with pytest.raises(UnsafePathError, match="outside"):
        mnist.save_file("planted.txt", "overwritten")
    assert secret.read_text() == "secret"


def test_from_directory_says_what_is_wrong_with_the_path(tmp_path: Path, store: Storage) -> None:
    mnist = MnistData().commit()
    with pytest.raises(RecordError, match="NUL"):
        Interface.from_directory(str(tmp_path / "a\x00b"))
    regular = tmp_path / "regular.txt"
    regular.write_text("x")
    with pytest.raises(RecordError, match="is a file, not a directory"):
        Interface.from_directory(regular)
    with pytest.raises(RecordError, match="is a file, not a directory.*" + mnist.id):
        Interface.from_directory(Path(mnist.local_directory(), "interface.json"))
    with pytest.raises(RecordError, match="root of the file system"):
        Interface.from_directory("/")
    with pytest.raises(RecordError, match="is a storage"):
        Interface.from_directory(store.url)
    # A symbolic link to a good record's directory is that record (never "corrupted").
    link = tmp_path / "link"
    os.symlink(mnist.local_directory(), link)
    assert Interface.from_directory(link) == mnist
    assert MnistData.from_directory(str(link) + "/") == mnist
