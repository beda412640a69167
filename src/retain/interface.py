"""Interface: an Element that is committed to storage, found again by `get`, and carries files."""

from __future__ import annotations

import os

from . import _annotations, _baselines, _settings
from ._errors import CodecError, FileMissingError, ImmutableError, InterfaceNotFoundError, RecordError, UnsafePathError
from ._fs import atomic_write, makedirs, read_small_file
from ._sentinel import NOT_GIVEN
from ._timestamps import now_iso
from .codecs import codec_for
from .config import config_spec
from .element import Element, Resolved, _classes, defaults_json, identify, resolved_from_record
from .identity import MAX_DEPTH, REF_KEY, SCHEME, is_id, to_json
from .modules import class_reference, resolve_class
from .storage import Storage, storage_of_directory
from .storage.layout import OUTPUT_LOG, RECORD_FILE, RECORD_FORMAT, RESERVED_PREFIX, decode_record, encode_record, read_marker
from .index import _updates as _index_updates  # light: sqlite3 loads when the index is first used
from .storage.layout import (
    JOURNAL_COMMIT,
    JOURNAL_SUMMARY,
    METRICS_FILE,
    STORAGE_META_DIR,
    SUMMARY_FILE,
    decode_summary,
    encode_summary,
)

TYPE_CHECKING = False  # typing is not imported at run time: `import retain` stays cheap
if TYPE_CHECKING:
    from ._annotations import Note
    from ._diff import InterfaceDiff
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any, ClassVar, TypeVar

    from ._lifecycle import Removed
    from .versions import Version

    Self = TypeVar("Self", bound="Interface")

__all__ = ["Interface", "install_remover", "running_here"]

#: Ids of the components whose run is in progress in this process, with how many runs of each
#: (one, save for a component that launches itself); the run layer keeps it. Process-wide
#: rather than a ContextVar: threads the run starts (a data loader, a checkpoint writer) are
#: part of the run too, and may replace the run's own files (checkpoints).
running_here: dict[str, int] = {}

#: What `Interface.delete` calls: `retain._lifecycle.remove`, which asks the run layer (above
#: this one) whether a component is running, and installs itself when `import retain` loads it.
_remover: list[Callable[..., list[Removed]]] = []


def install_remover(remover: Callable[..., list[Removed]]) -> None:
    """Set what `Interface.delete` calls (done by `retain._lifecycle`)."""
    _remover[:] = [remover]


