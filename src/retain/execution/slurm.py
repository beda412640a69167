"""Slurm execution: components become batch jobs; the dispatch submits them and returns.

``get("retain.execution.slurm", {"partition": "gpu", "time": "4:00:00", "gpus": 1})``. Nothing
keeps running on the login node: each job's task simply launches its component
(``python -m retain.execution.slurm_task SPEC``), which reloads it from storage by id. Exactly
once claims make a duplicate job, or a requeued one, harmless: it waits for, takes over, or
finds finished the run of the other.

Files: each dispatch writes, in a new directory under ``directory`` (default
``<storage>/.retain/slurm/``), one batch script and one spec (JSON: storage, component ids and
classes, ``sys.path``, working directory, run options) per job or job array, and Slurm writes
the jobs' own output beside them (the components' output goes to their ``output.log``). Each
component's ``.retain.submissions.jsonl`` records the job that will run it, so that
`retain.status` can ask Slurm (``squeue``, then ``scontrol``, then ``sacct``) about it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from .base import Execution
from .._errors import ExecutionError, ConfigError
from ..runs.dispatch import Outcome
from ..runs.status import JobLookup, state_of
from ..storage.layout import SLURM_DIR, STORAGE_META_DIR, SUBMISSIONS_FILE
from ..modules import class_reference
from .._timestamps import now_iso
from ..runs.files import RunFiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, ClassVar

    from .base import Job
    from ..storage import Storage

__all__ = ["SlurmExecution"]

#: Job states in which a job will still run (or is running) its task.
PENDING_STATES = frozenset({
    "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "STOPPED", "RESV_DEL_HOLD",
    "SPECIAL_EXIT",
})
RUNNING_STATES = frozenset({"RUNNING", "CONFIGURING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING"})
#: The default of Slurm's MaxArraySize, used when ``scontrol show config`` cannot tell.
DEFAULT_MAX_ARRAY_SIZE = 1001
SPEC_FORMAT = "retain.slurm.spec/1"


class SlurmExecution(Execution):
    """Submits each component to Slurm as a batch job (many at once as job arrays) and returns.

    The dispatch returns once Slurm has accepted the jobs: outcomes are ``submitted``, with
    the job id in ``outcome.job``; components that are finished are skipped, and those whose
    latest job is still queued or running are not submitted again. Follow them with
    `retain.status` (``queued``, ``running``, ``finished``...; ``report.jobs`` has each job's
    Slurm state) and collect results with `get` when they are finished. Component classes
    must be importable by name on the compute nodes, and storage and Python reachable there
    (the task runs this process's interpreter, ``sys.path`` and working directory; Slurm
    passes this process's environment on). `on_after_dispatch` is not called.

    Requeueing: jobs are submitted with ``--requeue``, so a preempted job (or one whose node
    failed) runs again; with a ``time`` limit, Slurm signals the job ``requeue_grace`` seconds
    before it and the job requeues itself. The new run takes over the interrupted one (at
    once on the same node, else once its lease expired) and resumes the component.

    Config:
        partition, account, qos: where and as whom the jobs run (default: Slurm's defaults).
        time: the time limit of each component's job (``"4:00:00"``, ``"1-00:00:00"``, or
            minutes as a number).
        cpus: CPUs per component (``--cpus-per-task``).
        memory: memory per component (``"16G"``, or megabytes as a number).
        gpus: GPUs per component (``1``, or ``"a100:2"``).
        sbatch: more ``#SBATCH`` lines (``"--constraint=skylake"`` or a whole
            ``"#SBATCH ..."`` line).
        setup: shell lines run before the component (``"module load cuda"``).
        array: submit several components as job arrays (default); False: one job each.
        max_array_size: at most this many components per array (also never more than the
            cluster's ``MaxArraySize``, read from ``scontrol show config``).
        throttle: at most this many tasks of an array run at once (``--array=...%N``).
        requeue: submit with ``--requeue`` and requeue at the time limit (default True).
        requeue_grace: seconds before the time limit at which the job requeues itself.
        job_name: the jobs' name (default ``retain-<Class>``).
        directory: where scripts, specs and Slurm's own job output go (default
            ``<storage>/.retain/slurm``; required for a storage that is not a local path).
        python: the interpreter of the tasks (default: this one).
        dry_run: write the scripts and submit nothing (outcomes ``dry_run``, with the script
            in ``outcome.job``); submit one later with ``sbatch SCRIPT``.
        submit_retries: how many times to submit again when ``sbatch`` refuses (a busy
            controller, a submission limit), waiting ``retry_delay`` seconds, doubled each
            time (at most 60 s).
        command_timeout: seconds a Slurm command may take before it counts as failed.
    """

    Config: ClassVar[Any] = {
        "partition": None,
        "account": None,
        "qos": None,
        "time": None,
        "cpus": 1,
        "memory": None,
        "gpus": None,
        "sbatch": [],
        "setup": [],
        "array": True,
        "max_array_size": None,
        "throttle": None,
        "requeue": True,
        "requeue_grace": 120,
        "job_name": None,
        "directory": None,
        "python": None,
        "dry_run": False,
        "submit_retries": 4,
        "retry_delay": 2.0,
        "command_timeout": 60.0,
    }
    supports_unimportable_classes: ClassVar[bool] = False
    runs_elsewhere: ClassVar[bool] = True
    supports_job_states: ClassVar[bool] = True

    @property
    def concurrency(self) -> int:
        return 1

    # -- submitting ----------------------------------------------------------------------

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        dry_run = bool(self.config.dry_run)
        if jobs and not dry_run:
            _require("sbatch")
            jobs, queued = self._split_queued(jobs)
            yield from queued
        if not jobs:
            return
        folder = self._new_folder(jobs[0])
        submitted: list[str] = []
        for number, chunk in enumerate(self._chunks(jobs)):
            script = self._write(folder, number, chunk)
            if dry_run:
                for job in chunk:
                    outcome = Outcome(job.component.id, "dry_run")
                    outcome.job = {"script": script}
                    yield job, outcome
                continue
            try:
                job_id = self._submit(script)
            except ExecutionError as exc:
                if not submitted:
                    raise
                raise ExecutionError(
                    f"{exc}\n{len(submitted)} component(s) of this dispatch were submitted before "
                    f"(jobs {', '.join(sorted(set(submitted)))}); the {len(jobs) - len(submitted)} "
                    "others were not"
                ) from exc
            array = len(chunk) > 1
            # One time and one description for the whole array: it was submitted at once.
            module, qualname = class_reference(type(self))
            common = {"time": now_iso(), "execution": {"module": module, "class": qualname}, "script": script}
            for index, job in enumerate(chunk):
                task_id = f"{job_id}_{index}" if array else job_id
                log = os.path.join(folder, f"job-{number}-{job_id}_{index}.out" if array else f"job-{number}-{job_id}.out")
                RunFiles(job.component.storage, job.component.id).append(
                    SUBMISSIONS_FILE, {**common, "job": task_id, "log": log}, job.options.durable
                )
                outcome = Outcome(job.component.id, "submitted")
                outcome.job = {"id": task_id, "script": script, "log": log}
                submitted.append(job_id)
                yield job, outcome
        if dry_run:
            print(f"retain: dry run: wrote the scripts in {folder} (nothing submitted)", file=sys.stderr)

    def _split_queued(self, jobs: list[Job]) -> tuple[list[Job], list[tuple[Job, Outcome]]]:
        """(jobs to submit, outcomes of the components that a job of theirs will run already:
        queued, or running in an active job; they are not submitted again)."""
        # Which were ever submitted, in one bulk existence check: a new sweep's cells never
        # were, and reading a missing file costs more than asking whether it is there.
        by_storage: dict[Storage, list[str]] = {}
        for job in jobs:
            by_storage.setdefault(job.component.storage, []).append(job.component.id)
        ever = set()
        for storage, ids in by_storage.items():
            ever |= storage.ids_with_file(ids, SUBMISSIONS_FILE)
        submissions = {}
        for job in jobs:
            if job.component.id in ever:
                submission = RunFiles(job.component.storage, job.component.id).submission()
                if submission is not None:
                    submissions[job.component.id] = submission
        if not submissions:
            return jobs, []
        lookup = JobLookup()
        lookup.prefetch(submissions.values())
        todo, queued = [], []
        for job in jobs:
            submission = submissions.get(job.component.id)
            if submission is not None:
                state, _, found = state_of(job.component, lookup)
                if state == "running":
                    # A run is alive (the state of a running component asks no scheduler):
                    # another job would only wait for it, holding what it asked for.
                    found = lookup.state(submission) or {"id": submission.get("job")}
                if state == "running" or (found is not None and found.get("active") and state == "queued"):
                    assert found is not None
                    outcome = Outcome(job.component.id, "submitted")
                    outcome.job = {"id": found["id"], "state": found.get("state"), "already": True}
                    queued.append((job, outcome))
                    continue
            todo.append(job)
        return todo, queued

    def _chunks(self, jobs: list[Job]) -> list[list[Job]]:
        if not self.config.array or len(jobs) == 1:
            return [[job] for job in jobs]
        size = max_array_size(float(self.config.command_timeout))
        if self.config.max_array_size is not None:
            size = min(size, _positive_int("max_array_size", self.config.max_array_size))
        return [jobs[start:start + size] for start in range(0, len(jobs), size)]

    def _new_folder(self, job: Job) -> str:
        import datetime

        root = self.config.directory
        if root is None:
            store = job.component.storage
            local = None if store.is_remote else store.local_root()
            if local is None:
                raise ConfigError(
                    f"SlurmExecution needs a directory for its scripts and job logs that the "
                    f"compute nodes can read, and the storage {store.url} is not a local path: "
                    "set directory (a path on a shared file system)"
                )

            root = os.path.join(local, STORAGE_META_DIR, SLURM_DIR)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = os.path.join(os.path.abspath(os.path.expanduser(str(root))), f"{stamp}-{os.urandom(3).hex()}")
        os.makedirs(folder)
        return folder

    def _write(self, folder: str, number: int, chunk: list[Job]) -> str:
        """Write the spec and the batch script of one job (array); the script's path."""
        import json
        import shlex

        first = chunk[0]
        options = first.options.__getstate__()
        spec = {
            "format": SPEC_FORMAT,
            "storage": first.component.storage.url,
            "components": [
                dict(zip(("module", "class"), class_reference(type(job.component))), id=job.component.id)
                for job in chunk
            ],
            "options": options,
            "sys_path": list(sys.path),
            "cwd": os.getcwd(),
        }
        spec_path = os.path.join(folder, f"job-{number}.json")
        with open(spec_path, "w", encoding="utf-8") as handle:
            # Compact: an array's spec lists up to MaxArraySize components.
            json.dump(spec, handle, sort_keys=True, default=str, separators=(",", ":"))
        script_path = os.path.join(folder, f"job-{number}.sbatch")
        python = str(self.config.python or sys.executable)
        task = f"{shlex.quote(python)} -m retain.execution.slurm_task {shlex.quote(spec_path)}"
        with open(script_path, "w", encoding="utf-8") as handle:
            handle.write(self._script(folder, number, chunk, task))
        return script_path

    def _script(self, folder: str, number: int, chunk: list[Job], task: str) -> str:
        import shlex

        config = self.config
        classes = sorted({type(job.component).__name__ for job in chunk})
        name = config.job_name or (f"retain-{classes[0]}" if len(classes) == 1 else "retain")
        array = len(chunk) > 1
        output = os.path.join(folder, f"job-{number}-%A_%a.out" if array else f"job-{number}-%j.out")
        lines = [
            "#!/bin/bash",
            f"# Written by retain for {len(chunk)} component(s); submit with: sbatch {shlex.quote(os.path.join(folder, f'job-{number}.sbatch'))}",
            f"#SBATCH --job-name={_sbatch_value(name)}",
            f"#SBATCH --output={_sbatch_value(output)}",
            "#SBATCH --open-mode=append",
            f"#SBATCH --chdir={_sbatch_value(os.getcwd())}",
        ]
        if array:
            throttle = "" if config.throttle is None else f"%{_positive_int('throttle', config.throttle)}"
            lines.append(f"#SBATCH --array=0-{len(chunk) - 1}{throttle}")
        for option, key in (("partition", "partition"), ("account", "account"), ("qos", "qos")):
            if config[key] is not None:
                lines.append(f"#SBATCH --{option}={_sbatch_value(str(config[key]))}")
        if config.time is not None:
            lines.append(f"#SBATCH --time={_sbatch_value(_time(config.time))}")
        if config.cpus is not None:
            lines.append(f"#SBATCH --cpus-per-task={_positive_int('cpus', config.cpus)}")
        if config.memory is not None:
            memory = config.memory
            lines.append(f"#SBATCH --mem={_sbatch_value(str(memory if isinstance(memory, str) else int(memory)))}")
        if config.gpus is not None:
            lines.append(f"#SBATCH --gpus={_sbatch_value(str(config.gpus))}")
        requeue = bool(config.requeue)
        lines.append("#SBATCH --requeue" if requeue else "#SBATCH --no-requeue")
        if requeue and config.time is not None:
            grace = _positive_int("requeue_grace", config.requeue_grace)
            lines.append(f"#SBATCH --signal=B:USR1@{grace}")
        for extra in config.sbatch:
            extra = str(extra).strip()
            if "\n" in extra:
                raise ConfigError(f"sbatch: each entry is one line; got {extra!r}")
            lines.append(extra if extra.startswith("#SBATCH") else f"#SBATCH {extra}")
        lines.append("")
        lines += [str(line) for line in config.setup]
        lines += [
            "# Requeue this job shortly before its time limit (Slurm sends USR1, see --signal):",
            "# the next run takes over this one's claim and resumes the component.",
            "retain_requeue() {",
            '  echo "retain: time limit near: requeueing job $SLURM_JOB_ID" >&2',
            '  scontrol requeue "$SLURM_JOB_ID"',
            "}",
            "trap retain_requeue USR1" if requeue else "",
            f"{task} &",
            "retain_pid=$!",
            'wait "$retain_pid"; retain_status=$?',
            'while kill -0 "$retain_pid" 2>/dev/null; do wait "$retain_pid"; retain_status=$?; done',
            'exit "$retain_status"',
            "",
        ]
        return "\n".join(lines)

    def _submit(self, script: str) -> str:
        """``sbatch --parsable script``, again with backoff while it is refused; the job id."""
        retries = int(self.config.submit_retries)
        delay = float(self.config.retry_delay)
        refusals = []
        for attempt in range(retries + 1):
            code, out, err = _command(["sbatch", "--parsable", script], float(self.config.command_timeout))
            job_id = out.strip().split(";")[0]
            if code == 0 and job_id.isdigit():
                return job_id
            refusals.append((err or out).strip() or f"exit status {code}")
            if attempt < retries:
                time.sleep(min(delay * 2 ** attempt, 60.0))
        busy = ""
        if any("temporarily unable to accept job" in refusal for refusal in refusals):
            busy = (
                " The controller refuses new jobs: its MaxJobCount (`scontrol show config`) may be "
                "reached, where every task of an array counts and ended jobs count until MinJobAge; "
                "submit fewer components at once, or wait for jobs to end."
            )
        raise ExecutionError(
            f"sbatch refused {script} {len(refusals)} time(s) (retried with backoff): {refusals[-1]}.{busy} "
            "Check the execution's settings (partition, account, qos, time, memory, gpus, sbatch "
            "lines) against `sinfo` and `sacctmgr show assoc`; dry_run=True writes the scripts "
            "without submitting"
        )

    # -- asking Slurm ------------------------------------------------------------------------

    @classmethod
    def job_states(cls, jobs: list[str]) -> dict[str, dict[str, Any]]:
        """Slurm's view of `jobs` (``"123"``, or ``"123_4"`` for an array task): ``squeue``
        for queued and running jobs, then ``scontrol show job`` for those that ended recently,
        then ``sacct`` where accounting is enabled."""
        if not jobs or shutil.which("squeue") is None:
            return {}
        wanted = set(jobs)
        bases = sorted({job.split("_")[0] for job in jobs})
        found: dict[str, dict[str, Any]] = {}
        code, out, _ = _command(["squeue", "-h", "-r", "-j", ",".join(bases), "-o", "%i|%T|%r|%S"], 60.0)
        if code == 0:
            for line in out.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 4:
                    for job_id in _reported(parts[0], wanted - set(found)):
                        found[job_id] = _job_state(parts[1], parts[2], parts[3])
        missing = wanted - set(found)
        for base in sorted({job.split("_")[0] for job in missing})[:50]:
            code, out, _ = _command(["scontrol", "-o", "show", "job", base], 30.0)
            if code != 0:
                continue
            for line in out.splitlines():
                fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
                if "JobState" not in fields:
                    continue
                # The tasks of an array that have not started are one record, their ids a
                # range: ``ArrayJobId=89 ArrayTaskId=0-1`` (or ``1,3-5:2%2``).
                task = fields.get("ArrayTaskId")
                reported = f"{fields.get('ArrayJobId')}_[{task}]" if task else fields.get("JobId", "")
                for job_id in _reported(reported, missing - set(found)):
                    found[job_id] = _job_state(fields["JobState"], fields.get("Reason", ""), fields.get("StartTime", ""))
        missing = wanted - set(found)
        if missing and shutil.which("sacct") is not None:
            # Asked by array (``89``), not by task: sacct reports tasks that never started
            # as one range (``89_[0-1]``), which a task id does not select.
            code, out, _ = _command(
                ["sacct", "-n", "-P", "-X", "-j", ",".join(sorted({job.split("_")[0] for job in missing})),
                 "-o", "JobID,State,Reason,Start"], 60.0
            )
            if code == 0:
                for line in out.splitlines():
                    parts = line.strip().split("|")
                    if len(parts) == 4:
                        for job_id in _reported(parts[0], missing - set(found)):
                            found[job_id] = _job_state(parts[1].split()[0] if parts[1] else "", parts[2], parts[3])
        return found


