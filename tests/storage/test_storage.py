"""Local storage (sharded by id prefix, the default, and plain) and the in-memory object store:
each passes the storage conformance suite; then the layouts' own rules."""

from __future__ import annotations

import json
import os
import re
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
        return LocalStorage(tmp_path / "conformance")  # a new storage: sharded


class TestPlainStorageConformance(StorageConformance):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return LocalStorage(tmp_path / "plain", shard=0)


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
    LocalStorage(root, shard=1).prepare_directory(ITEM_ID)  # settles the layout
    with pytest.raises(StorageError, match="created with shard=1"):
        LocalStorage(root, shard=2)
    with pytest.raises(StorageError, match="created with shard=1"):
        LocalStorage(root, shard=0)
    plain = tmp_path / "plain"
    _plain_storage(plain)
    with pytest.raises(StorageError, match="plain layout"):
        LocalStorage(plain, shard=2)
    assert LocalStorage(plain).shard == 0
    for bad in (4, -1, True, "2"):
        with pytest.raises(StorageError, match="shard must be"):
            LocalStorage(tmp_path / "x", shard=bad)  # type: ignore[arg-type]
    with pytest.raises(StorageError, match=re.escape("shard=0|1|2|3")):
        make_storage(f"file://{tmp_path}/y?shards=2")
    (tmp_path / "broken" / ".retain").mkdir(parents=True)
    Path(marker_path(str(tmp_path / "broken"))).write_text("garbage")
    with pytest.raises(retain.RecordError, match="not a retain storage marker"):
        LocalStorage(tmp_path / "broken")


ITEM_ID = "29f0" + "0" * 28


def _plain_storage(root: Path, count: int = 3) -> list[Item]:
    """A storage as retain wrote them before sharding was the default: plain, no marker."""
    with retain.storage(LocalStorage(root, shard=0)):
        items = [Item({"i": n}).commit() for n in range(count)]
    os.unlink(marker_path(str(root)))
    for item in items:
        assert (root / item.id / RECORD_FILE).is_file()
    return items


def test_new_storage_is_sharded_from_its_first_commit(tmp_path: Path) -> None:
    root = tmp_path / "new"
    storage = LocalStorage(root)
    assert storage.shard == 2
    # Reads of an empty storage create nothing, not even the storage directory.
    with retain.storage(storage):
        with pytest.raises(retain.InterfaceNotFoundError):
            get.by_id(ITEM_ID)
        assert not get(Item, {"i": 1}).is_committed()
        assert len(get.all(Item)) == 0
    assert list(storage.iter_ids()) == [] and storage.read_file(ITEM_ID, "a") is None
    assert not os.path.exists(marker_path(str(root)))
    with retain.storage(storage):
        item = Item({"i": 1}).commit()
    assert json.loads(Path(marker_path(str(root))).read_text()) == {"format": "retain.storage", "shard": 2}
    assert (root / item.id[:2] / item.id / RECORD_FILE).is_file()
    assert item.local_directory() == str(root / item.id[:2] / item.id)
    assert LocalStorage(root).shard == 2 and make_storage(f"file://{root}").shard == 2
    assert Interface.from_directory(item.local_directory()) == item
    with pytest.raises(retain.RecordError, match="shard directory"):
        Interface.from_directory(root / item.id[:2])


def test_files_saved_before_the_first_commit_settle_the_layout(tmp_path: Path) -> None:
    """The marker is written before the first interface directory, whoever creates it."""
    root = tmp_path / "s"
    with retain.storage(LocalStorage(root)):
        item = Item({"i": 2})
        assert item.local_directory() == str(root / item.id[:2] / item.id)  # a path: nothing written
        assert not root.exists()
        item.save_file("early.json", {"a": 1})
        assert json.loads(Path(marker_path(str(root))).read_text())["shard"] == 2
        # A process that opens it now follows the marker, not its own default.
        assert LocalStorage(root).shard == 2
        item.commit()
    assert get(Item, {"i": 2}, storage=root).load_file("early.json") == {"a": 1}
    other = tmp_path / "t"
    with retain.storage(LocalStorage(other)):
        Item({"i": 3}).local_directory("sub", create=True)
    assert json.loads(Path(marker_path(str(other))).read_text())["shard"] == 2
    # A directory made by hand before any marker is followed, whatever its width.
    lost = tmp_path / "lost-marker"
    os.makedirs(lost / ITEM_ID[:3] / ITEM_ID)
    assert LocalStorage(lost).prepare_directory(ITEM_ID) == str(lost / ITEM_ID[:3] / ITEM_ID)
    assert json.loads(Path(marker_path(str(lost))).read_text())["shard"] == 3
    os.unlink(marker_path(str(lost)))
    with pytest.raises(StorageError, match=r"sharded layout \(shard=3\) \(e.g. 29f/29f0"):
        LocalStorage(lost, shard=0).prepare_directory(ITEM_ID)


