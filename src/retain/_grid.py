"""`grid`: the cells of a sweep (every combination of some config values), as interfaces.

``grid(Train, {"lr": [0.1, 0.01], "batch": [8, 16]})`` is what four calls of `get` return,
in a fixed order, with `launch`, `status` and `missing` over them. ``retain train
lr=0.1,0.01 batch=8,16 --launch`` builds the same cells from the words of the command line.
"""

from __future__ import annotations

from . import _settings
from ._errors import ConfigError
from ._get import _resolve, get
from ._api import launch, status
from .component import Component
from .interface import Interface

# `typing` at run time is fine here: this module loads at the first grid, not at `import retain`.
from typing import Generic, TypeVar, overload

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import Any

    from ._api import StatusReport
    from .execution.base import Execution
    from .versions import Version

I = TypeVar("I", bound=Interface)


__all__ = ["Grid", "VERSION_KEY", "grid", "grid_of_axes"]

#: The key of a grid whose values are versions (``"~small"``) rather than config values.
VERSION_KEY = "~"


class Grid(Generic[I]):
    """The cells of a grid: one interface per combination of the values, committed ones
    loaded, the others new (what `get` returns for each), in a fixed order: the product of
    the values in the order of the keys, the last key varying fastest.

    A sequence: ``len(grid)``, ``grid[0]``, ``grid[1:3]`` (a Grid), iteration. ``grid.points``
    holds the values of each cell (``{"lr": 0.1, "batch": 8}``), ``grid.items()`` pairs them
    with the cells.
    """

    __slots__ = ("target", "points", "_cells")

    def __init__(self, target: type[I], points: list[dict[str, Any]], cells: list[I]) -> None:
        if len(points) != len(cells):
            raise ValueError("a Grid needs one point per cell")
        #: The class of the cells.
        self.target = target
        #: The grid values of each cell, by key (``"~"`` for the version), in cell order.
        self.points = points
        self._cells = cells

    def __len__(self) -> int:
        return len(self._cells)

    def __iter__(self) -> Iterator[I]:
        return iter(list(self._cells))

    @overload
    def __getitem__(self, position: int) -> I: ...

    @overload
    def __getitem__(self, position: slice) -> Grid[I]: ...

    def __getitem__(self, position: int | slice) -> I | Grid[I]:
        if isinstance(position, slice):
            return Grid(self.target, self.points[position], self._cells[position])
        return self._cells[position]

    def items(self) -> Iterator[tuple[dict[str, Any], I]]:
        """``(point, cell)`` pairs in cell order; a point maps each grid key to its value."""
        return iter(list(zip(self.points, self._cells)))

    def launch(
        self,
        *,
        only: Iterable[str] | str | None = None,
        execution: Execution | str | None = None,
        wait: bool | float = True,
    ) -> list[Component]:
        """Launch the cells (as `retain.launch`): those finished already are skipped.

        Args:
            only: launch only the cells in these states, e.g. ``("failed", "died")``.
            execution: an Execution or its module name (``"retain.execution.pool"``); default:
                the innermost ``with execution:`` block, else in process.
            wait: as for `Component.launch`.

        Returns:
            The cells launched (or queued).

        Raises:
            LaunchError: some cells failed (the others ran), listed in ``.failures``.
            TypeError: the cells are not Components.
        """
        return launch(self._components("launch"), only=only, execution=execution, wait=wait)

    def status(self) -> StatusReport:
        """The state of every cell (missing, queued, running, failed, died, finished), as
        `retain.status`."""
        return status(self._components("status"))

    def missing(self) -> Grid[I]:
        """The cells without a result yet, as a Grid: for components, every cell that is not
        finished (never run, queued, running, failed or died: what `launch` would run, resume
        or wait for); for other interfaces, the cells not committed.

        Unlike ``grid.status().missing`` (the cells never run), it includes the failed ones:
        ``grid.missing().launch()`` completes the grid.
        """
        if issubclass(self.target, Component):
            report = self.status()
            keep = [report.state(cell) != "finished" for cell in self._components("missing")]
        elif issubclass(self.target, Interface):
            keep = [not cell.is_committed() for cell in self._cells]
        else:
            raise TypeError(
                f"{self.target.__qualname__} is an Element, which is never stored: every cell is "
                "missing (make it an Interface to commit it)"
            )
        return Grid(
            self.target,
            [point for point, kept in zip(self.points, keep) if kept],
            [cell for cell, kept in zip(self._cells, keep) if kept],
        )

    def _components(self, verb: str) -> list[Component]:
        cells: list[Component] = [cell for cell in self._cells if isinstance(cell, Component)]
        if len(cells) != len(self._cells):
            raise TypeError(
                f"{self.target.__qualname__} is not a Component: {verb} is for components, which "
                "run; commit the cells of other interfaces instead (for cell in grid: cell.commit())"
            )
        return cells

    def __repr__(self) -> str:
        keys = self.points[0] if self.points else {}
        varying = [key for key in keys if len({repr(point.get(key)) for point in self.points}) > 1]
        shape = f" over {', '.join(varying)}" if varying else ""
        return f"<Grid of {len(self)} {self.target.__qualname__} cell(s){shape}>"


