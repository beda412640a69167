"""Worker processes for tests/scenarios/test_concurrency.py.

Importable as ``concurrency_worker`` (with ``tests/workers/`` on ``sys.path``) and runnable as
``python -m concurrency_worker MODE ...`` or ``python tests/workers/concurrency_worker.py MODE ...``.
The Interface classes live at the top level so that every process, and the test process that
reloads records with ``Interface.from_directory``, names them ``concurrency_worker:<Class>``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from typing import Any

from retain import Interface, get, storage
from retain.storage import LocalStorage

BIG_FILE = "big.txt"
DATA_FILE = "data.json"


class OverlapItem(Interface):
    Config = {"index": 0, "label": "overlap"}


class KillItem(Interface):
    Config = {"index": 0, "run": 0}


class RaceItem(Interface):
    Config = {"index": 0, "salt": ""}


def overlap_payload(index: int) -> dict[str, Any]:
    """The data file every process saves for `OverlapItem` `index` (identical everywhere)."""
    return {"index": index, "values": list(range(index * 50, index * 50 + 2000))}


def big_text(index: int, run: int, size: int) -> str:
    """A largish, recognisable text (its head and tail identify it, so truncation shows)."""
    head = f"BEGIN run={run} index={index}\n"
    tail = f"\nEND run={run} index={index}\n"
    return head + "x" * (size - len(head) - len(tail)) + tail


# -- instrumentation: which publish attempts won --------------------------------------------

_publishes: list[tuple[str, bool]] = []


def instrument() -> list[tuple[str, bool]]:
    """Record every `publish_record` call of this process as (id, won)."""
    original = LocalStorage.publish_record
    if getattr(original, "_concurrency_wrapped", False):
        return _publishes

    def publish_record(self: LocalStorage, id: str, data: bytes, *, durable: bool = False) -> bool:
        won = original(self, id, data, durable=durable)
        _publishes.append((id, won))
        return won

    publish_record._concurrency_wrapped = True  # type: ignore[attr-defined]
    LocalStorage.publish_record = publish_record  # type: ignore[method-assign]
    return _publishes


def wait_for(path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"start file {path} never appeared")
        time.sleep(0.001)


def write_json(path: str, value: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(value, handle)
    os.replace(tmp, path)


# -- modes ---------------------------------------------------------------------------------


def run_overlap(args: argparse.Namespace) -> None:
    """Commit OverlapItem 0..count-1 in a shuffled order, each after saving two files."""
    publishes = instrument()
    order = list(range(args.count))
    random.Random(args.seed).shuffle(order)
    results: dict[str, Any] = {}
    open(args.ready, "w").close()
    wait_for(args.start)
    with storage(args.storage):
        for index in order:
            item = get(OverlapItem, {"index": index})
            # Another worker may have committed it meanwhile (with the same payload).
            item.save_file(DATA_FILE, overlap_payload(index), overwrite=True)
            item.save_file(f"by-{args.worker}.txt", f"worker {args.worker} index {index}")
            item.commit()
            assert item.is_committed()
            results[str(index)] = {"id": item.id, "created": item.created}
    write_json(args.out, {"results": results, "publishes": publishes, "order": order})


def run_kill(args: argparse.Namespace) -> None:
    """Commit KillItem 1, 2, 3... (run `args.run`) forever, each after saving a big file."""
    with storage(args.storage):
        open(args.ready, "w").close()
        index = 0
        while True:
            index += 1
            item = get(KillItem, {"index": index, "run": args.run})
            item.save_file(BIG_FILE, big_text(index, args.run, args.size))
            item.commit()


def _rendezvous(arrivals: Any, me: int, value: int, timeout: float = 20.0) -> None:
    """Post `value` and spin until the other process posted at least as much."""
    arrivals[me] = value
    other = 1 - me
    spins = 0
    deadline = time.monotonic() + timeout
    while arrivals[other] < value:
        spins += 1
        if spins % 1000 == 0:
            time.sleep(0)  # let the other process run on a busy machine
            if time.monotonic() > deadline:
                raise TimeoutError(f"the other race worker never reached step {value}")


def race_worker(storage_path: str, count: int, salt: str, arrivals: Any, me: int, out: str) -> None:
    """multiprocessing target: commit RaceItem 0..count-1 in lockstep with one other process.

    `arrivals` is a shared array of two ints. Before each commit both processes meet, so both
    call `commit` within microseconds (a natural race). For even indices they meet a second
    time as they enter `publish_record`, so both surely try to publish (a forced race: exactly
    one must win and the other adopt its record). Nobody can publish before that meeting, so
    a correct `commit` of a fresh identity always reaches it.
    """
    publishes = instrument()
    results: dict[str, Any] = {}
    forced: list[int] = []  # the index whose publish must wait for the other process
    instrumented_publish = LocalStorage.publish_record

    def publish_record(self: LocalStorage, id: str, data: bytes, *, durable: bool = False) -> bool:
        if forced:
            _rendezvous(arrivals, me, 2 * forced.pop() + 2)
        return instrumented_publish(self, id, data, durable=durable)

    LocalStorage.publish_record = publish_record  # type: ignore[method-assign]
    with storage(storage_path):
        for index in range(count):
            item = RaceItem({"index": index, "salt": salt})
            item._retain_resolve()  # identity computed before the meeting: tighten the race
            _rendezvous(arrivals, me, 2 * index + 1)
            if index % 2 == 0:
                forced.append(index)
            item.commit()
            assert not forced, f"commit of fresh identity {index} never tried to publish"
            results[str(index)] = {"id": item.id, "created": item.created}
    write_json(out, {"results": results, "publishes": publishes})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="concurrency_worker")
    modes = parser.add_subparsers(dest="mode", required=True)
    overlap = modes.add_parser("overlap")
    overlap.add_argument("--storage", required=True)
    overlap.add_argument("--ready", required=True)
    overlap.add_argument("--start", required=True)
    overlap.add_argument("--out", required=True)
    overlap.add_argument("--worker", type=int, required=True)
    overlap.add_argument("--seed", type=int, required=True)
    overlap.add_argument("--count", type=int, default=30)
    kill = modes.add_parser("kill")
    kill.add_argument("--storage", required=True)
    kill.add_argument("--ready", required=True)
    kill.add_argument("--run", type=int, required=True)
    kill.add_argument("--size", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    {"overlap": run_overlap, "kill": run_kill}[args.mode](args)


if __name__ == "__main__":
    main()
