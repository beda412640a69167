"""The state of components, one (`ExecutionStatus`) or many (`status`), and `launch` of many."""

from __future__ import annotations

import os

from ._errors import ConfigError, ModuleResolutionError
from ._runfiles import RunFiles
from .storage.layout import OUTPUT_LOG

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

    from .component import Component
    from .execution.base import Execution
    from .storage import Storage

__all__ = ["STATES", "ExecutionStatus", "StatusReport", "components_of", "launch", "status"]

#: Every state a component is in, as `ExecutionStatus.state()` and `status()` report it.
STATES = ("missing", "running", "failed", "died", "finished")


def component_state(component: Component) -> tuple[str, dict[str, Any] | None]:
    """(state, error): error describes the failure of a ``failed`` or ``died`` component."""
    from ._claim import judge

    if not component.is_committed():
        return "missing", None
    files = RunFiles(component.local_directory())
    if files.is_finished():
        return "finished", None
    latest = files.latest_run()
    if not latest:
        return "missing", None
    end = files.end(latest)
    if end is None:
        claim = files.claim(latest) or {}
        reason = judge(files, latest, claim) if claim else "its claim cannot be read"
        if reason is None:
            return "running", None
        return "died", {"type": "died", "message": f"run {latest} died: {reason}", "run": latest}
    if end.get("status") == "finished":
        return "finished", None
    if end.get("status") == "died":
        return "died", {"type": "died", "message": f"run {latest} died: {end.get('reason')}", "run": latest}
    for failure in reversed(files.failures()):
        if failure.get("run") == latest:
            return "failed", failure
    return "failed", {"run": latest, **(end.get("error") or {"type": "?", "message": "(not recorded)"})}


