"""Looking after a storage: what it takes on disk (`du`) and whether it is whole (`verify`).

Both read the records alone, never the classes' code, so they serve a storage whose code is
gone. `verify` reads every record once; `verify(repair=True)` mends only what cannot lose a
result: the index (a cache, rebuilt from the records), temporaries of killed writers, and
directories without a record that nobody touched for an hour (moved through the removal area,
as `Storage.remove` does). A record is never changed or removed by a repair.
"""

from __future__ import annotations

import os
import time

from . import _settings
from ._errors import InterfaceNotFoundError, RecordError, RetainError
from ._fs import TEMP_PREFIX, abandoned_temporaries, is_abandoned, writer_alive
from .identity import REF_KEY, SCHEME, compute_id, references
from .index import _updates, make_index, rebuild
from .storage.layout import (
    FINISHED_FILE,
    RECORD_FILE,
    RUNTIME_PREFIX,
    STORAGE_META_DIR,
    SUMMARY_FILE,
    check_record,
    end_file,
    index_fields,
    raw_decoder,
    removal_area,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from .storage import Storage

    #: What `_check_directories` says of one directory: (id, state, module, class, kind, config
    #: text, inputs, problems); state is ``"gone"``, ``"uncommitted"``, ``"record"`` (whole),
    #: ``"id-mismatch"`` or ``"record-damaged"``; problems are (id, kind, what, fix, path).
    Checked = tuple[str, str, str, str, str, str, list[tuple[str, str]], list[tuple[Any, ...]]]

__all__ = ["ClassUsage", "DiskUsage", "Problem", "ResultSize", "VerifyReport", "du", "verify"]

#: A directory without a record that nothing wrote to for this long (seconds) is an orphan (a
#: killed commit, or files saved by an interface never committed), not a commit in progress.
ORPHAN_AGE = 3600.0

_REF_BYTES = f'"{REF_KEY}"'.encode()

#: What `verify` reports, by kind.
KINDS = {
    "record-damaged": "the record cannot be read",
    "id-mismatch": "the record's content does not hash to its id",
    "input-missing": "an input in the record's config is not committed",
    "summary-damaged": "summary.json is not a JSON object",
    "run-files": "the component's run files disagree",
    "index-missing": "a committed id is not in the index",
    "index-extra": "the index lists an id that is not committed",
    "index-differs": "an index row differs from its record",
    "index-damaged": "the index cannot be read",
    "orphan": "a directory without a record, untouched for an hour",
    "temporary": "a temporary file of a killed writer",
    "removal-leftover": "what a killed removal left in the removal area",
}
#: The kinds `verify(repair=True)` mends.
REPAIRABLE = frozenset({
    "index-missing", "index-extra", "index-differs", "index-damaged", "orphan", "temporary", "removal-leftover",
})


# -- du -------------------------------------------------------------------------------------------


class ClassUsage:
    """The committed results of one class: how many, and the bytes they take."""

    __slots__ = ("module", "qualname", "count", "size")

    def __init__(self, module: str, qualname: str, count: int = 0, size: int = 0) -> None:
        self.module = module
        self.qualname = qualname
        self.count = count
        self.size = size

    def as_dict(self) -> dict[str, object]:
        return {"module": self.module, "class": self.qualname, "count": self.count, "size": self.size}

    def __repr__(self) -> str:
        return f"<ClassUsage {self.module}:{self.qualname} {self.count} result(s), {self.size:,} bytes>"


class ResultSize:
    """One committed result and the bytes it takes (record and run files included)."""

    __slots__ = ("id", "module", "qualname", "size")

    def __init__(self, id: str, module: str, qualname: str, size: int) -> None:
        self.id = id
        self.module = module
        self.qualname = qualname
        self.size = size

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "module": self.module, "class": self.qualname, "size": self.size}

    def __repr__(self) -> str:
        return f"<ResultSize {self.qualname} [{self.id[:6]}] {self.size:,} bytes>"


