"""What every storage backend must do: subclass `StorageConformance` and provide a `storage`
fixture that returns a fresh, empty `retain.storage.Storage` (retain's own tests run it for
local, sharded, in-memory and S3 storage).

The first half checks the primitives of the contract (`retain.storage.base`); the second half
drives the public API (commit, get, files, from_directory, the index) through the backend.
Abilities are the storage's ``supports_*`` attributes and ``is_remote``: a test that needs one
the storage declares it lacks is skipped, naming it.
"""

from __future__ import annotations

import os
import threading
from typing import Any, ClassVar

import pytest

import retain
from retain import Component, Interface, RecordError, StorageError, get
from retain.storage import Storage, make_storage
from retain.storage.layout import (
    FINISHED_FILE,
    OUTPUT_LOG,
    RECORD_FILE,
    SUMMARY_FILE,
    claim_file,
    end_file,
    heartbeat_file,
)
from retain.testing import require
from retain.runs.files import RunFiles

__all__ = ["ConformanceItem", "ConformanceRun", "StorageConformance"]


class ConformanceItem(Interface):
    """The interface the suite commits."""

    Config: ClassVar[Any] = {"i": 0, "label": "conformance"}


class ConformanceRun(Component):
    """The component the suite runs: saves ``out.json``."""

    Config: ClassVar[Any] = {"n": 0}

    def __call__(self) -> None:
        self.save_file("out.json", {"n": self.config.n})


def some_id(n: int) -> str:
    return f"{n:032x}"


