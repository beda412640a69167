"""Worker processes for tests/test_storage_s3.py: ``python -m s3_worker MODE URL ...`` with
``tests/`` on the path, the S3 credentials and ``RETAIN_CACHE_DIR`` in the environment.

- ``race URL I BARRIER``: wait for file BARRIER, then save a file and commit ``RaceItem(i)``;
  print one JSON line: whether this process's publish won, and the record it ended with.
- ``crash URL I READY``: save a file and commit ``RaceItem(i)``, but stop between the upload of
  the files and the record: create READY and sleep (the test kills the process then).
"""

from __future__ import annotations

import json
import os
import sys
import time

from retain import Interface, storage
from retain.storage.fsspec import FsspecStorage


class RaceItem(Interface):
    Config = {"i": 0}


def main(argv: list[str]) -> None:
    mode, url, index, flag = argv[0], argv[1], int(argv[2]), argv[3]
    results: list[bool] = []
    publish = FsspecStorage.publish_record

    def recording(self: FsspecStorage, id: str, data: bytes, *, durable: bool = False) -> bool:
        won = publish(self, id, data, durable=durable)
        results.append(won)
        return won

    FsspecStorage.publish_record = recording  # type: ignore[method-assign]
    if mode == "crash":
        create = FsspecStorage._create

        def stall(self: FsspecStorage, key: str, data: bytes) -> bool:
            open(flag, "w").close()  # the files are uploaded; the record is next
            time.sleep(120)
            return create(self, key, data)

        FsspecStorage._create = stall  # type: ignore[method-assign]
    with storage(url):
        item = RaceItem({"i": index})
        # A slower machine may find it committed already: it replaces the payload on purpose.
        item.save_file("payload.txt", f"written by pid {os.getpid()}", overwrite=True)
        if mode == "race":
            while not os.path.exists(flag):
                time.sleep(0.001)
        item.commit()
        print(json.dumps({"won": results == [True], "record": item.record, "pid": os.getpid()}))


if __name__ == "__main__":
    main(sys.argv[1:])
