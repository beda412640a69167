"""What `retain ui` shows, as JSON-ready values, read from a storage and its index only.

Nothing here writes to the storage. Tables are pages of an index query whose rows are kept
between requests while the storage has not changed (`Storage.change_token`), so paging and
sorting 100,000 results do not query the index again; a result's record and files are read
through the storage, its runs through `ExecutionStatus.of`.
"""

from __future__ import annotations

import ast
import importlib
import io
import json
import math
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

# The public API, as a user's script uses it: views are clients of the format (docs/design.md).
from .. import (
    ConfigError,
    ExecutionStatus,
    Interface,
    InterfaceNotFoundError,
    RecordError,
    UnsafePathError,
    get,
    one_of,
)
from .._annotations import read as read_annotations
from .._syntax import recreate_command, where_groups
from ..collection import input_classes
from ..identity import REF_KEY, is_id
from ..index.base import config_leaves
from ..storage.layout import OUTPUT_LOG, RECORD_FILE, decode_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..collection import Collection
    from ..storage.base import Storage

__all__ = ["Source", "jsonable", "safe_name"]

#: The most rows one table request returns.
MAX_LIMIT = 1000
#: Rows a query result is kept at most, even when the storage shows no change (a storage
#: without a cheap change token, such as an object store, is asked again after this).
MAX_AGE_S = 60.0
MAX_AGE_REMOTE_S = 5.0
#: How many query results are kept (each is one list of index rows).
CACHE_SIZE = 16
#: How long a request waits for a query run again after a change before it is answered
#: with the previous rows (marked ``"current": false``).
REFRESH_WAIT_S = 0.05
#: Status counts of the overview are computed again after this.
STATUS_AGE_S = 2.0
#: The most bytes of a file a preview reads; of output.log, the most sent at first.
PREVIEW_BYTES = 64 * 1024
OUTPUT_TAIL_BYTES = 256 * 1024
#: The most values of a ``.npy`` file drawn as a curve.
MAX_CURVE_POINTS = 200_000
IMAGE_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".bmp": "image/bmp", ".svg": "image/svg+xml",
}


