"""Grids at scale: `status` and `launch` find the finished cells of a grid in one bulk
existence check (`Storage.ids_with_file`), and read the run files of the others only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import retain
from retain import LaunchError, Storage, get, grid
from retain.storage import LocalStorage
from retain.storage.base import Storage as BaseStorage
from retain.storage.layout import FINISHED_FILE, SUBMISSIONS_FILE

from component_worker import Work


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_status_counts_every_state_of_a_mixed_grid(store: Storage, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    cells = grid(Work, {"fail": ["", "broken on purpose"], "index": [0, 1, 2, 3], "counter": [str(counter)]})
    with pytest.raises(LaunchError):
        cells[:6].launch()  # 4 finish, 2 fail, 2 never launched
    killed = get(Work, {"index": 99, "counter": str(counter), "kill": True})
    with pytest.raises(LaunchError):
        retain.launch([killed], execution="retain.execution.pool")
    report = retain.status([*cells, killed])
    assert report.counts() == {"missing": 2, "queued": 0, "running": 0, "failed": 2, "died": 1, "finished": 4}
    assert report.finished == list(cells[:4]) and report.failed == list(cells[4:6])
    assert report.missing == list(cells[6:]) and report.died == [killed]
    assert {report.errors[c.id]["type"] for c in cells[4:6]} == {"ValueError"}
    assert report.errors[killed.id]["type"] == "died"
    assert set(report.errors) == {*(c.id for c in cells[4:6]), killed.id}
    assert cells.status().counts() == {**report.counts(), "died": 0}
    # The same component twice: one state, listed twice.
    assert retain.status([cells[0], cells[0]]).finished == [cells[0], cells[0]]
    # A grid's missing() is what launch would still run.
    assert list(cells.missing()) == list(cells[4:])


def test_relaunching_a_finished_grid_runs_nothing(store: Storage, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    cells = grid(Work, {"index": list(range(20)), "counter": [str(counter)]})
    cells.launch()
    assert len(lines(counter)) == 20
    assert cells.launch() == list(cells)
    assert retain.launch(list(cells)) == list(cells)
    outcomes = get("retain.execution.local").dispatch(list(cells))
    assert [o.status for o in outcomes] == ["cached"] * 20 and [o.component for o in outcomes] == list(cells)
    assert len(lines(counter)) == 20  # nothing ran again
    assert all(len(cell.execution.runs()) == 1 for cell in cells)
    # A larger grid over the same key: only its new cell runs.
    more = grid(Work, {"index": list(range(21)), "counter": [str(counter)]})
    outcomes = get("retain.execution.local").dispatch(list(more))
    assert [o.status for o in outcomes] == ["cached"] * 20 + ["finished"]
    assert lines(counter)[20].startswith("20 ") and len(lines(counter)) == 21


@pytest.mark.parametrize("shard", [0, 2])
def test_ids_with_file_is_has_file_of_each(tmp_path: Path, shard: int) -> None:
    storage = LocalStorage(str(tmp_path / "s"), shard=shard)
    with retain.storage(storage):
        cells = [get(Work, {"index": i}).commit() for i in range(6)]
    for cell in cells[::2]:
        storage.create_file(cell.id, FINISHED_FILE, b"{}")
    storage.create_file(cells[1].id, SUBMISSIONS_FILE, b"{}\n")
    ids = [cell.id for cell in cells] + ["0" * 32]  # and an id that is not stored
    expected = {cell.id for cell in cells[::2]}
    assert storage.ids_with_file(ids, FINISHED_FILE) == expected
    assert BaseStorage.ids_with_file(storage, ids, FINISHED_FILE) == expected  # the generic way
    assert storage.ids_with_file(ids, SUBMISSIONS_FILE) == {cells[1].id}
    assert storage.ids_with_file([], FINISHED_FILE) == set()


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_ids_with_file_of_an_object_store_asks_what_its_cache_lacks(object_store: Any, tmp_path: Path, kind: str) -> None:
    storage = object_store(kind)
    with retain.storage(storage):
        cells = [get(Work, {"index": i}).commit() for i in range(40)]
    for cell in cells[::3]:
        storage.create_file(cell.id, FINISHED_FILE, b"{}")
    ids = [cell.id for cell in cells] + ["0" * 32]
    expected = {cell.id for cell in cells[::3]}
    assert storage.ids_with_file(ids, FINISHED_FILE) == expected
    assert storage.ids_with_file(ids[:1], FINISHED_FILE) == {ids[0]}
    # Another machine: nothing cached, every answer from the store (many lookups at once).
    other = type(storage)(storage.url, cache_dir=str(tmp_path / "other-cache"))
    assert other.ids_with_file(ids, FINISHED_FILE) == expected
    assert other.ids_with_file(ids, SUBMISSIONS_FILE) == set()
