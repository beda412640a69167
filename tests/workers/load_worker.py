"""A worker for tests/scenarios/test_load.py: for a bounded time, commits, queries and launches
overlapping work in one shared storage, and reports what it saw as JSON on stdout.

Run as ``python load_worker.py STORAGE SEED SECONDS COUNTER``.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

from retain import Component, Interface, get, settings, storage


class Point(Interface):
    Config = {"x": 0}


class Task(Component):
    Config = {"n": 0, "counter": ""}

    def __call__(self) -> None:
        fd = os.open(self.config.counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{self.config.n} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
        time.sleep(0.002)
        self.save_summary(n=self.config.n)


def main() -> None:
    root, seed, seconds, counter = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    rng = random.Random(seed)
    seen: dict[str, list[object]] = {"points": [], "tasks": [], "queries": []}
    deadline = time.monotonic() + seconds
    with storage(root), settings(heartbeat=0.2, lease=3.0):
        while time.monotonic() < deadline:
            action = rng.random()
            if action < 0.4:
                x = rng.randrange(40)
                seen["points"].append([x, get(Point, {"x": x}).commit().id])
            elif action < 0.8:
                n = rng.randrange(30)
                task = get(Task, {"n": n, "counter": counter}).launch()
                assert task.execution.is_finished(), task
                seen["tasks"].append([n, task.id])
            else:
                ids = [p.id for p in get.all(Point)]
                assert len(ids) == len(set(ids)), "a duplicated row in the index"
                seen["queries"].append(len(ids))
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
