"""Removing committed interfaces: `Interface.delete`, users refused or cascaded, dry runs,
running components, the index following (SQLite and PostgreSQL), object stores, and SIGKILL in
the middle of removals."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest

import retain
from retain import Component, InterfaceNotFoundError, InUseError, Interface, Storage, get
from retain.index import _updates
from retain.storage import make_storage
from retain._fs import TEMP_PREFIX
from retain.storage.layout import JOURNAL_REMOVE, RECORD_FILE, removal_area

from conftest import WORKERS_DIR, id_directories

HERE = Path(__file__).resolve().parent


class Data(Interface):
    Config: ClassVar[Any] = {"name": "mnist"}


class Model(Interface):
    Config: ClassVar[Any] = {"data": None, "lr": 0.1}


class Report(Interface):
    Config: ClassVar[Any] = {"model": None}


def chain() -> tuple[Data, Model, Model, Report]:
    data = Data({"name": "a"})
    data.save_file("rows.txt", "x" * 1000)
    data.commit()
    first = Model({"data": data, "lr": 0.1}).commit()
    second = Model({"data": data, "lr": 0.2}).commit()
    report = Report({"model": first}).commit()
    return data, first, second, report


def test_delete_removes_record_files_and_index_rows(store: Storage) -> None:
    data = Data({"name": "a"})
    data.save_file("rows.txt", "x" * 1000)
    data.commit()
    directory = data.local_directory()
    assert get.all(Data).ids() == [data.id]
    removed = data.delete()
    assert [r.id for r in removed] == [data.id]
    assert removed[0].qualname == "Data" and removed[0].module == __name__ and removed[0].kind == "Interface"
    assert removed[0].size >= 1000
    assert not os.path.exists(directory) and not data.is_committed()
    assert not get(Data, {"name": "a"}).is_committed() and get.all(Data).ids() == []
    with pytest.raises(InterfaceNotFoundError):
        get.by_id(data.id)
    with pytest.raises(InterfaceNotFoundError, match="not committed"):
        data.delete()
    assert os.listdir(removal_area(store.url)) == []  # nothing left behind


def test_users_are_listed_and_refused(store: Storage) -> None:
    data, first, second, report = chain()
    with pytest.raises(InUseError) as caught:
        data.delete()
    message = str(caught.value)
    assert f"Model [{first.id}]" in message and f"Model [{second.id}]" in message
    assert f"Data [{data.id}] is used by 2 result(s)" in message and "cascade=True" in message
    assert report.id not in message  # a user of a user: not a direct user
    assert all(i.is_committed() for i in (data, first, second, report))  # nothing removed
    assert get(Data, {"name": "a"}).is_committed()


def test_cascade_removes_users_first(store: Storage) -> None:
    data, first, second, report = chain()
    other = Data({"name": "b"}).commit()
    planned = data.delete(cascade=True, dry_run=True)
    order = [r.id for r in planned]
    assert set(order) == {data.id, first.id, second.id, report.id}
    assert order.index(report.id) < order.index(first.id) < order.index(data.id)
    assert order.index(second.id) < order.index(data.id) and order[-1] == data.id
    removed = data.delete(cascade=True)
    assert [r.id for r in removed] == order
    assert get.all(Interface).ids() == [other.id]
    assert not any(get(cls, config).is_committed() for cls, config in [
        (Data, {"name": "a"}), (Model, {"data": Data({"name": "a"}), "lr": 0.1}),
    ])


def test_removing_a_user_with_what_it_uses_needs_no_cascade(store: Storage) -> None:
    data = Data({"name": "a"}).commit()
    model = Model({"data": data}).commit()
    removed = retain._lifecycle.remove([data.id, model.id])
    assert [r.id for r in removed] == [model.id, data.id]
    assert get.all(Interface).ids() == []


def test_removing_many_reads_the_index_rows_once(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The users of every interface removed come from one pass over the rows (a pass per
    interface made removing 10,000 results of a million a matter of hours)."""
    from retain.collection import Collection

    data, first, second, report = chain()
    plain = [Data({"name": f"n{i}"}).commit() for i in range(5)]
    passes = []
    original = Collection._values
    monkeypatch.setattr(Collection, "_values", lambda self, *a: passes.append(1) or original(self, *a))
    with pytest.raises(InUseError, match="used by"):
        retain._lifecycle.remove([item.id for item in [*plain, data]])
    assert len(passes) == 1
    removed = retain._lifecycle.remove([item.id for item in [*plain, data]], cascade=True)
    assert len(passes) == 2 and len(removed) == 9
    assert removed.index(next(r for r in removed if r.id == first.id)) < len(removed) - 1


