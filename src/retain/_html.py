"""Notebook views: the HTML that Jupyter shows for an `Interface` and a `Collection`.

Everything shown is escaped (configs and summaries are the user's data). A view never raises:
what cannot be read (an invalid config, a storage that went away) is shown as such.
"""

from __future__ import annotations

from .identity import REF_KEY
from .storage.layout import RESERVED_PREFIX
from ._metrics import read_last


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .collection import Collection
    from .interface import Interface

__all__ = ["collection_html", "interface_html", "table_columns"]


def escape(text: str) -> str:
    """`html.escape`, loaded at the first view: `html` loads `re`, which `import retain` does
    not need (collections import this module)."""
    from html import escape as escape_html

    return escape_html(text)

#: Rows of a collection shown in a notebook.
ROWS = 20
#: Files of an interface listed in a notebook.
FILES = 50

_STYLE = (
    "<style>.retain-view table{border-collapse:collapse;margin:2px 0 8px 0}"
    ".retain-view th,.retain-view td{padding:1px 8px;text-align:left;vertical-align:top;"
    "font-family:monospace}.retain-view th{font-weight:600}"
    ".retain-view caption{text-align:left;font-weight:600;padding:4px 0}</style>"
)


def _value(value: Any) -> str:
    """A JSON value as short, escaped text."""
    if isinstance(value, str):
        text = value
    else:
        import json

        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > 200:
        text = text[:199] + "…"
    return escape(text)


def _pairs(caption: str, pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{escape(key)}</th><td>{_value(value)}</td></tr>" for key, value in pairs)
    return f"<table><caption>{escape(caption)}</caption>{rows}</table>"


def _flat(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        if type(item) is dict and item and REF_KEY not in item:
            out += _flat(item, f"{prefix}{key}.")
        else:
            if type(item) is dict and REF_KEY in item:
                item = f"{item.get('class', '?')} [{str(item[REF_KEY])[:6]}]"
            out.append((prefix + str(key), item))
    return out


def _safely(part: Any) -> str:
    try:
        return str(part())
    except Exception as exc:  # a view shows what went wrong instead of failing
        return f"<p>could not read: {escape(f'{type(exc).__name__}: {exc}')}</p>"


def interface_html(interface: Interface) -> str:
    """Class, id, status (components), config, summary, last metric values and files."""
    parts = [_STYLE, '<div class="retain-view">']
    try:
        title = f"{type(interface).__qualname__} [{interface.id}]"
    except Exception:
        title = f"{type(interface).__qualname__} [invalid config]"
    committed = False
    try:
        committed = interface.is_committed()
    except Exception:
        pass
    parts.append(f"<p><b>{escape(title)}</b> {'committed' if committed else 'not committed'}")
    if committed:
        parts.append(_safely(lambda: f", created {escape(str(interface.created))}"))
    execution = getattr(interface, "execution", None)
    if committed and execution is not None:
        parts.append(_safely(lambda: f", status <b>{escape(interface.execution.state())}</b>"))  # type: ignore[attr-defined]
    parts.append("</p>")

    def config() -> str:
        record = interface.record
        values = record["config"] if record is not None else interface._retain_resolve().json
        return _pairs("config", _flat(values)) if values else "<p>config: (defaults)</p>"

    parts.append(_safely(config))
    if committed:
        def results() -> str:
            out = ""
            summary = interface.load_summary()
            if summary:
                out += _pairs("summary", sorted(summary.items()))
            last = read_last(interface)
            if last:
                out += _pairs("last metric values", sorted(last.items()))
            return out

        parts.append(_safely(results))

    def files() -> str:
        names = [n for n in interface.files() if not n.startswith(RESERVED_PREFIX)]
        if not names:
            return ""
        shown = "".join(f"<li>{escape(name)}</li>" for name in names[:FILES])
        more = f"<li>… {len(names) - FILES} more</li>" if len(names) > FILES else ""
        return f"<p><b>files</b></p><ul>{shown}{more}</ul>"

    parts.append(_safely(files))
    parts.append("</div>")
    return "".join(parts)


def collection_html(collection: Collection[Any], rows: int = ROWS) -> str:
    """A table of the first `rows` interfaces (as `to_table`), and the total count."""
    total = len(collection)
    parts = [_STYLE, '<div class="retain-view">', f"<p><b>{escape(repr(collection))}</b>"]
    if total > rows:
        parts.append(f" (the first {rows} shown)")
    parts.append("</p>")

    def table() -> str:
        if not total:
            return ""
        first = collection[:rows].to_table()
        columns = [c for c in table_columns(first) if c != "module"]
        taken = {c for c in columns if not c.startswith("config.")}
        short = [c[len("config."):] if c.startswith("config.") and c[len("config."):] not in taken else c for c in columns]
        head = "".join(f"<th>{escape(name)}</th>" for name in short)
        body = []
        for row in first:
            cells = []
            for column in columns:
                value = row.get(column)
                if column == "id" and isinstance(value, str):
                    value = value[:6]
                cells.append("<td></td>" if value is None else f"<td>{_value(value)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    parts.append(_safely(table))
    parts.append("</div>")
    return "".join(parts)


def table_columns(table: list[dict[str, Any]]) -> list[str]:
    """The columns of `Collection.to_table` rows: id, module, class, created, then the config,
    summary and metric columns, each group sorted."""
    seen: dict[str, None] = {"id": None, "module": None, "class": None, "created": None}
    for row in table:
        for key in row:
            if key not in seen:
                seen[key] = None
    config = sorted(k for k in seen if k.startswith("config."))
    summary = sorted(k for k in seen if k.startswith("summary."))
    metrics = sorted(k for k in seen if k.startswith("metrics."))
    return ["id", "module", "class", "created", *config, *summary, *metrics]
