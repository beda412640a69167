"""The commands of `retain`; each parses, makes one library call, and formats."""

from __future__ import annotations

import argparse
import shlex

from .._errors import ConfigError, InterfaceNotFoundError
from . import EXIT_NOT_FOUND, EXIT_OK, PARSERS, UsageError, command
from .output import print_json, print_table, to_jsonable
from .parse import format_value, parse_versions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..interface import Interface


# -- retain MODULE key=value ~version --method ---------------------------------------------


def _run_parser(parser: argparse.ArgumentParser) -> None:
    parser.usage = "retain MODULE [key=value ...] [~version ...] [--commit] [--METHOD ...]"
    parser.add_argument("module", help="a module (its one Interface class) or module:Class")
    parser.epilog = (
        "key=value words change the configuration (dotted keys nest; values are typed: 1, 1.0, "
        "true, null, [1,2], '\"quoted\"' strings, @ID for a committed interface); ~name(args) "
        "calls a version method; --commit commits; any other --NAME calls method NAME on the "
        "interface and prints what it returns, in the order given."
    )


PARSERS["run"] = _run_parser


def _split_run_words(words: list[str]) -> tuple[list[str], list[str]]:
    versions: list[str] = []
    actions: list[str] = []
    for word in words:
        if word.startswith("--"):
            name = word[2:].replace("-", "_")
            if not name.isidentifier():
                raise UsageError(f"{word!r} is not an option or a method name")
            actions.append(name)
        elif word.startswith("-") and not word.startswith("-="):
            raise UsageError(f"unknown option {word!r}; methods are called with --NAME")
        else:
            versions.append(word)
    return versions, actions


@command("run", "get an interface by module and configuration; commit it or call its methods")
def run(args: argparse.Namespace) -> int:
    from .._get import get

    versions, actions = _split_run_words(list(args.extra))
    interface = get(args.module, parse_versions(versions))
    if not actions:
        _describe(interface, args.json)
        return EXIT_OK
    results: dict[str, Any] = {}
    for name in actions:
        if name == "commit":
            interface.commit()
            results[name] = {"id": interface.id, "directory": interface.local_directory()}
            if not args.json:
                print(f"committed {interface!r} in {interface.local_directory()}")
            continue
        method = getattr(interface, name, None)
        if name.startswith("_") or not callable(method):
            raise UsageError(
                f"{type(interface).__qualname__} has no method {name!r} to call with --{name}"
            )
        result = method()
        results[name] = result
        if not args.json:
            print(_plain(result))
    if args.json:
        print_json({"id": interface.id, "results": results})
    return EXIT_OK


def _plain(value: Any) -> str:
    from ..interface import Interface

    if value is None or isinstance(value, (str, int, float, bool)) or isinstance(value, Interface):
        return str(value)
    import json

    return json.dumps(to_jsonable(value), ensure_ascii=False)


def _describe(interface: Interface, as_json: bool) -> None:
    info = {
        "id": interface.id,
        "class": f"{type(interface).__module__}:{type(interface).__qualname__}",
        "committed": interface.is_committed(),
        "directory": interface.local_directory(),
        "config": interface.config.to_dict(),
    }
    if as_json:
        print_json(info)
        return
    state = "committed" if info["committed"] else "not committed"
    print(f"{interface!r} ({state})")
    print(f"  directory: {info['directory']}")
    print(f"  config: {_plain(info['config'])}")


# -- retain find MODULE key=value ----------------------------------------------------------


def _find_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", help="a module (its one Interface class) or module:Class")
    parser.add_argument("words", nargs="*", metavar="key=value|~version")


PARSERS["find"] = _find_parser


@command("find", "print the id of that exact configuration if committed, else exit 1")
def find(args: argparse.Namespace) -> int:
    from .._get import get

    interface = get(args.module, parse_versions(args.words))
    if not interface.is_committed():
        if args.json:
            print_json({"id": None, "committed": False})
        return EXIT_NOT_FOUND
    if args.json:
        print_json({"id": interface.id, "committed": True, "directory": interface.local_directory()})
    else:
        print(interface.id)
    return EXIT_OK


# -- retain show ID ------------------------------------------------------------------------


def _show_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="an id or a unique id prefix")
    parser.add_argument("--cli", action="store_true", help="print the command that recreates it")


PARSERS["show"] = _show_parser


@command("show", "show a committed interface: record, config, files (by id or prefix)")
def show(args: argparse.Namespace) -> int:
    import os

    from .._get import get

    interface = get.by_id(args.id)
    if args.cli:
        line = recreate_command(interface)
        print_json({"id": interface.id, "command": line}) if args.json else print(line)
        return EXIT_OK
    record = interface.record or {}
    directory = interface.local_directory()
    files = sorted(
        os.path.relpath(os.path.join(root, name), directory)
        for root, dirs, names in os.walk(directory)
        for name in names
        if not name.startswith(".retain") and ".retain" not in os.path.relpath(root, directory).split(os.sep)
    )
    if args.json:
        print_json({**record, "directory": directory, "files": files})
        return EXIT_OK
    print(f"{interface!r}  {record.get('module')}:{record.get('class')}  ({record.get('kind')})")
    print(f"  id:        {interface.id}")
    print(f"  created:   {record.get('created')}")
    print(f"  directory: {directory}")
    print(f"  version:   {_plain(record.get('version'))}")
    print(f"  config:    {_plain(record.get('config'))}")
    git = (record.get("provenance") or {}).get("git")
    if git:
        print(f"  git:       {git.get('commit')}{' (dirty)' if git.get('dirty') else ''}")
    print(f"  files:     {', '.join(files) if files else '(none)'}")
    return EXIT_OK


def recreate_command(interface: Interface) -> str:
    """A shell-safe `retain` command whose `get` gives this identity."""
    record = interface.record
    if record is None:
        raise InterfaceNotFoundError(f"{interface!r} is not committed")
    words = ["retain", f"{record['module']}:{record['class']}"]
    for key, value in _flatten(record["canonical_config"]):
        words.append(f"{key}={_word(value)}")
    return " ".join(shlex.quote(word) for word in words)


def _flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    from ..identity import REF_KEY

    items: list[tuple[str, Any]] = []
    for key, value in sorted(config.items()):
        if "." in key or "=" in key:
            raise ConfigError(f"config key {key!r} cannot be written as a key=value word")
        if isinstance(value, dict) and value and REF_KEY not in value:
            items.extend(_flatten(value, f"{prefix}{key}."))
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _word(value: Any) -> str:
    from ..identity import REF_KEY

    if isinstance(value, dict) and REF_KEY in value:
        return f"@{value[REF_KEY]}"
    return format_value(value)


__all__ = ["find", "recreate_command", "run", "show", "print_table"]
