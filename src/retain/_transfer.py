"""Moving results between storages and people: `export` to an archive, `ingest` an archive
(``retain import``), `copy` to another storage.

Ids are content: a result keeps its id everywhere, and each record is checked against its id
(`decode_record`) before it lands. The classes' code is never imported: only records, files
and identity baselines move.

An archive is a plain tar (gzip-compressed when its name ends in ``.tar.gz`` or ``.tgz``)
holding the storage layout: a manifest (`MANIFEST`), ``.retain/baselines/...`` (the baselines
of each class moved, see `retain._baselines`), then each result as ``<id>/...`` with its
record ``<id>/interface.json`` last, inputs before the results that use them. Nothing is
extracted by path: every member is checked (no absolute name, no ``..``, no link, only the
names of this layout) and written by retain itself.

Landing in a storage, in order (a failure in 1-3 leaves the target as it was):
1. records checked against their ids; ids the target holds already compared (the same record:
   "present", a no-op; another record: `CollisionError` naming the fields that differ);
2. inputs: each must be moved along or committed in the target (else
   `InterfaceNotFoundError` naming them: export with inputs);
3. baselines: a class the target has none for takes the source's; keys the target has with
   another value are a `CollisionError` (class and key); missing keys are added;
4. each result, inputs first, the way a commit lands: its files into its directory (the
   local cache of an object store), the journal line, then the record (`publish_record`:
   an object store uploads the files first). A kill leaves each id whole or without a record
   (invisible); importing again completes it.
"""

from __future__ import annotations

import os

from . import _baselines, _settings
from ._errors import (
    ArchiveError,
    CollisionError,
    InterfaceNotFoundError,
    InUseError,
    RecordError,
    StorageError,
    UnsafePathError,
)
from ._fs import TEMP_PREFIX, atomic_write, makedirs
from ._version import __version__
from .identity import REF_KEY, is_id, references, same_value
from .index import _updates
from .interface import Interface
from .storage import annotation_files, make_storage
from .storage.layout import (
    ANNOTATIONS_FOLDER,
    BASELINES_READY,
    JOURNAL_COMMIT,
    RECORD_FILE,
    STORAGE_META_DIR,
    SUMMARY_FILE,
    baseline_name,
    decode_baseline,
    decode_record,
    encode_baseline,
    heartbeat_file,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import IO, Any

    from .storage import Storage

    #: A file of a result: its name (relative, ``/``-separated) and how to open it for reading.
    File = tuple[str, Callable[[], IO[bytes]]]

__all__ = ["MANIFEST", "Moved", "copy", "export", "ingest"]

#: The manifest's name in an archive (first member): format, ids in landing order, source.
MANIFEST = "retain-export.json"
MANIFEST_FORMAT = "retain.export"

#: A heartbeat says a run is alive on one machine now: meaningless in another storage (a run
#: that had ended has its end file; the claim alone still dates an unfinished one).
_HEARTBEAT = heartbeat_file(1).rsplit("-", 1)[0] + "-"
#: Where an archive holds the baselines: where a storage does.
_BASELINES_DIR = f"{STORAGE_META_DIR}/{BASELINES_READY.rsplit('/', 1)[0]}/"


class Moved:
    """One result that an export, import or copy handled: its `id`, class (`module`,
    `qualname`), `kind`, its `size` in bytes (record and files), and its `state`:
    ``"exported"``, ``"imported"`` (copied) or ``"present"`` (the target held it already,
    the same record: nothing done)."""

    __slots__ = ("id", "module", "qualname", "kind", "size", "state")

    def __init__(self, id: str, module: str, qualname: str, kind: str, size: int, state: str) -> None:
        self.id = id
        self.module = module
        self.qualname = qualname
        self.kind = kind
        self.size = size
        self.state = state

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "module": self.module, "class": self.qualname, "kind": self.kind,
                "size": self.size, "state": self.state}

    def __repr__(self) -> str:
        return f"<Moved {self.qualname} [{self.id[:6]}] {self.state}, {self.size:,} bytes>"


