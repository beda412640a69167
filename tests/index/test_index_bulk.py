"""Rebuilding from many records: worker processes, what they send back, the fast record parse."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import retain
from retain import IndexWarning, Interface, Storage, get
from retain.index import _rebuild_workers
from retain.index.base import IndexEntry, config_leaves
from retain.storage.layout import _fast_index_fields, decode_record, index_fields


class Sweep(Interface):
    Config = {"lr": 0.1, "model": {"depth": 2, "act": "relu"}, "tags": [], "note": None, "params": {}}


def table(cls: type[Interface]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in get.all(cls).to_table())


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


REBUILD_IN_A_FRESH_PROCESS = """
import json, sys, warnings
import retain
from retain.index import _rebuild_workers
_rebuild_workers.PARALLEL_MIN = 1
pool = _rebuild_workers._pool
started = []
def spy(storage, count):
    found = pool(storage, count)
    started.append(found[1])
    return found
_rebuild_workers._pool = spy
calls = []
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    count = retain.index.rebuild(sys.argv[1], progress=lambda done, total: calls.append((done, total)))
print(json.dumps({"count": count, "workers": started, "last_call": calls[-1],
                  "warnings": [str(w.message) for w in caught]}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or cpus() < 2, reason="fork, two CPUs")
def test_rebuild_in_worker_processes_matches_reading_here(store: Storage) -> None:
    """Workers are forked by a process with one thread (a fresh one here: this one may have
    others), and give the same index as reading in the process."""
    runs = [
        Sweep({"lr": i / 100, "model.depth": i, "tags": ["a"] * (i % 3), "params": {"x": {"y": i}}}).commit()
        for i in range(30)
    ]
    runs[3].save_summary(loss=0.5, ok=True)
    runs[5].save_summary(loss=float("nan"))
    damaged = Path(runs[4].local_directory(), "interface.json")
    good = damaged.read_bytes()
    damaged.write_text("{ not json")
    with pytest.warns(IndexWarning, match=runs[4].id):
        assert retain.index.rebuild() == 29
    here = table(Sweep)

    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    out = subprocess.run(
        [sys.executable, "-c", REBUILD_IN_A_FRESH_PROCESS, store.url],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["count"] == 29 and result["workers"][0] >= 2 and result["last_call"] == [30, 30]
    assert len(result["warnings"]) == 1 and "skipped 1 damaged record" in result["warnings"][0]
    assert runs[4].id in result["warnings"][0]
    assert table(Sweep) == here
    assert get.all(Sweep, where={"model.depth": 7}).ids() == [runs[7].id]
    assert get.all(Sweep, where={"params.x.y": 9, "tags": []}).ids() == [runs[9].id]
    assert get.all(Sweep, where={"summary.ok": True}).ids() == [runs[3].id]
    # The damaged record stays pending: once repaired, the next query takes it.
    assert runs[4].id not in get.all(Sweep).ids()
    damaged.write_bytes(good)
    assert runs[4].id in get.all(Sweep).ids()


def test_a_process_with_threads_reads_in_the_process(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """No fork with another thread running (it could hold a lock forever in the child), and
    never a fork server or spawn (they run the main module again)."""
    import threading

    from retain._threads import Daemon, running

    Sweep().commit()
    release = threading.Event()
    Daemon(lambda: release.wait(60))  # as the index writer's thread: unknown to `threading`
    try:
        assert running() >= 1
        monkeypatch.setattr(_rebuild_workers, "PARALLEL_MIN", 1)
        assert _rebuild_workers._pool(store, 10**6) == (None, 0)
        assert retain.index.rebuild() == 1
    finally:
        release.set()


def test_entries_cross_processes_whole(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a worker sends back rebuilds every field of the entry read here."""
    data = Sweep({"lr": 0.2}).commit()
    run = Sweep({"lr": 0.5, "model.act": "é\\\"", "tags": [1.0, {"b": None}],
                 "params": {"a.b": True, "ref": data, "empty": {}, "big": 2**70}}).commit()
    run.save_summary(loss=float("nan"), name="x")
    damaged = Sweep({"lr": 0.7}).commit()
    Path(damaged.local_directory(), "interface.json").write_text("{ not json")
    monkeypatch.setattr(_rebuild_workers, "_storage", store)
    ids = [run.id, data.id, "f" * 32, damaged.id]
    read = _rebuild_workers._unpack(_rebuild_workers._read_in_worker(ids))
    here = _rebuild_workers._read_here(store, ids)
    assert [(id, entry is None, error) for id, entry, error in read] == [
        (id, entry is None, error) for id, entry, error in here
    ]
    assert read[2][1:] == (None, None) and "not valid JSON" in (read[3][2] or "")
    for (_, back, _), (_, entry, _) in zip(read[:2], here[:2]):
        assert back is not None and entry is not None
        for name in IndexEntry.__slots__:
            if name == "_config":
                assert back.config == entry.config
            elif name == "leaves":
                assert back.leaves == config_leaves(entry.config)
            else:
                assert getattr(back, name) == getattr(entry, name), name


def test_an_entry_parses_its_config_when_first_used() -> None:
    entry = IndexEntry("a" * 32, "m", "C", "Interface", "t", None, {}, config_text='{"a": {"b": 1}}')
    assert entry.config == {"a": {"b": 1}} and entry.config is entry.config
    entry.config = {"c": 2}
    assert entry.config == {"c": 2}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"a": 1, "b": 2.5, "c": None, "d": True, "e": [], "f": {}},
        {"text": "é \\ \" \n \t \u2028 }{", "list": [1.0, {"b": None}, "x"], "x.y": {"z": [{}]}},
        {"  \"config\": ": "a line that looks like a field", "\n": 1},
    ],
)
def test_the_fast_record_parse_agrees_with_the_full_parser(store: Storage, params: dict[str, Any]) -> None:
    class Open(Interface):
        Config = {"params": {}}

    run = Open({"params": params}).commit()
    data = Path(run.local_directory(), "interface.json").read_bytes()
    record = decode_record(data, "here", run.id)
    expected = {name: record[name] for name in ("id", "module", "class", "kind", "created", "config")}

    def check(fields: dict[str, Any]) -> None:
        assert {name: fields[name] for name in expected} == expected
        assert json.loads(fields["config_text"]) == record["config"]
        assert json.loads(fields["canonical_text"]) == record["canonical_config"]

    check(index_fields(data, "here", run.id))
    assert _fast_index_fields(data, run.id) is not None  # the layout encode_record writes
    # Another layout of the same record (indented, fields in another order) takes the full parser.
    other = json.dumps(dict(reversed(list(record.items()))), indent=2, ensure_ascii=True).encode()
    check(index_fields(other, "here", run.id))
    one_line = json.dumps(record).encode()
    check(index_fields(one_line, "here", run.id))
    assert not any(isinstance(v, float) and math.isnan(v) for v in record["config"].values())
