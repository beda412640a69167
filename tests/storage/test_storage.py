"""Local storage (plain and sharded by id prefix) and the in-memory object store: each passes
the storage conformance suite; then the sharded layout's own rules."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

import retain
from retain import Interface, StorageError, get
from retain.storage import LocalStorage, Storage, make_storage
from retain.storage.layout import RECORD_FILE, marker_path
from retain.testing.storage import StorageConformance


class Item(Interface):
    Config = {"i": 0}


class TestLocalStorageConformance(StorageConformance):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return LocalStorage(tmp_path / "conformance")


class TestShardedStorageConformance(StorageConformance):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return LocalStorage(tmp_path / "sharded", shard=2)


class TestMemoryStorageConformance(StorageConformance):
    @pytest.fixture
    def storage(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Storage:
        import fsspec  # noqa: F401 - the test extra installs it: missing is a failure
        monkeypatch.setenv("RETAIN_CACHE_DIR", str(tmp_path / "cache"))
        return make_storage(f"memory://retain-{uuid.uuid4().hex}")


# -- the sharded layout -----------------------------------------------------------------------


def test_sharded_layout_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with retain.storage(LocalStorage(root, shard=2)):
        item = Item({"i": 1}).commit()
    assert (root / item.id[:2] / item.id / RECORD_FILE).is_file()
    assert not (root / item.id).exists()
    assert os.path.isfile(marker_path(str(root)))
    # Every later opening agrees, however it is spelled.
    for spelling in (str(root), f"file://{root}", f"file://{root}?shard=2"):
        storage = make_storage(spelling)
        assert isinstance(storage, LocalStorage) and storage.shard == 2
        assert get(Item, {"i": 1}, storage=spelling).is_committed()
    assert LocalStorage(root).shard == 2
    reloaded = Interface.from_directory(item.local_directory())
    assert reloaded == item and isinstance(reloaded.storage, LocalStorage) and reloaded.storage.shard == 2


def test_sharded_layout_is_agreed(tmp_path: Path) -> None:
    root = tmp_path / "s"
    LocalStorage(root, shard=1)
    with pytest.raises(StorageError, match="created with shard=1"):
        LocalStorage(root, shard=2)
    with pytest.raises(StorageError, match="created with shard=1"):
        LocalStorage(root, shard=0)
    plain = tmp_path / "plain"
    with retain.storage(plain):
        Item({"i": 1}).commit()
    with pytest.raises(StorageError, match="plain layout"):
        LocalStorage(plain, shard=2)
    assert LocalStorage(plain).shard == 0
    for bad in (4, -1, True, "2"):
        with pytest.raises(StorageError, match="shard must be"):
            LocalStorage(tmp_path / "x", shard=bad)  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="shard=1|2|3"):
        make_storage(f"file://{tmp_path}/y?shards=2")
    (tmp_path / "broken" / ".retain").mkdir(parents=True)
    Path(marker_path(str(tmp_path / "broken"))).write_text("garbage")
    with pytest.raises(retain.RecordError, match="not a retain storage marker"):
        LocalStorage(tmp_path / "broken")


def test_sharded_get_is_a_direct_lookup(tmp_path: Path) -> None:
    """`get` reads one record path; listing by prefix reads only the shard it names."""
    storage = LocalStorage(tmp_path / "s", shard=2)
    with retain.storage(storage):
        items = [Item({"i": n}).commit() for n in range(40)]
    assert sorted(storage.iter_ids()) == sorted(i.id for i in items)
    one = items[0].id
    assert storage._parents(one[:3]) == [os.path.join(storage.root, one[:2])]
    assert list(storage.iter_ids(one[:6])) == [one]
    assert sorted(storage.iter_ids(one[0])) == sorted(i.id for i in items if i.id[0] == one[0])
    assert get.by_id(one[:6], storage=storage) == items[0]


def test_index_repairs_from_a_sharded_listing(tmp_path: Path) -> None:
    """The index finds directories copied in by hand, and forgets deleted ones, through the
    storage's own listing (a change inside a shard directory does not touch the root)."""
    storage = LocalStorage(tmp_path / "s", shard=1)
    elsewhere = LocalStorage(tmp_path / "elsewhere", shard=1)
    with retain.storage(storage):
        kept = [Item({"i": n}).commit() for n in range(3)]
        assert len(get.all(Item)) == 3
    with retain.storage(elsewhere), retain.index.updates("off"):
        copied = Item({"i": 99}).commit()
    target = storage.local_directory(copied.id)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copytree(copied.local_directory(), target)
    before = storage.listing_state()
    shutil.rmtree(kept[0].local_directory())
    assert storage.listing_state() != before
    with retain.storage(storage):
        found = set(get.all(Item).ids())
    assert found == {kept[1].id, kept[2].id, copied.id}


def test_components_run_in_a_sharded_storage(tmp_path: Path) -> None:
    from retain.testing.storage import ConformanceRun

    with retain.storage(LocalStorage(tmp_path / "s", shard=3)):
        run = ConformanceRun({"n": 3}).launch()
        assert run.cached() and run.execution.is_finished()
        assert run.local_directory().endswith(os.path.join(run.id[:3], run.id))


