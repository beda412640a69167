"""A worker for tests/test_gc.py: `populate` commits interfaces with files, a third of them
used by another; run as ``python gc_worker.py STORAGE``, it removes them all with
``gc(max_size=0)`` (``<storage>.ready`` is created just before) until it is killed or done.
"""

from __future__ import annotations

import os
import sys
from typing import Any, ClassVar

import retain
from retain import Interface, get, storage

#: The files each interface is committed with.
FILES = ["a.txt", "deep/b.txt"]
COUNT = 120


class Item(Interface):
    Config: ClassVar[Any] = {"n": 0}


class User(Interface):
    Config: ClassVar[Any] = {"item": None}


def committed_with_files(interface: Interface) -> Interface:
    if not interface.is_committed():
        interface.save_file("a.txt", "a" * 100)
        interface.save_file("deep/b.txt", os.urandom(2500).hex())
        interface.commit()
    return interface


def populate(root: str) -> None:
    with storage(root):
        for n in range(COUNT):
            item = committed_with_files(get(Item, {"n": n}))
            if n % 3 == 0:
                committed_with_files(get(User, {"item": item}))


def main() -> None:
    root = sys.argv[1]
    with storage(root):
        open(root + ".ready", "a").close()
        retain.gc(max_size=0)


if __name__ == "__main__":
    main()
