"""Interface: an Element that is committed to storage, found again by `get`, and carries files."""

from __future__ import annotations

import os

from . import _baselines, _settings
from ._errors import ImmutableError, RecordError, UnsafePathError
from ._fs import atomic_write, makedirs, read_small_file
from ._sentinel import NOT_GIVEN
from .codecs import codec_for
from .config import config_spec
from .element import Element, Resolved, _classes, defaults_json, identify, resolved_from_record
from .identity import REF_KEY, SCHEME, is_id, to_json
from .modules import class_reference, resolve_class
from .storage import Storage, storage_of_directory
from .storage.layout import RECORD_FILE, RECORD_FORMAT, RESERVED_PREFIX, decode_record, encode_record
from .index import _hooks as _index_hooks  # light: sqlite3 loads when the index is first used
from .storage.layout import JOURNAL_COMMIT, JOURNAL_SUMMARY, SUMMARY_FILE, decode_summary, encode_summary
from .storage.layout import METRICS_FILE

TYPE_CHECKING = False  # typing is not imported at run time: `import retain` stays cheap
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any, ClassVar, TypeVar

    from .versions import Version

    Self = TypeVar("Self", bound="Interface")

__all__ = ["Interface"]


class Interface(Element):
    """An Element that can be committed, reloaded, found again by `get`, and carries files.

    Its identity is its content: equal configurations of one class are one interface,
    wherever and whenever they are made. It lives in ``<storage>/<id>/``.

    Example:
        >>> class MnistData(Interface):
        ...     Config = {"batch_size": 8, "name": "mnist"}
        >>> mnist = get(MnistData, {"batch_size": 8}).commit()
        >>> get(MnistData, {"batch_size": 8}) == mnist
        True
    """

    kind: ClassVar[str] = "Interface"

    _retain_storage: Storage | None = None
    _retain_record: dict[str, Any] | None = None
    _retain_summary_saved: bool = False

    def __init__(self, version: Version = None) -> None:
        """Create an uncommitted interface bound to the storage in force (see `retain.storage`)."""
        super().__init__(version)
        self._retain_storage = _settings.current_storage()
        self._retain_record = None

    # -- where it lives ------------------------------------------------------------------

    @property
    def storage(self) -> Storage:
        """The storage this interface commits to (bound when it was created)."""
        storage = self._retain_storage
        if storage is None:
            storage = self._retain_storage = _settings.current_storage()
        return storage

    def local_directory(self, *parts: str, create: bool = False) -> str:
        """The path of this interface's directory (joined with `parts`), the same before and
        after commit. With `create`, the directory at that path is created."""
        directory = self.storage.local_directory(self.id)
        path = os.path.join(directory, *_safe_parts(parts, reserved_ok=True)) if parts else directory
        if create:
            makedirs(path, durable=_settings.durable())
        return path

    def _retain_baseline(self, defaults: dict[str, Any]) -> dict[str, Any]:
        module, qualname = class_reference(type(self))
        return _baselines.effective(self.storage, module, qualname, defaults)

    # -- commit --------------------------------------------------------------------------

    def is_committed(self) -> bool:
        """Whether this identity is committed in this interface's storage."""
        if self._retain_record is not None:
            return True
        state = self._retain_resolve()
        if not self.storage.has_record(state.id):
            return False
        # Found: but an id computed before the class's baselines were recorded may have been
        # taken by another configuration since (another version of the code committed first).
        settled = self._retain_settle(state, self._retain_baseline(self._retain_defaults()))
        return settled is state or self.storage.has_record(settled.id)

    def commit(self: Self) -> Self:
        """Persist this interface, atomically; idempotent and safe under concurrency.

        Interfaces in the config are committed first. Files saved before the commit are part
        of it. If another process commits the same identity first, this instance adopts that
        commit. Returns self.
        """
        if self._retain_record is not None:
            return self
        state = self._retain_resolve()  # an invalid config fails here, before any write
        inputs = list(_interfaces_in(state.config))
        for dependency in inputs:
            dependency.commit()
        storage = self.storage
        durable = _settings.durable()
        state = self._retain_record_baseline(state, durable)
        record = self._retain_new_record(state, inputs)
        # Journal first: an index that misses the update below (a killed process) finds the id.
        _index_hooks.journal(storage, state.id, JOURNAL_COMMIT, durable)
        if storage.publish_record(state.id, encode_record(record), durable=durable):
            self._retain_record = record
            # Never raises: the index is a cache.
            _index_hooks.after_publish(storage, record, self._retain_summary_saved)
            return self
        # Another commit of this identity won (another process, or an earlier run): adopt it.
        where = os.path.join(storage.local_directory(state.id), RECORD_FILE)
        existing = storage.read_record(state.id)
        if existing is None:
            raise RecordError(f"the record {where!r} vanished while it was being committed")
        self._retain_record = decode_record(existing, where, state.id)
        return self

    def _retain_record_baseline(self, state: Resolved, durable: bool) -> Resolved:
        """Record the baselines of this class in storage before the record that relies on
        them; the state again if another process recorded other values first (its id moves)."""
        module, qualname = class_reference(type(self))
        baseline = _baselines.record(self.storage, module, qualname, self._retain_defaults(), durable=durable)
        return self._retain_settle(state, baseline)

    def _retain_defaults(self) -> dict[str, Any]:
        cls = type(self)
        return defaults_json(config_spec(cls), tuple(cls.non_identifying))

    def _retain_settle(self, state: Resolved, baseline: dict[str, Any]) -> Resolved:
        """`state` computed again with `baseline` when it was computed with other values; what
        was saved under the old id moves with it."""
        if baseline is state.baseline:
            return state
        cls = type(self)
        moved = identify(cls, config_spec(cls), state.config, state.model, baseline)
        if moved.id != state.id:
            _move_directory(self.storage, state.id, moved.id)
        self._retain_state = moved
        return moved

    def _retain_new_record(self, state: Resolved, inputs: list[Interface]) -> dict[str, Any]:
        from datetime import datetime, timezone

        from ._provenance import provenance

        cls = type(self)
        module, qualname = class_reference(cls)
        return {
            "format": RECORD_FORMAT,
            "scheme": SCHEME,
            "id": state.id,
            "module": module,
            "class": qualname,
            "kind": cls.kind,
            "version": to_json(self._retain_versions, fallback=config_spec(cls).json_fallback()),
            "config": state.json,
            "canonical_config": state.canonical,
            "baseline": state.baseline,
            "non_identifying": list(cls.non_identifying),
            "inputs": sorted({dependency.id for dependency in inputs}),
            "created": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "provenance": provenance(cls.__module__),
        }

    def _retain_before_change(self) -> None:
        if self.is_committed():
            raise ImmutableError(
                f"{self!r} is committed; changing its versions would change its identity. "
                "Create a new instance instead: get(Class, new_version)"
            )
        self._retain_record = None

    @property
    def record(self) -> dict[str, Any] | None:
        """The stored record (module, config, created time, provenance...), or None."""
        record = self._retain_record
        if record is None and self.is_committed():
            data = self.storage.read_record(self.id)
            if data is not None:
                record = self._retain_record = decode_record(
                    data, os.path.join(self.local_directory(), RECORD_FILE), self.id
                )
        return None if record is None else dict(record)

    @property
    def created(self) -> str | None:
        """When it was committed (ISO 8601, UTC), or None."""
        record = self.record
        return None if record is None else record["created"]

    def __retain_reference__(self) -> dict[str, Any]:
        module, qualname = class_reference(type(self))
        return {REF_KEY: self.id, "class": qualname, "module": module}

    # -- files ---------------------------------------------------------------------------

    def save_file(self, name: str | os.PathLike[str], value: Any) -> str:
        """Save `value` to `name` in this interface's directory, by extension (see
        `retain.register_codec`); atomic. Works before and after commit. Returns the path."""
        relative = _safe_parts((name,))
        codec = codec_for(relative[-1])
        directory = self.local_directory()
        path = os.path.join(directory, *relative)
        durable = _settings.durable()
        makedirs(os.path.dirname(path), durable=durable)
        _check_inside(directory, path)
        atomic_write(path, lambda handle: codec.write(handle, value), durable=durable)
        storage = self.storage
        if storage.is_remote and self.is_committed():  # before commit, the commit uploads it
            storage.upload_file(self.id, "/".join(relative))
        return path

    def files(self) -> list[str]:
        """The names of its files (relative, ``/``-separated, sorted) as its storage holds
        them, the record included; before commit, those saved so far."""
        return self.storage.list_files(self.id)

    def load_file(self, name: str | os.PathLike[str], default: Any = NOT_GIVEN) -> Any:
        """Load a file saved with `save_file`; `default` if it does not exist, else raises
        `FileMissingError`."""
        relative = _safe_parts((name,), reserved_ok=True)
        codec = codec_for(relative[-1])
        directory = self.local_directory()
        path = os.path.join(directory, *relative)
        if not self.storage.local_file(self.id, "/".join(relative), committed=self._retain_record is not None):
            if default is not NOT_GIVEN:
                return default
            from ._errors import FileMissingError

            raise FileMissingError(
                f"{self!r} has no file {'/'.join(relative)!r} in {directory}; pass default=... "
                "to load_file to get a value instead"
            )
        _check_inside(directory, path)
        return codec.read(path)

    # -- summary values ------------------------------------------------------------------

    def save_summary(self, values: Mapping[str, Any] | None = None, /, **named: Any) -> dict[str, Any]:
        """Save scalar results (a final loss, an accuracy...) with this interface, merged with
        those saved before; they appear in `get.all(...).to_table()` without reading records.

        Works before commit (the commit indexes them) and after (the index is updated at once).
        Written atomically to ``summary.json`` in the interface's directory; concurrent savers of
        one interface each write a complete file, the last one wins.

        Args:
            values: names -> values; also as keywords: ``save_summary(loss=0.1)``. Values are
                None, bool, int, float (NaN and infinities too) or str; numpy scalars convert.

        Returns:
            The whole summary after the merge.

        Raises:
            CodecError: a name is not a non-empty string, or a value is not a scalar.
        """
        update = _check_summary({**(values or {}), **named})
        storage = self.storage
        directory = self.local_directory()
        durable = _settings.durable()
        makedirs(directory, durable=durable)
        merged = {**self.load_summary(), **update}
        _index_hooks.journal(storage, self.id, JOURNAL_SUMMARY, durable)
        data = encode_summary(merged)
        atomic_write(os.path.join(directory, SUMMARY_FILE), lambda handle: handle.write(data), durable=durable)
        self._retain_summary_saved = True
        record = self._retain_record
        if record is None and self.is_committed():
            record = self.record
        if record is not None:
            if storage.is_remote:
                storage.upload_file(self.id, SUMMARY_FILE)
            _index_hooks.after_summary(storage, record, merged)
        return merged

    def load_summary(self) -> dict[str, Any]:
        """The summary values saved with `save_summary` ({} if none)."""
        path = os.path.join(self.local_directory(), SUMMARY_FILE)
        if not self.storage.local_file(self.id, SUMMARY_FILE, committed=self._retain_record is not None):
            return {}
        data = read_small_file(path)
        return {} if data is None else decode_summary(data, path)

    # -- metrics -------------------------------------------------------------------------

    def metrics(self, name: str | None = None, *, frame: bool = False) -> Any:
        """The metrics logged with `Component.log_metrics`: dicts ``{"step", "name", "value",
        "time"}`` (time: ISO 8601 UTC) in step order, then logging order; only metric `name`
        if given. With `frame`, a pandas DataFrame with those columns (long format).

        Raises:
            ImportError: `frame` and pandas is not installed (``pip install 'retain[pandas]'``).
        """
        from . import _metrics

        return _metrics.read(self, name, frame)

    def _repr_html_(self) -> str:
        """Jupyter's view: config, status (components), summary, last metric values, files."""
        from ._html import interface_html

        return interface_html(self)

    # -- reloading -----------------------------------------------------------------------

    @classmethod
    def from_directory(cls: type[Self], path: str | os.PathLike[str]) -> Self:
        """Reload the committed interface in directory `path`, as its own class.

        Raises:
            RecordError: the directory holds no record, a corrupted one, or one of a class
                that is not `cls` (or a subclass).
        """
        directory = os.path.abspath(os.fspath(path)).rstrip(os.sep)
        where = os.path.join(directory, RECORD_FILE)
        storage = storage_of_directory(directory)
        try:
            with open(where, "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, NotADirectoryError):
            id = os.path.basename(directory)
            found = storage.read_record(id) if storage.is_remote and is_id(id) else None
            if found is not None:
                return load_record(cls, decode_record(found, where, id), storage)
            reason = (
                f"{RECORD_FILE} is missing (an uncommitted interface, or an interrupted "
                "commit, leaves such a directory)"
                if os.path.isdir(directory)
                else "it does not exist"
            )
            raise RecordError(f"{directory!r} holds no committed interface: {reason}") from None
        record = decode_record(data, where, os.path.basename(directory))
        return load_record(cls, record, storage)


def load_record(base: type[Self], record: dict[str, Any], storage: Storage) -> Self:
    """An instance of the record's class, bound to `storage`, with the stored state."""
    module, qualname = record["module"], record["class"]
    klass = _classes.get((module, qualname)) or resolve_class(f"{module}:{qualname}", Interface)
    if not issubclass(klass, base):
        raise RecordError(
            f"{record['id']} is a {qualname} ({module}), not a {base.__qualname__}; load it "
            f"with Interface.from_directory or {qualname}.from_directory"
        )
    versions = decode_references(record["version"], storage)
    config = decode_references(record["config"], storage)
    token = _settings._storage.set(storage)
    try:
        instance = klass(versions)
    finally:
        _settings._storage.reset(token)
    adopt_record(instance, record, config)
    return instance


def adopt_record(instance: Interface, record: dict[str, Any], config: dict[str, Any]) -> None:
    """Make `instance` the committed interface of `record`, whose config (interfaces loaded)
    is `config`. Keys that its class declares today and the record lacks (added since) take
    their baselines: the values its identity stands for."""
    cls = type(instance)
    config_json = record["config"]
    defaults = defaults_json(config_spec(cls), tuple(cls.non_identifying))
    if defaults:
        module, qualname = class_reference(cls)
        baseline = _baselines.effective(instance.storage, module, qualname, defaults)
        filled = _baselines.fill(config_json, baseline, defaults)
        if filled is not config_json:
            config_json = filled
            config = _baselines.fill(config, baseline, defaults)
    instance._retain_state = resolved_from_record(cls, record, config, config_json)
    instance._retain_record = record


def _move_directory(storage: Storage, old: str, new: str) -> None:
    """Move what was saved under id `old` before a commit found its id is `new`; copy it when
    `old` was committed meanwhile (its files are part of that commit too)."""
    source = storage.local_directory(old)
    if not os.path.isdir(source):
        return
    target = storage.local_directory(new)
    try:
        makedirs(os.path.dirname(target))
        if storage.has_record(old):
            import shutil

            shutil.copytree(
                source, target, dirs_exist_ok=True,
                ignore=lambda _, names: [n for n in names if n == RECORD_FILE or n.startswith(RESERVED_PREFIX)],
            )
        else:
            os.rename(source, target)
    except OSError as exc:
        raise RecordError(
            f"the id of this interface changed from {old} to {new} while it was committed "
            "(another process recorded other defaults of its class first), and the files "
            f"saved in {source} could not be moved to {target}: {exc}. Move them, then commit "
            "again"
        ) from exc


def decode_references(value: Any, storage: Storage) -> Any:
    """`value` with interface references replaced by the interfaces, reloaded from storage."""
    kind = type(value)
    if kind is dict:
        if REF_KEY in value:
            return _load_reference(value, storage)
        return {k: decode_references(v, storage) for k, v in value.items()}
    if kind is list:
        return [decode_references(v, storage) for v in value]
    return value


def _load_reference(reference: dict[str, Any], storage: Storage) -> Interface:
    id = reference.get(REF_KEY)
    data = storage.read_record(id) if isinstance(id, str) and is_id(id) else None
    if data is None or not isinstance(id, str):
        raise RecordError(
            f"input {reference.get('class')} [{str(id)[:6]}] ({id}) is not committed in "
            f"{storage.url}; it may have been removed, or committed to another storage"
        )
    where = os.path.join(storage.local_directory(id), RECORD_FILE)
    return load_record(Interface, decode_record(data, where, id), storage)


def _interfaces_in(value: Any) -> Iterator[Interface]:
    if isinstance(value, Interface):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _interfaces_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _interfaces_in(item)


_MAX_NAME_BYTES = 255
_RESERVED_NAMES = (RECORD_FILE, SUMMARY_FILE, METRICS_FILE)


def _safe_parts(parts: tuple[Any, ...], reserved_ok: bool = False) -> list[str]:
    """The components of a relative path that stays inside an interface's directory."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, os.PathLike):
            part = os.fspath(part)
        if not isinstance(part, str):
            raise UnsafePathError(f"file names must be strings, got {type(part).__name__} {part!r}")
        if "\x00" in part:
            raise UnsafePathError(f"file name {part!r} contains a NUL character")
        if part.startswith(("/", "\\")) or os.path.isabs(part) or (len(part) > 1 and part[1] == ":"):
            raise UnsafePathError(
                f"file name {part!r} is absolute; give a path relative to the interface's "
                "directory, e.g. 'results/metrics.json'"
            )
        for piece in part.replace("\\", "/").split("/"):
            if piece in ("", "."):
                continue
            if piece == "..":
                raise UnsafePathError(
                    f"file name {part!r} leaves the interface's directory ('..'); files stay "
                    "inside local_directory()"
                )
            if len(piece.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
                raise UnsafePathError(
                    f"file name component {piece[:40]!r}... is longer than {_MAX_NAME_BYTES} bytes"
                )
            out.append(piece)
    if not out:
        raise UnsafePathError(f"empty file name {'/'.join(map(str, parts))!r}; name the file")
    if not reserved_ok and (out[0] in _RESERVED_NAMES or out[0].startswith(RESERVED_PREFIX)):
        raise UnsafePathError(
            f"{out[0]!r} is reserved for retain's own record; choose another file name"
        )
    return out


def _check_summary(values: dict[str, Any]) -> dict[str, Any]:
    from ._errors import CodecError

    out: dict[str, Any] = {}
    for name, value in values.items():
        if type(name) is not str or not name:
            raise CodecError(f"summary names are non-empty strings; got {name!r}")
        kind = type(value)
        if kind.__module__ == "numpy" and getattr(value, "ndim", None) == 0:
            value = value.item()
            kind = type(value)
        if not (value is None or kind in (bool, int, float, str)):
            raise CodecError(
                f"summary value {name!r} must be a scalar (None, bool, int, float, str); got "
                f"{kind.__name__}. Save larger results with save_file"
            )
        out[name] = value
    return out


def _check_inside(directory: str, path: str) -> None:
    # A symlinked sub-directory could otherwise carry a write outside the interface.
    real_directory = os.path.realpath(directory)
    real_parent = os.path.realpath(os.path.dirname(path))
    if real_parent != real_directory and not real_parent.startswith(real_directory + os.sep):
        raise UnsafePathError(
            f"{path!r} resolves to {real_parent!r}, outside the interface's directory "
            "(through a symbolic link); files stay inside local_directory()"
        )
