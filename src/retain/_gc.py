"""Cleaning a storage up: `gc` (`retain gc`).

Two parts. What killed processes left (temporaries of dead writers, directories without a
record nobody touched for an hour, removal leftovers) goes always: `verify`'s walk finds them
(`_health.leftovers`) and its repair deletes them. Results go only when selected (by age, by
their components' states, and by the storage's total size, oldest first; the criteria given
must all hold), never a tagged (pinned) one, a running or queued component, or one that a
kept result uses; they are removed by `_lifecycle.remove` (atomic per result, the index
following), users before the results they use.
"""

from __future__ import annotations

import re
import time

from . import _settings
from ._annotations import tagged_ids
from ._errors import UsageError
from ._fs import bytes_under
from ._health import LEFTOVER_KINDS, leftovers, repair_leftovers
from ._lifecycle import Removed, remove_planned
from ._timestamps import parse_iso
from .identity import REF_KEY, references
from .index import _updates, make_index
from .storage.layout import raw_decoder
from .runs.status import STATES, ExecutionStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

    from .index.base import IndexRow

    #: What `_select` knows of each id: (module, class, kind, size or None: not measured).
    Rows = dict[str, tuple[str, str, str, int | None]]
    from .storage import Storage

__all__ = ["GcReport", "Leftover", "Skipped", "gc", "parse_age", "parse_size"]

#: Seconds per unit of an age (``30d``).
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: Bytes per unit of a size (``50G``): powers of 1,000, as `retain du` prints them.
SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
#: States a selected component can be in to be removed (a live one never is).
REMOVABLE_STATES = tuple(state for state in STATES if state not in ("running", "queued"))

_AMOUNT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")


def parse_age(text: str | float | int) -> float:
    """An age in seconds: a number of seconds, or text such as ``90s``, ``15m``, ``12h``,
    ``30d``, ``2w``.

    Raises:
        UsageError: anything else (the message lists the units).
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text >= 0:
        return float(text)
    found = _AMOUNT.fullmatch(text) if isinstance(text, str) else None
    unit = found.group(2).lower() if found else ""
    if found is None or unit not in AGE_UNITS:
        raise UsageError(
            f"{text!r} is not an age: write a number and a unit, s (seconds), m (minutes), h (hours), "
            "d (days) or w (weeks), e.g. 30d or 12h"
        )
    return float(found.group(1)) * AGE_UNITS[unit]


def parse_size(text: str | int | float) -> int:
    """A size in bytes: a number of bytes, or text such as ``500M``, ``50G``, ``1.5T`` (K, M,
    G, T: powers of 1,000; a trailing ``B`` is allowed: ``50GB``).

    Raises:
        UsageError: anything else (the message lists the units).
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text >= 0:
        return int(text)
    found = _AMOUNT.fullmatch(text) if isinstance(text, str) else None
    unit = found.group(2).lower() if found else ""
    if len(unit) == 2 and unit.endswith("b"):
        unit = unit[0]
    if found is None or unit not in SIZE_UNITS:
        raise UsageError(
            f"{text!r} is not a size: write a number of bytes, or a number and a unit K, M, G or T "
            "(powers of 1,000, as retain du prints them), e.g. 50G or 500M"
        )
    return int(float(found.group(1)) * SIZE_UNITS[unit])


def parse_states(states: str | Iterable[str]) -> tuple[str, ...]:
    """Component states, as a list or comma-separated text (``failed,died``).

    Raises:
        UsageError: an unknown state, none, or a live one (running, queued: never removed).
    """
    words = states.split(",") if isinstance(states, str) else list(states)
    chosen = tuple(dict.fromkeys(str(word).strip() for word in words if str(word).strip()))
    unknown = [state for state in chosen if state not in STATES]
    if unknown or not chosen:
        raise UsageError(
            f"unknown state(s) {', '.join(map(repr, unknown)) or '(none given)'}; gc selects components "
            f"by state among {', '.join(REMOVABLE_STATES)}, e.g. failed,died"
        )
    live = [state for state in chosen if state not in REMOVABLE_STATES]
    if live:
        raise UsageError(
            f"a {' or '.join(live)} component is never removed (its run would break); gc selects "
            f"components by state among {', '.join(REMOVABLE_STATES)}"
        )
    return chosen


