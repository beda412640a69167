"""The words of the command line, which `retain ui` reads too: ``key=value`` overrides,
``~version`` calls, ``--where`` expressions, and the command that recreates a record."""

from __future__ import annotations

import json
import shlex

from ._errors import ConfigError, InterfaceNotFoundError, UsageError
from .identity import REF_KEY
from ._get import get
from .query import ge, gt, le, lt

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .interface import Interface

__all__ = [
    "format_value",
    "parse_alternatives",
    "parse_grid",
    "parse_value",
    "parse_versions",
    "parse_where",
    "recreate_command",
    "split_alternatives",
    "where_groups",
]

_WORDS = {"true": True, "false": False, "null": None, "none": None}


def parse_value(text: str) -> Any:
    """A value typed the way a user expects: ``1`` int, ``1.0`` float, ``true``/``false``,
    ``null``, ``[1,2]`` and ``{"a":1}`` as JSON, ``"1"`` (quoted) the string ``1``,
    ``@29f034`` the committed interface with that id prefix; anything else a string."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in _WORDS:
        return _WORDS[lowered]
    if stripped.startswith("@") and len(stripped) > 1:
        return get.by_id(stripped[1:])
    if stripped[:1] in "[{\"-0123456789" and stripped:
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    if stripped[:1] == "'" and stripped[-1:] == "'" and len(stripped) >= 2:
        return stripped[1:-1]
    return text


def parse_versions(words: list[str]) -> list[str | dict[str, Any]]:
    """`key=value` words (dotted keys nest) and `~name(args)` words, in order."""
    versions: list[str | dict[str, Any]] = []
    for word in words:
        if word.startswith("~"):
            versions.append(word)
            continue
        key, value = _update(word)
        versions.append({key: parse_value(value)})
    return versions


def _update(word: str) -> tuple[str, str]:
    """The key and the value's text of a ``key=value`` word."""
    key, sep, value = word.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"cannot read {word!r}: expected key=value (e.g. lr=0.1, model.depth=4) or "
            "~version (e.g. '~large(2)')"
        )
    return key.strip(), value


def split_alternatives(text: str) -> list[str]:
    """The comma-separated alternatives of a value: ``0.1,0.01`` is two. A comma inside
    brackets (``[1,2]``, ``{"a":1,"b":2}``, ``range(1,5)``, ``~large(2,3)``) or inside an
    alternative that starts with a quote (``'a,b'``, ``"a,b"``) does not separate; text whose
    brackets or quotes do not close is one alternative (as before grids)."""
    items: list[str] = []
    depth = 0
    quote = ""
    start = 0
    position = 0
    while position < len(text):
        char = text[position]
        if quote:
            if char == "\\" and quote == '"':
                position += 1  # an escaped character of a JSON string
            elif char == quote:
                quote = ""
        elif char in "'\"" and (depth > 0 or not text[start:position].strip()):
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                return [text]
        elif char == "," and depth == 0:
            items.append(text[start:position])
            start = position + 1
        position += 1
    if quote or depth:
        return [text]
    items.append(text[start:])
    return items


def parse_alternatives(text: str, word: str | None = None) -> list[Any]:
    """The values of a grid word's value: ``0.1,0.01`` is ``[0.1, 0.01]``, ``range(3)`` is
    ``[0, 1, 2]`` (also ``range(start, stop[, step])``), each alternative typed as by
    `parse_value`; a value without a separating comma or a range is one value, as always."""
    items = split_alternatives(text)
    values: list[Any] = []
    for item in items:
        if len(items) > 1 and not item.strip():
            raise ConfigError(
                f"cannot read {word or text!r}: an empty alternative between commas; remove the extra "
                "comma, or quote a value that holds a comma: \"name='a,b'\""
            )
        stripped = item.strip()
        if stripped.startswith("range(") and stripped.endswith(")"):
            values.extend(_range(stripped))
        else:
            values.append(parse_value(item))
    return values


def _range(text: str) -> list[int]:
    parts = [part.strip() for part in text[len("range("):-1].split(",")]
    try:
        bounds = [int(part) for part in parts]
        if not 1 <= len(bounds) <= 3:
            raise ValueError(text)
        values = list(range(*bounds))
    except ValueError:
        raise ConfigError(
            f"cannot read {text!r}: expected range(stop), range(start, stop) or "
            "range(start, stop, step) with whole numbers and a step other than 0, e.g. "
            "seed=range(5); quote it for the text: \"name='range(5)'\""
        ) from None
    if not values:
        raise ConfigError(f"{text} is empty: it gives no values (e.g. range(5) is 0, 1, 2, 3, 4)")
    return values


