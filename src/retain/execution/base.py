"""Execution: how components run. A backend implements one method, `run`; this base handles
the rest (queueing in ``with`` blocks, caching, hooks, progress, failures).

Executions are Interfaces, so the module convention finds them:
``get("retain.execution.pool", {"processes": 4})``. Their configuration is recorded with each
run they make, but it is never part of a component's identity.
"""

from __future__ import annotations

import os
import sys

from .._errors import LaunchError, ModuleResolutionError, NotImportableError
from .._get import get
from ..component import Component, check_runnable
from ..interface import Interface, load_record
from ..modules import class_reference, resolve_class
from ..runs import batch
from ..runs.status import finished_among
from ..storage import make_storage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from contextvars import Token
    from types import TracebackType
    from typing import Any, ClassVar

    from ..runs.dispatch import Outcome, RunOptions

    from ._progress import Progress

__all__ = [
    "Batch",
    "Execution",
    "Job",
    "failure_message",
    "prepare_payload",
    "run_payload",
    "run_prepared",
]


class Batch:
    """The components launched inside one ``with execution:`` block, in launch order."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.items: dict[str, tuple[Component, bool | float]] = {}

    def add(self, component: Component, wait: bool | float = True) -> None:
        self.items.setdefault(component.id, (component, wait))


#: The module a worker process is importing to reload a component (see `run_payload`).
_importing_for_worker: list[str] = []


class Job:
    """One component to run, and how (`options`, recorded in its claim)."""

    __slots__ = ("component", "options", "progress")

    def __init__(self, component: Component, options: RunOptions) -> None:
        self.component = component
        self.options = options
        self.progress: Progress | None = None

    def run(self) -> Outcome:
        """Run it in this process. KeyboardInterrupt and SystemExit are recorded, then raised."""

        if self.progress is not None:
            self.progress.clear()  # the run's own output starts on a clean line
        from ..runs.dispatch import run_component  # the run machinery loads at the first run

        outcome = run_component(self.component, self.options)
        if outcome.exception is not None and not isinstance(outcome.exception, Exception):
            raise outcome.exception
        return outcome

    def payload(self) -> dict[str, Any]:
        """What another process needs to reload and run it (plain, picklable data)."""
        module, qualname = class_reference(type(self.component))
        return {
            "storage": self.component.storage.url,
            "id": self.component.id,
            "record": self.component.record,  # spares the worker reading and checking it again
            "module": module,
            "class": qualname,
            "options": self.options,
            "sys_path": list(sys.path),
            "cwd": os.getcwd(),
            "environ": dict(os.environ),
        }


def run_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Reload the component of `payload` from storage and run it here; the outcome as a dict.

    This is what a worker process calls: `prepare_payload`, then `run_prepared`.
    """
    prepare_payload(payload)
    return run_prepared(payload)


def prepare_payload(payload: dict[str, Any]) -> None:
    """Take the launcher's ``sys.path``, working directory and environment (so the run sees
    what it would see in the launcher), and import the component's class."""

    if sys.path != payload["sys_path"]:
        sys.path[:] = payload["sys_path"]
    if os.getcwd() != payload["cwd"]:
        os.chdir(payload["cwd"])
    if os.environ != payload["environ"]:
        os.environ.clear()
        os.environ.update(payload["environ"])
    _importing_for_worker.append(payload["module"])
    try:
        resolve_class(f"{payload['module']}:{payload['class']}", Component)
    finally:
        _importing_for_worker.pop()


def run_prepared(payload: dict[str, Any]) -> dict[str, Any]:
    """Reload the component of a prepared `payload` and run it; the outcome as a dict."""

    record = payload.get("record")
    component: Interface
    if record is not None and record.get("id") == payload["id"]:
        component = load_record(Component, record, make_storage(payload["storage"]))
    else:
        component = get.by_id(payload["id"], storage=payload["storage"])
    if not isinstance(component, Component):
        raise TypeError(f"{component!r} is a {component.kind}, not a Component")
    from ..runs.dispatch import run_component  # (see Job.run)

    return run_component(component, payload["options"]).to_dict()


