"""The index: a query catalogue over storage, behind `get.all`, and only a cache.

Every storage has its own SQLite index in ``<root>/.retain/index.sqlite``, created on first
use and kept up to date by commits; it repairs itself when storage is ahead of it (a process
killed mid-commit, directories copied in by hand) and can be rebuilt from storage at any time
with `rebuild`. Machines that share a storage share a PostgreSQL index instead
(`PostgresIndex`, ``index="postgresql://..."``, ``retain.settings(index=...)`` or
``RETAIN_INDEX``). Backends implement the narrow `Index` contract (see `retain.index.base`);
`make_index` is the one place an ``index=`` argument becomes an `Index`.
"""

from __future__ import annotations

import os

from .._errors import IndexDatabaseError
from ._hooks import deferred, updates
from .base import Index, IndexEntry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Union

    from .._settings import StorageLike
    from .postgres import PostgresIndex
    from .sqlite import SqliteIndex

    IndexLike = Union[Index, str, None]

__all__ = [
    "Index", "IndexEntry", "PostgresIndex", "SqliteIndex", "deferred", "make_index", "rebuild", "updates",
]

_by_url: dict[str, Index] = {}
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def __getattr__(name: str) -> Any:
    # The backends are imported when first named or used, so that `import retain` stays light.
    if name == "PostgresIndex":
        from .postgres import PostgresIndex

        return PostgresIndex
    if name == "SqliteIndex":
        from .sqlite import SqliteIndex

        return SqliteIndex
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_index(index: IndexLike = None, storage: StorageLike | None = None) -> Index:
    """An Index from an instance, a URL, or None (the index in force for `storage`).

    Args:
        index: an `Index`; ``"sqlite:///relative/path.sqlite"`` or
            ``"sqlite:////absolute/path.sqlite"``; ``"postgresql://user:password@host:5432/db"``
            (optionally ``?schema=name``; see `PostgresIndex`); or None for the index set by
            ``retain.settings(index=...)`` or ``RETAIN_INDEX``, else the storage's own
            ``<storage>/.retain/index.sqlite``. One instance per URL and process.
        storage: the storage whose default index None means (default: see `retain.storage`).

    Raises:
        IndexDatabaseError: the URL names no available backend.
        ImportError: the backend's driver is not installed (the message says what to install).
    """
    if isinstance(index, Index):
        return index
    if index is None:
        from .._settings import current_storage, index_setting
        from ._hooks import default_index

        configured = index_setting()
        if configured is not None:
            return make_index(configured)
        return default_index(current_storage(storage))
    if isinstance(index, str):
        scheme = index.split("://", 1)[0].lower() if "://" in index else ""
        if scheme == "sqlite" and index.startswith("sqlite:///") and len(index) > len("sqlite:///"):
            path = os.path.abspath(index[len("sqlite:///"):])
            found = _by_url.get(path)
            if found is None:
                from .sqlite import SqliteIndex

                found = _by_url[path] = SqliteIndex(path)
            return found
        if scheme in _POSTGRES_SCHEMES:
            found = _by_url.get(index)
            if found is None:
                from .postgres import PostgresIndex

                found = _by_url.setdefault(index, PostgresIndex(index))
            return found
    from .postgres import hide_password

    shown = repr(hide_password(index)) if isinstance(index, str) else repr(index)
    raise IndexDatabaseError(
        "index must be an Index, a URL such as 'sqlite:////path/to/index.sqlite' or "
        "'postgresql://user@host:5432/dbname', or None for the storage's own index; got "
        f"{shown}"
    )


def rebuild(
    storage: StorageLike | None = None,
    progress: Callable[[int, int], Any] | bool | None = None,
    *,
    index: IndexLike = None,
) -> int:
    """Rebuild the index of `storage` from its records alone; returns the number indexed.

    Safe while other processes commit and query: the new contents replace the old in one
    transaction, and what is committed meanwhile is found by the next query. A corrupt index, or
    one written by a newer retain, is deleted and made anew. Nothing in storage is changed but
    the temporary files killed writers left (older than an hour) in directories without a
    record and in the storage's ``.retain/``.

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