def test_dry_run_removes_nothing_and_reports_sizes(store: Storage) -> None:
    data, first, second, report = chain()
    planned = data.delete(cascade=True, dry_run=True)
    assert {r.id: r.size for r in planned}[data.id] == store.size(data.id) >= 1000
    assert all(r.size > 0 for r in planned)
    assert all(i.is_committed() for i in (data, first, second, report))
    assert len(get.all(Interface)) == 4 and os.path.isdir(data.local_directory())
    assert data.delete(dry_run=False, cascade=True)[0].size == planned[0].size


class SelfDeleting(Component):
    Config: ClassVar[Any] = {"n": 0}
    seen: ClassVar[list[str]] = []

    def __call__(self) -> None:
        try:
            self.delete()
        except InUseError as exc:
            SelfDeleting.seen.append(str(exc))
        self.save_file("out.txt", "done")


def test_a_running_component_is_never_removed(store: Storage) -> None:
    SelfDeleting.seen.clear()
    run = SelfDeleting({"n": 1}).launch()
    assert len(SelfDeleting.seen) == 1 and "is running" in SelfDeleting.seen[0]
    assert f"SelfDeleting [{run.id}]" in SelfDeleting.seen[0]
    assert run.execution.is_finished() and run.load_file("out.txt") == "done"
    run.delete()  # finished: removable
    assert not get(SelfDeleting, {"n": 1}).is_committed()


def test_a_running_user_stops_a_cascade(store: Storage) -> None:
    data = Data({"name": "a"}).commit()

    class Uses(Component):
        Config: ClassVar[Any] = {"data": None}
        seen: ClassVar[list[str]] = []

        def __call__(self) -> None:
            try:
                self.config.data.delete(cascade=True)
            except InUseError as exc:
                Uses.seen.append(str(exc))

    user = Uses({"data": data}).launch()
    assert "is running" in Uses.seen[0] and data.is_committed() and user.is_committed()


def test_recommit_after_delete_is_fresh(store: Storage) -> None:
    old = Data({"name": "a"})
    old.save_file("rows.txt", "old rows")
    old.save_summary(rows=1)
    old.commit()
    created = old.created
    old.delete()
    time.sleep(0.01)
    new = get(Data, {"name": "a"})
    new.save_file("other.txt", "new")
    new.commit()
    found = get(Data, {"name": "a"})
    assert found.files() == ["interface.json", "other.txt"] and found.load_summary() == {}
    assert found.created != created
    rows = get.all(Data).to_table()
    assert [row["id"] for row in rows] == [new.id] and rows[0]["created"] == found.created
    old.commit()  # the deleted instance commits again too (adopting the new record)
    assert old.created == found.created


# -- the index follows ------------------------------------------------------------------------


def test_a_removal_the_index_missed_is_repaired_by_the_next_query(store: Storage) -> None:
    """What a process killed between the storage removal and the index update leaves."""
    items = [Data({"name": str(n)}).commit() for n in range(3)]
    assert len(get.all(Data)) == 3
    _updates.journal(store, items[0].id, JOURNAL_REMOVE)
    assert store.remove(items[0].id)
    assert sorted(get.all(Data).ids()) == sorted(i.id for i in items[1:])