class DiskUsage:
    """What `du` found: `classes` largest first, the `largest` results largest first, and the
    totals (`count`, `size` in bytes) of the committed results counted."""

    __slots__ = ("classes", "largest", "count", "size")

    def __init__(self, classes: list[ClassUsage], largest: list[ResultSize]) -> None:
        self.classes = classes
        self.largest = largest
        self.count = sum(usage.count for usage in classes)
        self.size = sum(usage.size for usage in classes)

    def as_dict(self) -> dict[str, object]:
        return {
            "count": self.count, "size": self.size,
            "classes": [usage.as_dict() for usage in self.classes],
            "largest": [item.as_dict() for item in self.largest],
        }

    def __repr__(self) -> str:
        return f"<DiskUsage {self.count} result(s) in {len(self.classes)} class(es), {self.size:,} bytes>"


def du(module: str | None = None, *, largest: int = 10, storage: Storage | str | None = None) -> DiskUsage:
    """The bytes the committed results of `storage` (default: the current one) take, per class,
    and its `largest` results; from the records alone (the classes' code is not imported).

    Args:
        module: only the results of this module (as their records name it), or of one class
            of it (``"module:Class"``); default: every result.

    Raises:
        InterfaceNotFoundError: `module` names no committed result.
    """
    import heapq

    store = _settings.current_storage(storage)
    wanted_module, _, wanted_class = (module or "").partition(":")
    classes: dict[tuple[str, str], ClassUsage] = {}
    keep = max(largest, 0)
    # The `largest` kept in a heap, smallest first: memory stays bounded at any size.
    heap: list[tuple[int, str, str, str]] = []
    local = not store.is_remote and store.supports_local_files
    for chunk in _mapped_chunks(store, list(store.iter_ids()), _sizes, (), local):
        for id, found_module, qualname, size in chunk:
            if module and (found_module != wanted_module or (wanted_class and qualname != wanted_class)):
                continue
            name = (found_module, qualname)
            usage = classes.get(name)
            if usage is None:
                usage = classes[name] = ClassUsage(*name)
            usage.count += 1
            usage.size += size
            # Ordered as the report is, larger first, then by id: the heap's smallest entry is
            # the smallest size with the last id, hence ids in reverse order in the key.
            item = (size, _reverse_order(id), found_module, qualname)
            if len(heap) < keep:
                heapq.heappush(heap, item)
            elif keep and item > heap[0]:
                heapq.heapreplace(heap, item)
    if module and not classes:
        raise InterfaceNotFoundError(
            f"no committed result of {module} in {store.url}; `retain du` without a module lists the classes there"
        )
    ordered = sorted(classes.values(), key=lambda usage: (-usage.size, usage.module, usage.qualname))
    biggest = [ResultSize(_reverse_order(key), found_module, qualname, size)
               for size, key, found_module, qualname in sorted(heap, reverse=True)]
    return DiskUsage(ordered, biggest)


_FLIP = str.maketrans("0123456789abcdef", "fedcba9876543210")


def _reverse_order(id: str) -> str:
    """`id` with each hex digit d replaced by 15 - d: sorts in the reverse order of ids (and is
    its own inverse)."""
    return id.translate(_FLIP)


def _sizes(store: Storage, ids: list[str]) -> list[tuple[str, str, str, int]]:
    """(id, module, class, bytes) of each committed id of `ids`; ids removed meanwhile left out."""
    out = []
    for id in ids:
        data = store.read_record(id)
        if data is None:
            continue  # removed since the listing
        try:
            fields = index_fields(data, os.path.join(store.local_directory(id), RECORD_FILE), id)
            module, qualname = fields["module"], fields["class"]
        except RecordError:
            module, qualname = "?", "(damaged record)"  # still bytes on disk: `retain verify` says more
        out.append((id, module, qualname, store.size(id)))
    return out


