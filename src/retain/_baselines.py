"""Identity baselines: for each class in a storage, the value of each config key that identity
leaves out.

The canonical config drops the keys whose value equals the key's baseline. A key's baseline is
the default the storage first saw for it, recorded once (never changed) in the storage's own
files (`storage/layout.py`, "Identity baselines"), not today's default. Hence:

- a default that changes gives the new value a new id, and the old result stays found by its
  own value (its key now differs from the baseline, so it is kept, as it was at commit);
- a key added with a default is recorded with that default: every older result, which has no
  such key, keeps its id, and is found with or without the key given;
- two different resolved configurations never share an id in one storage: a commit records
  the baselines of its class (exclusive create) before it publishes its record, and computes
  its id again if another process recorded other values first.

Keys are added to a class's baselines, never changed, with one exception by design: nothing is
added below a recorded empty mapping (an open config, whose keys are the user's choice, so a
key there that was absent meant absent, not "at its default").

A storage written by an earlier release has records and no baselines: they are inferred from
the records (a key dropped from a record's canonical config had its default as value),
oldest record first, and written at the first commit (`get` never writes: until then each
process infers them in memory). A record written since keeps its baselines in its field
``baseline``, so the files can always be rebuilt from the records (delete
``.retain/baselines/``).
"""

from __future__ import annotations

# `_thread`, not `threading`: built in, so `import retain` stays cheap (threading costs ~2 ms).
import _thread

from ._errors import RecordError, StorageError
from .identity import REF_KEY, remove_paths
from .storage.layout import (
    BASELINES_READY,
    RECORD_FILE,
    baseline_name,
    decode_baseline,
    decode_record,
    encode_baseline,
)
from .element import normalize_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .storage import Storage

__all__ = ["effective", "fill", "record", "recorded", "reset_cache", "trees_of"]

#: Attempts at recording a class's baselines before giving up (each lost race re-reads).
_ATTEMPTS = 50


class _Entry:
    """What this process knows of one class's baselines in one storage."""

    __slots__ = ("version", "recorded", "defaults", "effective", "complete")

    def __init__(self) -> None:
        self.version = 0  # the latest version read (0: none)
        self.recorded: dict[str, Any] | None = None
        self.defaults: dict[str, Any] | None = None  # the defaults `effective` was merged with
        self.effective: dict[str, Any] | None = None
        self.complete = False  # `recorded` covers `defaults`: `effective` is final


class _StorageState:
    __slots__ = ("ready", "inferred")

    def __init__(self) -> None:
        self.ready = False  # baselines/ready.json exists (or the storage holds no record)
        #: an earlier release's storage, not migrated yet: baselines inferred in memory
        self.inferred: dict[tuple[str, str], dict[str, Any]] | None = None


_lock = _thread.RLock()
_entries: dict[tuple[Storage, str, str], _Entry] = {}
_storages: dict[Storage, _StorageState] = {}


def reset_cache() -> None:
    """Forget what this process read (tests; a storage whose baselines were removed)."""
    with _lock:
        _entries.clear()
        _storages.clear()