def test_object_store_cache_is_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local cache of an object store names its store: opening it as a path means the store."""
    import fsspec  # noqa: F401
    monkeypatch.setenv("RETAIN_CACHE_DIR", str(tmp_path / "cache"))
    url = f"memory://retain-{uuid.uuid4().hex}"
    with retain.storage(url) as storage:
        item = Item({"i": 5}).commit()
    assert make_storage(storage.local_root()) == storage
    with pytest.raises(StorageError, match="local cache of memory://"):
        LocalStorage(storage.local_root())
    assert Interface.from_directory(item.local_directory()).storage == storage


def test_unknown_urls(tmp_path: Path) -> None:
    import fsspec  # noqa: F401
    with pytest.raises(StorageError, match="no fsspec backend"):
        make_storage("nosuchscheme://x/y")
    with pytest.raises(StorageError, match="unknown option 'key'"):
        make_storage("s3://bucket/p?key=secret")
    with pytest.raises(StorageError, match="names no bucket"):
        make_storage("s3://")


def test_missing_extra_says_what_to_install(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys; sys.modules[{name!r}] = None\n"
        "from retain.storage import make_storage\n"
        "try:\n    make_storage({url!r})\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    for name, url, extra in (("fsspec", "memory://x", "retain[fsspec]"), ("s3fs", "s3://bucket/p", "retain[s3]")):
        out = subprocess.run([sys.executable, "-c", code.format(name=name, url=url)], capture_output=True,
                             text=True, check=True, cwd=tmp_path)
        assert f"pip install '{extra}'" in out.stdout, out


def _dead_pid() -> int:
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _leftover(directory: Path, target: str, pid: int, age: float) -> Path:
    """A temporary file as `atomic_write` names it, last written `age` seconds ago."""
    import time

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f".retain-tmp-{target}.{pid}.{os.urandom(5).hex()}"
    path.write_bytes(b"x" * 1000)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_commit_reclaims_what_killed_writers_left(store: Storage, tmp_path: Path) -> None:
    item = Item({"i": 41})
    item.save_file("a.json", 1)
    directory = Path(item.local_directory())
    dead = _dead_pid()
    abandoned = [
        _leftover(directory, "big.npy", dead, 7200),
        _leftover(directory / "deep" / "er", "x.json", dead, 7200),
        _leftover(directory, "interface.json", os.getppid(), 8 * 86400),  # pid reused since
    ]
    kept = [
        _leftover(directory, "fresh.npy", dead, 60),  # a slow writer on another host, perhaps
        _leftover(directory, "busy.npy", os.getpid(), 7200),  # its writer is alive here
    ]
    outside = tmp_path / "outside"
    beyond = _leftover(outside, "y.json", dead, 7200)
    os.symlink(outside, directory / "link")
    item.commit()
    assert [p for p in abandoned if p.exists()] == []
    assert all(p.exists() for p in kept) and beyond.exists()
    assert item.load_file("a.json") == 1 and item.files() == ["a.json", "interface.json"]


def test_rebuild_reclaims_leftovers_of_uncommitted_directories(store: Storage) -> None:
    committed = Item({"i": 42}).commit()
    abandoned = Item({"i": 43})
    abandoned.save_file("a.json", 1)  # then the process was killed before its commit
    dead = _dead_pid()
    leftovers = [
        _leftover(Path(abandoned.local_directory()), "big.npy", dead, 7200),
        _leftover(Path(store.url, ".retain"), "storage-id", dead, 7200),
    ]
    fresh = _leftover(Path(abandoned.local_directory()), "big.npy", dead, 10)
    assert retain.index.rebuild() == 1
    assert [p for p in leftovers if p.exists()] == [] and fresh.exists()
    assert [found.id for found in get.all(Item)] == [committed.id]


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed-file", "temporary-name"])
def test_atomic_write_of_bytes_publishes_whole_files_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    from retain import _fs
    from retain._fs import TEMP_PREFIX, atomic_write

    named: list[str] = []
    original = _fs.temp_path_for
    monkeypatch.setattr(_fs, "temp_path_for", lambda path: named.append(path) or original(path))
    if not unnamed:  # as on a file system without O_TMPFILE (or another platform)
        monkeypatch.setattr(_fs, "_TMPFILE", [])
    path = str(tmp_path / "f.json")
    assert atomic_write(path, b"first", exclusive=True)
    assert not atomic_write(path, b"second", exclusive=True)  # the first writer won
    assert Path(path).read_bytes() == b"first"
    # Exclusive creates name no temporary file where the file system makes unnamed ones.
    assert len(named) == (0 if unnamed else 2)
    assert atomic_write(path, b"third", durable=True)
    assert Path(path).read_bytes() == b"third"
    big = bytes(range(256)) * 40_000  # several writes' worth
    atomic_write(path, big)
    assert Path(path).read_bytes() == big
    with pytest.raises(StorageError, match="could not write"):
        atomic_write(str(tmp_path / "missing" / "f.json"), b"x")
    with pytest.raises(StorageError, match="could not write"):
        atomic_write(str(tmp_path / "missing" / "g.json"), b"x", exclusive=True)
    assert atomic_write(str(tmp_path / "g.json"), b"durable", exclusive=True, durable=True)
    assert (tmp_path / "g.json").read_bytes() == b"durable"
    assert (tmp_path / "g.json").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