def parse_grid(words: list[str]) -> list[tuple[str, list[Any]]]:
    """The axes of a grid from ``key=value`` and ``~version`` words, in order: each word's
    key (``"~"`` for a version word) and its alternatives (``lr=0.1,0.01``, ``seed=range(3)``,
    ``'~small,~large(2)'``). Words without alternatives make axes of one value, which
    `parse_versions` would give."""
    axes: list[tuple[str, list[Any]]] = []
    for word in words:
        if word.startswith("~"):
            versions = [item.strip() for item in split_alternatives(word)]
            if len(versions) == 1:
                axes.append(("~", [word]))
                continue
            for version in versions:
                if not version.startswith("~"):
                    raise ConfigError(
                        f"cannot read {word!r}: each alternative of a version grid is a version "
                        f"starting with ~ ('~small,~large(2)'); got {version!r}"
                    )
            axes.append(("~", versions))
            continue
        key, value = _update(word)
        axes.append((key, parse_alternatives(value, word)))
    return axes


def format_value(value: Any) -> str:
    """The inverse of `parse_value` for JSON values: a word that parses back to `value`."""
    if isinstance(value, str):
        plain = (
            value
            and value == value.strip()
            and not value.startswith(("@", "'", "~"))
            and "=" not in value
            and parse_value(value) == value
        )
        return value if plain else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


#: Comparison operators of ``--where``, longest first so ``<=`` is not read as ``<``.
_OPERATORS = ("<=", ">=", "!=", "==", "<", ">", "=")


def parse_where(expression: str) -> tuple[str, Any]:
    """``'lr<0.01'`` as ``("lr", lt(0.01))``; ``'batch_size=8'`` as ``("batch_size", 8)``.

    Operators: ``=`` (or ``==``), ``<``, ``<=``, ``>``, ``>=``; values are typed as in
    key=value words.
    """
    at = min((expression.find(c) for c in "<>=!" if c in expression), default=-1)
    if at <= 0:
        raise UsageError(
            f"cannot read --where {expression!r}: expected KEY OP VALUE with OP one of "
            "= < <= > >= (e.g. 'lr<0.01', 'batch_size=8', 'summary.loss<=0.2')"
        )
    op = next(o for o in _OPERATORS if expression.startswith(o, at))
    key, text = expression[:at].strip(), expression[at + len(op):]
    if op == "!=":
        raise UsageError(
            f"--where {expression!r}: '!=' is not supported (the index compares with = < <= > >=); "
            "use a range, or two queries"
        )
    if not text.strip() and op != "=" and op != "==":
        raise UsageError(f"--where {expression!r}: expected a value after {op!r}")
    value = parse_value(text)
    if op in ("=", "=="):
        return key, value
    maker = {"<": lt, "<=": le, ">": gt, ">=": ge}[op]
    try:
        return key, maker(value)
    except ConfigError as exc:
        raise ConfigError(f"--where {expression!r}: {exc}") from None


def where_groups(expressions: list[str]) -> list[dict[str, Any]]:
    """``--where`` expressions as `where` dicts: the first holds one condition per key, the
    next ones the conditions on keys already used (``lr>0.1`` and ``lr<0.5``)."""
    groups: list[dict[str, Any]] = []
    for expression in expressions:
        key, condition = parse_where(expression)
        for group in groups:
            if key not in group:
                group[key] = condition
                break
        else:
            groups.append({key: condition})
    return groups


def recreate_command(committed: Interface | dict[str, Any]) -> str:
    """A shell-safe `retain` command whose `get` gives this identity (of an interface or a
    record)."""
    record = committed if isinstance(committed, dict) else committed.record
    if record is None:
        raise InterfaceNotFoundError(f"{committed!r} is not committed")
    words = ["retain", f"{record['module']}:{record['class']}"]
    for key, value in _flatten(record["canonical_config"]):
        words.append(f"{key}={_word(value)}")
    return " ".join(shlex.quote(word) for word in words)


def _flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in sorted(config.items()):
        if "." in key or "=" in key:
            raise ConfigError(f"config key {key!r} cannot be written as a key=value word")
        if isinstance(value, dict) and value and REF_KEY not in value:
            items.extend(_flatten(value, f"{prefix}{key}."))
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _word(value: Any) -> str:
    if isinstance(value, dict) and REF_KEY in value:
        return f"@{value[REF_KEY]}"
    return format_value(value)
