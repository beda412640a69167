"""Object-store storage against a real S3-compatible server (SeaweedFS on 127.0.0.1, started by
scripts/services/s3.sh, which scripts/test runs; tests/conftest.py starts it too when it is not up).
Never mocked, never skipped: a server that cannot start fails these tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import retain
from retain import Component, Interface, StorageError, get, lt
from retain.storage import Storage, make_storage
from retain.storage.fsspec import FsspecStorage
from retain.storage.layout import FINISHED_FILE, OUTPUT_LOG, RECORD_FILE, claim_file
from retain.testing.execution import ExecutionConformance
from retain.testing.storage import StorageConformance

from conftest import WORKERS_DIR, new_url
from s3_worker import RaceItem, save_again
from retain.runs.files import RunFiles

@pytest.fixture
def s3(s3_env: dict[str, str]) -> Iterator[FsspecStorage]:
    storage = make_storage(new_url(s3_env))
    assert isinstance(storage, FsspecStorage)
    with retain.storage(storage):
        yield storage


class TestS3StorageConformance(StorageConformance):
    @pytest.fixture
    def storage(self, s3_env: dict[str, str]) -> Storage:
        return make_storage(new_url(s3_env))


class Item(Interface):
    Config = {"i": 0}


def count_requests(storage: FsspecStorage) -> list[tuple[str, str]]:
    """Every HTTP request the storage's S3 client sends from now on, as (method, url)."""
    storage._check()
    calls: list[tuple[str, str]] = []
    storage.fs.s3.meta.events.register(
        "before-send.s3", lambda request, **_: calls.append((request.method, request.url))
    )
    return calls


def test_layout_in_the_bucket(s3: FsspecStorage) -> None:
    item = Item({"i": 1})
    item.save_file("deep/values.json", [1, 2])
    item.commit()
    keys = sorted(k[len(s3.root) + 1:] for k in s3.fs.find(s3.root))
    own = [k for k in keys if k.startswith(".retain/")]
    assert [k for k in keys if k not in own] == [f"{item.id}/deep/values.json", f"{item.id}/{RECORD_FILE}"]
    # The storage's identity baselines live in the store, where every machine reads them.
    assert len(own) == 2 and own[1] == ".retain/baselines/ready.json"
    assert json.loads(s3.fs.cat_file(f"{s3.root}/{item.id}/{RECORD_FILE}"))["id"] == item.id


def test_round_trips_per_operation(s3: FsspecStorage) -> None:
    """`get` of a committed interface is one request; a commit is two (a look for an
    interrupted removal of its id, the record; plus a check and an upload per file, when it
    has files; their versions are computed, not read back)."""
    Item({"i": 0}).commit()  # the first use also checks the bucket once
    calls = count_requests(s3)
    Item({"i": 1}).commit()
    assert [m for m, _ in calls] == ["HEAD", "PUT"]
    calls.clear()
    found = get(Item, {"i": 1})
    assert found.is_committed() and [m for m, _ in calls] == ["GET"]
    calls.clear()
    missing = get(Item, {"i": 2})
    assert len(calls) == 1 and not missing.is_committed()
    with_file = Item({"i": 3})
    with_file.save_file("x.txt", "x")
    calls.clear()
    with_file.commit()
    assert [m for m, _ in calls] == ["HEAD", "HEAD", "PUT", "PUT"] and calls[3][1].endswith(RECORD_FILE)