def jsonable(value: Any) -> Any:
    """`value` with non-finite floats as the strings ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"`` (JSON has no such numbers) and other objects by repr."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    return repr(value)


def _json(value: dict[str, Any]) -> dict[str, Any]:
    return {str(k): jsonable(v) for k, v in value.items()}


def safe_name(name: str) -> str:
    """`name` if it is a relative path inside a result's directory.

    Raises:
        UnsafePathError: an absolute path, a drive, a backslash, or a ``..`` part.
    """
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or (len(name) > 1 and name[1] == ":")
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise UnsafePathError(
            f"file name {name!r} is not a relative path inside the result (no '..', no absolute "
            "path); the names are those of GET /api/results/ID"
        )
    return name


class Source:
    """The data of `retain ui` over one storage (thread-safe)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._queries: dict[tuple[Any, ...], tuple[tuple[Any, ...], float, Collection[Any]]] = {}
        #: Components seen finished: that never changes, so they are not looked at again.
        self._finished: set[str] = set()
        self._states: tuple[float, dict[str, str]] | None = None
        self._pending: dict[tuple[Any, ...], Future[Collection[Any]]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._columns: dict[tuple[Any, ...], tuple[Collection[Any], dict[str, None]]] = {}
        self._inputs: dict[tuple[str, str], tuple[Collection[Any], dict[str, dict[str, Any]]]] = {}
        self._import_lock = threading.Lock()
        self._durations: dict[str, float] = {}
        self._imported: set[str] = set()

    # -- queries ------------------------------------------------------------------------------

    def _generation(self) -> tuple[Any, ...]:
        """A token that changes when the storage does (see `Storage.change_token`)."""
        token = self.storage.change_token()
        return ("remote",) if token is None else ("local", token)

    def collection(self, ref: str | None, where: list[str], sort: str | None = None) -> Collection[Any]:
        """The committed interfaces of class `ref` (``module:Class``; None: all) that pass the
        ``retain ls --where`` expressions `where`, sorted by the field `sort` (``-field``:
        largest first), newest first without (see `lookup`)."""
        return self.lookup(ref, where, sort)[0]

    def lookup(self, ref: str | None, where: list[str], sort: str | None = None) -> tuple[Collection[Any], bool]:
        """`collection`, and whether it is current.

        A query answered before is answered from memory while the storage has not changed.
        After a change, the query runs again in the background; when it takes longer than
        `REFRESH_WAIT_S`, the previous answer is returned, marked not current (False), so
        that a page of 100,000 rows never waits for the whole query.
        """
        key = (ref, tuple(where), sort)
        generation = self._generation()
        with self._lock:
            found = self._queries.get(key)
        if found is not None and self._current(found, generation):
            return found[2], True
        future = self._submit(key, generation)
        if found is None:  # nothing to show meanwhile (one query for concurrent requests)
            return future.result(), True
        try:
            return future.result(timeout=REFRESH_WAIT_S), True
        except FutureTimeout:
            return found[2], False

    def _current(self, found: tuple[tuple[Any, ...], float, Collection[Any]], generation: tuple[Any, ...]) -> bool:
        limit = MAX_AGE_REMOTE_S if generation == ("remote",) else MAX_AGE_S
        return found[0] == generation and time.monotonic() - found[1] < limit

    def _submit(self, key: tuple[Any, ...], generation: tuple[Any, ...]) -> Future[Collection[Any]]:
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None and not pending.done():
                return pending
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="retain-ui")
            future = self._pending[key] = self._executor.submit(self._compute, key, generation)
            return future

    def _compute(self, key: tuple[Any, ...], generation: tuple[Any, ...]) -> Collection[Any]:
        """Run the query of `key` now and remember its answer."""
        ref, where, sort = key
        if sort:
            base_key = (ref, where, None)
            with self._lock:
                found = self._queries.get(base_key)
            base = found[2] if found is not None and self._current(found, generation) else self._compute(base_key, generation)
            field = sort[1:] if sort.startswith("-") else sort
            if field in ("state", "duration"):
                result = self._sort_by_runs(base, field, sort.startswith("-"))
            else:
                result = base.sort(field, reverse=sort.startswith("-"))
        else:
            result = self._query(ref, list(where))
        with self._lock:
            self._queries[key] = (generation, time.monotonic(), result)
            while len(self._queries) > CACHE_SIZE:
                del self._queries[next(iter(self._queries))]
        return result

    def _sort_by_runs(self, runs: Collection[Any], field: str, reverse: bool) -> Collection[Any]:
        """`runs` sorted by state or by the duration of the latest run (read from run files,
        not the index; missing values last)."""
        kinds = runs.pluck("kind")
        if field == "state":
            states = self.states()
            values: list[Any] = [states.get(id) or self.state(id, str(kind))[0] for id, kind in zip(runs.ids(), kinds)]
        else:
            values = [self.duration(id) if kind == "Component" else None for id, kind in zip(runs.ids(), kinds)]
        return runs.sort(values, reverse=reverse)

    def warm(self) -> None:
        """Answer the overview's query and each class's table once (the first page of each
        is then served from memory)."""
        for entry in self.classes():
            self.collection(entry["class"], [])

    def _query(self, ref: str | None, where: list[str]) -> Collection[Any]:
        groups = where_groups(where)
        if ref is not None and any("." in key for group in groups for key in group):
            groups = [self._through_inputs(ref, group) for group in groups]
        first = groups[0] if groups else None
        target: Any = Interface if ref is None else ref
        if ref is not None:
            self._import(ref)
        runs = get.all(target, where=first, storage=self.storage)
        for more in groups[1:]:
            runs = runs.filter(more)
        return runs

    def _import(self, ref: str) -> None:
        """Import the module of class `ref` once, before any query names it: two threads
        resolving a class while its module is half imported would take it for missing (and
        read the records without checking the config keys of a filter)."""

        module = ref.partition(":")[0].strip()
        with self._import_lock:
            if module in self._imported:
                return
            try:
                importlib.import_module(module)
            except Exception:  # not importable here: its records are read without its code
                pass
            self._imported.add(module)

    def _through_inputs(self, ref: str, group: dict[str, Any]) -> dict[str, Any]:
        """`group` with each condition on an input's own config (``data.n``: key ``n`` of the
        interface in config key ``data``) as the inputs of class `ref` that pass it."""

        out: dict[str, Any] = {}
        chosen: dict[str, list[dict[str, Any]]] = {}
        for key, condition in group.items():
            head, _, rest = key.partition(".")
            refs = self._input_refs(ref, head) if rest and head not in ("config", "summary", "metrics") else {}
            if not refs:
                out[key] = condition
                continue
            by_class: dict[str, list[dict[str, Any]]] = {}
            for reference in refs.values():
                by_class.setdefault(f"{reference.get('module')}:{reference.get('class')}", []).append(reference)
            matched = []
            for name, references in by_class.items():
                self._import(name)
                ids = set(get.all(name, where={rest: condition}, storage=self.storage).ids())
                matched += [reference for reference in references if reference[REF_KEY] in ids]
            if head in chosen:  # two conditions on one input: both hold
                kept = {reference[REF_KEY] for reference in matched}
                matched = [reference for reference in chosen[head] if reference[REF_KEY] in kept]
            chosen[head] = matched
            out[head] = one_of(matched)
        return out

    def _input_refs(self, ref: str, key: str) -> dict[str, dict[str, Any]]:
        """The interfaces in config key `key` of the results of class `ref`, by id (empty when
        that key holds no interface): their references (``id``, ``module``, ``class``)."""

        runs = self.collection(ref, [])
        with self._lock:
            known = self._inputs.get((ref, key))
        if known is not None and known[0] is runs:
            return known[1]
        found: dict[str, dict[str, Any]] = {}
        try:
            values = runs.pluck(key)
        except ConfigError:  # not a config key of that class
            values = []
        ids = sorted({value for value in values if isinstance(value, str) and is_id(value)})
        if ids:
            inputs = get.all(Interface, where={"id": one_of(ids)}, storage=self.storage)
            for id, module, qualname in zip(inputs.ids(), inputs.pluck("module"), inputs.pluck("class")):
                found[id] = {REF_KEY: id, "module": module, "class": qualname}
        with self._lock:
            self._inputs[(ref, key)] = (runs, found)
        return found

    # -- overview -----------------------------------------------------------------------------

    def states(self) -> dict[str, str]:
        """The state of every committed component by id (other interfaces: ``committed``),
        computed again at most every `STATUS_AGE_S`."""
        with self._lock:
            cached = self._states
        if cached is not None and time.monotonic() - cached[0] < STATUS_AGE_S:
            return cached[1]
        everything = self.collection(None, [])
        out: dict[str, str] = {}
        for id, kind in zip(everything.ids(), everything.pluck("kind")):
            out[id] = self.state(id, kind)[0]
        with self._lock:
            self._states = (time.monotonic(), out)
        return out

    def state(self, id: str, kind: str) -> tuple[str, dict[str, Any] | None]:
        """(state, error) of one committed interface: a component's run state, else
        ``committed``."""
        if kind != "Component":
            return "committed", None
        if id in self._finished:
            return "finished", None
        try:
            state, error = ExecutionStatus.of(id, storage=self.storage).state_and_error()
        except RecordError as exc:
            return "unknown", {"type": "RecordError", "message": str(exc)}
        if state == "finished":
            self._finished.add(id)
        return state, error

    def classes(self) -> list[dict[str, Any]]:
        """Each class with its count, its counts by state, and its newest result; classes
        with running components first, then by newest result."""
        everything = self.collection(None, [])
        states = self.states()
        classes: dict[str, dict[str, Any]] = {}
        columns = zip(everything.ids(), everything.pluck("module"), everything.pluck("class"),
                      everything.pluck("kind"), everything.pluck("created"))
        for id, module, qualname, kind, created in columns:
            ref = f"{module}:{qualname}"
            entry = classes.get(ref)
            if entry is None:
                entry = classes[ref] = {
                    "class": ref, "module": module, "name": qualname, "kind": kind, "count": 0,
                    "states": {}, "newest": created,
                }
            entry["count"] += 1
            state = states.get(id, "unknown")
            entry["states"][state] = entry["states"].get(state, 0) + 1
            if created > entry["newest"]:
                entry["newest"] = created
        return sorted(
            classes.values(),
            key=lambda entry: (entry["states"].get("running", 0) > 0, entry["newest"]),
            reverse=True,
        )

    # -- tables -------------------------------------------------------------------------------

    def table(
        self, ref: str, where: list[str], sort: str | None, offset: int = 0, limit: int = 100
    ) -> dict[str, Any]:
        """One page of the results table of class `ref`: its rows (``id``, ``state``,
        ``created``, ``duration``, ``config.*``, ``summary.*`` and any other index columns),
        every column name, the total count, and the class of each input id shown."""

        if offset < 0 or limit < 1:
            raise ConfigError(f"offset must be >= 0 and limit >= 1; got offset={offset}, limit={limit}")
        limit = min(limit, MAX_LIMIT)
        runs, current = self.lookup(ref, where, sort)
        page = runs[offset:offset + limit]
        rows = page.to_table()
        for row, kind in zip(rows, page.pluck("kind")):
            state, error = self.state(row["id"], str(kind))
            row["state"] = state
            row["error"] = _error_line(error)
            row["duration"] = self.duration(row["id"]) if state != "committed" else None
        return _json({
            "class": ref,
            "total": len(runs),
            "current": current,
            "offset": offset,
            "limit": limit,
            "where": where,
            "sort": sort,
            "columns": self.columns(ref, where, rows),
            "rows": rows,
            "inputs": input_classes(page),
        })

    def columns(self, ref: str, where: list[str], rows: list[dict[str, Any]]) -> list[str]:
        """The table's columns: fixed ones, then every config, summary and other column of the
        first 500 results (and of `rows`), each group sorted."""
        runs = self.collection(ref, where)
        key = (ref, tuple(where))
        with self._lock:
            known = self._columns.get(key)
        if known is not None and known[0] is runs:
            seen = dict(known[1])
        else:
            seen = {}
            for row in runs[:500].to_table():
                seen.update(dict.fromkeys(row))
            with self._lock:
                self._columns[key] = (runs, dict(seen))
                while len(self._columns) > CACHE_SIZE:
                    del self._columns[next(iter(self._columns))]
        for row in rows:
            seen.update(dict.fromkeys(row))
        fixed = ["id", "state", "created", "duration"]
        hidden = {"module", "class", "kind", "error", *fixed}
        config = sorted(k for k in seen if k.startswith("config."))
        summary = sorted(k for k in seen if k.startswith("summary."))
        other = sorted(k for k in seen if k not in hidden and k not in config and k not in summary)
        return fixed + config + summary + other

    def values(self, ref: str, keys: list[str], where: list[str]) -> dict[str, Any]:
        """The values of fields `keys` (config keys, ``summary.<name>``, columns) for every
        result of class `ref` that passes `where`, as columns (for sweep plots)."""
        runs = self.collection(ref, where)
        columns = {}
        for key in keys:
            if not key:
                continue
            field = key[len("config."):] if key.startswith("config.") else key
            columns[key] = runs.pluck(field)
        return _json({"class": ref, "total": len(runs), "ids": runs.ids(), "columns": columns})

    # -- one result ---------------------------------------------------------------------------

    def record(self, text: str) -> dict[str, Any]:
        """The record of the committed interface whose id is or starts with `text`.

        Raises:
            InterfaceNotFoundError: none, several, or `text` is not an id prefix.
        """

        prefix = text.strip().lower()
        if not prefix or len(prefix) > 32 or not set(prefix) <= set("0123456789abcdef"):
            raise InterfaceNotFoundError(f"{text!r} is not an id or id prefix (up to 32 hex characters)")
        if is_id(prefix):
            matches = [prefix] if self.storage.has_record(prefix) else []
        else:
            matches = sorted(self.storage.iter_ids(prefix))[:2]
        if len(matches) > 1:
            raise InterfaceNotFoundError(f"id prefix {prefix!r} is ambiguous; give more characters")
        data = self.storage.read_record(matches[0]) if matches else None
        if data is None:
            raise InterfaceNotFoundError(f"no committed result with id {prefix!r} in {self.storage.url}")
        return decode_record(data, f"{self.storage.url}/{matches[0]}/{RECORD_FILE}", matches[0])

    def summary(self, id: str) -> dict[str, Any] | None:
        """The summary values of `id`; ``{"(damaged)": reason}`` when they cannot be read."""
        try:
            return self.storage.read_summary(id)
        except RecordError as exc:
            return {"(damaged)": str(exc)}

    def duration(self, id: str) -> float | None:
        """Seconds the latest run took (or has taken so far, while it runs); None if it never
        ran. Kept for finished components (it no longer changes)."""
        known = self._durations.get(id)
        if known is not None:
            return known
        try:
            seconds = ExecutionStatus.of(id, storage=self.storage).duration()
        except RecordError:
            return None
        if seconds is not None and id in self._finished:
            self._durations[id] = seconds
        return seconds

    def detail(self, text: str) -> dict[str, Any]:
        """Everything the detail page shows about one result."""

        record = self.record(text)
        id = record["id"]
        state, error = self.state(id, record.get("kind", ""))
        baseline = record.get("baseline")
        config = []
        for key, value in config_leaves(record.get("config") or {}):
            default = _lookup(baseline, key) if isinstance(baseline, dict) else _NOTHING
            link = value.get(REF_KEY) if isinstance(value, dict) else None
            config.append({
                "key": key, "value": value, "default": default is not _NOTHING and default == value,
                "input": None if link is None else {"id": link, "class": value.get("class")},
            })
        inputs = []
        for input_id in record.get("inputs") or []:
            inputs.append({"id": input_id, "class": self._class_of(input_id)})
        try:
            command = recreate_command(record)
        except ConfigError as exc:
            command = f"(no command: {exc})"
        events: list[dict[str, Any]] = []
        if record.get("kind") == "Component":
            try:
                events = ExecutionStatus.of(id, storage=self.storage).events()
            except RecordError:
                events = []
        marks = read_annotations(self.storage, id)
        return _json({
            "id": id,
            "class": f"{record.get('module')}:{record.get('class')}",
            "name": record.get("class"),
            "tags": sorted(marks.tags),
            "note": marks.note,
            "kind": record.get("kind"),
            "created": record.get("created"),
            "state": state,
            "error": error,
            "duration": self.duration(id) if state != "committed" else None,
            "config": config,
            "version": record.get("version"),
            "inputs": inputs,
            "users": self.users(id),
            "summary": self.summary(id),
            "files": self.files(id),
            "provenance": record.get("provenance"),
            "events": events,
            "command": command,
        })

    def _class_of(self, id: str) -> str | None:
        data = self.storage.read_record(id)
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            return None
        return f"{value.get('module')}:{value.get('class')}" if isinstance(value, dict) else None

    def users(self, id: str) -> list[dict[str, Any]]:
        """The committed interfaces whose configuration holds `id` as an input (from the
        index)."""
        users = self.collection(None, []).using(id)[:200]
        return [
            {"id": user, "class": f"{module}:{qualname}"}
            for user, module, qualname in zip(users.ids(), users.pluck("module"), users.pluck("class"))
        ]

    def files(self, id: str) -> list[dict[str, Any]]:
        """The files of a result, each with its size (when local) and preview kind."""
        root = self.storage.local_root()
        out = []
        for name in self.storage.list_files(id):
            size = None
            if root is not None:
                try:
                    size = os.stat(os.path.join(self.storage.local_directory(id), name)).st_size
                except OSError:
                    size = None
            out.append({"name": name, "size": size, "kind": _kind_of(name)})
        return out

    def file_bytes(self, id: str, name: str, most: int | None = None) -> bytes:
        """The bytes of file `name` of result `id` (its first `most` bytes), read through
        the storage.

        Raises:
            UnsafePathError: `name` leaves the result's directory.
            InterfaceNotFoundError: no such result, or no such file in it.
        """
        id = self._checked(id, name)
        if most is not None and self.storage.local_root() is not None:
            try:
                with open(os.path.join(self.storage.local_directory(id), name), "rb") as handle:
                    return handle.read(most)
            except OSError:
                pass
        data = self.storage.read_file(id, name)
        if data is None:
            raise InterfaceNotFoundError(f"result {id[:6]} has no file {name!r}")
        return data if most is None else data[:most]

    def _checked(self, id: str, name: str) -> str:
        """The full id of result `id`, once `name` is known to be one of its files, inside its
        directory (on a local storage, a symbolic link pointing elsewhere is refused too).

        Raises:
            UnsafePathError: `name` leaves the result's directory.
            InterfaceNotFoundError: no such result, or no such file in it.
        """
        safe_name(name)
        id = self.record(id)["id"]
        if name not in self.storage.list_files(id):
            raise InterfaceNotFoundError(f"result {id[:6]} has no file {name!r}")
        if self.storage.local_root() is not None:
            directory = os.path.realpath(self.storage.local_directory(id))
            if not os.path.realpath(os.path.join(directory, name)).startswith(directory + os.sep):
                raise UnsafePathError(
                    f"file {name!r} of result {id[:6]} is a link to a place outside the result's "
                    "directory; it is not served"
                )
        return id

    def local_file(self, id: str, name: str) -> str | None:
        """The local path of file `name` of result `id` on a local storage (None on another);
        checked as `file_bytes` checks it."""
        id = self._checked(id, name)
        if self.storage.local_root() is None:
            return None
        path = os.path.join(self.storage.local_directory(id), name)
        return path if os.path.isfile(path) else None

    def preview(self, id: str, name: str) -> dict[str, Any]:
        """A preview of one file: text (its start), JSON (parsed), ``.npy`` (shape, dtype,
        first values), an image (its URL), or the size of anything else."""
        safe_name(name)
        id = self.record(id)["id"]
        kind = _kind_of(name)
        if kind == "image":
            self.file_bytes(id, name, 0)
            return {"name": name, "kind": "image"}
        if kind == "npy":
            return {"name": name, "kind": "npy", **_npy_preview(self.file_bytes(id, name, PREVIEW_BYTES), self, id, name)}
        data = self.file_bytes(id, name, PREVIEW_BYTES + 1)
        cut = len(data) > PREVIEW_BYTES
        data = data[:PREVIEW_BYTES]
        if kind == "json" and not cut:
            try:
                return _json({"name": name, "kind": "json", "value": json.loads(data)})
            except ValueError:
                pass
        if b"\x00" in data[:1024]:
            return {"name": name, "kind": "binary", "bytes": len(data), "cut": cut}
        return {"name": name, "kind": "text", "text": data.decode("utf-8", "replace"), "cut": cut}

    def output(self, id: str, offset: int | None) -> dict[str, Any]:
        """What the runs of `id` printed from byte `offset` (None: the last
        `OUTPUT_TAIL_BYTES`), the offset to ask from next, and whether it still runs."""
        record = self.record(id)
        id = record["id"]
        if record.get("kind") != "Component":
            return {"id": id, "text": "", "offset": 0, "state": "committed", "start": 0}
        if self.storage.local_root() is not None:
            # Only the new bytes are read: the log of a long run is polled every second.
            try:
                with open(os.path.join(self.storage.local_directory(id), OUTPUT_LOG), "rb") as handle:
                    size = handle.seek(0, os.SEEK_END)
                    start = max(0, size - OUTPUT_TAIL_BYTES) if offset is None else min(max(offset, 0), size)
                    handle.seek(start)
                    chunk = handle.read(size - start)
            except (FileNotFoundError, NotADirectoryError):
                size, start, chunk = 0, 0, b""
        else:
            data = ExecutionStatus.of(id, storage=self.storage).output().encode()
            size = len(data)
            start = max(0, size - OUTPUT_TAIL_BYTES) if offset is None else min(max(offset, 0), size)
            chunk = data[start:]
        state, _ = self.state(id, "Component")
        return {"id": id, "start": start, "text": chunk.decode("utf-8", "replace"), "offset": size, "state": state}

    # -- metrics ------------------------------------------------------------------------------

    def series(self, id: str) -> dict[str, Any]:
        """The curves of one result: its metrics by name (``{"step": [...], "value": [...]}``)
        and its one-dimensional numeric ``.npy`` files of at most `MAX_CURVE_POINTS` values
        (against their position), by file name."""
        record = self.record(id)
        id = record["id"]
        metrics: dict[str, dict[str, list[Any]]] = {}
        if record.get("kind") == "Component":
            # What `Interface.metrics` reads, from the storage: the class need not load here.
            try:
                points = ExecutionStatus.of(id, storage=self.storage).metrics()
            except (RecordError, OSError):
                points = []
            for point in points:
                series = metrics.setdefault(str(point["name"]), {"step": [], "value": []})
                series["step"].append(point["step"])
                series["value"].append(point["value"])
        arrays: dict[str, list[Any]] = {}
        for name in self.storage.list_files(id):
            if name.lower().endswith(".npy"):
                values = self._curve(id, name)
                if values is not None:
                    arrays[name] = values
        return _json({"id": id, "metrics": metrics, "files": arrays})

    def _curve(self, id: str, name: str) -> list[Any] | None:
        """The values of a one-dimensional numeric ``.npy`` file, or None (another shape or
        type, too many values, numpy missing)."""
        header = _npy_header(self.file_bytes(id, name, 4096))
        if header is None:
            return None
        shape, descr = header
        if len(shape) != 1 or not 1 < shape[0] <= MAX_CURVE_POINTS or descr[1:2] not in ("f", "i", "u"):
            return None
        try:

            import numpy
        except ImportError:
            return None
        try:
            array = numpy.load(io.BytesIO(self.file_bytes(id, name)), allow_pickle=False)
        except (ValueError, OSError):
            return None
        values: list[Any] = array.tolist()
        return values

    # -- several results ----------------------------------------------------------------------

    def compare(self, ids: list[str]) -> dict[str, Any]:
        """Several results side by side: the config keys whose values differ, every summary
        value, and the curves of each."""
        if not ids:
            raise ConfigError("compare needs ids: /api/compare?ids=ID,ID")
        results = []
        for text in ids[:20]:
            record = self.record(text)
            id = record["id"]
            results.append({
                "id": id,
                "class": f"{record.get('module')}:{record.get('class')}",
                "created": record.get("created"),
                "state": self.state(id, record.get("kind", ""))[0],
                "config": dict(config_leaves(record.get("config") or {})),
                "summary": self.summary(id) or {},
                "series": self.series(id),
            })
        keys: dict[str, None] = {}
        for result in results:
            keys.update(dict.fromkeys(result["config"]))
        differing = [
            key for key in keys
            if len({json.dumps(r["config"].get(key, "(missing)"), sort_keys=True) for r in results}) > 1
        ]
        names: dict[str, None] = {}
        for result in results:
            names.update(dict.fromkeys(result["summary"]))
        return _json({
            "results": results,
            "differing": differing,
            "same": [key for key in keys if key not in differing],
            "summary_names": list(names),
        })

    def live(self) -> dict[str, Any]:
        """The components that run now (or wait in a batch system): state, how long, the end
        of their output and their last metric values."""
        states = self.states()
        active = [id for id, state in states.items() if state in ("running", "queued")]
        shown = active[:50]
        by_id = {}
        if shown:

            rows = self.collection(None, []).filter({"id": one_of(shown)})
            columns = zip(rows.ids(), rows.pluck("module"), rows.pluck("class"), rows.pluck("created"))
            by_id = {id: (f"{module}:{qualname}", created) for id, module, qualname, created in columns}
        out = []
        for id in shown:
            row = by_id.get(id)
            state, _ = self.state(id, "Component")
            text = ExecutionStatus.of(id, storage=self.storage).output()[-4096:]
            out.append({
                "id": id,
                "class": row[0] if row else None,
                "created": row[1] if row else None,
                "state": state,
                "duration": self.duration(id),
                "output": text,
            })
        return _json({"running": out, "count": len(active)})


