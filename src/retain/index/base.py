"""The index contract: a few primitives per backend; repair, rebuild and filtering derived.

An index is a query catalogue over one storage, and only a cache: every row can be rebuilt
from the records. A backend implements `upsert`, `remove`, `replace_all`, `select`, `count`,
`ids`, `set_tags`, `tags`, `get_meta`, `set_meta` and `reset`; the base derives adding a record, evaluating summary
conditions, self-repair (`sync`) and `rebuild` from them. Optional abilities are `supports_*`
booleans.

Self-repair: `Index.sync` runs before every query and is cheap when nothing happened behind the
index's back: two `stat` calls and one read of the index's bookkeeping. It finds

- ids committed by a process that died before updating the index (or whose update failed):
  commit appends the id to the storage's journal *before* publishing the record, and `sync`
  reads the journal past the offset it recorded;
- directories copied in by hand (rsync, ``cp -r``) or deleted: when the storage's listing
  token (`Storage.listing_state`: the root's modification time) differs from the one recorded
  at the last scan (or that scan was too close to the recorded time to trust a coarse clock),
  the storage's listing (`Storage.iter_directories`) is compared with the index's ids. A
  storage whose listing comes in parts (`Storage.listing_parts`: the shards of a sharded
  layout) has a token per part, and only the parts whose token changed are listed and
  compared with the index's ids of their prefix (`Index.ids_with_prefix`);
- directories seen without a record (a commit in flight, a copy in progress): they are kept
  as *pending* and checked on every `sync` until their record appears or they vanish;
- ids removed (`Storage.remove`) by a process that died before updating the index: removal
  appends an ``r`` line to the journal first, and `sync` drops every such id whose record is
  absent (an object store's interrupted removals are also listed with each listing);
- tags changed (`Interface.tag`) by a process that died before updating the index: a ``t``
  line is appended before the change, and `sync` reads the tags of those ids again.

An object store has no cheap change token: it is listed again when its last listing is older
than `RELIST_NS` (its pending directories are looked at then too), while the journal in its
local cache brings this machine's commits at once.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from abc import ABC, abstractmethod

from .._errors import IndexDatabaseError, IndexWarning
from .. import _fs
from .._fs import reclaim_temporaries
from .._log import logger
from ..query import Condition, Field, Filter, Query
from ..storage import annotation_files as tag_events
from ..storage.layout import (
    ANNOTATIONS_FOLDER,
    JOURNAL_ANNOTATE,
    JOURNAL_COMMIT,
    JOURNAL_REMOVE,
    STORAGE_META_DIR,
    decode_journal,
    journal_path,
)
from ._entry import (
    IndexEntry as IndexEntry, Listing as Listing, config_leaves as config_leaves, filter_rows,
    parse_summary as parse_summary, table_row as table_row,
)
from ._records import read_entries

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
    from typing import Any, ClassVar

    from ..storage.base import Storage
    from ._entry import IndexRow as IndexRow, TableRow as TableRow

    Progress = Callable[[int, int], object]

__all__ = ["Index", "IndexEntry", "Listing", "config_leaves", "parse_summary"]

#: A root scanned less than this after its last change is scanned again next time: file
#: system clocks are coarse (a later change in the same tick would keep the same mtime).
SETTLE_NS = _fs.SETTLE_NS
#: How long a journaled id whose directory does not exist yet stays pending (its commit may
#: be between the journal append and the directory's creation).
PENDING_WITHOUT_DIRECTORY_NS = 120_000_000_000
#: Records read per transaction while catching up (bounds memory and lock time).
BATCH = 5_000
#: Rows per chunk of `Index.scan`.
SCAN_CHUNK = 5_000
#: A storage without a cheap change token (an object store) is listed again by a query when
#: its last listing is older than this; commits made on this machine are found at once (the
#: journal in its local cache), commits from other machines within this delay.
RELIST_NS = 10_000_000_000


class Index(ABC):
    """A query catalogue over one storage; see `retain.index` for the backends.

    Thread-safe; a process may share one instance between threads. After a `fork`, a backend
    reopens its connections.
    """

    #: Safe when processes on several machines use it at once (a database server).
    supports_multiple_hosts: ClassVar[bool] = False
    #: `table_scan` reads a range of places (row numbers) alone, in any process: a pass over
    #: a million rows may be shared between forked workers.
    supports_row_ranges: ClassVar[bool] = False

    # -- primitives ---------------------------------------------------------------------------

    @property
    @abstractmethod
    def url(self) -> str:
        """A string naming this index, accepted by `retain.index.make_index`."""

    @abstractmethod
    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        """Add `entries` in one transaction. An id already present keeps its row (records are
        immutable) but takes the entry's summary and metrics when it has them."""

    @abstractmethod
    def remove(self, ids: Iterable[str]) -> None:
        """Drop the rows of `ids` (absent ids are ignored), in one transaction."""

    @abstractmethod
    def replace_all(self, entries: Iterable[IndexEntry], meta: Mapping[str, str]) -> int:
        """Replace every row by `entries` and set `meta`, in one transaction: readers see the
        old contents or the new, never a mix. Returns the number of rows."""

    @abstractmethod
    def select(self, query: Query) -> list[IndexRow]:
        """The rows of `query`'s classes (or kind) that pass its `conditions`, newest first
        (by `created`, then id). `summary_conditions` are not evaluated here."""

    @abstractmethod
    def count(self, query: Query) -> int:
        """The number of rows `select(query)` would return."""

    @abstractmethod
    def ids(self) -> set[str]:
        """Every id in the index."""

    @abstractmethod
    def set_tags(self, ids: Collection[str], read: Callable[[Collection[str]], Mapping[str, Collection[str]]]) -> None:
        """Replace the tags of `ids` by ``read(ids)`` (id -> tags), calling `read` inside the
        write transaction, one tag writer at a time: the last writer has read every change
        that the writers before it made in storage."""

    @abstractmethod
    def tags(self, ids: Iterable[str] | None = None) -> dict[str, list[str]]:
        """The sorted tags of each of `ids` (None: every id) that is in the index and has
        tags; ids without tags are left out."""

    @abstractmethod
    def get_meta(self) -> dict[str, str]:
        """The index's bookkeeping values (journal offset, storage scan state)."""

    @abstractmethod
    def set_meta(self, values: Mapping[str, str]) -> None:
        """Set bookkeeping values, in one transaction."""

    @abstractmethod
    def reset(self) -> None:
        """Discard everything, even an unreadable database, and start empty (used by
        `rebuild` on a corrupt index or one from a newer schema)."""

    def close(self) -> None:
        """Release connections; the index reopens on next use."""

    # -- derived ------------------------------------------------------------------------------

    def add_record(self, record: Mapping[str, Any], summary: dict[str, Any] | None = None) -> None:
        """Index one committed record (and its summary values)."""
        self.upsert([IndexEntry.from_record(record, summary)])

    def query(self, query: Query) -> list[IndexRow]:
        """`select`, then the summary conditions, evaluated over the rows."""
        rows = self.select(query)
        if query.summary_conditions:
            rows = filter_rows(rows, query.summary_conditions)
        return rows

    def listing(self, query: Query) -> Listing:
        """The ids (and classes) of `query`'s rows, in `query`'s order: what a collection
        holds. Backends answer from an index that holds the order, without reading the rows'
        texts; this default reads the whole rows."""
        return Listing.of_rows(self.query(query))

    def rows(self, ids: Sequence[str]) -> list[IndexRow]:
        """The rows of those of `ids` that are in the index, in any order."""
        found: list[IndexRow] = []
        wanted = list(ids)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found += self.select(Query(conditions=[Condition(Field("column", "id", "id"), Filter("in", chunk))]))
        return found

    def scan(self, classes: list[tuple[str, str]] | None) -> Iterator[tuple[Sequence[int] | None, list[IndexRow]]]:
        """Every row of `classes` (``(module, qualname)`` pairs; None: all), in chunks of a few
        thousand, in the backend's storage order: reading a large part of a class costs one
        pass over it, not a lookup per id. Each chunk comes with the places of its rows (as
        `Listing.places`), or None. Backends read chunk by chunk; this default reads them all
        at once."""
        rows = self.select(Query(classes))
        for start in range(0, len(rows), SCAN_CHUNK):
            yield None, rows[start:start + SCAN_CHUNK]

    def table_scan(
        self, classes: list[tuple[str, str]] | None, rows: tuple[int, int] | None = None
    ) -> Iterator[tuple[Sequence[int] | None, list[TableRow]]]:
        """`scan` with only the columns a table needs (`TableRow`: id, created, config,
        summary, metrics): a million rows are read in about half the time of whole rows, whose
        module, class and kind are strings made anew for every row. `rows` (start, stop): only
        the rows whose places are in that range (for backends that `supports_row_ranges`;
        others give every row). Backends read these columns alone; this default cuts the rows
        of `scan`."""
        for places, found in self.scan(classes):
            yield places, list(map(table_row, found))

    def ids_with_prefix(self, prefix: str) -> set[str]:
        """The ids in the index that start with `prefix` (what `sync` compares with the
        listing of one shard). Backends answer from their index on ids."""
        return {id for id in self.ids() if id.startswith(prefix)}

    def present(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are in the index."""
        wanted = list(ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            query = Query(conditions=[Condition(Field("column", "id", "id"), Filter("in", chunk))])
            found.update(row[0] for row in self.select(query))
        return found

    def sync(self, storage: Storage) -> None:
        """Catch up with `storage` cheaply: index what the journal lists past the recorded
        offset, and scan the storage's names if its root directory changed. See
        `docs/design.md`, "Index"."""
        _sync(self, storage)

    def rebuild(self, storage: Storage, progress: Progress | bool | None = None) -> int:
        """Rebuild every row from `storage` alone; returns the number indexed. A corrupt
        database, or one from a newer schema, is discarded first."""
        return _rebuild_or_reset(self, storage, progress)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def _journal_info(local: str | None) -> os.stat_result | None:
    if local is None:
        return None
    try:
        return os.stat(journal_path(local))
    except FileNotFoundError:
        return None


def _sync(index: Index, storage: Storage) -> None:
    """Bring `index` up to date with `storage` (see the module docstring)."""
    import json  # on first use: `import retain` stays cheap

    local = storage.local_root()  # where the journal is (an object store's: its local cache)
    meta = index.get_meta()
    updates: dict[str, str] = {}
    fresh = meta.get("storage") != storage.url
    if fresh:
        updates["storage"] = storage.url
    if index.supports_multiple_hosts:
        storage_id = storage.storage_id()
        served = meta.get("storage_id")
        if storage_id is not None and served != storage_id:
            if served:
                raise _another_storage(index, storage, meta.get("storage", "?"))
            updates["storage_id"] = storage_id
    now = time.time_ns()
    committed: set[str] = set()  # journaled commits: indexed unless already present
    reread: set[str] = set()  # ids whose record or summary must be read again
    removals: set[str] = set()  # journaled removals: dropped unless the record is there again
    annotated: set[str] = set()  # journaled tag changes: their tags are read again

    info = _journal_info(local)
    if info is not None and local is not None:
        inode = str(info.st_ino)
        offset = int(meta.get("journal_offset", "0")) if meta.get("journal_inode") == inode and not fresh else 0
        if offset > info.st_size:
            offset = 0  # the journal was truncated or replaced: read it again
        if info.st_size > offset:
            with open(journal_path(local), "rb") as handle:
                handle.seek(offset)
                data = handle.read(info.st_size - offset)
            lines, used = decode_journal(data)
            for id, kind in lines:
                if kind == JOURNAL_ANNOTATE:
                    annotated.add(id)
                    continue
                (committed if kind == JOURNAL_COMMIT else removals if kind == JOURNAL_REMOVE else reread).add(id)
            updates["journal_inode"] = inode
            updates["journal_offset"] = str(offset + used)

    # A sharded storage tells its parts apart: only the shards whose time changed are listed,
    # and compared with the index's ids of that prefix.
    parts = storage.listing_parts()
    state = storage.listing_state() if parts is None else None
    cheap = parts is not None or state is not None  # a change token exists: no relisting by age
    scanned = int(meta.get("root_scanned_ns", "0"))
    removed: set[str] = set()
    names: set[str] | None = None  # the directories listed ...
    listed: set[str] | None = None  # ... under these prefixes (None: everything)
    if parts is not None:
        # The tokens of the last scan, and when it ran (one time: every shard not listed then
        # had settled before it).
        text = _encode_parts(parts)
        shards_scanned = int(meta.get("shards_scanned_ns") or 0)
        newest = max((mtime for _, mtime in parts.values()), default=0)
        if not fresh and text == meta.get("shards") and shards_scanned - newest >= SETTLE_NS:
            settled = True  # what most queries find: no shard changed
        else:
            recorded = None if fresh or not shards_scanned else _recorded_parts(meta.get("shards"))
            if recorded is None:  # the first scan of this index: everything
                settled = False
            else:
                listed = {
                    prefix for prefix, (token, mtime) in parts.items()
                    if recorded.get(prefix) != token or shards_scanned - mtime < SETTLE_NS
                }
                listed |= recorded.keys() - parts.keys()  # a shard directory removed
                settled = not listed
    elif state is None:
        # No cheap change token (an object store): list again once the last listing is old.
        settled = not fresh and now - scanned < RELIST_NS
    else:
        token, newest = state
        settled = not fresh and meta.get("root_mtime_ns") == token and scanned - newest >= SETTLE_NS
    found: set[str] = set()  # directories the scan found: their tags are looked for
    if not settled:
        if listed is None:
            names = set(storage.iter_directories())
            known = index.ids()
        else:
            names = set()
            known = set()
            for prefix in sorted(listed):
                if parts is not None and prefix in parts:  # else its shard directory is gone
                    names.update(storage.iter_directories(prefix))
                known |= index.ids_with_prefix(prefix)
        found = names - known
        reread |= found
        removed = known - names
        committed -= names  # the scan decided about these already
        if parts is not None:
            updates["shards"] = _encode_parts(parts)
            updates["shards_scanned_ns"] = str(now)
        else:
            updates["root_mtime_ns"] = state[0] if state is not None else ""
            updates["root_scanned_ns"] = str(now)

    if not cheap and not settled:
        # A removal from an object store that a crash interrupted leaves objects that a
        # listing takes for the id's directory.
        removals.update(storage.unfinished_removals())
    recommitted: set[str] = set()
    if removals:
        recommitted = {id for id in removals if storage.has_record(id)}
        gone = removals - recommitted
        removed |= gone
        committed -= gone
        reread |= recommitted  # committed again after its removal: its row is made anew

    pending_text = meta.get("pending", "{}")
    pending: dict[str, int] = json.loads(pending_text) if pending_text != "{}" else {}
    if committed:
        reread |= committed - index.present(committed)
    if cheap or not settled:
        # Remote pending directories (a commit in flight, or one that crashed) are looked at
        # with each listing, not at every query.
        reread |= pending.keys()
    reread -= removed

    if recommitted:
        index.remove(recommitted)
    new_pending: dict[str, int] = {} if cheap or not settled else dict(pending)
    entries: list[IndexEntry] = []
    indexed = 0
    ordered = sorted(reread)
    # Ids indexed anew take their tags with them: those marked as annotated, and local
    # directories the scan found that hold events (copied in by hand: one failed listdir for
    # most), which are marked now. An object store is not asked (a listing per id).
    marked = tag_events.marked_ids(storage) & reread if reread else set()
    if storage.is_remote:
        found = set()
    for start in range(0, len(ordered), BATCH):
        for id, entry, _ in read_entries(storage, ordered[start:start + BATCH]):
            if entry is not None and (id in marked or (id in found and _has_events(storage, id))):
                entry.tags = sorted(tag_events.read(storage, id)[0])
            if entry is None:  # no record yet (a copy in progress), or a damaged one: look again
                since = pending.get(id, now)
                if names is not None and (listed is None or any(id.startswith(p) for p in listed)):
                    exists = id in names
                else:
                    exists = storage.has_directory(id)
                if exists or now - since < PENDING_WITHOUT_DIRECTORY_NS:
                    new_pending[id] = since
                elif id not in removed:
                    removed.add(id)
                continue
            entries.append(entry)
        if entries:
            index.upsert(entries)
            indexed += len(entries)
            entries = []
    if removed:
        index.remove(removed)
    annotated -= removed
    if annotated:
        index.set_tags(sorted(annotated), lambda ids: tag_events.read_tags(storage, ids))
    if indexed or removed:
        logger("retain.index").info(
            "repaired the index %s from %s: %d interface(s) indexed, %d removed (%d pending)",
            getattr(index, "display_url", index.url), storage.url, indexed, len(removed), len(new_pending),
        )
    if new_pending != pending:
        updates["pending"] = json.dumps(new_pending, sort_keys=True)
    if updates:
        index.set_meta(updates)


def _has_events(storage: Storage, id: str) -> bool:
    if not storage.list_folder(id, ANNOTATIONS_FOLDER):
        return False
    tag_events.mark(storage, id)
    return True


def _encode_parts(parts: Mapping[str, tuple[str, int]]) -> str:
    """The tokens of a storage's shards as the index records them: ``prefix token`` lines."""
    return "\n".join(f"{prefix} {parts[prefix][0]}" for prefix in sorted(parts))


def _recorded_parts(text: str | None) -> dict[str, str] | None:
    """The tokens of the shards as the last scan saw them; None if there are none."""
    if text is None:
        return None
    found = {}
    for line in text.splitlines():
        prefix, _, token = line.partition(" ")
        if not token:
            return None  # unreadable bookkeeping: scan everything again
        found[prefix] = token
    return found


def _another_storage(index: Index, storage: Storage, served: str) -> IndexDatabaseError:
    where = getattr(index, "display_url", index.url)
    return IndexDatabaseError(
        f"the index {where} serves another storage ({served}), not {storage.url}: two storages in "
        "one index would keep replacing each other's rows. Give each storage its own index (for "
        "PostgreSQL, its own schema: postgresql://.../db?schema=NAME); if that other storage is "
        "gone, `retain index rebuild` makes this index serve this one"
    )


def _rebuild_or_reset(index: Index, storage: Storage, progress: Progress | bool | None) -> int:
    """Replace the contents of `index` by what `storage` holds; returns the number indexed.

    Records that cannot be read are skipped with a warning that names them (they stay pending,
    so the index takes them once repaired). An index found damaged on the way is discarded and
    made anew (`Index.reset`), and the rebuild starts again.
    """
    try:
        return _rebuild(index, storage, progress)
    except IndexDatabaseError as exc:
        if not exc.corrupt:
            raise  # locked, unreachable, another storage's: not for a reset to mend
        index.reset()
        return _rebuild(index, storage, progress)


def _rebuild(index: Index, storage: Storage, progress: Progress | bool | None) -> int:
    import json

    # contextlib, collections and the process pool load for a rebuild only (import retain stays cheap).
    from ._rebuild_workers import paused_gc, read_chunks

    # Observed before listing: anything that changes during the rebuild changes these too,
    # and the next sync looks again.
    now = time.time_ns()
    info = _journal_info(storage.local_root())
    parts = storage.listing_parts()
    state = storage.listing_state()
    names = sorted(storage.iter_directories())
    # One listing for the ids that have tags: results never annotated cost nothing more.
    tags = {id: sorted(found) for id, found in tag_events.read_tags(storage, tag_events.marked_ids(storage) & set(names)).items()}
    total = len(names)
    report = _progress_reporter(progress, total)
    pending: dict[str, int] = {}
    damaged: list[str] = []
    meta = {
        "storage": storage.url,
        "storage_id": (storage.storage_id() or "") if index.supports_multiple_hosts else "",
        "journal_inode": str(info.st_ino) if info is not None else "",
        "journal_offset": str(info.st_size) if info is not None else "0",
        "root_mtime_ns": state[0] if state is not None else "",
        "root_scanned_ns": str(now),
        "shards": _encode_parts(parts) if parts is not None else "",
        "shards_scanned_ns": str(now) if parts is not None else "",
    }
    try:
        index.get_meta()
    except IndexDatabaseError:
        # Corrupt, or from a newer schema: the index is only a cache, start it afresh.
        index.reset()

    def read(chunk: list[tuple[str, IndexEntry | None, str | None]]) -> list[IndexEntry]:
        entries = []
        for id, entry, error in chunk:
            if error is not None:
                damaged.append(f"{id}: {error}")
            if entry is None:
                pending[id] = now
            else:
                entry.tags = tags.get(id) or None
                entries.append(entry)
        return entries

    def entries() -> Iterator[IndexEntry]:
        done = 0
        for chunk in chunks:
            yield from read(chunk)
            done += 1000
            if report is not None:
                report(min(done, total))
        if report is not None and total == 0:
            report(0)
        # Known only now; replace_all sets the meta after the last entry.
        meta["pending"] = json.dumps(pending, sort_keys=True)

    # Read in worker processes when there are many (see _rebuild_workers), written here.
    with paused_gc(), read_chunks(storage, names, 1000) as chunks:
        count = index.replace_all(entries(), meta)
    _reclaim(storage, pending)
    if damaged:
        shown = "\n  ".join(damaged[:20]) + (f"\n  and {len(damaged) - 20} more" if len(damaged) > 20 else "")
        warnings.warn(
            f"rebuild skipped {len(damaged)} damaged record(s) in {storage.url}; they are indexed "
            f"once repaired:\n  {shown}",
            IndexWarning,
            stacklevel=3,
        )
    return count


def _reclaim(storage: Storage, uncommitted: Iterable[str]) -> None:
    """Remove the temporaries killed writers left where no commit will reclaim them: in the
    directories without a record, and in the storage's own ``.retain/``. (A commit reclaims
    those of its directory; reading every committed directory here would double a rebuild.)"""
    if not storage.supports_local_files:
        return
    directories = [storage.local_directory(id) for id in uncommitted]
    root = storage.local_root()
    if root is not None:
        directories.append(os.path.join(root, STORAGE_META_DIR))
    for directory in directories:
        try:
            reclaim_temporaries(directory)
        except OSError as exc:  # garbage left for the next time; the rebuild itself succeeded
            logger("retain.index").debug("could not remove the temporary files in %s: %s", directory, exc)


def _progress_reporter(progress: Any, total: int) -> Callable[[int], None] | None:
    if progress is None or progress is False:
        return None
    if progress is True:
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
