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

from ..storage import current_storage
from ._resolve import make_index
from ._updates import deferred, flush, updates
from .base import Index, IndexEntry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..storage import StorageLike
    from ._resolve import IndexLike
    from .postgres import PostgresIndex
    from .sqlite import SqliteIndex

__all__ = [
    "Index", "IndexEntry", "PostgresIndex", "SqliteIndex", "deferred", "make_index", "rebuild", "updates",
]


def __getattr__(name: str) -> Any:
    # The backends are imported when first named or used, so that `import retain` stays light
    # (psycopg is optional, too).
    if name == "PostgresIndex":
        from .postgres import PostgresIndex

        return PostgresIndex
    if name == "SqliteIndex":
        from .sqlite import SqliteIndex

        return SqliteIndex
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    store = current_storage(storage)
    flush()
    return make_index(index, store).rebuild(store, progress)
