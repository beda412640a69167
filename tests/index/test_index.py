"""The index: get.all, filters, collections, summaries, self-repair, rebuild, concurrency."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

import retain
from retain import (
    CodecError,
    Collection,
    ConfigError,
    IndexDatabaseError,
    IndexWarning,
    Interface,
    InterfaceNotFoundError,
    ModuleResolutionError,
    Storage,
    UnsafePathError,
    between,
    ge,
    get,
    gt,
    le,
    lt,
    one_of,
)
from retain.index import SqliteIndex, make_index
from retain.index import sqlite as sqlite_backend
from retain.modules import class_reference
from retain.index.sqlite._schema import MMAP_BYTES
from retain.query import MISSING, Condition, Query, equal
from retain.query import Field as QueryField
from retain.storage.local import LocalStorage
from retain.testing.index import CLASS, IndexConformance, entry

from conftest import WORKERS_DIR, write_module


class Train(Interface):
    Config = {"lr": 0.1, "batch_size": 32, "model": {"depth": 2, "act": "relu"}, "tags": [], "note": None}


class Data(Interface):
    Config = {"name": "mnist"}


class Uses(Interface):
    Config = {"data": None, "k": 0}


class Open(Interface):
    Config = {"params": {}}


def sweep(n: int = 12) -> list[Train]:
    runs = []
    for i in range(n):
        runs.append(Train({"lr": [0.1, 0.01, 0.001][i % 3], "batch_size": [16, 32][i % 2],
                           "model.depth": i, "tags": ["a"] if i % 4 == 0 else []}).commit())
    return runs


def default_index(store: Storage) -> SqliteIndex:
    index = make_index(None, store)
    assert isinstance(index, SqliteIndex)
    return index


def indexed_ids(store: Storage) -> set[str]:
    """The ids in the index as it is, without the repair a query would do."""
    retain.index._updates.flush()
    return default_index(store).ids()


def corrupt_index(store: Storage) -> SqliteIndex:
    """Overwrite the storage's index file with garbage (after this process's queued updates)."""
    retain.index._updates.flush()
    index = default_index(store)
    index.close()
    Path(index.path).write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(index.path + suffix).unlink(missing_ok=True)
    return index


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (WORKERS_DIR, env.get("PYTHONPATH")) if p)
    for name in ("RETAIN_STORAGE", "RETAIN_DURABLE"):
        env.pop(name, None)
    return env


def age_root(store: Storage) -> int:
    """Make the storage root (and its shard directories) look unchanged for a while (so the
    next query trusts their mtimes)."""
    root = Path(store.url)
    old = time.time_ns() - 3_600 * 10**9
    for directory in [root, *(p for p in root.iterdir() if len(p.name) <= 3 and p.is_dir())]:
        os.utime(directory, ns=(old, old))
    return old


# -- the conformance suite --------------------------------------------------------------------


class TestSqliteIndexConformance(IndexConformance):
    @pytest.fixture
    def index(self, tmp_path: Path) -> SqliteIndex:
        return SqliteIndex(tmp_path / "conformance" / "index.sqlite")


def test_missing_values_never_match() -> None:
    for filter in (equal(None, "x"), lt(1), one_of([None]), between("a", "z")):
        assert not filter.matches(MISSING)


# -- get.all and where ------------------------------------------------------------------------


def test_commit_indexes_and_get_all_lists_newest_first(store: Storage) -> None:
    runs = sweep(5)
    Data().commit()
    assert indexed_ids(store) == {r.id for r in runs} | {Data().id}
    found = get.all(Train)
    assert isinstance(found, Collection) and len(found) == 5
    assert found.ids() == [r.id for r in reversed(runs)]
    assert found[0] == runs[-1] and found[-1] == runs[0]
    assert type(found[0]) is Train and found[0].is_committed()
    assert len(get.all(Interface)) == 6
    assert len(get.all(Data)) == 1


def test_len_and_table_read_no_record(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep(6)

    def refuse(self: LocalStorage, id: str) -> bytes | None:
        raise AssertionError("a record was read")

    monkeypatch.setattr(LocalStorage, "read_record", refuse)
    runs = get.all(Train)
    assert len(runs) == 6 and len(runs.to_table()) == 6
    assert runs.pluck("lr")[:3] == [0.001, 0.01, 0.1]  # newest first
    assert sorted(runs.group_by("batch_size")) == [16, 32]
    assert len(runs.filter({"lr": lt(0.05)})) == 4 and len(runs[1:3]) == 2
    with pytest.raises(AssertionError, match="a record was read"):
        runs.first()


def test_where_equality_dotted_and_nested(store: Storage) -> None:
    sweep(12)
    assert len(get.all(Train, where={"batch_size": 16})) == 6
    assert len(get.all(Train, where={"batch_size": 16.0})) == 6  # 16 == 16.0
    assert get.all(Train, where={"model.depth": 4}).pluck("model.depth") == [4]
    assert len(get.all(Train, where={"model": {"depth": 4, "act": "relu"}})) == 1
    assert len(get.all(Train, where={"model": {"act": "tanh"}})) == 0
    assert len(get.all(Train, where={"config.lr": 0.01, "batch_size": 16})) == 2
    assert len(get.all(Train, where={"tags": ["a"]})) == 3
    assert len(get.all(Train, where={"tags": []})) == 9
    assert len(get.all(Train, where={"note": None})) == 12
    assert len(get.all(Train, where={})) == 12


def test_where_ranges_and_membership(store: Storage) -> None:
    sweep(12)
    depths = lambda where: sorted(get.all(Train, where=where).pluck("model.depth"))  # noqa: E731
    assert depths({"model.depth": lt(3)}) == [0, 1, 2]
    assert depths({"model.depth": le(3)}) == [0, 1, 2, 3]
    assert depths({"model.depth": gt(9)}) == [10, 11]
    assert depths({"model.depth": ge(9.5)}) == [10, 11]
    assert depths({"model.depth": between(4, 6)}) == [4, 5, 6]
    assert depths({"model.depth": one_of([1, 5, 99])}) == [1, 5]
    assert depths({"lr": lt(0.05), "batch_size": 32, "model.depth": gt(2)}) == [5, 7, 11]
    assert depths({"model.act": gt("a")}) == list(range(12))
    assert depths({"model.act": lt("a")}) == []  # strings compare with strings only
    with pytest.raises(ConfigError, match="is a number"):  # and numbers with numbers
        depths({"model.depth": gt("a")})


def test_where_booleans_are_not_numbers(store: Storage) -> None:
    Open({"params": {"flag": True}}).commit()
    Open({"params": {"flag": 1}}).commit()
    assert [r.config.params.flag for r in get.all(Open, where={"params.flag": True})] == [True]
    assert [r.config.params.flag for r in get.all(Open, where={"params.flag": 1})] == [1]
    assert len(get.all(Open, where={"params.flag": ge(1)})) == 1


def test_where_predicate_summary_and_columns(store: Storage) -> None:
    runs = sweep(6)
    for i, run in enumerate(runs):
        run.save_summary(loss=i / 10)
    assert len(get.all(Train, where=lambda c: c.lr < 0.05 and c.model.depth > 1)) == 3
    assert sorted(get.all(Train, where={"summary.loss": le(0.2)}).pluck("summary.loss")) == [0, 0.1, 0.2]
    assert get.all(Train, where={"id": runs[2].id}).ids() == [runs[2].id]
    later = get.all(Train, where={"created": gt(runs[3].created)})
    assert later.ids() == [runs[5].id, runs[4].id]
    assert len(get.all(Train, where={"class": "Train", "module": Train.__module__})) == 6


def test_where_interface_input_by_reference(store: Storage) -> None:
    mnist, cifar = Data().commit(), Data({"name": "cifar"}).commit()
    for k in range(3):
        Uses({"data": mnist, "k": k}).commit()
    Uses({"data": cifar}).commit()
    assert len(get.all(Uses, where={"data": mnist})) == 3
    assert get.all(Uses, where={"data": cifar}).to_table()[0]["config.data"] == cifar.id
    assert get.all(Uses).group_by("data").keys() == {mnist.id, cifar.id}


def test_unknown_keys_name_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'lrr' for Train.*batch_size.*lr.*did you mean 'lr'"):
        get.all(Train, where={"lrr": 0.1})
    with pytest.raises(ConfigError, match=r"'model.dept'.*under 'model': act, depth"):
        get.all(Train, where={"model.dept": 1})
    with pytest.raises(ConfigError, match="plain value"):
        get.all(Train, where={"lr.x": 1})
    with pytest.raises(ConfigError, match="unknown config key"):
        get.all(Train).pluck("nope")
    assert len(get.all(Open, where={"params.anything.deep": 1})) == 0  # open mappings take any key


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: get.all(Train, where=5), "where must be a dict"),
        (lambda: get.all(Train, where={"lr": lambda: 1}), "is a function"),
        (lambda: get.all(Train, where={"": 1}), "a field is a config key"),
        (lambda: get.all(Train, where={"lr": float("nan")}), "nothing can equal"),
        (lambda: lt([1]), "compares with a number or a string"),
        (lambda: gt(True), "use equality for booleans"),
        (lambda: le(float("nan")), "NaN"),
        (lambda: get.all(Train, where={"lr": float("inf")}), "nothing can equal"),
        (lambda: between(1, "z"), "two numbers or two strings"),
        (lambda: one_of("abc"), "takes a list"),
        (lambda: one_of([{"a": 1}]), "not dicts"),
    ],
)
def test_malformed_filters_raise_config_error(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_get_all_by_module_name_and_bad_targets(project: Path) -> None:
    write_module(project, "sweeps.train", "from retain import Interface\n"
                 "class Run(Interface):\n    Config = {'lr': 0.1}\n")
    run = get("sweeps.train", {"lr": 0.5}).commit()
    assert get.all("sweeps.train").ids() == [run.id]
    assert get.all("sweeps.train", where={"lr": 0.5})[0] == run
    with pytest.raises(ModuleResolutionError):
        get.all(retain.Element)
    with pytest.raises(ModuleResolutionError):
        get.all(42)  # type: ignore[call-overload]


class Opt(BaseModel):
    lr: float = 0.1


class FitConfig(BaseModel):
    opt: Opt = Field(default_factory=Opt)
    epochs: int = 1


class Fit(Interface):
    Config = FitConfig


def test_pydantic_config_keys_are_checked() -> None:
    Fit({"opt": {"lr": 0.5}}).commit()
    assert len(get.all(Fit, where={"opt.lr": 0.5})) == 1
    with pytest.raises(ConfigError, match="valid keys under 'opt': lr"):
        get.all(Fit, where={"opt.rate": 1})


# -- collections ------------------------------------------------------------------------------


def test_collection_methods(store: Storage) -> None:
    runs = sweep(8)
    for i, run in enumerate(runs[:5]):
        run.save_summary(loss=5 - i)
    found = get.all(Train)
    assert repr(found) == "<Collection of 8 Train>"
    assert runs[0] in found and Data() not in found
    assert found.first() == runs[-1] and found.last() == runs[0]
    assert get.all(Train, where={"lr": 99}).first() is None
    assert not get.all(Train, where={"lr": 99}) and found
    assert isinstance(found[2:5], Collection) and found[2:5].ids() == found.ids()[2:5]
    assert found[::-1].ids() == found.ids()[::-1]
    by_loss = found.sort("summary.loss")
    assert by_loss.pluck("summary.loss") == [1, 2, 3, 4, 5, None, None, None]
    assert found.sort("summary.loss", reverse=True).pluck("summary.loss")[:2] == [5, 4]
    assert found.sort("model.depth").pluck("model.depth") == list(range(8))
    assert found.sort(lambda r: -r.config.model.depth).pluck("model.depth") == list(range(7, -1, -1))
    assert found.filter(lambda r: r.config.batch_size == 16).pluck("batch_size") == [16] * 4
    assert found.filter({"summary.loss": ge(4)}).pluck("summary.loss") == [4, 5]
    assert found.map(lambda r: r.config.model.depth) == list(range(7, -1, -1))
    groups = found.group_by("lr")
    assert list(groups) == [0.01, 0.1, 0.001] and sum(len(g) for g in groups.values()) == 8
    assert all(isinstance(g, Collection) for g in groups.values())
    assert found.group_by("tags").keys() == {(), ("a",)}
    assert found.pluck("id") == found.ids() and found.pluck("class") == ["Train"] * 8
    assert [r.id for r in found] == found.ids()
    assert found[0] is found[0]  # loaded once
    with pytest.raises(IndexError):
        found[8]
    with pytest.raises(TypeError):
        found["lr"]
    with pytest.raises(ConfigError):
        found.filter(3)  # type: ignore[arg-type]


def _plain_frame(frame: Any) -> dict[str, Any]:
    """A frame's columns as lists, missing values as None (NaN is not equal to itself)."""
    return {name: [None if value is None or value != value else value for value in frame[name]] for name in frame.columns}


