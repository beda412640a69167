"""Process-wide settings, scoped by context managers and environment variables.

Precedence, innermost first: an explicit argument, the innermost `with` block, the
environment (`RETAIN_STORAGE`, `RETAIN_CHANGED_DEFAULTS`, `RETAIN_DURABLE`), the default.
Context variables keep nested and threaded uses independent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Literal, Union

from ._errors import ConfigError

if TYPE_CHECKING:
    from .storage.base import Storage

ChangedDefaultsPolicy = Literal["warn", "error", "accept"]
StorageLike = Union["Storage", str, "os.PathLike[str]"]

_POLICIES = ("warn", "error", "accept")
DEFAULT_STORAGE = "./storage"

_storage: ContextVar[StorageLike | None] = ContextVar("retain_storage", default=None)
_changed_defaults: ContextVar[str | None] = ContextVar("retain_changed_defaults", default=None)
_durable: ContextVar[bool | None] = ContextVar("retain_durable", default=None)


@contextmanager
def storage(location: StorageLike) -> Iterator[Storage]:
    """Use `location` (a path, a URL or a Storage) for interfaces created inside the block.

    Example:
        >>> with retain.storage("/tmp/results"):
        ...     mnist = get(MnistData)
    """
    from .storage import make_storage

    resolved = make_storage(location)
    token = _storage.set(resolved)
    try:
        yield resolved
    finally:
        _storage.reset(token)


def current_storage(explicit: StorageLike | None = None) -> Storage:
    """The storage in force: `explicit`, else the innermost block, else the environment."""
    from .storage import make_storage

    if explicit is not None:
        return make_storage(explicit)
    scoped = _storage.get()
    if scoped is not None:
        return make_storage(scoped)
    return make_storage(os.environ.get("RETAIN_STORAGE") or DEFAULT_STORAGE)


@contextmanager
def settings(
    *,
    changed_defaults: ChangedDefaultsPolicy | None = None,
    durable: bool | None = None,
) -> Iterator[None]:
    """Override settings inside a block.

    Args:
        changed_defaults: what `get` does when a stored result was computed with defaults that
            differ from today's code: ``"warn"`` (default), ``"error"`` or ``"accept"``.
        durable: fsync every file and directory a commit writes, so a commit survives a power
            loss, not only a killed process. Also ``RETAIN_DURABLE=1``.
    """
    tokens: list[tuple[ContextVar[Any], Token[Any]]] = []
    if changed_defaults is not None:
        tokens.append((_changed_defaults, _changed_defaults.set(_check_policy(changed_defaults))))
    if durable is not None:
        tokens.append((_durable, _durable.set(bool(durable))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def _check_policy(value: str) -> str:
    if value not in _POLICIES:
        raise ConfigError(
            f"changed_defaults must be one of {', '.join(_POLICIES)}; got {value!r}"
        )
    return value


def changed_defaults_policy() -> str:
    value = _changed_defaults.get()
    if value is not None:
        return value
    env = os.environ.get("RETAIN_CHANGED_DEFAULTS")
    if env:
        try:
            return _check_policy(env.strip().lower())
        except ConfigError as exc:
            raise ConfigError(f"RETAIN_CHANGED_DEFAULTS: {exc}") from None
    return "warn"


def durable() -> bool:
    value = _durable.get()
    if value is not None:
        return value
    return os.environ.get("RETAIN_DURABLE", "").strip().lower() in ("1", "true", "yes", "on")
