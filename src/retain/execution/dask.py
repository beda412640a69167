"""Dask execution: components run as tasks of a Dask cluster (``dask.distributed``).

``get("retain.execution.dask", {"scheduler": "tcp://10.0.0.5:8786"})`` submits to a running
cluster; without a scheduler, a `LocalCluster` of this machine is started (and kept for later
dispatches of the same configuration until the process exits).

Each task reloads its component from storage by id and launches it outside the worker: a Dask
worker is multi-threaded (it must not fork, and its threads share descriptors 1 and 2), so each
of its task threads keeps a single-threaded helper process (`_forker`) that runs its components
one after the other, as Dask itself runs tasks in a long-lived worker. With ``fresh_process:
True`` the helper forks a fresh child per component instead, as a process pool's worker does.
Claims make a task that Dask runs twice (after a worker was lost) harmless: the second waits for, takes over, or finds finished the first one's run. A worker
that dies kills the runs it holds (the helpers watch their pipe to it), so their claims are
dead and the rescheduled tasks resume them at once.

Needs ``pip install 'retain[dask]'`` (imported when a dispatch starts).
"""

from __future__ import annotations

import os
import threading

from .base import Execution
from ..runs.dispatch import Outcome, describe_error
from .._errors import ConfigError, ExecutionError
from ._helper import Helper
from .pool import PRELOAD

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, ClassVar

    from .base import Job

__all__ = ["DaskExecution"]

INSTALL_HINT = "pip install 'retain[dask]'"


