"""What `get.all(..., where=...)` and `Collection` accept: fields, filters and queries.

A *field* names a value of an indexed interface:

- a config key, dotted for nested values (``"lr"``, ``"model.depth"``), optionally spelled
  ``"config.lr"`` (as in `Collection.to_table`);
- ``"summary.<name>"``: a summary value (see `Interface.save_summary`);
- ``"metrics.<name>"``: the last value of a metric (see `Component.log_metrics`);
- a column: ``"id"``, ``"module"``, ``"class"``, ``"kind"``, ``"created"``;
- ``"tags"`` with a `has` filter: the tags of an interface (see `Interface.tag`); with any
  other value, ``"tags"`` is a config key.

A config key named like a column, ``summary`` or ``metrics`` is reached with the ``config.`` prefix.

A *filter* compares one field with a value: a plain value means equality (``1 == 1.0``,
``True != 1``, a list equals a list); `lt`, `le`, `gt`, `ge`, `between` compare numbers with
numbers and strings with strings (other values never match); `one_of` is membership; `has`
holds where an interface carries every tag it names (``where={"tags": has("best")}``). A dict as
the value of a config key means each of its keys (``{"model": {"depth": 4}}`` is
``{"model.depth": 4}``).
"""

from __future__ import annotations

from _collections_abc import Mapping

from ._errors import ConfigError, IdentityError, TagError
from .identity import REF_KEY, same_value, to_json
from .element import normalize_json
from .config import LEAF, OPEN, config_spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = [
    "COLUMNS",
    "Condition",
    "Field",
    "Filter",
    "Query",
    "TAGS",
    "TAG_RULE",
    "between",
    "check_tag",
    "compile_where",
    "ge",
    "gt",
    "has",
    "le",
    "lt",
    "one_of",
    "resolve_field",
]

#: Fields that name a column of the index rather than a config key.
COLUMNS = ("id", "module", "class", "kind", "created")

_MISSING: Any = object()


class Field:
    """A resolved field: where its value comes from (``"config"``, ``"summary"``,
    ``"metrics"`` or ``"column"``) and its dotted path there; `name` is the user's spelling."""

    __slots__ = ("source", "path", "name")

    def __init__(self, source: str, path: str, name: str) -> None:
        self.source = source
        self.path = path
        self.name = name

    def __repr__(self) -> str:
        return f"Field({self.source}:{self.path})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and (self.source, self.path) == (other.source, other.path)

    def __hash__(self) -> int:
        return hash((self.source, self.path))


class Filter:
    """A comparison of a field's value with `value`: build it with `lt`, `le`, `gt`, `ge`,
    `between`, `one_of`; a plain value in `where` is equality.

    `op` is one of ``eq lt le gt ge between in has``; `value` is normalised JSON (for
    ``between`` a pair, for ``in`` a list, for ``has`` the sorted tag names).
    """

    __slots__ = ("op", "value")

    def __init__(self, op: str, value: Any) -> None:
        self.op = op
        self.value = value

    def __repr__(self) -> str:
        if self.op == "eq":
            return f"{self.value!r}"
        if self.op == "between":
            return f"between({self.value[0]!r}, {self.value[1]!r})"
        if self.op == "in":
            return f"one_of({self.value!r})"
        if self.op == "has":
            return f"has({', '.join(map(repr, self.value))})"
        return f"{self.op}({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and (self.op, self.value) == (other.op, other.value)

    def __hash__(self) -> int:
        return hash((self.op, repr(self.value)))

    def matches(self, value: Any) -> bool:
        """Whether a stored JSON value (or `MISSING`) passes; the reference semantics that
        every index backend's SQL must agree with."""
        if value is _MISSING:
            return False
        op = self.op
        if op == "eq":
            return _same(_normalize(value), self.value)
        if op == "in":
            normalized = _normalize(value)
            return any(_same(normalized, option) for option in self.value)
        if op == "has":
            return isinstance(value, (list, tuple, set, frozenset)) and all(name in value for name in self.value)
        if op == "between":
            low, high = self.value
            return _comparable(value, low) and low <= value <= high
        bound = self.value
        if not _comparable(value, bound):
            return False
        if op == "lt":
            return bool(value < bound)
        if op == "le":
            return bool(value <= bound)
        if op == "gt":
            return bool(value > bound)
        return bool(value >= bound)