def _bulk_results(found: Collection[Any]) -> dict[str, Any]:
    """What every bulk method of `found` answers (each reads the rows anew)."""
    return {
        "table": found.to_table(), "lr": found.pluck("lr"), "created": found.pluck("created"),
        "kind": found.pluck("kind"), "small": found.filter({"batch_size": 16}).ids(),
        "deep": found.sort("model.depth", reverse=True).ids(), "loss": found.sort("summary.loss").ids(),
        "groups": {key: group.ids() for key, group in found.group_by("lr").items()},
        "frame": _plain_frame(found.to_dataframe()), "where": found.filter(lambda r: r.config.lr > 0.05).ids(),
    }


@pytest.mark.parametrize("read", ["by id", "by pass, placed by row", "by pass, placed by id"])
def test_bulk_reads_by_id_or_by_one_pass_answer_alike(store: Storage, monkeypatch: pytest.MonkeyPatch, read: str) -> None:
    runs = sweep(12)
    for i, run in enumerate(runs[:5]):
        run.save_summary(loss=5 - i)
    expected = _bulk_results(get.all(Train))
    assert [row["id"] for row in expected["table"]] == [run.id for run in reversed(runs)]
    assert expected["lr"] == [[0.1, 0.01, 0.001][i % 3] for i in reversed(range(12))]
    assert expected["loss"][:5] == [run.id for run in runs[4::-1]]
    import retain.collection
    import retain.index.sqlite._index

    # Small chunks, and a pass over the class for any collection (or never): the same answers.
    monkeypatch.setattr(retain.collection, "SCAN_MIN", 10**9 if read == "by id" else 1)
    monkeypatch.setattr(retain.collection, "PLACES_SPAN", 0 if read.endswith("by id") else 8)
    monkeypatch.setattr(retain.collection, "BY_ID", 5)
    monkeypatch.setattr(retain.index.sqlite._index, "SCAN_CHUNK", 5)
    Data().commit()  # another class: not in the pass
    found = get.all(Train)
    assert _bulk_results(found) == expected
    assert _bulk_results(found[2:9])["table"] == expected["table"][2:9]
    # A rebuild renumbers the rows: the places the collection holds are stale, not wrong.
    shutil.rmtree(runs[0].local_directory())  # ... and one interface is gone
    assert retain.index.rebuild() == 12
    again = _bulk_results(found)
    gone = again["table"][-1]
    assert gone == {"id": runs[0].id, "module": Train.__module__, "class": "Train", "created": None}
    assert again["table"][:-1] == expected["table"][:-1] and again["lr"][-1] is None and len(found) == 12