class _Item:
    """A result on its way: record bytes, decoded record, files."""

    __slots__ = ("id", "data", "record", "files", "size")

    def __init__(self, id: str, data: bytes, record: dict[str, Any], files: list[File], size: int) -> None:
        self.id = id
        self.data = data
        self.record = record
        self.files = files
        self.size = size

    def moved(self, state: str) -> Moved:
        r = self.record
        return Moved(self.id, r["module"], r["class"], r["kind"], self.size, state)


# -- the public verbs --------------------------------------------------------------------------------


def export(
    what: Iterable[str | Interface] | str | Interface,
    path: str | os.PathLike[str],
    *,
    with_inputs: bool = False,
    storage: Storage | str | None = None,
) -> list[Moved]:
    """Write committed results to an archive at `path` (a plain tar; gzip-compressed when it
    ends in ``.tar.gz`` or ``.tgz``) that `ingest` (``retain import``) reads into another
    storage, with the same ids. The archive is written whole or not at all.

    Args:
        what: ids (or unique id prefixes) or committed interfaces.
        with_inputs: also export the results they use as inputs (at any depth); without it,
            importing needs those in the target already.
        storage: where they are (default: the current storage).

    Returns:
        What was exported, inputs before the results that use them.

    Raises:
        InterfaceNotFoundError: an id is not committed there (or a prefix is ambiguous).
        InUseError: a component is running (or queued): its files are still changing.
        RecordError: a record is damaged (its content does not match its id).
    """
    import tarfile  # here: `import retain` does not load tarfile

    wanted = _listed(what)
    store = _source(wanted, storage)
    items, trees = _gather(store, wanted, with_inputs)
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise StorageError(f"cannot write {target}: the directory {directory} does not exist")
    mode = "w:gz" if target.endswith((".tar.gz", ".tgz")) else "w"
    manifest = _encode_json({
        "format": MANIFEST_FORMAT, "version": 1, "ids": [item.id for item in items],
        "source": store.url, "retain": __version__,
    })

    def write(handle: IO[bytes]) -> None:
        open_tar: Any = tarfile.open  # (the stubs' overloads want the mode as a literal)
        with open_tar(fileobj=handle, mode=mode, format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST, manifest)
            for (module, qualname), tree in sorted(trees.items()):
                _add_bytes(tar, f"{STORAGE_META_DIR}/{baseline_name(module, qualname, 1)}",
                           encode_baseline(module, qualname, tree))
            for item in items:
                for name, opener in item.files:
                    with opener() as source:
                        _add_stream(tar, f"{item.id}/{name}", source)
                _add_bytes(tar, f"{item.id}/{RECORD_FILE}", item.data)

    atomic_write(target, write, durable=_settings.durable())
    return [item.moved("exported") for item in items]


def ingest(path: str | os.PathLike[str], *, storage: Storage | str | None = None) -> list[Moved]:
    """Import the results of an archive written by `export` (``retain import``) into `storage`
    (default: the current one), keeping their ids. Importing twice is a no-op; each result
    lands whole or not at all, so importing again after a crash completes it.

    Returns:
        Each result of the archive, inputs first: ``"imported"``, or ``"present"`` when the
        storage held it already.

    Raises:
        ArchiveError: `path` is not a retain archive, or is damaged.
        UnsafePathError: a member's name would land outside the storage layout (absolute, with
            ``..``, a link): nothing is written.
        CollisionError: the storage holds one of the ids with another record, or other identity
            baselines for a class of the archive (both named): nothing is written.
        InterfaceNotFoundError: a result's input is neither in the archive nor in the storage
            (export it with its inputs).
    """
    import tarfile  # here: `import retain` does not load tarfile

    source = os.fspath(path)
    target = _settings.current_storage(storage)
    try:
        tar = tarfile.open(source, "r:*")
    except FileNotFoundError:
        raise ArchiveError(f"no archive at {source}") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{source} is not a retain archive (a tar file from `retain export`): {exc}") from None
    with tar:
        items, trees = _read_archive(tar, source)
        return _land(target, items, trees, source)