class Leftover:
    """Something a killed process left, that `gc` deleted (or, in a dry run, would delete):
    its `kind` (``temporary``, ``orphan``, ``removal-leftover``), `path`, the `id` of the
    directory concerned (None: the storage's own files) and its `size` in bytes."""

    __slots__ = ("kind", "path", "id", "size")

    def __init__(self, kind: str, path: str, id: str | None, size: int) -> None:
        self.kind = kind
        self.path = path
        self.id = id
        self.size = size

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "path": self.path, "id": self.id, "size": self.size}

    def __repr__(self) -> str:
        return f"<Leftover {self.kind} {self.path} {self.size:,} bytes>"


class Skipped:
    """A selected result that `gc` kept, and why (`reason`): tagged, running or queued, or
    used by a result that is kept."""

    __slots__ = ("id", "module", "qualname", "reason")

    def __init__(self, id: str, module: str, qualname: str, reason: str) -> None:
        self.id = id
        self.module = module
        self.qualname = qualname
        self.reason = reason

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "module": self.module, "class": self.qualname, "reason": self.reason}

    def __repr__(self) -> str:
        return f"<Skipped {self.qualname} [{self.id[:6]}]: {self.reason}>"


class GcReport:
    """What `gc` did (or, in a `dry_run`, would do): the results `removed` (users before the
    results they use), the `leftovers` of killed processes deleted, the selected results
    `skipped` and why, and the `bytes` freed."""

    __slots__ = ("removed", "leftovers", "skipped", "dry_run", "storage")

    def __init__(
        self, removed: list[Removed], leftovers: list[Leftover], skipped: list[Skipped], dry_run: bool, storage: str
    ) -> None:
        self.removed = removed
        self.leftovers = leftovers
        self.skipped = skipped
        self.dry_run = dry_run
        self.storage = storage

    @property
    def bytes(self) -> int:
        """The bytes freed (or that would be)."""
        return sum(item.size for item in self.removed) + sum(item.size for item in self.leftovers)

    def as_dict(self) -> dict[str, object]:
        return {
            "storage": self.storage, "dry_run": self.dry_run, "bytes": self.bytes,
            "removed": [item.as_dict() for item in self.removed],
            "leftovers": [item.as_dict() for item in self.leftovers],
            "skipped": [item.as_dict() for item in self.skipped],
        }

    def __repr__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (f"<GcReport {verb} {len(self.removed)} result(s) and {len(self.leftovers)} leftover(s), "
                f"{self.bytes:,} bytes; {len(self.skipped)} kept>")