def test_a_collection_reads_its_rows_when_asked(store: Storage) -> None:
    """A collection holds ids, not rows: values saved after the query are what it shows."""
    runs = sweep(3)
    found = get.all(Train)
    assert found.pluck("summary.loss") == [None, None, None]
    runs[0].save_summary(loss=0.5)
    assert found.pluck("summary.loss") == [None, None, 0.5]
    assert found.filter({"summary.loss": 0.5}).ids() == [runs[0].id]


@contextmanager
def traced(index: SqliteIndex) -> Iterator[tuple[list[str], int]]:
    """In the block, the SQL that the index's connection runs (a list that grows) and the
    size of its memory map, which is the same again after the block."""
    conn = index._db.connection()
    mapped = conn.execute("PRAGMA mmap_size").fetchone()[0]
    assert mapped > 0
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        yield statements, mapped
    finally:
        conn.set_trace_callback(None)
    assert index._db.connection().execute("PRAGMA mmap_size").fetchone()[0] == mapped


def test_the_sqlite_listing_is_read_from_an_index_without_sorting(store: Storage) -> None:
    sweep(3)
    Data().commit()
    retain.index._updates.flush()
    index = default_index(store)
    with traced(index) as (statements, _):
        for query in (Query([class_reference(Train)]), Query()):
            statements.clear()
            listing = index.listing(query)
            assert len(listing.ids) == (3 if query.classes else 4)
            [select] = [sql for sql in statements if sql.lstrip().startswith("SELECT i.id")]
            plan = " ".join(row[3] for row in index._db.connection().execute(f"EXPLAIN QUERY PLAN {select}"))
            assert "COVERING INDEX" in plan and "TEMP B-TREE" not in plan, plan


def assert_unmapped_around(statements: list[str], select: str) -> None:
    """The map was turned off right before the statement starting with `select`, and on
    again after it."""
    sizes = [sql.split("=")[1] for sql in statements if "mmap_size" in sql]
    at = next(i for i, sql in enumerate(statements) if sql.lstrip().startswith(select))
    assert sizes == ["0", str(MMAP_BYTES)] and "mmap_size=0" in statements[at - 1], statements


