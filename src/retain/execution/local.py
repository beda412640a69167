"""In-process execution: the default."""

from __future__ import annotations

from .base import Execution

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, ClassVar

    from .._run import Outcome
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
