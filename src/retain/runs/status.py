"""The state of one component's runs (`ExecutionStatus`), read from its run files and, for
a component handed to a batch system, from that system's view of its job."""

from __future__ import annotations

import time

from .._errors import InterfaceNotFoundError
from ..modules import resolve_class
from .._timestamps import parse_iso
from .. import _settings
from ..identity import is_id
from ..storage.layout import FINISHED_FILE, SUBMISSIONS_FILE
from .files import RunFiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from ..component import Component
    from ..storage import Storage

__all__ = [
    "STATES", "ExecutionStatus", "JobLookup", "component_state", "describe_job", "finished_among", "state_of",
]

#: Every state a component is in, as `ExecutionStatus.state()` and `status()` report it.
#: ``queued``: handed to a batch system (Slurm) whose job has not started its run yet.
STATES = ("missing", "queued", "running", "failed", "died", "finished")


def component_state(component: Component) -> tuple[str, dict[str, Any] | None]:
    """(state, error): error describes the failure of a ``failed`` or ``died`` component."""
    state, error, _ = state_of(component, None)
    return state, error


def finished_among(components: Iterable[tuple[str, Component]]) -> set[str]:
    """The ids of the finished among ``(id, component)`` pairs (committed, with a finished
    marker): one existence check per committed component, asked of each storage in bulk, not
    the several reads of `state_of` each."""
    by_storage: dict[Storage, list[str]] = {}
    last: Storage | None = None
    ids: list[str] = []
    for id, component in components:
        if component.is_committed():
            storage = component.storage
            if storage is not last:  # the cells of a grid share one storage: hash it once
                ids = by_storage.setdefault(storage, [])
                last = storage
            ids.append(id)
    found: set[str] = set()
    for storage, stored in by_storage.items():
        found |= storage.ids_with_file(stored, FINISHED_FILE)
    return found


class JobLookup:
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
        self.asked.setdefault(key, set()).update(jobs)
        if not jobs:
            return
        try:
            # The execution recorded in the submission (an `Execution` subclass), by name: the
            # run layer asks it about jobs without depending on the execution layer.
            cls: Any = resolve_class(f"{key[0]}:{key[1]}", object)
            states = cls.job_states(jobs) if getattr(cls, "supports_job_states", False) else {}
        except Exception:  # no scheduler here (another machine's submission): states unknown
            states = {}
        self.known.setdefault(key, {}).update(states)


def state_of(
    component: Component, lookup: JobLookup | None
) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """(state, error, job): job is the batch system's view of the latest submission."""
    if not component.is_committed():
        return "missing", None, None
    files = RunFiles(component.storage, component.id)
    if files.is_finished():
        return "finished", None, None
    latest = files.latest_run()
    claim = files.claim(latest) if latest else None
    end = files.end(latest) if latest else None
    reason = None
    if latest and end is None:
        from .claims import why_dead  # claims load threads: at the first question, not at import

        reason = why_dead(files, latest, claim) if claim else "its claim cannot be read"
        if reason is None:
            return "running", None, None
    job = None
    submission = files.submission()
    if submission is not None:
        job = (lookup or JobLookup()).state(submission)
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

    @classmethod
    def of(cls, id: str, *, storage: Storage | str | None = None) -> ExecutionStatus:
        """The status of the component with this id, read from `storage` (the current one by
        default) without importing its class: for tools and scripts that read records without
        their code. An id that is not committed is ``missing``.

        Raises:
            InterfaceNotFoundError: `id` is not a full id (32 hex characters).
        """
        if not isinstance(id, str) or not is_id(id):
            raise InterfaceNotFoundError(
                f"{id!r} is not an id (32 hex characters); `get.by_id` finds one by prefix"
            )
        store = _settings.current_storage(storage)
        return cls(_Stored(store, id))  # type: ignore[arg-type]

    @property
    def _files(self) -> RunFiles:
        return RunFiles(self.component.storage, self.component.id)

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

    def state_and_error(self) -> tuple[str, dict[str, Any] | None]:
        """`state()` and `error()` read at once (one look at the run files, not two)."""
        return component_state(self.component)

    def job(self) -> dict[str, Any] | None:
        """The batch system's view of the latest job it was submitted in (None when it was
        never submitted, or the scheduler no longer knows the job): ``id``, ``state``
        (``PENDING``, ``RUNNING``, ``COMPLETED``, ``TIMEOUT``...), ``active``, ``pending``,
        ``reason``, ``start``; ``submission`` is what the launcher recorded (time, script,
        log)."""
        submission = self._files.submission()
        if submission is None:
            return None
        found = JobLookup().state(submission)
        return None if found is None else {**found, "submission": submission}

    def submissions(self) -> list[dict[str, Any]]:
        """Every hand-over to a batch system, oldest first: time, execution, job, script, log."""
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

    def duration(self) -> float | None:
        """Seconds its latest run took, or has taken so far while it runs; None when it never
        ran (or its claim cannot be read)."""
        files = self._files
        run = files.latest_run()
        if not run:
            return None
        claim = files.claim(run) or {}
        end = files.end(run)
        try:
            start = parse_iso(str(claim.get("started")))
            stop = parse_iso(str(end["time"])) if end and end.get("time") else time.time()
        except (ValueError, TypeError):
            return None
        return round(stop - start, 3)

    def metrics(self, name: str | None = None, frame: bool = False) -> Any:
        """What its runs logged with `Component.log_metrics`, as `Interface.metrics` reads it."""
        from .._metrics import read  # as `Interface.metrics`: at the first read

        return read(self.component, name, frame)

    def __repr__(self) -> str:
        state, error, job = state_of(self.component, None)
        detail = f": {error['type']}: {error['message']}" if error else ""
        if state == "queued" and job is not None:
            detail = f": {describe_job(job)}"
        return f"<ExecutionStatus of {self.component!r}: {state}{detail}>"


def describe_job(job: dict[str, Any]) -> str:
    reason = f" ({job['reason']})" if job.get("reason") else ""
    return f"job {job['id']} {job.get('state')}{reason}"


class _Stored:
    """A committed component known by storage and id alone (its class need not import)."""

    __slots__ = ("storage", "id")

    def __init__(self, storage: Storage, id: str) -> None:
        self.storage = storage
        self.id = id

    def is_committed(self) -> bool:
        return self.storage.has_record(self.id)

    def local_directory(self) -> str:
        return self.storage.local_directory(self.id)

    def __repr__(self) -> str:
        return f"<component {self.id}>"
