"""The verbs over many components: `status` and `launch` (one component has
`Component.launch` and `Component.execution`)."""

from __future__ import annotations

from collections.abc import Sequence

from . import _settings
from ._errors import ConfigError, InterfaceNotFoundError, ModuleResolutionError
from .runs import batch
from .runs.status import STATES, JobLookup, describe_job, finished_among, state_of
from ._get import get, _resolve
from .execution.base import Execution
from .execution.local import LocalExecution
from .component import Component
from .element import _classes
from .runs.files import RunFiles
from .storage.layout import FINISHED_FILE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

    from .storage import Storage

__all__ = ["StatusReport", "components_of", "launch", "make_execution", "status"]


class StatusReport:
    """The states of many components: ``report.failed`` (a list), ``report.errors[id]``,
    ``report.counts()``, and a readable ``repr``."""

    def __init__(
        self,
        entries: list[tuple[Component, str, dict[str, Any] | None]],
        jobs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        #: The components, in order (those of a class: each loaded when first looked at).
        self.components: Sequence[Component] = [component for component, _, _ in entries]
        self._ids = [component.id for component in self.components]
        self.states: dict[str, str] = {}
        self.errors: dict[str, dict[str, Any]] = {}
        for component, state, error in entries:
            id = component.id  # computed once: a report may hold 100,000 components
            self.states[id] = state
            if error is not None:
                self.errors[id] = error
        #: The batch system's view of each submitted component's latest job, by id.
        self.jobs: dict[str, dict[str, Any]] = dict(jobs or {})

    @classmethod
    def _of(
        cls,
        components: Sequence[Component],
        ids: list[str],
        states: dict[str, str],
        errors: dict[str, dict[str, Any]],
        jobs: dict[str, dict[str, Any]],
    ) -> StatusReport:
        """A report from what `status` computed by id (no entry tuples, no id computed again)."""
        report = cls.__new__(cls)
        report.components, report._ids, report.states = components, ids, states
        report.errors, report.jobs = errors, jobs
        return report

    def __getitem__(self, state: str) -> list[Component]:
        if state not in STATES:
            raise KeyError(f"{state!r} is not a state; states are {', '.join(STATES)}")
        return self._in({state})

    def _in(self, states: set[str]) -> list[Component]:
        """The components in one of `states`, in order; only those are loaded."""
        known, components = self.states, self.components
        return [components[position] for position, id in enumerate(self._ids) if known[id] in states]

    @property
    def missing(self) -> list[Component]:
        return self["missing"]

    @property
    def queued(self) -> list[Component]:
        return self["queued"]

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
        return len(self._ids)

    def __iter__(self) -> Iterator[tuple[Component, str]]:
        states = self.states
        return ((self.components[position], states[id]) for position, id in enumerate(self._ids))

    def __repr__(self) -> str:
        counts = self.counts()
        lines = [
            f"StatusReport of {len(self)} component(s): "
            + ", ".join(f"{counts[state]} {state}" for state in STATES if state != "queued" or counts[state])
        ]
        for state in ("failed", "died", "running", "queued", "missing"):
            chosen = self[state]
            for component in chosen[:20]:
                error = self.errors.get(component.id)
                message = f"  {error['type']}: {error['message']}".splitlines()[0][:160] if error else ""
                job = self.jobs.get(component.id)
                if state == "queued" and job is not None:
                    message = f"  {describe_job(job)}"
                lines.append(f"  {state:<8} {component!r} {component.nickname}{message}")
            if len(chosen) > 20:
                lines.append(f"  {state:<8} ... and {len(chosen) - 20} more")
        return "\n".join(lines)


def status(targets: Any, *, storage: Any = None) -> StatusReport:
    """The state of every component in `targets`: missing, queued (in a batch system's
    queue), running, failed (with the error), died, finished.

    Args:
        targets: a Component, a list of them, or a Component subclass (or its module name,
            as `get` takes): then every committed component of that class in storage.
        storage: where to look for a class's components (default: see `retain.storage`).

    Example:
        >>> report = retain.status(EstimatePi)
        >>> report.failed, report.errors
    """
    components = _components(targets, storage)
    states: dict[str, str] = {}
    others = []
    if isinstance(components, _OfClass):
        # Committed, all in one storage: the finished (most, in a sweep) in one bulk check;
        # only the others are loaded from their records.
        finished = components.storage.ids_with_file(components.ids, FINISHED_FILE)
        gone = []
        for position, id in enumerate(components.ids):
            if id in finished:
                states[id] = "finished"
                continue
            try:
                others.append(components[position])
            except InterfaceNotFoundError:  # removed from storage since the query
                gone.append(position)
        if gone:
            components = components.without(gone)
        ids = components.ids
    else:
        ids = [component.id for component in components]  # computed once: a grid may be 100,000
        # The finished (most cells of a grid launched before) in one bulk existence check per
        # storage; only the others need their run files read, and the batch system asked.
        finished = finished_among(zip(ids, components))
        for id, component in zip(ids, components):
            if id in finished:
                states[id] = "finished"
            elif component.is_committed():
                others.append(component)
            else:
                states[id] = "missing"
    lookup = JobLookup()
    submissions = []
    for component in others:
        submission = RunFiles(component.storage, component.id).submission()
        if submission is not None:
            submissions.append(submission)
    lookup.prefetch(submissions)  # one question per batch system, not one per component
    errors: dict[str, dict[str, Any]] = {}
    jobs = {}
    for component in others:
        state, error, job = state_of(component, lookup)
        states[component.id] = state
        if error is not None:
            errors[component.id] = error
        if job is not None:
            jobs[component.id] = job
    return StatusReport._of(components, ids, states, errors, jobs)


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
    found = _components(targets, storage)
    if only is not None:
        wanted = {only} if isinstance(only, str) else set(only)
        unknown = sorted(wanted - set(STATES))
        if unknown:
            raise ConfigError(f"only: unknown state(s) {', '.join(map(repr, unknown))}; states are {', '.join(STATES)}")
        components = status(found)._in(wanted)
    else:
        components = list(found)
    if execution is None and batch.get() is not None:
        for component in components:
            component.launch(wait=wait)
        return components
    make_execution(execution).dispatch(components, wait=wait)
    return components


def make_execution(value: Execution | str | None) -> Execution:
    """An Execution from an instance, a module name, or None (in process)."""
    if value is None:
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


def _components(targets: Any, storage: Any) -> Sequence[Component]:
    if isinstance(targets, Component):
        return [targets]
    if isinstance(targets, _OfClass):
        return targets
    if isinstance(targets, str):
        targets = _resolve(targets)
    if isinstance(targets, type):
        if not issubclass(targets, Component):
            raise ModuleResolutionError(f"{targets.__qualname__} is not a Component subclass")
        return _OfClass.query(targets, storage)
    components = list(targets)
    for item in components:
        if not isinstance(item, Component):
            raise TypeError(f"expected Components, got {type(item).__name__} {item!r}")
    return components


class _OfClass(Sequence[Component]):
    """The committed components of a class (and of its subclasses defined in this process) in
    one storage, oldest first, by id; each loaded from its record when asked for (a status of
    a 100,000-cell sweep loads the few that are not finished, not all)."""

    def __init__(self, storage: Storage, collections: list[Any], ids: list[str], places: list[tuple[int, int]]) -> None:
        self.storage = storage
        self.ids = ids
        self._collections = collections
        #: (which collection, position in it) of each id
        self._places = places

    @classmethod
    def query(cls, target: type[Component], storage: Any) -> _OfClass:
        """One index query per class; ordered as `components_of` orders."""
        classes = [target, *(known for known in list(_classes.values())
                             if known is not target and isinstance(known, type) and issubclass(known, target))]
        store = _settings.current_storage(storage)
        collections = []
        rows: list[tuple[str, str, int, int]] = []
        seen: set[str] = set()
        for which, each in enumerate(classes):
            collection = get.all(each, storage=store)
            collections.append(collection)
            for position, (id, created) in enumerate(zip(collection.ids(), collection.pluck("created"))):
                if id not in seen:
                    seen.add(id)
                    rows.append((created or "", id, which, position))
        rows.sort()
        return cls(store, collections, [row[1] for row in rows], [(row[2], row[3]) for row in rows])

    def without(self, positions: list[int]) -> _OfClass:
        dropped = set(positions)
        keep = [position for position in range(len(self.ids)) if position not in dropped]
        return _OfClass(self.storage, self._collections, [self.ids[p] for p in keep], [self._places[p] for p in keep])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, slice):
            return [self[position] for position in range(len(self.ids))[item]]
        which, position = self._places[item]
        return self._collections[which][position]


def components_of(cls: type[Component], storage: Storage | str | None = None) -> list[Component]:
    """Every committed component of `cls`, or of a subclass of it defined in this process, in
    storage, oldest first: one index query per class, then their records (and no other)."""
    query = _OfClass.query(cls, storage)
    found = []
    for position in range(len(query)):
        try:
            found.append(query[position])
        except InterfaceNotFoundError:  # removed from storage since the query
            continue
    return found
