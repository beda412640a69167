"""`retain.du` / `retain du` and `retain.verify` / `retain verify [--repair]`: each problem kind
found on a real storage damaged on purpose, what a repair mends and what it leaves, exit
codes, and sizes equal to the bytes on disk."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

import retain
from retain import Component, Interface, InterfaceNotFoundError, Storage, get
from retain.cli import main
from retain.index import _updates, make_index
from retain.storage.layout import FINISHED_FILE, RECORD_FILE, SUMMARY_FILE, claim_file, end_file, removal_area

DEAD_PID = 99999999  # above any pid_max: never a live process


class Data(Interface):
    Config: ClassVar[Any] = {"name": "mnist"}


class Train(Component):
    Config: ClassVar[Any] = {"data": None, "lr": 0.1, "fail": False}

    def __call__(self) -> None:
        if self.config.fail:
            raise RuntimeError("diverged")
        self.save_summary(loss=0.5)


def population() -> tuple[Data, Train, Train]:
    data = Data({"name": "a"})
    data.save_file("rows.txt", "x" * 1000)
    data.commit()
    finished = get(Train, {"data": data, "lr": 0.1})
    finished.launch()
    failed = get(Train, {"data": data, "lr": 0.2, "fail": True})
    with pytest.raises(Exception):
        failed.launch()
    _updates.flush()  # the index has taken every update: tests change it behind its back
    return data, finished, failed


def kinds(report: retain.VerifyReport) -> list[tuple[str | None, str]]:
    return sorted((p.id or "", p.kind) for p in report.problems)


def age(path: str, seconds: float) -> None:
    """Make `path` (and everything under it) look untouched for `seconds`."""
    then = time.time() - seconds
    for parent, dirs, names in os.walk(path):
        for name in names + dirs:
            os.utime(os.path.join(parent, name), (then, then))
    os.utime(path, (then, then))


# -- a clean storage --------------------------------------------------------------------------


def test_a_clean_storage_verifies_clean(store: Storage, capsys: pytest.CaptureFixture[str]) -> None:
    data, finished, failed = population()
    assert finished.execution.is_finished() and failed.execution.is_failed()
    report = retain.verify()
    assert report.problems == [] and report.ok and report.checked == 3
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"checked 3 record(s) in {store.url}: 0 problem(s)"
    assert main(["verify", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is True and payload["checked"] == 3 and payload["problems"] == []


def test_a_young_directory_without_record_is_a_commit_in_progress(store: Storage) -> None:
    pending = Data({"name": "in progress"})
    pending.save_file("partial.txt", "y")  # saved, not committed yet: not an orphan
    assert retain.verify().problems == []
    assert retain.verify(repair=True).problems == []
    assert os.path.isdir(pending.local_directory())


# -- each problem kind --------------------------------------------------------------------------


def test_an_edited_record_is_an_id_mismatch_that_repair_never_touches(store: Storage) -> None:
    data, finished, _ = population()
    path = os.path.join(data.local_directory(), RECORD_FILE)
    record = json.loads(Path(path).read_text())
    record["canonical_config"]["name"] = "b"  # edited by hand
    Path(path).write_text(json.dumps(record))
    before = Path(path).read_bytes()
    temporary = os.path.join(data.local_directory(), f".retain-tmp-rows.txt.{DEAD_PID}.abcdef")
    Path(temporary).write_text("partial")
    age(temporary, 2 * 3600)
    report = retain.verify()
    assert (data.id, "id-mismatch") in kinds(report) and (data.id, "temporary") in kinds(report)
    mismatch = next(p for p in report.problems if p.kind == "id-mismatch")
    assert data.id in mismatch.what and "hash to" in mismatch.what and "backup" in mismatch.fix
    repaired = retain.verify(repair=True)
    assert not repaired.ok
    assert all(p.repaired is None for p in repaired.problems if p.id == data.id)
    assert Path(path).read_bytes() == before and os.path.exists(temporary)  # left as it was


def test_a_damaged_record_is_reported(store: Storage) -> None:
    data, _, _ = population()
    Path(data.local_directory(), RECORD_FILE).write_text("{ not json")
    report = retain.verify()
    assert (data.id, "record-damaged") in kinds(report)
    assert "not valid JSON" in next(p.what for p in report.problems if p.kind == "record-damaged")
    # Nor is it an orphan, nor in the index comparison: one problem for it.
    assert [p.kind for p in report.problems if p.id == data.id] == ["record-damaged"]


def test_a_missing_input_is_reported_and_left_by_repair(store: Storage) -> None:
    data, finished, failed = population()
    shutil.rmtree(data.local_directory())  # what `rm -rf` does: Train's input is gone
    report = retain.verify()
    assert kinds(report) == sorted([
        (finished.id, "input-missing"), (failed.id, "input-missing"), (data.id, "index-extra"),
    ])
    missing = next(p for p in report.problems if p.kind == "input-missing")
    assert f"Data [{data.id}]" in missing.what and "retain rm" in missing.fix
    repaired = retain.verify(repair=True)
    assert [p.kind for p in repaired.unrepaired] == ["input-missing", "input-missing"]
    assert next(p for p in repaired.problems if p.kind == "index-extra").repaired.startswith("index rebuilt")
    assert kinds(retain.verify()) == sorted([(finished.id, "input-missing"), (failed.id, "input-missing")])


def test_a_damaged_summary_is_reported(store: Storage) -> None:
    _, finished, _ = population()
    Path(finished.local_directory(), SUMMARY_FILE).write_text("[1, 2")
    report = retain.verify()
    assert kinds(report) == [(finished.id, "summary-damaged")]


def test_a_finished_marker_without_its_end_is_reported(store: Storage) -> None:
    _, finished, _ = population()
    os.unlink(os.path.join(finished.local_directory(), end_file(1)))
    report = retain.verify()
    assert kinds(report) == [(finished.id, "run-files")]
    assert "marked finished by run 1" in report.problems[0].what
    assert f"retain rerun {finished.id}" in report.problems[0].fix


def test_claims_with_a_gap_and_an_end_without_claim_are_reported(store: Storage) -> None:
    _, _, failed = population()
    directory = failed.local_directory()
    os.rename(os.path.join(directory, claim_file(1)), os.path.join(directory, claim_file(3)))
    report = retain.verify()
    whats = sorted(p.what for p in report.problems)
    assert [p.kind for p in report.problems] == ["run-files", "run-files"]
    assert any("run(s) 1, 2 are missing" in what for what in whats)
    assert any("run 1 has an end but no claim" in what for what in whats)


def test_a_damaged_end_and_a_damaged_marker_are_reported(store: Storage) -> None:
    _, finished, failed = population()
    Path(failed.local_directory(), end_file(1)).write_text("garbage")
    os.unlink(os.path.join(finished.local_directory(), FINISHED_FILE))
    Path(finished.local_directory(), FINISHED_FILE).write_text('{"status": "failed", "run": 1}')
    whats = sorted(p.what for p in retain.verify().problems)
    assert len(whats) == 2
    assert "end of run 1" in whats[1] or "end of run 1" in whats[0]
    assert any("finished marker" in what for what in whats)


def test_index_disagreements_are_reported_and_repaired(store: Storage, capsys: pytest.CaptureFixture[str]) -> None:
    data, finished, failed = population()
    other = Data({"name": "other"}).commit()
    assert len(get.all(Interface)) == 4  # the index is up to date
    index = make_index(None, store)
    index.remove([other.id])  # the index lost a row
    database = os.path.join(store.url, ".retain", "index.sqlite")
    with sqlite3.connect(database) as connection:  # a row that no longer says what its record says
        tables = [row[0] for row in connection.execute("select name from sqlite_master where type='table'")]
        table = next(name for name in tables if "config" in [c[1] for c in connection.execute(f"pragma table_info({name})")])
        connection.execute(f"update {table} set config = ? where id = ?", ('{"name": "z"}', data.id))
    index.close()
    report = retain.verify()
    assert kinds(report) == sorted([(other.id, "index-missing"), (data.id, "index-differs")])
    assert "config" in next(p.what for p in report.problems if p.kind == "index-differs")
    assert main(["verify"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[-1].endswith("2 problem(s)")
    assert any(line.startswith(f"{other.id}  index-missing  ") and "fix: " in line for line in lines)
    assert main(["verify", "--repair"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert all("[repaired: index rebuilt" in line for line in lines[:-1])
    assert lines[-1].endswith("2 problem(s), 2 repaired, 0 left")
    assert retain.verify().problems == []
    assert sorted(get.all(Data).ids()) == sorted([data.id, other.id])


def test_orphans_older_than_an_hour_are_reported_and_removed_by_repair(store: Storage) -> None:
    population()
    old = Data({"name": "killed commit"})
    old.save_file("weights.txt", "w" * 100)
    os.makedirs(os.path.join(old.local_directory(), "sub"))
    age(old.local_directory(), 2 * 3600)
    young = Data({"name": "still saving"})
    young.save_file("weights.txt", "w")
    report = retain.verify()
    assert kinds(report) == [(old.id, "orphan")]
    assert "no record" in report.problems[0].what and "2.0 h" in report.problems[0].what
    repaired = retain.verify(repair=True)
    assert repaired.ok and repaired.problems[0].repaired == "removed"
    assert not os.path.exists(old.local_directory()) and os.path.isdir(young.local_directory())
    assert os.listdir(removal_area(store.url)) == []  # moved through the removal area, then deleted
    assert retain.verify().problems == []


def test_temporaries_of_killed_writers_are_reported_and_deleted(store: Storage) -> None:
    data, _, _ = population()
    inside = os.path.join(data.local_directory(), f".retain-tmp-rows.txt.{DEAD_PID}.abcdef")
    meta = os.path.join(store.url, ".retain", f".retain-tmp-journal.{DEAD_PID}.123456")
    fresh = os.path.join(data.local_directory(), f".retain-tmp-more.txt.{DEAD_PID}.fedcba")
    alive = os.path.join(data.local_directory(), f".retain-tmp-live.txt.{os.getpid()}.fedcba")
    for path in (inside, meta, fresh, alive):
        Path(path).write_text("partial")
    for path in (inside, meta, alive):
        age(path, 2 * 3600)
    report = retain.verify()
    assert sorted(p.path for p in report.problems if p.kind == "temporary") == sorted([inside, meta])
    assert kinds(report) == sorted([(data.id, "temporary"), ("", "temporary")])
    assert main(["verify", "--repair"]) == 0
    assert not os.path.exists(inside) and not os.path.exists(meta)
    assert os.path.exists(fresh) and os.path.exists(alive)  # a writer may still be at work
    assert data.load_file("rows.txt") == "x" * 1000


def test_leftovers_of_a_killed_removal_are_reported_and_deleted(store: Storage) -> None:
    data, _, _ = population()
    area = removal_area(store.url)
    os.makedirs(area, exist_ok=True)
    leftover = os.path.join(area, f"{'e' * 32}.{DEAD_PID}.0a0b0c0d")
    os.makedirs(leftover)
    Path(leftover, "big.bin").write_bytes(b"z" * 100)
    busy = os.path.join(area, f"{'f' * 32}.{os.getpid()}.0a0b0c0d")  # a removal in progress here
    os.makedirs(busy)
    report = retain.verify()
    assert kinds(report) == [("e" * 32, "removal-leftover")]
    assert retain.verify(repair=True).ok
    assert not os.path.exists(leftover) and os.path.exists(busy)


def test_repair_fixes_the_safe_problems_and_leaves_the_rest(store: Storage) -> None:
    data, finished, failed = population()
    Path(finished.local_directory(), SUMMARY_FILE).write_text("oops")
    orphan = Data({"name": "orphan"})
    orphan.save_file("a.txt", "a")
    age(orphan.local_directory(), 3 * 3600)
    make_index(None, store).remove([failed.id])
    report = retain.verify(repair=True)
    assert sorted((p.kind, p.repaired is not None) for p in report.problems) == [
        ("index-missing", True), ("orphan", True), ("summary-damaged", False),
    ]
    assert not report.ok
    assert kinds(retain.verify()) == [(finished.id, "summary-damaged")]
    assert main(["verify", "--repair"]) == 1


def test_verify_needs_an_existing_storage(tmp_path: Path) -> None:
    assert main(["--storage", str(tmp_path / "nowhere"), "verify"]) == 1
    assert main(["--storage", str(tmp_path / "nowhere"), "du"]) == 1
    assert not (tmp_path / "nowhere").exists()


# -- du -------------------------------------------------------------------------------------------


def bytes_on_disk(directory: str) -> int:
    return sum(
        os.lstat(os.path.join(parent, name)).st_size for parent, _, names in os.walk(directory) for name in names
    )


def test_du_counts_the_bytes_on_disk_per_class_and_lists_the_largest(store: Storage) -> None:
    data, finished, failed = population()
    big = Data({"name": "big"})
    big.save_file("big.txt", "b" * 20_000)
    big.commit()
    usage = retain.du()
    sizes = {i.id: bytes_on_disk(i.local_directory()) for i in (data, finished, failed, big)}
    assert usage.count == 4 and usage.size == sum(sizes.values())
    assert [(c.qualname, c.count) for c in usage.classes] == [("Data", 2), ("Train", 2)]
    assert usage.classes[0].size == sizes[data.id] + sizes[big.id]
    assert usage.classes[0].module == __name__
    assert [(r.id, r.size) for r in usage.largest] == sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
    assert usage.largest[0].id == big.id and usage.largest[0].qualname == "Data"
    assert len(retain.du(largest=1).largest) == 1
    only = retain.du(f"{__name__}:Train")
    assert only.count == 2 and only.size == sizes[finished.id] + sizes[failed.id]
    assert retain.du(__name__).count == 4
    with pytest.raises(InterfaceNotFoundError, match="no committed result of nowhere"):
        retain.du("nowhere")


def test_du_reads_records_without_their_code(store: Storage) -> None:
    data = Data({"name": "a"}).commit()
    path = os.path.join(data.local_directory(), RECORD_FILE)
    record = json.loads(Path(path).read_text())
    assert record["module"] == __name__
    text = Path(path).read_text().replace(f'"module": "{__name__}"', '"module": "gone_module"')
    # A record whose module cannot be imported: its id no longer matches, but du counts it.
    Path(path).write_text(text)
    usage = retain.du("gone_module")
    assert usage.count == 1 and usage.classes[0].module == "gone_module"


def test_du_on_the_command_line(store: Storage, capsys: pytest.CaptureFixture[str]) -> None:
    data, finished, failed = population()
    assert main(["du"]) == 0
    out = capsys.readouterr().out
    assert f"{__name__}:Data\t1\t" in out and f"{__name__}:Train\t2\t" in out
    assert "largest:" in out and data.id in out
    total = bytes_on_disk(data.local_directory()) + bytes_on_disk(finished.local_directory()) \
        + bytes_on_disk(failed.local_directory())
    assert out.strip().splitlines()[-1].startswith("total: 3 result(s), ") and f"({total:,} bytes)" in out
    assert main(["du", f"{__name__}:Train", "--json", "--largest", "1"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["count"] == 2 and len(payload["largest"]) == 1
    assert payload["classes"] == [{"module": __name__, "class": "Train", "count": 2, "size": payload["size"]}]
    assert main(["du", "nowhere"]) == 1
    assert main(["du", "--largest", "-1"]) == 2


# -- object stores ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_verify_and_du_on_an_object_store(kind: str, object_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote = object_store(kind)
    with retain.storage(remote):
        data, finished, failed = population()
        report = retain.verify()
        assert report.problems == [] and report.checked == 3
        usage = retain.du()
        assert usage.count == 3 and usage.size == sum(remote.size(i.id) for i in (data, finished, failed))
        remote.replace_file(finished.id, SUMMARY_FILE, b"oops")
        remote.delete_file(finished.id, end_file(1))
        remote.remove(data.id)  # behind the index's back (not through retain rm)
        assert kinds(retain.verify()) == sorted([
            (finished.id, "summary-damaged"), (finished.id, "run-files"), (finished.id, "input-missing"),
            (failed.id, "input-missing"), (data.id, "index-extra"),
        ])
        repaired = retain.verify(repair=True)
        assert [p.kind for p in repaired.problems if p.repaired] == ["index-extra"]
        assert (data.id, "index-extra") not in kinds(retain.verify())


IN_A_FRESH_PROCESS = """
import json, sys
import retain
from retain import _health
_health.PARALLEL_MIN = 1
_health._CHUNK = 2
_health._AHEAD = 2  # fewer chunks in flight than there are: the window moves
pool = _health._pool
started = []
def spy(storage, count):
    found = pool(storage, count)
    started.append(found is not None)
    return found
