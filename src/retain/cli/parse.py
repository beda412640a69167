"""Sorting the words of ``retain MODULE ...``: versions, actions, options, the execution.

The grammar of single words (``key=value``, ``~version``, ``--where``) is `retain._syntax`."""

from __future__ import annotations

from .. import execution
from .._errors import UsageError

__all__ = ["RunWords", "UsageError", "builtin_executions", "execution_module", "split_run_words"]


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
