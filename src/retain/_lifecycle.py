"""Removing committed interfaces: `Interface.delete` and `retain rm`.

Users of an interface (results whose configuration holds it as an input) come from the index
(`Collection.using`); records are read without the classes' code, so a result is removable
even when its code is gone. Each interface is removed atomically by `Storage.remove`; the
index follows (journal line first, rows dropped after).
"""

from __future__ import annotations

import os

from . import _settings
from ._errors import InterfaceNotFoundError, InUseError
from .collection import query_all
from .index import _updates
from .interface import Interface, install_remover
from .storage.layout import JOURNAL_REMOVE, RECORD_FILE, decode_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from .storage import Storage

__all__ = ["Removed", "remove", "remove_planned"]


class Removed:
    """One interface that a removal removed (or, in a dry run, would remove)."""

    __slots__ = ("id", "module", "qualname", "kind", "size")

    def __init__(self, id: str, module: str, qualname: str, kind: str, size: int) -> None:
        #: Its id.
        self.id = id
        #: Its class, as the record names it (module and qualified name).
        self.module = module
        self.qualname = qualname
        #: ``"Interface"`` or ``"Component"``.
        self.kind = kind
        #: The bytes its files took in the storage (record and run files included).
        self.size = size

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "module": self.module, "class": self.qualname, "kind": self.kind, "size": self.size}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Removed) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<Removed {self.qualname} [{self.id[:6]}] {self.size:,} bytes>"


def remove(
    ids: Iterable[str],
    *,
    cascade: bool = False,
    dry_run: bool = False,
    storage: Storage | str | None = None,
) -> list[Removed]:
    """Remove the committed interfaces `ids` from `storage` (default: the current one), in
    the order returned: an interface's users before the interface.

    Args:
        cascade: remove the results that use them too (users of users included), instead
            of refusing.
        dry_run: remove nothing; return what would be removed.

    Raises:
        InterfaceNotFoundError: an id is not committed there.
        InUseError: other results use one of them (and not `cascade`; the error lists them),
            or one of them (or a user, with `cascade`) is a running component (or one queued
            in a batch system).
    """
    store = _settings.current_storage(storage)
    wanted = list(dict.fromkeys(ids))
    records = {id: _record(store, id) for id in wanted}
    # Users from the index: one query, and one pass over its rows for the inputs they hold
    # (`using` per interface would read every row again for each).
    every = query_all(Interface, storage=store)
    holders = every._users()
    order: list[str] = []
    seen: set[str] = set()
    refused: dict[str, list[dict[str, str]]] = {}

    def visit(id: str) -> None:
        if id in seen:
            return
        seen.add(id)
        users = every._pick(holders[id]).to_table() if id in holders else []
        outside = [user for user in users if user["id"] not in records]
        if outside and not cascade:
            refused[id] = outside
        for user in users:
            if cascade or user["id"] in records:
                visit(user["id"])
        order.append(id)

    for id in wanted:
        visit(id)
    if refused:
        raise InUseError(_used_by({f"{records[id]['class']} [{id}]": users for id, users in refused.items()}))
    for id in order:
        if id not in records:
            records[id] = _record(store, id)
    from .runs.status import ExecutionStatus  # the run machinery loads here, not at import

    live = {id: state for id in order if records[id].get("kind") == "Component"
            and (state := ExecutionStatus.of(id, storage=store).state()) in ("running", "queued")}
    if live:
        shown = ", ".join(f"{records[id]['class']} [{id}] is {state}" for id, state in live.items())
        raise InUseError(
            f"{shown}: a running component (or one queued in a batch system) is never removed; "
            "wait for its run to end (retain status), then remove it"
        )
    plan = [
        Removed(id, records[id]["module"], records[id]["class"], records[id]["kind"], store.size(id))
        for id in order
    ]
    if dry_run:
        return plan
    return remove_planned(store, plan)


def remove_planned(store: Storage, plan: list[Removed]) -> list[Removed]:
    """Remove the interfaces of `plan`, in order, atomically each, the index following;
    returns those removed (not those gone meanwhile). The caller has checked what `remove`
    checks: nothing outside the plan uses them, a user comes before what it uses, none is a
    live component (`gc` plans many at once from the index rows it has)."""
    durable = _settings.durable()
    done: list[Removed] = []
    try:
        for item in plan:
            # Journal first: an index that misses the update below (a killed process) drops the id.
            with _updates.journaled(store, item.id, JOURNAL_REMOVE, durable):
                removed = store.remove(item.id, durable=durable)
            if removed:
                done.append(item)
    finally:
        _updates.after_remove(store, [item.id for item in done])
    return done


def _record(store: Storage, id: str) -> dict[str, Any]:
    data = store.read_record(id)
    if data is None:
        raise InterfaceNotFoundError(f"no interface {id} in {store.url}; `retain ls` lists what is there")
    return decode_record(data, os.path.join(store.local_directory(id), RECORD_FILE), id)


def _used_by(refused: dict[str, list[dict[str, str]]]) -> str:
    lines = []
    for what, users in refused.items():
        shown = ", ".join(f"{user['class']} [{user['id']}]" for user in users[:20])
        more = f" and {len(users) - 20} more" if len(users) > 20 else ""
        lines.append(f"{what} is used by {len(users)} result(s): {shown}{more}")
    return (
        "; ".join(lines) + ". Removing it would break them: remove them first, or remove them "
        "with it (cascade=True; retain rm --cascade)"
    )


install_remover(remove)