_health._pool = spy
print(json.dumps({"started": started, "verify": retain.verify(storage=sys.argv[1]).as_dict(),
                  "usage": retain.du(largest=3, storage=sys.argv[1]).as_dict()}))
"""


def in_workers(store: Storage) -> dict[str, Any]:
    """`verify` and `du(largest=3)` of `store` in a fresh process (one thread: it may fork), in
    worker processes that check two directories at a time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    out = subprocess.run([sys.executable, "-c", IN_A_FRESH_PROCESS, store.url],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    assert result["started"] == [True, True]  # workers, for both
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2, reason="fork, two CPUs")
def test_worker_processes_find_what_this_process_finds(store: Storage) -> None:
    """Workers are forked by a process with one thread (a fresh one here: this one may have
    others), and find the same problems as checking in the process."""
    data, finished, failed = population()
    Path(finished.local_directory(), SUMMARY_FILE).write_text("oops")
    os.unlink(os.path.join(failed.local_directory(), claim_file(1)))
    orphan = Data({"name": "orphan"})
    orphan.save_file("a.txt", "a")
    age(orphan.local_directory(), 2 * 3600)
    temporary = os.path.join(data.local_directory(), f".retain-tmp-x.txt.{DEAD_PID}.abcdef")
    Path(temporary).write_text("partial")
    age(temporary, 2 * 3600)
    here = retain.verify()
    assert sorted(p.kind for p in here.problems) == ["orphan", "run-files", "summary-damaged", "temporary"]
    assert in_workers(store)["verify"] == here.as_dict()


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2, reason="fork, two CPUs")
def test_du_in_worker_processes_counts_what_this_process_counts(store: Storage) -> None:
    """du reads the records and sizes in forked workers, a few chunks at a time, and keeps only
    the largest it reports: the same answer as in the process."""
    population()
    for n in range(7):
        extra = Data({"name": f"extra-{n}"})
        extra.save_file("pad.txt", "p" * (1000 * (n % 3)))  # ties in size: ordered by id
        extra.commit()
    here = retain.du(largest=3)
    sizes = {i.id: bytes_on_disk(i.local_directory()) for i in get.all(Interface)}
    assert len(set(sizes.values())) < len(sizes)  # ties, which the ids order
    assert [(r.id, r.size) for r in here.largest] == sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:3]
    result = in_workers(store)
    assert result["usage"] == here.as_dict() and here.count == 10
    assert result["verify"] == retain.verify().as_dict()