class StorageConformance:
    """The contract of `retain.storage.base.Storage`, for one backend: subclass it and
    provide a ``storage`` fixture returning a fresh, empty storage."""

    #: `make_storage` opens this backend from its `url` (True for the backends retain ships;
    #: a backend `make_storage` does not know sets False, and the tests that reopen a storage
    #: by its URL are skipped).
    reopens_by_url: ClassVar[bool] = True

    @pytest.fixture
    def storage(self) -> Storage:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    # -- primitives ------------------------------------------------------------------------

    def test_absent_id(self, storage: Storage) -> None:
        id = some_id(1)
        assert storage.read_record(id) is None
        assert not storage.has_record(id)
        assert list(storage.iter_ids()) == []
        assert storage.read_file(id, RECORD_FILE) is None

    def test_publish_then_read(self, storage: Storage) -> None:
        id = some_id(2)
        assert storage.publish_record(id, b"record one\n") is True
        assert storage.read_record(id) == b"record one\n"
        assert storage.has_record(id)
        assert list(storage.iter_ids()) == [id]
        assert storage.read_file(id, RECORD_FILE) == b"record one\n"

    def test_first_publisher_wins(self, storage: Storage) -> None:
        id = some_id(3)
        assert storage.publish_record(id, b"first") is True
        assert storage.publish_record(id, b"second") is False
        assert storage.read_record(id) == b"first"

    def test_concurrent_publishers_leave_a_complete_record(self, storage: Storage) -> None:
        """Threads racing to publish one id: one of them at least wins, and the record is a
        complete one of the writers' records (whether or not the store is exclusive)."""
        winners, stored = self._race(storage)
        assert winners
        assert stored in {f"writer {n}".encode() for n in range(6)}

    def test_concurrent_publishers_one_winner(self, storage: Storage) -> None:
        """With atomic put-if-absent, exactly one of the racing threads wins."""
        require(storage, "supports_exclusive_create")
        winners, stored = self._race(storage)
        assert len(winners) == 1
        assert stored == f"writer {winners[0]}".encode()

    def _race(self, storage: Storage) -> tuple[list[int], bytes | None]:
        """Six threads publish one id at once: the winners and the record stored."""
        id = some_id(4)
        barrier = threading.Barrier(6)
        results: dict[int, bool] = {}

        def publish(n: int) -> None:
            barrier.wait()
            results[n] = storage.publish_record(id, f"writer {n}".encode())

        threads = [threading.Thread(target=publish, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [n for n, won in results.items() if won], storage.read_record(id)

    def test_iter_ids_by_prefix(self, storage: Storage) -> None:
        ids = ["ab" + "0" * 30, "ab" + "1" * 30, "ac" + "2" * 30, "f" * 32]
        for id in ids:
            storage.publish_record(id, b"x")
        assert sorted(storage.iter_ids()) == sorted(ids)
        assert sorted(storage.iter_ids("a")) == ids[:3]
        assert sorted(storage.iter_ids("ab")) == ids[:2]
        assert sorted(storage.iter_ids("ab1")) == [ids[1]]
        assert list(storage.iter_ids(ids[3])) == [ids[3]]
        assert list(storage.iter_ids("0")) == []
        assert sorted(storage.iter_directories("a")) == ids[:3]

    def test_directory_without_record_is_invisible(self, storage: Storage) -> None:
        """Files without a record (a save before commit, a crashed commit) are not an interface."""
        require(storage, "supports_local_files")
        id = some_id(5)
        directory = storage.prepare_directory(id)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "data.txt"), "w") as handle:
            handle.write("payload")
        storage.upload_file(id, "data.txt")  # what a crashed commit leaves in an object store
        assert not storage.has_record(id)
        assert storage.read_record(id) is None
        assert list(storage.iter_ids()) == []
        assert list(storage.iter_directories()) == [id]
        assert storage.has_directory(id)
        assert storage.read_file(id, "data.txt") == b"payload"
        assert storage.publish_record(id, b"now committed") is True
        assert list(storage.iter_ids()) == [id]

    def test_read_files_in_bulk(self, storage: Storage) -> None:
        a, b = some_id(6), some_id(7)
        storage.publish_record(a, b"A")
        storage.publish_record(b, b"B")
        found = storage.read_files([(a, RECORD_FILE), (b, RECORD_FILE), (a, SUMMARY_FILE), (some_id(8), RECORD_FILE)])
        assert found == {(a, RECORD_FILE): b"A", (b, RECORD_FILE): b"B"}

    def test_url_names_the_storage(self, storage: Storage) -> None:
        require(self, "reopens_by_url")
        again = make_storage(storage.url)
        assert again == storage and hash(again) == hash(storage)
        assert storage.url in repr(storage)

    def test_local_directory_is_stable(self, storage: Storage) -> None:
        require(storage, "supports_local_files")
        id = some_id(9)
        assert storage.local_directory(id) == storage.local_directory(id)
        assert storage.local_directory(id).endswith(id)
        assert storage.local_root() is not None
        # Writers ask for it with prepare_directory first: the same path, before and after.
        assert storage.prepare_directory(id) == storage.local_directory(id)

    # -- the files of an id, one at a time (what runs build on) ------------------------------

    def test_file_primitives_on_a_missing_file(self, storage: Storage) -> None:
        id = some_id(20)
        os.makedirs(storage.prepare_directory(id), exist_ok=True)
        assert storage.read_file(id, ".retain.claim-000001.json") is None
        assert not storage.has_file(id, ".retain.claim-000001.json")

    def test_create_file_first_writer_wins(self, storage: Storage) -> None:
        id = some_id(21)
        os.makedirs(storage.prepare_directory(id), exist_ok=True)
        assert storage.create_file(id, "claim.json", b"first\n") is True
        assert storage.has_file(id, "claim.json")
        assert storage.create_file(id, "claim.json", b"second\n", durable=True) is False
        assert storage.read_file(id, "claim.json") == b"first\n"
        assert not storage.has_record(id)  # a file of an id does not commit it

    def test_concurrent_create_file_one_winner(self, storage: Storage) -> None:
        id = some_id(22)
        os.makedirs(storage.prepare_directory(id), exist_ok=True)
        barrier = threading.Barrier(6)
        results: dict[int, bool] = {}

        def create(n: int) -> None:
            barrier.wait()
            results[n] = storage.create_file(id, "claim.json", f"writer {n}".encode())

        threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [n for n, won in results.items() if won]
        stored = storage.read_file(id, "claim.json")
        if storage.supports_exclusive_create:
            assert len(winners) == 1 and stored == f"writer {winners[0]}".encode()
        else:
            assert winners and stored in {f"writer {n}".encode() for n in winners}

    def test_replace_file(self, storage: Storage) -> None:
        id = some_id(23)
        os.makedirs(storage.prepare_directory(id), exist_ok=True)
        storage.replace_file(id, "heartbeat.json", b"beat 1\n")
        assert storage.read_file(id, "heartbeat.json") == b"beat 1\n"
        storage.replace_file(id, "heartbeat.json", b"beat 2\n", durable=True)
        assert storage.read_file(id, "heartbeat.json") == b"beat 2\n"
        assert storage.create_file(id, "heartbeat.json", b"beat 3\n") is False

    def test_append_file(self, storage: Storage) -> None:
        id = some_id(24)
        os.makedirs(storage.prepare_directory(id), exist_ok=True)
        storage.append_file(id, "events.jsonl", b'{"n": 1}\n')
        storage.append_file(id, "events.jsonl", b'{"n": 2}\n', durable=True)
        storage.append_file(id, "events.jsonl", b'{"n": 3}\n')
        assert storage.read_file(id, "events.jsonl") == b'{"n": 1}\n{"n": 2}\n{"n": 3}\n'
        assert storage.has_file(id, "events.jsonl")

    def test_ids_with_file_asks_many_ids_at_once(self, storage: Storage) -> None:
        ids = [some_id(25), some_id(26), some_id(27)]
        for id in ids:
            os.makedirs(storage.prepare_directory(id), exist_ok=True)
        storage.create_file(ids[0], "finished.json", b"{}\n")
        storage.append_file(ids[2], "finished.json", b"{}\n")
        storage.create_file(ids[1], "other.json", b"{}\n")
        asked = [*ids, some_id(28)]  # and an id with no directory at all
        assert storage.ids_with_file(asked, "finished.json") == {ids[0], ids[2]}
        assert storage.ids_with_file(asked, "other.json") == {ids[1]}
        assert storage.ids_with_file([], "finished.json") == set()

    def test_run_files_over_the_primitives(self, storage: Storage) -> None:
        """Claims, ends, the finished marker, events and the output log of a component, as
        every launcher of it reads them (from the storage, not from this process)."""
        id = some_id(25)
        files = RunFiles(storage, id)
        files.ensure()
        assert files.latest_run() == 0 and not files.is_finished()
        claim = {"run": 1, "started": "2026-01-02T03:04:05.000006Z", "lease": 60.0, "heartbeat": 10.0}
        assert files.create(claim_file(1), claim) is True
        assert files.create(claim_file(1), {**claim, "started": "later"}) is False
        assert files.latest_run() == 1 and files.claim(1) == claim
        files.replace(heartbeat_file(1), {"run": 1, "time": "2026-01-02T03:04:06.000000Z", "beats": 1})
        assert files.heartbeat(1) == {"run": 1, "time": "2026-01-02T03:04:06.000000Z", "beats": 1}
        files.prepare_run()
        with open(files.output_log, "ab") as handle:
            handle.write(b"printed by the run\n")
        files.sync_output()  # what a heartbeat does
        again = RunFiles(make_storage(storage.url), id)
        assert again.read_output() == b"printed by the run\n"
        end = {"run": 1, "status": "finished", "time": "2026-01-02T03:04:07.000000Z", "seconds": 2.0}
        assert files.create(end_file(1), end, durable=True)
        files.mark_finished(1, durable=True)
        files.mark_finished(1)  # once is enough: a second time changes nothing
        assert again.is_finished() and again.end(1) == end
        assert storage.read_file(id, FINISHED_FILE) == storage.read_file(id, end_file(1))
        files.event("superseded", 1, reason="a test")
        assert [e["event"] for e in again.events()] == ["started", "finished", "superseded"]
        assert not storage.has_record(id) and storage.list_files(id) == [OUTPUT_LOG]

    # -- the public API through this storage -----------------------------------------------

    def test_commit_get_files_round_trip(self, storage: Storage) -> None:
        with retain.storage(storage):
            item = ConformanceItem({"i": 1})
            item.save_file("data/values.json", {"values": [1, 2, 3]})
            item.save_summary(loss=0.25)
            assert not item.is_committed() and get(ConformanceItem, {"i": 1}).is_committed() is False
            item.commit()
            found = get(ConformanceItem, {"i": 1})
            assert found.is_committed() and found == item
            assert found.record is not None and found.record["created"] == item.created
            assert found.load_file("data/values.json") == {"values": [1, 2, 3]}
            assert found.load_summary() == {"loss": 0.25}
            assert found.load_file("missing.json", default=None) is None
            assert found.files() == ["data/values.json", "interface.json", "summary.json"]
            assert get.by_id(item.id[:8]) == item

    def test_from_directory_finds_the_item_and_its_storage(self, storage: Storage) -> None:
        require(storage, "supports_local_files")
        require(self, "reopens_by_url")  # the directory's storage is found again by its URL
        with retain.storage(storage):
            item = ConformanceItem({"i": 1})
            directory = item.local_directory()
            item.commit()
            assert item.local_directory() == directory
            reloaded = Interface.from_directory(get(ConformanceItem, {"i": 1}).local_directory())
            assert reloaded == item and type(reloaded) is ConformanceItem
            assert reloaded.storage == storage

    def test_commit_is_idempotent_and_adopts(self, storage: Storage) -> None:
        with retain.storage(storage):
            first = ConformanceItem({"i": 2}).commit()
            second = ConformanceItem({"i": 2}).commit()  # another instance: adopts the record
            assert second.record == first.record
            assert list(storage.iter_ids()) == [first.id]

    def test_save_file_after_commit_reaches_the_storage(self, storage: Storage) -> None:
        with retain.storage(storage):
            item = ConformanceItem({"i": 3})
            item.save_file("early.txt", "written before commit")
            assert item.files() == ["early.txt"]
            item.commit()
            item.save_file("late.txt", "written after commit")
            assert item.files() == ["early.txt", "interface.json", "late.txt"]
            assert storage.read_file(item.id, "late.txt") == b"written after commit"
            if storage.is_remote:  # the cache may go: the store has everything
                os.unlink(os.path.join(item.local_directory(), "late.txt"))
            assert get(ConformanceItem, {"i": 3}).load_file("late.txt") == "written after commit"

    def test_corrupted_record_is_an_error(self, storage: Storage) -> None:
        with retain.storage(storage):
            id = ConformanceItem({"i": 4}).id
            storage.publish_record(id, b"not json")
            with pytest.raises(RecordError, match="not valid JSON"):
                get(ConformanceItem, {"i": 4})

    def test_index_finds_commits(self, storage: Storage) -> None:
        with retain.storage(storage):
            items = [ConformanceItem({"i": n}).commit() for n in range(5)]
            items[0].save_summary(loss=1.5)
            assert set(get.all(ConformanceItem).ids()) == {i.id for i in items}
            assert get.all(ConformanceItem, where={"i": 3}).first() == items[3]
            assert retain.index.rebuild() == 5
            assert get.all(ConformanceItem, where={"summary.loss": 1.5}).first() == items[0]

    def test_components(self, storage: Storage) -> None:
        with retain.storage(storage):
            run = ConformanceRun({"n": 7})
            if storage.supports_runs:
                run.launch()
                assert run.cached() and run.load_file("out.json") == {"n": 7}
                assert run.files() == ["interface.json", "out.json"]  # not the runtime files
            else:
                with pytest.raises(StorageError, match="cannot run on"):
                    run.launch()


    # -- removal ---------------------------------------------------------------------------

    def test_remove_primitive(self, storage: Storage) -> None:
        id = some_id(40)
        assert storage.remove(id) is False  # nothing there: nothing to do
        with retain.storage(storage):
            item = ConformanceItem({"i": 40})
            item.save_file("deep/data.txt", "some data")
            item.commit()
        assert storage.size(item.id) >= len("some data") + len(storage.read_record(item.id) or b"")
        assert storage.remove(item.id) is True
        assert storage.read_record(item.id) is None and not storage.has_record(item.id)
        assert item.id not in set(storage.iter_ids()) and item.id not in set(storage.iter_directories())
        assert storage.read_file(item.id, "deep/data.txt") is None and storage.size(item.id) == 0
        assert storage.remove(item.id) is False

    def test_delete_file(self, storage: Storage) -> None:
        with retain.storage(storage):
            item = ConformanceItem({"i": 42})
            item.save_file("a/b.txt", "b")
            item.save_file("c.txt", "c")
            item.commit()
        storage.delete_file(item.id, "a/b.txt")
        storage.delete_file(item.id, "missing.txt")  # nothing to do
        assert storage.read_file(item.id, "a/b.txt") is None and not storage.has_file(item.id, "a/b.txt")
        assert storage.list_files(item.id) == ["c.txt", "interface.json"]

    def test_stored_files_are_what_a_move_carries(self, storage: Storage) -> None:
        with retain.storage(storage):
            item = ConformanceItem({"i": 43})
            item.save_file("a/b.txt", "b")
            item.commit()
        storage.create_file(item.id, ".retain.note.json", b"{}")
        # Every file but the record, retain's own files included (what `retain.export` carries).
        assert storage.stored_files(item.id) == [".retain.note.json", "a/b.txt"]

    def test_delete_then_commit_again(self, storage: Storage) -> None:
        with retain.storage(storage):
            item = ConformanceItem({"i": 41})
            item.save_file("old.txt", "old")
            item.commit()
            assert [r.id for r in item.delete()] == [item.id] and not item.is_committed()
            assert not get(ConformanceItem, {"i": 41}).is_committed()
            assert get.all(ConformanceItem).ids() == []
            again = get(ConformanceItem, {"i": 41})
            again.save_file("new.txt", "new")
            again.commit()
            found = get(ConformanceItem, {"i": 41})
            assert found.is_committed() and found.files() == ["interface.json", "new.txt"]
            assert found.load_file("new.txt") == "new" and get.all(ConformanceItem).ids() == [item.id]

    def test_delete_a_component_then_run_it_again(self, storage: Storage) -> None:
        require(storage, "supports_runs")
        with retain.storage(storage):
            run = ConformanceRun({"n": 8})
            run.launch()
            run.delete()
            fresh = get(ConformanceRun, {"n": 8})
            assert not fresh.is_committed() and fresh.execution.state() == "missing"
            fresh.launch()
            assert fresh.execution.state() == "finished" and fresh.execution.runs()[-1]["run"] == 1
