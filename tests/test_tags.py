"""Tags and notes: `Interface.tag`, `untag`, `tags`, `note`, `notes`; not part of identity;
indexed (``where={"tags": has(...)}``, SQLite and PostgreSQL), through the journal and
rebuilds; `tagged_ids`; object stores; two processes tagging at once; SIGKILL mid-tag."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import retain
from retain import ConfigError, Component, Interface, InterfaceNotFoundError, Storage, TagError, get, has
from retain._annotations import annotate, read, tagged_ids
from retain._fs import TEMP_PREFIX
from retain.index import _updates, make_index
from retain.storage import LocalStorage
from retain.storage.layout import ANNOTATED_DIR, ANNOTATIONS_FOLDER, RECORD_FILE, STORAGE_META_DIR

from conftest import WORKERS_DIR

POSTGRES_URL = os.environ.get("RETAIN_TEST_POSTGRES_URL") or "postgresql://retain:retain@127.0.0.1:54329/retain_test"


class Train(Interface):
    Config: ClassVar[Any] = {"lr": 0.1, "tags": []}


class Job(Component):
    Config: ClassVar[Any] = {"n": 0}

    def __call__(self) -> None:
        self.save_file("out.txt", f"run {self.config.n}")


def sweep(n: int = 3) -> list[Train]:
    return [Train({"lr": 0.1 * (i + 1)}).commit() for i in range(n)]


# -- the API ------------------------------------------------------------------------------------


def test_tag_untag_and_tags(store: Storage) -> None:
    run = Train().commit()
    assert run.tags == frozenset()
    assert run.tag("best", "v1") is run
    assert run.tags == {"best", "v1"}
    run.tag("best")  # already there: nothing changes
    run.untag("v1", "never-there")
    assert run.tags == {"best"}
    # Another instance of the same identity reads the same tags: they live in storage.
    assert get(Train, {}).tags == {"best"}
    assert Interface.from_directory(run.local_directory()).tags == {"best"}


def test_tags_and_notes_are_not_part_of_identity(store: Storage) -> None:
    run = Train().commit()
    record = Path(run.local_directory(), RECORD_FILE).read_bytes()
    run.tag("best").note("looks good")
    assert Path(run.local_directory(), RECORD_FILE).read_bytes() == record
    again = get(Train, {})
    assert again.id == run.id and again.is_committed()
    assert again.files() == [RECORD_FILE]  # events are retain's files, not the result's


def test_only_committed_interfaces_take_tags_and_notes(store: Storage) -> None:
    draft = Train({"lr": 0.5})
    for change in (lambda: draft.tag("best"), lambda: draft.untag("best"), lambda: draft.note("x")):
        with pytest.raises(InterfaceNotFoundError, match=r"not committed .*commit it first"):
            change()
    assert draft.tags == frozenset() and draft.notes == []  # reading is fine: it has none
    assert not os.path.exists(draft.local_directory())  # nothing was written
    with pytest.raises(InterfaceNotFoundError, match="not committed"):
        annotate(store, "0" * 32, add=["best"])


@pytest.mark.parametrize("name", ["", "a b", "a,b", "-x", ".x", "tab\there", "x" * 101, "été", 3, None])
def test_tag_names_are_checked(store: Storage, name: Any) -> None:
    run = Train().commit()
    with pytest.raises(TagError, match=r"is not a valid tag: a tag is 1 to 100 characters: letters, digits"):
        run.tag("ok", name)
    assert run.tags == frozenset()  # none of them: the call is refused whole
    with pytest.raises(TagError):
        has(name)


@pytest.mark.parametrize("name", ["best", "v1.2", "lr=0.1", "team/alice", "run:3", "a+b", "me@lab", "_x", "9"])
def test_good_tag_names(store: Storage, name: str) -> None:
    run = Train().commit().tag(name)
    assert run.tags == {name}
    assert get.all(Train, where={"tags": has(name)}).ids() == [run.id]


def test_note_is_replaced_and_its_history_kept(store: Storage) -> None:
    run = Train().commit()
    assert run.notes == []
    run.note("lr too high")
    run.note("actually fine")
    assert [n.text for n in run.notes] == ["lr too high", "actually fine"]
    assert all(n.time.endswith("Z") for n in run.notes)
    assert read(store, run.id).note == "actually fine"
    run.note("")  # cleared; the history stays
    assert read(store, run.id).note is None
    assert [text for _, text in run.notes] == ["lr too high", "actually fine", ""]
    assert run.tags == frozenset()  # notes do not touch tags


def test_bad_notes_are_refused(store: Storage) -> None:
    run = Train().commit()
    with pytest.raises(TagError, match="a note is a string"):
        run.note(3)  # type: ignore[arg-type]
    with pytest.raises(TagError, match="at most 10,000 characters"):
        run.note("x" * 10_001)
    assert run.notes == []


def test_events_are_files_beside_the_record(store: Storage) -> None:
    run = Train().commit().tag("a").untag("a").note("n")
    folder = Path(run.local_directory(), *ANNOTATIONS_FOLDER.split("/"))
    names = sorted(os.listdir(folder))
    assert len(names) == 3 and all(name.endswith(".json") and len(name.split("-")[0]) == 20 for name in names)
    events = [json.loads((folder / name).read_text()) for name in names]
    assert [(e["add"], e["remove"], e.get("note")) for e in events] == [(["a"], [], None), ([], ["a"], None), ([], [], "n")]
    assert all(e["format"] == "retain.annotation" for e in events)
    assert (Path(store.url) / STORAGE_META_DIR / ANNOTATED_DIR / run.id).is_file()
    # A damaged event (edited by hand) is skipped, not fatal.
    (folder / "99999999999999999999-ffffffff.json").write_text("{not json")
    assert run.tags == frozenset() and [n.text for n in run.notes] == ["n"]


# -- the index ----------------------------------------------------------------------------------


def test_get_all_where_has(store: Storage) -> None:
    a, b, c = sweep()
    a.tag("best", "v1")
    b.tag("v1")
    assert get.all(Train, where={"tags": has("v1")}).ids() == [b.id, a.id]  # newest first
    assert get.all(Train, where={"tags": has("best", "v1")}).ids() == [a.id]
    assert get.all(Train, where={"tags": has("best"), "lr": 0.2}).ids() == []
    assert get.all(Train, where={"tags": has("nope")}).ids() == []
    assert get.all(Interface, where={"tags": has("best")}).ids() == [a.id]
    a.untag("best")
    assert get.all(Train, where={"tags": has("best")}).ids() == []
    assert tagged_ids() == {a.id, b.id}
    # Filtering a collection (over its rows, in Python) agrees.
    assert get.all(Train).filter({"tags": has("v1")}).ids() == [b.id, a.id]
    table = {row["id"]: row for row in get.all(Train).to_table()}
    assert table[a.id]["tags"] == ["v1"] and "tags" not in table[c.id]


def test_a_config_key_named_tags_is_still_a_config_key(store: Storage) -> None:
    run = Train({"tags": ["x"]}).commit()
    run.tag("best")
    assert get.all(Train, where={"tags": ["x"]}).ids() == [run.id]
    assert get.all(Train, where={"config.tags": ["x"]}).ids() == [run.id]
    assert get.all(Train, where={"tags": has("x")}).ids() == []  # has() is about tags only


def test_has_is_for_tags_only(store: Storage) -> None:
    with pytest.raises(ConfigError, match=r"has\(\) filters tags only"):
        get.all(Train, where={"lr": has("best")})
    with pytest.raises(TagError, match="one or more tag names"):
        has()


def test_the_index_follows_through_the_journal(store: Storage) -> None:
    """A tag change whose index update never happened (deferred, or a killed process) is read
    back by the next query: the journal line was written before the event."""
    a, b, _ = sweep()
    with _updates.updates("deferred"):
        a.tag("best")
        b.tag("best")
        b.untag("best")
    assert get.all(Train, where={"tags": has("best")}).ids() == [a.id]


def test_a_rebuild_recovers_tags_from_storage(store: Storage) -> None:
    a, b, _ = sweep()
    a.tag("best")
    b.tag("best").untag("best").tag("other")
    os.unlink(os.path.join(store.url, STORAGE_META_DIR, "index.sqlite"))  # (the cache is gone)
    retain.index._resolve._defaults.clear()
    assert retain.index.rebuild() == 3
    assert get.all(Train, where={"tags": has("best")}).ids() == [a.id]
    assert tagged_ids() == {a.id, b.id}
    assert retain.index.rebuild() == 3  # an index that had them: replaced, the same
    assert tagged_ids(store) == {a.id, b.id}


def test_a_rebuild_reads_events_of_annotated_ids_only(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = sweep(5)
    runs[0].tag("best")
    listed: list[tuple[str, str]] = []
    original = LocalStorage.list_folder

    def counting(self: LocalStorage, id: str, folder: str) -> list[str]:
        listed.append((id, folder))
        return original(self, id, folder)

    monkeypatch.setattr(LocalStorage, "list_folder", counting)
    retain.index.rebuild()
    assert listed == [(runs[0].id, ANNOTATIONS_FOLDER)]  # never the four results without tags
    assert tagged_ids() == {runs[0].id}


def test_a_directory_copied_in_by_hand_brings_its_tags(store: Storage, tmp_path: Path) -> None:
    run = Train().commit().tag("best")
    other = tmp_path / "other"
    with retain.storage(other) as there:
        Train({"lr": 0.7}).commit()  # the other storage exists, with its index
        shutil.copytree(run.local_directory(), there.local_directory(run.id))  # not marked there
        time.sleep(0.01)
        assert get.all(Train, where={"tags": has("best")}).ids() == [run.id]
    assert (other / STORAGE_META_DIR / ANNOTATED_DIR / run.id).is_file()  # marked by the scan


def test_deleting_a_tagged_result_drops_its_tags(store: Storage) -> None:
    a, b, _ = sweep()
    a.tag("best")
    b.tag("best")
    a.delete()
    assert tagged_ids() == {b.id}
    assert get.all(Train, where={"tags": has("best")}).ids() == [b.id]
    again = Train({"lr": a.config.lr}).commit()  # the same identity, committed anew: no tags
    assert again.id == a.id and again.tags == frozenset()
    assert tagged_ids() == {b.id}


def test_a_rerun_keeps_the_tags(store: Storage) -> None:
    job = Job().launch()
    job.tag("keep").note("first try")
    job.rerun()
    assert job.tags == {"keep"} and job.notes[-1].text == "first try"
    assert get.all(Job, where={"tags": has("keep")}).ids() == [job.id]


def test_postgresql_index(store: Storage) -> None:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"
    try:
        with retain.settings(index=url):
            a, b, _ = sweep()
            a.tag("best", "v1")
            b.tag("v1")
            assert get.all(Train, where={"tags": has("v1")}).ids() == [b.id, a.id]
            assert get.all(Train, where={"tags": has("best", "v1"), "lr": 0.1}).ids() == [a.id]
            assert make_index().tags() == {a.id: ["best", "v1"], b.id: ["v1"]}
            with _updates.updates("deferred"):
                b.untag("v1")
            assert get.all(Train, where={"tags": has("v1")}).ids() == [a.id]  # through the journal
            assert retain.index.rebuild() == 3
            assert tagged_ids() == {a.id}
            a.delete()
            assert tagged_ids() == set()
    finally:
        import psycopg

        for key, index in list(retain.index._resolve._by_url.items()):
            if schema in key:
                index.close()
                del retain.index._resolve._by_url[key]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_object_store(kind: str, object_store: Any) -> None:
    storage = object_store(kind)
    with retain.storage(storage):
        a, b, _ = sweep()
        a.tag("best").note("the one")
        b.tag("best").untag("best")
        assert get(Train, {"lr": a.config.lr}).tags == {"best"}
        assert [n.text for n in a.notes] == ["the one"]
        assert get.all(Train, where={"tags": has("best")}).ids() == [a.id]
        assert storage.list_meta(ANNOTATED_DIR) == sorted([a.id, b.id])
        assert retain.index.rebuild() == 3
        assert tagged_ids() == {a.id}
        assert a.files() == [RECORD_FILE]
        a.delete()
        assert storage.list_folder(a.id, ANNOTATIONS_FOLDER) == []  # removed with the result
        assert tagged_ids() == set()


# -- processes ------------------------------------------------------------------------------------

ROUNDS = 40


@pytest.fixture(params=["sqlite", "postgresql"])
def index_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"
    monkeypatch.setenv("RETAIN_INDEX", url)
    yield url
    import psycopg

    for key, index in list(retain.index._resolve._by_url.items()):
        if schema in key:
            index.close()
            del retain.index._resolve._by_url[key]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _worker(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": WORKERS_DIR}
    return subprocess.Popen(
        [sys.executable, os.path.join(WORKERS_DIR, "tag_worker.py"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=WORKERS_DIR,
    )


def test_two_processes_tagging_at_once_lose_nothing(store: Storage, tmp_path: Path, index_url: str | None) -> None:
    run = Train().commit()
    start = tmp_path / "start"
    workers = [_worker(store.url, run.id, "race", prefix, str(ROUNDS), str(start)) for prefix in ("p", "q")]
    time.sleep(0.5)  # both started, waiting
    start.touch()
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    expected = {f"{prefix}-{i}" for prefix in ("p", "q") for i in range(ROUNDS)}
    assert run.tags == expected  # in storage: every event of both
    folder = Path(run.local_directory(), *ANNOTATIONS_FOLDER.split("/"))
    writers = [json.loads((folder / name).read_text())["add"] for name in sorted(os.listdir(folder))]
    order = "".join(added[0][0] for added in writers if added)
    assert "pq" in order and "qp" in order, "the two processes did not tag at the same time"
    # In the index, without any repair (each writer read the events inside its write)...
    assert make_index(index_url, store).tags([run.id]) == {run.id: sorted(expected)}
    # ... and after the next query too.
    assert get.all(Train, where={"tags": has("p-0", f"q-{ROUNDS - 1}")}).ids() == [run.id]
    assert not any(get.all(Train, where={"tags": has(f"{p}-gone")}).ids() for p in ("p", "q"))


KILLS = 8


def test_sigkill_mid_tag_leaves_the_old_or_the_new_state(store: Storage, index_url: str | None) -> None:
    """A worker adds t0, t1, ... one event each; killed at random times. Its tags are always a
    whole prefix t0..tk (the last change is all there or absent, never torn), no partial event
    is ever read, and the index agrees after one query."""
    run = Train().commit()
    rng = random.Random(13)
    folder = Path(run.local_directory(), *ANNOTATIONS_FOLDER.split("/"))
    done = -1
    for _ in range(KILLS):
        worker = _worker(store.url, run.id, "loop")
        assert worker.stdout is not None
        first = worker.stdout.readline()  # it is writing
        assert first.strip().isdigit(), worker.stderr.read() if worker.stderr else ""
        time.sleep(rng.random() * 0.3)
        worker.send_signal(signal.SIGKILL)
        printed = [int(line) for line in [first, *worker.stdout.read().split()] if line.strip()]
        worker.wait()
        tags = run.tags
        count = len(tags)
        assert tags == {f"t{i}" for i in range(count)}, "not a whole prefix of the changes"
        assert count >= max(printed) + 1  # what it said was written is there
        done = max(done, count)
        for name in os.listdir(folder):  # every event file is whole JSON (temporaries aside)
            if not name.startswith(TEMP_PREFIX):
                json.loads((folder / name).read_bytes())
        # The index may have missed the last change (killed before it wrote it): one query
        # repairs it from the journal.
        assert get.all(Train, where={"tags": has(*tags)}).ids() == [run.id]
        assert make_index(index_url, store).tags([run.id]) == {run.id: sorted(tags)}
    assert done > 0


# -- storages and health ------------------------------------------------------------------------


def test_a_tagged_storage_verifies_clean(store: Storage) -> None:
    a, b, _ = sweep()
    a.tag("best").note("n")
    b.tag("x").untag("x")
    report = retain.verify()
    assert report.ok and report.problems == [] and report.checked == 3


def test_sharded_storage(tmp_path: Path) -> None:
    with retain.storage(LocalStorage(tmp_path / "sharded", shard=2)) as storage:
        a, b, _ = sweep()
        a.tag("best")
        assert Path(storage.local_directory(a.id), ".retain", "annotations").is_dir()
        assert get.all(Train, where={"tags": has("best")}).ids() == [a.id]
        assert retain.index.rebuild() == 3 and tagged_ids() == {a.id}


@pytest.mark.parametrize("kind", ["local", "memory", "s3"])
def test_list_folder_and_list_meta(kind: str, object_store: Any, store: Storage) -> None:
    storage = store if kind == "local" else object_store(kind)
    with retain.storage(storage):
        run = Train().commit()
    assert storage.list_folder(run.id, ANNOTATIONS_FOLDER) == []  # no such folder: nothing, no error
    assert storage.list_meta(ANNOTATED_DIR) == []
    if not storage.is_remote:
        os.makedirs(Path(storage.local_directory(run.id), *ANNOTATIONS_FOLDER.split("/")))
    for name in ("b.json", "a.json"):
        assert storage.create_file(run.id, f"{ANNOTATIONS_FOLDER}/{name}", b"{}")
    assert storage.list_folder(run.id, ANNOTATIONS_FOLDER) == ["a.json", "b.json"]  # sorted
    assert storage.create_meta(f"{ANNOTATED_DIR}/{run.id}", b"")
    assert not storage.create_meta(f"{ANNOTATED_DIR}/{run.id}", b"")
    assert storage.list_meta(ANNOTATED_DIR) == [run.id]
