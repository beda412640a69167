"""`retain`: the command line, a thin layer over the Python API.

Each command parses its words, makes one library call, and formats the result. Errors become
one line on stderr and an exit code here, in `main`, and nowhere else.
"""

from __future__ import annotations

import argparse
import os
import sys

from .._errors import InterfaceNotFoundError, RetainError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = ["main"]

EXIT_OK = 0
EXIT_NOT_FOUND = 1  # nothing found, or a launched component failed
EXIT_USAGE = 2  # bad input: unknown module, unknown key, bad value, ambiguous id prefix

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
PARSERS: dict[str, Callable[[argparse.ArgumentParser], None]] = {}
HELP: dict[str, str] = {}


class UsageError(RetainError, ValueError):
    """The words on the command line do not form a command."""


def command(name: str, help: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(function: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = function
        HELP[name] = help
        return function

    return register


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words
    try:
        return _run(words)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (RetainError, ImportError, ValueError, TypeError, OSError) as exc:
        if debug:
            raise
        code = EXIT_USAGE
        if isinstance(exc, InterfaceNotFoundError) and "ambiguous" not in str(exc):
            code = EXIT_NOT_FOUND
        message = str(exc).strip().replace("\n", "\n  ")
        print(f"retain: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return code


def _global_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--storage", help="storage path or URL (default: $RETAIN_STORAGE or ./storage)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _run(words: list[str]) -> int:
    from . import commands  # registers the commands

    del commands
    known, rest = _global_parser().parse_known_args(words)
    if known.storage:
        os.environ["RETAIN_STORAGE"] = known.storage
    # The current directory is importable, so `retain estimate_pi` finds ./estimate_pi.py.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if not rest or rest[0] in ("-h", "--help", "help"):
        _print_help()
        return EXIT_OK if rest else EXIT_USAGE
    name = rest[0] if rest[0] in COMMANDS and rest[0] != "run" else "run"
    parser = argparse.ArgumentParser(prog=f"retain {'' if name == 'run' else name}".strip(), description=HELP[name])
    PARSERS[name](parser)
    args_words = rest if name == "run" else rest[1:]
    args, unknown = parser.parse_known_args(args_words) if name == "run" else (parser.parse_args(args_words), [])
    args.extra = unknown
    args.json = known.json
    return COMMANDS[name](args)


def _print_help() -> None:
    lines = [
        "usage: retain [--storage PATH] [--json] [--debug] MODULE [key=value ...] [~version ...] [--method ...]",
        "       retain [--storage PATH] [--json] [--debug] COMMAND ...",
        "",
        "commands:",
    ]
    for name in sorted(COMMANDS):
        lines.append(f"  {name:<8} {HELP[name]}")
    lines.append("")
    lines.append("`retain COMMAND --help` describes each command; docs/cli.md has examples.")
    print("\n".join(lines))


def console() -> None:
    """Entry point of the `retain` script."""
    raise SystemExit(main())
