"""Reading and writing the annotation events of an id (tags and notes) through any storage;
the format is in `retain.storage.layout` ("Annotations")."""

from __future__ import annotations

import os

from .._fs import makedirs, reclaim_temporaries
from .layout import ANNOTATED_DIR, ANNOTATIONS_FOLDER, annotation_name, fold_annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .base import Storage

__all__ = ["marked_ids", "read", "read_tags", "write_event"]


def read(storage: Storage, id: str) -> tuple[frozenset[str], list[tuple[str, str]]]:
    """The tags of `id` and its note history (``(time, text)``, oldest first), from its events.

    Raises:
        StorageError: the events cannot be listed or read.
    """
    names = storage.list_folder(id, ANNOTATIONS_FOLDER)
    if not names:
        return frozenset(), []
    items = [(id, f"{ANNOTATIONS_FOLDER}/{name}") for name in names]
    found = storage.read_files(items)
    return fold_annotations([found[item] for item in items if item in found])


def read_tags(storage: Storage, ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """The tags of each of `ids` (one listing each; an id without tags maps to an empty set)."""
    return {id: read(storage, id)[0] for id in ids}


def marked_ids(storage: Storage) -> set[str]:
    """The ids that have (or once had) annotation events: one listing of
    ``.retain/annotated/``."""
    return set(storage.list_meta(ANNOTATED_DIR))


def mark(storage: Storage, id: str, *, durable: bool = False) -> None:
    """Note that `id` has annotation events (idempotent; before its first event)."""
    storage.create_meta(f"{ANNOTATED_DIR}/{id}", b"", durable=durable)


def write_event(storage: Storage, id: str, data: bytes, time_ns: int, *, durable: bool = False) -> str:
    """Create one event of `id` (made at `time_ns`), atomically, after marking `id`; returns
    its name.

    Raises:
        StorageError: the storage cannot be written.
    """
    mark(storage, id, durable=durable)
    if not storage.is_remote:
        folder = storage.local_directory(id) + "/" + ANNOTATIONS_FOLDER
        if not makedirs(folder, durable=durable):
            # What a writer killed mid-event left (nothing else reclaims it: the result is
            # committed already).
            reclaim_temporaries(folder)
    while True:
        name = annotation_name(time_ns, os.urandom(4).hex())
        if storage.create_file(id, f"{ANNOTATIONS_FOLDER}/{name}", data, durable=durable):
            return name