def test_a_journaled_removal_that_did_not_happen_keeps_the_row(store: Storage) -> None:
    """Killed after the journal line, before the rename: the interface is whole and listed."""
    item = Data({"name": "kept"}).commit()
    assert get.all(Data).ids() == [item.id]
    _updates.journal(store, item.id, JOURNAL_REMOVE)
    assert get.all(Data).ids() == [item.id]
    assert get.all(Data, where={"name": "kept"}).first() == item


def test_a_leftover_in_the_removal_area_is_invisible_and_cleaned(store: Storage) -> None:
    """Killed after the rename, during the deletion."""
    kept = Data({"name": "kept"}).commit()
    gone = Data({"name": "gone"})
    gone.save_file("big.txt", "x" * 100)
    gone.commit()
    area = removal_area(store.url)
    os.makedirs(area)
    os.rename(gone.local_directory(), f"{area}/{gone.id}.1.abcd")
    assert not get(Data, {"name": "gone"}).is_committed() and get.all(Data).ids() == [kept.id]
    kept.delete()
    assert os.listdir(area) == []


def test_sharded_storage(tmp_path: Path) -> None:
    with retain.storage(f"file://{tmp_path}/sharded?shard=2") as store:
        data, first, second, report = chain()
        data.delete(cascade=True)
        assert get.all(Interface).ids() == [] and list(store.iter_directories()) == []
        assert os.listdir(removal_area(store.url)) == []


def test_postgresql_index(tmp_path: Path) -> None:
    url = os.environ.get("RETAIN_TEST_POSTGRES_URL") or "postgresql://retain:retain@127.0.0.1:54329/retain_test"
    schema = f"t_{uuid.uuid4().hex[:16]}"
    index_url = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    try:
        with retain.settings(index=index_url):
            data, first, second, report = chain()
            assert len(get.all(Interface)) == 4
            first.delete(cascade=True)
            assert sorted(get.all(Interface).ids()) == sorted([data.id, second.id])
            # A removal whose index update was missed: the next query drops it.
            _updates.journal(data.storage, second.id, JOURNAL_REMOVE)
            assert data.storage.remove(second.id)
            assert get.all(Interface).ids() == [data.id]
    finally:
        import psycopg

        for key, index in list(retain.index._resolve._by_url.items()):
            if schema in key:
                index.close()
                del retain.index._resolve._by_url[key]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- object stores ------------------------------------------------------------------------------


