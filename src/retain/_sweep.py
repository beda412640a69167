"""The state of components, one (`ExecutionStatus`) or many (`status`), and `launch` of many."""

from __future__ import annotations

from ._errors import ConfigError, InterfaceNotFoundError, ModuleResolutionError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

    from ._runfiles import RunFiles

    from .component import Component
    from .execution.base import Execution
    from .storage import Storage

__all__ = ["STATES", "ExecutionStatus", "StatusReport", "components_of", "launch", "status"]

#: Every state a component is in, as `ExecutionStatus.state()` and `status()` report it.
#: ``queued``: handed to a batch system (Slurm) whose job has not started its run yet.
STATES = ("missing", "queued", "running", "failed", "died", "finished")


def component_state(component: Component) -> tuple[str, dict[str, Any] | None]:
    """(state, error): error describes the failure of a ``failed`` or ``died`` component."""
    state, error, _ = _state(component, None)
    return state, error


class _JobLookup:
    """Asks each batch system once about the jobs of many components (see
    `Execution.job_states`); remembers the answers."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.asked: dict[tuple[str, str], set[str]] = {}

    @staticmethod
    def _key(submission: dict[str, Any]) -> tuple[str, str] | None:
        execution = submission.get("execution")
        job = submission.get("job")
        if not isinstance(execution, dict) or not isinstance(job, str):
            return None
        return str(execution.get("module")), str(execution.get("class"))

    def prefetch(self, submissions: Iterable[dict[str, Any]]) -> None:
        wanted: dict[tuple[str, str], set[str]] = {}
        for submission in submissions:
            key = self._key(submission)
            if key is not None:
                wanted.setdefault(key, set()).add(submission["job"])
        for key, jobs in wanted.items():
            self._query(key, sorted(jobs - self.asked.get(key, set())))

    def state(self, submission: dict[str, Any]) -> dict[str, Any] | None:
        key = self._key(submission)
        if key is None:
            return None
        job = submission["job"]
        if job not in self.asked.get(key, set()):
            self._query(key, [job])
        found = self.known.get(key, {}).get(job)
        return None if found is None else {"id": job, **found}

    def _query(self, key: tuple[str, str], jobs: list[str]) -> None:
        from .execution.base import Execution
        from .modules import resolve_class

        self.asked.setdefault(key, set()).update(jobs)
        if not jobs:
            return
        try:
            cls = resolve_class(f"{key[0]}:{key[1]}", Execution)
            states = cls.job_states(jobs) if issubclass(cls, Execution) and cls.supports_job_states else {}
        except Exception:  # no scheduler here (another machine's submission): states unknown
            states = {}
        self.known.setdefault(key, {}).update(states)


def _state(
    component: Component, lookup: _JobLookup | None
) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """(state, error, job): job is the batch system's view of the latest submission."""
    from ._claim import judge
    from ._timestamps import parse_iso

    if not component.is_committed():
        return "missing", None, None
    files = component.storage.run_files(component.id)
    if files.is_finished():
        return "finished", None, None
    latest = files.latest_run()
    claim = files.claim(latest) if latest else None
    end = files.end(latest) if latest else None
    reason = None
    if latest and end is None:
        reason = judge(files, latest, claim) if claim else "its claim cannot be read"
        if reason is None:
            return "running", None, None
    job = None
    submission = files.submission()
    if submission is not None:
        job = (lookup or _JobLookup()).state(submission)
    if job is not None:
        started = parse_iso(claim["started"]) if claim and isinstance(claim.get("started"), str) else None
        start = job.get("start")
        # A claim made before the job's current start is not this job's run (a requeued job
        # has a new start): the job has yet to run the component.
        not_run_by_job = started is None or start is None or started < float(start) - 1
        if job.get("active") and (job.get("pending") or not_run_by_job):
            return "queued", None, job
        if not job.get("active") and not_run_by_job and job.get("state") != "COMPLETED":
            message = f"job {job['id']} ended {job.get('state')} before it ran the component"
            return "died", {"type": "died", "message": message, "job": job, "run": latest or None}, job
    suffix = f" (job {job['id']}: {job.get('state')})" if job is not None else ""
    if not latest:
        return "missing", None, job
    if end is None:
        return "died", {"type": "died", "message": f"run {latest} died: {reason}{suffix}", "run": latest}, job
    if end.get("status") == "finished":
        return "finished", None, job
    if end.get("status") == "died":
        message = f"run {latest} died: {end.get('reason')}{suffix}"
        return "died", {"type": "died", "message": message, "run": latest}, job
    for failure in reversed(files.failures()):
        if failure.get("run") == latest:
            return "failed", failure, job
    return "failed", {"run": latest, **(end.get("error") or {"type": "?", "message": "(not recorded)"})}, job


