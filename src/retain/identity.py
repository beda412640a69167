"""Content identity: the canonical form of a configuration and the id derived from it.

The id is `sha256(canonical JSON of {scheme, module, class, config})`, hex, first 32 characters.
Changing anything here changes every id: the golden test in `tests/test_identity_golden.py`
pins a set of them, and a change to the scheme must bump `SCHEME`.
"""

from __future__ import annotations

import math
import sys
# `collections.abc` re-exports these from `_collections_abc`, which the interpreter has
# already loaded; importing the public name would load all of `collections` (~2 ms).
from _collections_abc import Mapping

from ._errors import ConfigError, IdentityError

__all__ = [
    "ID_LENGTH",
    "MAX_DEPTH",
    "REF_KEY",
    "SCHEME",
    "SHORT_ID_LENGTH",
    "canonical_json",
    "compute_id",
    "drop_defaults",
    "is_id",
    "normal_number",
    "references",
    "same_value",
    "to_json",
]

SCHEME = 1
ID_LENGTH = 32
#: The deepest a configuration may nest dicts and lists (the configuration itself is one
#: level). Every path that walks a configuration recursively (this module, the config
#: merge, the record's JSON, the index's flattening of leaves) handles it with a wide margin
#: below Python's recursion limit; deeper values and values containing themselves are a
#: `ConfigError` when the configuration is resolved, before anything is stored.
MAX_DEPTH = 100
SHORT_ID_LENGTH = 6
#: Key of the JSON object that stands for an interface used as a configuration value.
REF_KEY = "$interface"

_HEX = frozenset("0123456789abcdef")
_MISSING = object()

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    JSON = Any  # None | bool | int | float | str | list[JSON] | dict[str, JSON]


def canonical_json(value: JSON) -> str:
    """Serialise `value` to its one canonical JSON spelling."""
    global _canonical_encode
    if _canonical_encode is None:
        import json

        # One encoder for the process: json.dumps with arguments builds one per call.
        _canonical_encode = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode
    return _canonical_encode(value)


_canonical_encode: Callable[[Any], str] | None = None


def compute_id(module: str, qualname: str, canonical_config: Mapping[str, JSON]) -> str:
    """The content id of a class (by module and qualified name) with a canonical config."""
    import hashlib

    payload = {"class": qualname, "config": canonical_config, "module": module, "scheme": SCHEME}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:ID_LENGTH]


def is_id(text: str) -> bool:
    return len(text) == ID_LENGTH and _HEX.issuperset(text)


def to_json(
    value: Any,
    path: str = "",
    *,
    normalize: bool = False,
    fallback: Callable[[Any], Any] | None = None,
    references: bool = False,
    limit: int = MAX_DEPTH,
) -> JSON:
    """Convert a configuration value to plain JSON, or raise `IdentityError` naming the key.

    Interfaces become references ``{"$interface": id, "module": ..., "class": ...}``; tuples
    become lists; numpy scalars their Python value. With `normalize`, integral floats become
    ints so that ``1 == 1.0`` (booleans stay booleans). `fallback` converts other types (used
    for pydantic configs, whose field types define a JSON form); without it they are rejected.
    Keys starting with ``$`` are reserved (a `ConfigError`: a user's ``"$interface"`` would
    pass for a reference) unless `references` admits reference dicts already made (a query
    value); strings that UTF-8 cannot encode (lone surrogates) are refused. Dicts and lists
    nesting deeper than `limit` levels (`value` itself one), or containing themselves, are a
    `ConfigError`.
    """
    try:
        return _to_json(value, path, normalize, fallback, references, limit)
    except TooDeep as exc:
        raise nesting_error(value, path, limit, exc.path) from None