# -- verify -----------------------------------------------------------------------------------------


class Problem:
    """One thing `verify` found wrong: the `id` concerned (None: the storage's own files),
    its `kind` (a key of `KINDS`), `what` is wrong, how to `fix` it, and what a repair did
    (`repaired`; None when it was not repaired)."""

    __slots__ = ("id", "kind", "what", "fix", "repaired", "path")

    def __init__(self, id: str | None, kind: str, what: str, fix: str, path: str | None = None) -> None:
        self.id = id
        self.kind = kind
        self.what = what
        self.fix = fix
        self.repaired: str | None = None
        #: The file or directory concerned, where a repair acts on one.
        self.path = path

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "what": self.what, "fix": self.fix, "repaired": self.repaired}

    def __repr__(self) -> str:
        return f"<Problem {self.kind} {self.id or '-'}: {self.what}>"


class VerifyReport:
    """What `verify` found: the `problems` (each with what a repair did), how many records it
    `checked`, and whether the storage is whole (`ok`: no problem left unrepaired)."""

    __slots__ = ("problems", "checked", "storage")

    def __init__(self, problems: list[Problem], checked: int, storage: str) -> None:
        self.problems = problems
        self.checked = checked
        self.storage = storage

    @property
    def unrepaired(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.repaired is None]

    @property
    def ok(self) -> bool:
        return not self.unrepaired

    def as_dict(self) -> dict[str, object]:
        return {
            "storage": self.storage, "checked": self.checked, "ok": self.ok,
            "problems": [problem.as_dict() for problem in self.problems],
        }

    def __repr__(self) -> str:
        return f"<VerifyReport {self.checked} record(s), {len(self.problems)} problem(s), {len(self.unrepaired)} left>"


def verify(*, repair: bool = False, storage: Storage | str | None = None) -> VerifyReport:
    """Read every record of `storage` (default: the current one) and check that its id matches
    its content, its inputs are committed, its summary and run files are whole and consistent,
    and the index agrees with the records; find directories without a record untouched for an
    hour (orphans), temporaries of killed writers and leftovers of killed removals.

    Args:
        repair: mend what is safe: rebuild the index, delete the temporaries and removal
            leftovers, remove the orphans (through the removal area). Records are never
            touched, nor anything in the directory of a record whose id does not match.

    Returns:
        The problems, one per thing wrong, with what a repair did to each.
    """
    # threading and contextlib load with the first verify (the CLI imports this module).
    from .index._rebuild_workers import paused_gc

    store = _settings.current_storage(storage)
    with paused_gc():  # many small objects and no cycles: the collector would only slow it
        return _verify(store, repair)


def _verify(store: Storage, repair: bool) -> VerifyReport:
    now = time.time()
    local = not store.is_remote and store.supports_local_files
    problems: list[Problem] = []
    # What the index is compared with, kept small (memory stays bounded at a million results):
    # per id (the listing's string), one int: a hash of its record's module, class, kind and
    # config text, and the number of its class.
    records: dict[str, int] = {}
    classes: dict[str, int] = {}
    mismatched: set[str] = set()
    inputs: list[tuple[str, list[tuple[str, str]]]] = []
    directories = list(store.iter_directories())
    others = set(store.iter_ids()) if not local else set()  # committed ids (else: the records')
    checked = 0
    start = 0
    for chunk in _checked_chunks(store, directories, now, local):
        names = directories[start:start + len(chunk)]  # in the chunk's order
        start += len(chunk)
        for id, (_, state, module, qualname, kind, text, used, found) in zip(names, chunk):
            problems += [Problem(*item) for item in found]
            if state in ("gone", "uncommitted"):
                continue
            checked += 1
            if state == "record":
                number = classes.setdefault(qualname, len(classes))
                records[id] = (hash((module, qualname, kind, text)) & _HASH_MASK) << _CLASS_BITS | number
                if used:
                    inputs.append((id, used))
            else:
                others.add(id)
                if state == "id-mismatch":
                    mismatched.add(id)
    del directories
    for id, used in inputs:
        for input_id, input_class in used:
            if input_id not in records and input_id not in others:
                problems.append(Problem(
                    id, "input-missing",
                    f"its input {input_class} [{input_id}] is not committed in {store.url}",
                    f"restore {input_id} from a backup, or remove this result (retain rm {id})",
                ))
    if local:
        problems += _meta_leftovers(store)
    problems += _check_index(store, records, {number: name for name, number in classes.items()},
                             others - records.keys(), now, local)
    if repair:
        _repair(store, problems, mismatched)
    return VerifyReport(problems, checked, store.url)


