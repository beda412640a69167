"""Self-repair and rebuild: how an index catches up with its storage, the source of truth.

`sync` runs before every query and is cheap when nothing happened behind the index's back:
two `stat` calls and one read of the index's bookkeeping. It finds

- ids committed by a process that died before updating the index (or whose update failed):
  commit appends the id to the storage's journal *before* publishing the record, and `sync`
  reads the journal past the offset it recorded;
- directories copied in by hand (rsync, ``cp -r``) or deleted: when the storage root's
  modification time differs from the one recorded at the last scan (or that scan was too
  close to the recorded time to trust a coarse clock), the root's names are compared with the
  index's ids;
- directories seen without a record (a commit in flight, a copy in progress): they are kept
  as *pending* and checked on every `sync` until their record appears or they vanish.
"""

from __future__ import annotations

import os
import time

from .._errors import IndexDatabaseError, RecordError
from ..identity import ID_LENGTH, is_id
from ..storage.layout import (
    JOURNAL_COMMIT,
    RECORD_FILE,
    SUMMARY_FILE,
    decode_journal,
    decode_summary,
    index_fields,
    journal_path,
    summary_text,
)
from ..storage.local import LocalStorage
from .base import IndexEntry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from ..storage.base import Storage
    from .base import Index

#: A root scanned less than this after its last change is scanned again next time: file
#: system clocks are coarse (a later change in the same tick would keep the same mtime).
SETTLE_NS = 2_000_000_000
#: How long a journaled id whose directory does not exist yet stays pending (its commit may
#: be between the journal append and the directory's creation).
PENDING_WITHOUT_DIRECTORY_NS = 120_000_000_000
#: Records read per transaction while catching up (bounds memory and lock time).
BATCH = 5_000


def read_entry(storage: LocalStorage, id: str) -> IndexEntry | None:
    """The entry of `id` from its record and summary; None without a record.

    Raises:
        RecordError: the record or summary is corrupted.
    """
    directory = f"{storage.root}/{id}"
    where = f"{directory}/{RECORD_FILE}"
    data = _read(where)
    if data is None:
        return None
    entry = IndexEntry.from_fields(index_fields(data, where, id))
    summary = _read(f"{directory}/{SUMMARY_FILE}")
    if summary is not None:
        entry.summary_text = summary_text(summary)
    return entry


def _read(path: str) -> bytes | None:
    """The bytes of a small file, or None if it does not exist. Half the time of
    ``open(path, "rb").read()``, which matters when reading every record of a storage."""
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


