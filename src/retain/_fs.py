"""The one path by which bytes reach disk: a unique temporary file beside the target, then an
atomic rename (or an exclusive hard link when the first writer must win)."""

from __future__ import annotations

import errno
import os

from ._errors import StorageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import BinaryIO

TEMP_PREFIX = ".retain-tmp-"
#: A directory listed less than this after its last change may have changed again since
#: without its time showing it: file system clocks are coarse (a jiffy locally, 1-2 s on some
#: file systems), so a later change in the same tick keeps the same mtime.
SETTLE_NS = 2_000_000_000


def temp_path_for(path: str) -> str:
    directory, name = os.path.split(path)
    # pid + random token: unique across processes and across hosts sharing one file system.
    return os.path.join(directory, f"{TEMP_PREFIX}{name[:64]}.{os.getpid()}.{os.urandom(5).hex()}")


#: A temporary file untouched for this long (seconds, by its mtime) whose writer is not a live
#: process of this host is the leftover of a killed writer: `reclaim_temporaries` removes it.
ABANDONED_AFTER = 3600.0
#: Past this age its writer is taken as gone even if a process has its pid (pids are reused).
CERTAINLY_ABANDONED_AFTER = 7 * 86400.0


def reclaim_temporaries(directory: str, *, older_than: float = ABANDONED_AFTER) -> int:
    """Remove the temporary files (`TEMP_PREFIX`) that killed writers left in `directory` and
    its sub-directories (never through a symbolic link); returns how many.

    One is removed when it was last written more than `older_than` seconds ago and the pid in
    its name is not a live process here (or more than `CERTAINLY_ABANDONED_AFTER` ago): a live
    writer keeps its file's mtime recent, or is alive; a writer on another host that stays
    silent for an hour mid-write is the risk taken."""
    removed = 0
    for path, _ in abandoned_temporaries(directory, older_than=older_than):
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:  # reclaimed by another process meanwhile
            continue
    return removed


def abandoned_temporaries(
    directory: str, *, older_than: float = ABANDONED_AFTER, skip: str | None = None
) -> Iterator[tuple[str, float]]:
    """(path, age in seconds) of each temporary file that a killed writer left in `directory`
    and its sub-directories (see `reclaim_temporaries`), never through a symbolic link nor
    into the directory `skip`."""
    import time

    now = time.time()
    pending = [directory]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.path != skip:
                            pending.append(entry.path)
                    elif entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                        age = now - entry.stat(follow_symlinks=False).st_mtime
                        if is_abandoned(entry.name, age, older_than):
                            yield entry.path, age
                except FileNotFoundError:  # renamed into place, or reclaimed meanwhile
                    continue


def is_abandoned(name: str, age: float, older_than: float = ABANDONED_AFTER) -> bool:
    """Whether the temporary file `name`, last written `age` seconds ago, is a killed writer's
    leftover (see `reclaim_temporaries`)."""
    return age > older_than and (age > CERTAINLY_ABANDONED_AFTER or not writer_alive(name))


def writer_alive(name: str) -> bool:
    """Whether the pid `temp_path_for` put in `name` is a live process on this host."""
    parts = name.rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except (OverflowError, OSError):
        return True  # another user's process, or cannot tell: keep the file
    return True


def read_small_file(path: str) -> bytes | None:
    """The bytes of a small file, or None if it does not exist.

    Half the time of ``open(path, "rb").read()``, which matters when the index reads every
    record of a storage.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        data = os.read(fd, 16384)
        if len(data) == 16384:
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; nothing more we can do
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def bytes_under(path: str) -> int:
    """The bytes the files under directory `path` take (or file `path` itself; 0 if gone)."""
    total = 0
    for parent, _, names in os.walk(path) if os.path.isdir(path) else [("", [], [path])]:
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                continue
    return total


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to descriptor `fd` (a short write goes on with the rest)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_new(path: str, data: bytes, durable: bool) -> None:
    """Create `path` with `data`: through the descriptor, without a buffered file object (half
    the CPU of ``open(path, "xb")`` for the small files of a commit or a run)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


#: Whether `_create_unnamed` may be tried: Linux's O_TMPFILE (cleared at its first refusal).
_TMPFILE = [True] if hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd") else []
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EISDIR, errno.EINVAL, errno.EXDEV, errno.EPERM}