#: The field of an interface's tags: ``"tags"`` in `where` with a `has` filter (otherwise
#: ``"tags"`` is a config key, as before tags existed).
TAGS = Field("tags", "", "tags")

#: Stands for "this interface has no such value" in `Filter.matches`.
MISSING = _MISSING


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float


def _comparable(value: Any, bound: Any) -> bool:
    if type(bound) is str:
        return type(value) is str
    return _is_number(value) and value == value  # NaN compares with nothing


def _normalize(value: Any) -> Any:
    return normalize_json(value)


def _same(a: Any, b: Any) -> bool:
    return same_value(a, b)


def _json_value(value: Any, what: str) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ConfigError(
            f"{what}: {value!r} is never stored in a config (configs hold finite numbers), so "
            "nothing can equal it"
        )
    try:
        return _normalize(to_json(value, normalize=True, references=True))
    except IdentityError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def _bound(value: Any, name: str) -> Any:
    if isinstance(value, float) and value != value:
        raise ConfigError(f"{name}() cannot compare with NaN")
    if type(value) is bool or not (isinstance(value, (int, float, str)) or _is_numpy_number(value)):
        raise ConfigError(
            f"{name}() compares with a number or a string; got {type(value).__name__} {value!r}"
            " (use equality for booleans, None and lists)"
        )
    converted = _json_value(value, f"{name}()")
    if type(converted) is float and converted != converted:
        raise ConfigError(f"{name}() cannot compare with NaN")
    return converted


def _is_numpy_number(value: Any) -> bool:
    return (
        type(value).__module__ == "numpy"
        and getattr(value, "ndim", None) == 0
        and isinstance(value.item(), (int, float))
        and not isinstance(value.item(), bool)
    )


def lt(value: Any) -> Filter:
    """Less than `value` (a number or a string): ``where={"lr": lt(0.01)}``."""
    return Filter("lt", _bound(value, "lt"))


def le(value: Any) -> Filter:
    """Less than or equal to `value` (a number or a string)."""
    return Filter("le", _bound(value, "le"))


def gt(value: Any) -> Filter:
    """Greater than `value` (a number or a string)."""
    return Filter("gt", _bound(value, "gt"))


def ge(value: Any) -> Filter:
    """Greater than or equal to `value` (a number or a string)."""
    return Filter("ge", _bound(value, "ge"))


def between(low: Any, high: Any) -> Filter:
    """From `low` to `high`, both included; both numbers or both strings."""
    low, high = _bound(low, "between"), _bound(high, "between")
    if (type(low) is str) != (type(high) is str):
        raise ConfigError(
            f"between() takes two numbers or two strings; got {low!r} and {high!r}"
        )
    return Filter("between", (low, high))


def one_of(values: Any) -> Filter:
    """Equal to any of `values` (a list, tuple or set): ``where={"batch_size": one_of([8, 16])}``."""
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise ConfigError(
            f"one_of() takes a list of values, e.g. one_of([8, 16]); got {type(values).__name__} "
            f"{values!r}"
        )
    options = [_json_value(v, "one_of()") for v in values]
    for option in options:
        if isinstance(option, dict) and REF_KEY not in option:
            raise ConfigError("one_of() takes plain values or lists, not dicts; filter on their keys")
    return Filter("in", options)


def has(*names: str) -> Filter:
    """Carries every tag in `names` (see `Interface.tag`): ``where={"tags": has("best")}``."""
    if not names:
        raise TagError('has() takes one or more tag names, e.g. has("best")')
    return Filter("has", sorted({check_tag(name) for name in names}))


#: What a tag name may be: what `check_tag` says.
TAG_RULE = (
    "a tag is 1 to 100 characters: letters, digits and _ . - : / + = @, starting with a letter, "
    "a digit or _ (no spaces or commas)"
)


def check_tag(name: Any) -> str:
    """`name` if it is a valid tag name (see `TAG_RULE`).

    Raises:
        TagError: it is not.
    """
    if type(name) is not str or not _tag_pattern().fullmatch(name):
        raise TagError(f"{name!r} is not a valid tag: {TAG_RULE}")
    return name


