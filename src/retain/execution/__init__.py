"""Executions: how components run. `Execution` is the base; one module per backend
(`retain.execution.local`, `retain.execution.pool`), each defining exactly one Execution
class, so ``get("retain.execution.pool", {"processes": 4})`` finds it. Backends are
imported when first used."""

from __future__ import annotations

from .base import Execution, Job

__all__ = ["Execution", "Job"]
