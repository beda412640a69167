"""Commits under real concurrency: several processes, killed processes, tight races.

The worker code lives in ``tests/workers/concurrency_worker.py`` (importable, top-level classes), run
with ``python -m concurrency_worker`` in subprocesses or as a ``multiprocessing`` spawn target.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from retain import Interface, RecordError, get, storage
from retain.storage import make_storage as storage_at
from retain.storage.layout import RECORD_FILE

import concurrency_worker as worker
from conftest import WORKERS_DIR, id_directories


pytestmark = pytest.mark.skipif(
    not hasattr(os, "link") or sys.platform == "win32", reason="POSIX processes and signals"
)

TEMP_PREFIX = ".retain-tmp-"


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (WORKERS_DIR, env.get("PYTHONPATH")) if p)
    env.pop("RETAIN_STORAGE", None)
    env.pop("RETAIN_DURABLE", None)
    return env


def spawn_worker(*args: str, as_script: bool = False) -> subprocess.Popen[bytes]:
    """Run the worker as ``python -m concurrency_worker`` or as ``python path/to/it.py``."""
    how = [os.path.join(WORKERS_DIR, "concurrency_worker.py")] if as_script else ["-m", "concurrency_worker"]
    return subprocess.Popen(
        [sys.executable, *how, *args],
        cwd=WORKERS_DIR,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_files(paths: list[Path], procs: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"worker exited early ({proc.returncode}):\n{err.decode()}")
        if time.monotonic() > deadline:
            pytest.fail(f"workers not ready after {timeout}s")
        time.sleep(0.002)


def interface_dirs(root: Path) -> list[Path]:
    return sorted(id_directories(root).values())


def dir_of(root: Path, id: str) -> Path:
    return Path(storage_at(str(root)).local_directory(id))


def read_record_json(directory: Path) -> Any:
    # Never a partial record: whatever exists must decode completely.
    return json.loads((directory / RECORD_FILE).read_bytes())


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


# -- 1. many processes, overlapping identities ------------------------------------------------


def test_overlapping_commits_from_six_processes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    workers, count = 6, 30
    start = tmp_path / "start"
    readies = [tmp_path / f"ready-{w}" for w in range(workers)]
    outs = [tmp_path / f"out-{w}.json" for w in range(workers)]
    procs = [
        spawn_worker(
            "overlap", "--storage", str(root), "--ready", str(readies[w]), "--start", str(start),
            "--out", str(outs[w]), "--worker", str(w), "--seed", str(1000 + w), "--count", str(count),
            as_script=w % 2 == 1,  # both ways of running a script name the classes alike
        )
        for w in range(workers)
    ]
    try:
        wait_for_files(readies, procs)
        start.touch()  # the start signal: all workers poll for it and go at once
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err.decode()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    reports = [json.loads(out.read_text()) for out in outs]
    assert len({tuple(r["order"]) for r in reports}) == workers  # really different orders

    # Every process got the same id and the same created time for every config.
    ids: dict[int, str] = {}
    created: dict[str, str] = {}
    for report in reports:
        assert sorted(map(int, report["results"])) == list(range(count))
        for index, seen in report["results"].items():
            assert ids.setdefault(int(index), seen["id"]) == seen["id"]
            assert seen["created"] is not None
            assert created.setdefault(seen["id"], seen["created"]) == seen["created"]
    assert len(set(ids.values())) == count

    # Exactly one successful publish per identity, across all processes.
    wins = Counter(id for report in reports for id, won in report["publishes"] if won)
    assert wins == Counter({id: 1 for id in ids.values()})

    # Exactly one directory per identity, each a valid, complete commit with every file.
    dirs = interface_dirs(root)
    assert sorted(d.name for d in dirs) == sorted(ids.values())
    assert [p.name for p in root.iterdir() if not p.is_dir()] == []
    with storage(root):
        for index, id in ids.items():
            directory = dir_of(root, id)
            record = read_record_json(directory)
            assert record["id"] == id and record["created"] == created[id]
            loaded = Interface.from_directory(directory)
            assert isinstance(loaded, worker.OverlapItem)
            assert loaded.id == id and loaded.created == created[id]
            assert loaded.config["index"] == index
            assert loaded.load_file(worker.DATA_FILE) == worker.overlap_payload(index)
            for w in range(workers):
                assert loaded.load_file(f"by-{w}.txt") == f"worker {w} index {index}"
            found = get(worker.OverlapItem, {"index": index})
            assert found.is_committed() and found.created == created[id]
            names = sorted(p.name for p in directory.iterdir())
            assert names == sorted([RECORD_FILE, worker.DATA_FILE] + [f"by-{w}.txt" for w in range(workers)])
    assert temp_files(root) == []  # clean exits leave no temporaries


# -- 2. SIGKILL in the middle of commits ------------------------------------------------------


def check_after_kill(root: Path, run: int, size: int) -> tuple[int, bool]:
    """Check storage after the worker of `run` was killed; repair its one uncommitted
    identity by committing it here. Returns (number committed by the worker, whether an
    uncommitted directory was left)."""
    prefix_dirs = {d.name: d for d in interface_dirs(root)}
    # Which of this run's identities have directories: the worker goes 1, 2, 3, ... in order.
    by_id: dict[str, int] = {}
    with storage(root):
        index = 0
        while True:
            index += 1
            item = get(worker.KillItem, {"index": index, "run": run})
            if item.id not in prefix_dirs:
                break
            by_id[item.id] = index
    committed_here = [id for id in by_id if (dir_of(root, id) / RECORD_FILE).exists()]
    uncommitted = [id for id in by_id if id not in committed_here]
    # In order: every identity but possibly the last one reached is committed.
    assert sorted(by_id[id] for id in committed_here) == list(range(1, len(committed_here) + 1))
    assert [by_id[id] for id in uncommitted] in ([], [len(by_id)]), by_id

    with storage(root):
        for id, index in by_id.items():
            directory = dir_of(root, id)
            for path in directory.iterdir():
                assert path.name in (RECORD_FILE, worker.BIG_FILE) or path.name.startswith(
                    TEMP_PREFIX
                ), path
            big = directory / worker.BIG_FILE
            if big.exists():  # never a partial file under its final name
                assert big.read_text() == worker.big_text(index, run, size)
            if id in committed_here:
                record = read_record_json(directory)
                assert record["id"] == id
                loaded = Interface.from_directory(directory)
                assert isinstance(loaded, worker.KillItem) and loaded.id == id
                assert loaded.config["index"] == index and loaded.config["run"] == run
                # The file was saved before the commit, so a commit implies the whole file.
                assert loaded.load_file(worker.BIG_FILE) == worker.big_text(index, run, size)
                found = get(worker.KillItem, {"index": index, "run": run})
                assert found.is_committed() and found.created == record["created"]
            else:
                found = get(worker.KillItem, {"index": index, "run": run})
                assert not found.is_committed() and found.record is None and found.created is None
                assert id not in set(found.storage.iter_ids())
                with pytest.raises(RecordError, match="holds no committed interface"):
                    Interface.from_directory(directory)
                found.commit()  # a crashed commit never blocks a later one
                assert found.is_committed()
                again = Interface.from_directory(directory)
                assert again.id == id and again.created == found.created
                assert get(worker.KillItem, {"index": index, "run": run}).created == found.created
    return len(committed_here), bool(uncommitted)


def test_sigkill_mid_commit_leaves_only_whole_commits(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    rng = random.Random(20240611)
    size = 3_000_000
    runs = 24
    committed_total = 0
    left_uncommitted = 0
    killed_pids: set[int] = set()
    for run in range(1, runs + 1):
        ready = tmp_path / f"kill-ready-{run}"
        proc = spawn_worker(
            "kill", "--storage", str(root), "--ready", str(ready), "--run", str(run), "--size", str(size)
        )
        try:
            wait_for_files([ready], [proc])
            killed_pids.add(proc.pid)
            time.sleep(rng.uniform(0.0, 0.25))
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err.decode()  # killed, not crashed
        committed, uncommitted = check_after_kill(root, run, size)
        committed_total += committed
        left_uncommitted += uncommitted

    # Every directory in storage is now a whole commit; nothing else was ever created.
    for directory in interface_dirs(root):
        assert Interface.from_directory(directory).id == directory.name
    assert [p.name for p in root.iterdir() if not p.is_dir()] == []
    # Leftover temporaries are only those of killed workers (named with their pid), directly
    # inside interface directories; the commits that ran to completion cleaned up after them.
    for path in temp_files(root):
        assert path.is_file() and path.parent in interface_dirs(root), path
        assert int(path.name.rsplit(".", 2)[1]) in killed_pids, path
    assert not list(root.rglob("*.claim"))
    # The kills did land while commits were in progress (not only between them).
    assert committed_total > runs
    assert left_uncommitted >= 1


# -- 3. two processes racing on the same identity ----------------------------------------------


def test_two_processes_race_on_each_identity(tmp_path: Path) -> None:
    root = tmp_path / "store"
    count = 200
    salt = os.urandom(8).hex()  # fresh identities
    context = multiprocessing.get_context("spawn")
    arrivals = context.RawArray("q", 2)  # shared, lock-free: the workers spin on it
    outs = [tmp_path / f"race-{w}.json" for w in range(2)]
    procs = [
        context.Process(target=worker.race_worker, args=(str(root), count, salt, arrivals, w, str(out)))
        for w, out in enumerate(outs)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert [proc.exitcode for proc in procs] == [0, 0]

    first, second = (json.loads(out.read_text()) for out in outs)
    assert sorted(map(int, first["results"])) == list(range(count))
    for index in range(count):
        a, b = first["results"][str(index)], second["results"][str(index)]
        assert a["id"] == b["id"]
        assert a["created"] is not None and a["created"] == b["created"]

    ids = {first["results"][str(i)]["id"] for i in range(count)}
    assert len(ids) == count
    # Exactly one winner per identity; the other process adopted its record.
    wins = Counter(id for report in (first, second) for id, won in report["publishes"] if won)
    assert wins == Counter({id: 1 for id in ids})
    # For the forced half both processes surely reached the publish step: one lost and
    # adopted. (The natural half is contested as often as the scheduler allows.)
    attempted = [Counter(id for id, _ in report["publishes"]) for report in (first, second)]
    contested = set(attempted[0]) & set(attempted[1])
    forced = {first["results"][str(i)]["id"] for i in range(0, count, 2)}
    assert forced <= contested
    assert all(n == 1 for counts in attempted for n in counts.values())  # one publish each

    assert sorted(d.name for d in interface_dirs(root)) == sorted(ids)
    with storage(root):
        for index in range(count):
            id = first["results"][str(index)]["id"]
            record = read_record_json(dir_of(root, id))
            assert record["created"] == first["results"][str(index)]["created"]
            assert sorted(p.name for p in dir_of(root, id).iterdir()) == [RECORD_FILE]
            found = get(worker.RaceItem, {"index": index, "salt": salt})
            assert found.is_committed() and found.created == record["created"]
    assert temp_files(root) == []