class Execution(Interface):
    """How components run. Subclasses implement `run`; use one as a context manager to
    launch many components together.

    Example:
        >>> with get("retain.execution.pool", {"processes": 4}):
        ...     for n in (100, 1000, 10000):
        ...         get(EstimatePi, {"samples": n}).launch()   # queued; dispatched on exit

    Class attributes:
        supports_unimportable_classes: whether it can run classes that cannot be imported
            by name (defined in a notebook or a function): True when it runs them in this
            process.
        runs_elsewhere: whether components run in processes other than the launching one
            (a pool, a cluster, a batch system).
        supports_job_states: whether it submits to a batch system whose jobs `job_states`
            reports (then `retain.status` shows ``queued`` components and their jobs).
    """

    kind: ClassVar[str] = "Execution"
    supports_unimportable_classes: ClassVar[bool] = True
    runs_elsewhere: ClassVar[bool] = False
    supports_job_states: ClassVar[bool] = False

    _retain_tokens: list[Token[Batch | None]]

    @property
    def concurrency(self) -> int:
        """How many components it runs at once (for the progress line)."""
        return 1

    @property
    def echo(self) -> bool:
        """Whether a run's output also goes to this process's terminal (besides its log)."""
        return bool(self.config.get("echo", False))

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        """Run every job; yield each with its `Outcome` as it ends, in any order.

        The one method a backend implements. A job runs in this process with ``job.run()``;
        in another process, ship ``job.payload()`` (plain data) and call `run_payload` there,
        then ``Outcome.from_dict`` here. A failure of a component is an outcome, not an
        exception: only a failure of the backend itself should raise. A batch system's backend
        yields ``submitted`` outcomes and returns (`on_after_dispatch` is then not called).
        """
        raise NotImplementedError(f"{type(self).__qualname__} must implement run(jobs)")

    @classmethod
    def job_states(cls, jobs: list[str]) -> dict[str, dict[str, Any]]:
        """The scheduler's view of jobs this backend submitted, by the job ids it recorded in
        the components' submission logs; only for backends with `supports_job_states`.

        Returns, for each job the scheduler still knows: ``state`` (its word: ``PENDING``,
        ``RUNNING``, ``TIMEOUT``...), ``active`` (queued or running), ``pending`` (not started),
        ``reason`` and ``start`` (seconds since the epoch, or None). Unknown jobs are left out.
        """
        return {}

    # -- queueing ------------------------------------------------------------------------

    def __enter__(self) -> Execution:
        if "_retain_tokens" not in self.__dict__:
            self._retain_tokens = []
        self._retain_tokens.append(batch.set(Batch(self)))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        current: Batch | None = batch.get()
        batch.reset(self._retain_tokens.pop())
        if kind is None and current is not None and current.items:
            by_wait: dict[bool | float, list[Component]] = {}
            for component, wait in current.items.values():
                by_wait.setdefault(wait, []).append(component)
            for wait, components in by_wait.items():
                self.dispatch(components, wait=wait)

    # -- dispatch ------------------------------------------------------------------------

    def dispatch(self, components: Iterable[Component], *, wait: bool | float = True) -> list[Outcome]:
        """Run the components that are not finished; their outcomes, in the given order
        (each identity once).

        Raises:
            LaunchError: some failed (the others ran); ``.failures`` lists them.
            NotImportableError: this execution needs importable classes and one is not
                (raised before anything runs).
        """
        outcomes = self._dispatch(list(components), wait)
        failures = [outcome for outcome in outcomes if outcome.failed]
        if failures:
            raise LaunchError(failure_message(failures, outcomes), failures)
        return outcomes

    def describe(self) -> dict[str, Any]:
        """What runs record about the execution that made them."""
        module, qualname = class_reference(type(self))
        return {"module": module, "class": qualname, "config": self._retain_resolve().json}

    def _dispatch(self, components: list[Component], wait: bool | float) -> list[Outcome]:

        if _importing_for_worker:
            raise LaunchError(
                f"module {_importing_for_worker[-1]!r} launches components when it is imported, "
                "and a worker process imports it to reload a component class (which would "
                "launch them again). Put the code that launches under "
                "`if __name__ == '__main__':`"
            )
        bootstrap = sys.modules.get("multiprocessing.process")
        if bootstrap is not None and getattr(bootstrap.current_process(), "_inheriting", False):
            main = sys.modules.get("__mp_main__") or sys.modules.get("__main__")
            raise LaunchError(
                "components are being launched while a new process imports the main script "
                f"({getattr(main, '__file__', '?')!r}); multiprocessing (which the process pool "
                "uses) imports it again in every process, so the script must launch only under "
                "`if __name__ == '__main__':`"
            )
        unique: dict[str, Component] = {}
        checked: set[type[Component]] = set()
        for component in components:
            if type(component) not in checked:
                check_runnable(type(component))
                checked.add(type(component))
            component.commit()
            unique.setdefault(component.id, component)
        if not self.supports_unimportable_classes:
            check_importable({type(c) for c in unique.values()}, self)
        from ..runs.dispatch import Outcome, RunOptions, describe_error  # (see Job.run)

        options = RunOptions(wait=wait, echo=self.echo, execution=self.describe())
        outcomes: dict[str, Outcome] = {}
        jobs: list[Job] = []
        # Which are finished, in one bulk check (a relaunched grid is mostly finished cells).
        finished = finished_among(unique.items())
        for id, component in unique.items():
            if id in finished:
                outcomes[id] = Outcome(id, "cached")
                outcomes[id].component = component
                continue
            try:
                component.on_before_dispatch()
            except Exception as exc:
                outcomes[id] = Outcome(id, "failed", None, describe_error(exc, hook="on_before_dispatch"), exc)
                outcomes[id].component = component
                continue
            jobs.append(Job(component, options))
        from ._progress import Progress  # at the first dispatch: `import retain` stays cheap

        progress = Progress(len(jobs), self.concurrency)
        for job in jobs:
            job.progress = progress if progress.enabled else None
        try:
            for job, outcome in self.run(jobs):
                outcome.component = job.component
                outcomes[job.component.id] = outcome
                progress.update(outcome.failed)
                if not outcome.ended:  # handed to a batch system: the run has not happened yet
                    continue
                try:
                    job.component.on_after_dispatch()
                except Exception as exc:
                    if not outcome.failed:
                        outcome.status = "failed"
                        outcome.exception = exc
                        outcome.error = describe_error(exc, hook="on_after_dispatch")
        finally:
            progress.close()
        return [outcomes[id] for id in unique if id in outcomes]


