"""Worker processes for tests/index/test_index_postgres.py: ``python -m postgres_worker MODE ...``.

The Interface class lives at the top level so that the workers and the test process name it
``postgres_worker:Job``.
"""

from __future__ import annotations

import sys

import retain
from retain import Interface, get


class Job(Interface):
    Config = {"i": 0, "worker": -1, "shared": False}


def commit(url: str, root: str, worker: int, own: int, shared: int) -> None:
    """Commit `own` jobs of this worker and `shared` jobs that every worker commits too (the
    same identities at once), each with a summary; query now and then; print what it saw."""
    seen = 0
    with retain.storage(root), retain.settings(index=url):
        for i in range(max(own, shared)):
            if i < own:
                job = Job({"i": i, "worker": worker}).commit()
                job.save_summary(loss=i / 10)
            if i < shared:
                Job({"i": i, "shared": True}).commit()
            if i % 10 == 0 and i < own:
                assert len(get.all(Job, where={"worker": worker})) >= i + 1
        retain.index._updates.flush()
        seen = len(get.all(Job))
    print(seen, flush=True)


def upsert(url: str, worker: int, count: int) -> None:
    """Upsert entries 0..count-1 straight into the index (every worker the same ids, in another
    order, each with its own summary)."""
    from retain.index import IndexEntry, make_index

    index = make_index(url)
    order = list(range(count))
    if worker % 2:
        order.reverse()
    for start in range(0, count, 7):
        batch = [
            IndexEntry(f"{n:032x}", "pkg.mod", "Cls", "Interface", f"2026-01-01T00:00:00.{n:06d}Z",
                       {"n": n, "tag": "x", "nested": {"v": [n, "a"]}}, {"n": n}, {"by": worker})
            for n in order[start:start + 7]
        ]
        index.upsert(batch)
    print(len(index.ids()), flush=True)


def rebuild(url: str, root: str, seconds: float) -> None:
    """Rebuild the index of the storage at `root` again and again for `seconds` (readers in
    another process query meanwhile); print how many rebuilds ran."""
    import time

    done = 0
    with retain.storage(root), retain.settings(index=url):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            retain.index.rebuild()
            done += 1
    print(done, flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "commit":
        commit(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    elif mode == "upsert":
        upsert(args[0], int(args[1]), int(args[2]))
    elif mode == "rebuild":
        rebuild(args[0], args[1], float(args[2]))
    else:
        raise SystemExit(f"unknown mode {mode}")
