"""Turning command-line words into versions: `key=value` overrides and `~version` calls."""

from __future__ import annotations

import json

from .._errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["parse_value", "parse_versions", "format_value"]

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
        from .._get import get

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
        key, sep, value = word.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"cannot read {word!r}: expected key=value (e.g. lr=0.1, model.depth=4) or "
                "~version (e.g. '~large(2)')"
            )
        versions.append({key.strip(): parse_value(value)})
    return versions


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
