"""The index: a query catalogue over storage, behind `get.all`, and only a cache.

Every storage has its own SQLite index in ``<root>/.retain/index.sqlite``, created on first
use and kept up to date by commits; it repairs itself when storage is ahead of it (a process
killed mid-commit, directories copied in by hand) and can be rebuilt from storage at any time
with `rebuild`. Backends implement the narrow `Index` contract (see `retain.index.base`);
`make_index` is the one place an ``index=`` argument becomes an `Index`.
"""

from __future__ import annotations

import os

from .._errors import IndexDatabaseError
from ._hooks import deferred, updates
from .base import Index, IndexEntry
from .sqlite import SqliteIndex

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Union

    from .._settings import StorageLike

    IndexLike = Union[Index, str, None]

__all__ = ["Index", "IndexEntry", "SqliteIndex", "deferred", "make_index", "rebuild", "updates"]

_by_url: dict[str, Index] = {}
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


def make_index(index: IndexLike = None, storage: StorageLike | None = None) -> Index:
    """An Index from an instance, a URL, or None (the storage's own SQLite index).

    Args:
        index: an `Index`; ``"sqlite:///relative/path.sqlite"`` or
            ``"sqlite:////absolute/path.sqlite"``; or None for ``<storage>/.retain/index.sqlite``.
        storage: the storage whose default index None means (default: see `retain.storage`).

    Raises:
        IndexDatabaseError: the URL names no available backend.
    """
    if isinstance(index, Index):
        return index
    if index is None:
        from .._settings import current_storage
        from ._hooks import default_index

        return default_index(current_storage(storage))
    if isinstance(index, str):
        scheme = index.split("://", 1)[0].lower() if "://" in index else ""
        if scheme == "sqlite" and index.startswith("sqlite:///") and len(index) > len("sqlite:///"):
            path = os.path.abspath(index[len("sqlite:///"):])
            found = _by_url.get(path)
            if found is None:
                found = _by_url[path] = SqliteIndex(path)
            return found
        if scheme in _POSTGRES_SCHEMES:
            raise IndexDatabaseError(
                f"the PostgreSQL index ({_hide_password(index)}) is not available in this version "
                "of retain yet; use the storage's own SQLite index (index=None) on one machine"
            )
    raise IndexDatabaseError(
        "index must be an Index, a URL such as 'sqlite:////path/to/index.sqlite', or None for "
        f"the storage's own index; got {index!r}"
    )


def _hide_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return f"{scheme}://{credentials}{at}{host}"


def rebuild(
    storage: StorageLike | None = None,
    progress: Callable[[int, int], Any] | bool | None = None,
    *,
    index: IndexLike = None,
) -> int:
    """Rebuild the index of `storage` from its records alone; returns the number indexed.

    Safe while other processes commit and query: the new contents replace the old in one
    transaction, and what is committed meanwhile is found by the next query. A corrupt index, or
    one written by a newer retain, is deleted and made anew. Nothing in storage is changed.

    Args:
        storage: the storage (default: see `retain.storage`).
        progress: called as ``progress(done, total)`` every 1,000 records and at the end; or
            True to print a progress line to stderr.
        index: the index to rebuild (default: the storage's own).
    """
    from .._settings import current_storage

    from ._hooks import flush

    store = current_storage(storage)
    flush()
    return make_index(index, store).rebuild(store, progress)
