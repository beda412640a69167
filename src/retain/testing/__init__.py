"""Conformance suites for storage, index and execution backends, for pytest.

Every backend retain ships passes them; a backend written elsewhere runs them the same way:
subclass the suite in a test module and provide the fixture that makes a fresh backend.

    # tests/test_my_storage.py
    import pytest
    from retain.testing.storage import StorageConformance

    class TestMyStorage(StorageConformance):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(tmp_path / "store")      # a fresh, empty storage per test

The suites: `retain.testing.storage.StorageConformance` (fixture ``storage``),
`retain.testing.index.IndexConformance` (fixture ``index``) and
`retain.testing.execution.ExecutionConformance` (fixture ``execution``).

Abilities are read from the backend, never from its name: a storage declares the
``supports_*`` attributes and ``is_remote`` of `retain.storage.Storage`, an execution
``supports_unimportable_classes``, ``supports_job_states`` and ``runs_elsewhere`` of
`retain.Execution`. A test that needs an ability the backend declares it lacks is skipped
with a reason naming the ability (`require`); a test of what a lacking ability implies (a
storage without runs refuses components) runs either way. What depends on the test setup
rather than the backend is an attribute of the suite: ``StorageConformance.reopens_by_url``
(False for a backend that `retain.storage.make_storage` cannot open from its URL),
``ExecutionConformance.settle`` (how to wait for a batch system's runs).

This package is for test suites: it imports pytest, and ``import retain`` never imports it.
The suites' components (`retain.testing.execution.ConformanceWork`, ...) are importable by
name, so worker processes (a pool, Dask, Slurm jobs) load them like any other component.
"""

from __future__ import annotations

try:
    import pytest
except ImportError as exc:  # pragma: no cover - the test extra installs pytest
    raise ImportError("retain.testing is for test suites and needs pytest: pip install pytest") from exc

__all__ = ["require"]


def require(backend: object, ability: str) -> None:
    """Skip the running test when `backend` declares that it lacks `ability` (a boolean
    class attribute such as ``supports_exclusive_create``)."""
    if not getattr(backend, ability):
        pytest.skip(f"{type(backend).__name__} declares {ability} = False")
