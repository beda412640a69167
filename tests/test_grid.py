"""`retain.grid`: the cells of a sweep, in order, with launch, status and missing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import retain
from conftest import write_module
from retain import ConfigError, Grid, LaunchError, VersionError, get, grid

SWEEP = """
from retain import Component

class Sweep(Component):
    Config = {"lr": 0.1, "batch": 8, "fail": False, "model": {"depth": 2, "width": 4}}

    def version_small(self):
        return {"model.depth": 1}

    def version_fast(self, factor=10):
        return {"lr": self.config.lr * factor}

    def __call__(self):
        if self.config.fail:
            raise ValueError("boom")
        self.save_summary(score=self.config.lr * self.config.batch)
"""

TABLE = """
from retain import Interface

class Table(Interface):
    Config = {"rows": 1, "name": "t"}
"""


@pytest.fixture
def sweep(project: Path) -> Any:
    write_module(project, "sweep", SWEEP)
    write_module(project, "table", TABLE)
    import sweep  # type: ignore[import-not-found]

    return sweep.Sweep


def configs(cells: Grid[Any], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(cell.config.to_dict()[key] for key in keys) for cell in cells]


def test_cells_are_the_product_in_the_order_of_the_keys(sweep: Any) -> None:
    committed = get(sweep, {"lr": 0.01, "batch": 8}).commit()
    cells = grid(sweep, {"lr": [0.1, 0.01], "batch": [8, 16]})
    assert isinstance(cells, Grid) and len(cells) == 4
    assert configs(cells, "lr", "batch") == [(0.1, 8), (0.1, 16), (0.01, 8), (0.01, 16)]  # last key fastest
    assert cells.points == [{"lr": 0.1, "batch": 8}, {"lr": 0.1, "batch": 16},
                            {"lr": 0.01, "batch": 8}, {"lr": 0.01, "batch": 16}]
    assert [cell.id for cell in cells] == [get(sweep, point).id for point in cells.points]
    assert [cell.is_committed() for cell in cells] == [False, False, True, False]  # committed ones loaded
    assert cells[2].id == committed.id and cells[-1].config.batch == 16
    part = cells[1:3]
    assert isinstance(part, Grid) and [c.id for c in part] == [cells[1].id, cells[2].id]
    assert part.points == cells.points[1:3]
    assert [(point, cell.id) for point, cell in cells.items()] == list(zip(cells.points, [c.id for c in cells]))
    assert repr(cells) == "<Grid of 4 Sweep cell(s) over lr, batch>"
    flipped = grid(sweep, {"batch": [8, 16], "lr": [0.1, 0.01]})
    assert configs(flipped, "lr", "batch") == [(0.1, 8), (0.01, 8), (0.1, 16), (0.01, 16)]
    assert len(grid(sweep, {})) == 1 and grid(sweep, {})[0].id == get(sweep).id  # no keys: the base alone
    assert [c.config.lr for c in grid("sweep", {"lr": (0.5, 0.25)})] == [0.5, 0.25]  # a module name, a tuple
    assert [c.config.batch for c in grid(sweep, {"batch": range(1, 4)})] == [1, 2, 3]


def test_dotted_keys_nest_and_base_applies_first(sweep: Any) -> None:
    cells = grid(sweep, {"model.depth": [1, 3]}, base={"lr": 0.5, "model.width": 8})
    assert [c.config.to_dict()["model"] for c in cells] == [{"depth": 1, "width": 8}, {"depth": 3, "width": 8}]
    assert [c.config.lr for c in cells] == [0.5, 0.5]
    # The grid's values come after the base: they win over it.
    assert [c.config.lr for c in grid(sweep, {"lr": [0.2]}, base={"lr": 0.5})] == [0.2]
    # A base may be a version, or a list of versions.
    assert [c.config.lr for c in grid(sweep, {"batch": [1]}, base="~fast")] == [pytest.approx(1.0)]
    assert [c.config.model.depth for c in grid(sweep, {"batch": [1]}, base=["~small", {"lr": 0.3}])] == [1]


def test_versions_are_alternatives_of_the_key_tilde(sweep: Any) -> None:
    cells = grid(sweep, {"~": [None, "~small", "~fast(2)"], "lr": [0.1, 0.2]})
    assert [p["~"] for p in cells.points] == [None, None, "~small", "~small", "~fast(2)", "~fast(2)"]
    assert [c.config.model.depth for c in cells] == [2, 2, 1, 1, 2, 2]
    # Keys apply in their order: lr (after the version) wins over ~fast's lr.
    assert [c.config.lr for c in cells] == [0.1, 0.2, 0.1, 0.2, 0.1, 0.2]
    after = grid(sweep, {"lr": [0.1, 0.2], "~": ["~fast(2)"]})  # the version after lr doubles it
    assert [c.config.lr for c in after] == [pytest.approx(0.2), pytest.approx(0.4)]
    assert after[0].id == get(sweep, [{"lr": 0.1}, "~fast(2)"]).id


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"lr": []}, ConfigError, "grid key 'lr' has no values: an empty list makes no cells"),
        ({"lr": 0.1}, ConfigError, "grid key 'lr': expected a list of values, got float 0.1; wrap one value in a list ({'lr': [0.1]}) or put it in base="),
        ({"lr": "0.1,0.2"}, ConfigError, "wrap one value in a list"),
        ({"lx": [1, 2]}, ConfigError, "unknown config key 'lx' for Sweep"),
        ({"model.dept": [1]}, ConfigError, "unknown config key"),
        ({"lr": ["fast"]}, ConfigError, "'lr' of Sweep expects a number"),
        ({"~": ["small"]}, ConfigError, "grid key '~' takes versions such as '~small' or '~large(2)' (or None for none); got 'small'"),
        ({"~": ["~nope"]}, VersionError, "Sweep has no method version_nope()"),
        ([("lr", [1])], ConfigError, "grid values must be a dict of key -> list of values"),
    ],
)
def test_bad_grids_say_what_is_wrong(sweep: Any, values: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as raised:
        grid(sweep, values)
    assert message in str(raised.value)


def test_launch_status_and_missing(sweep: Any) -> None:
    cells = grid(sweep, {"batch": [1, 2], "fail": [False, True]})
    report = cells.status()
    assert isinstance(report, retain.StatusReport) and report.counts()["missing"] == 4
    assert [c.id for c in cells.missing()] == [c.id for c in cells]
    with pytest.raises(LaunchError) as raised:
        cells.launch()
    assert len(raised.value.failures) == 2  # the others ran
    assert [cells.status().state(c) for c in cells] == ["finished", "failed", "finished", "failed"]
    assert [c.load_summary()["score"] for c in (cells[0], cells[2])] == [pytest.approx(0.1), pytest.approx(0.2)]
    missing = cells.missing()  # failed ones are missing results, though not "never run"
    assert isinstance(missing, Grid) and [c.id for c in missing] == [cells[1].id, cells[3].id]
    assert missing.points == [{"batch": 1, "fail": True}, {"batch": 2, "fail": True}]
    assert cells.status().missing == []
    # A later grid of the same values finds them all committed; launching it only resumes the
    # failed ones (the finished are skipped).
    again = grid(sweep, {"batch": [1, 2], "fail": [False, True]})
    assert all(c.is_committed() for c in again)
    assert [c.id for c in again.launch(only="finished")] == [cells[0].id, cells[2].id]  # cached: nothing runs
    assert [len(c.execution.runs()) for c in again] == [1, 1, 1, 1]
    with pytest.raises(LaunchError):
        again.missing().launch()
    assert [len(c.execution.runs()) for c in again] == [1, 2, 1, 2]
    done = grid(sweep, {"batch": [3, 4]})
    assert [c.id for c in done.launch(execution="retain.execution.local")] == [c.id for c in done]
    assert len(done.missing()) == 0 and done.status().counts()["finished"] == 2


def test_a_grid_of_interfaces_that_do_not_run(sweep: Any) -> None:
    cells = grid("table", {"rows": [1, 2, 3]})
    cells[1].commit()
    assert [c.config.rows for c in cells.missing()] == [1, 3]  # not committed
    with pytest.raises(TypeError, match="Table is not a Component: launch is for components"):
        cells.launch()
    with pytest.raises(TypeError, match="status is for components"):
        cells.status()
    elements = grid(retain.Element, {})
    assert len(elements) == 1 and isinstance(elements, Grid[retain.Interface].__origin__)  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="Element is an Element, which is never stored"):
        elements.missing()


def test_grid_launches_in_a_pool(sweep: Any) -> None:
    cells = grid(sweep, {"batch": [5, 6, 7]})
    with get("retain.execution.pool", {"processes": 2}):
        cells.launch()
    assert [c.load_summary()["score"] for c in cells] == [pytest.approx(0.5), pytest.approx(0.6), pytest.approx(0.7)]
    assert all(c.execution.runs()[0]["pid"] != os.getpid() for c in cells)