def copy(
    what: Iterable[str | Interface] | str | Interface,
    to: Storage | str,
    *,
    with_inputs: bool = False,
    storage: Storage | str | None = None,
) -> list[Moved]:
    """Copy committed results into another storage `to` (a path or URL, local or an object
    store), keeping their ids: what `export` then `ingest` do, without the archive.

    Args:
        what: ids (or unique id prefixes) or committed interfaces.
        with_inputs: also copy the results they use as inputs (those the target lacks are
            needed otherwise).
        storage: where they are (default: the current storage).

    Returns:
        What was copied (``"imported"``) or found there already (``"present"``), inputs first.

    Raises:
        InterfaceNotFoundError, InUseError, RecordError: as `export`.
        CollisionError, InterfaceNotFoundError: as `ingest`.
    """
    wanted = _listed(what)
    store = _source(wanted, storage)
    target = make_storage(to)
    if target == store:
        raise StorageError(f"copy to {target.url}: that is the storage the results are in")
    items, trees = _gather(store, wanted, with_inputs)
    return _land(target, items, trees, store.url)


# -- reading a storage ----------------------------------------------------------------------------


def _listed(what: Iterable[str | Interface] | str | Interface) -> list[str | Interface]:
    if isinstance(what, (str, Interface)):
        return [what]
    return list(what)


def _source(what: list[str | Interface], storage: Storage | str | None) -> Storage:
    """The storage results are moved from: `storage`, else that of the interfaces given."""
    if storage is None and what and isinstance(what[0], Interface):
        return what[0].storage
    return _settings.current_storage(storage)


def _resolve(store: Storage, text: str | Interface) -> str:
    if isinstance(text, Interface):
        if not text.is_committed():
            raise InterfaceNotFoundError(f"{text!r} is not committed in {text.storage.url}: commit it first")
        return text.id
    prefix = str(text).strip().lower()
    if not prefix or len(prefix) > 32 or not set(prefix) <= set("0123456789abcdef"):
        raise InterfaceNotFoundError(f"{text!r} is not an id or id prefix; `retain ls` lists the ids")
    matches = ([prefix] if store.has_record(prefix) else []) if is_id(prefix) else sorted(store.iter_ids(prefix))
    if len(matches) != 1:
        found = "nothing" if not matches else f"{len(matches)} ids ({', '.join(matches[:5])}...): give more characters"
        raise InterfaceNotFoundError(f"{text!r} matches {found} in {store.url}; `retain ls` lists the ids")
    return matches[0]


def _gather(
    store: Storage, what: list[str | Interface], with_inputs: bool
) -> tuple[list[_Item], dict[tuple[str, str], dict[str, Any]]]:
    """The results `what` of `store` (with their inputs), inputs first, and their classes'
    baselines."""
    wanted = list(dict.fromkeys(_resolve(store, text) for text in what))
    if not wanted:
        raise InterfaceNotFoundError("nothing to move: give at least one id")
    records: dict[str, tuple[bytes, dict[str, Any]]] = {}
    pending = list(wanted)
    for id in pending:  # grows with the inputs found (breadth first: the order asked kept)
        if id in records:
            continue
        data = store.read_record(id)
        if data is None:
            raise InterfaceNotFoundError(
                f"{id} is not committed in {store.url}" + ("" if id in wanted else " (an input of a result asked for)")
            )
        record = decode_record(data, f"{store.url}/{id}/{RECORD_FILE}", id)
        records[id] = (data, record)
        if with_inputs:
            pending += _inputs(record)
    _refuse_running(store, {id: rec for id, (_, rec) in records.items()})
    local = not store.is_remote
    items = []
    for id in _ordered({id: rec for id, (_, rec) in records.items()}):
        data, record = records[id]
        files: list[File] = []
        size = len(data)
        for name in store.stored_files(id):
            if _skipped(name):
                continue
            if local:
                path = os.path.join(store.local_directory(id), *name.split("/"))
                try:
                    size += os.stat(path).st_size
                except FileNotFoundError:
                    continue
                if os.path.islink(path):
                    _check_inside(path, store.local_directory(id))
                files.append((name, _opener(path)))
            else:
                files.append((name, _stored_opener(store, id, name)))  # read when written
        if not local:
            size = store.size(id)
        items.append(_Item(id, data, record, files, size))
    trees: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        key = (item.record["module"], item.record["class"])
        if key not in trees:
            tree = _baselines.recorded(store, *key)
            if tree is None:
                tree = _baselines.trees_of([i.record for i in items if (i.record["module"], i.record["class"]) == key]).get(key)
            if tree is not None:
                trees[key] = tree
    return items, trees


