"""Which index an ``index=`` argument means: `make_index` (an instance, a URL, or None for the
index in force), the index set by `retain.settings(index=...)` or ``RETAIN_INDEX``, and each
storage's own SQLite index (`default_index`)."""

from __future__ import annotations

import os
from contextvars import ContextVar

from .._errors import IndexDatabaseError
from ..storage import current_storage
from ..storage.layout import INDEX_FILE, index_path
from .base import Index

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

    from ..storage import StorageLike
    from ..storage.base import Storage

    IndexLike = Union[Index, str, None]

__all__ = ["default_index", "index_setting", "make_index", "readonly_index_path", "scoped_index"]

#: The index of the innermost ``with retain.settings(index=...)`` block; None outside any.
scoped_index: ContextVar[Index | None] = ContextVar("retain_index", default=None)
_by_url: dict[str, Index] = {}
_defaults: dict[Storage, Index] = {}
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def index_setting() -> Index | str | None:
    """The index set by `settings(index=...)` (innermost block) or ``RETAIN_INDEX``; None when
    neither is set (each storage then uses its own SQLite index)."""
    value = scoped_index.get()
    if value is not None:
        return value
    return os.environ.get("RETAIN_INDEX", "").strip() or None


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
                from .sqlite import SqliteIndex  # the backends load with the first index (import time)

                found = _by_url[path] = SqliteIndex(path)
            return found
        if scheme in _POSTGRES_SCHEMES:
            found = _by_url.get(index)
            if found is None:
                # psycopg is optional (and the PostgreSQL modules load contextlib): on first use.
                from .postgres import PostgresIndex

                found = _by_url.setdefault(index, PostgresIndex(index))
            return found
    from .postgres import hide_password  # (see above: the PostgreSQL modules load on first use)

    shown = repr(hide_password(index)) if isinstance(index, str) else repr(index)
    raise IndexDatabaseError(
        "index must be an Index, a URL such as 'sqlite:////path/to/index.sqlite' or "
        "'postgresql://user@host:5432/dbname', or None for the storage's own index; got "
        f"{shown}"
    )


def default_index(storage: Storage) -> Index:
    """The storage's own index (``<root>/.retain/index.sqlite``), one per storage and process."""
    index = _defaults.get(storage)
    if index is None:
        # An object store's index lives in its local cache (<cache>/.retain/): a cache per
        # machine, refreshed from the store's listing (see Index.sync).
        root = storage.local_root()
        if root is None:
            raise IndexDatabaseError(
                f"{storage!r} has no default index (it has no local directory); pass index=..."
            )
        from .sqlite import SqliteIndex  # (see make_index)

        path = index_path(root)
        if not _writable(os.path.dirname(path), root):
            path = readonly_index_path(root)
        # setdefault: the writer thread and a query may get here at once; one instance wins.
        index = _defaults.setdefault(storage, SqliteIndex(path))
    return index


def _writable(meta: str, root: str) -> bool:
    """Whether the index can live in the storage: its `.retain` directory (or, before that
    exists, the root) can be written. A storage that does not exist yet counts as writable:
    the first commit creates it."""
    if os.path.isdir(meta):
        index = os.path.join(meta, INDEX_FILE)
        return _allows_writes(meta) and (not os.path.exists(index) or _allows_writes(index))
    return not os.path.isdir(root) or _allows_writes(root)


def _allows_writes(path: str) -> bool:
    # `os.access` reports a read-only mount even to root; the mode bits say that an archive
    # was made read-only on purpose (`chmod -R a-w`), which root would otherwise write into.
    try:
        return os.access(path, os.W_OK) and bool(os.stat(path).st_mode & 0o222)
    except OSError:
        return False


def readonly_index_path(root: str) -> str:
    """Where the index of a storage that cannot be written (a read-only mount, an archive)
    lives: in the user's cache (``$RETAIN_CACHE_DIR``, ``$XDG_CACHE_HOME/retain`` or
    ``~/.cache/retain``), else in the temporary directory, under a name made of the storage's
    path and its directory's identity. Built from the records by the first query."""
    import hashlib  # (hashlib, and the object-store backend, load on first use: `import retain` stays cheap)
    import re
    import tempfile

    from ..storage.fsspec import default_cache_dir

    try:
        info = os.stat(root)
        identity = f"{info.st_dev}:{info.st_ino}"
    except OSError:
        identity = ""
    digest = hashlib.sha256(f"{root}\n{identity}".encode("utf-8", "surrogateescape")).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", root).strip("-.")[-60:] or "root"
    uid = getattr(os, "getuid", lambda: 0)()
    for base in (default_cache_dir(), os.path.join(tempfile.gettempdir(), f"retain-{uid}")):
        directory = os.path.join(base, "readonly-indexes")
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError:
            continue
        if os.access(directory, os.W_OK):
            return os.path.join(directory, f"{name}-{digest}.sqlite")
    raise IndexDatabaseError(
        f"the storage {root} is read-only and no cache directory is writable for its index; "
        "set RETAIN_CACHE_DIR to a writable directory"
    )
