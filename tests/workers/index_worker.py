"""Worker processes for tests/index/test_index.py: ``python -m index_worker MODE STORAGE ...``.

The Interface class lives at the top level so that the workers and the test process name it
``index_worker:Run``.
"""

from __future__ import annotations

import os
import signal
import sys

import retain
from retain import Interface, get


class Run(Interface):
    Config = {"i": 0, "lr": 0.1, "worker": -1}


def kill_after_publish(root: str, i: int) -> None:
    """Commit Run(i), whose directory exists already (a file saved first), and die by SIGKILL
    right after the record is published, before the index hears of it."""
    from retain.index import _updates

    def die(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    _updates.after_publish = die  # type: ignore[assignment]
    with retain.storage(root):
        run = Run({"i": i})
        run.save_file("notes.txt", "saved before the commit")
        run.commit()
    raise SystemExit("not killed")


def commit_and_query(root: str, worker: int, count: int) -> None:
    """Commit `count` runs, querying now and then; print the last count seen."""
    seen = 0
    with retain.storage(root):
        for i in range(count):
            Run({"i": i, "worker": worker}).commit()
            if i % 5 == 0:
                runs = get.all(Run, where={"worker": worker})
                assert len(runs) >= i + 1, (len(runs), i)
                seen = len(get.all(Run))
        seen = len(get.all(Run))
    print(seen, flush=True)


if __name__ == "__main__":
    mode, root, *rest = sys.argv[1:]
    if mode == "kill-after-publish":
        kill_after_publish(root, int(rest[0]))
    elif mode == "commit-and-query":
        commit_and_query(root, int(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown mode {mode}")