def _create_unnamed(path: str, data: bytes, durable: bool) -> bool | None:
    """Create `path` with `data` unless it exists, from an unnamed file (O_TMPFILE) linked
    into place once complete: one directory entry made instead of a temporary name made, linked
    and removed (15% of the wall time and 25% of the CPU of an exclusive create, measured on
    this project's ext4), and nothing for a killed writer to leave behind. True when published,
    False when `path` existed; None where the file system cannot (then the caller names a
    temporary file).
    """
    directory = os.path.dirname(path) or "."
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:
            _TMPFILE.clear()  # this file system (most likely every one here) cannot
        return None  # (a missing directory is reported by the usual path)
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
        parent = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            # A dir_fd makes os.link use linkat(AT_SYMLINK_FOLLOW): the descriptor's file is
            # linked, not the /proc symbolic link.
            os.link(f"/proc/self/fd/{fd}", os.path.basename(path), dst_dir_fd=parent)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno in _NO_TMPFILE:
                _TMPFILE.clear()
                return None
            raise
        finally:
            os.close(parent)
    except OSError as exc:
        raise StorageError(exc.errno or 0, f"could not write {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if durable:
        fsync_directory(directory)
    return True


def atomic_write(
    path: str,
    write: Callable[[BinaryIO], object] | bytes,
    *,
    durable: bool = False,
    exclusive: bool = False,
) -> bool:
    """Write `path` so that readers see either nothing (or the old file) or the complete file.

    Args:
        path: the final path; its directory must exist.
        write: called with a binary file open on a temporary name beside `path`; or the
            bytes to write.
        durable: fsync the file and its directory (survives power loss, not only a kill).
        exclusive: publish only if `path` does not exist yet (first writer wins).

    Returns:
        False when `exclusive` and another writer published `path` first; True otherwise.

    Raises:
        StorageError: the file system refused (no space, no permission, read-only).
    """
    if exclusive and isinstance(write, bytes) and _TMPFILE:
        published = _create_unnamed(path, write, durable)
        if published is not None:
            return published
    tmp = temp_path_for(path)
    try:
        if isinstance(write, bytes):
            _write_new(tmp, write, durable)
        else:
            with open(tmp, "xb") as handle:
                write(handle)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
        if exclusive:
            published = _publish_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
            published = True
    except BaseException as exc:
        code = exc.errno if isinstance(exc, OSError) else None
        if isinstance(exc, OSError) and not code and _nearly_full(tmp):
            code = errno.ENOSPC  # measured before the unlink below frees the space again
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            reason = os.strerror(code) if code and code != exc.errno else (exc.strerror or str(exc))
            raise StorageError(code or 0, f"could not write {path}: {reason}") from exc
        raise
    if durable:
        fsync_directory(os.path.dirname(path) or ".")
    return published


def _nearly_full(path: str) -> bool:
    """Whether the file system of `path` has (almost) no space left.

    A short write through C stdio (numpy's ``tofile``, behind ``np.save``) reaches Python as
    an OSError without an errno ("16384 requested and 6640 written"); a full disk is then the
    likely cause, and this tells whether it is."""
    try:
        facts = os.statvfs(os.path.dirname(path) or ".")
    except (OSError, AttributeError):  # no statvfs on Windows: say what the writer said
        return False
    return facts.f_bavail * facts.f_frsize < _NEARLY_FULL


_NEARLY_FULL = 1 << 20  # less than the buffer of one more write


def _publish_exclusive(tmp: str, path: str) -> bool:
    """Move complete file `tmp` to `path` unless `path` exists; `tmp` is gone afterwards."""
    try:
        os.link(tmp, path)
        os.unlink(tmp)
        return True
    except FileExistsError:
        os.unlink(tmp)
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
    # File systems without hard links (some FUSE and SMB mounts): rename the complete file
    # into place unless a record is already there. Two committers racing inside this window
    # may both rename; each record is complete and of the same identity, so readers still
    # never see a partial record; only "first writer wins" weakens to "one writer wins".
    if os.path.exists(path):
        os.unlink(tmp)
        return False
    os.replace(tmp, path)
    return True


def append_bytes(path: str, data: bytes, *, durable: bool = False) -> None:
    """Append `data` to `path` (created if missing) with O_APPEND: on a local file system one
    write lands whole after whatever others appended; a short write goes on with the rest.

    Raises:
        StorageError: the file system refused.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StorageError(exc.errno or 0, f"could not append to {path}: {exc.strerror}") from exc


def makedirs(path: str, *, durable: bool = False) -> bool:
    """Create directory `path` and its missing parents; with `durable`, fsync the parent of
    each directory created so that the new entries survive a power loss. Returns whether
    `path` was created (False: it existed)."""
    try:
        return _makedirs(path, durable)
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(
            exc.errno or 0, f"could not create directory {path}: {exc.strerror or exc}"
        ) from exc


def _makedirs(path: str, durable: bool) -> bool:
    # One mkdir in the common case, where os.makedirs would stat every ancestor first.
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return False
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if not parent or parent == path:
            raise
        _makedirs(parent, durable)
        try:
            os.mkdir(path)
        except FileExistsError:
            return False
    if durable:
        fsync_directory(os.path.dirname(path) or ".")
    return True