_TAG: Any = None


def _tag_pattern() -> Any:
    global _TAG
    if _TAG is None:
        import re  # on first use: `import retain` does not load re

        _TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/+=@-]{0,99}")
    return _TAG


def equal(value: Any, what: str) -> Filter:
    """Equality with `value`, normalised as stored values are."""
    return Filter("eq", _json_value(value, what))


class Condition:
    """`field` passes `filter`."""

    __slots__ = ("field", "filter")

    def __init__(self, field: Field, filter: Filter) -> None:
        self.field = field
        self.filter = filter

    def __repr__(self) -> str:
        return f"{self.field.name}={self.filter!r}"


class Query:
    """What an index is asked: interfaces of some classes (or of a kind, or all) whose values
    pass every condition, newest first.

    Attributes:
        classes: ``(module, qualname)`` pairs, or None for every class.
        kind: only interfaces of this kind (``"Interface"``, ``"Component"``...), or None.
        conditions: config and column conditions, which backends evaluate natively.
        summary_conditions: conditions on summary values and last metric values, evaluated
            over the rows in Python (they may hold NaN, which SQL JSON functions refuse).
    """

    __slots__ = ("classes", "kind", "conditions", "summary_conditions")

    def __init__(
        self,
        classes: list[tuple[str, str]] | None = None,
        kind: str | None = None,
        conditions: list[Condition] | None = None,
        summary_conditions: list[Condition] | None = None,
    ) -> None:
        self.classes = classes
        self.kind = kind
        self.conditions = conditions or []
        self.summary_conditions = summary_conditions or []

    def __repr__(self) -> str:
        return (
            f"Query(classes={self.classes!r}, kind={self.kind!r}, "
            f"conditions={self.conditions + self.summary_conditions!r})"
        )


# -- fields -----------------------------------------------------------------------------------


def resolve_field(name: Any, cls: type | None) -> Field:
    """The field `name` names for interfaces of `cls` (None: any class, keys not checked).

    Raises:
        ConfigError: `name` is not a string, or not a config key that `cls.Config` declares
            (the message lists the valid keys).
    """
    if type(name) is not str or not name or name.startswith(".") or name.endswith(".") or ".." in name:
        raise ConfigError(
            f"a field is a config key such as 'lr' or 'model.depth', 'summary.<name>', "
            f"'metrics.<name>', or one of "
            f"{', '.join(COLUMNS)}; got {name!r}"
        )
    if name in COLUMNS:
        return Field("column", name, name)
    if name.startswith("summary."):
        return Field("summary", name[len("summary."):], name)
    if name.startswith("metrics."):
        return Field("metrics", name[len("metrics."):], name)
    path = name[len("config."):] if name.startswith("config.") else name
    if cls is not None:
        check_config_key(cls, path)
    return Field("config", path, name)


def check_config_key(cls: type, path: str) -> None:
    """Raise `ConfigError` unless dotted `path` is declared by `cls.Config` (open mappings
    accept any key below them)."""
    shape = config_spec(cls).shape
    parts = path.split(".")
    done: list[str] = []
    for part in parts:
        if shape == OPEN:
            return
        where = ".".join(done)
        if shape == LEAF:
            raise ConfigError(
                f"unknown config key {path!r} for {cls.__qualname__}: {where!r} is a plain value, "
                "not a mapping"
            )
        if part not in shape:
            import difflib

            valid = ", ".join(sorted(shape)) or "(none)"
            close = difflib.get_close_matches(part, list(shape), n=1)
            hint = f"; did you mean {'.'.join([*done, close[0]])!r}?" if close else ""
            under = f" under {where!r}" if where else ""
            raise ConfigError(
                f"unknown config key {path!r} for {cls.__qualname__}; valid keys{under}: "
                f"{valid}{hint}"
            )
        shape = shape[part]
        done.append(part)


