"""Storage in a local (or mounted) directory, optionally sharded by id prefix."""

from __future__ import annotations

import os
import stat
import time

from .._errors import StorageError
from .._fs import SETTLE_NS, atomic_write, fsync_directory, makedirs, read_small_file, reclaim_temporaries
from ..identity import ID_LENGTH, is_id
from .base import Storage, read_local_file
from .layout import (
    MARKER_FORMAT,
    RECORD_FILE,
    SHARD_WIDTHS,
    STORAGE_ID_FILE,
    STORAGE_META_DIR,
    interface_directory,
    marker_path,
    read_marker,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["LocalStorage"]

_HEX = "0123456789abcdef"
_HEX_BYTES = _HEX.encode()
_SHARDS: dict[int, frozenset[str]] = {}


def _valid_shards(width: int) -> frozenset[str]:
    """Every shard directory name of `width` hex characters."""
    found = _SHARDS.get(width)
    if found is None:
        found = _SHARDS[width] = frozenset(f"{n:0{width}x}" for n in range(16**width))
    return found


def _ids_among(names: list[str], prefix: str) -> list[str]:
    """The names that are ids starting with `prefix`. Checked all at once (one pass in C:
    a sync lists 100,000 names in the time `is_id` checks 30,000), one by one only when some
    id-long name is not an id."""
    found = [name for name in names if len(name) == ID_LENGTH]
    if prefix:
        found = [name for name in found if name.startswith(prefix)]
    if "".join(found).encode("ascii", "replace").translate(None, _HEX_BYTES):
        found = [name for name in found if is_id(name)]
    return found


#: The layout of a new storage opened without `shard=`: 256 shard directories (see
#: docs/design.md, "Layout at scale").
DEFAULT_SHARD = 2

# What a LocalStorage knows of its layout (`LocalStorage._state`).
_MARKED = "marked"  # the marker on disk says it: settled for good
_PLAIN = "plain"  # no marker, ids at the top of the root: an existing plain storage
_NEW = "new"  # no marker, no ids: the layout is decided by the first directory created


class LocalStorage(Storage):
    """Interfaces in `<root>/<id[:2]>/<id>/` (or `<root>/<id>/`), the record in
    `interface.json` inside.

    Args:
        root: the storage directory (created on the first commit).
        shard: put each interface directory under the first `shard` characters of its id
            (`<root>/29/29f034.../`; 1, 2 or 3: 16, 256 or 4,096 sub-directories), or 0 for
            the plain layout `<root>/29f034.../`. None means "whatever the storage says":
            the layout recorded in ``<root>/.retain/storage.json``; plain for an existing
            storage without that marker that holds interfaces at its top level; 2 for a new
            storage. The marker is written before the first interface directory is created
            (`prepare_directory`: the first `save_file` or commit; never by reads),
            exclusively: every process follows the layout that is on disk.

    Raises:
        StorageError: `shard` differs from the layout the storage was created with, the
            storage already holds interfaces in the other layout, or its marker says sharded
            while interfaces sit at its top level.
    """

    def __init__(self, root: str | os.PathLike[str], *, shard: int | None = None) -> None:
        self.root = os.path.abspath(os.fspath(root))
        if shard is not None and (isinstance(shard, bool) or shard not in (0, *SHARD_WIDTHS)):
            raise StorageError(f"shard must be one of 0, 1, 2, 3 (characters of the id); got {shard!r}")
        self._requested = shard
        self._storage_id: str | None = None
        #: The shard names as last listed: (the root's inode and mtime, when listed, names).
        self._shards: tuple[tuple[int, int], int, list[str]] | None = None
        marker = read_marker(self.root)
        if marker is not None:
            self._adopt(marker)
            return
        plain = self._plain_id()
        if plain is not None:
            if shard:
                raise StorageError(
                    f"{self.root} already holds interfaces in the plain layout (e.g. {plain}); "
                    f"open it without shard=, or move them into a new storage created with shard={shard}"
                )
            self._shard, self._state = 0, _PLAIN
        else:
            self._shard, self._state = (DEFAULT_SHARD if shard is None else shard), _NEW

    @property
    def shard(self) -> int:
        """Characters of the id that name the shard directory of an interface; 0: plain."""
        if self._state == _NEW:
            # Until it writes the marker itself, a process follows one another process wrote.
            marker = read_marker(self.root)
            if marker is not None:
                self._adopt(marker, raced=True)
        return self._shard

    def _adopt(self, marker: dict[str, object], *, raced: bool = False) -> None:
        """Follow the layout of the storage's marker."""
        if "cache_of" in marker:
            raise StorageError(
                f"{self.root} is the local cache of {marker['cache_of']}; use that URL as "
                "the storage (retain.storage(url)), not the cache directory"
            )
        stored = marker.get("shard", 0)
        assert isinstance(stored, int)  # read_marker checked it
        requested = self._requested
        if requested is not None and requested != stored:
            if raced:
                raise StorageError(
                    f"{self.root} was just created with shard={stored} by another process; "
                    f"open it with that layout (or without shard=), not shard={requested}"
                )
            raise StorageError(
                f"{self.root} was created with shard={stored} (see {marker_path(self.root)}); "
                f"open it with shard={stored} or without shard=, not shard={requested}"
            )
        if stored:
            plain = self._plain_id()
            if plain is not None:
                raise StorageError(
                    f"{self.root} is marked sharded (shard={stored} in {marker_path(self.root)}) "
                    f"but holds interfaces at its top level, in the plain layout (e.g. {plain}), "
                    f"which it cannot see: move each <id> directory to <id[:{stored}]>/<id>, or "
                    f"write {{\"format\": \"{MARKER_FORMAT}\", \"shard\": 0}} in the marker if "
                    "every interface is at the top level"
                )
        self._shard, self._state, self._shards = stored, _MARKED, None

    def _plain_id(self) -> str | None:
        """An interface directory at the top of the root (the plain layout), if there is one:
        the first the listing meets (in a plain storage, in its first block of entries)."""
        try:
            with os.scandir(self.root) as entries:
                return next((e.name for e in entries if len(e.name) == ID_LENGTH and is_id(e.name)), None)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _sharded_id(self) -> str | None:
        """An interface directory in a shard directory of an unmarked root, as
        ``<shard>/<id>``, if there is one (a sharded storage whose marker was lost)."""
        try:
            with os.scandir(self.root) as entries:
                names = [e.name for e in entries if len(e.name) in SHARD_WIDTHS and e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return None
        for name in names:
            if name in _valid_shards(len(name)):
                try:
                    inner = os.listdir(os.path.join(self.root, name))
                except OSError:
                    continue
                found = next((id for id in inner if id.startswith(name) and is_id(id)), None)
                if found is not None:
                    return f"{name}/{found}"
        return None

    def _mark(self) -> None:
        """Settle the layout before an interface directory is created: write the marker with
        this process's layout, exclusively, or follow the one another process wrote first."""
        import json  # not at `import retain`, which loads this module

        state, shard = self._state, self.shard  # `shard` follows a marker written meanwhile
        if self._state == _MARKED:
            return
        # What is on disk decides, not this process: directories created meanwhile without a
        # marker (by an older retain, or by hand).
        plain = self._plain_id() if shard else None
        sharded = self._sharded_id() if state == _NEW else None
        found = 0 if plain is not None else None if sharded is None else sharded.index("/")
        if found is not None and found != shard:
            if self._requested is not None:
                example = plain or sharded
                raise StorageError(
                    f"{self.root} already holds interfaces in the "
                    f"{'plain layout' if found == 0 else f'sharded layout (shard={found})'} "
                    f"(e.g. {example}); open it without shard=, or move them into a new storage "
                    f"created with shard={shard}"
                )
            shard = found
        data = (json.dumps({"format": MARKER_FORMAT, "shard": shard}) + "\n").encode()
        try:
            makedirs(os.path.join(self.root, STORAGE_META_DIR))
            created = atomic_write(marker_path(self.root), lambda handle: handle.write(data), exclusive=True)
        except StorageError:
            if state == _PLAIN:
                # A read-only plain storage: its ids say its layout, the marker only confirms it.
                self._state = _MARKED
                return
            raise
        if created:
            self._shard, self._state, self._shards = shard, _MARKED, None
            return
        marker = read_marker(self.root)
        if marker is None:  # written and removed at once: nothing to agree with
            raise StorageError(f"{marker_path(self.root)} vanished as it was created; try again")
        self._adopt(marker, raced=True)

    @property
    def url(self) -> str:
        return self.root

    def __repr__(self) -> str:
        return f"LocalStorage({self.root!r}, shard={self.shard})" if self.shard else f"LocalStorage({self.root!r})"

    def local_directory(self, id: str) -> str:
        return interface_directory(self.root, id, self.shard)

    def prepare_directory(self, id: str) -> str:
        if self._state != _MARKED:
            self._mark()
        return interface_directory(self.root, id, self._shard)

    def record_path(self, id: str) -> str:
        return os.path.join(self.local_directory(id), RECORD_FILE)

    def read_record(self, id: str) -> bytes | None:
        try:
            return read_small_file(f"{interface_directory(self.root, id, self.shard)}/{RECORD_FILE}")
        except OSError as exc:
            raise StorageError(
                exc.errno or 0, f"could not read the record of {id} in {self.root}: {exc.strerror}"
            ) from exc

    def has_record(self, id: str) -> bool:
        return os.path.isfile(self.record_path(id))

    def ids_with_file(self, ids: Iterable[str], name: str) -> set[str]:
        # One lstat per id and nothing else: the finished check of a 100,000-cell grid.
        root, shard, lexists = self.root, self.shard, os.path.lexists
        if shard:
            return {id for id in ids if lexists(f"{root}/{id[:shard]}/{id}/{name}")}
        return {id for id in ids if lexists(f"{root}/{id}/{name}")}  # as `interface_directory`

    def publish_record(self, id: str, data: bytes, *, durable: bool = False) -> bool:
        directory = self.prepare_directory(id)
        if not makedirs(directory):
            # Files saved before the commit may have left temporaries of killed writers (the
            # rebuild of the index reclaims those of directories never committed).
            reclaim_temporaries(directory)
        if durable:
            # Whoever created the directory (save_file before commit, perhaps not durably),
            # its entry in the root must be on disk before the record that makes it visible.
            parent = os.path.dirname(directory)
            fsync_directory(parent)
            if parent != self.root:
                fsync_directory(self.root)
        return atomic_write(os.path.join(directory, RECORD_FILE), data, durable=durable, exclusive=True)

    def iter_ids(self, prefix: str = "") -> Iterator[str]:
        root, shard, isfile = self.root, self.shard, os.path.isfile
        for id in self.iter_directories(prefix):
            if isfile(os.path.join(interface_directory(root, id, shard), RECORD_FILE)):
                yield id

    def local_root(self) -> str:
        return self.root

    def storage_id(self) -> str | None:
        # The path may differ between hosts (mount points): a token inside the storage does not.
        if self._storage_id is None:
            path = os.path.join(self.root, STORAGE_META_DIR, STORAGE_ID_FILE)
            found = read_small_file(path)
            if found is None:
                token = (os.urandom(16).hex() + "\n").encode()
                try:
                    makedirs(os.path.dirname(path))
                    atomic_write(path, lambda handle: handle.write(token), exclusive=True)
                except StorageError:
                    return None  # read-only storage: nothing to check against
                found = read_small_file(path)
            self._storage_id = found.decode("ascii", "replace").strip() if found else None
        return self._storage_id

    def iter_directories(self, prefix: str = "") -> Iterator[str]:
        # A list's iterator, not a generator: `set()` of 100,000 names takes a third of the time.
        found: list[str] = []
        for directory in self._parents(prefix):
            try:
                # listdir, not scandir: names are all that is needed, at half the cost.
                names = os.listdir(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise StorageError(exc.errno or 0, f"could not list {directory}: {exc.strerror}") from exc
            found += _ids_among(names, prefix)
        return iter(found)

    def _parents(self, prefix: str) -> list[str]:
        """The directories whose entries are interface directories (those `prefix` allows)."""
        shard = self.shard
        if not shard:
            return [self.root]
        if len(prefix) >= shard:
            return [os.path.join(self.root, prefix[:shard])]
        return [os.path.join(self.root, name) for name in self._shard_names() if name.startswith(prefix)]

    def _shard_names(self, root: str | int | None = None) -> list[str]:
        """The shard directory names in the root (or a file among them, which listing skips)."""
        valid = _valid_shards(self.shard)
        try:
            return sorted(name for name in os.listdir(self.root if root is None else root) if name in valid)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def listing_state(self) -> tuple[str, int] | None:
        try:
            root_mtime = os.stat(self.root).st_mtime_ns
        except FileNotFoundError:
            return ("0", 0)
        if not self.shard:
            return (str(root_mtime), root_mtime)
        parts = self.listing_parts() or {}
        times = [root_mtime, *(mtime for _, mtime in parts.values())]
        return (f"{len(times)}:{sum(times)}:{max(times)}", max(times))

    def listing_parts(self) -> dict[str, tuple[str, int]] | None:
        if not self.shard:
            return None
        # What the index asks before every query: one stat per shard (relative to the root's
        # descriptor), the root listed again only when its time changed or was recent.
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        try:
            info = os.fstat(fd)
            key = (info.st_ino, info.st_mtime_ns)
            cached = self._shards
            if cached is not None and cached[0] == key and cached[1] - info.st_mtime_ns >= SETTLE_NS:
                names = cached[2]
            else:
                listed_at = time.time_ns()
                names = self._shard_names(fd)
                self._shards = (key, listed_at, names)
            # A directory added or removed changes its shard directory's time, not the root's.
            # The inode is in the token too: a shard directory replaced by another (a restore)
            # with the same time is a change.
            parts: dict[str, tuple[str, int]] = {}
            for name in names:
                try:
                    found = os.stat(name, dir_fd=fd)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if stat.S_ISDIR(found.st_mode):
                    parts[name] = (f"{found.st_ino}:{found.st_mtime_ns}", found.st_mtime_ns)
            return parts
        finally:
            os.close(fd)

    def read_file(self, id: str, name: str) -> bytes | None:
        return read_local_file(os.path.join(self.local_directory(id), name))