def test_files_are_fetched_into_the_cache(s3: FsspecStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another machine (another cache) sees the files, fetched on first read, then local."""
    item = Item({"i": 4})
    item.save_file("a.json", {"a": 1})
    item.commit()
    item.save_file("b.txt", "after commit")
    monkeypatch.setenv("RETAIN_CACHE_DIR", str(tmp_path / "other-machine"))
    other = FsspecStorage(s3.url)
    assert other.cache != s3.cache
    found = get(Item, {"i": 4}, storage=other)
    assert not os.path.exists(os.path.join(found.local_directory(), "a.json"))
    assert found.load_file("a.json") == {"a": 1} and found.load_file("b.txt") == "after commit"
    assert os.path.isfile(os.path.join(found.local_directory(), "a.json"))
    calls = count_requests(other)
    assert found.load_file("a.json") == {"a": 1} and [m for m, _ in calls] == ["HEAD"]  # checked, not fetched
    assert Interface.from_directory(found.local_directory()) == item


def test_a_file_saved_again_elsewhere_is_read_anew(s3: FsspecStorage, tmp_path: Path) -> None:
    """Each machine reads the stored version of a file, whoever saved it last; an unchanged
    copy in the cache costs one HEAD, and a commit's own files are not fetched back."""
    item = Item({"i": 5})
    item.save_file("model.json", {"epoch": 1})
    item.save_summary(loss=1.0)
    item.commit()
    calls = count_requests(s3)
    assert item.load_file("model.json") == {"epoch": 1} and [m for m, _ in calls] == ["HEAD"]
    other = FsspecStorage(s3.url, cache_dir=tmp_path / "other-machine")
    there = get(Item, {"i": 5}, storage=other)
    assert there.load_file("model.json") == {"epoch": 1} and there.load_summary() == {"loss": 1.0}
    with pytest.raises(retain.ImmutableError, match="overwrite=True"):
        there.save_file("model.json", {"epoch": 2})  # committed, and the store has the file
    there.save_file("model.json", {"epoch": 2}, overwrite=True)  # saved again on the other machine
    there.save_summary(loss=0.5)
    assert item.load_file("model.json") == {"epoch": 2} and item.load_summary() == {"loss": 0.5}
    item.save_file("model.json", {"epoch": 3}, overwrite=True)
    assert there.load_file("model.json") == {"epoch": 3}
    calls.clear()
    assert item.load_file("model.json") == {"epoch": 3} and [m for m, _ in calls] == ["HEAD"]


def test_a_fetch_records_the_version_it_got_not_the_one_it_looked_up(s3: FsspecStorage, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Another machine saves the file between this machine's HEAD and its GET, then saves the
    first content back: the copy fetched is recorded as what it is (its own ETag), so the
    machine reads the stored file, never the copy under the version it looked up."""
    item = Item({"i": 6})
    item.save_file("model.json", {"epoch": 1})
    item.commit()
    other = FsspecStorage(s3.url, cache_dir=tmp_path / "other-machine")
    there = get(Item, {"i": 6}, storage=other)
    fetch = FsspecStorage._fetch

    def saved_meanwhile(self: FsspecStorage, id: str, name: str, info: Any) -> bool:
        if self is other:  # looked up {"epoch": 1}; another machine saves {"epoch": 2}
            save_again(item, "model.json", {"epoch": 2})
        return fetch(self, id, name, info)

    monkeypatch.setattr(FsspecStorage, "_fetch", saved_meanwhile)
    assert there.load_file("model.json") == {"epoch": 2}  # what the GET got
    monkeypatch.setattr(FsspecStorage, "_fetch", fetch)
    save_again(item, "model.json", {"epoch": 1})  # the first content again: the first ETag
    assert there.load_file("model.json") == {"epoch": 1}


def test_a_multipart_upload_records_the_etag_the_store_gives(s3: FsspecStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file large enough for a multipart upload (parts made small here) is recorded under
    the ETag computed from its parts, the one the store gives: read back without a fetch."""
    import s3fs.core

    monkeypatch.setattr(s3fs.core, "calculate_chunksize", lambda size, chunksize=None, max_parts=10_000: 5 * 2**20)
    item = Item({"i": 8}).commit()
    text = os.urandom(int(5.5 * 2**20)).hex()  # 11 MiB: three parts
    save_again(item, "big.txt", text)
    head = s3.fs.call_s3("head_object", Bucket=s3.bucket, Key=f"{s3.root.split('/', 1)[1]}/{item.id}/big.txt")
    assert head["ETag"].endswith('-3"')
    calls = count_requests(s3)
    assert item.load_file("big.txt") == text and [m for m, _ in calls] == ["HEAD"]


def test_adopting_commit_keeps_the_stored_files(s3: FsspecStorage, tmp_path: Path) -> None:
    """A committer that finds its identity committed meanwhile changes nothing stored: it
    adopts the record, and its own copies give way to the stored files."""
    late_machine = FsspecStorage(s3.url, cache_dir=tmp_path / "late-machine")
    with retain.storage(late_machine):
        late = Item({"i": 20})
        late.save_file("result.txt", "second")  # not committed anywhere yet: local only
    first = Item({"i": 20})
    first.save_file("result.txt", "first")
    first.commit()
    with retain.storage(late_machine):
        late.commit()
        assert late.record == first.record
        assert late.load_file("result.txt") == "first"
    assert s3.fs.cat_file(f"{s3.root}/{first.id}/result.txt") == b"first"


def spawn(mode: str, url: str, index: int, flag: Path, env: dict[str, str], cache: Path) -> subprocess.Popen[str]:
    environment = {**os.environ, **env, "RETAIN_CACHE_DIR": str(cache),
                   "PYTHONPATH": os.pathsep.join(p for p in (WORKERS_DIR, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.Popen([sys.executable, "-m", "s3_worker", mode, url, str(index), str(flag)],
                            cwd=WORKERS_DIR, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def aws_env() -> dict[str, str]:
    return {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED")}


def read_in_fresh_processes(url: str, index: int, caches: list[Path], tmp_path: Path) -> list[str]:
    procs = [spawn("read", url, index, tmp_path / "unused", aws_env(), cache) for cache in caches]
    reads = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        reads.append(json.loads(out.strip().splitlines()[-1])["read"])
    return reads


def test_processes_committing_one_identity_end_with_one(s3: FsspecStorage, tmp_path: Path) -> None:
    """Four processes, as four machines (each its own cache), commit one identity at once:
    one publish wins, every process ends with the winner's record, the store has one."""
    barrier = tmp_path / "go"
    machines = [tmp_path / f"machine-{n}" for n in range(4)]
    procs = [spawn("race", s3.url, 7, barrier, aws_env(), cache) for cache in machines]
    time.sleep(1.5)  # let them import and reach the barrier
    barrier.touch()
    results: list[dict[str, Any]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["won"] for r in results) == 1
    winner = next(r["record"] for r in results if r["won"])
    assert all(r["record"] == winner for r in results)
    stored = get(RaceItem, {"i": 7})
    assert stored.record == winner
    assert list(s3.iter_ids()) == [winner["id"]]
    # Every machine reads the file the store holds (whichever commit uploaded it last).
    payload = s3.fs.cat_file(f"{s3.root}/{winner['id']}/payload.txt").decode()
    assert payload.startswith("written by pid")
    assert stored.load_file("payload.txt") == payload and [r["read"] for r in results] == [payload] * 4
    assert read_in_fresh_processes(s3.url, 7, machines, tmp_path) == [payload] * 4


def test_a_commit_records_its_own_upload_not_the_one_a_losing_machine_made(s3: FsspecStorage,
                                                                            tmp_path: Path) -> None:
    """Two machines commit one identity, each with its own copy of a file; the loser uploads
    its copy after the winner's, before the winner has finished. The winner records the version
    its own upload made (never the one a later listing finds, the loser's), so both machines
    read the file the store holds, then and in fresh processes."""
    flag = str(tmp_path / "step")
    machines = {role: tmp_path / role for role in ("first", "second")}
    procs = {role: spawn(role, s3.url, 40, Path(flag), aws_env(), cache) for role, cache in machines.items()}
    results = {}
    for role, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results[role] = json.loads(out.strip().splitlines()[-1])
    assert results["first"]["won"] and not results["second"]["won"]
    stored = s3.fs.cat_file(f"{s3.root}/{RaceItem({'i': 40}).id}/payload.txt").decode()
    assert stored == f"written by pid {results['second']['pid']}"  # the loser's upload came last
    assert [results[role]["read"] for role in machines] == [stored] * 2
    assert read_in_fresh_processes(s3.url, 40, list(machines.values()), tmp_path) == [stored] * 2


def test_machines_saving_one_file_at_once_read_the_stored_file(s3: FsspecStorage, tmp_path: Path) -> None:
    """Four machines save one file of a committed interface at once, again and again: each
    records the version its own upload made (never one a later HEAD finds, another machine's),
    so after each round every machine reads the one version the store holds, then and in
    fresh processes."""
    from s3_worker import MACHINES, ROUNDS

    item = RaceItem({"i": 50})
    item.save_file("payload.txt", "first")
    item.commit()
    barrier = tmp_path / "go"
    machines = [tmp_path / f"machine-{n}" for n in range(MACHINES)]
    procs = [spawn("save", s3.url, 50, barrier, aws_env(), cache) for cache in machines]
    time.sleep(1.5)  # let them import and reach the barrier
    barrier.touch()
    reads = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        reads.append(json.loads(out.strip().splitlines()[-1])["reads"])
    for round in range(ROUNDS):
        assert len({machine[round] for machine in reads}) == 1, (round, [machine[round] for machine in reads])
    stored = s3.fs.cat_file(f"{s3.root}/{item.id}/payload.txt").decode()
    assert [machine[-1] for machine in reads] == [stored] * MACHINES
    assert read_in_fresh_processes(s3.url, 50, machines, tmp_path) == [stored] * MACHINES


def test_killed_commit_is_invisible(s3: FsspecStorage, tmp_path: Path) -> None:
    """A commit killed between the upload of its files and its record leaves nothing visible;
    the next commit of the identity succeeds."""
    ready = tmp_path / "uploaded"
    proc = spawn("crash", s3.url, 9, ready, aws_env(), tmp_path / "crashing-machine")
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the worker never uploaded"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    item = RaceItem({"i": 9})
    assert s3.fs.exists(f"{s3.root}/{item.id}/payload.txt")  # uploaded, then killed
    assert not get(RaceItem, {"i": 9}).is_committed()
    assert list(s3.iter_ids()) == [] and list(s3.iter_directories()) == [item.id]
    assert len(get.all(RaceItem)) == 0
    item.save_file("payload.txt", "second try")
    item.commit()
    assert get(RaceItem, {"i": 9}).is_committed() and len(get.all(RaceItem)) == 1
    assert s3.fs.cat_file(f"{s3.root}/{item.id}/payload.txt") == b"second try"


def test_index_sees_other_machines_after_a_listing(s3: FsspecStorage, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from retain.index import base as index_base

    mine = [Item({"i": n}).commit() for n in range(3)]
    assert len(get.all(Item)) == 3
    # Another machine: its own cache, and neither its journal nor its index are ours.
    other = FsspecStorage(s3.url, cache_dir=tmp_path / "other-machine")
    with retain.storage(other), retain.index.updates("off"):
        theirs = Item({"i": 10}).commit()
    assert len(get.all(Item)) == 3  # listed less than RELIST_NS ago: not yet
    monkeypatch.setattr(index_base, "RELIST_NS", 0)
    assert set(get.all(Item).ids()) == {i.id for i in mine} | {theirs.id}


# -- components on the object store --------------------------------------------------------


def launcher(url: str, index: int, env: dict[str, str], cache: Path, *extra: str) -> subprocess.Popen[str]:
    """``python -m component_worker launch`` as another machine: its own cache directory."""
    environment = {**os.environ, **env, "RETAIN_CACHE_DIR": str(cache),
                   "PYTHONPATH": os.pathsep.join(p for p in (WORKERS_DIR, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.Popen([sys.executable, "-m", "component_worker", "launch", "--storage", url,
                             "--index", str(index), *extra],
                            cwd=WORKERS_DIR, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_component_runs_on_the_store_and_another_machine_reads_its_state(s3: FsspecStorage,
                                                                           tmp_path: Path) -> None:
    from component_worker import Work

    work = get(Work, {"index": 3, "counter": str(tmp_path / "counter")})
    with retain.settings(heartbeat=0.1, lease=0.6):
        work.launch()
    assert work.cached() and work.execution.is_finished()
    key = f"{s3.root}/{work.id}"
    names = {path.rsplit("/", 1)[1] for path in s3.fs.find(key)}
    assert {"interface.json", "result.json", "output.log"} <= names
    assert claim_file(1).rsplit("/", 1)[-1] in names and FINISHED_FILE.rsplit("/", 1)[-1] in names, names
    # Another machine (its own, empty cache) sees the run, its output and its result.
    other = FsspecStorage(s3.url, cache_dir=tmp_path / "other-machine")
    with retain.storage(other):
        again = get(Work, {"index": 3, "counter": str(tmp_path / "counter")})
        assert again.cached() and again.execution.state() == "finished"
        assert "work 3 to stderr" in again.execution.output()
        assert again.load_file("result.json")["index"] == 3
        [run] = again.execution.runs()
        assert run["end"]["status"] == "finished"
        again.launch()  # cached: nothing runs
    assert len((tmp_path / "counter").read_text().splitlines()) == 1


def test_machines_launching_one_component_at_once_run_it_once(s3: FsspecStorage, tmp_path: Path) -> None:
    """Four processes, as four machines sharing only the bucket, launch one component at once:
    the store's put-if-absent lets exactly one claim it; the others wait and find it finished."""
    counter, start = tmp_path / "counter", tmp_path / "go"
    procs = [launcher(s3.url, 5, aws_env(), tmp_path / f"machine-{n}", "--counter", str(counter),
                      "--sleep", "0.5", "--start", str(start), "--out", str(tmp_path / f"out-{n}"))
             for n in range(4)]
    time.sleep(1.5)  # let them import and reach the start line
    start.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
    results = [json.loads((tmp_path / f"out-{n}").read_text()) for n in range(4)]
    assert [r.get("state") for r in results] == ["finished"] * 4, results
    assert len(counter.read_text().splitlines()) == 1
    from component_worker import Work

    work = get(Work, {"index": 5, "counter": str(counter), "sleep": 0.5})
    assert [run["end"]["status"] for run in work.execution.runs()] == ["finished"]


def test_a_killed_run_on_the_store_is_taken_over_and_its_log_kept(s3: FsspecStorage, tmp_path: Path) -> None:
    """A machine dies mid-run (SIGKILL): another machine takes the run over, resumes it, and
    the stored log holds both runs (the first one's as far as its heartbeats sent it)."""
    counter, marker, release = tmp_path / "counter", tmp_path / "started", tmp_path / "release"
    args = ("--counter", str(counter), "--sleep", "60", "--marker", str(marker), "--release", str(release))
    first = launcher(s3.url, 8, aws_env(), tmp_path / "machine-1", *args)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert first.poll() is None, first.communicate()[1]
        assert time.monotonic() < deadline, "the first machine never started the run"
        time.sleep(0.05)
    from component_worker import Work

    work = Work({"index": 8, "counter": str(counter), "sleep": 60.0, "marker": str(marker), "release": str(release)})
    log = f"{s3.root}/{work.id}/{OUTPUT_LOG}"
    while b"work 8 to stderr" not in (s3.fs.cat_file(log) if s3.fs.exists(log) else b""):
        assert time.monotonic() < deadline, "no heartbeat sent the log of run 1"
        time.sleep(0.05)  # heartbeats (every 0.1 s) send the log with them
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    release.touch()  # the resumed run ends at once
    second = launcher(s3.url, 8, aws_env(), tmp_path / "machine-2", *args, "--out", str(tmp_path / "out"))
    _, err = second.communicate(timeout=90)
    assert second.returncode == 0, err
    assert json.loads((tmp_path / "out").read_text())["state"] == "finished"
    work = get(Work, {"index": 8, "counter": str(counter), "sleep": 60.0, "marker": str(marker),
                      "release": str(release)})
    assert len(counter.read_text().splitlines()) == 2
    runs = work.execution.runs()
    assert [run["end"]["status"] for run in runs] == ["died", "finished"]
    assert runs[1]["takeover"]["run"] == 1
    output = work.execution.output()
    assert "retain: run 1 of" in output and "retain: run 2 of" in output, output
    assert output.index("run 1 of") < output.index("work 8 to stderr") < output.index("run 2 of")


MACHINE = {"name": ""}


class Resumable(Component):
    """Each run appends the machine it ran on to `state.txt`, and fails until there are three."""

    Config = {"steps": 3}

    def __call__(self) -> None:
        state = self.load_file("state.txt", default="")
        self.save_file("state.txt", state + MACHINE["name"])
        if len(state) + 1 < self.config.steps:
            raise ValueError(f"step {len(state) + 1} done")


def test_a_run_resumed_on_a_machine_reads_the_stored_files_not_its_old_cache(s3: FsspecStorage,
                                                                              tmp_path: Path) -> None:
    machines = {name: FsspecStorage(s3.url, cache_dir=tmp_path / name) for name in "AB"}
    for name in "ABA":  # run 1 on A, run 2 on B, run 3 on A again: A's cache holds run 1's file
        MACHINE["name"] = name
        with retain.storage(machines[name]):
            component = get(Resumable)
            if name == "A" and component.is_committed():
                assert os.path.isfile(os.path.join(component.local_directory(), "state.txt"))
            try:
                component.launch()
            except ValueError:
                pass
    assert component.cached() and component.load_file("state.txt") == "ABA"
    assert s3.fs.cat_file(f"{s3.root}/{component.id}/state.txt") == b"ABA"
    assert [run["end"]["status"] for run in component.execution.runs()] == ["failed", "failed", "finished"]


def test_concurrent_appends_to_a_runtime_log_lose_nothing(s3: FsspecStorage) -> None:
    """An object store cannot append: each append reads the log and writes it back only if
    nobody wrote it in between (If-Match), so writers racing on one log lose no line."""
    import threading

    from retain.storage.layout import EVENTS_FILE

    item = Item({"i": 30}).commit()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            files = RunFiles(s3, item.id)
            for k in range(10):
                files.append(EVENTS_FILE, {"event": "test", "writer": n, "k": k})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    lines = RunFiles(s3, item.id).read_lines(EVENTS_FILE)
    assert sorted((e["writer"], e["k"]) for e in lines) == [(n, k) for n in range(4) for k in range(10)]


def test_a_store_without_put_if_absent_refuses_components(s3_env: dict[str, str]) -> None:
    from retain.testing.storage import ConformanceRun

    store = FsspecStorage(new_url(s3_env), exclusive_create=False)
    with retain.storage(store):
        with pytest.raises(StorageError, match="only if it is absent"):
            ConformanceRun({"n": 1}).launch()
    assert list(store.iter_ids()) == []  # refused before anything was written


def test_dask_workers_run_components_in_the_bucket(s3: FsspecStorage, tmp_path: Path) -> None:
    """The scale-out setting: a Dask cluster's workers share nothing with the launcher but the
    bucket; every component runs once, and its status, log and files land in the store."""
    from component_worker import Work

    from retain.execution.dask import close_clusters

    counter = tmp_path / "counter"
    works = [get(Work, {"index": i, "counter": str(counter)}) for i in range(3)]
    try:
        with retain.settings(heartbeat=0.1, lease=0.6):
            outcomes = get("retain.execution.dask", {"workers": 1}).dispatch(works)
    finally:
        close_clusters()
    assert [o.status for o in outcomes] == ["finished"] * 3 and len(counter.read_text().splitlines()) == 3
    other = FsspecStorage(s3.url, cache_dir=tmp_path / "reader")
    for work in works:
        there = get(Work, {"index": work.config.index, "counter": str(counter)}, storage=other)
        assert there.cached() and there.execution.runs()[0]["execution"]["class"] == "DaskExecution"
        assert f"work {work.config.index} to stderr" in there.execution.output()
        assert there.load_file("result.json")["index"] == work.config.index


class TestPoolExecutionOnS3Conformance(ExecutionConformance):
    """The process pool, with every component in the bucket."""

    @pytest.fixture
    def execution(self, s3: FsspecStorage) -> Any:
        with retain.settings(heartbeat=0.1, lease=0.6):
            yield get("retain.execution.pool", {"processes": 2})


def test_unreachable_endpoint(s3_env: dict[str, str]) -> None:
    """An endpoint nobody listens on fails fast, naming the URL and the endpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"s3://bucket/prefix?endpoint_url=http://127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(StorageError) as raised:
        get(Item, {"i": 1}, storage=url)
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message and "s3://bucket/prefix" in message and "cannot reach" in message


def test_missing_bucket(s3_env: dict[str, str]) -> None:
    url = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/p?endpoint_url={s3_env['RETAIN_TEST_S3_ENDPOINT']}"
    started = time.monotonic()
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-.*' does not exist"):
        get(Item, {"i": 1}, storage=url)
    assert time.monotonic() - started < 5


def test_wrong_credentials(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    storage = FsspecStorage(new_url(s3_env), skip_instance_cache=True)
    with pytest.raises(StorageError, match="denied|could not"):
        storage.read_record("0" * 32)


class Logged(Component):
    """Logs metrics; reads them back as another machine would while it runs."""

    Config = {"other_cache": "", "fail": False}

    def __call__(self) -> None:
        for step in range(3):
            self.log_metrics({"loss": 1.0 / (step + 1)})
        time.sleep(1.5)  # written within a second, sent with the next heartbeat
        other = FsspecStorage(self.storage.url, cache_dir=self.config.other_cache)
        with retain.storage(other):
            seen = get(Logged, dict(self.config)).metrics("loss")
        self.save_summary(seen_while_running=len(seen))
        if self.config.fail:
            raise RuntimeError("fails after logging")


def test_metrics_on_the_store_are_sent_with_the_heartbeat_and_read_from_another_machine(
    s3: FsspecStorage, tmp_path: Path
) -> None:
    config = {"other_cache": str(tmp_path / "watcher")}
    with retain.settings(heartbeat=0.1, lease=0.6):
        run = get(Logged, config).launch()
    assert run.load_summary()["seen_while_running"] == 3
    other = FsspecStorage(s3.url, cache_dir=tmp_path / "other-machine")
    with retain.storage(other):
        again = get(Logged, config)
        assert [(r["step"], r["value"]) for r in again.metrics("loss")] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
        assert get.all(Logged, where={"metrics.loss": lt(0.5)}).ids() == [run.id]


def test_a_run_resumed_on_another_machine_continues_the_stored_series(s3: FsspecStorage, tmp_path: Path) -> None:
    config = {"other_cache": str(tmp_path / "watcher"), "fail": True}
    with retain.settings(heartbeat=0.1, lease=0.6), pytest.raises(RuntimeError, match="fails after logging"):
        get(Logged, config).launch()
    other = FsspecStorage(s3.url, cache_dir=tmp_path / "other-machine")
    with retain.storage(other), retain.settings(heartbeat=0.1, lease=0.6):
        with pytest.raises(RuntimeError):
            get(Logged, config).launch()  # run 2, on a machine whose cache never saw run 1
    assert [r["step"] for r in get(Logged, config).metrics("loss")] == [0, 1, 2, 3, 4, 5]
