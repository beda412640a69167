"""`retain rm` (remove committed interfaces and, with --cascade, the results that use them),
`retain rerun` (a component's run again, from scratch) and `retain launch` (the components of
a class, by state)."""

from __future__ import annotations

import argparse

from .._api import launch as library_launch, status as library_status
from .._errors import InterfaceNotFoundError
from .._get import get
from .._lifecycle import remove
from .._syntax import parse_versions
from ..component import Component
from ..interface import Interface, load_record
from ..runs.status import STATES
from ._registry import EXIT_OK, PARSERS, command
from .browse import existing_storage
from .commands import _check_id, _execution, _find_record
from .output import print_json
from .parse import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["launch", "rerun", "rm"]


def _rm_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="+", metavar="ID", help="ids or unique id prefixes")
    parser.add_argument("--cascade", action="store_true",
                        help="also remove the results that use them (users first)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed, and its size; remove nothing")


PARSERS["rm"] = _rm_parser


@command("rm", "remove committed interfaces (--cascade: with what uses them; --dry-run: list only)")
def rm(args: argparse.Namespace) -> int:
    for text in args.ids:
        _check_id(text)
    store = existing_storage()
    ids = [_find_record(text, store)["id"] for text in args.ids]
    removed = remove(ids, cascade=args.cascade, dry_run=args.dry_run, storage=store)
    total = sum(item.size for item in removed)
    if args.json:
        print_json({"dry_run": args.dry_run, "removed": [item.as_dict() for item in removed], "bytes": total})
        return EXIT_OK
    verb = "would remove" if args.dry_run else "removed"
    for item in removed:
        print(f"{verb} {item.qualname} [{item.id}]  {item.module}  {size_text(item.size)}")
    print(f"{verb} {len(removed)} interface(s), {size_text(total)}")
    return EXIT_OK


def size_text(size: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 kB``, ``2.0 GB`` (powers of 1,000)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


# -- retain launch MODULE [key=value ...] [--only STATES] -------------------------------------


def _launch_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", help="a module (its one Component class) or module:Class")
    parser.add_argument(
        "words", nargs="*", metavar="key=value|~version",
        help="one configuration; without any, every committed component of the class",
    )
    parser.add_argument(
        "--only", metavar="STATES", type=_states,
        help=f"launch only those in these states, comma-separated ({', '.join(STATES)})",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be launched; run nothing")
    parser.add_argument(
        "--execution", nargs="+", metavar="NAME [key=value ...]",
        help="how to run them (pool processes=4; NAME is retain.execution.NAME or a module of yours); "
        "default: in this process",
    )
    parser.epilog = (
        "Without --only: those missing, failed or died. Finished components are never run again. "
        "Exits 1 when one failed (the others ran)."
    )


PARSERS["launch"] = _launch_parser

#: What `retain launch` runs without --only: what never ran, or did not finish.
DEFAULT_STATES = ("missing", "failed", "died")


def _states(text: str) -> tuple[str, ...]:
    states = tuple(word.strip() for word in text.split(",") if word.strip())
    unknown = [state for state in states if state not in STATES]
    if unknown or not states:
        raise argparse.ArgumentTypeError(
            f"unknown state(s) {', '.join(map(repr, unknown)) or '(none given)'}; states are {', '.join(STATES)}"
        )
    return states


@command("launch", "launch the components of a class (or one configuration), e.g. --only failed,died")
def launch(args: argparse.Namespace) -> int:
    target: Any = args.module
    if args.words:
        target = get(args.module, parse_versions(args.words))
        if not isinstance(target, Component):
            raise UsageError(f"{target!r} is an {target.kind}, not a Component: launch runs a component's __call__")
    else:
        existing_storage()  # every committed component of a class: the storage must exist
    report = library_status(target)
    if not len(report):
        raise InterfaceNotFoundError(f"no committed {args.module} in {existing_storage().url}")
    wanted = set(args.only or DEFAULT_STATES)
    chosen = [component for component, state in report if state in wanted]
    rows = [{"id": c.id, "class": type(c).__qualname__, "state": report.state(c)} for c in chosen]
    if args.dry_run or not chosen:
        if args.json:
            print_json({"dry_run": args.dry_run, "launched": [], "would_launch": rows})
            return EXIT_OK
        for row in rows:
            print(f"would launch {row['class']} [{row['id']}] ({row['state']})")
        print(f"{'would launch' if chosen else 'nothing to launch:'} {len(chosen)} of {len(report)} component(s)"
              + ("" if chosen else f" in state {', '.join(sorted(wanted))}"))
        return EXIT_OK
    spec = None if args.execution is None else (args.execution[0], args.execution[1:])
    library_launch(chosen, execution=_execution(spec, args.json))
    if args.json:
        print_json({"dry_run": False, "launched": rows, "would_launch": []})
        return EXIT_OK
    for row in rows:
        print(f"launched {row['class']} [{row['id']}] (was {row['state']})")
    print(f"launched {len(chosen)} of {len(report)} component(s)")
    return EXIT_OK


# -- retain rerun ID ---------------------------------------------------------------------------


def _rerun_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the id (or a unique prefix) of a committed component")
    parser.add_argument(
        "--execution", nargs="+", metavar="NAME [key=value ...]",
        help="how to run it (pool, slurm partition=gpu...; NAME is retain.execution.NAME or a module "
        "of yours); default: in this process",
    )
    parser.epilog = (
        "Removes the component's run files and the files it saved (the record and its inputs stay), "
        "then runs it again. Refused while it runs. Exits 1 when the new run fails."
    )


PARSERS["rerun"] = _rerun_parser


@command("rerun", "remove a component's run and the files it saved, then run it again (same id)")
def rerun(args: argparse.Namespace) -> int:
    _check_id(args.id)
    store = existing_storage()
    record = _find_record(args.id, store)
    component = load_record(Interface, record, store)
    if not isinstance(component, Component):
        raise UsageError(f"{component!r} is an {component.kind}, not a Component: only a component runs")
    spec = None if args.execution is None else (args.execution[0], args.execution[1:])
    with _execution(spec, args.json):
        component.rerun()
    if args.json:
        print_json({"id": component.id, "state": component.execution.state()})
    else:
        print(f"ran {component!r} again (id {component.id}) in {component.local_directory()}")
    return EXIT_OK