def _check_inside(path: str, directory: str) -> None:
    """Refuse a symbolic link that leads outside the result's directory: what it points to is
    not the result's to give away."""
    real, top = os.path.realpath(path), os.path.realpath(directory)
    if not real.startswith(top + os.sep):
        raise UnsafePathError(
            f"{path} is a symbolic link to {real}, outside the result's directory: nothing was "
            "moved; replace the link by a copy of the file (or remove it) to move this result"
        )


def _refuse_running(store: Storage, records: dict[str, dict[str, Any]]) -> None:
    components = [id for id, record in records.items() if record.get("kind") == "Component"]
    if not components:
        return
    from .runs.status import ExecutionStatus  # the run machinery loads here, not at import

    live = {id: state for id in components
            if (state := ExecutionStatus.of(id, storage=store).state()) in ("running", "queued")}
    if live:
        shown = ", ".join(f"{records[id]['class']} [{id}] is {state}" for id, state in live.items())
        raise InUseError(f"{shown}: its files are still changing; wait for its run to end (retain status), then move it")


def _skipped(name: str) -> bool:
    """Files that stay behind: unfinished writes and run heartbeats (see `_HEARTBEAT`)."""
    return name.startswith(_HEARTBEAT) or any(part.startswith(TEMP_PREFIX) for part in name.split("/"))


def _opener(path: str) -> Callable[[], IO[bytes]]:
    return lambda: open(path, "rb")


def _stored_opener(store: Storage, id: str, name: str) -> Callable[[], IO[bytes]]:
    """How to read file `name` of `id` from a remote storage: one file in memory at a time."""

    def open_stored() -> IO[bytes]:
        import io

        content = store.read_file(id, name)
        if content is None:
            raise StorageError(f"{store.url}/{id}/{name} vanished while it was being moved; try again")
        return io.BytesIO(content)

    return open_stored


def _inputs(record: dict[str, Any]) -> list[str]:
    return [str(ref[REF_KEY]) for ref in references(record["config"])]


def _ordered(records: dict[str, dict[str, Any]]) -> list[str]:
    """The ids of `records`, each after the inputs among them it uses (a depth-first walk,
    without recursion: chains of inputs may be long)."""
    order: list[str] = []
    done: set[str] = set()
    for root in records:
        if root in done:
            continue
        stack = [(root, iter(_inputs(records[root])))]
        visiting = {root}
        while stack:
            id, pending = stack[-1]
            for dep in pending:
                if dep in records and dep not in done and dep not in visiting:
                    visiting.add(dep)
                    stack.append((dep, iter(_inputs(records[dep]))))
                    break
            else:
                stack.pop()
                done.add(id)
                order.append(id)
    return order


# -- archives -------------------------------------------------------------------------------------


def _encode_json(value: dict[str, Any]) -> bytes:
    import json

    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _add_bytes(tar: Any, name: str, data: bytes) -> None:
    import io

    _add_stream(tar, name, io.BytesIO(data), len(data))


def _add_stream(tar: Any, name: str, source: IO[bytes], size: int | None = None) -> None:
    import io
    import tarfile
    import time

    info = tarfile.TarInfo(name)
    if size is None:
        size = os.fstat(source.fileno()).st_size if not isinstance(source, io.BytesIO) else len(source.getbuffer())
    info.size = size
    info.mode = 0o644
    info.mtime = int(time.time())
    tar.addfile(info, source)


