"""Configurations: defaults from a class's `Config` (a dict or a pydantic model), strict
updates, and the read-only view that `element.config` returns."""

from __future__ import annotations

import sys
# `collections.abc` re-exports these from `_collections_abc`, which the interpreter has
# already loaded; importing the public name would load all of `collections` (~2 ms).
from _collections_abc import Mapping

from ._errors import ConfigError, ImmutableError
from .identity import MAX_DEPTH, TooDeep, nesting_error, to_json

__all__ = ["ConfigList", "ConfigSpec", "ConfigView", "config_spec"]

# Shapes describe which keys an update may use: a dict of child shapes (strict), OPEN (any
# key, from an empty-dict default or a dict-typed field), or LEAF (a plain value).
OPEN = "open"
LEAF = "leaf"
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    Shape = Any  # dict[str, Shape] | str
    _MappingBase = Mapping[str, Any]
else:
    _MappingBase = Mapping


#: How deep `copy_tree` goes before it refuses: far more than a configuration may nest
#: (`MAX_DEPTH`, checked when it is resolved), so that records an earlier release committed
#: deeper still load, yet a value that contains itself is an error, not a RecursionError.
_COPY_LIMIT = 3 * MAX_DEPTH


def copy_tree(value: Any, path: str = "") -> Any:
    """Copy dicts and lists (not the leaves): cheaper than `copy.deepcopy` by an order.
    A value that contains itself (or nests absurdly deep) is a `ConfigError` naming the key
    (`path` is where `value` sits in its configuration)."""
    try:
        return _copy(value, _COPY_LIMIT)
    except TooDeep:
        raise nesting_error(value, path) from None


#: Leaf types that are never containers: returned at once by `_copy` and `_apply`, without the
#: `Mapping` check (an ABC instance check, slow for the leaves that most values are).
_LEAVES = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any, levels: int) -> Any:
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is dict:
        if not levels:
            raise TooDeep(None)
        return {k: _copy(v, levels - 1) for k, v in value.items()}
    if kind is list or kind is tuple or kind is ConfigList:
        if not levels:
            raise TooDeep(None)
        return [_copy(v, levels - 1) for v in value]
    if kind is ConfigView:
        return value.to_dict()
    if isinstance(value, Mapping) and not hasattr(value, "__retain_reference__"):
        if not levels:
            raise TooDeep(None)
        return {k: _copy(v, levels - 1) for k, v in value.items()}
    return value


