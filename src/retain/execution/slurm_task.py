"""The task of a Slurm job written by `SlurmExecution`: launch one component.

Usage (in the batch script): ``python -m retain.execution.slurm_task SPEC [INDEX]``. SPEC is the
JSON file written beside the script (storage, components, run options, ``sys.path``, working
directory); INDEX picks the component, by default ``$SLURM_ARRAY_TASK_ID`` (0 for a single
job). The component is reloaded from storage by id and run here, exactly once across every
launcher (a requeued or duplicate job waits for, takes over, or finds finished the other's
run). The job's ids are recorded in the run's claim (``execution.job``). Exit status: 0 when the
component is finished, 1 when its run failed, 2 for a bad spec.
"""

from __future__ import annotations

import os
import sys

from ..runs.dispatch import Outcome, RunOptions
from .base import run_payload
from .slurm import SPEC_FORMAT
from ..storage import make_storage
from ..storage.layout import OUTPUT_LOG

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["main"]

#: Slurm's variables recorded in the claim, under their short names.
_JOB_VARIABLES = {
    "id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "restart": "SLURM_RESTART_COUNT",
    "node": "SLURMD_NODENAME",
    "partition": "SLURM_JOB_PARTITION",
    "cluster": "SLURM_CLUSTER_NAME",
}


def main(argv: list[str] | None = None) -> int:
    import json

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or len(args) > 2:
        print("usage: python -m retain.execution.slurm_task SPEC [INDEX]", file=sys.stderr)
        return 2
    try:
        with open(args[0], encoding="utf-8") as handle:
            spec = json.load(handle)
        if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
            raise ValueError(f"not a {SPEC_FORMAT} file")
        index = int(args[1] if len(args) > 1 else os.environ.get("SLURM_ARRAY_TASK_ID") or 0)
        entry = spec["components"][index]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        print(f"retain: cannot read the task spec {args[0]!r}: {exc}", file=sys.stderr)
        return 2
    options = RunOptions.__new__(RunOptions)
    options.__setstate__(spec["options"])
    job: dict[str, Any] = {name: os.environ[variable] for name, variable in _JOB_VARIABLES.items()
                           if os.environ.get(variable)}
    options.execution = {**(options.execution or {}), "job": job}
    options.echo = True  # the job's own output file gets it too
    payload = {
        "storage": spec["storage"],
        "id": entry["id"],
        "record": None,  # read from storage
        "module": entry["module"],
        "class": entry["class"],
        "options": options,
        "sys_path": [*spec["sys_path"], *(p for p in sys.path if p not in spec["sys_path"])],
        "cwd": spec["cwd"] if os.path.isdir(spec["cwd"]) else os.getcwd(),
        "environ": dict(os.environ),  # Slurm passed the launcher's on, with the job's own
    }
    try:
        outcome = Outcome.from_dict(run_payload(payload))
    except Exception as exc:  # the component could not be loaded: say so in the job's output
        print(f"retain: could not launch component {entry['id']}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if outcome.failed:
        error = outcome.error or {}
        log = os.path.join(make_storage(spec["storage"]).local_directory(entry["id"]), OUTPUT_LOG)
        print(f"retain: component {entry['id']} failed: {error.get('type')}: {error.get('message')} "
              f"(its output: {log})", file=sys.stderr)
        return 1
    print(f"retain: component {entry['id']} {outcome.status}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