def _read_archive(tar: Any, where: str) -> tuple[list[_Item], dict[tuple[str, str], dict[str, Any]]]:
    """The results and baselines of an open archive, every member checked first."""
    import json
    import tarfile

    try:
        members = tar.getmembers()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{where} is damaged (the tar file cannot be read: {exc}); export it again") from None
    manifest = None
    baselines: list[Any] = []
    by_id: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for member in members:
        name = _member_name(member, where)
        if name is None:
            continue
        if name in seen:
            raise ArchiveError(f"{where} holds {name!r} twice; export it again")
        seen.add(name)
        if name == MANIFEST:
            manifest = member
        elif name.startswith(_BASELINES_DIR):
            if name != f"{STORAGE_META_DIR}/{BASELINES_READY}":  # a storage's marker, not a class's
                baselines.append(member)
        else:
            id, rel = name.split("/", 1)
            by_id.setdefault(id, {})[rel] = member
    if manifest is None:
        raise ArchiveError(f"{where} is not a retain archive: it has no {MANIFEST} (make one with retain export)")
    try:
        info = json.loads(_read_member(tar, manifest, where))
    except ValueError:
        info = None
    if not isinstance(info, dict) or info.get("format") != MANIFEST_FORMAT or not isinstance(info.get("ids"), list):
        raise ArchiveError(f"{where}: {MANIFEST} is not the manifest of a retain archive; export it again")
    if info.get("version") != 1:
        raise ArchiveError(f"{where} was written by a newer retain (archive version {info.get('version')!r}): upgrade retain")
    ids = [id for id in info["ids"] if isinstance(id, str)]
    if sorted(ids) != sorted(by_id) or len(set(ids)) != len(ids):
        raise ArchiveError(
            f"{where}: the manifest lists {len(ids)} result(s), the archive holds {len(by_id)} "
            "(damaged, or edited by hand); export it again"
        )
    # Read in the archive's order (baselines come first): a compressed archive seeks back
    # only by decompressing again from its start.
    trees: dict[tuple[str, str], dict[str, Any]] = {}
    versions: dict[tuple[str, str], int] = {}
    for member in baselines:
        data = _read_member(tar, member, where)
        try:
            payload = json.loads(data)
            key = (payload["module"], payload["class"])
            if not isinstance(key[0], str) or not isinstance(key[1], str):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            raise ArchiveError(f"{where}: {member.name} is not a baseline file; export it again") from None
        tree = decode_baseline(data, f"{where}:{member.name}", *key)
        version = _version_of(member.name)
        if version >= versions.get(key, 0):
            versions[key] = version
            trees[key] = tree
    records: dict[str, _Item] = {}
    for id, files in by_id.items():
        member = files.pop(RECORD_FILE, None)
        if member is None:
            raise ArchiveError(f"{where}: {id}/ has no {RECORD_FILE}; export it again")
        misplaced = [rel for rel in files if rel.split("/", 1)[0] == RECORD_FILE]
        if misplaced:
            raise ArchiveError(f"{where}: {id}/{misplaced[0]} would stand where the record is; export it again")
        data = _read_member(tar, member, where)
        record = decode_record(data, f"{where}:{id}/{RECORD_FILE}", id)
        kept = [(rel, m) for rel, m in files.items() if not _skipped(rel)]
        size = len(data) + sum(m.size for _, m in kept)
        records[id] = _Item(id, data, record, [(rel, _member_opener(tar, m, where)) for rel, m in kept], size)
    items = [records[id] for id in _ordered({id: records[id].record for id in ids})]
    return items, trees


def _version_of(name: str) -> int:
    tail = name.rsplit("-", 1)[-1].split(".", 1)[0]
    return int(tail) if tail.isdigit() else 0


def _member_name(member: Any, where: str) -> str | None:
    """The checked name of an archive member (None: a directory entry, nothing to write).

    Raises:
        UnsafePathError: the member is a link or a device, or its name is absolute, has
            ``..``, or falls outside the layout of an archive.
    """
    raw = member.name
    name = raw[2:] if raw.startswith("./") else raw
    if member.isdir() and name.rstrip("/") in ("", "."):
        return None  # the top directory of an archive packed again with `tar -C dir -cf FILE .`
    parts = name.rstrip("/").split("/")
    if name.startswith("/") or "\\" in name or "\x00" in name or any(p in ("", ".", "..") for p in parts):
        raise UnsafePathError(
            f"{where} holds {raw!r}, a name that would leave the storage's layout (absolute, "
            "with '..' or empty parts): nothing was imported; do not trust this archive"
        )
    if member.isdir():
        if _layout_path(parts, directory=True):
            return None
    elif member.isfile() and _layout_path(parts, directory=False):
        return "/".join(parts)
    if not (member.isfile() or member.isdir()):
        raise UnsafePathError(
            f"{where} holds {raw!r}, a link or special file; an archive of retain holds plain "
            "files only: nothing was imported; do not trust this archive"
        )
    raise UnsafePathError(
        f"{where} holds {raw!r}, which is not part of a retain archive (the manifest, "
        f"{_BASELINES_DIR}..., <id>/...): nothing was imported; do not trust this archive"
    )


