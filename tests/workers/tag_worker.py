"""Tags one committed result by id, from another process (tests/test_tags.py).

``python tag_worker.py ROOT ID race PREFIX ROUNDS START``: waits for file START, then adds tag
``PREFIX-<i>`` for each round (and adds then removes ``PREFIX-gone``), one event each.
``python tag_worker.py ROOT ID loop``: adds ``t0``, ``t1``... until killed, printing each
number once its tag is written.
"""

from __future__ import annotations

import itertools
import os
import sys
import time

import retain
from retain._annotations import annotate


def main() -> None:
    root, id, mode = sys.argv[1:4]
    with retain.storage(root) as storage:
        if mode == "race":
            prefix, rounds, start = sys.argv[4], int(sys.argv[5]), sys.argv[6]
            while not os.path.exists(start):
                time.sleep(0.001)
            for i in range(rounds):
                annotate(storage, id, add=[f"{prefix}-{i}"])
                if i % 5 == 0:
                    annotate(storage, id, add=[f"{prefix}-gone"])
                    annotate(storage, id, remove=[f"{prefix}-gone"])
            return
        for i in itertools.count():
            annotate(storage, id, add=[f"t{i}"])
            print(i, flush=True)


if __name__ == "__main__":
    main()
