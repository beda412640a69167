"""Worker processes for tests/storage/test_storage_s3.py: ``python -m s3_worker MODE URL ...`` with
``tests/`` on the path, the S3 credentials and ``RETAIN_CACHE_DIR`` in the environment.

- ``race URL I BARRIER``: wait for file BARRIER, then save a file and commit ``RaceItem(i)`` as
  one of `MACHINES` machines; print one JSON line: whether this process's publish won, the
  record it ended with, and the file as it reads it once every machine has committed.
- ``first URL I FLAG``, ``second URL I FLAG``: two machines commit ``RaceItem(i)`` in the
  order `interleave` sets (files ``FLAG.<step>``); print as ``race`` does.
- ``crash URL I READY``: save a file and commit ``RaceItem(i)``, but stop between the upload of
  the files and the record: create READY and sleep (the test kills the process then).
- ``save URL I BARRIER``: wait for file BARRIER, then, `ROUNDS` times, save ``payload.txt`` of
  the committed ``RaceItem(i)`` again as `MACHINES` machines at once, and once every machine
  has (files ``BARRIER.saved-*``), read it; print the reads.
- ``read URL I -``: print ``payload.txt`` of the committed ``RaceItem(i)`` as it reads it.
"""

from __future__ import annotations

import json
import os
import sys
import time

from retain import Interface, get, storage
from retain.storage.fsspec import FsspecStorage

#: How many workers a ``save`` race has.
MACHINES = 4
#: How many times each ``save`` worker saves the file (all at once, then all read it).
ROUNDS = 6


class RaceItem(Interface):
    Config = {"i": 0}


#: A worker whose test gave up (its other machine failed) stops by itself after this long.
WAIT_LIMIT = 120.0


def _waited(since: float, what: str) -> None:
    time.sleep(0.001)
    if time.monotonic() - since > WAIT_LIMIT:
        sys.exit(f"s3_worker: gave up waiting for {what} after {WAIT_LIMIT:.0f} s")


def wait_for(path: str) -> None:
    since = time.monotonic()
    while not os.path.exists(path):
        _waited(since, path)


def gather(flag: str, step: str) -> None:
    """Wait until every machine of a race is done with `step`."""
    open(f"{flag}.{step}-{os.getpid()}", "w").close()
    prefix = f"{os.path.basename(flag)}.{step}-"
    since = time.monotonic()
    while sum(name.startswith(prefix) for name in os.listdir(os.path.dirname(flag))) < MACHINES:
        _waited(since, f"every machine at {step}")


def save_again(item: Interface, name: str, value: str) -> None:
    # Saving over a file of a committed interface is asked for explicitly.
    item.save_file(name, value, overwrite=True)


#: Whether this process is inside `publish_record` (the interleaving keys on the commit's checks).
PUBLISHING = False


def interleave(role: str, flag: str) -> None:
    """Order two commits of one identity: the first machine uploads its files, the second
    finds no record yet, the first writes the record (and wins), the second uploads its files
    over the first's and loses; only then does the first go on."""
    has_record, upload, create = FsspecStorage.has_record, FsspecStorage._upload, FsspecStorage._create

    def signal(step: str) -> None:
        open(f"{flag}.{step}", "w").close()

    def checking(self: FsspecStorage, id: str) -> bool:
        found = has_record(self, id)
        if role == "second" and PUBLISHING:  # the commit's own check, not save_file's
            signal("second-checked")
        return found

    def uploading(self: FsspecStorage, id: str, names: list[str]) -> None:
        if role == "second":
            wait_for(f"{flag}.first-uploaded")
        upload(self, id, names)
        signal(f"{role}-uploaded")

    def creating(self: FsspecStorage, key: str, data: bytes) -> bool:
        if not key.endswith("/interface.json"):  # the storage's own files (baselines)
            return create(self, key, data)
        wait_for(f"{flag}.second-checked" if role == "first" else f"{flag}.first-created")
        won = create(self, key, data)
        if role == "first":
            signal("first-created")
            wait_for(f"{flag}.second-uploaded")
        return won

    FsspecStorage.has_record = checking  # type: ignore[method-assign]
    FsspecStorage._upload = uploading  # type: ignore[method-assign]
    FsspecStorage._create = creating  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    mode, url, index, flag = argv[0], argv[1], int(argv[2]), argv[3]
    results: list[bool] = []
    publish = FsspecStorage.publish_record

    def recording(self: FsspecStorage, id: str, data: bytes, *, durable: bool = False) -> bool:
        global PUBLISHING
        PUBLISHING = True
        try:
            won = publish(self, id, data, durable=durable)
        finally:
            PUBLISHING = False
        results.append(won)
        return won

    FsspecStorage.publish_record = recording  # type: ignore[method-assign]
    if mode in ("first", "second"):
        interleave(mode, flag)
    if mode == "crash":
        create = FsspecStorage._create

        def stall(self: FsspecStorage, key: str, data: bytes) -> bool:
            if key.endswith("/interface.json"):  # not the storage's own files (baselines)
                open(flag, "w").close()  # the files are uploaded; the record is next
                time.sleep(120)
            return create(self, key, data)

        FsspecStorage._create = stall  # type: ignore[method-assign]
    with storage(url):
        if mode == "read":
            print(json.dumps({"read": get(RaceItem, {"i": index}).load_file("payload.txt")}))
            return
        if mode == "save":
            item = get(RaceItem, {"i": index})
            wait_for(flag)
            reads = []
            for round in range(ROUNDS):
                save_again(item, "payload.txt", f"saved in round {round} by pid {os.getpid()}")
                gather(flag, f"saved-{round}")
                reads.append(item.load_file("payload.txt"))
                gather(flag, f"read-{round}")  # nobody saves again before everybody has read
            print(json.dumps({"reads": reads}))
            return
        item = get(RaceItem, {"i": index})  # not committed yet (and the store's client is ready)
        save_again(item, "payload.txt", f"written by pid {os.getpid()}")  # may be committed already
        if mode == "race":
            wait_for(flag)
        item.commit()
        if mode == "second":
            signal_done = f"{flag}.second-done"
            open(signal_done, "w").close()
        if mode == "first":
            wait_for(f"{flag}.second-done")
        if mode == "race":
            gather(flag, "committed")  # a losing commit may upload its files after the winner's
        print(json.dumps({"won": results == [True], "record": item.record, "pid": os.getpid(),
                          "read": item.load_file("payload.txt")}))


if __name__ == "__main__":
    main(sys.argv[1:])