def test_a_damaged_index_is_reported_and_rebuilt(store: Storage) -> None:
    data, finished, failed = population()
    from conftest import close_default_indexes

    close_default_indexes()
    database = Path(store.url, ".retain", "index.sqlite")
    for extra in ("-wal", "-shm"):
        Path(str(database) + extra).unlink(missing_ok=True)
    database.write_bytes(b"this is not a database" * 100)
    report = retain.verify()
    assert [p.kind for p in report.problems] == ["index-damaged"]
    assert "cannot be read" in report.problems[0].what
    assert retain.verify(repair=True).ok
    assert retain.verify().problems == []
    assert sorted(get.all(Interface).ids()) == sorted([data.id, finished.id, failed.id])


def test_a_sharded_storage(tmp_path: Path) -> None:
    sharded = retain.LocalStorage(tmp_path / "sharded", shard=2)
    with retain.storage(sharded):
        data, finished, _ = population()
        assert os.path.dirname(os.path.dirname(data.local_directory())) == sharded.url
        orphan = Data({"name": "orphan"})
        orphan.save_file("a.txt", "a")
        age(orphan.local_directory(), 2 * 3600)
        Path(finished.local_directory(), SUMMARY_FILE).write_text("oops")
        assert kinds(retain.verify()) == sorted([(orphan.id, "orphan"), (finished.id, "summary-damaged")])
        assert retain.du().count == 3
        retain.verify(repair=True)
        assert not os.path.exists(orphan.local_directory()) and data.is_committed()
        assert kinds(retain.verify()) == [(finished.id, "summary-damaged")]