def import_distributed() -> Any:
    """`distributed`, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"DaskExecution needs dask.distributed, which is not installed: {INSTALL_HINT}"
        ) from exc
    return distributed


class DaskExecution(Execution):
    """Runs each component as a task of a Dask cluster, in a helper process of a worker.

    Component classes must be importable by name on the workers (the task reloads the
    component from storage by id), and the storage must be reachable from them (a shared file
    system, or an object store). A failing component does not stop the others; the dispatch
    then raises one `LaunchError` listing every failure. With a `LocalCluster` (no
    ``scheduler``), scripts must launch under ``if __name__ == '__main__':``: its workers
    start as new Python processes that import the main script.

    Config:
        scheduler: the scheduler's address (``"tcp://host:8786"``); None starts a
            `LocalCluster` on this machine, bound to 127.0.0.1.
        workers: worker processes of the LocalCluster (default: the number of CPUs).
        threads_per_worker: components a LocalCluster worker runs at once (default 1).
        connect_timeout: seconds to reach the scheduler before giving up with an
            `ExecutionError` that names it.
        resources: Dask worker resources each component needs (``{"GPU": 1}``): tasks go
            only to workers started with them (``dask worker --resources GPU=2``).
        forward_environment: run components with this process's environment variables
            (like a process pool); False keeps each worker's own.
        fresh_process: run each component in a fresh process forked by the helper, as the
            process pool does: a crash, a leak or global state stays with its component, for a
            few milliseconds more per component. False (default) runs the components of each
            worker thread one after the other in its long-lived helper process (never in the
            worker itself), like Dask's own tasks; a component that kills its process still
            fails alone (the next one gets a new helper).
        preload: modules for the helper processes to import once (heavy libraries).
        dashboard: the address of the LocalCluster's dashboard (``"127.0.0.1:8787"``; it
            needs ``bokeh``); None: no dashboard.
        echo: copy each run's output to the worker's terminal too (default: only to the
            component's ``output.log``).
    """

    Config: ClassVar[Any] = {
        "scheduler": None,
        "workers": None,
        "threads_per_worker": 1,
        "connect_timeout": 10.0,
        "resources": {},
        "forward_environment": True,
        "fresh_process": False,
        "preload": [],
        "dashboard": None,
        "echo": False,
    }
    supports_unimportable_classes: ClassVar[bool] = False
    runs_elsewhere: ClassVar[bool] = True

    @property
    def concurrency(self) -> int:
        known = _concurrency.get(self._cluster_key())
        if known:
            return known
        if self.config.scheduler is None:
            return self._workers() * self._threads()
        return 1

    def _workers(self) -> int:
        return _positive("workers", self.config.workers, os.cpu_count() or 1)

    def _threads(self) -> int:
        return _positive("threads_per_worker", self.config.threads_per_worker, 1)

    def _cluster_key(self) -> tuple[Any, ...]:
        config = self.config
        if config.scheduler is not None:
            return ("scheduler", str(config.scheduler))
        return ("local", config.workers, config.threads_per_worker, config.dashboard)

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        if not jobs:
            return
        distributed = import_distributed()
        client = self._client(distributed)
        preload = self._preload()
        forward = bool(self.config.forward_environment)
        fresh = bool(self.config.fresh_process)
        resources = dict(self.config.resources.to_dict()) if self.config.resources else None
        token = os.urandom(4).hex()
        keys = [f"retain-{type(job.component).__name__}-{job.component.id[:12]}-{token}" for job in jobs]
        # One graph for the whole batch: a submit per component costs the scheduler a graph
        # update each, which competes with the runs for the CPU.
        submitted = client.map(
            _run_task, [job.payload() for job in jobs], preload=preload, forward_environment=forward,
            fresh_process=fresh, key=keys, pure=False, resources=resources, batch_size=None,
        )
        futures = dict(zip(submitted, jobs))
        try:
            # Results are fetched in batches of those done (one request per worker, not one
            # per component: on a small machine the round trips would cost more than the runs).
            for batch in distributed.as_completed(list(futures), loop=client.loop).batches():
                ok = [future for future in batch if future.status == "finished"]
                try:
                    results = client.gather(ok) if ok else []
                except Exception:  # a result was lost meanwhile: ask each one below
                    results = []
                by_future = dict(zip(ok, results)) if len(results) == len(ok) else {}
                for future in batch:
                    job = futures.pop(future)
                    if future in by_future:
                        outcome = Outcome.from_dict(by_future[future])
                    else:
                        outcome = _outcome_of(job, future)
                    yield job, outcome
        finally:
            if futures:  # interrupted: start nothing more
                client.cancel(list(futures))

    def _preload(self) -> list[str]:
        """What each helper imports once, so that the children it forks do not."""
        from importlib.util import find_spec

        modules = [*PRELOAD, "retain.execution._forker"]
        if find_spec("numpy") is not None:
            modules += ["numpy", "numpy.random"]  # every run seeds numpy: import it once
        return modules + [str(name) for name in self.config.preload]

    def _client(self, distributed: Any) -> Any:
        """A connected client for this configuration (one per process, kept for reuse)."""
        key = self._cluster_key()
        with _lock:
            entry = _clients.get(key)
            if entry is not None and entry[0].status == "running":
                return entry[0]
            if entry is not None:
                _close(entry)
            timeout = float(self.config.connect_timeout)
            cluster = None
            address = self.config.scheduler
            try:
                if address is None:
                    dashboard = self.config.dashboard
                    cluster = distributed.LocalCluster(
                        n_workers=self._workers(), threads_per_worker=self._threads(), processes=True,
                        host="127.0.0.1", silence_logs=40,
                        # Without a dashboard, the scheduler still serves HTTP (health
                        # checks): on any free port of loopback, not on 8787.
                        dashboard_address=str(dashboard) if dashboard else "127.0.0.1:0",
                        scheduler_kwargs={"dashboard": bool(dashboard)},
                    )
                    address = cluster.scheduler_address
                client = distributed.Client(address, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                if cluster is not None:
                    cluster.close()

                raise ExecutionError(
                    f"could not reach the Dask scheduler at {address} within {timeout:g} s "
                    f"({type(exc).__name__}: {exc}). Is it running (`dask scheduler`), and is the "
                    "address right? Set connect_timeout to wait longer"
                ) from exc
            _clients[key] = (client, cluster)
            try:
                _concurrency[key] = sum(client.nthreads().values()) or 1
            except Exception:
                pass
            if not _atexit_registered:
                _register_atexit()
            return client


def _outcome_of(job: Job, future: Any) -> Outcome:
    """The outcome of one task, or a failure when it has none: its workers were lost, it was
    cancelled."""
    try:
        result = future.result()
        if isinstance(result, dict):
            return Outcome.from_dict(result)
        exc: BaseException = RuntimeError(f"the Dask task returned {type(result).__name__}, not an outcome")
    except Exception as raised:  # the task's own exception, or Dask's (KilledWorker, cancelled)
        exc = raised
    error = describe_error(exc)
    if type(exc).__name__ == "KilledWorker":
        error["message"] += (
            " (Dask lost every worker this task ran on; the component can be launched again, it "
            "resumes)"
        )
    return Outcome(job.component.id, "failed", None, error, exc)


def _positive(name: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer or None; got {value!r}")
    return value


_lock = threading.Lock()
_clients: dict[tuple[Any, ...], tuple[Any, Any]] = {}  # key -> (client, LocalCluster or None)
_concurrency: dict[tuple[Any, ...], int] = {}
_atexit_registered = False


def _register_atexit() -> None:
    global _atexit_registered
    import atexit

    atexit.register(close_clusters)
    _atexit_registered = True


def _close(entry: tuple[Any, Any]) -> None:
    client, cluster = entry
    for thing in (client, cluster):
        if thing is not None:
            try:
                thing.close()
            except Exception:
                pass


def close_clusters() -> None:
    """Close the clients this process opened and the LocalClusters it started (also done at
    exit)."""
    with _lock:
        entries = list(_clients.values())
        _clients.clear()
        _concurrency.clear()
    for entry in entries:
        _close(entry)


# -- on the workers ---------------------------------------------------------------------------

_idle: dict[bool, list[Helper]] = {True: [], False: []}  # by fresh_process
_idle_lock = threading.Lock()


def _run_task(
    payload: dict[str, Any], preload: list[str], forward_environment: bool, fresh_process: bool = False
) -> dict[str, Any]:
    """A Dask task: run the component of `payload` in a helper process of this worker (in a
    fresh child of it, with `fresh_process`); its outcome as a dict."""
    if not forward_environment:
        payload = {**payload, "environ": dict(os.environ)}
    if not os.path.isdir(payload["cwd"]):  # another machine: run where the worker runs
        payload = {**payload, "cwd": os.getcwd()}
    idle = _idle[bool(fresh_process)]
    with _idle_lock:
        helper = idle.pop() if idle else None
    if helper is None or not helper.alive:
        helper = Helper(preload, fresh_process=bool(fresh_process))
    try:
        return helper.run(payload)
    finally:
        if helper.alive:
            with _idle_lock:
                idle.append(helper)