def test_a_new_storage_follows_the_layout_another_process_chose(tmp_path: Path) -> None:
    root = tmp_path / "s"
    default = LocalStorage(root)  # undecided: 2 unless the disk says otherwise
    plain = LocalStorage(root, shard=0)
    with retain.storage(plain):
        first = Item({"i": 1}).commit()
    assert (root / first.id / RECORD_FILE).is_file()
    assert default.shard == 0 and default.local_directory(first.id) == str(root / first.id)
    with retain.storage(default):
        second = Item({"i": 2}).commit()
        assert sorted(get.all(Item).ids()) == sorted([first.id, second.id])
    assert (root / second.id / RECORD_FILE).is_file()
    # An explicit layout that lost the race says so.
    other = tmp_path / "t"
    sharded = LocalStorage(other, shard=3)
    LocalStorage(other).prepare_directory(ITEM_ID)
    with pytest.raises(StorageError, match="just created with shard=2 by another process"):
        sharded.prepare_directory(ITEM_ID)


def test_explicit_plain_layout_is_recorded(tmp_path: Path) -> None:
    for name, spelling in (("a", "{root}"), ("b", "file://{root}?shard=0")):
        root = tmp_path / name
        with retain.storage(make_storage(spelling.format(root=root)) if name == "b" else LocalStorage(root, shard=0)):
            assert not root.exists()
            item = Item({"i": 1}).commit()
        assert json.loads(Path(marker_path(str(root))).read_text())["shard"] == 0
        assert (root / item.id / RECORD_FILE).is_file()
        # Later default opens stay plain: even once every interface is gone.
        item.delete()
        assert LocalStorage(root).shard == 0
        with retain.storage(LocalStorage(root)):
            again = Item({"i": 3}).commit()
        assert (root / again.id / RECORD_FILE).is_file()


