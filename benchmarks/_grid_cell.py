"""The component of `bench_grid.py`, in a module of its own so that Slurm's tasks (and any
other process) can import it by name."""

from __future__ import annotations

from retain import Component


class GridCell(Component):
    """A sweep cell that does almost nothing; the cells with ``b == 99`` fail (1% of a grid
    whose ``b`` runs over 100 values)."""

    Config = {"a": 0, "b": 0}

    def __call__(self) -> None:
        if self.config.b == 99:
            raise ValueError("cell b=99 fails on purpose")