def field_value(
    field: Field, row_config: Any, row_summary: Any, columns: Mapping[str, Any], row_metrics: Any = None
) -> Any:
    """The value of `field` for one row (parsed config, summary and last metric values dicts,
    column values), or `MISSING`."""
    source = field.source
    if source == "column":
        return columns[field.path]
    if source == "tags":
        return columns.get("tags", _MISSING)
    node = row_config if source == "config" else row_summary if source == "summary" else row_metrics
    if node is None:
        return _MISSING
    if source != "config":
        return node.get(field.path, _MISSING)
    for part in field.path.split("."):
        if type(node) is not dict or part not in node:
            return _MISSING
        node = node[part]
    return node


# -- where ------------------------------------------------------------------------------------


def compile_where(
    cls: type | None, where: Any
) -> tuple[list[Condition], list[Condition], Callable[[Any], bool] | None]:
    """Split `where` into native conditions, summary conditions and a Python predicate.

    Raises:
        ConfigError: an unknown config key, or a malformed filter.
    """
    if where is None:
        return [], [], None
    if callable(where) and not isinstance(where, Mapping):
        return [], [], where
    if not isinstance(where, Mapping):
        raise ConfigError(
            "where must be a dict of field -> value or filter (e.g. {'lr': retain.lt(0.01)}), or "
            f"a function of the config (e.g. lambda c: c.lr < 0.01); got {type(where).__name__}"
        )
    native: list[Condition] = []
    summary: list[Condition] = []
    for name, value in where.items():
        if name == "tags" and isinstance(value, Filter) and value.op == "has":
            native.append(Condition(TAGS, value))
            continue
        field = resolve_field(name, cls)
        for condition in _conditions(field, value, cls):
            (summary if condition.field.source in ("summary", "metrics") else native).append(condition)
    return native, summary, None


def _conditions(field: Field, value: Any, cls: type | None) -> list[Condition]:
    if isinstance(value, Filter) and value.op == "has":
        raise ConfigError(
            f"where[{field.name!r}] = {value!r}: has() filters tags only, as in "
            "where={'tags': has('best')}"
        )
    if isinstance(value, Filter):
        if cls is not None and field.source == "config":
            _check_comparable(cls, field, value)
        return [Condition(field, value)]
    if (
        field.source == "config"
        and isinstance(value, Mapping)
        and value
        and not hasattr(value, "__retain_reference__")
        and REF_KEY not in value
    ):
        out: list[Condition] = []
        for key, item in value.items():
            if type(key) is not str:
                raise ConfigError(f"config keys are strings; got {key!r} under {field.name!r}")
            sub = resolve_field(f"config.{field.path}.{key}", cls)
            out += _conditions(Field("config", sub.path, f"{field.name}.{key}"), item, cls)
        return out
    if callable(value) and not hasattr(value, "__retain_reference__"):
        raise ConfigError(
            f"where[{field.name!r}] is a function; a function goes in where= itself "
            "(where=lambda c: ...), a field takes a value or a filter such as retain.lt(0.01)"
        )
    return [Condition(field, equal(value, f"where[{field.name!r}]"))]


def _check_comparable(cls: type, field: Field, filter: Filter) -> None:
    """Refuse an order comparison between a key whose default is a number and text (or the
    other way round): it could never match, so it is a typo, not an empty result."""
    if filter.op not in ("lt", "le", "gt", "ge", "between"):
        return

    default: Any = config_spec(cls).defaults
    for part in field.path.split("."):
        if type(default) is not dict or part not in default:
            return
        default = default[part]
    bound = filter.value[0] if filter.op == "between" else filter.value
    if _is_number(default) and type(bound) is str:
        wanted, got = "a number", "text"
    elif type(default) is str and _is_number(bound):
        wanted, got = "text", "a number"
    else:
        return
    raise ConfigError(
        f"{field.name!r} of {cls.__qualname__} is {wanted} (its default is {default!r}), but "
        f"{filter!r} compares it with {got}, which never matches; compare it with {wanted}"
    )


def matches_all(
    conditions: list[Condition], config: Any, summary: Any, columns: Mapping[str, Any], metrics: Any = None
) -> bool:
    """Whether one row passes every condition (Python evaluation)."""
    for condition in conditions:
        if not condition.filter.matches(field_value(condition.field, config, summary, columns, metrics)):
            return False
    return True
