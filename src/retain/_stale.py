"""`stale`: committed results whose code or defaults changed since they were computed.

A result is stale when

- ``source``: the source file of its class's module differs from the one it was computed
  with (the sha256 in its record's provenance);
- ``git``: it was computed at another git commit of the module's repository. Checked when
  the record has no source hash, or always with ``git=True`` (any commit then counts, even
  one that changed other files);
- ``defaults``: today's code resolves its versions to another configuration (a default
  changed; a key added since counts as its baseline, the value its identity stands for);
- ``identity``: today's code gives its versions another id, so `get` with them no longer
  finds it;
- ``code``: its class can no longer be imported, or its versions no longer resolve.
"""

from __future__ import annotations

import os

from ._get import _resolve, get, changed_defaults
from ._settings import current_storage
from .interface import Interface, decode_references
from .storage.layout import RECORD_FILE, decode_record
from .element import _classes, defaults_json
from .modules import resolve_class
from . import _settings, _baselines
from .config import config_spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .storage import Storage

__all__ = ["StaleResult", "stale"]


class StaleResult:
    """One stale result: its `id`, `module`, `qualname`, `created`, and `reasons` (dicts with
    ``kind`` and ``message``; ``defaults`` reasons also list ``changes``: key, stored, now)."""

    __slots__ = ("id", "module", "qualname", "created", "reasons")

    def __init__(self, id: str, module: str, qualname: str, created: str, reasons: list[dict[str, Any]]) -> None:
        self.id = id
        self.module = module
        self.qualname = qualname
        self.created = created
        self.reasons = reasons

    @property
    def kinds(self) -> list[str]:
        """The kinds of its reasons, in order (``source``, ``git``, ``defaults``...)."""
        return [reason["kind"] for reason in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "module": self.module,
            "class": self.qualname,
            "created": self.created,
            "reasons": self.reasons,
        }

    def __repr__(self) -> str:
        why = "; ".join(reason["message"] for reason in self.reasons)
        return f"<StaleResult {self.qualname} [{self.id[:6]}]: {why}>"


def stale(target: Any = None, *, storage: Any = None, git: bool = False) -> list[StaleResult]:
    """The committed results of `target` that are older than their module's code, or whose
    defaults changed since they were computed; newest first.

    Args:
        target: an Interface subclass or a module name (as `get` takes); None for every
            committed interface in storage.
        storage: where to look (default: see `retain.storage`).
        git: also count results computed at another git commit of their repository, even if
            their module's source file is unchanged.

    Returns:
        One `StaleResult` per stale result, with the reasons (see the module docstring).
    """
    store = current_storage(storage)
    cls: Any = Interface if target is None else _resolve(target)
    checker = _Checker(store, git)
    found = []
    for id in get.all(cls, storage=store).ids():
        data = store.read_record(id)
        if data is None:  # removed since the index listed it
            continue
        record = decode_record(data, os.path.join(store.local_directory(id), RECORD_FILE), id)
        reasons = checker.reasons(record)
        if reasons:
            found.append(StaleResult(id, record["module"], record["class"], record["created"], reasons))
    return found


class _Checker:
    """Checks records, caching what is per module (class, source hash) and per repository."""

    def __init__(self, storage: Storage, git: bool) -> None:
        self.storage = storage
        self.git = git
        self.classes: dict[tuple[str, str], type[Interface] | str] = {}
        self.sources: dict[str, str | None] = {}
        self.heads: dict[str, str | None] = {}

    def reasons(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        module, qualname = record["module"], record["class"]
        cls = self._class(module, qualname)
        if isinstance(cls, str):
            return [{"kind": "code", "message": cls}]
        reasons = self._code_reasons(record, module)
        reasons += self._config_reasons(record, cls)
        return reasons

    def _class(self, module: str, qualname: str) -> type[Interface] | str:
        key = (module, qualname)
        found = self.classes.get(key)
        if found is None:
            try:
                # Import first (a module dropped from sys.modules is read again), then the
                # classes alive in this process (a notebook's, a function's).
                found = resolve_class(f"{module}:{qualname}", Interface)
            except Exception as exc:  # the user's module may fail to import in any way
                known = _classes.get(key)
                if known is not None and issubclass(known, Interface):
                    found = known
                else:
                    found = f"cannot import {module}:{qualname}: {type(exc).__name__}: {exc}"
            self.classes[key] = found
        return found

    def _code_reasons(self, record: dict[str, Any], module: str) -> list[dict[str, Any]]:
        # `_provenance` loads functools and typing: at the first question, not at import.
        from ._provenance import _file_sha256, module_file

        provenance = record.get("provenance") or {}
        reasons = []
        then = provenance.get("source_sha256")
        path = module_file(module) or provenance.get("source_file")
        if then and path:
            if path not in self.sources:
                # Uncached: the file may have changed since this process first hashed it.
                self.sources[path] = _file_sha256.__wrapped__(path)
            now = self.sources[path]
            if now != then:
                state = f"{now[:12]} now" if now else "the file is gone"
                reasons.append({
                    "kind": "source",
                    "message": f"{path} changed since (sha256 {then[:12]} then, {state})",
                })
        recorded_git = provenance.get("git") or {}
        commit = recorded_git.get("commit")
        if commit and (self.git or not then):
            root = recorded_git.get("root") or (os.path.dirname(path) if path else None)
            head = self._head(root) if root else None
            if head is not None and head != commit:
                reasons.append({
                    "kind": "git",
                    "message": f"computed at git commit {commit[:10]}, {root} is at {head[:10]} now",
                })
        return reasons

    def _head(self, root: str) -> str | None:
        if root not in self.heads:
            from ._provenance import _git_root, _git_state  # as in `_code_reasons`

            top = _git_root(root)
            # Uncached: the repository may have moved on since this process first looked.
            state = _git_state.__wrapped__(top) if top else None
            self.heads[root] = state["commit"] if state else None
        return self.heads[root]

    def _config_reasons(self, record: dict[str, Any], cls: type[Interface]) -> list[dict[str, Any]]:
        try:
            with _settings.storage(self.storage):
                instance = cls(decode_references(record["version"], self.storage))
                state = instance._retain_resolve()
        except Exception as exc:  # a removed key, a renamed version, a missing input...
            message = f"its versions no longer resolve: {type(exc).__name__}: {exc}"
            return [{"kind": "code", "message": message.splitlines()[0]}]

        defaults = defaults_json(config_spec(cls), tuple(cls.non_identifying))
        baseline = _baselines.effective(self.storage, record["module"], record["class"], defaults)
        stored = _baselines.fill(record["config"], baseline, defaults)
        reasons = []
        changes = changed_defaults(cls, stored, state.json)
        if changes:
            shown = "; ".join(f"{key}: {old} then, {new} now" for key, old, new in changes)
            reasons.append({
                "kind": "defaults",
                "message": f"defaults changed since ({shown})",
                "changes": [{"key": key, "stored": old, "now": new} for key, old, new in changes],
            })
        if state.id != record["id"]:
            reasons.append({
                "kind": "identity",
                "message": f"its versions have another id now ({state.id[:6]}); get() with them no longer finds it",
            })
        return reasons