def test_existing_plain_storage_keeps_working(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    items = _plain_storage(root)
    storage = LocalStorage(root)
    assert storage.shard == 0 and repr(storage) == f"LocalStorage({str(root)!r})"
    with retain.storage(root):
        assert get(Item, {"i": 0}).is_committed()
        assert sorted(get.all(Item).ids()) == sorted(i.id for i in items)  # the index syncs
        new = Item({"i": 10}).commit()
        assert (root / new.id / RECORD_FILE).is_file() and not (root / new.id[:2]).exists()
        assert new.id in get.all(Item).ids()
        assert retain.index.rebuild() == 4
        assert retain.verify().ok
        archive = tmp_path / "a.tar"
        retain.export([i.id for i in items], archive)
        retain.gc(older_than=0, status="finished,failed", dry_run=True)
        Item({"i": 0}).delete()
        assert not (root / items[0].id).exists()
        assert sorted(m.state for m in retain.ingest(archive)) == ["imported", "present", "present"]
        assert (root / items[0].id / RECORD_FILE).is_file()
    # Its first write recorded the layout it has.
    assert json.loads(Path(marker_path(str(root))).read_text())["shard"] == 0
    # Copied into a new storage, results land in the new default layout.
    copy_root = tmp_path / "copy"
    retain.copy([i.id for i in items], str(copy_root), storage=root)
    assert all((copy_root / i.id[:2] / i.id / RECORD_FILE).is_file() for i in items)


def test_sharded_marker_over_plain_interfaces_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    _plain_storage(root)
    Path(marker_path(str(root))).write_text('{"format": "retain.storage", "shard": 2}\n')
    with pytest.raises(StorageError, match=r"marked sharded .* plain layout .*<id\[:2\]>/<id>"):
        LocalStorage(root)
    # Found as well when the marker appears while a process has the storage open.
    late = tmp_path / "late"
    opened = LocalStorage(late)
    os.makedirs(late / ITEM_ID)
    os.makedirs(late / ".retain")
    Path(marker_path(str(late))).write_text('{"format": "retain.storage", "shard": 2}\n')
    with pytest.raises(StorageError, match="marked sharded"):
        opened.local_directory(ITEM_ID)


_RACER = """
import os, sys, time
from retain import Interface, StorageError, storage as use
from retain.storage import LocalStorage

class Racer(Interface):
    Config = {"who": "", "n": 0}

who, shard, base, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
for r in range(rounds):
    root = os.path.join(base, f"round-{r}")
    open(os.path.join(base, f"ready-{who}-{r}"), "w").close()
    while len([n for n in os.listdir(base) if n.endswith(f"-{r}") and n.startswith("ready-")]) < 2:
        time.sleep(0.0005)
    try:
        storage = LocalStorage(root, shard=None if shard == "default" else int(shard))
        with use(storage):
            for n in range(5):
                Racer({"who": who, "n": n}).commit()
        print(r, "ok", storage.shard, flush=True)
    except StorageError as exc:
        print(r, "refused", str(exc).replace("\\n", " "), flush=True)
"""


def test_first_commits_of_two_processes_agree_on_the_layout(tmp_path: Path) -> None:
    """Two processes commit their first interfaces into one new storage at once: one layout
    wins on disk, and both follow it (an explicit other layout is refused, clearly)."""
    import subprocess

    script = tmp_path / "racer.py"
    script.write_text(_RACER)
    rounds = 12
    for shards in (("default", "default"), ("default", "0")):
        base = tmp_path / "-".join(shards)
        base.mkdir()
        procs = [
            subprocess.Popen([sys.executable, str(script), f"p{k}", shard, str(base), str(rounds)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for k, shard in enumerate(shards)
        ]
        outs = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            outs.append([line.split(" ", 2) for line in out.splitlines()])
        for r in range(rounds):
            root = base / f"round-{r}"
            shard = json.loads(Path(marker_path(str(root))).read_text())["shard"]
            names = [n for n in os.listdir(root) if n != ".retain"]
            committed = [p.parent.name for p in root.rglob(RECORD_FILE)]
            if shard:
                assert all(len(n) == shard for n in names), names
                assert all(p.parent.parent.parent == root for p in root.rglob(RECORD_FILE))
            else:
                assert all(len(n) == 32 for n in names), names
            for k, lines in enumerate(outs):
                outcome = lines[r]
                assert outcome[0] == str(r)
                if outcome[1] == "ok":
                    assert int(outcome[2]) == shard
                else:  # only an explicit layout that lost is refused
                    assert shards[k] == "0" and shard == 2 and "created with shard=2" in outcome[2]
            ok = sum(lines[r][1] == "ok" for lines in outs)
            assert len(committed) == 5 * ok
            assert sorted(LocalStorage(root).iter_ids()) == sorted(committed)

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


def test_records_and_events_encode_as_json_dumps_does() -> None:
    """The one reused C encoder writes what `json.dumps(sort_keys=True, ensure_ascii=False)`
    writes, and refuses what it refuses."""
    import json

    from retain.storage.layout import _value_encoder

    encode = _value_encoder()
    for value in [1, -0.0, 1.5e300, "é\"\n\u2028", None, True, {"b": 1, "a": [1, {"z": "y", "c": None}]}, [], {}]:
        assert encode(value) == json.dumps(value, sort_keys=True, ensure_ascii=False)
        assert encode(value) == encode(value)  # reused: nothing carried from one call to the next
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode({"a": object()})


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "b": [1.5, "x\\u00e9"], "c": {"d": null}}\n',
        b'{"a": 1}',
        b'  {"a": 1}  \r\n\t',  # leading whitespace: json.loads's own path
        '\ufeff{"a": 1}'.encode("utf-8"),  # a byte order mark: json.loads accepts it
        b'{"a": "\xed\xa0\x80"}',  # a lone surrogate, which json.loads decodes
        b'{"a": NaN, "b": -Infinity, "c": 123456789012345678901234567890}',
        b'[1, 2]',
        b'{"a": 1}\n\x0b',  # trailing text that is not JSON whitespace
        b'{"a": 1} {"b": 2}',
        b'{"a": 1',
        b"",
        b"\x00\xff\xfe",
        b'{"a": 1}\xc2\xa0',
    ],
)
def test_records_are_parsed_exactly_as_json_loads_parses_them(data: bytes) -> None:
    """The fast parse of records (`parse_json`) gives json.loads's values and errors."""
    from retain.storage.layout import parse_json

    try:
        expected: object = json.loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        with pytest.raises(type(exc)) as raised:
            parse_json(data)
        assert str(raised.value) == str(exc)
    else:
        found = parse_json(data)
        assert json.dumps(found) == json.dumps(expected) and type(found) is type(expected)