def gc(
    *,
    older_than: str | float | None = None,
    status: str | Iterable[str] | None = None,
    max_size: str | int | None = None,
    dry_run: bool = False,
    storage: Storage | str | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> GcReport:
    """Clean `storage` (default: the current one) up: delete what killed processes left, and
    remove the committed results selected by every criterion given (none given: no result).

    Args:
        older_than: results created longer ago than this (seconds, or ``"30d"``, ``"12h"``...).
        status: components in these states (``"failed,died"`` or a list; see `STATES`).
        max_size: remove the oldest (of those selected by the other criteria) until the
            storage's results take at most this (bytes, or ``"50G"``, ``"500M"``...).
        dry_run: remove nothing; report what would go.
        progress: called as ``progress(done, total)`` as directories are looked at for
            leftovers, then results removed (`total` grows by the number of results to
            remove once they are known).

    A tagged result, a running or queued component, and a result that a kept result uses
    are never removed: they are reported in `GcReport.skipped`.

    Raises:
        UsageError: an age, size or state that is not one (the message says what is).
    """
    age = None if older_than is None else parse_age(older_than)
    cutoff = None if age is None else time.time() - age  # created before the call began
    states = None if status is None else parse_states(status)
    limit = None if max_size is None else parse_size(max_size)
    store = _settings.current_storage(storage)
    # threading and contextlib load with the first gc (the CLI imports this module).
    from .index._rebuild_workers import paused_gc

    with paused_gc():  # many small objects and no cycles (see `verify`)
        walked = [0]

        def walking(done: int, total: int) -> None:
            walked[0] = total
            if progress is not None:
                progress(done, total)

        found = _leftovers(store, dry_run, walking)
        if cutoff is None and states is None and limit is None:
            return GcReport([], found, [], dry_run, store.url)
        chosen, skipped, rows = _select(store, cutoff, states, limit)
        shifted = None if progress is None else (
            lambda done, total: progress(walked[0] + done, walked[0] + total))
        removed, late = _remove(store, chosen, rows, dry_run, shifted)
    return GcReport(removed, found, skipped + late, dry_run, store.url)


def _leftovers(store: Storage, dry_run: bool, progress: Callable[[int, int], Any]) -> list[Leftover]:
    """Find what killed processes left (and, unless `dry_run`, delete it)."""
    problems = [problem for problem in leftovers(store, progress) if problem.kind in LEFTOVER_KINDS and problem.path]
    sized = [(problem, bytes_under(problem.path or "")) for problem in problems]
    if not dry_run:
        repair_leftovers(store, problems)
        # An orphan that got a record meanwhile is left in place (repaired stays None).
        sized = [(problem, size) for problem, size in sized if problem.repaired is not None]
    return [Leftover(problem.kind, problem.path or "", problem.id, size) for problem, size in sized]


def _scan(store: Storage) -> Iterator[tuple[int, IndexRow]]:
    """The index rows of `store` (brought up to date), chunk by chunk (memory stays bounded),
    each with its place in the index (rows committed later have larger places)."""
    index = make_index(None, store)
    _updates.flush()  # what this process committed is in the index before it is read
    index.sync(store)
    for places, rows in index.scan(None):
        yield from zip(places if places is not None else range(len(rows)), rows)


def _link(row: IndexRow, users: dict[str, list[str]], inputs: dict[str, list[str]]) -> None:
    """Record what `row` uses: in `inputs` (its inputs) and in `users` (by each input)."""
    if REF_KEY in row[5]:  # most configs hold no input: not parsed
        used = [str(ref[REF_KEY]) for ref in references(raw_decoder()(row[5])[0])]
        inputs[row[0]] = used
        for input in used:
            users.setdefault(input, []).append(row[0])


def _users(store: Storage) -> dict[str, list[str]]:
    """The users of each id, from the index rows' configs."""
    users: dict[str, list[str]] = {}
    inputs: dict[str, list[str]] = {}
    for _, row in _scan(store):
        _link(row, users, inputs)
    return users


def _select(
    store: Storage, cutoff: float | None, states: tuple[str, ...] | None, limit: int | None
) -> tuple[list[str], list[Skipped], Rows]:
    """The ids to remove (created before `cutoff`, seconds since the epoch, ...), users
    before the results they use; the selected ones kept; and what is known of each id."""
    state_cache: dict[str, str] = {}

    def state(id: str) -> str:
        if id not in state_cache:
            state_cache[id] = ExecutionStatus.of(id, storage=store).state()
        return state_cache[id]

    # One pass over the index keeps only the rows the criteria select (oldest first after
    # sorting by creation, then place) and the links between results.
    users: dict[str, list[str]] = {}
    inputs: dict[str, list[str]] = {}
    candidates: list[tuple[str, int, str]] = []
    known: Rows = {}
    names: dict[str, str] = {}  # one string per module, class and kind
    sizes: dict[str, int] = {}
    total = 0
    for place, row in _scan(store):
        id = row[0]
        _link(row, users, inputs)
        size = None
        if limit is not None:
            size = store.size(id)
            total += size
        if (cutoff is None or parse_iso(row[4]) < cutoff) and (
                states is None or (row[3] == "Component" and state(id) in states)):
            candidates.append((row[4], place, id))
            module, qualname, kind = (names.setdefault(text, text) for text in row[1:4])
            known[id] = (module, qualname, kind, size)
            if size is not None:
                sizes[id] = size
    candidates.sort()
    order = [id for _, _, id in candidates]
    del candidates
    pinned = _pinned(store)
    why: dict[str, str] = {}

    def blocked(id: str) -> bool:
        if id in pinned:
            why[id] = "tagged (pinned)"
        elif known[id][2] == "Component" and state(id) in ("running", "queued"):
            why[id] = f"{state(id)}: a live component is never removed"
        else:
            return False
        return True

    if limit is None:
        removing = _closed([id for id in order if not blocked(id)], users, inputs, why)
    else:
        added: list[str] = []
        position, removing = 0, set()
        while True:  # the oldest until the rest fits; again when a kept user kept some back
            freed = sum(sizes[id] for id in removing)
            while total - freed > limit and position < len(order):
                id = order[position]
                position += 1
                if not blocked(id):
                    added.append(id)
                    freed += sizes[id]
            removing = _closed(added, users, inputs, why)
            if total - sum(sizes[id] for id in removing) <= limit or position >= len(order):
                break
    skipped = [Skipped(id, *known[id][:2], why[id]) for id in order if id in why and id not in removing]
    return _users_first(removing, users), skipped, known


def _closed(added: list[str], users: dict[str, list[str]], inputs: dict[str, list[str]], why: dict[str, str]) -> set[str]:
    """`added` less the results a kept result uses (and so on: keeping one keeps its inputs)."""
    removing = set(added)
    pending = list(added)
    while pending:
        id = pending.pop()
        if id not in removing:
            continue
        kept = [user for user in users.get(id, ()) if user not in removing]
        if kept:
            removing.discard(id)
            more = f" and {len(kept) - 1} more" if len(kept) > 1 else ""
            why[id] = f"used by {kept[0]}{more}, which is kept"
            pending.extend(input for input in inputs.get(id, ()) if input in removing)
    return removing


def _users_first(ids: set[str], users: dict[str, list[str]]) -> list[str]:
    """`ids` ordered so that a result comes after every one of them that uses it."""
    order: list[str] = []
    seen: set[str] = set()
    for start in sorted(ids):
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(users.get(start, ())))]
        while stack:  # depth first without recursion: chains of inputs can be long
            id, pending = stack[-1]
            for user in pending:
                if user in ids and user not in seen:
                    seen.add(user)
                    stack.append((user, iter(users.get(user, ()))))
                    break
            else:
                stack.pop()
                order.append(id)
    return order


