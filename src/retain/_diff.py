"""How two committed interfaces differ, from their records alone (their code is not needed):
configuration, inputs, code provenance and environment."""

from __future__ import annotations

from .identity import REF_KEY, references, same_value
from .index._entry import config_leaves

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

    Changes = dict[str, tuple[Any, Any]]

__all__ = ["CODE_KEYS", "ENVIRONMENT_KEYS", "MISSING", "InterfaceDiff", "environment", "record_diff"]

#: The facts of a record's provenance (see `retain._provenance`) that describe the code...
CODE_KEYS = ("git.commit", "git.dirty", "source_sha256", "source_file", "host")
#: ...and those that describe the environment it ran in (`packages`: distribution -> version).
ENVIRONMENT_KEYS = ("python", "implementation", "platform", "machine", "libc", "retain", "packages")


class _Missing:
    """The type of `MISSING`: a key that one side of a diff does not have (not None: a
    configuration value may be None)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(missing)"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class InterfaceDiff:
    """What differs between interfaces `a` and `b`, by section: each maps a key to its value
    in `a` and in `b` (`MISSING` on the side that lacks it); only differing keys are kept.

    - ``config``: dotted configuration keys;
    - ``inputs``: the ids of the interfaces used as inputs, with their class;
    - ``provenance``: git commit and dirty flag, source hash and file, host;
    - ``environment``: Python, platform, retain, and ``packages.NAME`` versions.

    It is true when anything differs. `str` lays it out for people, `to_dict` as JSON.
    """

    __slots__ = ("a", "b", "config", "inputs", "provenance", "environment")
    MISSING: Any = MISSING
    SECTIONS = ("config", "inputs", "provenance", "environment")

    def __init__(
        self, a: Mapping[str, Any], b: Mapping[str, Any], config: Changes, inputs: Changes,
        provenance: Changes, environment: Changes,
    ) -> None:
        #: Who is compared: ``{"id", "module", "class"}`` of each side.
        self.a = {key: a.get(key) for key in ("id", "module", "class")}
        self.b = {key: b.get(key) for key in ("id", "module", "class")}
        self.config = config
        self.inputs = inputs
        self.provenance = provenance
        self.environment = environment

    def __bool__(self) -> bool:
        return any(getattr(self, section) for section in self.SECTIONS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InterfaceDiff) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable dicts inside

    def changes(self) -> Iterator[tuple[str, str, Any, Any]]:
        """Every difference as (section, key, value in a, value in b)."""
        for section in self.SECTIONS:
            for key, (left, right) in getattr(self, section).items():
                yield section, key, left, right

    def to_dict(self) -> dict[str, Any]:
        """As JSON: each section maps a key to ``{"a": value, "b": value}``, the side that
        lacks it left out."""
        out: dict[str, Any] = {"a": dict(self.a), "b": dict(self.b), "same": not self}
        for section in self.SECTIONS:
            out[section] = {
                key: {side: value for side, value in (("a", left), ("b", right)) if value is not MISSING}
                for key, (left, right) in getattr(self, section).items()
            }
        return out

    def __str__(self) -> str:
        lines = [f"{_who(self.a)} -> {_who(self.b)}"]
        for section in self.SECTIONS:
            changes: Changes = getattr(self, section)
            if changes:
                lines.append(f"  {section}:")
                width = max(len(key) for key in changes)
                lines.extend(
                    f"    {key.ljust(width)}  {_show(left)} -> {_show(right)}" for key, (left, right) in changes.items()
                )
        if len(lines) == 1:
            lines.append("  no differences")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<InterfaceDiff {self}>"


def _who(side: Mapping[str, Any]) -> str:
    return f"{side.get('class')} [{str(side.get('id'))[:6]}]"


def _show(value: Any) -> str:
    """A value for people: JSON, interface references as ``Class [shortid]``."""
    if value is MISSING:
        return "(missing)"
    if isinstance(value, dict) and REF_KEY in value:
        return f"{value.get('class', '?')} [{str(value[REF_KEY])[:6]}]"
    if isinstance(value, str):
        return value
    import json  # at a diff shown, not at `import retain`

    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)


def _same(left: Any, right: Any) -> bool:
    # As in identity: True and 1 differ, 1 and 1.0 do not.
    if left is MISSING or right is MISSING:
        return left is right
    return same_value(left, right)


def _changes(left: Mapping[str, Any], right: Mapping[str, Any]) -> Changes:
    out: Changes = {}
    for key in {**left, **right}:
        one, other = left.get(key, MISSING), right.get(key, MISSING)
        if not _same(one, other):
            out[key] = (one, other)
    return out


def _dotted(value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The values at dotted `keys` of a mapping (a key absent, or under a non-mapping, is left
    out)."""
    out: dict[str, Any] = {}
    for key in keys:
        current = value
        for part in key.split("."):
            if not isinstance(current, dict) or part not in current:
                break
            current = current[part]
        else:
            out[key] = current
    return out


def environment(record: Mapping[str, Any]) -> dict[str, Any]:
    """The environment that a record's provenance names (python, implementation, platform,
    machine, libc, retain, packages); a fact that an older record lacks is left out."""
    provenance = record.get("provenance")
    provenance = provenance if isinstance(provenance, dict) else {}
    return {key: provenance[key] for key in ENVIRONMENT_KEYS if key in provenance}


def _flat_environment(record: Mapping[str, Any]) -> dict[str, Any]:
    found = environment(record)
    packages = found.pop("packages", None)
    if isinstance(packages, dict):
        found.update({f"packages.{name}": version for name, version in packages.items()})
    return found


def _inputs(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ids of a record's inputs, each with its ``module:Class`` (from the references in
    its config)."""
    classes = {
        str(ref[REF_KEY]): f"{ref.get('module')}:{ref.get('class')}" for ref in references(record.get("config"))
    }
    ids = record.get("inputs")
    ids = ids if isinstance(ids, list) else list(classes)
    return {str(id): classes.get(str(id), "?") for id in ids}


def record_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> InterfaceDiff:
    """How the interfaces of records `a` and `b` differ (works without their code)."""
    config_a, config_b = a.get("config"), b.get("config")
    return InterfaceDiff(
        a, b,
        config=_changes(
            dict(config_leaves(config_a if isinstance(config_a, dict) else {})),
            dict(config_leaves(config_b if isinstance(config_b, dict) else {})),
        ),
        inputs=_changes(_inputs(a), _inputs(b)),
        provenance=_changes(_dotted(a.get("provenance"), CODE_KEYS), _dotted(b.get("provenance"), CODE_KEYS)),
        environment=_changes(_flat_environment(a), _flat_environment(b)),
    )