def _to_json(
    value: Any,
    path: str,
    normalize: bool,
    fallback: Callable[[Any], Any] | None,
    references: bool,
    levels: int,
) -> JSON:
    """`to_json`, with `levels` the dicts and lists `value` may still nest."""
    kind = type(value)
    if kind is str:
        # isascii() is O(1) on CPython: only non-ASCII text pays for the check
        return value if value.isascii() else _text(value, path)
    if value is None or kind is bool:
        return value
    if kind is int:
        return value if not normalize or -_BIG < value < _BIG else normal_number(value)
    if kind is float:
        return _number(value, path, normalize)
    if kind is dict or isinstance(value, Mapping):
        if not levels:
            raise TooDeep(path)
        levels -= 1
        out = {}
        for key, item in value.items():
            if type(key) is not str or key[:1] == "$" or not key.isascii():
                _check_key(key, path, references)
            out[key] = _to_json(
                item, f"{path}.{key}" if path else key, normalize, fallback, references, levels
            )
        return out
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        if not levels:
            raise TooDeep(path)
        levels -= 1
        return [
            _to_json(item, f"{path}[{i}]", normalize, fallback, references, levels)
            for i, item in enumerate(value)
        ]
    reference = getattr(value, "__retain_reference__", None)
    if reference is not None:
        return reference()
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return normal_number(int(value)) if normalize else int(value)
    if isinstance(value, float):
        return _number(float(value), path, normalize)
    if isinstance(value, str):
        return _to_json(str(value), path, normalize, None, references, levels)
    if kind.__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _to_json(value.item(), path, normalize, fallback, references, levels)
    if "pydantic" in sys.modules and hasattr(kind, "model_dump"):
        return _to_json(value.model_dump(), path, normalize, fallback, references, levels)
    if fallback is not None:
        try:
            converted = fallback(value)
        except Exception as exc:
            raise _unsupported(value, path) from exc
        if type(converted) is not kind:
            return _to_json(converted, path, normalize, None, references, levels)
    raise _unsupported(value, path)


class TooDeep(Exception):
    """Internal: a walk over a configuration passed its nesting limit at `path` (None: unknown)."""

    def __init__(self, path: str | None) -> None:
        super().__init__(path)
        self.path = path


def nesting_error(value: Any, path: str = "", limit: int = MAX_DEPTH, where: str | None = None) -> ConfigError:
    """The `ConfigError` for `value` (at `path`) nesting deeper than `limit` levels: it names
    the key where `value` contains itself if it does, else the first key nested too deep
    (`where`, if the walk that failed knows it better: dotted keys nest an update further
    than it looks)."""
    # Iterative, so that the error for a value too deep for recursion is itself safe.
    stack: list[tuple[Any, str, int, tuple[int, ...]]] = [(value, path, 1, ())]
    while stack:
        node, at, level, above = stack.pop()
        if isinstance(node, Mapping) and not hasattr(node, "__retain_reference__"):
            children = [(f"{at}.{k}" if at else str(k), v) for k, v in node.items()]
        elif isinstance(node, (list, tuple)):
            children = [(f"{at}[{i}]", v) for i, v in enumerate(node)]
        else:
            continue
        if id(node) in above:
            return ConfigError(
                f"the configuration contains itself at key {at!r} (a dict or list holding "
                "itself, directly or through others); a configuration must be a tree of values"
            )
        if level > limit:
            where = at
            break
        above = (*above, id(node))
        stack.extend((child, key, level + 1, above) for key, child in reversed(children))
    shown = repr(where) if where else "(root)"
    return ConfigError(
        f"config key {shown}: the configuration nests deeper than {limit} levels of dicts and "
        "lists, more than retain stores and reads back with a safe margin; flatten it (for "
        "example a list of entries instead of a chain of nested dicts)"
    )