class ConfigList(tuple):  # type: ignore[type-arg]
    """A read-only list inside a config; compares equal to the list it came from."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return list(self) == other
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return repr(list(self))


def _wrap(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return ConfigView(value)
    if kind is list:
        return ConfigList(_wrap(v) for v in value)
    return value


class ConfigView(_MappingBase):
    """Read-only access to a configuration, by attribute (`config.lr`) or item
    (`config["lr"]`, `config["model.depth"]`)."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", data)

    def __getitem__(self, key: str) -> Any:
        data = self._data
        if key in data:
            return _wrap(data[key])
        if isinstance(key, str) and "." in key:
            node: Any = data
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    raise KeyError(key)
                node = node[part]
            return _wrap(node)
        raise KeyError(key)

    def __getattr__(self, name: str) -> Any:
        try:
            return _wrap(self._data[name])
        except KeyError:
            if name.startswith("__"):
                raise AttributeError(name) from None
            raise AttributeError(
                f"config has no key {name!r}; keys: {', '.join(sorted(self._data)) or '(none)'}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise ImmutableError(
            f"config is read-only (tried to set {name!r}); pass a version to change it, "
            f"e.g. get(Class, {{{name!r}: ...}})"
        )

    __setitem__ = __setattr__

    def __delattr__(self, name: str) -> None:
        raise ImmutableError(f"config is read-only (tried to delete {name!r})")

    __delitem__ = __delattr__

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ConfigView):
            return bool(self._data == other._data)
        if isinstance(other, Mapping):
            return bool(self._data == dict(other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._data)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(k for k in self._data if k.isidentifier())]

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable deep copy."""
        return copy_tree(self._data)  # type: ignore[no-any-return]


def _is_pydantic_model(obj: Any) -> bool:
    if "pydantic" not in sys.modules or not isinstance(obj, type):
        return False
    from pydantic import BaseModel

    return issubclass(obj, BaseModel)


class ConfigSpec:
    """What a class's `Config` declares: defaults, the shape updates must fit, validation."""

    __slots__ = ("source", "owner", "model", "defaults", "shape", "defaults_json")

    def __init__(self, owner: type, source: Any) -> None:
        self.owner = owner
        self.source = source
        self.model: Any = None
        #: normalised JSON of the defaults, by the non-identifying paths left out (a cache)
        self.defaults_json: dict[tuple[str, ...], dict[str, Any]] = {}
        if source is None:
            source = {}
        if isinstance(source, Mapping):
            to_json(source, path="")  # reject defaults that could never be identified
            self.defaults: dict[str, Any] = copy_tree(dict(source))
            self.shape: Shape = _dict_shape(self.defaults)
        elif _is_pydantic_model(source):
            self.model = source
            self.defaults = _model_defaults(source)
            self.shape = _model_shape(source)
        else:
            raise ConfigError(
                f"{owner.__qualname__}.Config must be a dict or a pydantic BaseModel class; "
                f"got {type(source).__name__}"
            )

    @property
    def is_pydantic(self) -> bool:
        return self.model is not None

    def apply(self, merged: dict[str, Any], update: Mapping[str, Any]) -> None:
        """Merge `update` (dotted keys allowed) into `merged` in place, strictly; a dict
        Config also checks each value against the type of its default."""
        try:
            _apply(merged, update, self.shape, "", self.owner, None if self.model else self.defaults, 1)
        except TooDeep as exc:
            raise nesting_error(update, "", MAX_DEPTH, exc.path) from None

    def validate(self, merged: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """The resolved config (and the pydantic model, if any) from merged updates."""
        if self.model is None:
            return merged, None
        from pydantic import ValidationError

        try:
            model = self.model.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_format_validation_error(self.owner, exc)) from None
        return _model_dump(model), model

    def json_fallback(self) -> Any:
        if self.model is None:
            return None
        from pydantic_core import to_jsonable_python

        return to_jsonable_python


def config_spec(cls: type) -> ConfigSpec:
    """The (cached) spec of `cls.Config`."""
    spec: ConfigSpec | None = cls.__dict__.get("_retain_config_spec")
    source = getattr(cls, "Config", None)
    if spec is None or spec.source is not source:
        spec = ConfigSpec(cls, source)
        type.__setattr__(cls, "_retain_config_spec", spec)
    return spec


def _dict_shape(defaults: Mapping[str, Any]) -> Shape:
    if not defaults:
        return OPEN
    return {k: _dict_shape(v) if type(v) is dict else LEAF for k, v in defaults.items()}


def _model_type(annotation: Any) -> Any:
    """The BaseModel class inside `annotation` (also `Model | None`), else None."""
    import types
    from typing import Union, get_args, get_origin  # typing only with annotated configs: `import retain` stays cheap

    if _is_pydantic_model(annotation):
        return annotation
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        models = [a for a in get_args(annotation) if _is_pydantic_model(a)]
        if len(models) == 1:
            return models[0]
    return None


def _is_open_annotation(annotation: Any) -> bool:
    from typing import Any, get_origin  # (as above)

    target = get_origin(annotation) or annotation
    return annotation is Any or (isinstance(target, type) and issubclass(target, Mapping))


def _model_shape(model: Any) -> Shape:
    shape: dict[str, Shape] = {}
    for name, field in model.model_fields.items():
        nested = _model_type(field.annotation)
        if nested is not None:
            shape[name] = _model_shape(nested)
        elif _is_open_annotation(field.annotation):
            shape[name] = OPEN
        else:
            shape[name] = LEAF
    return shape


