"""SIGKILL at random points of commits, file saves, launches and index updates, many times:
storage stays consistent, the index repairs itself, interrupted launches resume."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import WORKERS_DIR, id_directories

import retain
from retain import Interface, get

WORKERS = Path(WORKERS_DIR)
KILLS = 20


def test_random_kills_leave_storage_consistent(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    counter = tmp_path / "runs.log"
    env = {**os.environ, "PYTHONPATH": str(WORKERS)}
    rng = random.Random(7)
    sys.path.insert(0, str(WORKERS))
    try:
        from load_worker import Point, Task  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(WORKERS))
    for kill in range(KILLS):
        worker = subprocess.Popen(
            [sys.executable, str(WORKERS / "load_worker.py"), str(root), str(kill), "30", str(counter)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=WORKERS,
        )
        time.sleep(0.3 + rng.random() * 0.5)  # past start-up, into the loop
        worker.send_signal(signal.SIGKILL)
        worker.wait()

        directories = id_directories(root)
        committed = {name for name, directory in directories.items() if (directory / "interface.json").exists()}
        for name in committed:  # every visible record is whole
            assert Interface.from_directory(directories[name]).id == name
        with retain.storage(root):
            indexed = {i.id for i in get.all(Interface)}
            assert indexed == committed, "the index did not repair itself after a kill"
            for name in committed:
                interface = get.by_id(name)
                if isinstance(interface, Task):
                    # An interrupted launch resumes (the dead claim is taken over) and finishes.
                    assert interface.launch().execution.is_finished()
        assert not list(root.glob("*/interface.json.*"))
    runs = [line.split()[0] for line in counter.read_text().splitlines()]
    assert runs, "no launch ever started: the kills came too early to test anything"
    with retain.storage(root):
        for task in get.all(Task):
            assert task.execution.is_finished()
        assert len(get.all(Point)) > 0