#: Directories below which checking them in this process is faster than starting workers.
PARALLEL_MIN = 10_000
_CHUNK = 1_000


def _checked_chunks(
    store: Storage, ids: list[str], now: float, local: bool, records: bool = True
) -> Iterator[list[Checked]]:
    """`_check_directories` of `ids` by chunks, in worker processes when there are many."""
    return _mapped_chunks(store, ids, _check_directories, (now, local, records), local)


def _mapped_chunks(
    store: Storage, ids: list[str], work: Callable[..., list[Any]], args: tuple[Any, ...], local: bool
) -> Iterator[list[Any]]:
    """``work(store, chunk, *args)`` of `ids` by chunks of `_CHUNK`, in order: in forked worker
    processes when there are many ids of a local storage (each directory is independent of
    the others; see `retain.index._rebuild_workers` for when forking is safe), else here.
    `work` is a module-level function whose results `marshal` can carry. A few chunks are in
    flight at a time, so memory stays bounded however many ids there are."""
    chunks = [ids[start:start + _CHUNK] for start in range(0, len(ids), _CHUNK)]
    pool = _pool(store, len(ids)) if local else None
    if pool is None:
        for chunk in chunks:
            yield work(store, chunk, *args)
        return
    import marshal
    from collections import deque
    from concurrent.futures.process import BrokenProcessPool

    done = 0
    try:
        with pool:
            pending: deque[Any] = deque()
            submitted = 0
            while done < len(chunks):
                # Enough chunks ahead to keep every worker busy while results are read here.
                while submitted < len(chunks) and len(pending) < _AHEAD:
                    pending.append(pool.submit(_in_worker, work, chunks[submitted], args))
                    submitted += 1
                result = marshal.loads(pending.popleft().result())
                done += 1
                yield result
    except (BrokenProcessPool, OSError):  # a worker died (out of memory?): the rest here
        pass
    for chunk in chunks[done:]:
        yield work(store, chunk, *args)


#: Chunks submitted to the workers and not yet read back, at most.
_AHEAD = 16


def _pool(store: Storage, count: int) -> Any:
    """A pool of forked workers to check `count` directories of a local storage, or None."""
    from .index._rebuild_workers import forked_pool  # loads threading: only here

    if count < PARALLEL_MIN:
        return None
    made = forked_pool(_start_worker, (store,))
    return None if made is None else made[0]


_worker_storage: Storage | None = None


def _start_worker(store: Storage) -> None:
    global _worker_storage
    _worker_storage = store


def _in_worker(work: Callable[..., list[Any]], ids: list[str], args: tuple[Any, ...]) -> bytes:
    import gc
    import marshal

    gc.disable()  # short-lived objects without cycles (see `verify`)
    assert _worker_storage is not None
    return marshal.dumps(work(_worker_storage, ids, *args))