def test_a_whole_class_listing_reads_without_the_memory_map(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index's pages lie all over the file: a pass over them through the map brings their
    neighbours into the process (+430 MB at 1,000,000 rows; +460 MB for their count);
    read() keeps them out. A small file keeps the map (turning it off costs more than it
    saves), as do lookups of a few rows."""
    sweep(3)
    retain.index._updates.flush()
    index = default_index(store)
    with traced(index) as (statements, _):
        assert len(index.listing(Query([class_reference(Train)])).ids) == 3
        assert not [sql for sql in statements if "mmap_size" in sql]  # a small file
        monkeypatch.setattr(sqlite_backend._index, "UNMAPPED_PASS_BYTES", os.path.getsize(index.path) - 1)
        statements.clear()
        assert len(index.listing(Query([class_reference(Train)])).ids) == 3
        assert_unmapped_around(statements, "SELECT i.id")
        statements.clear()
        # The count of whole classes (which a table asks first) is the same pass.
        assert index.count(Query([class_reference(Train)])) == 3
        assert_unmapped_around(statements, "SELECT count(*)")
        statements.clear()
        condition = Condition(QueryField("config", "lr", "lr"), equal(0.1, "lr"))
        assert len(index.listing(Query([class_reference(Train)], None, [condition])).ids) == 1
        assert index.count(Query([class_reference(Train)], None, [condition])) == 1
        assert not [sql for sql in statements if "mmap_size" in sql]


@pytest.mark.parametrize("cpus", [1, 2, 8])
def test_a_rebuild_sorts_with_helper_threads_and_gives_them_back(
    store: Storage, monkeypatch: pytest.MonkeyPatch, cpus: int
) -> None:
    """The sorts at the end of a rebuild (leaves, indexes) come after the readers are done:
    SQLite's sorter may use the other CPUs then. Queries after it sort in one thread again,
    also when the rebuild failed. The rebuild reads without the memory map (every page of
    the old contents and the new would stay in the process), which queries have again after."""
    sweep(3)
    retain.index._updates.flush()
    index = default_index(store)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    with traced(index) as (statements, mapped):
        conn = index._db.connection()
        assert retain.index.rebuild(store) == 3
        maps = [i for i, sql in enumerate(statements) if sql.startswith("PRAGMA mmap_size")]
        assert [statements[i] for i in maps] == ["PRAGMA mmap_size=0", f"PRAGMA mmap_size={MMAP_BYTES}"]
        deleted = statements.index("DELETE FROM config_values")
        assert maps[0] < deleted and maps[1] > statements.index("PRAGMA threads=0")
        assert conn.execute("PRAGMA mmap_size").fetchone()[0] == mapped
        places = [i for i, sql in enumerate(statements) if sql.startswith("PRAGMA threads")]
        assert [statements[i] for i in places] == [f"PRAGMA threads={min(cpus - 1, 3)}", "PRAGMA threads=0"]
        first, last = places
        sorted_leaves = next(i for i, sql in enumerate(statements) if "FROM temp.staged_values ORDER BY" in sql)
        assert first < sorted_leaves < last
        assert any(sql.startswith("CREATE INDEX") for sql in statements[first:last])
        assert conn.execute("PRAGMA threads").fetchone()[0] == 0

        def broken(self: Any) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(sqlite_backend._insert.BulkInsert, "finish", broken)
        with pytest.raises(IndexDatabaseError, match="disk I/O error"):
            retain.index.rebuild(store)
        assert index._db.connection().execute("PRAGMA threads").fetchone()[0] == 0
        assert len(get.all(Train)) == 3  # the rebuild rolled back; the index as it was (and the map: `traced`)


def test_to_table_columns(store: Storage) -> None:
    run = Train({"lr": 0.5, "tags": ["x"]}).commit()
    run.save_summary({"loss": 0.25, "status": "ok"})
    table = get.all(Train).to_table()
    assert table == [{
        "id": run.id, "module": Train.__module__, "class": "Train", "created": run.created,
        "config.lr": 0.5, "config.batch_size": 32, "config.model.depth": 2,
        "config.model.act": "relu", "config.tags": ["x"], "config.note": None,
        "summary.loss": 0.25, "summary.status": "ok",
    }]


def test_to_table_flattens_nested_configs_in_order(store: Storage) -> None:
    data = Data().commit()
    Open({"params": {"b": {"c": 1, "d": {}}, "a.x": [1, 2], "ref": data, "z": None}}).commit()
    row = get.all(Open).to_table()[0]
    assert list(row.items())[4:] == [
        ("config.params.a.x", [1, 2]), ("config.params.b.c", 1), ("config.params.b.d", {}),
        ("config.params.ref", data.id), ("config.params.z", None),
    ]


def test_to_dataframe(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    pandas = pytest.importorskip("pandas")
    for i, run in enumerate(sweep(3)):
        run.save_summary(loss=float(i))
    frame = get.all(Train).to_dataframe()
    assert list(frame.columns[:4]) == ["id", "module", "class", "created"]
    assert "config.model.depth" in frame.columns and "summary.loss" in frame.columns
    assert frame["summary.loss"].tolist() == [2.0, 1.0, 0.0]
    assert str(frame["created"].dtype).startswith("datetime64")
    assert len(get.all(Train, where={"lr": 9}).to_dataframe()) == 0
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'retain\[pandas\]'"):
        get.all(Train).to_dataframe()
    assert pandas is not None


def _shapes(data: Data) -> list[Open]:
    """Configs of many shapes, in commit order: one nested shape, then rows that differ from it
    at the top, below it, or by a dict as a leaf; with a summary, tags and metrics here and there."""
    params = [
        {"a": 1, "b": {"c": 2}}, {"a": 1.5, "b": {"c": "x"}}, {"a": 1, "b": 3}, {"a": 1, "b": {"c": 2, "d": [4]}},
        {"a": data, "b": {"c": 2}}, {"a": {}, "b": {"c": None}}, {}, {"z": True}, {"a": 3, "y": {"c": 2}},
        {"a": 2, "b": {"c": 5}},
    ]
    runs = [Open({"params": p}).commit() for p in params]
    runs[1].save_summary(loss=0.5, note="ok")
    runs[4].save_summary(loss=1)
    runs[9].tag("best")
    return runs


#: The config columns of the rows of `_shapes`, in their order.
_SHAPED = [
    {"config.params.a": 1, "config.params.b.c": 2}, {"config.params.a": 1.5, "config.params.b.c": "x"},
    {"config.params.a": 1, "config.params.b": 3}, {"config.params.a": 1, "config.params.b.c": 2, "config.params.b.d": [4]},
    {"config.params.a": "<data>", "config.params.b.c": 2}, {"config.params.a": {}, "config.params.b.c": None},
    {"config.params": {}}, {"config.params.z": True}, {"config.params.a": 3, "config.params.y.c": 2},
    {"config.params.a": 2, "config.params.b.c": 5},
]


@pytest.mark.parametrize("read", ["by id", "by pass"])
def test_to_table_rows_of_any_shape_in_one_chunk(store: Storage, monkeypatch: pytest.MonkeyPatch, read: str) -> None:
    import retain.collection
    import retain.index.sqlite._index

    data = Data().commit()
    runs = _shapes(data)
    monkeypatch.setattr(retain.collection, "SCAN_MIN", 10**9 if read == "by id" else 1)
    monkeypatch.setattr(retain.index.sqlite._index, "SCAN_CHUNK", 4)  # shapes change within chunks and across
    table = get.all(Interface).to_table()
    summaries: dict[int, dict[str, Any]] = {1: {"summary.loss": 0.5, "summary.note": "ok"}, 4: {"summary.loss": 1}}
    expected = [
        {"id": run.id, "module": Open.__module__, "class": "Open", "created": run.created,
         **({"tags": ["best"]} if k == 9 else {}),
         **{name: data.id if value == "<data>" else value for name, value in _SHAPED[k].items()}, **summaries.get(k, {})}
        for k, run in reversed(list(enumerate(runs)))
    ] + [{"id": data.id, "module": Data.__module__, "class": "Data", "created": data.created, "config.name": "mnist"}]
    assert table == expected
    assert [list(row) for row in table] == [list(row) for row in expected]  # the columns in order too


def test_the_tables_of_nothing_are_empty(store: Storage) -> None:
    assert get.all(Train).to_table() == []  # no class at all in the index
    pandas = pytest.importorskip("pandas")
    assert list(get.all(Train).to_dataframe().columns) == ["id", "module", "class", "created"]
    assert pandas is not None


def test_to_dataframe_is_the_frame_of_to_table(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Column types as pandas infers them from the dicts of `to_table` (missing values NaN): a
    column of ints with a missing value is float, of bools with a missing value object."""
    pandas = pytest.importorskip("pandas")
    import retain.collection
    from retain._html import table_columns

    _shapes(Data().commit())
    Train({"note": "n", "model.depth": 3}).commit().save_summary(loss=float("nan"), ok=True)
    # ints beyond int64, and ints on every row of a column (typed without pandas' inference)
    Open({"params": {"big": 2**70, "n": 1, "x": 1}}).commit()
    Open({"params": {"big": 3, "n": 2, "x": 2.5}}).commit()
    monkeypatch.setattr(retain.collection, "SCAN_MIN", 1)
    import retain.index.sqlite._index

    # Small chunks: columns first seen in a later chunk (the frame's rows made before them).
    monkeypatch.setattr(retain.index.sqlite._index, "SCAN_CHUNK", 3)
    found = get.all(Interface)
    table = found.to_table()
    rows = [{key: value for key, value in row.items() if key != "tags"} for row in table]
    expected = pandas.DataFrame(rows, columns=table_columns(rows))
    expected["created"] = pandas.to_datetime(expected["created"], utc=True, format="ISO8601")
    frame = found.to_dataframe()
    pandas.testing.assert_frame_equal(frame, expected)
    assert str(frame["summary.ok"].dtype) == "object" and str(frame["config.params.b.c"].dtype) == "object"
    assert str(frame["config.params.big"].dtype) == "object" and frame["config.params.big"].max() == 2**70
    frame = get.all(Open, where={"params.n": retain.gt(0)}).to_dataframe()
    assert str(frame["config.params.n"].dtype) == "int64" and str(frame["config.params.x"].dtype) == "float64"


def test_a_frame_of_one_class_is_the_frame_of_its_table(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows of one class come by column (numbers as typed arrays): with summaries on some rows
    of a chunk and on every row of another, a column of ints in one chunk and floats in the
    next, the frame is the one pandas infers from `to_table`."""
    pandas = pytest.importorskip("pandas")
    import retain.collection
    import retain.index.sqlite._index
    from retain._html import table_columns

    runs = [Open({"params": {"a": {"b": 2 * k}, "n": 4.5 if k == 3 else k}}).commit() for k in range(6)]
    for run in runs[:3]:  # the first chunk: every row has a summary
        run.save_summary(loss=0.5, ok=True)
    runs[4].save_summary(loss=2)  # the second: one row of three
    monkeypatch.setattr(retain.collection, "SCAN_MIN", 1)
    monkeypatch.setattr(retain.index.sqlite._index, "SCAN_CHUNK", 3)
    found = get.all(Open)
    table = found.to_table()
    expected = pandas.DataFrame(table, columns=table_columns(table))
    expected["created"] = pandas.to_datetime(expected["created"], utc=True, format="ISO8601")
    frame = found.to_dataframe()
    pandas.testing.assert_frame_equal(frame, expected)
    assert list(frame["config.params.a.b"]) == [10, 8, 6, 4, 2, 0] and str(frame["config.params.a.b"].dtype) == "int64"
    assert str(frame["config.params.n"].dtype) == "float64" and str(frame["summary.ok"].dtype) == "object"


@pytest.mark.parametrize("few", [1, 100])
def test_a_frame_of_many_shapes_in_one_chunk_is_the_frame_of_its_table(
    store: Storage, monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    """A chunk whose rows have more sets of columns than `FEW_SHAPES` makes one block over all
    of them (its rows' missing columns NaN), fewer a block per set: either way the frame is
    the one pandas infers from `to_table`."""
    pandas = pytest.importorskip("pandas")
    import retain._table
    import retain.collection
    from retain._html import table_columns

    monkeypatch.setattr(retain._table, "FEW_SHAPES", few)
    monkeypatch.setattr(retain.collection, "SCAN_MIN", 1)
    for j in range(12):  # twelve shapes, ints, floats, text and bools, in one chunk
        Open({"params": {f"k{j % 5}": j, "v": [1, 2.5, "x", True][j % 4], **({"extra": j} if j % 3 else {})}}).commit()
    Open({"params": {"k0": 2**70}}).commit()
    found = get.all(Open)
    table = found.to_table()
    expected = pandas.DataFrame(table, columns=table_columns(table))
    expected["created"] = pandas.to_datetime(expected["created"], utc=True, format="ISO8601")
    pandas.testing.assert_frame_equal(found.to_dataframe(), expected)


#: The start of a child script: every pass in workers, and `started` notes whether each
#: pass could fork them.
IN_WORKERS = """
import json, logging, os, sys
import retain
from retain import Interface, get, _threads
from retain import _table, collection

logging.basicConfig()
collection.PARALLEL_MIN = 1
collection.SCAN_MIN = 1
started = []
spawn = collection.in_workers
def spy(job, top):
    chunks = spawn(job, top)
    started.append(chunks is not None)
    return chunks
collection.in_workers = spy
"""

TABLE_IN_WORKERS = IN_WORKERS + """
from retain.index.sqlite import _index

_table.TASK_PLACES = 3
_index.SCAN_CHUNK = 2
span = _table._span_in_worker
def dies(where):
    if where[0] == 3:
        os._exit(1)  # a worker killed (out of memory): the rest is read here
    return span(where)

def plain(frame):
    values = {name: [None if value is None or value != value else str(value) for value in frame[name]] for name in frame.columns}
    return {"values": values, "types": {name: str(frame[name].dtype) for name in frame.columns}}

out = {}
with retain.storage(sys.argv[1]):
    found = get.all(Interface)
    out["index"] = type(found._shared.index).__name__
    out["table"], out["frame"] = found.to_table(), plain(found.to_dataframe())
    _table._span_in_worker = dies
    out["died"] = found.to_table()
    _table._span_in_worker = span
    retain.index.rebuild()  # every place stale: the rows are found by id
    out["stale"] = found.to_table()
print(json.dumps({"started": started, **out}))
"""


def check_table_in_workers(store: Storage, env: dict[str, str], index: str) -> None:
    """Tables of `store` (its index as `env` says) made by forked workers in a fresh process
    (one thread: it may fork) are the ones made here."""
    _shapes(Data().commit())
    for run in sweep(6):
        run.save_summary(loss=1.0)
    found = get.all(Interface)
    table = found.to_table()
    here = found.to_dataframe()
    frame, types = _plain_frame(here), {name: str(here[name].dtype) for name in here.columns}
    retain.index._updates.flush()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}, **env}
    done = subprocess.run([sys.executable, "-c", TABLE_IN_WORKERS, store.url], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["started"] == [True, True, True, True] and out["index"] == index
    assert out["table"] == out["died"] == out["stale"] == table
    assert "a table worker failed" in done.stderr
    assert out["frame"]["values"] == {name: [None if value is None else str(value) for value in values] for name, values in frame.items()}
    assert out["frame"]["types"] == types  # the columns typed by the workers are those inferred here


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2, reason="fork, two CPUs")
def test_to_table_in_worker_processes_answers_alike(store: Storage) -> None:
    """Forked workers (from a fresh process: this one may have other threads) read
    ranges of places and make the rows; a worker that dies leaves its ranges to the process;
    stale places are found by id."""
    check_table_in_workers(store, {}, "SqliteIndex")


COMMITS_THEN_TABLE = IN_WORKERS + """
class Point(Interface):
    Config = {"x": 0}

with retain.storage(sys.argv[1]):
    for x in range(20):
        Point({"x": x}).commit()
    rows = get.all(Point).to_table()
    idle = _threads.running()
    Point({"x": 20}).commit()  # after the writer's thread has ended: another one writes it
    after = len(get.all(Point))
print(json.dumps({"started": started, "rows": len(rows), "idle": idle, "after": after}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2, reason="fork, two CPUs")
def test_a_process_that_committed_still_forks_table_workers(tmp_path: Path) -> None:
    """The index writer's thread ends once the queue is written, so a query after commits
    leaves the process without threads of retain's, free to fork workers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    done = subprocess.run([sys.executable, "-c", COMMITS_THEN_TABLE, str(tmp_path / "storage")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"started": [True], "rows": 20, "idle": 0, "after": 21}


def test_a_writer_thread_ended_by_an_error_is_started_again(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error out of the writer's thread ends it (its batch is left to the journal); the next
    commit starts another, which writes."""
    from retain.index import _updates

    unraised: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraised.append)
    write = _updates._write

    def broken(batch: Any) -> None:
        raise RuntimeError("the writer failed")

    monkeypatch.setattr(_updates, "_write", broken)
    lost = Train({"lr": 0.7}).commit()
    _updates.flush()  # returns: the thread has ended
    monkeypatch.setattr(_updates, "_write", write)
    kept = Train({"lr": 0.8}).commit()
    _updates.flush()
    assert default_index(store).ids() == {kept.id}  # without a query's repair
    assert [str(hook.exc_value) for hook in unraised] == ["the writer failed"]
    assert {r.id for r in get.all(Train)} == {lost.id, kept.id}  # the journal repairs the rest


# -- summaries --------------------------------------------------------------------------------


def test_summary_before_and_after_commit(store: Storage) -> None:
    run = Train({"lr": 0.3})
    assert run.load_summary() == {}
    assert run.save_summary(loss=1.0, epochs=3) == {"loss": 1.0, "epochs": 3}
    run.commit()
    assert get.all(Train).pluck("summary.loss") == [1.0]
    merged = run.save_summary({"loss": float("nan"), "best": True})
    assert math.isnan(merged["loss"]) and merged["epochs"] == 3 and merged["best"] is True
    again = get(Train, {"lr": 0.3})
    assert again.load_summary().keys() == {"loss", "epochs", "best"}
    table = get.all(Train).to_table()[0]
    assert math.isnan(table["summary.loss"]) and table["summary.best"] is True
    text = Path(run.local_directory(), "summary.json").read_text()
    assert '"epochs": 3' in text  # readable, one value per line
    numpy = pytest.importorskip("numpy")
    assert run.save_summary(acc=numpy.float32(0.5))["acc"] == 0.5


def test_summary_validation(store: Storage) -> None:
    run = Train()
    with pytest.raises(CodecError, match="must be a scalar"):
        run.save_summary(values=[1, 2])
    with pytest.raises(CodecError, match="non-empty strings"):
        run.save_summary({"": 1})
    with pytest.raises(UnsafePathError, match="reserved"):
        run.save_file("summary.json", {"loss": 1})
    assert run.load_summary() == {}


# -- self-repair ------------------------------------------------------------------------------


def test_repair_after_a_process_killed_between_publish_and_index(store: Storage) -> None:
    get.all(Train)  # the index exists and has scanned the storage
    old = age_root(store)
    get.all(Train)  # ... and trusts the (old) root time from now on
    proc = subprocess.run(
        [sys.executable, "-m", "index_worker", "kill-after-publish", store.url, "7"],
        cwd=WORKERS_DIR, env=worker_env(), capture_output=True, timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    import index_worker

    run = get(index_worker.Run, {"i": 7})
    assert run.is_committed() and run.id not in indexed_ids(store)
    os.utime(store.url, ns=(old, old))  # only the journal can tell now
    assert get.all(index_worker.Run).ids() == [run.id]
    assert run.id in indexed_ids(store)


def test_a_repair_is_logged_on_the_retain_index_logger(store: Storage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="retain")
    get.all(Train)
    with retain.index.deferred():  # journal only: the next query repairs the index
        run = Train({"lr": 0.5}).commit()
    assert not [r for r in caplog.records if r.name == "retain.index"]
    assert get.all(Train).ids() == [run.id]
    (record,) = [r for r in caplog.records if r.name == "retain.index"]
    assert record.levelname == "INFO" and "1 interface(s) indexed" in record.getMessage()
    assert store.url in record.getMessage()


def test_repair_after_cp_r_from_another_storage(store: Storage, tmp_path: Path) -> None:
    other = tmp_path / "other"
    with retain.storage(other):
        runs = sweep(3)
        runs[0].save_summary(loss=0.5)
    Train({"lr": 0.9}).commit()
    assert len(get.all(Train)) == 1
    for run in runs:
        shutil.copytree(run.local_directory(), store.local_directory(run.id))  # copies times too, like cp -a
    found = get.all(Train)
    assert set(found.ids()) == {r.id for r in runs} | {Train({"lr": 0.9}).id}
    assert found.filter({"id": runs[0].id}).pluck("summary.loss") == [0.5]


def test_directory_copied_in_just_after_a_commit_is_found(store: Storage, tmp_path: Path) -> None:
    """The scan after a commit is cheap (the index's ids are cached) and still finds a directory
    copied in by hand right after this process's own commit, and one removed by hand."""
    with retain.storage(tmp_path / "other"):
        copied = Train({"lr": 0.33}).commit()
    runs = sweep(3)
    assert len(get.all(Train)) == 3
    index = default_index(store)
    assert index._ids is not None  # the scan filled the cache
    run = Train({"lr": 0.44}).commit()
    shutil.copytree(Path(copied.local_directory()), Path(store.local_directory(copied.id)))
    assert set(get.all(Train).ids()) == {r.id for r in runs} | {run.id, copied.id}
    shutil.rmtree(runs[0].local_directory())
    Train({"lr": 0.55}).commit()
    assert runs[0].id not in get.all(Train).ids() and len(get.all(Train)) == 5


def test_cached_ids_follow_other_connections(store: Storage) -> None:
    """Another process's writes (another connection) are seen: the cache is checked against
    SQLite's data_version."""
    runs = sweep(3)
    retain.index._updates.flush()
    index = default_index(store)
    assert index.ids() == {r.id for r in runs}
    other = SqliteIndex(index.path)
    other.remove([runs[0].id])
    assert index.ids() == {runs[1].id, runs[2].id}
    entry = retain.index._records.read_entry(store, runs[0].id)
    assert entry is not None
    other.upsert([entry])
    other.close()
    assert index.ids() == {r.id for r in runs}
    index.remove([runs[1].id])  # this connection's own writes keep the cache
    assert index.ids() == {runs[0].id, runs[2].id}


def test_repair_after_deleting_a_directory(store: Storage) -> None:
    runs = sweep(3)
    assert len(get.all(Train)) == 3
    shutil.rmtree(runs[1].local_directory())
    assert set(get.all(Train).ids()) == {runs[0].id, runs[2].id}
    assert runs[1].id not in indexed_ids(store)


def test_record_removed_after_listing(store: Storage) -> None:
    runs = sweep(2)
    found = get.all(Train)
    os.unlink(Path(runs[0].local_directory(), "interface.json"))
    with pytest.raises(InterfaceNotFoundError, match="removed .* after it was listed"):
        found[-1]
    assert runs[0].id not in indexed_ids(store)


def test_copy_in_progress_is_found_when_complete(store: Storage, tmp_path: Path) -> None:
    with retain.storage(tmp_path / "other"):
        run = Train({"lr": 0.7}).commit()
    target = Path(store.local_directory(run.id))
    target.mkdir(parents=True)  # the copy has made the directory, not yet the record
    assert len(get.all(Train)) == 0
    age_root(store)
    shutil.copy2(Path(run.local_directory(), "interface.json"), target / "interface.json")
    assert get.all(Train).ids() == [run.id]  # pending directories are checked on every query


def test_deferred_commits_are_indexed_by_the_next_query(store: Storage) -> None:
    with retain.index.deferred():
        runs = sweep(4)
    assert indexed_ids(store) == set()
    assert len(get.all(Train)) == 4
    assert indexed_ids(store) == {r.id for r in runs}


def test_a_broken_index_never_fails_a_commit(store: Storage) -> None:
    sweep(1)
    corrupt_index(store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = Train({"lr": 0.42}).commit()
        retain.index._updates.flush()
    assert run.is_committed()
    assert any(issubclass(w.category, IndexWarning) and "next query repairs" in str(w.message) for w in caught)


# -- rebuild, corruption, schema --------------------------------------------------------------


def test_rebuild_with_progress(store: Storage) -> None:
    runs = sweep(5)
    runs[2].save_summary(loss=0.1)
    Data().commit()
    before = sorted(map(tuple, get.all(Interface).to_table()), key=str)  # type: ignore[arg-type]
    calls: list[tuple[int, int]] = []
    assert retain.index.rebuild(progress=lambda done, total: calls.append((done, total))) == 6
    assert calls[-1] == (6, 6)
    assert sorted(map(tuple, get.all(Interface).to_table()), key=str) == before  # type: ignore[arg-type]
    assert get.all(Train, where={"summary.loss": 0.1}).ids() == [runs[2].id]


def test_rebuild_prints_progress_and_skips_damaged_records(store: Storage, capsys: pytest.CaptureFixture[str]) -> None:
    runs = sweep(3)
    Path(runs[1].local_directory(), "interface.json").write_text("{ not json")
    with pytest.warns(IndexWarning, match=rf"(?s)skipped 1 damaged record.*{runs[1].id}"):
        assert retain.index.rebuild(store, progress=True) == 2
    assert "rebuilding index: 3/3 records" in capsys.readouterr().err
    assert set(get.all(Train).ids()) == {runs[0].id, runs[2].id}


def test_corrupt_index_gives_a_clear_error_and_rebuild_loses_nothing(store: Storage) -> None:
    runs = sweep(4)
    index = corrupt_index(store)
    with pytest.raises(IndexDatabaseError, match=r"is corrupt.*retain.index.rebuild\(\).*nothing is lost"):
        get.all(Train)
    assert retain.index.rebuild() == 4
    assert set(get.all(Train).ids()) == {r.id for r in runs}
    assert index.integrity_check() == "ok"


def test_index_deleted_by_hand_is_recreated(store: Storage) -> None:
    runs = sweep(3)
    retain.index._updates.flush()
    index = default_index(store)
    for suffix in ("", "-wal", "-shm"):
        Path(index.path + suffix).unlink(missing_ok=True)
    index._db._inode_checked = 0.0  # as after INODE_CHECK_S
    assert set(get.all(Train).ids()) == {r.id for r in runs}


def test_newer_schema_gives_a_clear_error(store: Storage) -> None:
    runs = sweep(2)
    retain.index._updates.flush()
    index = default_index(store)
    index.close()
    with sqlite3.connect(index.path) as conn:
        conn.execute(f"PRAGMA user_version = {sqlite_backend.SCHEMA_VERSION + 1}")
    with pytest.raises(IndexDatabaseError, match=rf"schema version {sqlite_backend.SCHEMA_VERSION + 1}, newer than this retain.*rebuild"):
        get.all(Train)
    assert retain.index.rebuild() == 2
    assert set(get.all(Train).ids()) == {r.id for r in runs}
    with sqlite3.connect(index.path) as conn:
        assert conn.execute("SELECT version FROM migrations").fetchall() == [(1,), (2,), (3,), (4,)]


def test_an_index_of_schema_1_is_migrated_in_place_and_takes_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retain.index.sqlite import _schema as _sqlite_schema

    path = str(tmp_path / "index.sqlite")
    with monkeypatch.context() as patch:
        patch.setattr(_sqlite_schema, "SCHEMA_VERSION", 1)
        patch.setattr(_sqlite_schema, "_MIGRATIONS", _sqlite_schema._MIGRATIONS[:1])
        old = retain.index.SqliteIndex(path)
        assert old.ids() == set()  # the tables of schema 1, made by an earlier release
        old.close()
    index = retain.index.SqliteIndex(path)
    update = entry(1, {"x": 1})
    update.metrics = {"loss": 0.25}
    index.upsert([entry(1, {"x": 1}, summary={"loss": 0.5}), update])
    [row] = index.select(Query([CLASS]))
    assert "0.5" in (row[6] or "") and "0.25" in (row[7] or "")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (4,)
        indexes = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'interfaces' AND sql IS NOT NULL"))
    assert "(class, created, row, id)" in indexes["interfaces_by_class"]
    assert "(created, row, id, class)" in indexes["interfaces_by_created"]
    index.close()


def test_index_lives_in_the_storage(store: Storage) -> None:
    run = Train().commit()
    assert get.all(Train).ids() == [run.id]
    meta = Path(store.url) / ".retain"
    assert (meta / "index.sqlite").is_file() and (meta / "journal").is_file()
    assert list(store.iter_ids()) == [run.id]
    assert get.by_id(run.id[:6]) == run


def test_network_file_systems_are_refused_with_a_pointer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\nserver:/export {tmp_path} nfs4 rw 0 0\n")
    monkeypatch.setattr(sqlite_backend.filesystem_type, "__defaults__", (str(mounts),))
    assert sqlite_backend.filesystem_type(str(tmp_path / "x")) == "nfs4"
    monkeypatch.delenv("RETAIN_INDEX_ALLOW_NETWORK_FS", raising=False)
    index = SqliteIndex(tmp_path / "nfs" / "index.sqlite")
    with pytest.raises(IndexDatabaseError, match=r"nfs4 file system.*PostgreSQL"):
        index.ids()
    assert SqliteIndex(tmp_path / "nfs2" / "i.sqlite", allow_network_fs=True).ids() == set()
    mounts.write_text("/dev/vda / ext4 rw 0 0\nhost:/a\\040b /mnt/a\\040b fuse.sshfs rw 0 0\n")
    assert sqlite_backend.filesystem_type("/mnt/a b/c") == "fuse.sshfs"


def test_make_index(store: Storage, tmp_path: Path) -> None:
    own = make_index()
    assert own is make_index(None, store) and isinstance(own, SqliteIndex)
    assert make_index(own) is own
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    elsewhere = make_index(url)
    assert elsewhere is make_index(url) and elsewhere.url == url
    runs = sweep(2)
    assert set(get.all(Train, index=url).ids()) == {r.id for r in runs}  # catches up by itself
    postgres = make_index("postgresql://me:secret@db/x")  # connects on first use
    assert postgres is make_index("postgresql://me:secret@db/x") and postgres.supports_multiple_hosts
    assert "secret" not in repr(postgres) and "me:***@db/x" in repr(postgres)
    for bad in ("mysql://x", "sqlite:///", 3):
        with pytest.raises(IndexDatabaseError, match="index must be an Index"):
            make_index(bad)  # type: ignore[arg-type]


def test_updates_mode_is_checked() -> None:
    with pytest.raises(ConfigError, match="'on', 'deferred' or 'off'"):
        retain.index.updates("sometimes")


# -- processes --------------------------------------------------------------------------------


def test_processes_commit_and_query_at_once(store: Storage) -> None:
    workers, each = 4, 30
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "index_worker", "commit-and-query", store.url, str(w), str(each)],
            cwd=WORKERS_DIR, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for w in range(workers)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert int(out) >= each  # its own commits, at least
    import index_worker

    expected = {index_worker.Run({"i": i, "worker": w}).id for w in range(workers) for i in range(each)}
    assert indexed_ids(store) == expected  # every commit indexed by its own process, none lost
    index = default_index(store)
    assert index.integrity_check() == "ok"
    assert set(get.all(index_worker.Run).ids()) == expected
    query = Query([class_reference(index_worker.Run)], conditions=[])
    assert index.count(query) == workers * each


def test_import_does_not_load_sqlite3() -> None:
    code = "import sys, retain; print('sqlite3' in sys.modules, 'retain.index' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_summary_file_survives_json_round_trip(store: Storage) -> None:
    run = Train().commit()
    run.save_summary(a=1, b="x", c=None)
    assert json.loads(Path(run.local_directory(), "summary.json").read_text()) == {"a": 1, "b": "x", "c": None}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_uses_the_index_safely(store: Storage) -> None:
    """Locks and connections do not cross a fork; the child commits and queries normally."""
    sweep(2)
    index = default_index(store)
    index._db.lock.acquire()  # as if another thread of the parent held it at the fork
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                Train({"lr": 0.77}).commit()
                code = 0 if len(get.all(Train)) == 3 else 2
            finally:
                os._exit(code)
    finally:
        index._db.lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(get.all(Train)) == 3


def test_a_damaged_summary_reads_as_none(store: Storage) -> None:
    runs = sweep(5)
    for run in runs:
        run.save_summary(loss=0.5)
    texts = ["{not json}", '{"loss": 1} {"loss": 2}', '{"loss": 3}, {}', "{}"]
    for run, text in zip(runs, texts):
        Path(run.local_directory(), "summary.json").write_text(text)
    assert retain.index.rebuild() == 5
    found = get.all(Train)
    assert [row.get("summary.loss") for row in found.to_table()] == [0.5, None, None, None, None]
    assert found.pluck("summary.loss") == [0.5, None, None, None, None]
    assert len(found.filter({"summary.loss": 0.5})) == 1


def test_a_summary_name_no_interface_has_is_an_error(store: Storage) -> None:
    runs = sweep(4)
    runs[0].save_summary(loss=0.5, accuracy=0.9)
    runs[1].save_summary(loss=0.1)
    with pytest.raises(ConfigError, match=r"no committed Train has a summary value 'los'.*accuracy, loss.*did you mean 'summary.loss'"):
        get.all(Train, where={"summary.los": lt(1)})
    with pytest.raises(ConfigError, match=r"summary value 'acc'"):
        get.all(Train).filter({"summary.acc": 0.9})
    with pytest.raises(ConfigError, match=r"summary value 'loss2'"):
        get.all(Train).sort("summary.loss2")
    with pytest.raises(ConfigError, match=r"summary value 'x'.*accuracy, loss"):
        get.all(Interface, where={"summary.x": 1})
    # A name some interface has is a filter like any other, also when nothing passes.
    assert len(get.all(Train, where={"summary.accuracy": lt(0.5)})) == 0
    assert len(get.all(Train).filter({"summary.accuracy": 0.1})) == 0
    assert get.all(Train).sort("summary.accuracy").first().id == runs[0].id  # type: ignore[union-attr]
    assert len(get.all(Data, where={"summary.loss": 1})) == 0  # nothing committed: nothing to check


def test_a_number_key_compared_with_text_is_an_error(store: Storage) -> None:
    sweep(2)
    with pytest.raises(ConfigError, match=r"'lr' of Train is a number \(its default is 0.1\).*lt\('abc'\).*text"):
        get.all(Train, where={"lr": lt("abc")})
    with pytest.raises(ConfigError, match=r"'model.act' of Train is text.*a number"):
        get.all(Train, where={"model.act": between(1, 2)})
    with pytest.raises(ConfigError, match="is a number"):
        get.all(Train).filter({"model.depth": gt("a")})
    assert len(get.all(Train, where={"model.act": gt("a")})) == 2
    assert len(get.all(Interface, where={"lr": lt("abc")})) == 0  # any class: not checked


class Huge(retain.Component):
    Config = {"v": 0}

    def __call__(self) -> None:
        pass


def test_a_huge_integer_in_a_config_never_poisons_the_index(store: Storage) -> None:
    huge = Open({"params": {"v": 2**1024}}).commit()
    other = Open({"params": {"v": 1}}).commit()
    assert {i.id for i in get.all(Open)} == {huge.id, other.id}
    assert [i.id for i in get.all(Open, where={"params.v": 2**1024})] == [huge.id]
    assert [i.id for i in get.all(Open, where={"params.v": gt(2**1023)})] == [huge.id]
    assert len(get.all(Open, where={"params.v": 2**1024 + 1})) == 0
    run = get(Huge, {"v": -(2**1030)}).launch()
    assert retain.status(Huge).states == {run.id: "finished"}
    assert retain.index.rebuild() == 3
    assert [i.id for i in get.all(Open, where={"params.v": 2**1024})] == [huge.id]
    assert len(get.all(Interface)) == 3
