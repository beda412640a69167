"""A worker for tests/test_lifecycle.py: commits interfaces with files, and removes them (with
their users), in a loop, until it is killed. Each removal is logged in ``<storage>.log``
once done; ``<storage>.ready`` is created when the loop has started.

Run as ``python removal_worker.py STORAGE SEED``.
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any, ClassVar

from retain import Interface, get, storage

#: The files each interface is committed with.
FILES = ["a.txt", "deep/b.txt"]


class Item(Interface):
    Config: ClassVar[Any] = {"n": 0}


class User(Interface):
    Config: ClassVar[Any] = {"item": None}


def committed_with_files(interface: Interface) -> Interface:
    interface.save_file("a.txt", "a" * 100)
    interface.save_file("deep/b.txt", os.urandom(2500).hex())
    return interface.commit()


def main() -> None:
    root, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    log = root + ".log"
    with storage(root):
        open(root + ".ready", "a").close()
        while True:
            item = get(Item, {"n": rng.randrange(12)})
            if not item.is_committed():
                committed_with_files(item)
                if rng.random() < 0.5:
                    committed_with_files(get(User, {"item": item}))
            else:
                removed = item.delete(cascade=True)
                with open(log, "a") as handle:
                    handle.write("".join(f"{r.id}\n" for r in removed))


if __name__ == "__main__":
    main()