class ExecutionStatus:
    """The state of a component's runs, read from its directory at each question.

    `Component.execution` returns one. States: ``missing`` (never ran), ``running``,
    ``failed``, ``died`` (its process stopped without recording an end), ``finished``.
    """

    def __init__(self, component: Component) -> None:
        self.component = component

    @property
    def _files(self) -> RunFiles:
        return RunFiles(self.component.local_directory())

    def state(self) -> str:
        """One of `STATES`."""
        return component_state(self.component)[0]

    def is_started(self) -> bool:
        """Whether a run ever started."""
        files = self._files
        return files.latest_run() > 0 or files.is_finished()

    def is_active(self) -> bool:
        """Whether a run is in progress now (its claim is alive), here or elsewhere."""
        return self.state() == "running"

    def is_finished(self) -> bool:
        """Whether a run finished: `launch()` will not run it again."""
        return self.component.is_committed() and self._files.is_finished()

    def is_failed(self) -> bool:
        """Whether its latest run failed (and no run is in progress)."""
        return self.state() == "failed"

    def is_died(self) -> bool:
        """Whether its latest run's process stopped without recording how it ended."""
        return self.state() == "died"

    def error(self) -> dict[str, Any] | None:
        """The failure of a ``failed`` or ``died`` component: type, message, traceback, time."""
        return component_state(self.component)[1]

    def failures(self) -> list[dict[str, Any]]:
        """Every failure on record, oldest first (they stay after a successful resume)."""
        return self._files.failures()

    def events(self) -> list[dict[str, Any]]:
        """Every event on record: claimed, started, resumed, takeover, finished, failed..."""
        return self._files.events()

    def runs(self) -> list[dict[str, Any]]:
        """Each run's claim (host, pid, versions, command line, execution), with its latest
        ``heartbeat`` and its ``end`` (None while running)."""
        files = self._files
        out = []
        for run in range(1, files.latest_run() + 1):
            claim = files.claim(run)
            if claim is not None:
                beat = files.heartbeat(run)
                out.append({**claim, "last_heartbeat": beat["time"] if beat else None, "end": files.end(run)})
        return out

    def output(self) -> str:
        """Everything its runs printed (stdout and stderr), as far as written."""
        try:
            with open(os.path.join(self.component.local_directory(), OUTPUT_LOG), "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def __repr__(self) -> str:
        state, error = component_state(self.component)
        detail = f": {error['type']}: {error['message']}" if error else ""
        return f"<ExecutionStatus of {self.component!r}: {state}{detail}>"


class StatusReport:
    """The states of many components: ``report.failed`` (a list), ``report.errors[id]``,
    ``report.counts()``, and a readable ``repr``."""

    def __init__(self, entries: list[tuple[Component, str, dict[str, Any] | None]]) -> None:
        self.components = [component for component, _, _ in entries]
        self.states = {component.id: state for component, state, _ in entries}
        self.errors = {component.id: error for component, _, error in entries if error is not None}

    def __getitem__(self, state: str) -> list[Component]:
        if state not in STATES:
            raise KeyError(f"{state!r} is not a state; states are {', '.join(STATES)}")
        return [c for c in self.components if self.states[c.id] == state]

    @property
    def missing(self) -> list[Component]:
        return self["missing"]

    @property
    def running(self) -> list[Component]:
        return self["running"]

    @property
    def failed(self) -> list[Component]:
        return self["failed"]

    @property
    def died(self) -> list[Component]:
        return self["died"]

    @property
    def finished(self) -> list[Component]:
        return self["finished"]

    def state(self, component: Component) -> str:
        return self.states[component.id]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state in self.states.values():
            counts[state] += 1
        return counts

    def __len__(self) -> int:
        return len(self.components)

    def __iter__(self) -> Iterator[tuple[Component, str]]:
        return iter([(c, self.states[c.id]) for c in self.components])

    def __repr__(self) -> str:
        counts = self.counts()
        lines = [
            f"StatusReport of {len(self)} component(s): "
            + ", ".join(f"{counts[state]} {state}" for state in STATES)
        ]
        for state in ("failed", "died", "running", "missing"):
            chosen = self[state]
            for component in chosen[:20]:
                error = self.errors.get(component.id)
                message = f"  {error['type']}: {error['message']}".splitlines()[0][:160] if error else ""
                lines.append(f"  {state:<8} {component!r} {component.nickname}{message}")
            if len(chosen) > 20:
                lines.append(f"  {state:<8} ... and {len(chosen) - 20} more")
        return "\n".join(lines)


def status(targets: Any, *, storage: Any = None) -> StatusReport:
    """The state of every component in `targets`: missing, running, failed (with the error),
    died, finished.

    Args:
        targets: a Component, a list of them, or a Component subclass (or its module name,
            as `get` takes): then every committed component of that class in storage.
        storage: where to look for a class's components (default: see `retain.storage`).

    Example:
        >>> report = retain.status(EstimatePi)
        >>> report.failed, report.errors
    """
    return StatusReport([(c, *component_state(c)) for c in _components(targets, storage)])


def launch(
    targets: Any,
    *,
    only: Iterable[str] | str | None = None,
    execution: Execution | str | None = None,
    wait: bool | float = True,
    storage: Any = None,
) -> list[Component]:
    """Launch many components; those finished already are skipped.

    Args:
        targets: as for `status`: components, or a class (every one of it in storage).
        only: launch only those in these states, e.g. ``("missing", "failed", "died")``.
        execution: an Execution or its module name (``"retain.execution.pool"``); default:
            the innermost ``with execution:`` block (which queues them), else in process.
        wait: as for `Component.launch`.

    Returns:
        The components launched (or queued).

    Raises:
        LaunchError: some failed (the others ran), listed in ``.failures``.
    """
    from .execution.base import current_batch

    components = _components(targets, storage)
    if only is not None:
        wanted = {only} if isinstance(only, str) else set(only)
        unknown = sorted(wanted - set(STATES))
        if unknown:
            raise ConfigError(f"only: unknown state(s) {', '.join(map(repr, unknown))}; states are {', '.join(STATES)}")
        report = status(components)
        components = [c for c in components if report.state(c) in wanted]
    if execution is None and current_batch() is not None:
        for component in components:
            component.launch(wait=wait)
        return components
    make_execution(execution).dispatch(components, wait=wait)
    return components


def make_execution(value: Execution | str | None) -> Execution:
    """An Execution from an instance, a module name, or None (in process)."""
    from ._get import get
    from .execution.base import Execution

    if value is None:
        from .execution.local import LocalExecution

        return LocalExecution()
    if isinstance(value, Execution):
        return value
    if isinstance(value, str):
        found = get(value)
        if isinstance(found, Execution):
            return found
    raise ConfigError(
        f"execution must be an Execution or the module name of one ('retain.execution.pool'); got {value!r}"
    )


def _components(targets: Any, storage: Any) -> list[Component]:
    from ._get import _resolve
    from .component import Component

    if isinstance(targets, Component):
        return [targets]
    if isinstance(targets, str):
        targets = _resolve(targets)
    if isinstance(targets, type):
        if not issubclass(targets, Component):
            raise ModuleResolutionError(f"{targets.__qualname__} is not a Component subclass")
        return components_of(targets, storage)
    components = list(targets)
    for item in components:
        if not isinstance(item, Component):
            raise TypeError(f"expected Components, got {type(item).__name__} {item!r}")
    return components


def components_of(cls: type[Component], storage: Storage | str | None = None) -> list[Component]:
    """Every committed component of `cls` (or a subclass) in storage, oldest first.

    Reads every record in storage for now; the index will answer this as a query.
    """
    from ._settings import current_storage
    from .element import _classes
    from .interface import load_record
    from .modules import class_reference
    from .storage.layout import RECORD_FILE, decode_record

    store = current_storage(storage)
    wanted = class_reference(cls)
    found = []
    for id in store.iter_ids():
        data = store.read_record(id)
        if data is None:
            continue
        record = decode_record(data, os.path.join(store.local_directory(id), RECORD_FILE), id)
        reference = (record["module"], record["class"])
        if reference != wanted:
            known = _classes.get(reference)
            if known is None or not issubclass(known, cls):
                continue
        found.append((record["created"], id, load_record(cls, record, store)))
    return [component for _, _, component in sorted(found, key=lambda entry: entry[:2])]
