"""Turning command-line words into versions: `key=value` overrides and `~version` calls."""

from __future__ import annotations

import json

from .. import execution
from .._errors import ConfigError, RetainError
from .._get import get
from ..query import ge, gt, le, lt

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "RunWords",
    "builtin_executions",
    "execution_module",
    "format_value",
    "parse_value",
    "parse_versions",
    "parse_where",
    "split_run_words",
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


class UsageError(RetainError, ValueError):
    """The words on the command line do not form a command."""


class RunWords:
    """The words after ``retain MODULE``: versions, actions in order (``commit``, ``launch``,
    method names), ``--dry-run``, and ``--execution NAME key=value...``."""

    __slots__ = ("versions", "actions", "dry_run", "execution")

    def __init__(self) -> None:
        self.versions: list[str] = []
        self.actions: list[str] = []
        self.dry_run = False
        self.execution: tuple[str, list[str]] | None = None


def split_run_words(words: list[str]) -> RunWords:
    """Sort the words of ``retain MODULE ...``. The words after ``--execution NAME`` up to the
    next ``--`` option configure the execution."""
    out = RunWords()
    execution_words: list[str] | None = None
    position = 0
    while position < len(words):
        word = words[position]
        position += 1
        if word.startswith("--"):
            execution_words = None
            name = word[2:].replace("-", "_")
            if name == "dry_run":
                out.dry_run = True
            elif name == "execution":
                if position >= len(words) or words[position].startswith("-"):
                    raise UsageError("--execution needs a name, e.g. --execution pool processes=4")
                if out.execution is not None:
                    raise UsageError("--execution is given twice")
                execution_words = []
                out.execution = (words[position], execution_words)
                position += 1
            elif not name.isidentifier():
                raise UsageError(f"{word!r} is not an option or a method name")
            else:
                out.actions.append(name)
        elif word.startswith("-") and not word.startswith("-="):
            raise UsageError(f"unknown option {word!r}; methods are called with --NAME")
        elif execution_words is not None:
            execution_words.append(word)
        else:
            out.versions.append(word)
    if out.dry_run and "launch" not in out.actions:
        raise UsageError("--dry-run goes with --launch (retain MODULE ... --launch --dry-run)")
    if out.dry_run and out.actions != ["launch"]:
        others = ", ".join(f"--{name}" for name in out.actions if name != "launch")
        raise UsageError(f"--dry-run writes nothing, so it cannot go with {others}")
    if out.execution is not None and "launch" not in out.actions:
        raise UsageError("--execution says how to --launch; add --launch")
    return out


def execution_module(name: str) -> str:
    """The module an ``--execution NAME`` means: ``pool`` is ``retain.execution.pool`` (a
    backend of retain, when one has that name), any other name a module of the user's
    (``my_cluster``, ``pkg.slurm``, ``pkg.slurm:Slurm``)."""
    if name.isidentifier():
        from importlib.util import find_spec

        builtin = f"retain.execution.{name}"
        try:
            if find_spec(builtin) is not None:
                return builtin
        except (ImportError, ValueError):
            pass
    return name


def builtin_executions() -> list[str]:
    """The names ``--execution`` knows without a module of the user's: the modules of
    `retain.execution` that define an Execution (not its helpers)."""
    import pkgutil

    helpers = {"base", "slurm_task"}
    return sorted(
        info.name for info in pkgutil.iter_modules(execution.__path__)
        if not info.name.startswith("_") and info.name not in helpers
    )


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