def _check_directories(
    store: Storage, ids: list[str], now: float, local: bool, records: bool = True
) -> list[Checked]:
    """Check the directories of `ids`: each record (unless not `records`: `leftovers`), its
    summary and run files, and (`local`) temporaries, and whether a directory without a record
    is an orphan."""
    out: list[Checked] = []
    for id in ids:
        directory = store.local_directory(id)
        data = store.read_file(id, RECORD_FILE) if records else b"" if store.has_record(id) else None
        found: list[Problem] = []
        state, module, qualname, kind, text, used = "uncommitted", "", "", "", "", []
        if local:
            tree = _scan(directory, now, data is None)
            if tree is None:
                out.append((id, "gone", "", "", "", "", [], []))
                continue  # removed since the listing
            names, temporaries, newest = tree
        else:
            names, temporaries, newest = None, [], now
        if data is None:
            if local and now - newest > ORPHAN_AGE:
                hours = (now - newest) / 3600
                found.append(Problem(
                    id, "orphan",
                    f"directory {directory} has no record and nothing in it changed for {hours:.1f} h "
                    "(a killed commit, or files of an interface never committed)",
                    "retain verify --repair removes it (or commit the interface that saved those files)",
                    directory,
                ))
                temporaries = []  # they go with it
        else:
            record = _check_record(store, id, directory, data, names, found) if records else "unchecked"
            if isinstance(record, dict):
                state, module, qualname, kind = "record", record["module"], record["class"], record["kind"]
                text = _config_text(data) or _encode_config(record["config"])
                if _REF_BYTES in data:  # most records have no input: their configs are not walked
                    used = _inputs(record["config"])
            else:
                state = record
        for path, age in temporaries:
            found.append(Problem(
                id, "temporary",
                f"{path} is a temporary file of a writer that is gone ({age / 3600:.1f} h old)",
                "retain verify --repair deletes it",
                path,
            ))
        out.append((id, state, module, qualname, kind, text, used,
                    [(p.id, p.kind, p.what, p.fix, p.path) for p in found]))
    return out


_encoder: Any = None


def _encode_config(config: Any) -> str:
    """A config as the index stores it (sorted keys, compact)."""
    global _encoder
    if _encoder is None:
        import json

        _encoder = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode
    text: str = _encoder(config)
    return text


def _scan(directory: str, now: float, uncommitted: bool) -> tuple[list[str], list[tuple[str, float]], float] | None:
    """The top-level names of a directory, its abandoned temporaries (path, age; at any depth,
    never through a symbolic link) and, where `uncommitted`, the newest modification time in it
    (whether someone still writes there; a committed directory is never an orphan, so its
    files are not looked at one by one); None when it is gone."""
    names: list[str] = []
    temporaries: list[tuple[str, float]] = []
    newest = 0.0
    if uncommitted:
        try:
            newest = os.stat(directory).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None
    pending = [directory]
    top = True
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            if top:
                return None
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if top:
                    names.append(name)
                try:
                    # Plain files of a committed directory cost one test each: d_type, no stat.
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif name.startswith(TEMP_PREFIX):
                        age = now - entry.stat(follow_symlinks=False).st_mtime
                        if is_abandoned(name, age):
                            temporaries.append((entry.path, age))
                    if uncommitted:
                        newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
                except FileNotFoundError:
                    continue
        top = False
    return names, temporaries, newest


