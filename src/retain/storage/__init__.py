"""Storage backends and `make_storage`, the one place a name or path becomes a Storage."""

from __future__ import annotations

import os
from contextvars import ContextVar

from .._errors import StorageError
from .base import Storage
from .layout import read_marker
from .local import LocalStorage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Union

    from .fsspec import FsspecStorage

    StorageLike = Union[Storage, str, os.PathLike[str]]

__all__ = [
    "DEFAULT_STORAGE", "FsspecStorage", "LocalStorage", "Storage", "current_storage", "make_storage",
    "scoped_storage", "storage_of_directory",
]

_cache: dict[Any, Storage] = {}

DEFAULT_STORAGE = "./storage"
#: The storage of the innermost ``with retain.storage(...)`` block; None outside any.
scoped_storage: ContextVar[Storage | None] = ContextVar("retain_storage", default=None)


def current_storage(explicit: StorageLike | None = None) -> Storage:
    """The storage in force: `explicit`, else the innermost block, else the environment."""
    if explicit is not None:
        return make_storage(explicit)
    scoped = scoped_storage.get()
    if scoped is not None:
        return scoped
    return make_storage(os.environ.get("RETAIN_STORAGE") or DEFAULT_STORAGE)


def make_storage(location: Any) -> Storage:
    """A Storage from an instance, a local path, or a URL.

    - a path, or ``file:///path`` (``file:///path?shard=2`` creates a sharded storage; see
      `LocalStorage`): a `LocalStorage`. A path that is the local cache of an object store
      means that store.
    - ``s3://bucket/prefix``, ``gs://bucket/prefix``, ``memory://name`` or any other fsspec
      URL: an `FsspecStorage` (``pip install 'retain[s3]'`` for S3).

    One instance per location and process.

    Raises:
        StorageError: the location is malformed, or of a kind no backend serves.
        ImportError: the backend of that URL is not installed (says which extra to install).
    """
    if isinstance(location, Storage):
        return location
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str) or not location:
        raise StorageError(
            f"storage must be a path, a URL or a Storage instance; got {location!r}"
        )
    shard: int | None = None
    if location.startswith("file://"):
        location, shard = _file_url(location)
    elif "://" in location:
        from .fsspec import FsspecStorage, default_cache_dir  # as in __getattr__ below

        key = (location, default_cache_dir())
        found = _cache.get(key)
        if found is None:
            found = _cache[key] = FsspecStorage(location)
        return found
    root = os.path.abspath(location)
    storage = _cache.get(root)
    if storage is None or (shard is not None and shard != getattr(storage, "shard", None)):
        marker = read_marker(root)
        if marker is not None and "cache_of" in marker:
            from .fsspec import storage_from_cache  # as in __getattr__ below

            storage = storage_from_cache(root)
        else:
            storage = LocalStorage(root, shard=shard)
        assert storage is not None
        _cache[root] = storage
    return storage


def storage_of_directory(directory: str) -> Storage:
    """The storage that holds the interface directory `directory` (its parent, or, in a
    sharded storage, its grandparent)."""
    parent = os.path.dirname(directory)
    name = os.path.basename(parent)
    if 0 < len(name) <= 3 and os.path.basename(directory).startswith(name):
        grandparent = os.path.dirname(parent)
        try:
            marker = read_marker(grandparent)
        except Exception:
            marker = None
        if marker is not None and marker.get("shard") == len(name):
            return make_storage(grandparent)
    return make_storage(parent)


def _file_url(url: str) -> tuple[str, int | None]:
    from urllib.parse import parse_qsl, unquote  # loads collections: not at `import retain`

    # file:///absolute/path, or file://relative/path as earlier versions took it.
    path, _, query = url[len("file://"):].partition("?")
    if path.startswith("localhost/"):
        path = path[len("localhost"):]
    shard = None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "shard" or not value.isdigit():
            raise StorageError(f"file URLs accept one option, shard=0|1|2|3; got {key}={value!r} in {url!r}")
        shard = int(value)
    return unquote(path) or "/", shard


def __getattr__(name: str) -> Any:
    # The object store backend loads threading (and, when a storage is made, fsspec): only
    # when asked for, never at `import retain`.
    if name == "FsspecStorage":
        from .fsspec import FsspecStorage

        return FsspecStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
