"""Process-wide settings, scoped by context managers and environment variables.

Precedence, innermost first: an explicit argument, the innermost `with` block, the
environment (`RETAIN_STORAGE`, `RETAIN_DURABLE`, `RETAIN_INDEX`), the
default.
Context variables keep nested and threaded uses independent. The storage and the index in
force are kept beside what makes them (`retain.storage.current_storage`,
`retain.index.make_index`); this module sets them for a block.
"""

from __future__ import annotations

import os
from contextvars import ContextVar

from ._errors import ConfigError
from .index import make_index
from .index._resolve import scoped_index
from .storage import current_storage as current_storage, make_storage, scoped_storage as scoped_storage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextvars import Token
    from typing import Any

    from .index.base import Index
    from .storage import StorageLike

_durable: ContextVar[bool | None] = ContextVar("retain_durable", default=None)
_heartbeat: ContextVar[float | None] = ContextVar("retain_heartbeat", default=None)
_lease: ContextVar[float | None] = ContextVar("retain_lease", default=None)

#: Seconds between two heartbeats of a running component, and how long a claim stays valid
#: without one (a component whose heartbeat is older than its lease is taken over).
DEFAULT_HEARTBEAT = 10.0
DEFAULT_LEASE = 90.0


class _Scope:
    """Sets context variables on entry and restores them on exit; nests, and is reusable."""

    def __init__(self, values: list[tuple[ContextVar[Any], Any]]) -> None:
        self._values = values
        self._tokens: list[list[tuple[ContextVar[Any], Token[Any]]]] = []

    def __enter__(self) -> Any:
        self._tokens.append([(var, var.set(value)) for var, value in self._values])
        return self._values[0][1] if self._values else None

    def __exit__(self, *exc: object) -> None:
        for var, token in reversed(self._tokens.pop()):
            var.reset(token)


def storage(location: StorageLike) -> _Scope:
    """Use `location` (a path, a URL or a Storage) for interfaces created inside the block.

    Example:
        >>> with retain.storage("/tmp/results") as results:
        ...     mnist = get(MnistData)
    """
    return _Scope([(scoped_storage, make_storage(location))])


def settings(
    *,
    durable: bool | None = None,
    heartbeat: float | None = None,
    lease: float | None = None,
    index: Index | str | None = None,
) -> _Scope:
    """Override settings inside a ``with`` block.

    Args:
        durable: fsync every file and directory a commit writes, so a commit survives a power
            loss, not only a killed process. Also ``RETAIN_DURABLE=1``.
        heartbeat: seconds between two heartbeats of a running component (default 10). Also
            ``RETAIN_HEARTBEAT``.
        lease: seconds a component's claim stays valid without a heartbeat (default 90, at
            least twice the heartbeat); after that, another launcher takes it over. Also
            ``RETAIN_LEASE``.
        index: the index that commits update and queries ask, instead of each storage's own
            SQLite index: an `Index` or a URL (``"postgresql://user@host:5432/db"``, see
            `retain.index.make_index`). Also ``RETAIN_INDEX``.
    """
    values: list[tuple[ContextVar[Any], Any]] = []
    if durable is not None:
        values.append((_durable, bool(durable)))
    if heartbeat is not None:
        values.append((_heartbeat, _check_seconds("heartbeat", heartbeat)))
    if lease is not None:
        values.append((_lease, _check_seconds("lease", lease)))
    if index is not None:
        values.append((scoped_index, make_index(index)))
    return _Scope(values)


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds; got {value!r}")
    return float(value)


def durable() -> bool:
    value = _durable.get()
    if value is not None:
        return value
    return os.environ.get("RETAIN_DURABLE", "").strip().lower() in ("1", "true", "yes", "on")


def _seconds(var: ContextVar[float | None], env: str, default: float) -> float:
    value = var.get()
    if value is not None:
        return value
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        return _check_seconds(env, float(text))
    except ValueError:
        raise ConfigError(f"{env} must be a positive number of seconds; got {text!r}") from None


def heartbeat_lease() -> tuple[float, float]:
    """(heartbeat interval, lease) in seconds; the lease is at least twice the interval."""
    heartbeat = _seconds(_heartbeat, "RETAIN_HEARTBEAT", DEFAULT_HEARTBEAT)
    lease = _seconds(_lease, "RETAIN_LEASE", DEFAULT_LEASE)
    if lease < 2 * heartbeat:
        raise ConfigError(
            f"the lease ({lease:g} s) must be at least twice the heartbeat interval "
            f"({heartbeat:g} s), or live components would be taken over; raise the lease"
        )
    return heartbeat, lease