def _layout_path(parts: list[str], *, directory: bool) -> bool:
    if directory:
        return parts in ([STORAGE_META_DIR], _BASELINES_DIR.rstrip("/").split("/")) or is_id(parts[0])
    if parts == [MANIFEST]:
        return True
    if parts[:-1] == _BASELINES_DIR.rstrip("/").split("/"):
        return parts[-1].endswith(".json")
    return len(parts) >= 2 and is_id(parts[0])


def _read_member(tar: Any, member: Any, where: str) -> bytes:
    with _member_opener(tar, member, where)() as handle:
        data: bytes = handle.read()
    return data


def _member_opener(tar: Any, member: Any, where: str) -> Callable[[], IO[bytes]]:
    import tarfile

    def open_member() -> IO[bytes]:
        try:
            handle = tar.extractfile(member)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError(f"{where}: {member.name} cannot be read ({exc}); export it again") from None
        if handle is None:
            raise ArchiveError(f"{where}: {member.name} is not a file")
        return handle  # type: ignore[no-any-return]

    return open_member


# -- landing in a storage --------------------------------------------------------------------------


_MISSING = object()


def _land(
    target: Storage, items: list[_Item], trees: dict[tuple[str, str], dict[str, Any]], source: str
) -> list[Moved]:
    present: set[str] = set()
    collisions = []
    for item in items:
        existing = target.read_record(item.id)
        if existing is None:
            continue
        differs = _differs(target, item, existing)
        if differs:
            collisions.append(f"{item.record['class']} [{item.id}] differs in {', '.join(differs)}")
        else:
            present.add(item.id)
    if collisions:
        raise CollisionError(
            f"{target.url} holds other records under ids of {source}: " + "; ".join(collisions)
            + ". One id with two records means one of them was not made by this configuration "
            "(edited by hand, or committed independently on each side); nothing was moved. Leave "
            "those ids out, or remove them from the target first (retain rm ID) if the source's are wanted"
        )
    moving = [item for item in items if item.id not in present]
    ids = {item.id for item in items}
    missing = []
    for item in moving:
        for ref in references(item.record["config"]):
            input_id = str(ref[REF_KEY])
            if input_id not in ids and not target.has_record(input_id):
                missing.append(f"{item.record['class']} [{item.id}] uses {ref.get('class', '?')} [{input_id}]")
    if missing:
        raise InterfaceNotFoundError(
            f"inputs missing in {target.url}: " + "; ".join(missing) + f". They are not among the "
            f"results moved from {source} either: export (or copy) the results with their inputs "
            "(--with-inputs; with_inputs=True), or move those inputs first; nothing was moved"
        )
    _adopt_baselines(target, moving, trees, source)
    durable = _settings.durable()
    out = []
    for item in items:
        if item.id in present:
            out.append(item.moved("present"))
            continue
        out.append(item.moved(_land_one(target, item, durable)))
    return out


def _differs(target: Storage, item: _Item, existing: bytes) -> list[str]:
    if existing == item.data:
        return []
    try:
        theirs = decode_record(existing, f"{target.url}/{item.id}/{RECORD_FILE}", item.id)
    except RecordError:
        return ["everything (the target's record is damaged: retain verify)"]
    mine = item.record
    return [key for key in sorted(set(mine) | set(theirs))
            if not same_value(mine.get(key, _MISSING), theirs.get(key, _MISSING))]


