"""Executions: how components run. `Execution` is the base; one module per backend
(`retain.execution.local`, `retain.execution.pool`, `retain.execution.dask`,
`retain.execution.slurm`), each defining exactly one Execution class, so
``get("retain.execution.pool", {"processes": 4})`` finds it. Backends are imported when first
used (Dask's library only when a dispatch starts: ``pip install 'retain[dask]'``)."""

from __future__ import annotations

from .base import Execution, Job
from .local import LocalExecution  # installs the in-process run that launch() uses by default

__all__ = ["Execution", "Job", "LocalExecution"]