@overload
def grid(target: type[I], values: Mapping[str, Any], *, base: Version = None, storage: Any = None) -> Grid[I]: ...


@overload
def grid(target: str, values: Mapping[str, Any], *, base: Version = None, storage: Any = None) -> Grid[Interface]: ...


def grid(target: Any, values: Mapping[str, Any], *, base: Version = None, storage: Any = None) -> Any:
    """Every combination of config values, as interfaces: ``get(target, [base, {key: value},
    ...])`` for each cell, committed ones loaded, the others new.

    Args:
        target: an Interface subclass, or a module name as for `get`.
        values: the alternatives of each key, as lists (or tuples, or ranges): ``{"lr": [0.1,
            0.01], "batch": [8, 16]}`` has four cells. Dotted keys nest (``"model.depth"``).
            The key ``"~"`` takes versions: ``{"~": ["~small", "~large(2)"]}`` (``None``: no
            version). A cell applies `base`, then its value of each key, in the order of the
            keys.
        base: a version applied first to every cell (a dict, a ``"~name"`` string, or a
            list of them).
        storage: where to look for committed cells (default: see `retain.storage`).

    Returns:
        A `Grid`: the cells in the order of the product of the values (the first key varies
        slowest), with ``launch()``, ``status()`` and ``missing()``.

    Raises:
        ConfigError: a value is not a list, a list is empty, or a key is not in the Config.
        VersionError: a version of the grid or of `base` is invalid.

    Example:
        >>> cells = retain.grid(Train, {"lr": [0.1, 0.01], "batch": [8, 16]})
        >>> cells.launch(execution="retain.execution.pool")
    """
    cls = _resolve(target)
    if not hasattr(values, "items"):
        raise ConfigError(
            f"grid values must be a dict of key -> list of values, e.g. {{'lr': [0.1, 0.01]}}; "
            f"got {type(values).__name__} {values!r}"
        )
    axes = []
    for key, options in values.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"grid keys are config keys (strings); got {key!r}")
        if not isinstance(options, (list, tuple, range)):
            raise ConfigError(
                f"grid key {key!r}: expected a list of values, got {type(options).__name__} "
                f"{options!r}; wrap one value in a list ({{{key!r}: [{options!r}]}}) or put it "
                "in base="
            )
        axes.append((key, list(options)))
    return grid_of_axes(cls, axes, base=base, storage=storage)


def grid_of_axes(
    target: Any, axes: list[tuple[str, list[Any]]], *, base: Version = None, storage: Any = None
) -> Grid[Any]:
    """The grid of `target` (a class or module name) over ``(key, alternatives)`` pairs,
    applied in this order (keys may repeat: the words of the command line)."""
    cls = _resolve(target)
    for key, options in axes:
        if not options:
            raise ConfigError(
                f"grid key {key!r} has no values: an empty list makes no cells; give at least one"
            )
        if key == VERSION_KEY:
            for option in options:
                if option is not None and not (isinstance(option, str) and option.startswith("~")):
                    raise ConfigError(
                        f"grid key '~' takes versions such as '~small' or '~large(2)' (or None for "
                        f"none); got {option!r}"
                    )
    start: list[Any] = [] if base is None else list(base) if isinstance(base, list) else [base]
    points: list[dict[str, Any]] = [{}]
    for key, options in axes:
        points = [{**point, key: option} for point in points for option in options]
    combos: list[list[tuple[str, Any]]] = [[]]
    for key, options in axes:
        combos = [[*combo, (key, option)] for combo in combos for option in options]
    cells = []
    # The storage resolved once for every cell, not once per `get` (a grid may be 100,000).
    with _settings.storage(_settings.current_storage(storage)):
        for combo in combos:
            version = list(start)
            for key, option in combo:
                if key == VERSION_KEY:
                    if option is not None:
                        version.append(option)
                else:
                    version.append({key: option})
            cells.append(get(cls, version))
    return Grid(cls, points, cells)