def _adopt_baselines(
    target: Storage, moving: list[_Item], trees: dict[tuple[str, str], dict[str, Any]], source: str
) -> None:
    """Make the target's baselines those the moved ids were computed with: the source's where
    the target has none, the source's missing keys added; another value for a key is a
    collision (before anything is written)."""
    classes: dict[tuple[str, str], dict[str, Any]] = {}
    for item in moving:
        key = (item.record["module"], item.record["class"])
        if key in classes:
            continue
        tree = trees.get(key)
        if tree is None:  # an archive without baseline files: what its records imply
            tree = _baselines.trees_of([i.record for i in moving if (i.record["module"], i.record["class"]) == key]).get(key)
        if tree is not None:
            classes[key] = tree

    def check() -> None:
        problems = []
        for (module, qualname), tree in sorted(classes.items()):
            theirs = _baselines.recorded(target, module, qualname)
            if theirs is not None:
                problems += [f"{module}:{qualname} key {path!r} ({source}: {mine!r}, {target.url}: {other!r})"
                             for path, mine, other in _conflicts(tree, theirs)]
        if problems:
            raise CollisionError(
                "the identity baselines (the defaults identity leaves out) differ: " + "; ".join(problems)
                + ". An id of one storage would name another configuration in the other (the class's "
                "default changed between their first commits); nothing was moved. Move these results "
                "into a storage without results of the class instead"
            )

    check()
    durable = _settings.durable()
    for (module, qualname), tree in sorted(classes.items()):
        _baselines.record(target, module, qualname, tree, durable=durable)
    if classes:
        check()  # another process may have recorded other values meanwhile (read them anew)


def _conflicts(mine: dict[str, Any], theirs: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """The keys (dotted) both trees hold with different values. Nothing is added below a
    recorded empty (open) mapping, so an empty mapping against a non-empty one differs."""
    out = []
    for key, value in mine.items():
        if key not in theirs:
            continue
        other = theirs[key]
        path = prefix + key
        if (type(value) is dict and type(other) is dict and value and other
                and REF_KEY not in value and REF_KEY not in other):
            out += _conflicts(value, other, path + ".")
        elif not same_value(value, other):
            out.append((path, value, other))
    return out


def _land_one(target: Storage, item: _Item, durable: bool) -> str:
    """Write the files of one result, then its record: ``"imported"``, or ``"present"`` when
    a commit of the same record won meanwhile.

    Raises:
        CollisionError: a commit of another record of the id won meanwhile.
        UnsafePathError: a link in the target's directory would carry a file outside it.
    """
    import shutil

    directory = target.prepare_directory(item.id)
    makedirs(directory, durable=durable)
    annotated = any(name.startswith(ANNOTATIONS_FOLDER + "/") for name, _ in item.files)
    if annotated:
        # Before its events land, as a tag does: an index rebuilt on the target (another
        # machine's, an object store's) looks for the events of marked ids only.
        annotation_files.mark(target, item.id, durable=durable)
    real = os.path.realpath(directory)
    names = []
    for name, opener in item.files:
        path = os.path.join(directory, *name.split("/"))
        parent = os.path.dirname(path)
        makedirs(parent, durable=durable)
        resolved = os.path.realpath(parent)
        if resolved != real and not resolved.startswith(real + os.sep):
            raise UnsafePathError(
                f"{path}: a symbolic link in {directory} leads outside it; remove the link "
                "(the directory holds no committed result)"
            )
        with opener() as source:
            atomic_write(path, lambda handle: shutil.copyfileobj(source, handle, 1 << 20), durable=durable)
        names.append(name)
    # Journal first, as a commit: an index that misses the update below finds the id.
    with _updates.journaled(target, item.id, JOURNAL_COMMIT, durable):
        published = target.publish_record(item.id, item.data, durable=durable)
    if published:
        _updates.after_publish(target, item.record, SUMMARY_FILE in names)
        if annotated:
            _updates.after_annotate(target, item.id)
        return "imported"
    existing = target.read_record(item.id)
    differs = _differs(target, item, existing) if existing is not None else ["everything (it vanished)"]
    if differs:
        raise CollisionError(
            f"{item.record['class']} [{item.id}] was committed in {target.url} while it was being "
            f"moved, with another record (it differs in {', '.join(differs)}); the other results landed"
        )
    return "present"
