"""The index contract: a few primitives per backend; repair, rebuild and filtering derived.

An index is a query catalogue over one storage, and only a cache: every row can be rebuilt
from the records. A backend implements `upsert`, `remove`, `replace_all`, `select`, `count`,
`ids`, `get_meta`, `set_meta` and `reset`; the base derives adding a record, evaluating summary
conditions, self-repair (`sync`) and `rebuild` from them. Optional abilities are `supports_*`
booleans.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..identity import REF_KEY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any, ClassVar

    from ..query import Query
    from ..storage.base import Storage

    #: (id, module, class qualname, kind, created, config JSON text, summary JSON text | None,
    #: last metric values JSON text | None)
    IndexRow = tuple[str, str, str, str, str, str, "str | None", "str | None"]
    Progress = Callable[[int, int], object]

__all__ = ["Index", "IndexEntry", "config_leaves", "parse_summary"]


class IndexEntry:
    """What an index stores about one committed interface (taken from its record)."""

    __slots__ = (
        "id", "module", "qualname", "kind", "created", "_config", "canonical", "summary",
        "config_text", "canonical_text", "summary_text", "leaves", "metrics", "metrics_text",
    )

    def __init__(
        self,
        id: str,
        module: str,
        qualname: str,
        kind: str,
        created: str,
        config: dict[str, Any] | None,
        canonical: dict[str, Any],
        summary: dict[str, Any] | None = None,
        *,
        config_text: str | None = None,
        canonical_text: str | None = None,
        summary_text: str | None = None,
        leaves: list[tuple[str, Any]] | None = None,
        metrics: dict[str, Any] | None = None,
        metrics_text: str | None = None,
    ) -> None:
        self.id = id
        self.module = module
        self.qualname = qualname
        self.kind = kind
        self.created = created
        #: None: parsed from `config_text` when first used (`rebuild` sends entries between
        #: processes as text and leaves, which is what most backends write).
        self._config = config
        self.canonical = canonical
        self.summary = summary
        #: The configs as JSON text, when already at hand (saves encoding them again).
        self.config_text = config_text
        self.canonical_text = canonical_text
        #: The summary as JSON text, instead of `summary` (as read from ``summary.json``).
        self.summary_text = summary_text
        #: ``config_leaves(config)``, when already at hand (`rebuild` computes them in the
        #: processes that read the records).
        self.leaves = leaves
        #: The last value of each metric (see `Component.log_metrics`), or their JSON text as
        #: read from ``.retain.metrics-last.json``; both None: none (or unchanged).
        self.metrics = metrics
        self.metrics_text = metrics_text

    @property
    def config(self) -> dict[str, Any]:
        config = self._config
        if config is None:
            from json import loads

            config = self._config = loads(self.config_text or "{}")
        return config

    @config.setter
    def config(self, value: dict[str, Any]) -> None:
        self._config = value

    @classmethod
    def from_record(cls, record: Mapping[str, Any], summary: dict[str, Any] | None = None) -> IndexEntry:
        return cls(
            record["id"],
            record["module"],
            record["class"],
            record["kind"],
            record["created"],
            record["config"],
            record["canonical_config"],
            summary,
        )

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any], summary: dict[str, Any] | None = None) -> IndexEntry:
        """From `retain.storage.layout.index_fields` (the canonical config only as text)."""
        return cls(
            fields["id"],
            fields["module"],
            fields["class"],
            fields["kind"],
            fields["created"],
            fields["config"],
            {},
            summary,
            config_text=fields["config_text"],
            canonical_text=fields["canonical_text"],
        )

    def __repr__(self) -> str:
        return f"IndexEntry({self.qualname} [{self.id[:6]}])"


def config_leaves(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """The dotted leaf keys of a config and their JSON values. Non-empty dicts are walked;
    lists, empty dicts and interface references are leaves."""
    out: list[tuple[str, Any]] = []
    _leaves(config, prefix, out)
    return out


def _leaves(value: Mapping[str, Any], prefix: str, out: list[tuple[str, Any]]) -> None:
    for key, item in value.items():
        if type(item) is dict and item and REF_KEY not in item:
            _leaves(item, f"{prefix}{key}.", out)
        else:
            out.append((prefix + key, item))


class Index(ABC):
    """A query catalogue over one storage; see `retain.index` for the backends.

    Thread-safe; a process may share one instance between threads. After a `fork`, a backend
    reopens its connections.
    """

    #: Safe when processes on several machines use it at once (a database server).
    supports_multiple_hosts: ClassVar[bool] = False

    # -- primitives ---------------------------------------------------------------------------

    @property
    @abstractmethod
    def url(self) -> str:
        """A string naming this index, accepted by `retain.index.make_index`."""

    @abstractmethod
    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        """Add `entries` in one transaction. An id already present keeps its row (records are
        immutable) but takes the entry's summary and metrics when it has them."""

    @abstractmethod
    def remove(self, ids: Iterable[str]) -> None:
        """Drop the rows of `ids` (absent ids are ignored), in one transaction."""

    @abstractmethod
    def replace_all(self, entries: Iterable[IndexEntry], meta: Mapping[str, str]) -> int:
        """Replace every row by `entries` and set `meta`, in one transaction: readers see the
        old contents or the new, never a mix. Returns the number of rows."""

    @abstractmethod
    def select(self, query: Query) -> list[IndexRow]:
        """The rows of `query`'s classes (or kind) that pass its `conditions`, newest first
        (by `created`, then id). `summary_conditions` are not evaluated here."""

    @abstractmethod
    def count(self, query: Query) -> int:
        """The number of rows `select(query)` would return."""

    @abstractmethod
    def ids(self) -> set[str]:
        """Every id in the index."""

    @abstractmethod
    def get_meta(self) -> dict[str, str]:
        """The index's bookkeeping values (journal offset, storage scan state)."""

    @abstractmethod
    def set_meta(self, values: Mapping[str, str]) -> None:
        """Set bookkeeping values, in one transaction."""

    @abstractmethod
    def reset(self) -> None:
        """Discard everything, even an unreadable database, and start empty (used by
        `rebuild` on a corrupt index or one from a newer schema)."""

    def close(self) -> None:
        """Release connections; the index reopens on next use."""

    # -- derived ------------------------------------------------------------------------------

    def add_record(self, record: Mapping[str, Any], summary: dict[str, Any] | None = None) -> None:
        """Index one committed record (and its summary values)."""
        self.upsert([IndexEntry.from_record(record, summary)])

    def query(self, query: Query) -> list[IndexRow]:
        """`select`, then the summary conditions, evaluated over the rows."""
        rows = self.select(query)
        if query.summary_conditions:
            rows = filter_rows(rows, query.summary_conditions)
        return rows

    def present(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are in the index."""
        from ..query import Condition, Field, Filter, Query

        wanted = list(ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            query = Query(conditions=[Condition(Field("column", "id", "id"), Filter("in", chunk))])
            found.update(row[0] for row in self.select(query))
        return found

    def sync(self, storage: Storage) -> None:
        """Catch up with `storage` cheaply: index what the journal lists past the recorded
        offset, and scan the storage's names if its root directory changed. See
        `docs/design.md`, "Index"."""
        from ._repair import sync

        sync(self, storage)

    def rebuild(self, storage: Storage, progress: Progress | bool | None = None) -> int:
        """Rebuild every row from `storage` alone; returns the number indexed. A corrupt
        database, or one from a newer schema, is discarded first."""
        from ._repair import rebuild

        return rebuild(self, storage, progress)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def parse_summary(text: str | None) -> dict[str, Any] | None:
    """The summary values of an index row; None when there are none, or when the stored text
    is damaged (a ``summary.json`` edited by hand: the index stores it as it is)."""
    if not text:
        return None
    from json import loads

    try:
        value = loads(text)
    except ValueError:
        return None
    return value if type(value) is dict else None


def filter_rows(rows: list[IndexRow], conditions: list[Any]) -> list[IndexRow]:
    """The rows that pass `conditions`, evaluated in Python over their JSON."""
    from json import loads

    from ..query import matches_all

    out = []
    for row in rows:
        columns = {"id": row[0], "module": row[1], "class": row[2], "kind": row[3], "created": row[4]}
        config = None
        summary = parse_summary(row[6])
        metrics = parse_summary(row[7])
        if any(c.field.source == "config" for c in conditions):
            config = loads(row[5])
        if matches_all(conditions, config, summary, columns, metrics):
            out.append(row)
    return out