def _text(value: str, path: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise IdentityError(
            f"config key {_where(path)}: {value!r} holds a lone surrogate, which is not text "
            "(often a file name decoded with errors='surrogateescape'); strings must be "
            "encodable as UTF-8: decode the bytes properly or pass them escaped"
        ) from None
    return value


def _check_key(key: object, path: str, references: bool) -> None:
    """Refuse a mapping key with no place in a config; return for a good non-ASCII key."""
    if type(key) is not str:
        raise IdentityError(
            f"config key {_where(path)}: mapping keys must be strings, got "
            f"{type(key).__name__} {key!r}; convert the key to a string"
        )
    if key[:1] == "$" and not references:
        full = f"{path}.{key}" if path else key
        raise ConfigError(
            f"config key {full!r}: keys starting with '$' are reserved for retain's own "
            f"markers ({REF_KEY!r} marks a reference to an interface); rename the key, or "
            "put the Interface itself in the config to refer to it"
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise IdentityError(
            f"config key {_where(path)}: the key {key!r} holds a lone surrogate, which is not "
            "text (often a file name decoded with errors='surrogateescape'); strings must be "
            "encodable as UTF-8"
        ) from None


def _number(value: float, path: str, normalize: bool) -> float | int:
    if not math.isfinite(value):
        raise IdentityError(
            f"config key {_where(path)}: {value!r} has no JSON form and cannot be part of an "
            "identity; use None or a finite number instead"
        )
    return normal_number(value) if normalize else value


#: Below this magnitude an integral float is canonically the int it equals (``1.0 -> 1``);
#: from it on, canonically a float, and so is an int that a float equals exactly
#: (``2**64 -> 1.8446744073709552e+19``). Both spellings of a number meet at every magnitude
#: and the canonical form of every float stays what it has been since scheme 1 (no id moves).
_BIG = 2**63


def normal_number(value: int | float) -> int | float:
    """The canonical form of a finite number: equal numbers get one form (``1 == 1.0``)."""
    if type(value) is float:
        if value == 0.0:
            return 0  # also folds -0.0
        if value.is_integer() and -_BIG < value < _BIG:
            return int(value)
        return value
    if -_BIG < value < _BIG:
        return value
    try:
        as_float = float(value)
    except OverflowError:  # beyond every float (2**1024): no float spelling to meet
        return value
    return as_float if as_float == value else value


def _unsupported(value: Any, path: str) -> IdentityError:
    return IdentityError(
        f"config key {_where(path)}: a value of type {type(value).__qualname__} cannot be part "
        "of an identity; use JSON values (str, int, float, bool, None, list, dict) or an "
        "Interface"
    )


def _where(path: str) -> str:
    return repr(path) if path else "(root)"


def references(value: Any) -> Iterator[dict[str, Any]]:
    """Every interface reference (a dict holding `REF_KEY`) in a JSON config value, at any depth
    (references are not looked into)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is dict:
            if REF_KEY in item:
                yield item
            else:
                pending.extend(item.values())
        elif type(item) is list:
            pending.extend(item)


def same_value(a: JSON, b: JSON) -> bool:
    """Equality of normalised JSON values in which ``True != 1``."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return bool(a == b)


def identical(a: JSON, b: JSON) -> bool:
    """Equality of JSON values that is also equality of their canonical JSON text: types
    must match too (``1 != 1.0``, ``True != 1``), where `same_value` compares numbers."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    if kind is list:
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    return bool(a == b)


#: JSON values that are not containers (`_drop` compares them directly).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def drop_defaults(value: dict[str, JSON], defaults: Mapping[str, JSON]) -> dict[str, JSON]:
    """The keys of `value` that differ from `defaults`, recursively (both normalised JSON)."""
    out = _drop(value, defaults)
    return {} if out is _MISSING else out


def _drop(value: JSON, default: JSON) -> JSON:
    kind = type(value)
    if kind in _SCALARS and type(default) in _SCALARS:
        # `same_value` of two plain values, which most are, without its checks of containers
        if (kind is bool) is not (type(default) is bool):
            return value
        return _MISSING if value == default else value
    if isinstance(value, dict) and isinstance(default, dict) and REF_KEY not in value:
        out = {}
        for key, item in value.items():
            if key in default:
                kept = _drop(item, default[key])
                if kept is not _MISSING:
                    out[key] = kept
            else:
                out[key] = item
        if not out and value.keys() == default.keys():
            return _MISSING
        return out
    return _MISSING if same_value(value, default) else value


def remove_paths(value: dict[str, JSON], paths: tuple[str, ...]) -> dict[str, JSON]:
    """A copy of `value` without the dotted `paths` (the non-identifying fields)."""
    if not paths:
        return value
    out = dict(value)
    for path in paths:
        head, _, rest = path.partition(".")
        if head not in out:
            continue
        if rest:
            if isinstance(out[head], dict):
                out[head] = remove_paths(out[head], (rest,))
        else:
            del out[head]
    return out
