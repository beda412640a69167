"""In-process execution: the default."""

from __future__ import annotations

from .._errors import LaunchError
from ..runs import install_in_process
from .base import Execution, failure_message

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, ClassVar

    from ..component import Component
    from ..runs.dispatch import Outcome
    from .base import Job

__all__ = ["LocalExecution"]


class LocalExecution(Execution):
    """Runs components one after another in this process (what `launch()` does outside an
    execution block). Works with any class, importable or not.

    Config:
        echo: also show each run's output on this process's terminal (it always goes to the
            component's ``output.log``).
    """

    Config: ClassVar[Any] = {"echo": True}

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        for job in jobs:
            yield job, job.run()


_default: list[LocalExecution] = []  # made at the first launch(): an Interface is not free


def run_now(component: Component, wait: bool | float) -> None:
    """Run one component here, as `launch()` does outside an execution block; re-raise its
    failure."""
    if not _default:
        _default.append(LocalExecution())
    outcome = _default[0]._dispatch([component], wait)[0]
    if outcome.failed:
        if outcome.exception is not None:
            raise outcome.exception
        raise LaunchError(failure_message([outcome], [outcome]), [outcome])


install_in_process(run_now)
