"""Storage backends and `make_storage`, the one place a name or path becomes a Storage."""

from __future__ import annotations

import os

from .._errors import StorageError
from .base import Storage
from .local import LocalStorage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["LocalStorage", "Storage", "make_storage"]

_local_cache: dict[str, LocalStorage] = {}


def make_storage(location: Any) -> Storage:
    """A Storage from an instance, a local path, or a ``file://`` URL.

    Raises:
        StorageError: the location is of a kind no installed backend serves.
    """
    if isinstance(location, Storage):
        return location
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str) or not location:
        raise StorageError(
            f"storage must be a path, a URL or a Storage instance; got {location!r}"
        )
    if location.startswith("file://"):
        location = location[len("file://"):]
    elif "://" in location:
        scheme = location.split("://", 1)[0]
        raise StorageError(
            f"no storage backend for {scheme!r} URLs ({location}); use a local path for now"
        )
    root = os.path.abspath(location)
    storage = _local_cache.get(root)
    if storage is None:
        storage = _local_cache[root] = LocalStorage(root)
    return storage
