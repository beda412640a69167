"""One run of one component, in the process that executes it: claim, capture, seed, call,
hooks, record. Every execution backend ends up here (in process, or in a worker)."""

from __future__ import annotations

import os
import sys
import time

from .. import _settings
from ..interface import running_here
from . import check_storage_runs
from .._timestamps import now_iso
from ..storage.layout import FAILURES_FILE, end_file
from .files import RunFiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..component import Component

__all__ = ["Outcome", "RunOptions", "describe_error", "run_component"]

class RunOptions:
    """How a run is made; recorded in its claim, never part of the component's identity.

    Plain data, so it crosses process boundaries.
    """

    __slots__ = ("wait", "heartbeat", "lease", "durable", "echo", "execution", "argv", "launcher", "packages")

    def __init__(
        self,
        *,
        wait: bool | float = True,
        echo: bool = True,
        execution: dict[str, Any] | None = None,
        heartbeat: float | None = None,
        lease: float | None = None,
        durable: bool | None = None,
    ) -> None:
        from .._host import host_facts, packages  # socket, platform: at a launch, not at import

        default_heartbeat, default_lease = _settings.heartbeat_lease()
        self.wait = wait
        self.echo = echo
        self.execution = execution
        self.heartbeat = default_heartbeat if heartbeat is None else heartbeat
        self.lease = default_lease if lease is None else lease
        self.durable = _settings.durable() if durable is None else durable
        self.argv = list(sys.argv)
        facts = host_facts()
        self.launcher = {"host": facts["host"], "pid": facts["pid"]}
        self.packages = packages()  # what the launcher imported: the code that matters

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, state[name])


class Outcome:
    """How one component's launch ended: ``status`` is ``"finished"`` (it ran now),
    ``"cached"`` (it was finished already, perhaps by a launcher this one waited for) or
    ``"failed"``; then ``error`` holds type, message, traceback and time. A batch system's
    execution (Slurm) hands components over and returns: ``"submitted"`` (``job`` names the
    scheduler's job), or ``"dry_run"`` (``job`` names the script it wrote, unsubmitted)."""

    __slots__ = ("id", "status", "run", "error", "exception", "component", "job")

    def __init__(
        self,
        id: str,
        status: str,
        run: int | None = None,
        error: dict[str, Any] | None = None,
        exception: BaseException | None = None,
    ) -> None:
        self.id = id
        self.status = status
        self.run = run
        self.error = error
        self.exception = exception  # in the process that ran it only; never pickled
        self.component: Component | None = None
        self.job: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def ended(self) -> bool:
        """Whether the run is over (not merely handed to a batch system)."""
        return self.status not in ("submitted", "dry_run")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "run": self.run, "error": self.error, "job": self.job}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        outcome = cls(data["id"], data["status"], data.get("run"), data.get("error"))
        outcome.job = data.get("job")
        return outcome

    def __repr__(self) -> str:
        what = f"{self.component!r}" if self.component is not None else self.id[:6]
        extra = f": {self.error['type']}: {self.error['message']}" if self.error else ""
        if self.job:
            extra += f" (job {self.job.get('id') or self.job.get('script')})"
        return f"<Outcome {what} {self.status}{extra}>"


def describe_error(exc: BaseException, **extra: Any) -> dict[str, Any]:
    """A failure as plain data: type, message, traceback, time (and `extra`)."""
    import traceback

    kind = type(exc)
    module = kind.__module__
    name = kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
    return {
        "type": name,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "time": now_iso(),
        **extra,
    }


_numpy: Any = None


def apply_seed(seed: int) -> None:
    """Seed `random`, and numpy's global generator when numpy is installed."""
    global _numpy
    import random

    random.seed(seed)
    if _numpy is None:
        try:
            import numpy
        except ImportError:
            _numpy = False
        else:
            _numpy = numpy
    if _numpy is not False:
        _numpy.random.seed(seed % 2**32)