_NOTHING: Any = object()


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _NOTHING
        value = value[part]
    return value


def _error_line(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    lines = str(error.get("message") or "").strip().splitlines()
    return f"{error.get('type', '?')}: {lines[0] if lines else ''}".rstrip(": ")


def _kind_of(name: str) -> str:
    lowered = name.lower()
    extension = os.path.splitext(lowered)[1]
    if extension in IMAGE_TYPES:
        return "image"
    if extension == ".npy":
        return "npy"
    if extension == ".json":
        return "json"
    if extension in (".txt", ".log", ".jsonl", ".csv", ".tsv", ".md", ".yaml", ".yml", ".toml", ".py", ".ini", ".cfg"):
        return "text"
    return "file"


def _npy_header(head: bytes) -> tuple[list[int], str] | None:
    """(shape, dtype descr) from the start of a ``.npy`` file; None if it is not one."""

    if not head.startswith(b"\x93NUMPY") or len(head) < 10:
        return None
    size_bytes = 2 if head[6] == 1 else 4
    length = int.from_bytes(head[8:8 + size_bytes], "little")
    start = 8 + size_bytes
    try:
        header = ast.literal_eval(head[start:start + length].decode("latin-1"))
        return [int(n) for n in header["shape"]], str(header["descr"])
    except (ValueError, SyntaxError, KeyError, TypeError):
        return None


def _npy_preview(head: bytes, source: Source, id: str, name: str) -> dict[str, Any]:
    """Shape, dtype and the first values of a ``.npy`` file from its header (the values need
    numpy; object arrays are not unpickled)."""
    header = _npy_header(head)
    if header is None:
        return {"error": "not a .npy file, or its header cannot be read"}
    out: dict[str, Any] = {"shape": header[0], "dtype": header[1]}
    try:

        import numpy
    except ImportError:
        return out
    try:
        if source.storage.local_root() is not None:
            array = numpy.load(os.path.join(source.storage.local_directory(id), name), mmap_mode="r", allow_pickle=False)
        else:
            array = numpy.load(io.BytesIO(source.file_bytes(id, name)), allow_pickle=False)
        out["dtype"] = str(array.dtype)
        out["first"] = jsonable(numpy.asarray(array.flat[:20] if array.ndim else array).tolist())
        out["size"] = int(array.size)
    except (ValueError, OSError) as exc:
        out["first_error"] = str(exc)
    return out