def effective(storage: Storage, module: str, qualname: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """The baselines identity compares a config with: the recorded ones, completed with
    today's `defaults` (normalised JSON) for keys not recorded yet. Never writes."""
    entry = _entries.get((storage, module, qualname))
    if entry is not None and entry.complete and entry.defaults is defaults:
        return entry.effective  # type: ignore[return-value]
    with _lock:
        entry = _refresh(storage, module, qualname, defaults, write=False)
        return entry.effective  # type: ignore[return-value]


def record(storage: Storage, module: str, qualname: str, defaults: dict[str, Any], *, durable: bool = False) -> dict[str, Any]:
    """Record today's `defaults` as the baselines of the keys that have none yet (a commit
    does this before it publishes its record); the baselines in force afterwards.

    Raises:
        StorageError: the storage cannot be written, or other writers kept winning.
    """
    entry = _entries.get((storage, module, qualname))
    if entry is not None and entry.complete and entry.defaults is defaults:
        return entry.effective  # type: ignore[return-value]
    with _lock:
        for _ in range(_ATTEMPTS):
            entry = _refresh(storage, module, qualname, defaults, write=True)
            if entry.complete:
                return entry.effective  # type: ignore[return-value]
            tree = entry.effective
            assert tree is not None
            name = baseline_name(module, qualname, entry.version + 1)
            if storage.create_meta(name, encode_baseline(module, qualname, tree), durable=durable):
                entry.version += 1
                entry.recorded = tree
                entry.complete = True
                return tree
            # Another process recorded this version first: read it and try again.
    raise StorageError(
        f"could not record the identity baselines of {module}:{qualname} in {storage.url}: "
        f"other processes kept recording new ones ({_ATTEMPTS} attempts)"
    )


def recorded(storage: Storage, module: str, qualname: str) -> dict[str, Any] | None:
    """The baselines `storage` holds for a class (inferred from the records of a storage not
    migrated yet), or None when it has none. Never writes."""
    with _lock:
        return _refresh(storage, module, qualname, {}, write=False).recorded


def _refresh(storage: Storage, module: str, qualname: str, defaults: dict[str, Any], *, write: bool) -> _Entry:
    key = (storage, module, qualname)
    entry = _entries.get(key)
    if entry is None:
        entry = _entries[key] = _Entry()
    state = _storage_state(storage, write)
    if state.inferred is not None:
        entry.recorded = state.inferred.get((module, qualname))
    else:
        while True:
            name = baseline_name(module, qualname, entry.version + 1)
            data = storage.read_meta(name)
            if data is None:
                break
            entry.recorded = decode_baseline(data, f"{storage.url}/.retain/{name}", module, qualname)
            entry.version += 1
    recorded = entry.recorded
    entry.defaults = defaults
    if recorded is None:
        entry.effective = defaults
        entry.complete = False
    else:
        merged = merge(recorded, defaults)
        entry.effective = merged
        # Final only once recorded: in-memory inferences are written by the next commit.
        entry.complete = merged is recorded and state.inferred is None
    return entry


def merge(recorded: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`recorded` with the keys of `defaults` that it lacks; `recorded` itself (the same
    object) when it lacks none. Nothing is added below a recorded empty (open) mapping."""
    if not recorded:
        return recorded
    out: dict[str, Any] | None = None
    for key, value in defaults.items():
        if key not in recorded:
            merged = value
        else:
            old = recorded[key]
            if type(old) is dict and type(value) is dict and REF_KEY not in old and REF_KEY not in value:
                merged = merge(old, value)
                if merged is old:
                    continue
            else:
                continue
        if out is None:
            out = dict(recorded)
        out[key] = merged
    return recorded if out is None else out


def fill(config: dict[str, Any], baseline: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`config` (a record's, as JSON) with the keys that today's `defaults` declare and the
    record lacks set to their baselines: what the record's identity means for them (a key
    added since the commit)."""
    out: dict[str, Any] | None = None
    for key, default in defaults.items():
        if key not in baseline:
            continue
        if key not in config:
            value = baseline[key]
        else:
            current = config[key]
            if type(current) is dict and type(default) is dict and type(baseline[key]) is dict and REF_KEY not in current:
                value = fill(current, baseline[key], default)
                if value is current:
                    continue
            else:
                continue
        if out is None:
            out = dict(config)
        out[key] = value
    return config if out is None else out


# -- storages written by an earlier release --------------------------------------------------


def _storage_state(storage: Storage, write: bool) -> _StorageState:
    state = _storages.get(storage)
    if state is None:
        state = _storages[storage] = _StorageState()
    if state.ready and state.inferred is None:
        return state
    if storage.read_meta(BASELINES_READY) is not None:
        state.ready = True
        state.inferred = None
        return state
    if state.inferred is None:
        inferred = infer_from_records(storage)
        if not inferred and not write:
            return state  # nothing committed yet: nothing to migrate
        state.inferred = inferred
    if write:
        _write_migration(storage, state.inferred)
        state.ready = True
        state.inferred = None
    return state


def _write_migration(storage: Storage, inferred: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (module, qualname), tree in sorted(inferred.items()):
        # Version 1 exists only if another process migrated at the same time, from the same
        # records: its values are these.
        storage.create_meta(baseline_name(module, qualname, 1), encode_baseline(module, qualname, tree))
    storage.create_meta(BASELINES_READY, b'{"format": "retain.baselines"}\n')


def infer_from_records(storage: Storage) -> dict[tuple[str, str], dict[str, Any]]:
    """The baselines of every class in `storage`, from its records alone (oldest first): a
    record's field ``baseline``, or, for a record of an earlier release, the values of the
    keys its canonical config left out. Unreadable records are skipped."""
    ids = list(storage.iter_ids())
    if not ids:
        return {}
    found = storage.read_files((id, RECORD_FILE) for id in ids)
    records = []
    for (id, _), data in found.items():
        try:
            records.append(decode_record(data, f"{storage.url}/{id}/{RECORD_FILE}", id))
        except RecordError:
            continue
    return trees_of(records)


def trees_of(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The baselines of each class (module, class) that decoded `records` imply, the oldest
    record first for a key: a record's field ``baseline``, or, for a record of an earlier
    release, the values of the keys its canonical config left out."""
    records = sorted(records, key=lambda r: (r["created"], r["id"]))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in records:
        tree = rec.get("baseline")
        if not isinstance(tree, dict):
            paths = tuple(p for p in rec.get("non_identifying") or () if isinstance(p, str))
            config = remove_paths(normalize_json(rec["config"]), paths)
            tree = _dropped(config, rec["canonical_config"])
            if not tree:
                continue  # nothing was at its default: nothing learnt
        key = (rec["module"], rec["class"])
        known = out.get(key)
        out[key] = tree if known is None else merge(known, tree)
    return out


def _dropped(config: dict[str, Any], canonical: dict[str, Any]) -> dict[str, Any]:
    """The values of `config` that `canonical` leaves out: they equalled their defaults."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key not in canonical:
            out[key] = value
            continue
        kept = canonical[key]
        if type(value) is dict and type(kept) is dict and REF_KEY not in value:
            sub = _dropped(value, kept)
            if sub:
                out[key] = sub
    return out