# -- helpers ------------------------------------------------------------------------------


def _reported(reported: str, wanted: set[str]) -> list[str]:
    """The ids in `wanted` that a job id as Slurm reports it covers: itself (``89``, ``89_0``),
    or the tasks of an array range (``89_[0-3,7%2]``, the pending tasks of array 89)."""
    reported = reported.strip()
    if reported in wanted:
        return [reported]
    base, _, tasks = reported.partition("_")
    if not (tasks.startswith("[") and tasks.endswith("]")):
        return []
    spec = tasks[1:-1]
    out = []
    for job_id in wanted:
        job_base, _, task = job_id.partition("_")
        if job_base == base and task.isdigit() and _in_array(spec, int(task)):
            out.append(job_id)
    return sorted(out)


def _in_array(spec: str, task: int) -> bool:
    """Whether array task `task` is in Slurm's index list `spec` (``0-7``, ``1,3,5-9:2``,
    ``0-99%4``: ranges with an optional step, and a throttle that does not matter here)."""
    for part in spec.split("%", 1)[0].split(","):
        bounds, _, step_text = part.partition(":")
        first_text, _, last_text = bounds.partition("-")
        try:
            first = int(first_text)
            last = int(last_text) if last_text else first
            step = int(step_text) if step_text else 1
        except ValueError:
            continue  # not an index list Slurm writes: covers nothing
        if first <= task <= last and step > 0 and (task - first) % step == 0:
            return True
    return False


