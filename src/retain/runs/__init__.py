"""How a component runs, below `Component` and the executions: claims and leases (exactly one
run at a time, across processes and machines), run files (claims, heartbeats, ends, events,
failures, submissions), output capture, the run itself (`dispatch`) and its state (`status`).

Nothing here imports `retain.component` or `retain.execution` at run time: the layers above
call into this package, never the other way round.

The launch context lives here, loaded with `import retain`: the rest of the run machinery
loads at the first launch.
"""

from __future__ import annotations

from contextvars import ContextVar

from .._errors import StorageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..component import Component
    from ..storage.base import Storage

__all__ = ["batch", "check_storage_runs", "install_in_process", "launch_one"]


#: The innermost ``with execution:`` block's batch, which `Component.launch` joins (set by
#: `Execution.__enter__`); None outside such blocks.
batch: ContextVar[Any] = ContextVar("retain_batch", default=None)

#: How `launch()` runs a component outside an execution block: ``run(component, wait)``,
#: installed by `retain.execution.local` (in process) when `retain.execution` is imported,
#: which `import retain` does. Registered rather than imported: this layer sits below the
#: executions and never imports them.
_in_process: list[Callable[[Component, bool | float], None]] = []


def install_in_process(run: Callable[[Component, bool | float], None]) -> None:
    """Make `run` what `launch()` uses outside an execution block."""
    _in_process[:] = [run]


def launch_one(component: Component, wait: bool | float) -> None:
    """Queue a committed, unfinished component in the current batch, or run it now in this
    process (re-raising its failure)."""
    current = batch.get()
    if current is not None:
        current.add(component, wait)
    else:
        _in_process[0](component, wait)


def check_storage_runs(storage: Storage) -> None:
    """Raise `StorageError` if components cannot run on `storage` (an object store without
    put-if-absent)."""
    if not storage.supports_runs:
        raise StorageError(
            f"components cannot run on {storage.url}: their exactly-once claims need a store "
            "that creates an object only if it is absent (S3, GCS), or a local or shared file "
            "system; interfaces, their files and summaries can live here"
        )