def _check_record(
    store: Storage, id: str, directory: str, data: bytes, names: list[str] | None, problems: list[Problem]
) -> dict[str, Any] | str:
    """The record of `id` if whole, after checking its summary and run files; else the kind
    of the problem added."""
    where = f"{directory}/{RECORD_FILE}"
    record = _parse(data)
    if record is None:
        problems.append(_damaged(id, f"{where} is not valid JSON", where))
        return "record-damaged"
    if not isinstance(record, dict):
        problems.append(_damaged(id, f"{where} is not a JSON object", where))
        return "record-damaged"
    module, qualname, canonical = record.get("module"), record.get("class"), record.get("canonical_config")
    if record.get("scheme") == SCHEME and isinstance(module, str) and isinstance(qualname, str) \
            and isinstance(canonical, dict):
        try:
            content = compute_id(module, qualname, canonical)
        except ValueError:  # NaN or the like in a hand-edited record
            content = "(cannot be hashed)"
        if content != id:
            recorded = record.get("id")
            problems.append(Problem(
                id, "id-mismatch",
                f"{qualname} [{id}]: its module, class and canonical config hash to {content}"
                + ("" if recorded == id else f", and the record says id {recorded}")
                + " (edited by hand, or copied into the wrong directory?)",
                f"restore {where} from a backup, or move the directory aside; verify --repair leaves it as it is",
                where,
            ))
            return "id-mismatch"
    try:
        check_record(record, where, id, content=False)  # the hash is checked above
    except RecordError as exc:
        problems.append(_damaged(id, str(exc), where))
        return "record-damaged"
    if names is None or SUMMARY_FILE in names:
        summary = store.read_file(id, SUMMARY_FILE)
        if summary is not None and type(_parse(summary)) is not dict:
            problems.append(Problem(
                id, "summary-damaged", f"{store.url}/{id}/{SUMMARY_FILE} is not a JSON object",
                "save the summary again (interface.save_summary), or delete summary.json",
            ))
    if record["kind"] == "Component":
        _check_runs(store, id, record["class"], names, problems)
    return record


def _parse(data: bytes) -> Any:
    """JSON bytes parsed (None when they are not JSON): `json.loads` without its per-call
    overhead, a large part of verifying a small record."""
    try:
        text = data.decode("utf-8")
        value, end = raw_decoder()(text)
    except ValueError:  # UnicodeDecodeError included
        return None
    if text[end:].strip():
        return None
    return value


def _damaged(id: str, what: str, where: str) -> Problem:
    return Problem(id, "record-damaged", what, f"restore {where} from a backup, or move its directory aside", where)


def _check_runs(store: Storage, id: str, qualname: str, names: list[str] | None, problems: list[Problem]) -> None:
    """The run files of component `id`: claims numbered without gaps, an end for a claimed run
    only, ends whole, and a finished marker only beside the end of a finished run."""
    import json

    def read(name: str) -> dict[str, Any] | None:
        data = store.read_file(id, name)
        try:
            value = json.loads(data) if data is not None else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def problem(what: str, fix: str) -> None:
        problems.append(Problem(id, "run-files", f"{qualname} [{id}]: {what}", fix))

    rerun = f"retain rerun {id} (runs it again from scratch), or restore its run files from a backup"
    if names is None:  # an object store: no listing here, probe the runs in order
        claims, run = [], 0
        while store.has_file(id, f"{RUNTIME_PREFIX}claim-{run + 1:06d}.json"):
            run += 1
            claims.append(run)
        ends = [n for n in claims if store.has_file(id, end_file(n))]
        finished = store.has_file(id, FINISHED_FILE)
    else:
        claims = sorted(_run_numbers(names, "claim"))
        ends = sorted(_run_numbers(names, "end"))
        finished = FINISHED_FILE in names
    if claims and claims != list(range(1, claims[-1] + 1)):
        gaps = sorted(set(range(1, claims[-1] + 1)) - set(claims))
        problem(f"the claims of run(s) {', '.join(map(str, gaps))} are missing (runs are numbered without gaps)",
                rerun)
    for run in ends:
        if run not in claims:
            problem(f"run {run} has an end but no claim", rerun)
        end = read(end_file(run))
        if end is None or end.get("status") not in ("finished", "failed", "died"):
            problem(f"the end of run {run} ({end_file(run)}) is damaged", rerun)
    if finished:
        marker = read(FINISHED_FILE)
        by = marker.get("run") if marker is not None else None
        end = read(end_file(by)) if isinstance(by, int) and by in ends else None
        if marker is None or marker.get("status") != "finished":
            problem(f"its finished marker ({FINISHED_FILE}) is damaged or does not say finished", rerun)
        elif end is None or end.get("status") != "finished":
            problem(f"it is marked finished by run {by}, whose end is missing or not finished", rerun)


