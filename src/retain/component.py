"""Component: an Interface that runs. `launch()` executes `__call__` once, then is cached."""

from __future__ import annotations

import os

from . import _settings
from ._errors import ComponentDefinitionError, InterfaceNotFoundError, InUseError
from .index import _updates as _index_updates
from .interface import Interface
from .runs import check_storage_runs, launch_one
from .storage.layout import (
    EVENTS_FILE,
    FAILURES_FILE,
    FINISHED_FILE,
    JOURNAL_REMOVE,
    METRICS_FILE,
    METRICS_LAST_FILE,
    OUTPUT_LOG,
    RECORD_FILE,
    SUBMISSIONS_FILE,
    SUMMARY_FILE,
    claim_file,
    end_file,
    heartbeat_file,
)

TYPE_CHECKING = False  # typing is not imported at run time: `import retain` stays cheap
if TYPE_CHECKING:
    from .runs.status import ExecutionStatus
    from collections.abc import Mapping
    from typing import Any, ClassVar, TypeVar


    Self = TypeVar("Self", bound="Component")

__all__ = ["Component"]


class Component(Interface):
    """An Interface that runs: `launch()` commits it and executes `__call__` once.

    After success, `launch()` does nothing (`cached()` is true). After a failure, `launch()`
    runs it again in the same directory (a resume); the failure stays on record. Exactly one
    launcher runs it at a time, across processes and machines sharing the storage.

    Example:
        >>> class EstimatePi(Component):
        ...     Config = {"samples": 100}
        ...     def __call__(self):
        ...         inside = sum(random.random() ** 2 + random.random() ** 2 < 1
        ...                      for _ in range(self.config.samples))
        ...         self.save_file("result.json", {"pi": 4 * inside / self.config.samples})
        >>> get(EstimatePi, {"samples": 150}).launch().load_file("result.json")
        {'pi': 3.12}

    Hooks (override any; they do nothing by default), in this order:

    1. ``on_before_dispatch()``: in the launching process, after the commit, before the
       component is handed to its execution (not called when it is cached).
    2. ``__call__()``: in the process that runs it, after seeding.
    3. ``on_success()`` after ``__call__`` returned, or ``on_failure(exception)`` after
       ``__call__`` or ``on_success`` raised.
    4. ``on_finish()``: always, after 3. An exception in it fails a run that had succeeded.
    5. ``on_after_dispatch()``: in the launching process, once the run ended (whatever the
       outcome; also when another launcher ran it while this one waited).

    2 to 4 run inside the run: their output is captured in ``output.log``, and with a process
    pool they run in the component's fresh process, on an instance reloaded from storage.
    """

    kind: ClassVar[str] = "Component"
    _retain_reserved_files: ClassVar[tuple[str, ...]] = (*Interface._retain_reserved_files, OUTPUT_LOG)

    def __call__(self) -> Any:
        """The work. Override it; save results with `save_file`."""
        raise ComponentDefinitionError(
            f"{type(self).__qualname__} does not define __call__; a Component subclass must "
            "define `def __call__(self):` with the work that launch() runs"
        )

    # -- hooks ---------------------------------------------------------------------------

    def on_before_dispatch(self) -> None:
        """Called in the launching process before the component is handed to its execution."""

    def on_success(self) -> None:
        """Called in the running process after `__call__` returned."""

    def on_failure(self, exception: BaseException) -> None:
        """Called in the running process after `__call__` (or `on_success`) raised `exception`."""

    def on_finish(self) -> None:
        """Called in the running process after `on_success` or `on_failure`, always."""

    def on_after_dispatch(self) -> None:
        """Called in the launching process once the run ended, whatever its outcome."""

    # -- running -------------------------------------------------------------------------

    def launch(self: Self, *, wait: bool | float = True) -> Self:
        """Commit, then run `__call__` unless it is finished; returns self.

        Inside ``with execution:`` the component is queued, and runs when the block exits
        without an exception. Otherwise it runs now, in this process. A failure is recorded
        and re-raised; launching again resumes.

        Args:
            wait: when another process is running this component: True waits for it to end,
                False raises `AlreadyRunningError`, a number waits at most that many seconds.
                If the run it waited for fails, that failure is raised (`LaunchError`) rather
                than running it again; a later launch resumes.

        Raises:
            ConfigError, VersionError: the configuration is invalid (nothing is written).
            ComponentDefinitionError: the class does not define ``__call__``.
            AlreadyRunningError: it runs elsewhere and `wait` does not allow waiting.
            LaunchError: the run failed elsewhere (see `wait`).
            Exception: whatever ``__call__`` raised, when it ran here (recorded first).
        """
        check_runnable(type(self))
        check_storage_runs(self.storage)
        self.commit()
        if self.cached():
            return self
        launch_one(self, wait)
        return self

    def rerun(self: Self, *, wait: bool | float = True) -> Self:
        """Remove the run of this committed component, then launch it again, in the same
        identity (the same id, record and directory); returns self.

        What goes: its run files (claims, heartbeats, ends, events, failures, submissions,
        ``output.log``, metrics, summary) and every file it saved (its outputs: the run
        makes them again; files saved before its commit too). What stays: its record, and
        its inputs (other interfaces, untouched). The finished marker goes first, so a crash
        midway leaves a component that is not finished and resumes at its next launch.
        Inside ``with execution:`` the new run is queued, as `launch` does.

        Raises:
            InterfaceNotFoundError: it is not committed.
            InUseError: it is running (or queued in a batch system): never touched.
        """
        if not self.is_committed():
            raise InterfaceNotFoundError(f"{self!r} is not committed: nothing to run again; launch() runs it")
        state = self.execution.state()
        if state in ("running", "queued"):
            raise InUseError(
                f"{self!r} is {state}: a rerun would remove the files of a live run; wait for it "
                "to end (retain status), then run it again"
            )
        self._retain_clear_run()
        return self.launch(wait=wait)

    def _retain_clear_run(self) -> None:
        storage, id = self.storage, self.id
        record = self.record
        assert record is not None
        from .runs.files import RunFiles  # (see `cached`)

        latest = RunFiles(storage, id).latest_run()
        # Finished marker first (no longer finished), then the runs from the latest down (runs
        # stay numbered 1..k without gaps), each end before its claim (no end without its run).
        names = [FINISHED_FILE]
        for run in range(latest, 0, -1):
            names += [end_file(run), heartbeat_file(run), claim_file(run)]
        names += [SUBMISSIONS_FILE, EVENTS_FILE, FAILURES_FILE, METRICS_LAST_FILE, METRICS_FILE,
                  SUMMARY_FILE, OUTPUT_LOG]
        outputs = [name for name in storage.list_files(id) if name != RECORD_FILE and name not in names]
        # The index row loses its summary and metrics: journaled first (as a removal: the next
        # query drops the row and reads the record again), so a crash midway is repaired too.
        with _index_updates.journaled(storage, id, JOURNAL_REMOVE, _settings.durable()):
            for name in names + outputs:
                storage.delete_file(id, name)
        _index_updates.after_remove(storage, [id])
        _index_updates.after_publish(storage, record)

    def cached(self) -> bool:
        """Whether it is committed and finished: `launch()` would not run it again."""
        if not self.is_committed():
            return False
        storage = self.storage
        if storage.is_remote:
            from .runs.files import RunFiles  # the run machinery loads at the first launch

            return RunFiles(storage, self.id).is_finished()
        return os.path.exists(os.path.join(self.local_directory(), FINISHED_FILE))

    @property
    def execution(self) -> ExecutionStatus:
        """The state of its runs, read from its directory: started, active, finished, failed,
        output."""
        from .runs.status import ExecutionStatus  # (see `cached`)

        return ExecutionStatus(self)

    # -- metrics -------------------------------------------------------------------------

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Record metrics at a step: ``self.log_metrics({"loss": loss}, step=epoch)``.

        Read them back with `metrics()`; the last value of each is queryable through the index
        as ``metrics.<name>`` (``get.all(Train, where={"metrics.loss": lt(0.1)})``). Inside a
        run they are buffered and written at least every second and when the run ends;
        outside a run (a committed component), at once.

        Args:
            values: names (non-empty strings) -> numbers; ints and numpy scalars become floats,
                NaN and infinities are kept.
            step: an integer; omitted, each metric counts on from its greatest step so far
                (0 for the first), across resumed runs too.

        Raises:
            CodecError: a name is not a non-empty string, a value not a number, or `step` not
                an integer.
            RecordError: the component is not committed.
        """
        series = self.__dict__.get("_retain_metrics")
        if series is None or series.closed:
            from .runs.metrics import series_of  # loads threads: at the first metric, not import

            series = series_of(self)
        series.log(values, step)

    # -- identity-derived names ----------------------------------------------------------

    @property
    def seed(self) -> int:
        """The seed applied to `random` (and numpy) before `__call__`: the config's ``seed``
        when the Config declares one and it is not None, else derived from the id (so the
        same configuration always gets the same seed)."""
        config = self.config
        value = config.get("seed") if "seed" in config else None
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ComponentDefinitionError(
                    f"{self!r}: config 'seed' must be an integer or None, got {value!r}"
                )
            return value
        return int(self.id[:8], 16)

    @property
    def nickname(self) -> str:
        """A memorable name derived from the id (``brisk-otter``); not unique, unlike the id."""
        from ._words import nickname  # word lists load at the first nickname: `import retain` stays cheap

        return nickname(self.id)


def check_runnable(cls: type[Component]) -> None:
    """Raise `ComponentDefinitionError` if `cls` cannot run."""
    if cls.__call__ is Component.__call__:
        raise ComponentDefinitionError(
            f"{cls.__qualname__} does not define __call__; a Component subclass must define "
            "`def __call__(self):` with the work that launch() runs"
        )
