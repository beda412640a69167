"""Index entries read from a storage's records: a record, its summary and its last metric
values make one `IndexEntry` (for `Index.sync`, `Index.rebuild` and the queued writer)."""

from __future__ import annotations

import os

from .._errors import RecordError
from ..storage.layout import METRICS_LAST_FILE, RECORD_FILE, SUMMARY_FILE, decode_summary, index_fields, summary_text
from ._entry import IndexEntry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from ..storage.base import Storage

__all__ = ["read_entries", "read_entry", "read_summary"]


def read_entry(storage: Storage, id: str) -> IndexEntry | None:
    """The entry of `id` from its record and summary; None without a record.

    Raises:
        RecordError: the record or summary is corrupted.
    """
    data = storage.read_file(id, RECORD_FILE)
    if data is None:
        return None
    return _entry(storage, id, data, storage.read_file(id, SUMMARY_FILE), storage.read_file(id, METRICS_LAST_FILE))


def _entry(storage: Storage, id: str, record: bytes, summary: bytes | None, metrics: bytes | None) -> IndexEntry:
    entry = IndexEntry.from_fields(index_fields(record, _where(storage, id), id))
    if summary is not None:
        entry.summary_text = summary_text(summary)
    if metrics is not None:
        entry.metrics_text = summary_text(metrics)
    return entry


def _where(storage: Storage, id: str) -> str:
    if storage.is_remote:
        return f"{storage.url}/{id}/{RECORD_FILE}"
    return os.path.join(storage.local_directory(id), RECORD_FILE)


def read_entries(storage: Storage, ids: list[str]) -> Iterator[tuple[str, IndexEntry | None, RecordError | None]]:
    """``(id, entry or None, error)`` for each id, reading records and summaries in one batch
    (concurrently on an object store)."""
    names = (RECORD_FILE, SUMMARY_FILE, METRICS_LAST_FILE)
    found = storage.read_files([(id, name) for id in ids for name in names])
    for id in ids:
        record = found.get((id, RECORD_FILE))
        if record is None:
            yield id, None, None
            continue
        try:
            metrics = found.get((id, METRICS_LAST_FILE))
            yield id, _entry(storage, id, record, found.get((id, SUMMARY_FILE)), metrics), None
        except RecordError as exc:
            yield id, None, exc


def read_summary(directory: str) -> dict[str, Any] | None:
    where = os.path.join(directory, SUMMARY_FILE)
    try:
        with open(where, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return decode_summary(data, where)