def _run_numbers(names: list[str], what: str) -> list[int]:
    start, out = f"{RUNTIME_PREFIX}{what}-", []
    for name in names:
        if name.startswith(start) and name.endswith(".json"):
            number = name[len(start):-len(".json")]
            if number.isdigit():
                out.append(int(number))
    return out


def _inputs(value: Any) -> list[tuple[str, str]]:
    """The (id, class) of every interface a config refers to, at any depth."""
    return [(str(ref[REF_KEY]), str(ref.get("class", "?"))) for ref in references(value)]


def _meta_leftovers(store: Storage) -> list[Problem]:
    """Temporaries of killed writers in the storage's own ``.retain/``, and what killed
    removals left in its removal area."""
    root = store.local_root()
    if root is None:
        return []
    area = removal_area(root)
    out = [
        Problem(
            None, "temporary",
            f"{path} is a temporary file of a writer that is gone ({age / 3600:.1f} h old)",
            "retain verify --repair deletes it", path,
        )
        for path, age in abandoned_temporaries(os.path.join(root, STORAGE_META_DIR), skip=area)
    ]
    try:
        leftovers = sorted(os.listdir(area))
    except (FileNotFoundError, NotADirectoryError):
        leftovers = []
    for name in leftovers:
        # `<id>.<pid>.<token>`: a remover alive here deletes it in a moment; deleting what a
        # dead one left is always safe (its rename was the removal's commit point).
        if writer_alive(name):
            continue
        path = os.path.join(area, name)
        out.append(Problem(
            name.split(".")[0], "removal-leftover",
            f"{path} is what a removal killed midway left (invisible, but it takes space)",
            "retain verify --repair deletes it (so does the next retain rm)", path,
        ))
    return out


#: What killed processes leave (`leftovers`): never a result, always safe to delete.
LEFTOVER_KINDS = ("temporary", "orphan", "removal-leftover")


def leftovers(store: Storage, progress: Callable[[int, int], Any] | None = None) -> list[Problem]:
    """What killed processes left in a local `store` (none found elsewhere): temporaries of
    dead writers, orphans (as `verify` finds them) and removal leftovers; the walk of
    `verify` without reading the records, calling ``progress(directories done, total)``.
    `repair_leftovers` deletes them."""
    if store.is_remote or not store.supports_local_files:
        return []
    problems: list[Problem] = []
    directories = list(store.iter_directories())
    done = 0
    for chunk in _checked_chunks(store, directories, time.time(), True, records=False):
        for item in chunk:
            problems += [Problem(*found) for found in item[-1]]
        done += len(chunk)
        if progress is not None:
            progress(done, len(directories))
    return problems + _meta_leftovers(store)


def repair_leftovers(store: Storage, problems: list[Problem]) -> None:
    """Delete the `leftovers` found (what `verify(repair=True)` does to them)."""
    _repair(store, [problem for problem in problems if problem.kind in LEFTOVER_KINDS], set())


def _config_text(data: bytes) -> str | None:
    """The config's line of a record in the layout `encode_record` writes (what the index
    stores as it is), or None in another layout. JSON strings escape their newlines: the line
    ends at the first."""
    start = data.find(_CONFIG_LINE)
    if start < 0:
        return None
    start += len(_CONFIG_LINE)
    end = data.find(b"\n", start)
    try:
        return data[start:end].rstrip(b",").decode("utf-8")
    except UnicodeDecodeError:
        return None


_CONFIG_LINE = b'\n  "config": '


#: How `verify` keeps a record: a hash of its texts, then the number of its class.
_CLASS_BITS = 20
_HASH_MASK = (1 << 44) - 1


