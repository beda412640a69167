"""Process pool: components run ``processes`` at a time, each in a process of the pool's own.

By default (``fresh_process: False``) the pool keeps ``processes`` helper processes (the
`_forker` helper that Dask workers use too, started once and kept for the later dispatches of
the launcher), and each runs its components one after the other: a run costs about a
millisecond. `concurrent.futures.ThreadPoolExecutor` does the scheduling, a thread per
process waiting for its answers. A component that ends its process (killed, out of memory, a
segfault) fails alone; the next one gets a new process. A helper started before the
component's module file last changed is replaced, so an edited component runs its new code.

With ``fresh_process: True`` each component runs in a fresh process instead, which isolates
runs (memory, global state, a crash) for several milliseconds each: starting an interpreter
costs ~50 ms, and even a `multiprocessing` process forked from a forkserver pays ~10 ms of
bootstrapping (it runs the main script again, among others). So that pool is a
`concurrent.futures.ProcessPoolExecutor` of ``processes`` long-lived, single-threaded workers
(started from a forkserver that has imported retain and numpy), and each worker *forks* one
child per component and waits for it: a clean copy of a process that has only imported the
components' modules, for about a millisecond. The executor does all the scheduling. A child
that dies (killed, out of memory, a segfault) fails only its own component; the workers, and
so the executor, carry on. A worker that dies breaks the executor, which stops them all; their
runs outlive them and are waited for, and what had not started runs in a new executor.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from ._helper import Helper
from .base import Execution, prepare_payload, run_prepared
from .._fs import write_all
from .._host import host_facts
from .._timestamps import now_iso, parse_iso
from ..runs.dispatch import Outcome, apply_seed, describe_error
from ..runs.status import component_state
from ..storage.layout import OUTPUT_LOG
from ..codecs import _ensure_builtins
from ..storage import make_storage
from .._errors import ConfigError, LaunchError
from ..runs.files import RunFiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.context import BaseContext
    from typing import Any, ClassVar

    from .base import Job

__all__ = ["PRELOAD", "PoolExecution", "end_worker", "fork_and_run", "init_worker"]

#: Imported by the forkserver, so that a new worker starts with them.
PRELOAD = (
    "retain",
    "retain.runs.capture",
    "retain.runs.claims",
    "retain._get",
    "retain.runs.dispatch",
    "retain.runs.files",
    "retain.runs.status",
    "retain._words",
    "retain.component",
    "retain.execution.pool",
    "concurrent.futures",
    "datetime",
    "json",
    "pickle",
    "platform",
    "random",
    "runpy",
    "pkgutil",
    "select",
    "socket",
    "threading",
    "traceback",
)


class PoolExecution(Execution):
    """Runs components in processes of its own, ``processes`` at a time.

    Component classes must be importable by name (the process reloads the component from
    storage by id); a class defined in a notebook or inside a function is refused before
    anything runs. A failing component does not stop the others; the dispatch then raises one
    `LaunchError` listing every failure. A script whose components it runs is imported by the
    pool's processes: it must launch under ``if __name__ == '__main__':``.

    Config:
        processes: how many run at once (default: the number of CPUs).
        start_method: how the workers start: ``"forkserver"`` (default where available) or
            ``"spawn"``. Each component's process is forked from a worker in both cases.
        preload: more modules for the workers to import once (heavy libraries).
        echo: also copy each run's output to this process's terminal (default: only to the
            component's ``output.log``).
        fresh_process: False (default): each of ``processes`` processes, kept from one
            dispatch to the next, runs its components one after the other (global state and
            memory carry over from one to the next, as in Dask's default and in
            `multiprocessing.Pool`), for about a millisecond per component. True: each
            component in a fresh process forked for it (a leak or global state stays with its
            component), for several milliseconds more each.
    """

    Config: ClassVar[Any] = {
        "processes": None, "start_method": None, "preload": [], "echo": False, "fresh_process": False,
    }
    supports_unimportable_classes: ClassVar[bool] = False
    runs_elsewhere: ClassVar[bool] = True

    @property
    def concurrency(self) -> int:
        processes = self.config.processes
        if processes is None:
            return os.cpu_count() or 1
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ConfigError(f"processes must be a positive integer or None; got {processes!r}")
        return processes

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        if not jobs:
            return
        if not hasattr(os, "fork"):
            raise LaunchError(
                "PoolExecution forks a fresh process per component, which this platform cannot "
                "(no os.fork); launch in process, or use an execution for your cluster"
            )
        preload = [str(name) for name in self.config.preload]
        if not self.config.fresh_process:
            yield from self._run_helpers(jobs, preload)
            return
        context = self._context(jobs)
        pending = list(jobs)
        while pending:
            # A worker that dies (killed from outside, out of memory) breaks the executor, which
            # then stops every worker and fails every future. The runs those workers started
            # outlive them (they are the workers' children): wait for each to end and report
            # how it did. The components that had not started run in a new pool, as long as
            # each pool gets something done (workers that die on start would loop forever).
            since = time.time()
            broken: list[Job] = []
            progressed = False
            for job, outcome in self._run_pool(pending, context, preload, broken):
                progressed = True
                yield job, outcome
            started = [job for job in broken if _started_since(job, since)]
            pending = [job for job in broken if job not in started]
            for job in started:
                yield job, _wait_for_orphan(job)
            if pending and not (progressed or started):
                for job in pending:
                    yield job, _broken_outcome(job)
                return

    def _run_helpers(self, jobs: list[Job], preload: list[str]) -> Iterator[tuple[Job, Outcome]]:
        """`fresh_process: False`: ``processes`` helper processes (`_forker --in-process`, as
        Dask's workers keep) run the components one after the other; a thread per process
        waits for its helper's answers (a `ThreadPoolExecutor` does the scheduling). Helpers
        outlive the dispatch for the next ones of this process (see `_helper`)."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        modules = [*PRELOAD, *preload]
        busy: set[Helper] = set()

        def run(job: Job) -> dict[str, Any]:
            helper = _helper(modules, job)
            with _helpers_lock:
                busy.add(helper)
            try:
                return helper.run(job.payload())
            finally:
                with _helpers_lock:
                    busy.discard(helper)
                    if helper.alive:  # a run that ended its process took its helper with it
                        _helpers.setdefault(tuple(modules), []).append(helper)

        executor = ThreadPoolExecutor(min(self.concurrency, len(jobs)))
        interrupted = True
        try:
            futures = {executor.submit(run, job): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = Outcome.from_dict(future.result())
                except Exception as exc:  # the helper could not be started or spoken to
                    outcome = Outcome(job.component.id, "failed", None, describe_error(exc), exc)
                yield job, outcome
            interrupted = False
        finally:
            executor.shutdown(wait=not interrupted, cancel_futures=True)
            if interrupted:
                # Ctrl-C: start nothing more, and end the runs in progress with their helpers
                # (their claims are then dead: launching again resumes them).
                with _helpers_lock:
                    running = list(busy)
                for helper in running:
                    helper.close()
                close_helpers()
                executor.shutdown(wait=True)

    def _run_pool(
        self, jobs: list[Job], context: BaseContext, preload: list[str], broken: list[Job]
    ) -> Iterator[tuple[Job, Outcome]]:
        """Run `jobs` in one executor; those it failed because it broke go to `broken`."""
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        pool = ProcessPoolExecutor(
            min(self.concurrency, len(jobs)), mp_context=context, initializer=init_worker,
            initargs=(preload,),
        )
        futures = {pool.submit(fork_and_run, job.payload()): job for job in jobs}
        try:
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = Outcome.from_dict(future.result())
                except BrokenProcessPool:
                    broken.append(job)
                    continue
                except Exception as exc:  # the worker itself failed (it should not)
                    outcome = Outcome(job.component.id, "failed", None, describe_error(exc), exc)
                yield job, outcome
        finally:
            # Normally everything ended; when interrupted (Ctrl-C), start nothing more and let
            # the running components end (a terminal's Ctrl-C interrupts them too: they record
            # it as their failure).
            pool.shutdown(wait=True, cancel_futures=True)

    def _context(self, jobs: list[Job]) -> BaseContext:
        import multiprocessing

        method = self.config.start_method
        if method is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            # Takes effect when the forkserver starts (the first pool of this process).
            context.set_forkserver_preload(self._preload())
        return context  # type: ignore[no-any-return]

    def _preload(self) -> list[str]:
        from importlib.util import find_spec

        modules = set(PRELOAD)
        modules.update(str(name) for name in self.config.preload)
        if "numpy" in sys.modules or find_spec("numpy") is not None:
            modules.update(("numpy", "numpy.random"))  # every run seeds numpy: import it once
        # Each worker runs the main script again (multiprocessing does, so scripts guard their
        # launching code with `if __name__ == '__main__':`); its standard-library imports are
        # cheap to preload and were imported here already.
        stdlib = sys.stdlib_module_names
        modules.update(
            name for name, module in list(sys.modules.items())
            if name.partition(".")[0] in stdlib and not name.startswith(("_", "idlelib", "tkinter"))
            and getattr(module, "__spec__", None) is not None
        )
        return sorted(modules)


# -- in the launcher, after a worker died --------------------------------------------------


def _started_since(job: Job, since: float) -> bool:
    """Whether this process's pool started a run of `job` at `since` (epoch seconds) or later."""
    files = RunFiles(job.component.storage, job.component.id)
    latest = files.latest_run()
    claim = files.claim(latest) if latest else None
    if claim is None:
        return False
    launcher = claim.get("launcher") or {}
    facts = host_facts()
    started = claim.get("started")
    return (
        launcher.get("pid") == facts["pid"] and launcher.get("host") == facts["host"]
        and isinstance(started, str) and parse_iso(started) >= since - 1e-3
    )


def _wait_for_orphan(job: Job) -> Outcome:
    """The outcome of a run whose worker died: wait until its process (the worker's child,
    which outlives it) ends, then read how the run ended from its files."""
    component = job.component
    files = RunFiles(component.storage, component.id)
    run = files.latest_run()
    delay = 0.02
    while True:
        state, error = component_state(component)
        if state != "running":
            break
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    if state == "finished":
        return Outcome(component.id, "finished", run)
    if state == "failed" and error is not None:
        return Outcome(component.id, "failed", run, error)
    reason = (error or {}).get("message", f"run {run} ended {state}")
    return Outcome(component.id, "failed", run, {
        "type": "ProcessDied",
        "message": f"its pool worker process died, and its run with it ({reason}; out of memory?); "
                   f"see {component.local_directory(OUTPUT_LOG)}",
        "traceback": "",
        "time": now_iso(),
        "run": run,
    })


def _broken_outcome(job: Job) -> Outcome:
    return Outcome(job.component.id, "failed", None, {
        "type": "concurrent.futures.process.BrokenProcessPool",
        "message": "a worker process of the pool died before it ran anything (killed, or the "
                   "main script failed when the worker imported it; see the messages above)",
        "traceback": "",
        "time": now_iso(),
    })


# -- helpers kept for `fresh_process: False` --------------------------------------------------

#: Idle helper processes by the modules they preloaded, kept for the next dispatch: starting
#: one (a new interpreter importing retain) costs ~0.2 s, more than a hundred runs in it.
_helpers: dict[tuple[str, ...], list[Helper]] = {}
_helpers_lock = threading.Lock()
_helpers_closed_at_exit = False


def _helper(modules: list[str], job: Job) -> Helper:
    """An idle helper that preloaded `modules`, or a new one. A helper started before the
    component's module file last changed is closed instead: it would run the code it
    imported then (edits of other modules are seen by fresh processes only)."""
    global _helpers_closed_at_exit
    source = getattr(sys.modules.get(type(job.component).__module__), "__file__", None)
    try:
        changed = os.stat(source).st_mtime if source else 0.0
    except OSError:
        changed = 0.0
    with _helpers_lock:
        idle = _helpers.setdefault(tuple(modules), [])
        while idle:
            helper = idle.pop()
            if helper.alive and helper.started > changed:
                return helper
            helper.close()
        if not _helpers_closed_at_exit:
            import atexit

            atexit.register(close_helpers)
            _helpers_closed_at_exit = True
    return Helper(modules, fresh_process=False)


def close_helpers() -> None:
    """End the idle helper processes of `fresh_process: False` (done at exit)."""
    with _helpers_lock:
        helpers = [helper for idle in _helpers.values() for helper in idle]
        _helpers.clear()
    for helper in helpers:
        helper.close()


# -- in the workers ------------------------------------------------------------------------


def init_worker(preload: list[str]) -> None:
    import importlib
    import signal

    # Ctrl-C reaches the components (the children), which record it; the worker keeps going
    # so that it can report how they ended.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    # Compute here, once, what every run would otherwise compute again in its forked child
    # (each first use writes to memory the child shares with the worker, copying pages).
    from .. import _words  # noqa: F401  (imported by every run, lazily)
    from ..runs import capture, claims, files  # noqa: F401  (as _words)

    _ensure_builtins()  # most runs save a file

    host_facts()
    parse_iso(now_iso())
    apply_seed(0)
    from multiprocessing.util import Finalize

    Finalize(None, end_worker, exitpriority=10)


def end_worker() -> None:
    """Let the spare child go and reap every child (nobody else may: in a container, the
    process that adopts orphans does not always reap them)."""
    global _spare
    if _spare is not None:
        pid, command, results = _spare
        _spare = None
        os.close(command)  # the spare reads the end of the pipe and exits
        os.close(results)
        _exited.append(pid)
    _reap(block=True)


class OwnerGone(Exception):
    """The process that asked for a run went away while it ran (see `fork_and_run`)."""


def fork_and_run(payload: dict[str, Any], watch: int | None = None) -> dict[str, Any]:
    """In a worker: run the component in a fresh child (a spare forked ahead of time, so the
    fork is not on the component's way), fork the next spare, and return the outcome.

    `watch`: a descriptor that becomes readable (end of file) when the owner of this worker
    dies; the child is then killed with it (raises `OwnerGone`), as a pool's child dies with
    its pool. Its claim is then dead, so the component can be resumed elsewhere at once.
    """
    import pickle

    global _spare, _prepared
    try:
        prepare_payload(payload)  # imports the class here, once per worker: spares inherit it
    except BaseException as exc:
        return {"id": payload["id"], "status": "failed", "run": None, "error": describe_error(exc)}
    _prepared = _context_of(payload)  # what every spare forked from now on inherits
    blob = pickle.dumps(payload)
    while True:
        spare, _spare = _spare or _fork_spare(), None
        pid, command, results = spare
        try:
            write_all(command, blob)
            break
        except OSError:  # the spare died while it waited (killed): fork another
            os.close(command)
            os.close(results)
            os.waitpid(pid, 0)
    os.close(command)  # the end of the payload: the child starts
    _spare = _fork_spare()  # while the child runs
    chunks = []
    try:
        while True:
            if watch is not None:
                ready = _wait_readable(results, watch)
                if ready == watch:
                    import signal

                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise OwnerGone(f"the owner of this worker went away; run of {payload['id']} killed")
            chunk = os.read(results, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(results)
    if chunks:
        try:
            result: dict[str, Any] = pickle.loads(b"".join(chunks))
        except Exception:
            pass
        else:
            _exited.append(pid)  # reaped later: its exit (freeing memory) takes a while
            _reap(block=len(_exited) > 8)
            return result
    _, status = os.waitpid(pid, 0)
    return {"id": payload["id"], "status": "failed", "run": None, "error": _died(status, payload)}


_spare: tuple[int, int, int] | None = None  # (pid, payload pipe, result pipe) of the next child
#: What the worker last prepared (`_context_of`): the state a spare forked since inherits.
_prepared: tuple[Any, ...] | None = None


def _context_of(payload: dict[str, Any]) -> tuple[Any, ...]:
    """What `prepare_payload` makes of a process: the class imported, `sys.path`, working
    directory and environment."""
    return (payload["module"], payload["class"], payload["cwd"], payload["sys_path"], payload["environ"])
_exited: list[int] = []  # children that reported and are exiting


def _fork_spare() -> tuple[int, int, int]:
    """Fork a child that waits for a payload, runs it, and writes back the outcome."""
    import gc

    command_read, command_write = os.pipe()
    result_read, result_write = os.pipe()
    gc.freeze()  # the child's collections then skip (and do not copy) the worker's objects
    pid = os.fork()
    if pid == 0:
        os.close(command_write)
        os.close(result_read)
        _child(command_read, result_write)  # never returns
    os.close(command_read)
    os.close(result_write)
    return pid, command_write, result_read


def _child(command: int, results: int) -> None:
    """A fresh process: read a payload, run it, report, and leave without running any of the
    worker's code (os._exit)."""
    import pickle

    code = 0
    try:
        chunks = []
        while chunk := os.read(command, 65536):
            chunks.append(chunk)
        os.close(command)
        if not chunks:  # the worker ended without work for this spare
            os._exit(0)
        import atexit
        import signal
        from multiprocessing import util

        signal.signal(signal.SIGINT, signal.default_int_handler)
        # Exit functions are the worker's, not this run's: the run's own ones (a logger that
        # flushes, a tracker that uploads) run before this process leaves.
        atexit._clear()
        getattr(util, "_finalizer_registry", {}).clear()
        payload = pickle.loads(b"".join(chunks))
        try:
            # Usually the worker prepared the same before it forked this child: checking it
            # again here compared the whole os.environ, first touches in a fresh fork (~0.4 ms).
            if _prepared is None or _context_of(payload) != _prepared:
                prepare_payload(payload)
            data = run_prepared(payload)
        except BaseException as exc:
            data = {"id": payload["id"], "status": "failed", "run": None, "error": describe_error(exc)}
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        write_all(results, pickle.dumps(data))
        os.close(results)  # the worker reads the outcome now, not after our exit
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _wait_readable(first: int, second: int) -> int:
    """Wait until `first` or `second` is readable; which one (`first` when both are)."""
    import select

    while True:
        try:
            ready, _, _ = select.select([first, second], [], [])
        except InterruptedError:
            continue
        return first if first in ready else second


def _reap(block: bool) -> None:
    for pid in list(_exited):
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _exited.remove(pid)


def _died(status: int, payload: dict[str, Any]) -> dict[str, Any]:
    import signal

    how = f"exit status {os.waitstatus_to_exitcode(status)}"
    if os.WIFSIGNALED(status):
        try:
            how = f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        except ValueError:
            how = f"killed by signal {os.WTERMSIG(status)}"
    hint = " (out of memory?)" if how.endswith("SIGKILL") else ""
    try:
        log = os.path.join(make_storage(payload["storage"]).local_directory(payload["id"]), OUTPUT_LOG)
    except Exception:
        log = os.path.join(payload["storage"], payload["id"], OUTPUT_LOG)
    return {
        "type": "ProcessDied",
        "message": f"its process ended without a result: {how}{hint}; see {log}",
        "traceback": "",
        "time": now_iso(),
    }
