"""The table of `retain`'s commands, filled by the modules that define them, and the exit codes."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    Command = Callable[[argparse.Namespace], int]

__all__ = ["COMMANDS", "EXIT_BROKEN_PIPE", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_USAGE", "HELP", "PARSERS", "command"]

EXIT_OK = 0
EXIT_NOT_FOUND = 1  # nothing found, a launched component failed, or a removal refused
EXIT_USAGE = 2  # bad input: unknown module, unknown key, bad value, ambiguous id prefix
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE, as a shell reports it)

#: The function of each command, the function that adds its arguments, and its help line.
COMMANDS: dict[str, Command] = {}
PARSERS: dict[str, Callable[[argparse.ArgumentParser], None]] = {}
HELP: dict[str, str] = {}


def command(name: str, help: str) -> Callable[[Command], Command]:
    """Register the decorated function as the command `name`."""

    def register(function: Command) -> Command:
        COMMANDS[name] = function
        HELP[name] = help
        return function

    return register