def run_component(component: Component, options: RunOptions) -> Outcome:
    """Run `component` here, exactly once across every launcher sharing its storage.

    Returns ``cached`` when it is finished (now, or by the launcher it waited for).

    Raises:
        AlreadyRunningError: it runs elsewhere and `options.wait` does not allow waiting.
    """
    from .claims import FailedElsewhere, acquire  # claims load threads: not at import

    check_storage_runs(component.storage)
    files = RunFiles(component.storage, component.id)
    record = {
        "component": component.id,
        "argv": options.argv,
        "cwd": os.getcwd(),
        "launcher": options.launcher,
        "execution": options.execution,
        "packages": options.packages,
    }
    try:
        claim = acquire(
            files, repr(component), record, wait=options.wait, heartbeat=options.heartbeat,
            lease=options.lease, durable=options.durable,
        )
    except FailedElsewhere as failed:
        return Outcome(component.id, "failed", failed.error.get("run"), failed.error)
    if claim is None:
        return Outcome(component.id, "cached")
    run, durable = claim.run, options.durable
    files.prepare_run()
    error: dict[str, Any] | None = None
    exception: BaseException | None = None
    started = time.monotonic()
    from .capture import Capture  # at the first run: `import retain` stays cheap

    capture = Capture(
        files.output_log,
        f"----- retain: run {run} of {component!r} ({component.nickname}) on "
        f"{claim.data['host']} pid {os.getpid()}, {claim.data['started']} -----\n",
        options.echo,
    )
    trailer = ""
    running_here[component.id] = running_here.get(component.id, 0) + 1
    try:
        with capture:
            try:
                apply_seed(component.seed)
                component()
                component.on_success()
            except BaseException as exc:
                exception = exc
                error = describe_error(exc, run=run)
                capture.write(error["traceback"])
                try:
                    component.on_failure(exc)
                except Exception as hook_exc:
                    capture.write(f"retain: on_failure raised too:\n{describe_error(hook_exc)['traceback']}")
            try:
                component.on_finish()
            except Exception as exc:
                if error is None:
                    exception, error = exc, describe_error(exc, run=run)
                    capture.write(error["traceback"])
            _end_metrics(files.directory, component, capture)
        seconds = round(time.monotonic() - started, 6)
        if error is None:
            trailer = f"----- retain: run {run} finished after {seconds:.3f} s -----\n"
            end = {"run": run, "status": "finished", "time": now_iso(), "seconds": seconds}
            # Taken over while it ran (its heartbeat lapsed): the newer run owns the outcome.
            if not claim.check_superseded() and files.create(end_file(run), end, durable):
                files.mark_finished(run, durable)
            else:
                files.event("finished_superseded", run, durable, seconds=seconds)
        else:
            trailer = f"----- retain: run {run} failed after {seconds:.3f} s: {error['type']} -----\n"
            facts = claim.data
            files.append(FAILURES_FILE, {**error, "host": facts["host"], "pid": facts["pid"]}, durable)
            files.create(
                end_file(run),
                {"run": run, "status": "failed", "time": error["time"], "seconds": seconds,
                 "error": {"type": error["type"], "message": error["message"]}},
                durable,
            )
    finally:
        _end_metrics(files.directory, component, None)
        if running_here[component.id] == 1:
            del running_here[component.id]
        else:
            running_here[component.id] -= 1
        capture.close(trailer)
        claim.release()
        try:
            files.sync_output()
        except Exception as exc:  # the run's outcome stands; only its log is behind
            print(f"retain: could not store the output of run {run} of {component!r}: {exc}", file=sys.stderr)
    if error is not None:
        return Outcome(component.id, "failed", run, error, exception)
    return Outcome(component.id, "finished", run)


def _end_metrics(directory: str, component: Component, capture: Any) -> None:
    """Write the run's buffered metrics; a failure to is reported, never the run's outcome."""
    metrics = sys.modules.get("retain.runs.metrics")
    if metrics is None:
        return  # nothing was logged in this process (a run that logs none loads no flusher)
    try:
        metrics.close_run(directory)
    except Exception as exc:
        message = f"retain: could not write the metrics of {component!r}: {exc}\n"
        if capture is not None:
            capture.write(message)
        else:
            print(message, end="", file=sys.stderr)
