"""`get`: retrieval identical to instantiation."""

from __future__ import annotations

import os
import sys

from . import _settings
from ._errors import InterfaceNotFoundError, ModuleResolutionError
from .element import Element, normalize_json
from .identity import REF_KEY, is_id, remove_paths, same_value
from .interface import Interface, adopt_record, decode_references, load_record
from .modules import class_reference, resolve_class
from .storage.layout import RECORD_FILE, decode_record
from .collection import query_all, query_records

TYPE_CHECKING = False  # typing is not imported at run time: `import retain` stays cheap
if TYPE_CHECKING:
    from typing import Any, TypeVar, overload

    from .collection import Collection
    from .versions import Version

    E = TypeVar("E", bound=Element)
    I = TypeVar("I", bound=Interface)
else:

    def overload(function):
        return function

__all__ = ["Get", "changed_defaults", "get"]

_HEX = frozenset("0123456789abcdef")
_resolved_modules: dict[str, tuple[Any, type]] = {}


def _resolve(target: Any) -> type[Element]:
    if isinstance(target, type):
        if issubclass(target, Element):
            return target
        raise ModuleResolutionError(
            f"get() takes an Element or Interface subclass or a module name; got class "
            f"{target.__qualname__}, which is neither"
        )
    if isinstance(target, str):
        cached = _resolved_modules.get(target)
        module_name = target.partition(":")[0]
        if cached is not None and sys.modules.get(module_name) is cached[0]:
            return cached[1]
        cls = resolve_class(target, Interface)
        _resolved_modules[target] = (sys.modules.get(module_name), cls)
        return cls
    raise ModuleResolutionError(
        f"get() takes a class or a module name such as 'evolution.simulate_offspring'; got "
        f"{type(target).__name__} {target!r}"
    )