class Interface(Element):
    """An Element that can be committed, reloaded, found again by `get`, and carries files.

    Its identity is its content: equal configurations of one class are one interface,
    wherever and whenever they are made. It lives in its `local_directory()`, ``<storage>/<id[:2]>/<id>/``.

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
    #: Top-level file names `save_file` refuses (besides ``.retain*``): retain writes them.
    _retain_reserved_files: ClassVar[tuple[str, ...]] = (RECORD_FILE, SUMMARY_FILE, METRICS_FILE)

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
        after commit. With `create`, the directory at that path is created (before a commit,
        create it so, or with `save_file`: that settles where a new storage puts it)."""
        storage = self.storage
        directory = storage.prepare_directory(self.id) if create else storage.local_directory(self.id)
        path = os.path.join(directory, *_safe_parts(parts, reserved=())) if parts else directory
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
        with _index_updates.journaled(storage, state.id, JOURNAL_COMMIT, durable):
            published = storage.publish_record(state.id, encode_record(record), durable=durable)
        if published:
            self._retain_record = record
            # Never raises: the index is a cache.
            _index_updates.after_publish(storage, record, self._retain_summary_saved)
            return self
        # Another commit of this identity won (another process, or an earlier run): adopt it.
        where = os.path.join(storage.local_directory(state.id), RECORD_FILE)
        existing = storage.read_record(state.id)
        if existing is None:
            raise RecordError(f"the record {where!r} vanished while it was being committed")
        self._retain_record = decode_record(existing, where, state.id)
        return self

    def delete(self, *, cascade: bool = False, dry_run: bool = False) -> list[Removed]:
        """Remove this committed interface from its storage: its record and every file, in one
        atomic step (a crash leaves it whole or gone), and its index rows. Afterwards this
        instance is uncommitted (committing it again makes a fresh one).

        Args:
            cascade: also remove the results that use it as an input (their users too),
                users first; without it, such users make the removal fail.
            dry_run: remove nothing; return what would be removed.

        Returns:
            What was (or would be) removed, users first, each with its ``id``, ``module``,
            ``qualname``, ``kind`` and ``size`` in bytes.

        Raises:
            InterfaceNotFoundError: it is not committed.
            InUseError: other results use it (listed), or it (or, with `cascade`, a user) is
                a running component (or one queued in a batch system).
        """
        if not self.is_committed():
            raise InterfaceNotFoundError(f"{self!r} is not committed in {self.storage.url}: nothing to delete")
        if not _remover:  # pragma: no cover - `import retain` installs it
            raise RuntimeError("retain._lifecycle is not loaded; import retain")
        removed = _remover[0]([self.id], cascade=cascade, dry_run=dry_run, storage=self.storage)
        if not dry_run:
            self._retain_record = None
            self._retain_summary_saved = False
        return removed

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

        cls = type(self)
        module, qualname = class_reference(cls)
        return {
            "format": RECORD_FORMAT,
            "scheme": SCHEME,
            "id": state.id,
            "module": module,
            "class": qualname,
            "kind": cls.kind,
            # the list of versions is one level above the updates, which nest as the config does
            "version": to_json(
                self._retain_versions, fallback=config_spec(cls).json_fallback(), limit=MAX_DEPTH + 1
            ),
            "config": state.json,
            "canonical_config": state.canonical,
            "baseline": state.baseline,
            "non_identifying": list(cls.non_identifying),
            "inputs": sorted({dependency.id for dependency in inputs}),
            "created": now_iso(),
            "provenance": _provenance(cls.__module__),
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

    def diff(self, other: Interface) -> InterfaceDiff:
        """How `other` differs from this interface: configuration (dotted keys), inputs, code
        provenance (git, source, host) and environment (Python, platform, package versions),
        each key with both values. An uncommitted side is compared as it would be recorded
        now. `retain diff ID1 ID2` says the same from the records alone.

        Example:
            >>> print(get(Train, {"lr": 0.1}).diff(get(Train, {"lr": 0.01})))
            Train [29f034] -> Train [a1b2c3]
              config:
                lr  0.1 -> 0.01
        """
        if not isinstance(other, Interface):
            raise TypeError(f"diff compares two interfaces; got {type(other).__name__}: {other!r}")
        from ._diff import record_diff  # at the first diff: `import retain` stays cheap

        return record_diff(self._retain_record_now(), other._retain_record_now())

    def _retain_record_now(self) -> dict[str, Any]:
        """The stored record, or the one a commit would write now (nothing is written)."""
        record = self.record
        if record is not None:
            return record
        state = self._retain_resolve()
        return self._retain_new_record(state, list(_interfaces_in(state.config)))

    @property
    def created(self) -> str | None:
        """When it was committed (ISO 8601, UTC), or None."""
        record = self.record
        return None if record is None else record["created"]

    def __retain_reference__(self) -> dict[str, Any]:
        module, qualname = class_reference(type(self))
        return {REF_KEY: self.id, "class": qualname, "module": module}

    # -- files ---------------------------------------------------------------------------

    def save_file(self, name: str | os.PathLike[str], value: Any, *, overwrite: bool = False) -> str:
        """Save `value` to `name` in this interface's directory, by extension (see
        `retain.register_codec`); atomic. Returns the path.

        Before commit, a file is saved again freely. The files of a committed interface are
        its results: replacing one takes ``overwrite=True``, except in the component's own run
        (which may replace its checkpoints).

        Raises:
            ImmutableError: the interface is committed, the file exists, and `overwrite` is
                false (outside the component's own run).
            UnsafePathError: the name leaves the directory (``..``, a symbolic link), or is
                reserved for retain (``interface.json``, ``.retain*``, a component's
                ``output.log``).
        """
        relative = _safe_parts((name,), reserved=type(self)._retain_reserved_files)
        codec = codec_for(relative[-1])
        storage = self.storage
        directory = storage.prepare_directory(self.id)
        path = os.path.join(directory, *relative)
        _check_inside(directory, path)  # before anything is created
        joined = "/".join(relative)
        committed: bool | None = None  # asked once of a remote store, where asking costs
        if not overwrite:
            if storage.is_remote:
                committed = self.is_committed()
                taken = committed and storage.has_file(self.id, joined)
            else:
                taken = os.path.lexists(path) and self.is_committed()
            if taken:
                if self.id not in running_here:
                    raise ImmutableError(
                        f"{self!r} is committed and already has the file {joined!r}; its files "
                        "are its results. Pass overwrite=True to save_file to replace it"
                    )
        durable = _settings.durable()
        makedirs(os.path.dirname(path), durable=durable)
        _check_inside(directory, path)  # a symbolic link planted meanwhile
        atomic_write(path, lambda handle: codec.write(handle, value), durable=durable)
        if storage.is_remote and (self.is_committed() if committed is None else committed):
            storage.upload_file(self.id, joined)  # before commit, the commit uploads it
        return path

    def files(self) -> list[str]:
        """The names of its files (relative, ``/``-separated, sorted) as its storage holds
        them, the record included; before commit, those saved so far."""
        return self.storage.list_files(self.id)

    def load_file(self, name: str | os.PathLike[str], default: Any = NOT_GIVEN) -> Any:
        """Load a file saved with `save_file`; `default` if it does not exist, else raises
        `FileMissingError`."""
        relative = _safe_parts((name,), reserved=())
        codec = codec_for(relative[-1])
        directory = self.local_directory()
        path = os.path.join(directory, *relative)
        _check_inside(directory, path)
        if not self.storage.local_file(self.id, "/".join(relative), committed=self._retain_record is not None):
            if default is not NOT_GIVEN:
                return default

            raise FileMissingError(
                f"{self!r} has no file {'/'.join(relative)!r} in {directory}; pass default=... "
                "to load_file to get a value instead"
            )
        _check_inside(directory, path)  # again: a symbolic link planted meanwhile
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
        directory = storage.prepare_directory(self.id)
        durable = _settings.durable()
        makedirs(directory, durable=durable)
        merged = {**self.load_summary(), **update}
        data = encode_summary(merged)
        with _index_updates.journaled(storage, self.id, JOURNAL_SUMMARY, durable):
            atomic_write(os.path.join(directory, SUMMARY_FILE), lambda handle: handle.write(data), durable=durable)
        self._retain_summary_saved = True
        record = self._retain_record
        if record is None and self.is_committed():
            record = self.record
        if record is not None:
            if storage.is_remote:
                storage.upload_file(self.id, SUMMARY_FILE)
            _index_updates.after_summary(storage, record, merged)
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
        from . import _metrics  # the metrics format loads at the first read: `import retain` stays cheap

        return _metrics.read(self, name, frame)

    # -- tags and notes (not part of identity; the one part of a committed result that changes)

    def tag(self: Self, *names: str) -> Self:
        """Add tags to this committed interface (``run.tag("best")``); returns self. Tags are
        not part of identity: they change after commit, concurrent changes never lose one
        another, and they are indexed: ``get.all(Train, where={"tags": has("best")})``.

        Raises:
            InterfaceNotFoundError: it is not committed.
            TagError: a name is not a tag (see `retain.query.TAG_RULE`: letters, digits and
                ``_ . - : / + = @``, no spaces or commas).
        """
        self._retain_annotate(add=names)
        return self

    def untag(self: Self, *names: str) -> Self:
        """Remove tags from this committed interface (those it does not carry are ignored);
        returns self.

        Raises:
            InterfaceNotFoundError: it is not committed.
            TagError: a name is not a tag.
        """
        self._retain_annotate(remove=names)
        return self

    @property
    def tags(self) -> frozenset[str]:
        """Its tags, as stored now (empty when it is not committed)."""
        if not self.is_committed():
            return frozenset()
        return _annotations.read(self.storage, self.id).tags

    def note(self: Self, text: str) -> Self:
        """Replace the note of this committed interface (``""`` clears it); the notes it had
        stay readable in `notes`. Returns self.

        Raises:
            InterfaceNotFoundError: it is not committed.
            TagError: `text` is not a string, or longer than 10,000 characters.
        """
        self._retain_annotate(note=text)
        return self

    @property
    def notes(self) -> list[Note]:
        """Every note it was given, oldest first, each a ``Note(time, text)``: its note now is
        ``notes[-1].text`` (``""``: cleared). Empty when it has none or is not committed."""
        if not self.is_committed():
            return []
        return _annotations.read(self.storage, self.id).notes

    def _retain_annotate(self, **change: Any) -> None:
        if not self.is_committed():
            raise InterfaceNotFoundError(
                f"{self!r} is not committed in {self.storage.url}: only a committed result has tags "
                "and notes; commit it first"
            )
        _annotations.annotate(self.storage, self.id, **change)

    def _repr_html_(self) -> str:
        """Jupyter's view: config, status (components), summary, last metric values, files."""
        from ._html import interface_html  # views load when a notebook asks: `import retain` stays cheap

        return interface_html(self)

    # -- reloading -----------------------------------------------------------------------

    @classmethod
    def from_directory(cls: type[Self], path: str | os.PathLike[str]) -> Self:
        """Reload the committed interface in directory `path` (its `local_directory()`:
        ``<storage>/<id[:2]>/<id>``, or ``<storage>/<id>`` in a plain storage; or a symbolic
        link to it), as its own class.

        Raises:
            RecordError: `path` is not an interface's directory (a file, a storage, ``/``, a
                path with NUL), or the directory holds no record, a corrupted one, or one of
                a class that is not `cls` (or a subclass).
        """
        directory = _interface_directory(path)
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
            if os.path.exists(directory) and not os.path.isdir(directory):
                parent = os.path.dirname(directory)
                hint = f"; pass its directory: {parent!r}" if id == RECORD_FILE else ""
                raise RecordError(
                    f"{os.fsdecode(path)!r} is a file, not a directory; from_directory takes an "
                    f"interface's directory (its local_directory(), the one that holds {RECORD_FILE}){hint}"
                ) from None
            if not os.path.isdir(directory):
                reason = "it does not exist"
            elif _is_shard(directory):
                reason = (
                    "it is a shard directory of a storage, which holds the directories of the "
                    "interfaces whose ids start with its name; pass one of those"
                )
            elif _looks_like_storage(directory):
                reason = (
                    "it is a storage, not the directory of one interface in it; pass "
                    "<storage>/<id[:2]>/<id> (<storage>/<id> in a plain storage), or find it "
                    "with get.by_id(id) or get.all(...)"
                )
            else:
                reason = (
                    f"{RECORD_FILE} is missing (an uncommitted interface, or an interrupted "
                    "commit, leaves such a directory)"
                )
            raise RecordError(f"{directory!r} holds no committed interface: {reason}") from None
        except IsADirectoryError:
            raise RecordError(
                f"{where!r} is a directory, not a record: {directory!r} is not an interface's directory"
            ) from None
        except OSError as exc:
            raise RecordError(f"cannot read {where!r}: {exc.strerror or exc}") from exc
        record = decode_record(data, where, os.path.basename(directory))
        return load_record(cls, record, storage)


def _interface_directory(path: str | os.PathLike[str]) -> str:
    """The absolute directory `path` names, once it is checked to be one that could hold an
    interface; a symbolic link with another name than an id is followed to the directory it
    names. String checks only, unless the name is not an id: `from_directory` is a hot path."""
    raw = os.fsdecode(path)
    if "\x00" in raw:
        raise RecordError(f"{raw!r} is not a valid path: it contains a NUL character")
    directory = os.path.abspath(raw)
    if not is_id(os.path.basename(directory)) and os.path.islink(directory):
        # The record names its directory by id: the link's own name would not match it.
        directory = os.path.realpath(directory)
    if os.path.dirname(directory) == directory:
        raise RecordError(
            f"{raw!r} is the root of the file system, not an interface's directory "
            "(its local_directory(), the directory that holds interface.json)"
        )
    return directory


def _is_shard(directory: str) -> bool:
    name = os.path.basename(directory)
    try:
        marker = read_marker(os.path.dirname(directory))
    except RecordError:
        return False
    return marker is not None and marker.get("shard") == len(name) and _HEX_DIGITS.issuperset(name)


_HEX_DIGITS = frozenset("0123456789abcdef")


def _looks_like_storage(directory: str) -> bool:
    if os.path.isdir(os.path.join(directory, STORAGE_META_DIR)):
        return True
    try:
        with os.scandir(directory) as entries:
            return any(is_id(e.name) and os.path.isfile(os.path.join(e.path, RECORD_FILE)) for e in entries)
    except OSError:
        return False


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
    with _settings.storage(storage):
        instance = klass(versions)
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
    target = storage.prepare_directory(new)
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


def _safe_parts(parts: tuple[Any, ...], reserved: tuple[str, ...]) -> list[str]:
    """The components of a relative path that stays inside an interface's directory; with
    `reserved` (names of files retain writes), names retain owns are refused."""
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
    if reserved and (out[0] in reserved or out[0].startswith(RESERVED_PREFIX)):
        owner = "a component's runs (what they print)" if out[0] == OUTPUT_LOG else "retain's own record"
        raise UnsafePathError(f"{out[0]!r} is reserved for {owner}; choose another file name")
    return out


def _check_summary(values: dict[str, Any]) -> dict[str, Any]:
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
    """Raise unless `path` stays inside `directory` once symbolic links are resolved: a link
    planted in the directory (to a file, or as a sub-directory) could otherwise carry a read
    or a write outside the interface. The parts of `path` that do not exist yet are taken as
    they are, so this holds before anything is created."""
    real_directory = os.path.realpath(directory)
    real_path = os.path.realpath(path)
    if not real_path.startswith(real_directory + os.sep):
        raise UnsafePathError(
            f"{path!r} resolves to {real_path!r}, outside the interface's directory "
            "(through a symbolic link); files stay inside local_directory()"
        )


def _provenance(module: str) -> dict[str, Any]:
    # git and hashlib load at the first commit, not at `import retain`.
    from ._provenance import provenance

    return provenance(module)
