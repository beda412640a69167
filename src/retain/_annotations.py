"""Tags and notes of committed interfaces: `Interface.tag`, `untag`, `tags`, `note`, `notes`,
and `retain tag` / `retain note`, by id, without the classes' code (DESIGN 12).

They are not part of identity and are the one part of a committed result that changes. Each
change is an immutable event file beside the record (format: `retain.storage.layout`,
"Annotations"), so that concurrent changes never lose one another and a crash leaves the old
state or the new. The index stores the tags (``where={"tags": has("best")}``): a journal line
before the change, the index's tags of the id replaced after it.
"""

from __future__ import annotations

import time

from . import _settings
from ._errors import InterfaceNotFoundError, TagError
from ._timestamps import now_iso
from .index import _updates
from .index._resolve import make_index
from .query import check_tag
from .storage import annotation_files as events
from .storage.layout import JOURNAL_ANNOTATE, encode_annotation

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from .storage import Storage

__all__ = ["Annotations", "Note", "annotate", "read", "tagged_ids"]

#: The longest note accepted (characters): a note is a line or a paragraph, not a file.
MAX_NOTE = 10_000


class Note:
    """One note of an interface: when it was written (ISO 8601, UTC) and its text (``""``: the
    note was cleared then). Unpacks as ``time, text = note``."""

    __slots__ = ("time", "text")

    def __init__(self, time: str, text: str) -> None:
        self.time = time
        self.text = text

    def __iter__(self) -> Iterator[str]:
        return iter((self.time, self.text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Note) and (self.time, self.text) == (other.time, other.text)

    def __hash__(self) -> int:
        return hash((self.time, self.text))

    def __repr__(self) -> str:
        return f"Note(time={self.time!r}, text={self.text!r})"


class Annotations:
    """The tags and notes of one interface."""

    __slots__ = ("tags", "notes")

    def __init__(self, tags: frozenset[str], notes: list[Note]) -> None:
        #: Its tags.
        self.tags = tags
        #: Every note it was given, oldest first; the last one is its note.
        self.notes = notes

    def __repr__(self) -> str:
        return f"Annotations(tags={sorted(self.tags)!r}, note={self.note!r})"

    @property
    def note(self) -> str | None:
        """Its current note; None when it has none (never noted, or cleared)."""
        return self.notes[-1].text or None if self.notes else None


def read(storage: Storage, id: str) -> Annotations:
    """The tags and notes of `id`, from storage.

    Raises:
        StorageError: they cannot be read.
    """
    tags, notes = events.read(storage, id)
    return Annotations(tags, [Note(when, text) for when, text in notes])


def annotate(
    storage: Storage,
    id: str,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    note: str | None = None,
) -> Annotations:
    """Add tags to the committed interface `id`, remove tags, and (unless `note` is None)
    replace its note (``""`` clears it), in one event; returns what it has then.

    Raises:
        InterfaceNotFoundError: `id` is not committed in `storage`.
        TagError: a tag name is malformed, or the note is not a string or too long.
        StorageError: the storage cannot be written.
    """
    added = sorted({check_tag(name) for name in _names(add)})
    removed = sorted({check_tag(name) for name in _names(remove)})
    if note is not None:
        if not isinstance(note, str):
            raise TagError(f"a note is a string; got {type(note).__name__} {note!r}")
        if len(note) > MAX_NOTE:
            raise TagError(f"a note is at most {MAX_NOTE:,} characters; this one has {len(note):,} (save a file instead)")
    if not storage.has_record(id):
        raise InterfaceNotFoundError(
            f"{id} is not committed in {storage.url}: only a committed result has tags and notes; "
            "commit it first"
        )
    if added or removed or note is not None:
        durable = _settings.durable()
        # Journal first: an index that misses the update below (a killed process) reads the
        # tags of `id` again at the next query.
        with _updates.journaled(storage, id, JOURNAL_ANNOTATE, durable):
            events.write_event(storage, id, encode_annotation(now_iso(), added, removed, note), time.time_ns(), durable=durable)
        _updates.after_annotate(storage, id)
    return read(storage, id)


def _names(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):
        return [names]
    return list(names)


def tagged_ids(storage: Storage | str | None = None) -> set[str]:
    """The ids in `storage` (default: the current one) that carry at least one tag, from its
    index (brought up to date first; right after `retain.index.rebuild()` too)."""
    store = _settings.current_storage(storage)
    index = make_index(None, store)
    _updates.flush()
    index.sync(store)
    return set(index.tags())