def read_summary(directory: str) -> dict[str, Any] | None:
    where = os.path.join(directory, SUMMARY_FILE)
    try:
        with open(where, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return decode_summary(data, where)


def _names(root: str, check: bool = True) -> set[str]:
    """The names in `root` that are ids (with `check`; else merely id-long, a superset that is
    much cheaper to build: check only the ones that matter)."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return set()
    if not check:
        return {name for name in names if len(name) == ID_LENGTH}
    return {name for name in names if len(name) == ID_LENGTH and is_id(name)}


def sync(index: Index, storage: Storage) -> None:
    """Bring `index` up to date with `storage` (see the module docstring)."""
    if not isinstance(storage, LocalStorage):
        return  # remote storages have no journal or directory times; rebuild() still works
    import json

    root = storage.root
    meta = index.get_meta()
    updates: dict[str, str] = {}
    fresh = meta.get("storage") != root
    if fresh:
        updates["storage"] = root
    now = time.time_ns()
    committed: set[str] = set()  # journaled commits: indexed unless already present
    reread: set[str] = set()  # ids whose record or summary must be read again

    path = journal_path(root)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        inode = str(info.st_ino)
        offset = int(meta.get("journal_offset", "0")) if meta.get("journal_inode") == inode and not fresh else 0
        if offset > info.st_size:
            offset = 0  # the journal was truncated or replaced: read it again
        if info.st_size > offset:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(info.st_size - offset)
            lines, used = decode_journal(data)
            for id, kind in lines:
                (committed if kind == JOURNAL_COMMIT else reread).add(id)
            updates["journal_inode"] = inode
            updates["journal_offset"] = str(offset + used)

    try:
        root_mtime = os.stat(root).st_mtime_ns
    except FileNotFoundError:
        root_mtime = 0
    removed: set[str] = set()
    stored = meta.get("root_mtime_ns")
    settled = (
        not fresh
        and stored == str(root_mtime)
        and int(meta.get("root_scanned_ns", "0")) - root_mtime >= SETTLE_NS
    )
    if not settled:
        names = _names(root, check=False)
        known = index.ids()
        reread |= {name for name in names - known if is_id(name)}
        removed = known - names
        committed -= names  # the scan decided about these already
        updates["root_mtime_ns"] = str(root_mtime)
        updates["root_scanned_ns"] = str(now)

    pending_text = meta.get("pending", "{}")
    pending: dict[str, int] = json.loads(pending_text) if pending_text != "{}" else {}
    if committed:
        reread |= committed - index.present(committed)
    reread |= pending.keys()
    reread -= removed

    new_pending: dict[str, int] = {}
    entries: list[IndexEntry] = []
    for id in reread:
        try:
            entry = read_entry(storage, id)
        except RecordError:
            entry = None  # a copy in progress, or a damaged record: look again next time
        if entry is None:
            since = pending.get(id, now)
            if os.path.isdir(os.path.join(root, id)) or now - since < PENDING_WITHOUT_DIRECTORY_NS:
                new_pending[id] = since
            elif id not in removed:
                removed.add(id)
            continue
        entries.append(entry)
        if len(entries) >= BATCH:
            index.upsert(entries)
            entries = []
    if entries:
        index.upsert(entries)
    if removed:
        index.remove(removed)
    if new_pending != pending:
        updates["pending"] = json.dumps(new_pending, sort_keys=True)
    if updates:
        index.set_meta(updates)


def rebuild(index: Index, storage: Storage, progress: Callable[[int, int], object] | bool | None = None) -> int:
    """Replace the contents of `index` by what `storage` holds; returns the number indexed.

    Records that cannot be read are skipped with a warning that names them (they stay pending,
    so the index takes them once repaired).
    """
    if not isinstance(storage, LocalStorage):
        raise IndexDatabaseError(
            f"rebuild needs a storage with a local directory; {storage!r} has none"
        )
    import json
    import warnings

    from .._errors import IndexWarning

    root = storage.root
    # Observed before listing: anything that changes during the rebuild changes these too,
    # and the next sync looks again.
    now = time.time_ns()
    try:
        info: os.stat_result | None = os.stat(journal_path(root))
    except FileNotFoundError:
        info = None
    try:
        root_mtime = os.stat(root).st_mtime_ns
    except FileNotFoundError:
        root_mtime = 0
    names = sorted(_names(root))
    total = len(names)
    report = _progress_reporter(progress, total)
    pending: dict[str, int] = {}
    damaged: list[str] = []
    meta = {
        "storage": root,
        "journal_inode": str(info.st_ino) if info is not None else "",
        "journal_offset": str(info.st_size) if info is not None else "0",
        "root_mtime_ns": str(root_mtime),
        "root_scanned_ns": str(now),
    }
    try:
        index.get_meta()
    except IndexDatabaseError:
        # Corrupt, or from a newer schema: the index is only a cache, start it afresh.
        index.reset()

    def read(chunk: list[str]) -> list[IndexEntry]:
        entries = []
        for id in chunk:
            try:
                entry = read_entry(storage, id)
            except RecordError as exc:
                damaged.append(f"{id}: {exc}")
                entry = None
            if entry is None:
                pending[id] = now
            else:
                entries.append(entry)
        return entries

    def entries() -> Iterator[IndexEntry]:
        done = 0
        for start in range(0, total, 1000):
            yield from read(names[start:start + 1000])
            done += 1000
            if report is not None:
                report(min(done, total))
        if report is not None and total == 0:
            report(0)
        # Known only now; replace_all sets the meta after the last entry.
        meta["pending"] = json.dumps(pending, sort_keys=True)

    count = index.replace_all(entries(), meta)
    if damaged:
        shown = "\n  ".join(damaged[:20]) + (f"\n  and {len(damaged) - 20} more" if len(damaged) > 20 else "")
        warnings.warn(
            f"rebuild skipped {len(damaged)} damaged record(s) in {root}; they are indexed once "
            f"repaired:\n  {shown}",
            IndexWarning,
            stacklevel=3,
        )
    return count


def _progress_reporter(progress: Any, total: int) -> Callable[[int], None] | None:
    if progress is None or progress is False:
        return None
    if progress is True:
        import sys

        started = time.perf_counter()

        def show(done: int) -> None:
            elapsed = time.perf_counter() - started
            end = "\n" if done == total else ""
            sys.stderr.write(f"\rrebuilding index: {done:,}/{total:,} records ({elapsed:.1f} s){end}")
            sys.stderr.flush()

        return show
    if not callable(progress):
        raise TypeError(f"progress must be a function (done, total) or True; got {progress!r}")

    def call(done: int) -> None:
        progress(done, total)

    return call
