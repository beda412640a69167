"""The storage contract: a handful of primitives every backend implements."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

from .._errors import StorageError
from .._fs import TEMP_PREFIX, append_bytes, atomic_write, bytes_under, fsync_directory, makedirs, read_small_file
from .layout import RECORD_FILE, RESERVED_PREFIX, STORAGE_META_DIR, SUMMARY_FILE, decode_summary, journal_path, removal_area

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Iterator
    from typing import Any


__all__ = ["Storage", "read_local_file"]


class Storage(ABC):
    """Where committed interfaces live: one directory of files and one record per id.

    A backend implements the primitives (`url`, `local_directory`, `read_record`,
    `publish_record`, `iter_ids`); everything else in retain is built on them. The record is
    the commit: `publish_record` must make it visible atomically and only once.

    The other methods have defaults that suit a storage whose directories are local (or
    mounted) paths; a remote backend (an object store) overrides them. Among them are the
    file primitives that runs build on (claims, heartbeats, ends, logs: see
    `retain.runs.files.RunFiles`): `read_file`, `has_file`, `create_file` (first writer wins),
    `replace_file` and `append_file`, on one named file of an id, and `list_folder` (the files
    of one folder of an id: annotation events); `list_meta`, a folder of the storage's own
    files; and removal: `remove` (an id whole, atomically for readers) and `delete_file` (one
    file, for reruns). Abilities are the boolean ``supports_*`` attributes, and `is_remote`.
    """

    #: Files of an interface can be read and written through a local path.
    supports_local_files: bool = True
    #: `publish_record` is atomic first-writer-wins, also between machines. Where False, two
    #: committers racing on one identity may both believe they won: each record is complete
    #: and of the same identity, and one of them stays.
    supports_exclusive_create: bool = True
    #: Components can run on this storage (claims, heartbeats and logs in their directory).
    supports_runs: bool = True
    #: The interface directories live elsewhere and `local_directory()` is a local cache of
    #: them: files written there are sent with `upload_file`, missing ones got with
    #: `local_file`, and a commit uploads the directory before publishing the record.
    is_remote: bool = False

    @property
    @abstractmethod
    def url(self) -> str:
        """A string that names this storage (a path or URL), accepted by `make_storage`."""

    @abstractmethod
    def local_directory(self, id: str) -> str:
        """The local path of the directory that holds the files of `id` (may not exist)."""

    def prepare_directory(self, id: str) -> str:
        """`local_directory(id)`, once the storage is ready for it to be created: what every
        writer calls before it creates the directory (a new `LocalStorage` settles its layout
        here, so every process puts the directory at one place). Reads never call it.

        Raises:
            StorageError: the storage cannot be written, or its layout conflicts.
        """
        return self.local_directory(id)

    @abstractmethod
    def read_record(self, id: str) -> bytes | None:
        """The record bytes of `id`, or None when `id` is not committed."""

    @abstractmethod
    def publish_record(self, id: str, data: bytes, *, durable: bool = False) -> bool:
        """Make the record of `id` visible, atomically; False if it already was (first wins).

        A remote storage uploads the files in ``local_directory(id)`` first: the record is
        always the last thing written."""

    @abstractmethod
    def iter_ids(self, prefix: str = "") -> Iterator[str]:
        """The committed ids that start with `prefix`, in no particular order."""

    def has_record(self, id: str) -> bool:
        """Whether `id` is committed."""
        return self.read_record(id) is not None

    # -- removal ---------------------------------------------------------------------------

    def remove(self, id: str, *, durable: bool = False) -> bool:
        """Remove the record and every file of `id`, atomically for readers: during the call,
        and after a crash at any point of it, `id` is either whole or not committed (its
        leftovers invisible, finished by the next removal). True when `id` was committed.

        The default renames the directory into the removal area
        (``<root>/.retain/removing/``, see `retain.storage.layout`), then deletes it.

        Raises:
            StorageError: the storage cannot be written.
        """
        root = self.local_root()
        if root is None:
            raise StorageError(f"{self.url} has no place for its own files (.retain/): it cannot remove")
        directory = self.local_directory(id)
        committed = self.has_record(id)
        area = removal_area(root)
        makedirs(area, durable=durable)
        target = f"{area}/{id}.{os.getpid()}.{os.urandom(4).hex()}"
        try:
            # The commit point: one rename, after which <root>/<id>/ is absent.
            os.rename(directory, target)
        except FileNotFoundError:
            return False  # nothing there (or another process removed it first)
        except OSError as exc:
            raise StorageError(exc.errno or 0, f"could not remove {directory}: {exc.strerror or exc}") from exc
        if durable:
            fsync_directory(os.path.dirname(directory))
            fsync_directory(area)
        self.finish_removals()
        return committed

    def finish_removals(self) -> None:
        """Delete what removals left behind (a crash after their commit point): invisible
        leftovers, never a committed interface."""
        root = self.local_root()
        if root is None:
            return
        area = removal_area(root)
        try:
            names = os.listdir(area)
        except FileNotFoundError:
            return
        import shutil  # here: `import retain` does not load shutil

        for name in names:
            # Two removers may delete one leftover at once: whatever vanishes meanwhile is fine.
            shutil.rmtree(os.path.join(area, name), ignore_errors=True)

    def unfinished_removals(self) -> list[str]:
        """The ids whose removal a crash interrupted where leftovers could still look like a
        directory of the id (an object store); the index drops them at its next listing."""
        return []

    def size(self, id: str) -> int:
        """The bytes the files of `id` take in the storage (its record and run files included)."""
        return bytes_under(self.local_directory(id))

    # -- files of a remote storage (no-ops where local_directory() is the storage) ---------

    def upload_file(self, id: str, name: str) -> None:
        """Send file `name` (relative, ``/``-separated) of ``local_directory(id)`` to the store."""

    def upload_files(self, id: str, names: list[str]) -> None:
        """`upload_file` of several files of `id` (concurrently where the store can)."""
        for name in names:
            self.upload_file(id, name)

    def local_file(self, id: str, name: str, *, committed: bool) -> bool:
        """Whether file `name` of `id` is in ``local_directory(id)``, as the storage holds it:
        a remote storage fetches it when missing there, or (`committed`) when the store holds
        another version (saved again elsewhere)."""
        return os.path.isfile(os.path.join(self.local_directory(id), *name.split("/")))

    def has_file(self, id: str, name: str) -> bool:
        """Whether file `name` of `id` exists, in ``local_directory(id)`` or in the store."""
        return os.path.lexists(os.path.join(self.local_directory(id), *name.split("/")))

    def ids_with_file(self, ids: Iterable[str], name: str) -> set[str]:
        """The ids among `ids` that have file `name` (`has_file` of each; a store may ask in
        bulk): what `retain.status` and `launch` use to find the finished among many."""
        return {id for id in ids if self.has_file(id, name)}

    def list_files(self, id: str) -> list[str]:
        """The files of `id` as the storage holds them (relative, ``/``-separated, sorted),
        without retain's runtime files (``.retain*``) and unfinished writes."""
        directory = self.local_directory(id)
        out = []
        for parent, dirs, names in os.walk(directory):
            dirs[:] = [d for d in dirs if not d.startswith((TEMP_PREFIX, RESERVED_PREFIX))]
            for name in names:
                if not name.startswith((TEMP_PREFIX, RESERVED_PREFIX)):
                    out.append(os.path.relpath(os.path.join(parent, name), directory).replace(os.sep, "/"))
        return sorted(out)

    def stored_files(self, id: str) -> list[str]:
        """Every file of `id` as the storage holds it (relative, ``/``-separated, sorted),
        retain's runtime files and annotations included, without unfinished writes
        (temporaries) and the record: what moving `id` to another storage carries."""
        directory = self.local_directory(id)
        out = []
        for parent, dirs, names in os.walk(directory):
            dirs[:] = [d for d in dirs if not d.startswith(TEMP_PREFIX)]
            for name in names:
                if not name.startswith(TEMP_PREFIX):
                    out.append(os.path.relpath(os.path.join(parent, name), directory).replace(os.sep, "/"))
        return sorted(name for name in out if name != RECORD_FILE)

    def list_folder(self, id: str, folder: str) -> list[str]:
        """The names of the files directly in folder `folder` (relative, ``/``-separated) of
        `id`, as the storage holds them, sorted, without unfinished writes; [] when there is no
        such folder (one failed ``listdir`` on a local storage).

        Raises:
            StorageError: the folder exists but cannot be listed.
        """
        return _listdir(self._local_path(id, folder))

    # -- the storage's own files (``.retain/``), shared by every machine -------------------

    def list_meta(self, folder: str) -> list[str]:
        """The names of the files in the storage's own folder ``.retain/<folder>``, sorted;
        [] when it does not exist.

        Raises:
            StorageError: the folder exists but cannot be listed.
        """
        root = self.local_root()
        if root is None:
            return []
        return _listdir(os.path.join(root, STORAGE_META_DIR, *folder.split("/")))

    def read_meta(self, name: str) -> bytes | None:
        """The storage's own file ``.retain/<name>`` (``/``-separated) as every machine that
        uses the storage sees it, or None when it does not exist."""
        root = self.local_root()
        if root is None:
            return None
        return read_small_file(os.path.join(root, STORAGE_META_DIR, *name.split("/")))

    def create_meta(self, name: str, data: bytes, *, durable: bool = False) -> bool:
        """Create the storage's own file ``.retain/<name>`` unless it exists: the first writer
        wins, on every machine. False when it existed.

        Raises:
            StorageError: the storage cannot be written.
        """
        root = self.local_root()
        if root is None:
            raise StorageError(f"{self.url} has no place for its own files (.retain/)")
        path = os.path.join(root, STORAGE_META_DIR, *name.split("/"))
        makedirs(os.path.dirname(path), durable=durable)
        return atomic_write(path, data, durable=durable, exclusive=True)

    # -- what the index reads --------------------------------------------------------------

    def local_root(self) -> str | None:
        """The local directory that holds the storage's own files (``.retain/``: the default
        index and its journal): the root of a local storage, the cache of a remote one; None
        when there is none (then there is no default index)."""
        return None

    def storage_id(self) -> str | None:
        """A name of this storage that is the same on every host that uses it (however it is
        mounted there): what a shared index checks that it serves. None when it cannot tell."""
        return self.url

    def iter_directories(self, prefix: str = "") -> Iterator[str]:
        """The ids that start with `prefix` and have a directory, committed or not (a commit
        in flight, a save before commit): a listing, without reading records."""
        return self.iter_ids(prefix)

    def has_directory(self, id: str) -> bool:
        """Whether `id` has a directory (committed or not)."""
        return os.path.isdir(self.local_directory(id))

    def listing_state(self) -> tuple[str, int] | None:
        """A token that changes whenever a directory is added or removed, and the time (ns) of
        the newest such change; None when the storage cannot tell cheaply (the index then
        lists it again after a while)."""
        return None

    def listing_parts(self) -> dict[str, tuple[str, int]] | None:
        """The listing in parts that change apart: for each id prefix whose directories are
        listed together (`iter_directories(prefix)`), a token that changes whenever one of
        them is added or removed and the time (ns) of the newest such change. None when the
        listing is one piece (`listing_state` tells about it all). The index then lists only
        the parts whose token changed."""
        return None

    # -- the files of an id, one at a time (what runs build on) -----------------------------

    def read_file(self, id: str, name: str) -> bytes | None:
        """The bytes of file `name` of `id` as the storage holds it, or None if missing.

        Raises:
            StorageError: the file exists but cannot be read.
        """
        return read_local_file(self._local_path(id, name))

    def create_file(self, id: str, name: str, data: bytes, *, durable: bool = False) -> bool:
        """Write file `name` of `id` unless it exists, atomically: readers see all of `data`
        or no file, and of writers racing to create it exactly one wins (on every machine
        where `supports_exclusive_create`). False when it existed. The directory of `id`
        must exist (``local_directory(id)`` where the storage is local).

        Raises:
            StorageError: the storage cannot be written.
        """
        path = self._local_path(id, name)
        return atomic_write(path, data, durable=durable, exclusive=True)

    def replace_file(self, id: str, name: str, data: bytes, *, durable: bool = False) -> None:
        """Write file `name` of `id`, atomically, over any earlier version (readers see the old
        or the new file, whole).

        Raises:
            StorageError: the storage cannot be written.
        """
        atomic_write(self._local_path(id, name), data, durable=durable)

    def append_file(self, id: str, name: str, data: bytes, *, durable: bool = False) -> None:
        """Add `data` at the end of file `name` of `id` (created if missing). Appends of
        writers racing on one file all land, each whole (a line never interleaves with
        another's).

        Raises:
            StorageError: the storage cannot be written.
        """
        append_bytes(self._local_path(id, name), data, durable=durable)

    def delete_file(self, id: str, name: str) -> None:
        """Delete file `name` of `id` (nothing happens when it is missing): what a rerun does
        to the files of the run it replaces.

        Raises:
            StorageError: the storage cannot be written.
        """
        path = self._local_path(id, name)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(exc.errno or 0, f"could not delete {path}: {exc.strerror or exc}") from exc

    def _local_path(self, id: str, name: str) -> str:
        return os.path.join(self.local_directory(id), *name.split("/"))

    def read_summary(self, id: str) -> dict[str, Any] | None:
        """The summary values of `id` (from its ``summary.json``), or None when it has none.

        Raises:
            RecordError: the summary file is damaged.
        """
        data = self.read_file(id, SUMMARY_FILE)
        return None if data is None else decode_summary(data, f"{self.url}/{id}/{SUMMARY_FILE}")

    def change_token(self) -> Hashable | None:
        """A value that changes whenever this machine commits a result, records a summary or
        last metric value, or a directory is added or removed; None when the storage cannot
        tell cheaply (then ask again after a while). For views that cache what they show."""
        root = self.local_root()
        if root is None:
            return None
        try:
            info = os.stat(journal_path(root))
            journal: tuple[int, int] = (info.st_size, info.st_mtime_ns)
        except OSError:
            journal = (0, 0)
        return (journal, self.listing_state())

    def read_files(self, items: Iterable[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """`read_file` of many ``(id, name)`` pairs (concurrently where the store can); the
        missing ones are left out."""
        out = {}
        for id, name in items:
            data = self.read_file(id, name)
            if data is not None:
                out[(id, name)] = data
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Storage):
            return type(self) is type(other) and self.url == other.url
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self), self.url))


def _listdir(path: str) -> list[str]:
    try:
        names = os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise StorageError(exc.errno or 0, f"could not list {path}: {exc.strerror or exc}") from exc
    return sorted(name for name in names if not name.startswith(TEMP_PREFIX))


def read_local_file(path: str) -> bytes | None:
    """The bytes of local file `path`, or None if it does not exist.

    Raises:
        StorageError: it exists but cannot be read.
    """
    try:
        return read_small_file(path)
    except OSError as exc:
        raise StorageError(exc.errno or 0, f"could not read {path}: {exc.strerror or exc}") from exc
