"""Eight processes committing, querying and launching overlapping work at once: nothing lost
or duplicated, the index intact, every launch ran exactly once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import WORKERS_DIR, id_directories

import retain
from retain import Interface, get

WORKERS = Path(WORKERS_DIR)
PROCESSES = 8
SECONDS = 4.0


def test_eight_processes_under_load(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    counter = tmp_path / "runs.log"
    env = {**os.environ, "PYTHONPATH": str(WORKERS)}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKERS / "load_worker.py"), str(root), str(seed), str(SECONDS), str(counter)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=WORKERS,
        )
        for seed in range(PROCESSES)
    ]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-3000:]
        reports.append(json.loads(out))

    # Every process got one id per configuration, the same one as every other process.
    point_ids: dict[int, set[str]] = {}
    task_ids: dict[int, set[str]] = {}
    for report in reports:
        for x, id in report["points"]:
            point_ids.setdefault(x, set()).add(id)
        for n, id in report["tasks"]:
            task_ids.setdefault(n, set()).add(id)
    assert all(len(ids) == 1 for ids in point_ids.values())
    assert all(len(ids) == 1 for ids in task_ids.values())
    assert sum(len(r["points"]) + len(r["tasks"]) + len(r["queries"]) for r in reports) > 100

    # Every launched task ran exactly once, whatever the number of launchers.
    runs = Counter(line.split()[0] for line in counter.read_text().splitlines())
    assert set(runs) == {str(n) for n in task_ids}
    assert set(runs.values()) == {1}, runs

    # Storage holds exactly one directory per identity, each loadable; nothing else.
    expected = {next(iter(ids)) for ids in [*point_ids.values(), *task_ids.values()]}
    directories = id_directories(root)
    assert set(directories) == expected
    for name, directory in directories.items():
        assert Interface.from_directory(directory).id == name

    # The index is intact and agrees with storage, summaries included.
    database = root / ".retain" / "index.sqlite"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with retain.storage(root):
        from load_worker import Point, Task  # type: ignore[import-not-found]

        assert {p.id for p in get.all(Point)} == {next(iter(point_ids[x])) for x in point_ids}
        table = get.all(Task).to_table()
        assert sorted(row["summary.n"] for row in table) == sorted(task_ids)