def _job_state(state: str, reason: str, start: str) -> dict[str, Any]:
    from datetime import datetime

    state = state.strip().split()[0].rstrip("+") if state.strip() else "UNKNOWN"
    started: float | None
    try:
        started = datetime.fromisoformat(start.strip()).timestamp()  # the controller's local time
    except ValueError:
        started = None
    active = state in PENDING_STATES or state in RUNNING_STATES
    return {
        "state": state,
        "active": active,
        "pending": state in PENDING_STATES,
        "reason": None if reason.strip() in ("", "None", "(null)") else reason.strip(),
        "start": started,
    }


def _command(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run a Slurm command: (exit status, stdout, stderr); a timeout or a missing program is
    a failure (status 124 or 127), not an exception."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        # What it said before (sbatch says why it waits: "Slurm temporarily unable to accept job").
        said = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        said = said.strip().splitlines()[-1] if said.strip() else ""
        return 124, "", f"{argv[0]} did not answer within {timeout:g} s" + (f" ({said})" if said else "")
    except OSError as exc:
        return 127, "", f"{argv[0]}: {exc.strerror}"
    return done.returncode, done.stdout, done.stderr


def _require(program: str) -> None:
    if shutil.which(program) is None:
        raise ExecutionError(
            f"{program} was not found on PATH: SlurmExecution submits with Slurm's commands, so "
            "launch from a machine where they work (a login node); dry_run=True writes the "
            "scripts without submitting"
        )


_max_array_size: int | None = None


def max_array_size(timeout: float = 60.0) -> int:
    """The cluster's ``MaxArraySize`` (from ``scontrol show config``; read once per process):
    array indexes must stay below it."""
    global _max_array_size
    if _max_array_size is None:
        size = DEFAULT_MAX_ARRAY_SIZE
        code, out, _ = _command(["scontrol", "show", "config"], timeout)
        if code == 0:
            for line in out.splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "MaxArraySize" and value.strip().isdigit():
                    size = int(value.strip())
        _max_array_size = max(1, size)
    return _max_array_size


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer; got {value!r}")
    return value


def _time(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"time must be a Slurm time limit ('4:00:00', '1-00:00:00') or minutes; got {value!r}")
    return value if isinstance(value, str) else str(max(1, int(value)))


def _sbatch_value(value: str) -> str:
    """A value for an ``#SBATCH --option=value`` line (which Slurm does not shell-parse)."""
    if "\n" in value or "\r" in value:
        raise ConfigError(f"a Slurm option value cannot span lines; got {value!r}")
    return value