def launch_counts(outcomes: list[Outcome]) -> str:
    """What the other outcomes of a launch were, for a failure message: `` (2 ran, 1
    cached)``; nothing when all failed."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        if not outcome.failed:
            word = {"finished": "ran"}.get(outcome.status, outcome.status)
            counts[word] = counts.get(word, 0) + 1
    order = ["ran", "cached", "submitted", "dry_run"]
    parts = [f"{counts.pop(word)} {word.replace('_', ' ')}" for word in order if word in counts]
    parts += [f"{n} {word}" for word, n in sorted(counts.items())]
    return f" ({', '.join(parts)})" if parts else ""


def check_importable(classes: Iterable[type], execution: Execution) -> None:
    """Raise `NotImportableError` naming every class another process could not import."""

    problems = []
    for cls in sorted(classes, key=lambda c: c.__qualname__):
        module, qualname = class_reference(cls)
        if module == "__main__":
            problems.append(f"{qualname} is defined in __main__ (an interactive session or notebook)")
        elif "<locals>" in qualname:
            problems.append(f"{qualname} is defined inside a function")
        else:
            try:
                found = resolve_class(f"{module}:{qualname}", Component)
            except ModuleResolutionError as exc:
                problems.append(f"{module}:{qualname}: {exc}")
            else:
                if found is not cls:
                    problems.append(f"{module}:{qualname} names another class now (was it redefined?)")
    if problems:
        raise NotImportableError(
            f"{type(execution).__qualname__} runs each component in a fresh process that "
            "reloads its class by importing it, and these cannot be imported: "
            + "; ".join(problems)
            + ". Move the class into a module (a .py file on sys.path) and import it from there, "
            "or launch in this process (without the execution block)"
        )


def failure_message(failures: list[Outcome], outcomes: list[Outcome]) -> str:
    lines = [f"{len(failures)} of {len(outcomes)} component(s) failed{launch_counts(outcomes)}:"]
    for outcome in failures[:20]:
        error = outcome.error or {}
        what = repr(outcome.component) if outcome.component is not None else outcome.id
        lines.append(f"  {what}: {error.get('type', '?')}: {error.get('message', '')}")
        if outcome.component is not None:
            lines.append(f"    output: {outcome.component.local_directory('output.log')}")
    if len(failures) > 20:
        lines.append(f"  ... and {len(failures) - 20} more (see the LaunchError's .failures)")
    lines.append("Launch again to resume the failed ones; retain.status(...) shows every state.")
    return "\n".join(lines)