class ExecutionStatus:
    """The state of a component's runs, read from its directory at each question.

    `Component.execution` returns one. States: ``missing`` (never ran), ``queued`` (a batch
    system's job will run it), ``running``, ``failed``, ``died`` (its process stopped without
    recording an end, or its job ended before running it), ``finished``.
    """

    def __init__(self, component: Component) -> None:
        self.component = component

    @property
    def _files(self) -> RunFiles:
        return self.component.storage.run_files(self.component.id)

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

    def is_queued(self) -> bool:
        """Whether a batch system's job (Slurm) is queued to run it and has not started yet."""
        return self.state() == "queued"

    def error(self) -> dict[str, Any] | None:
        """The failure of a ``failed`` or ``died`` component: type, message, traceback, time."""
        return component_state(self.component)[1]

    def job(self) -> dict[str, Any] | None:
        """The batch system's view of the latest job it was submitted in (None when it was
        never submitted, or the scheduler no longer knows the job): ``id``, ``state``
        (``PENDING``, ``RUNNING``, ``COMPLETED``, ``TIMEOUT``...), ``active``, ``pending``,
        ``reason``, ``start``; ``submission`` is what the launcher recorded (time, script,
        log)."""
        submission = self._files.submission()
        if submission is None:
            return None
        found = _JobLookup().state(submission)
        return None if found is None else {**found, "submission": submission}

    def submissions(self) -> list[dict[str, Any]]:
        """Every hand-over to a batch system, oldest first: time, execution, job, script, log."""
        from .storage.layout import SUBMISSIONS_FILE

        return self._files.read_lines(SUBMISSIONS_FILE)

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
        return self._files.read_output().decode("utf-8", "replace")

    def __repr__(self) -> str:
        state, error, job = _state(self.component, None)
        detail = f": {error['type']}: {error['message']}" if error else ""
        if state == "queued" and job is not None:
            detail = f": {_describe_job(job)}"
        return f"<ExecutionStatus of {self.component!r}: {state}{detail}>"


def _describe_job(job: dict[str, Any]) -> str:
    reason = f" ({job['reason']})" if job.get("reason") else ""
    return f"job {job['id']} {job.get('state')}{reason}"


class StatusReport:
    """The states of many components: ``report.failed`` (a list), ``report.errors[id]``,
    ``report.counts()``, and a readable ``repr``."""

    def __init__(
        self,
        entries: list[tuple[Component, str, dict[str, Any] | None]],
        jobs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.components = [component for component, _, _ in entries]
        self.states = {component.id: state for component, state, _ in entries}
        self.errors = {component.id: error for component, _, error in entries if error is not None}
        #: The batch system's view of each submitted component's latest job, by id.
        self.jobs: dict[str, dict[str, Any]] = dict(jobs or {})

    def __getitem__(self, state: str) -> list[Component]:
        if state not in STATES:
            raise KeyError(f"{state!r} is not a state; states are {', '.join(STATES)}")
        return [c for c in self.components if self.states[c.id] == state]

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
        return len(self.components)

    def __iter__(self) -> Iterator[tuple[Component, str]]:
        return iter([(c, self.states[c.id]) for c in self.components])

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
                    message = f"  {_describe_job(job)}"
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
    lookup = _JobLookup()
    submissions = []
    for component in components:
        if component.is_committed():
            files = component.storage.run_files(component.id)
            if not files.is_finished():
                submission = files.submission()
                if submission is not None:
                    submissions.append(submission)
    lookup.prefetch(submissions)  # one question per batch system, not one per component
    entries = []
    jobs = {}
    for component in components:
        state, error, job = _state(component, lookup)
        entries.append((component, state, error))
        if job is not None:
            jobs[component.id] = job
    return StatusReport(entries, jobs)


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
    """Every committed component of `cls`, or of a subclass of it defined in this process, in
    storage, oldest first: one index query per class, then their records (and no other)."""
    from ._get import get
    from .element import _classes

    classes = [cls, *(known for known in list(_classes.values())
                      if known is not cls and isinstance(known, type) and issubclass(known, cls))]
    found: dict[str, Component] = {}
    for each in classes:
        collection = get.all(each, storage=storage)
        for position in range(len(collection)):
            try:
                component = collection[position]
            except InterfaceNotFoundError:  # removed from storage since the query
                continue
            found.setdefault(component.id, component)
    return sorted(found.values(), key=lambda component: (component.created or "", component.id))