class Get:
    """Find a committed interface by its configuration, or make a new one."""

    @overload
    def __call__(self, target: type[E], version: Version = None, *, storage: Any = None) -> E: ...

    @overload
    def __call__(self, target: str, version: Version = None, *, storage: Any = None) -> Interface: ...

    def __call__(self, target: Any, version: Version = None, *, storage: Any = None) -> Any:
        """The committed interface of `target` with `version` if storage has it, else a new,
        uncommitted one. Never writes. Equivalent to ``target(version)`` plus the lookup.

        Args:
            target: an Interface (or Element) subclass, a module name whose one Interface
                class is meant (``"evolution.simulate_offspring"``), or ``"module:Class"``.
            version: a dict update, a ``"~name(args)"`` string, or a list of these.
            storage: where to look (a path, URL or Storage); default: see `retain.storage`.

        Raises:
            ConfigError, VersionError, IdentityError: the version is invalid.
            ModuleResolutionError: the target cannot be found.
        """
        cls = _resolve(target)
        if storage is not None:
            with _settings.storage(storage):
                instance = cls(version)
        else:
            instance = cls(version)
        if not isinstance(instance, Interface):
            return instance
        state = instance._retain_resolve()
        store = instance.storage
        data = store.read_record(state.id)
        if data is None:
            return instance
        module, qualname = class_reference(cls)
        record = decode_record(
            data, f"{store.local_directory(state.id)}/{RECORD_FILE}", state.id,
            resolved=(module, qualname, state.canonical),
        )
        adopt_record(instance, record, decode_references(record["config"], store))
        return instance

    @overload
    def all(self, target: type[I], where: Any = None, *, storage: Any = None, index: Any = None) -> Collection[I]: ...

    @overload
    def all(self, target: str, where: Any = None, *, storage: Any = None, index: Any = None) -> Collection[Interface]: ...

    def all(self, target: Any, where: Any = None, *, storage: Any = None, index: Any = None) -> Any:
        """Every committed interface of `target` that passes `where`, newest first, from the
        index: a `Collection` whose interfaces load from storage only when accessed.

        Args:
            target: an Interface subclass, or a module name as for `get`. ``Interface`` itself
                means every interface; another base class of retain (``Component``), every
                interface of its kind. Subclasses of `target` are not included.
            where: a dict of field -> value (equality: ``{"batch_size": 8}``, dotted keys for
                nested values: ``{"model.depth": 4}``) or filter (``{"lr": retain.lt(0.01)}``,
                also `le`, `gt`, `ge`, `between`, `one_of`), run in the index; fields are config
                keys, ``"summary.<name>"``, or ``id``, ``created``, ``module``, ``class``,
                ``kind``. Or a function of the config, run over the indexed configs
                (``lambda c: c.lr < 0.01``).
            storage: where to look (default: see `retain.storage`).
            index: the index to ask (default: ``retain.settings(index=...)`` or
                ``RETAIN_INDEX``, else the storage's own; see `retain.index.make_index`).

        Raises:
            ConfigError: `where` names a config key that `target.Config` does not declare, or
                is malformed.
            IndexDatabaseError: the index cannot be used (the message says how to fix it).
        """
        try:
            cls = _resolve(target)
        except ModuleResolutionError as exc:
            module = target.strip().partition(":")[0] if isinstance(target, str) else ""
            if not module or (module in sys.modules and ":" not in target):
                raise  # importable, but no single class: not a question for the records
            # The code is gone or broken: the records are readable without it.
            return query_records(target, where, exc, storage=storage, index=index)
        return query_all(cls, where, storage=storage, index=index)

    def by_id(self, id: str, *, storage: Any = None) -> Interface:
        """The committed interface with this id, or the only one whose id starts with it.

        Raises:
            InterfaceNotFoundError: nothing matches, or a prefix matches several (listed).
        """
        store = _settings.current_storage(storage)
        prefix = id.strip().lower() if isinstance(id, str) else ""
        if not prefix or not _HEX.issuperset(prefix) or len(prefix) > 32:
            raise InterfaceNotFoundError(
                f"{id!r} is not an id or id prefix (up to 32 hex characters, e.g. '29f034')"
            )
        if is_id(prefix):
            data = store.read_record(prefix)
            if data is None:
                raise InterfaceNotFoundError(f"no interface {prefix} in {store.url}")
            matches = [prefix]
        else:
            matches = sorted(store.iter_ids(prefix))
            if not matches:
                raise InterfaceNotFoundError(f"no interface id starts with {prefix!r} in {store.url}")
            if len(matches) > 1:
                shown = ", ".join(matches[:10]) + (f" and {len(matches) - 10} more" if len(matches) > 10 else "")
                raise InterfaceNotFoundError(
                    f"id prefix {prefix!r} is ambiguous in {store.url}: it matches {shown}; "
                    "give more characters"
                )
            data = store.read_record(matches[0])
            if data is None:
                raise InterfaceNotFoundError(f"interface {matches[0]} was removed while loading")
        where = os.path.join(store.local_directory(matches[0]), RECORD_FILE)
        return load_record(Interface, decode_record(data, where, matches[0]), store)


def changed_defaults(cls: type[Interface], stored: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, str, str]]:
    """How a stored resolved config (JSON, with keys added since filled with their
    baselines) differs from today's resolution of the same versions: ``(dotted path, stored
    repr, current repr)`` per difference, empty when they agree. Non-identifying keys are
    ignored. Behind the ``defaults`` reason of `retain.stale`.
    """
    paths = tuple(cls.non_identifying)
    old = normalize_json(remove_paths(stored, paths))
    now = normalize_json(remove_paths(current, paths))
    if same_value(old, now):
        return []
    return list(_differences(old, now, ""))


_ABSENT = "(absent)"


def _differences(stored: Any, now: Any, path: str) -> Any:
    if isinstance(stored, dict) and isinstance(now, dict) and REF_KEY not in stored:
        for key in sorted(set(stored) | set(now)):
            sub = f"{path}.{key}" if path else key
            if key not in stored:
                yield sub, _ABSENT, repr(now[key])
            elif key not in now:
                yield sub, repr(stored[key]), _ABSENT
            elif not same_value(stored[key], now[key]):
                yield from _differences(stored[key], now[key], sub)
    else:
        yield path or "(config)", repr(stored), repr(now)


get = Get()