def _check_index(
    store: Storage, records: dict[str, int], classes: dict[int, str], unreadable: set[str], now: float,
    local: bool,
) -> list[Problem]:
    """Index rows against the records: the same ids, and each row what its record says. The
    rows are read chunk by chunk (`Index.scan`); a row whose hash differs from its record's
    has the record read again to say how. Takes the ids it meets out of `records`."""
    import json

    fix = "retain verify --repair (or retain index rebuild) rebuilds the index from the records"
    out = []
    try:
        _updates.flush()  # this process's deferred updates are the index's, not a disagreement
        index = make_index(None, store)
        for _, rows in index.scan(None):
            for row in rows:
                id = row[0]
                record = records.pop(id, None)
                if record is None:
                    if id not in unreadable:
                        out.append(Problem(id, "index-extra", f"the index lists {row[2]} [{id}], which is not committed", fix))
                    continue
                if hash((row[1], row[2], row[3], row[5])) & _HASH_MASK == record >> _CLASS_BITS:
                    continue  # what most rows find: the same texts
                again = _check_directories(store, [id], now, local)[0]
                if again[1] != "record":
                    continue  # changed since it was read: its own problems were reported then
                _, _, module, qualname, kind, text = again[:6]
                differs = [name for name, mine, theirs in (("module", module, row[1]), ("class", qualname, row[2]),
                                                           ("kind", kind, row[3])) if mine != theirs]
                if row[5] != text:
                    try:
                        same = json.loads(row[5]) == json.loads(text)
                    except ValueError:
                        same = False
                    if not same:
                        differs.append("config")
                if differs:
                    out.append(Problem(
                        id, "index-differs",
                        f"the index row of {qualname} [{id}] differs from its record in {', '.join(differs)}", fix,
                    ))
    except RetainError as exc:
        return [Problem(None, "index-damaged", f"the index of {store.url} cannot be read: {exc}", fix)]
    out.sort(key=lambda problem: problem.id or "")
    for id in sorted(records):
        qualname = classes[records[id] & ((1 << _CLASS_BITS) - 1)]
        out.append(Problem(id, "index-missing", f"{qualname} [{id}] is committed but not in the index", fix))
    return out


def _repair(store: Storage, problems: list[Problem], mismatched: set[str]) -> None:
    import shutil  # here: `import retain` does not load shutil

    for problem in problems:
        if problem.kind not in REPAIRABLE or (problem.kind == "temporary" and problem.id in mismatched):
            continue
        path = problem.path
        if problem.kind == "temporary" and path is not None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            problem.repaired = "deleted"
        elif problem.kind == "removal-leftover" and path is not None:
            shutil.rmtree(path, ignore_errors=True)
            problem.repaired = "deleted"
        elif problem.kind == "orphan" and problem.id is not None:
            problem.repaired = _remove_orphan(store, problem.id)
    index_problems = [p for p in problems if p.kind.startswith("index-")]
    if index_problems:
        import warnings

        with warnings.catch_warnings():
            # Damaged records are reported by verify already; the rebuild would warn again.
            warnings.simplefilter("ignore")
            count = rebuild(store)
        for problem in index_problems:
            problem.repaired = f"index rebuilt ({count} interface(s))"


def _remove_orphan(store: Storage, id: str) -> str | None:
    """Move the directory of uncommitted `id` into the removal area and delete it; None (left
    in place) when a record appeared meanwhile."""
    import shutil

    root = store.local_root()
    directory = store.local_directory(id)
    if root is None or store.has_record(id):
        return None
    area = removal_area(root)
    os.makedirs(area, exist_ok=True)
    target = f"{area}/{id}.{os.getpid()}.{os.urandom(4).hex()}"
    try:
        os.rename(directory, target)
    except FileNotFoundError:
        return "gone already"
    if os.path.exists(os.path.join(target, RECORD_FILE)):
        # Committed between the check and the rename: put it back, whole.
        os.rename(target, directory)
        return None
    shutil.rmtree(target, ignore_errors=True)
    return "removed"