def _model_defaults(model: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            nested = _model_type(field.annotation)
            if nested is not None and not any(f.is_required() for f in nested.model_fields.values()):
                defaults[name] = _model_defaults(nested)
            continue
        value = field.get_default(call_default_factory=True)
        defaults[name] = _model_dump(value) if hasattr(type(value), "model_dump") else value
    return defaults


def _model_dump(model: Any) -> dict[str, Any]:
    # Python mode keeps Interfaces and other declared types as objects for `config` access.
    return model.model_dump(mode="python")  # type: ignore[no-any-return]


def _format_validation_error(owner: type, exc: Any) -> str:
    lines = [f"invalid config for {owner.__qualname__}:"]
    for error in exc.errors():
        loc = ".".join(str(part) for part in error.get("loc", ())) or "(root)"
        received = error.get("input")
        lines.append(f"  {loc}: {error.get('msg')} (got {received!r})")
    return "\n".join(lines)


def _apply(
    merged: dict[str, Any],
    update: Mapping[str, Any],
    shape: Shape,
    prefix: str,
    owner: type,
    defaults: dict[str, Any] | None,
    level: int,
) -> None:
    # `defaults` is the level of a dict Config's defaults that `merged` stands for, so values
    # can be checked against their default's type; None where nothing is checked (pydantic
    # validates its own fields; keys of an open mapping have no default). `level` is how
    # deep `merged` nests in the configuration (the configuration itself is 1).
    if not defaults:
        defaults = None
    if level > MAX_DEPTH:
        raise TooDeep(prefix)
    for key, value in update.items():
        if type(key) is not str:
            raise ConfigError(
                f"config keys must be strings; got {type(key).__name__} {key!r} in an update "
                f"for {owner.__qualname__}"
            )
        kind = type(value)
        if kind in _LEAVES and type(shape) is dict and key in shape and "." not in key:
            # A plain value for a declared key, which most updates are: what the general path
            # below does for it, without its walk.
            if defaults is None or kind is type(defaults[key]) or defaults[key] is None:
                merged[key] = value
                continue
        parts = key.split(".")
        if level + len(parts) - 1 > MAX_DEPTH:  # dotted parts nest as deep as dicts do
            raise TooDeep(".".join([prefix, *parts[: MAX_DEPTH - level + 1]]).lstrip("."))
        target = merged
        node_shape = shape
        node_defaults = defaults
        path = prefix
        for part in parts[:-1]:
            node_shape = _child_shape(node_shape, part, path, owner)
            if node_defaults is not None:
                node_defaults = node_defaults[part] or None  # the shape is a dict here
            path = f"{path}.{part}" if path else part
            child = target.get(part)
            if child is None and part not in target and node_shape == OPEN:
                child = target[part] = {}
            if type(child) is not dict:
                raise ConfigError(
                    f"cannot set {prefix + '.' if prefix else ''}{key!r} for "
                    f"{owner.__qualname__}: {path!r} is not a mapping (it is {child!r})"
                )
            target = child
        last = parts[-1]
        child_shape = _child_shape(node_shape, last, path, owner)
        full = f"{path}.{last}" if path else last
        default = None
        if node_defaults is not None:
            default = node_defaults[last]
            value = _check_type(value, default, full, owner)
        current = target.get(last)
        kind = type(value)
        if kind is dict or (
            kind not in _LEAVES and isinstance(value, Mapping) and not hasattr(value, "__retain_reference__")
        ):
            inner = level + len(parts)
            if type(current) is dict:
                _apply(
                    current, value, child_shape, full, owner,
                    default if type(default) is dict else None, inner,
                )
                continue
            if child_shape == OPEN and all(type(k) is str for k in value):
                # A mapping where the Config leaves keys open nests its dotted keys, as it
                # would below an existing mapping: {"a.b": {"c.d": 1}} is {"a": {"b": {"c": {"d": 1}}}}.
                # (Other keys are left for `to_json`, which names the key it refuses.)
                fresh: dict[str, Any] = {}
                _apply(fresh, value, OPEN, full, owner, None, inner)
                target[last] = fresh
                continue
        target[last] = copy_tree(value, full)


def _child_shape(shape: Shape, key: str, path: str, owner: type) -> Shape:
    if shape == OPEN:
        return OPEN
    if shape == LEAF:
        raise ConfigError(
            f"cannot set a key below {path!r} for {owner.__qualname__}: {path!r} is a plain "
            "value, not a mapping"
        )
    if key not in shape:
        full = f"{path}.{key}" if path else key
        valid = ", ".join(sorted(shape)) or "(none)"
        where = f" under {path!r}" if path else ""
        hint = ""
        import difflib  # on an error only (it loads re, functools)

        close = difflib.get_close_matches(key, list(shape), n=1)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        raise ConfigError(
            f"unknown config key {full!r} for {owner.__qualname__}; valid keys{where}: "
            f"{valid}{hint} (declare the key in Config to add it)"
        )
    return shape[key]


def _check_type(value: Any, default: Any, path: str, owner: type) -> Any:
    """`value` for a key of a dict Config if it has the type of the key's default, else a
    `ConfigError` naming the key, the type and the value.

    A default of None accepts anything; bool and int are distinct (True is not 1); an int
    default accepts an integral float, made the int it equals (``16.0`` is ``16``, one
    identity); a float default accepts an int; a list default any list or tuple; a mapping
    default any mapping (a non-empty one also types its keys, checked as they are merged); an
    Interface default an instance of its family (see `Element._retain_family`).
    """
    if default is None:
        return value
    kind = type(value)
    if kind is type(default) and kind in _LEAVES:
        return value  # what most values are: the rules below accept them as they are
    plain = _scalar(value)
    expected: str
    if isinstance(default, bool) or _is_numpy(default, bool):
        if isinstance(plain, bool):
            return value
        expected = "bool (true/false)"
    elif isinstance(default, int) or _is_numpy(default, int):
        if isinstance(plain, int) and not isinstance(plain, bool):
            return value
        if isinstance(plain, float) and plain.is_integer():
            return int(plain)
        expected = "int"
    elif isinstance(default, float) or _is_numpy(default, float):
        if isinstance(plain, (int, float)) and not isinstance(plain, bool):
            return value
        expected = "a number (int or float)"
    elif isinstance(default, str):
        if isinstance(plain, str):
            return value
        expected = "str"
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return value
        expected = "a list"
    elif hasattr(default, "__retain_reference__"):
        family = type(default)._retain_family()
        if isinstance(value, family):
            return value
        expected = f"an instance of {family.__name__} (an Interface)"
    elif isinstance(default, Mapping):
        if isinstance(value, Mapping) and not hasattr(value, "__retain_reference__"):
            return value
        expected = "a mapping (dict)"
    else:
        return value  # a type with no rule here (it passed `to_json`): anything goes
    got = _short(value, 60)
    if value is not None and not hasattr(value, "__retain_reference__"):
        got = f"{type(value).__name__} {got}"
    hint = ""
    if expected == "str" and (value is None or isinstance(value, (bool, int, float))):
        # `retain MODULE name=123` reads 123 as a number, as JSON would
        hint = f" (on the command line, quote text that reads as a number: {path}='\"{value}\"')"
    raise ConfigError(
        f"config key {path!r} of {owner.__qualname__} expects {expected} (its default is "
        f"{_short(default, 40)}); got {got}{hint}. Pass a value of that type, or declare the "
        "default None in Config to accept any value"
    )


def _scalar(value: Any) -> Any:
    """A numpy scalar as the Python value it stands for (as `to_json` reads it)."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def _is_numpy(value: Any, kind: type) -> bool:
    return type(value).__module__ == "numpy" and isinstance(_scalar(value), kind)


def _short(value: Any, limit: int) -> str:
    if hasattr(value, "__retain_reference__"):
        try:
            return f"{type(value).__name__} [{value.short_id}]"
        except Exception:  # its own config is invalid: the class still says what it is
            return type(value).__name__
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
