"""Self-repair of the index over a sharded storage lists only the shards whose time changed:
what a commit, a removal or a copy by hand does to one shard is seen by listing that shard."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import retain
from retain import Interface, get
from retain.index import SqliteIndex, make_index
from retain.storage.layout import RECORD_FILE
from retain.storage.local import LocalStorage


class Cell(Interface):
    Config = {"i": 0}


class Listed(LocalStorage):
    """A sharded local storage that notes the prefixes the index lists."""

    def __init__(self, root: Path, shard: int = 2) -> None:
        super().__init__(root, shard=shard)
        self.listed: list[str] = []

    def iter_directories(self, prefix: str = "") -> Iterator[str]:
        self.listed.append(prefix)
        return super().iter_directories(prefix)


@pytest.fixture
def sharded(tmp_path: Path) -> Iterator[Listed]:
    with retain.storage(Listed(tmp_path / "sharded")) as storage:
        assert isinstance(storage, Listed)
        yield storage


def commit(*numbers: int) -> list[Cell]:
    return [Cell({"i": i}).commit() for i in numbers]


def age(storage: LocalStorage) -> None:
    """Make the root and every shard look unchanged for an hour."""
    old = time.time_ns() - 3_600 * 10**9
    for name in [".", *(n for n in os.listdir(storage.root) if len(n) == storage.shard)]:
        os.utime(os.path.join(storage.root, name), ns=(old, old))


def settle(storage: Listed) -> None:
    """Age the storage and let a query take note: the next query lists nothing."""
    age(storage)
    get.all(Cell).ids()
    storage.listed.clear()
    get.all(Cell).ids()
    assert storage.listed == []
    storage.listed.clear()


def index_of(storage: LocalStorage) -> SqliteIndex:
    retain.index._updates.flush()
    index = make_index(None, storage)
    assert isinstance(index, SqliteIndex)
    return index


def test_the_first_query_lists_everything_then_a_commit_lists_its_shard(sharded: Listed) -> None:
    cells = commit(*range(20))
    sharded.listed.clear()  # (the first commit looked for records of an earlier release)
    assert set(get.all(Cell).ids()) == {c.id for c in cells}
    assert sharded.listed == [""]  # a new index: one listing of everything
    settle(sharded)
    new = Cell({"i": 100}).commit()
    assert set(get.all(Cell).ids()) == {c.id for c in cells} | {new.id}
    assert sharded.listed == [new.id[:2]]
    sharded.listed.clear()
    get.all(Cell).ids()  # within 2 s of the change: listed again (a coarse clock's same tick)
    assert sharded.listed == [new.id[:2]]
    settle(sharded)


def test_a_directory_removed_by_hand_is_seen(sharded: Listed) -> None:
    cells = commit(*range(10))
    get.all(Cell).ids()
    settle(sharded)
    shutil.rmtree(cells[3].local_directory())
    assert set(get.all(Cell).ids()) == {c.id for c in cells} - {cells[3].id}
    assert sharded.listed == [cells[3].id[:2]]
    assert cells[3].id not in index_of(sharded).ids()


def test_a_whole_shard_removed_by_hand_is_seen(sharded: Listed) -> None:
    cells = commit(*range(10))
    get.all(Cell).ids()
    settle(sharded)
    prefix = cells[0].id[:2]
    shutil.rmtree(os.path.join(sharded.root, prefix))
    gone = {c.id for c in cells if c.id.startswith(prefix)}
    assert set(get.all(Cell).ids()) == {c.id for c in cells} - gone
    assert not index_of(sharded).ids_with_prefix(prefix)


def test_a_directory_copied_in_by_hand_is_seen(sharded: Listed, tmp_path: Path) -> None:
    cells = commit(*range(30))
    with retain.storage(tmp_path / "plain"):
        others = commit(*range(1000, 1040))
    get.all(Cell).ids()
    settle(sharded)
    shards = {c.id[:2] for c in cells}
    into_existing = next(o for o in others if o.id[:2] in shards)
    into_new = next(o for o in others if o.id[:2] not in shards)
    for other in (into_existing, into_new):  # times copied too, like cp -a
        shutil.copytree(other.local_directory(), sharded.local_directory(other.id))
    assert set(get.all(Cell).ids()) == {c.id for c in cells} | {into_existing.id, into_new.id}
    assert sorted(sharded.listed) == sorted({into_existing.id[:2], into_new.id[:2]})


def test_a_copy_right_after_a_commit_in_the_same_shard_is_seen(tmp_path: Path) -> None:
    """Same tick, same shard: the shard is listed again while its time is recent."""
    with retain.storage(Listed(tmp_path / "one", shard=1)) as storage:
        assert isinstance(storage, Listed)
        cells = commit(*range(5))
        get.all(Cell).ids()
        settle(storage)
        with retain.storage(tmp_path / "plain"):
            others = commit(*range(1000, 1040))
        new = Cell({"i": 50}).commit()
        assert new.id in get.all(Cell).ids()
        copied = next(o for o in others if o.id[0] == new.id[0])
        shutil.copytree(copied.local_directory(), storage.local_directory(copied.id))
        os.utime(os.path.join(storage.root, new.id[0]), ns=(time.time_ns(),) * 2)
        assert set(get.all(Cell).ids()) == {c.id for c in cells} | {new.id, copied.id}


def test_a_shard_replaced_with_the_same_time_is_seen(sharded: Listed, tmp_path: Path) -> None:
    """A restore that brings back a shard directory with its old time: the inode differs."""
    cells = commit(*range(10))
    get.all(Cell).ids()
    settle(sharded)
    prefix = cells[0].id[:2]
    shard = os.path.join(sharded.root, prefix)
    info = os.stat(shard)
    copy = tmp_path / "restore"
    shutil.copytree(shard, copy)
    shutil.rmtree(copy / cells[0].id)
    shutil.rmtree(shard)
    os.rename(copy, shard)
    os.utime(shard, ns=(info.st_atime_ns, info.st_mtime_ns))
    age(sharded)  # the root's time too: only the shard's inode tells
    assert cells[0].id not in get.all(Cell).ids()


def test_commits_only_the_journal_knows_are_found_without_listing(sharded: Listed) -> None:
    cells = commit(*range(10))
    get.all(Cell).ids()
    settle(sharded)
    before = {name: os.stat(os.path.join(sharded.root, name)) for name in os.listdir(sharded.root)}
    with retain.index.deferred():  # journal only: the index is not written
        late = commit(*range(200, 206))
    for name, info in before.items():  # the shards' times as they were: only the journal tells
        os.utime(os.path.join(sharded.root, name), ns=(info.st_atime_ns, info.st_mtime_ns))
    assert set(get.all(Cell).ids()) == {c.id for c in cells + late}
    assert set(sharded.listed) == {c.id[:2] for c in late} - before.keys()  # new shards only


def test_a_directory_without_its_record_is_pending_until_the_record_comes(sharded: Listed, tmp_path: Path) -> None:
    with retain.storage(tmp_path / "plain"):
        (other,) = commit(7)
    commit(1, 2)
    get.all(Cell).ids()
    settle(sharded)
    target = Path(sharded.local_directory(other.id))
    target.mkdir(parents=True)  # a copy in progress: the directory, not yet the record
    assert other.id not in get.all(Cell).ids()
    settle(sharded)  # its shard settles: the pending directory is still looked at
    shutil.copy2(Path(other.local_directory(), RECORD_FILE), target / RECORD_FILE)
    assert other.id in get.all(Cell).ids()
    assert sharded.listed == []


def test_rebuild_records_the_shards(sharded: Listed) -> None:
    cells = commit(*range(10))
    age(sharded)
    assert retain.index.rebuild() == 10
    sharded.listed.clear()
    assert set(get.all(Cell).ids()) == {c.id for c in cells}
    assert sharded.listed == []


def test_unreadable_bookkeeping_lists_everything(sharded: Listed) -> None:
    cells = commit(*range(5))
    get.all(Cell).ids()
    settle(sharded)
    index_of(sharded).set_meta({"shards": "garbage"})
    assert set(get.all(Cell).ids()) == {c.id for c in cells}
    assert sharded.listed == [""]


def test_listing_parts(tmp_path: Path) -> None:
    assert LocalStorage(tmp_path / "plain", shard=0).listing_parts() is None
    storage = LocalStorage(tmp_path / "sharded", shard=2)
    assert storage.listing_parts() == {}  # nothing stored yet
    with retain.storage(storage):
        (cell,) = commit(1)
    prefix = cell.id[:2]
    parts = storage.listing_parts()
    assert parts is not None and list(parts) == [prefix]
    token, newest = parts[prefix]
    assert newest == os.stat(os.path.join(storage.root, prefix)).st_mtime_ns
    os.utime(os.path.join(storage.root, prefix), ns=(0, 0))
    os.mkdir(storage.local_directory(prefix + "0" * 30))  # another directory in that shard
    changed = storage.listing_parts()
    assert changed is not None and changed[prefix][0] != token


def test_a_shard_made_in_the_same_tick_as_the_last_look_is_seen(tmp_path: Path) -> None:
    """The storage lists its root again while the root's time is recent: a shard directory
    created in the same clock tick (same root mtime) is not missed."""
    storage = LocalStorage(tmp_path / "sharded", shard=2)
    with retain.storage(storage):
        (cell,) = commit(1)
    root = os.stat(storage.root)
    assert list(storage.listing_parts() or {}) == [cell.id[:2]]
    other = "ff" if cell.id[:2] != "ff" else "00"
    os.makedirs(storage.local_directory(other + "1" * 30))
    os.utime(storage.root, ns=(root.st_atime_ns, root.st_mtime_ns))  # the same tick
    assert sorted(storage.listing_parts() or {}) == sorted([cell.id[:2], other])
