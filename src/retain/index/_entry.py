"""What an index stores about one committed interface (`IndexEntry`), the rows it answers
with, and the filtering of rows in Python (summary conditions, and what SQL cannot decide)."""

from __future__ import annotations

from operator import itemgetter

from ..identity import REF_KEY
from ..query import matches_all

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    #: (id, module, class qualname, kind, created, config JSON text, summary JSON text | None,
    #: last metric values JSON text | None)
    IndexRow = tuple[str, str, str, str, str, str, "str | None", "str | None"]
    #: What a table needs of a row: id, created, config, summary and metrics texts (its module,
    #: class and kind are known to whoever asked for it by class).
    TableRow = tuple[str, "str | None", str, "str | None", "str | None"]

__all__ = ["IndexEntry", "Listing", "config_leaves", "filter_rows", "parse_summary", "table_row"]

#: The `TableRow` of an `IndexRow`.
table_row = itemgetter(0, 4, 5, 6, 7)


class Listing:
    """What a query's collection holds of each result: its id and its class, in order; the
    rest of its row is read again when a method needs it (`Index.rows`, `Index.scan`), so
    that a million results take tens of megabytes, not gigabytes.

    Attributes:
        ids: the ids, newest first.
        names: (module, qualname, kind) by class key (a backend's class number, or any int).
        of: the class key of each id (an ``array('l')``), or the one key of them all (an int;
            any value when there are no ids).
        places: where each id's row is in the backend (an ``array('q')`` of the numbers
            `Index.scan` gives its rows), or None: a hint, which a rebuild makes stale.
    """

    __slots__ = ("ids", "names", "of", "places")

    def __init__(self, ids: list[str], names: dict[int, tuple[str, str, str]], of: Any, places: Any = None) -> None:
        self.ids = ids
        self.names = names
        self.of = of
        self.places = places

    @classmethod
    def of_rows(cls, rows: Iterable[IndexRow]) -> Listing:
        """The listing of full rows (for backends without a lighter query)."""
        from array import array

        keys: dict[tuple[str, str, str], int] = {}
        ids: list[str] = []
        of = array("l")
        for row in rows:
            ids.append(row[0])
            name = (row[1], row[2], row[3])
            key = keys.get(name)
            if key is None:
                key = keys[name] = len(keys)
            of.append(key)
        names = {key: name for name, key in keys.items()}
        return cls(ids, names, 0 if len(names) <= 1 else of)


class IndexEntry:
    """What an index stores about one committed interface (taken from its record)."""

    __slots__ = (
        "id", "module", "qualname", "kind", "created", "_config", "canonical", "summary",
        "config_text", "canonical_text", "summary_text", "leaves", "metrics", "metrics_text", "tags",
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
        tags: list[str] | None = None,
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
        #: Its tags (sorted), which replace those the index has; None: unchanged.
        self.tags = tags

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
    from json import loads  # json loads on first use: `import retain` stays cheap

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