#: Results removed between two reports of progress (at least; a twentieth of them at most).
BATCH = 1_000


def _remove(
    store: Storage, ids: list[str], known: Rows, dry_run: bool, progress: Callable[[int, int], Any] | None
) -> tuple[list[Removed], list[Skipped]]:
    """Remove `ids` (users first) by batches. What changed since the selection is looked at
    again: the index rows and the tags once (a result committed meanwhile that uses one
    keeps it, and what it uses; one tagged meanwhile is kept), a component's state just
    before its batch (one that started is kept)."""
    users = _users(store)
    pinned = _pinned(store)
    chosen = set(ids)
    kept: set[str] = set()
    removed: list[Removed] = []
    skipped: list[Skipped] = []
    size = max(BATCH, len(ids) // 20)
    if progress is not None:
        progress(0, len(ids))
    for start in range(0, len(ids), size):
        plan: list[Removed] = []
        for id in ids[start:start + size]:
            module, qualname, kind, measured = known[id]
            # Users come first: a kept one was decided before what it uses.
            using = [user for user in users.get(id, ()) if user not in chosen or user in kept]
            state = ExecutionStatus.of(id, storage=store).state() if kind == "Component" else ""
            if using or id in pinned or state in ("running", "queued"):
                kept.add(id)
                more = f" and {len(using) - 1} more" if len(using) > 1 else ""
                reason = f"used by {using[0]}{more}, which is kept" if using else "tagged (pinned)" \
                    if id in pinned else f"{state}: a live component is never removed"
                skipped.append(Skipped(id, module, qualname, reason))
                continue
            plan.append(Removed(id, module, qualname, kind, store.size(id) if measured is None else measured))
        removed += plan if dry_run else remove_planned(store, plan)
        if progress is not None:
            progress(min(start + size, len(ids)), len(ids))
    return removed, skipped


def _pinned(store: Storage) -> set[str]:
    """The ids of the tagged results of `store`: never removed by `gc`."""
    return tagged_ids(store)
