"""`retain`: the command line, a thin layer over the Python API.

Each command parses its words, makes one library call, and formats the result. Errors become
one line on stderr and an exit code here, in `main`, and nowhere else.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from .._errors import InterfaceNotFoundError, InUseError, LaunchError, RetainError
from .._settings import storage
from . import annotate, browse, commands, health, lifecycle, ui  # noqa: F401  (importing them registers their commands)
from ._registry import COMMANDS, EXIT_BROKEN_PIPE, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, HELP, PARSERS
from .parse import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_USAGE", "UsageError", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code = _run(words)
        # Flushed here, not at exit: a reader that went away (`retain ls | head -1`) then
        # raises below instead of in the interpreter's shutdown.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # --help
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_USAGE
    except (RetainError, ImportError, ValueError, TypeError, OSError) as exc:
        if debug:
            raise
        code = EXIT_USAGE
        if isinstance(exc, InterfaceNotFoundError) and "ambiguous" not in str(exc):
            code = EXIT_NOT_FOUND
        if isinstance(exc, (LaunchError, InUseError)):
            code = EXIT_NOT_FOUND
        print(f"retain: error: {_one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null: the reader of the pipe is gone, and what is still buffered
    would otherwise fail again (with a traceback) when Python flushes it at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests)
        pass


def _one_line(exc: BaseException) -> str:
    """The error as one line: a failed launch by its components' errors; other messages with
    their lines joined."""
    if isinstance(exc, LaunchError) and exc.failures:
        parts = []
        for outcome in exc.failures:
            error = outcome.error or {}
            component = outcome.component
            what = repr(component) if component is not None else outcome.id[:6]
            message = str(error.get("message", "")).strip().splitlines()
            detail = f"{error.get('type', '?')}: {message[0] if message else ''}".rstrip(": ")
            where = f"; output: {component.local_directory('output.log')}" if component is not None else ""
            parts.append(f"{what} failed: {detail} (id {outcome.id}{where})")
        import re

        # "2 of 5 component(s) failed (2 ran, 1 cached)", when the launch had several.
        first = str(exc).strip().splitlines()[0].rstrip(":")
        counted = re.match(r"\d+ of (\d+) component\(s\) failed", first)
        counts = f"{first}: " if counted and int(counted.group(1)) > 1 else ""
        return counts + "; ".join(parts) + "; launch again to resume"
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = ""
    for line in lines:
        text += ("" if not text else " " if text.endswith(":") else "; ") + line
    return text or type(exc).__name__


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Warnings as one line each: ``retain: warning: ...``."""
    text = " ".join(str(message).split())
    print(f"retain: warning: {text}", file=sys.stderr)


def _global_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--storage", help="storage path or URL (default: $RETAIN_STORAGE or ./storage)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _run(words: list[str]) -> int:
    known, rest = _global_parser().parse_known_args(words)
    if known.storage:
        # The environment for processes this one starts (a pool's workers), the scope for
        # this one (a `with retain.storage(...)` around `main` would otherwise win).
        os.environ["RETAIN_STORAGE"] = known.storage
        with storage(known.storage):
            return _command(rest, known)
    return _command(rest, known)


def _command(rest: list[str], known: argparse.Namespace) -> int:
    # The current directory is importable, so `retain estimate_pi` finds ./estimate_pi.py.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if not rest or rest[0] in ("-h", "--help", "help"):
        _print_help()
        return EXIT_OK if rest else EXIT_USAGE
    name = rest[0] if rest[0] in COMMANDS and rest[0] != "run" else "run"
    parser = Parser(prog=f"retain {'' if name == 'run' else name}".strip(), description=HELP[name])
    PARSERS[name](parser)
    args_words = _join_negative_sort(rest if name == "run" else rest[1:])
    args, unknown = parser.parse_known_args(args_words) if name == "run" else (parser.parse_args(args_words), [])
    args.extra = unknown
    args.json = known.json
    return COMMANDS[name](args)


def _join_negative_sort(words: list[str]) -> list[str]:
    """``--sort -lr`` as ``--sort=-lr``: argparse would take ``-lr`` for an option."""
    out: list[str] = []
    for word in words:
        if out and out[-1] == "--sort" and word.startswith("-") and word != "--":
            out[-1] = f"--sort={word}"
        else:
            out.append(word)
    return out


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are `UsageError`s (one line, exit code 2, in `main`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _print_help() -> None:
    lines = [
        "usage: retain [--storage PATH] [--json] [--debug] MODULE [key=value ...] [~version ...]",
        "              [--commit] [--launch [--dry-run] [--execution NAME [key=value ...]]] [--METHOD ...]",
        "       retain [--storage PATH] [--json] [--debug] COMMAND ...",
        "",
        "commands:",
    ]
    for name in sorted(COMMANDS, key=lambda name: (name != "run", name)):
        shown = "MODULE" if name == "run" else name
        lines.append(f"  {shown:<8} {HELP[name]}")
    lines.append("")
    lines.append("`retain COMMAND --help` describes each command; docs/cli.md has examples.")
    print("\n".join(lines))


def console() -> None:
    """Entry point of the `retain` script."""
    raise SystemExit(main())