class Run(Component):
    Config: ClassVar[Any] = {"n": 0}

    def __call__(self) -> None:
        self.save_file("out.txt", f"run {self.config.n}")


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_object_store_removal_interrupted_after_the_record(kind: str, object_store: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the record was deleted, before the other objects: the interface is gone
    (get, the index), and a new commit of the identity is fresh: the old run files never say
    it ran."""
    store = object_store(kind)
    with retain.storage(store):
        run = Run({"n": 1}).launch()
        kept = Run({"n": 2}).launch()
        assert run.execution.is_finished() and len(get.all(Run)) == 2
        # What Storage.remove does up to its commit point, then a kill.
        fs, root = store.fs, store.root  # type: ignore[attr-defined]
        fs.pipe_file(f"{root}/.retain/removing/{run.id}", b"2026-01-01T00:00:00Z\n")
        _updates.journal(store, run.id, JOURNAL_REMOVE)
        fs.rm_file(f"{root}/{run.id}/{RECORD_FILE}")
        assert store.unfinished_removals() == [run.id]
        assert not get(Run, {"n": 1}).is_committed()
        assert get.all(Run).ids() == [kept.id]
        time.sleep(1.1)  # S3 times are in seconds: what a new commit writes is newer
        again = get(Run, {"n": 1})
        assert again.execution.state() == "missing"
        again.launch()
        assert again.execution.is_finished() and len(again.execution.runs()) == 1
        assert store.unfinished_removals() == []
        assert sorted(get.all(Run).ids()) == sorted([run.id, kept.id])


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_object_store_leftovers_are_finished_by_the_next_removal(kind: str, object_store: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = object_store(kind)
    with retain.storage(store):
        a = Data({"name": "a"})
        a.save_file("rows.txt", "rows")
        a.commit()
        b = Data({"name": "b"}).commit()
        fs, root = store.fs, store.root  # type: ignore[attr-defined]
        fs.pipe_file(f"{root}/.retain/removing/{a.id}", b"x\n")
        fs.rm_file(f"{root}/{a.id}/{RECORD_FILE}")
        # A marker beside a record: the removal never reached its commit point.
        fs.pipe_file(f"{root}/.retain/removing/{b.id}", b"x\n")
        assert sorted(store.unfinished_removals()) == sorted([a.id, b.id])
        c = Data({"name": "c"}).commit()
        assert [r.id for r in c.delete()] == [c.id]
        assert store.unfinished_removals() == [] and store.read_file(a.id, "rows.txt") is None
        assert a.id not in set(store.iter_directories())
        assert get(Data, {"name": "b"}).is_committed() and get.all(Data).ids() == [b.id]


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_object_store_delete_and_cache(kind: str, object_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = object_store(kind)
    with retain.storage(store):
        data, first, second, report = chain()
        planned = data.delete(cascade=True, dry_run=True)
        assert planned[-1].id == data.id and planned[-1].size >= 1000
        removed = data.delete(cascade=True)
        assert [r.id for r in removed] == [r.id for r in planned]
        assert get.all(Interface).ids() == [] and list(store.iter_directories()) == []
        assert not os.path.exists(data.local_directory())  # the cached copy went too
        # Another machine's cache of a removed interface is dropped when it looks it up.
    other_cache = tmp_path / "other"
    with retain.storage(store):
        d = Data({"name": "z"})
        d.save_file("rows.txt", "old")
        d.commit()
    monkeypatch.setenv("RETAIN_CACHE_DIR", str(other_cache))
    other = make_storage(store.url) if kind == "s3" else type(store)(store.url, cache_dir=other_cache)
    with retain.storage(other):
        there = get(Data, {"name": "z"})
        assert there.load_file("rows.txt") == "old"
    with retain.storage(store):
        get(Data, {"name": "z"}).delete()
    with retain.storage(other):
        again = get(Data, {"name": "z"})
        assert not again.is_committed() and not os.path.exists(again.local_directory())
        again.save_file("new.txt", "new")
        again.commit()
        assert again.files() == ["interface.json", "new.txt"]


# -- SIGKILL in the middle of removals ----------------------------------------------------------

KILLS = 12


def test_random_kills_during_removals(tmp_path: Path) -> None:
    """A worker commits and deletes interfaces with files in a loop; killed at random times.
    Every id is whole (record and all its files) or gone, and the index agrees after one query."""
    root = tmp_path / "shared"
    rng = random.Random(11)
    env = {**os.environ, "PYTHONPATH": WORKERS_DIR}
    from removal_worker import FILES  # type: ignore[import-not-found]  (tests/workers is on the path)

    killed: set[int] = set()
    for kill in range(KILLS):
        worker = subprocess.Popen(
            [sys.executable, os.path.join(WORKERS_DIR, "removal_worker.py"), str(root), str(kill)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=WORKERS_DIR,
        )
        ready = Path(f"{root}.ready")
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        ready.unlink()
        time.sleep(0.1 + rng.random() * 0.8)  # into the loop
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed.add(worker.pid)
        directories = id_directories(root)
        committed = {name for name, directory in directories.items() if (directory / RECORD_FILE).exists()}
        for name in committed:  # whole: the record and every file it was committed with
            assert Interface.from_directory(directories[name]).id == name
            files = [p for p in directories[name].rglob("*") if p.is_file()]
            # A killed writer's temporary may stay in a directory a later worker committed (it is
            # reclaimed once abandoned, see `reclaim_temporaries`): it is never a file of the result.
            leftovers = [p for p in files if p.name.startswith(TEMP_PREFIX)]
            assert all(int(p.name.rsplit(".", 2)[1]) in killed for p in leftovers), leftovers
            found = sorted(str(p.relative_to(directories[name])) for p in files if p not in leftovers)
            assert found == sorted([RECORD_FILE, *FILES]), name
            assert sorted(Interface.from_directory(directories[name]).files()) == sorted([RECORD_FILE, *FILES])
        with retain.storage(root):
            assert {i for i in get.all(Interface).ids()} == committed, "the index lists a removed id"
    assert (tmp_path / "shared.log").read_text().count("\n") > 0, "no removal ever finished"
    with retain.storage(root):
        for item in get.all(Interface):  # what the kills left in the removal area goes next time
            item.delete(cascade=True) if item.is_committed() else None
        assert get.all(Interface).ids() == []
    assert os.listdir(removal_area(str(root))) == []


# -- rerun ------------------------------------------------------------------------------------


class Counted(Component):
    Config: ClassVar[Any] = {"n": 0, "fail": False}
    calls: ClassVar[list[int]] = []

    def __call__(self) -> None:
        Counted.calls.append(self.config.n)
        print(f"call {len(Counted.calls)}")
        self.log_metrics({"loss": 1.0 / len(Counted.calls)})
        self.save_summary(calls=len(Counted.calls))
        self.save_file(f"out-{len(Counted.calls)}.txt", "out")
        if self.config.fail:
            raise ValueError("failing on purpose")


def outputs(run: Component) -> list[str]:
    return [name for name in run.files() if name.startswith("out-")]


def test_rerun_a_finished_component(store: Storage) -> None:
    Counted.calls.clear()
    data = Data({"name": "input"}).commit()
    run = Counted({"n": 1}).launch()
    record, directory = run.record, run.local_directory()
    assert outputs(run) == ["out-1.txt"] and get.all(Counted, where={"summary.calls": 1}).ids()
    assert run.rerun() is run and Counted.calls == [1, 1]
    assert run.record == record and run.local_directory() == directory  # same identity
    assert run.execution.is_finished() and len(run.execution.runs()) == 1  # a fresh run 1
    assert outputs(run) == ["out-2.txt"]  # the old outputs went
    assert run.execution.output().count("call ") == 1 and "call 2" in run.execution.output()
    assert run.load_summary() == {"calls": 2} and [m["value"] for m in run.metrics("loss")] == [0.5]
    assert get.all(Counted, where={"summary.calls": 1}).ids() == []
    assert get.all(Counted, where={"summary.calls": 2}).ids() == [run.id]
    assert data.is_committed() and get(Data, {"name": "input"}).is_committed()  # inputs untouched


def test_rerun_a_failed_component_and_refusals(store: Storage) -> None:
    Counted.calls.clear()
    run = Counted({"n": 2, "fail": True})
    with pytest.raises(InterfaceNotFoundError, match="not committed"):
        run.rerun()
    with pytest.raises(ValueError, match="on purpose"):
        run.launch()
    assert run.execution.state() == "failed"
    with pytest.raises(ValueError, match="on purpose"):
        run.rerun()
    assert run.execution.state() == "failed" and len(run.execution.runs()) == 1
    assert len(run.execution.failures()) == 1  # the first failure went with its run
    assert outputs(run) == ["out-2.txt"]


class RerunsItself(Component):
    Config: ClassVar[Any] = {"n": 0}
    seen: ClassVar[list[str]] = []

    def __call__(self) -> None:
        try:
            self.rerun()
        except InUseError as exc:
            RerunsItself.seen.append(str(exc))


def test_rerun_is_refused_while_running(store: Storage) -> None:
    RerunsItself.seen.clear()
    run = RerunsItself().launch()
    assert len(RerunsItself.seen) == 1 and "is running" in RerunsItself.seen[0]
    assert run.execution.is_finished()


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_rerun_on_an_object_store(kind: str, object_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = object_store(kind)
    Counted.calls.clear()
    with retain.storage(store):
        run = Counted({"n": 3}).launch()
        run.rerun()
        assert run.execution.is_finished() and len(run.execution.runs()) == 1
        assert outputs(run) == ["out-2.txt"] and run.load_summary() == {"calls": 2}
        assert not os.path.exists(os.path.join(run.local_directory(), "out-1.txt"))
