"""`retain du` (the bytes a storage's results take, per class, and the largest) and `retain
verify` (is every record whole, and the index with it; --repair mends what is safe)."""

from __future__ import annotations

import argparse

from .._errors import UsageError
from .._gc import REMOVABLE_STATES, gc as library_gc, parse_age, parse_size, parse_states
from .._health import KINDS, du as library_du, verify as library_verify
from ._registry import EXIT_NOT_FOUND, EXIT_OK, PARSERS, command
from .browse import existing_storage
from .lifecycle import size_text
from .output import ProgressBar, print_json, print_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["du", "gc", "verify"]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number (0 or more), got {text!r}")
    return value


def _du_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "module", nargs="?",
        help="only the results of this module (as their records name it) or module:Class; default: all",
    )
    parser.add_argument("--largest", type=_count, default=10, metavar="N",
                        help="how many of the largest results to list (default 10)")
    parser.epilog = (
        "Reads the records, never the classes' code. Sizes count every file of a result "
        "(record, saved files, run files); kB, MB, GB are powers of 1,000."
    )


PARSERS["du"] = _du_parser


@command("du", "the bytes committed results take, per class, and the largest results")
def du(args: argparse.Namespace) -> int:
    store = existing_storage()
    usage = library_du(args.module, largest=args.largest, storage=store)
    if args.json:
        print_json(usage.as_dict())
        return EXIT_OK
    print_table(
        [{"class": f"{c.module}:{c.qualname}", "results": c.count, "size": size_text(c.size), "bytes": c.size}
         for c in usage.classes],
        ["class", "results", "size", "bytes"],
    )
    if usage.largest:
        print()
        print("largest:")
        print_table(
            [{"id": r.id, "class": r.qualname, "size": size_text(r.size), "bytes": r.size} for r in usage.largest],
            ["id", "class", "size", "bytes"],
            keep=("id",),
        )
    print(f"total: {usage.count:,} result(s), {size_text(usage.size)} ({usage.size:,} bytes) in {store.url}")
    return EXIT_OK


def _verify_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repair", action="store_true",
        help="mend what is safe: rebuild the index, delete temporaries of killed writers and "
        "leftovers of killed removals, remove directories without a record untouched for an hour",
    )
    parser.epilog = (
        "Prints one line per problem (id, kind, what, how to fix) and a summary. Kinds: "
        + "; ".join(f"{kind}: {what}" for kind, what in KINDS.items())
        + ". Exits 1 when a problem is left (not repaired), 0 otherwise. A record is never "
        "changed or removed."
    )


PARSERS["verify"] = _verify_parser


@command("verify", "check every record, its inputs, files and run files, and the index (--repair: what is safe)")
def verify(args: argparse.Namespace) -> int:
    store = existing_storage()
    report = library_verify(repair=args.repair, storage=store)
    if args.json:
        print_json(report.as_dict())
        return EXIT_OK if report.ok else EXIT_NOT_FOUND
    for problem in report.problems:
        done = f"  [repaired: {problem.repaired}]" if problem.repaired else ""
        print(f"{problem.id or '-'}  {problem.kind}  {problem.what}; fix: {problem.fix}{done}")
    left = len(report.unrepaired)
    repaired = len(report.problems) - left
    print(
        f"checked {report.checked:,} record(s) in {report.storage}: {len(report.problems)} problem(s)"
        + (f", {repaired} repaired, {left} left" if args.repair else "")
    )
    return EXIT_OK if report.ok else EXIT_NOT_FOUND


# -- retain gc ----------------------------------------------------------------------------------


def _argument(parse: Any) -> Any:
    """An argparse type of `parse` (its UsageError becomes argparse's message)."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def _gc_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--older-than", type=_argument(parse_age), metavar="AGE",
                        help="select results created longer ago than AGE: 90s, 15m, 12h, 30d, 2w")
    parser.add_argument("--status", type=_argument(parse_states), metavar="STATES",
                        help=f"select components in these states, comma-separated ({', '.join(REMOVABLE_STATES)})")
    parser.add_argument("--max-size", type=_argument(parse_size), metavar="SIZE",
                        help="remove the oldest selected results until the storage's results take at most "
                        "SIZE: 500M, 50G, 1.5T (powers of 1,000)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed, and its size; remove nothing")
    parser.epilog = (
        "Always deletes what killed processes left: temporaries of dead writers, directories without "
        "a record untouched for an hour, leftovers of killed removals. Removes results only when "
        "selected by every criterion given. Never removes a tagged result, a running or queued "
        "component, or a result that a kept one uses (listed as kept). A progress bar on a terminal."
    )


PARSERS["gc"] = _gc_parser


@command("gc", "clean up: leftovers of killed processes, and old, failed or too many results (--dry-run)")
def gc(args: argparse.Namespace) -> int:
    store = existing_storage()
    bar = ProgressBar("gc")
    try:
        report = library_gc(
            older_than=args.older_than, status=args.status, max_size=args.max_size, dry_run=args.dry_run,
            storage=store, progress=bar if bar.enabled else None,
        )
    finally:
        bar.close()
    if args.json:
        print_json(report.as_dict())
        return EXIT_OK
    verb = "would remove" if args.dry_run else "removed"
    for item in report.leftovers:
        print(f"{verb} {item.kind} {item.path}  {size_text(item.size)}")
    for result in report.removed:
        print(f"{verb} {result.qualname} [{result.id}]  {result.module}  {size_text(result.size)}")
    for kept in report.skipped:
        print(f"kept {kept.qualname} [{kept.id}]: {kept.reason}")
    print(
        f"{verb} {len(report.removed)} result(s) and {len(report.leftovers)} leftover(s) of killed processes: "
        f"{size_text(report.bytes)} ({report.bytes:,} bytes) in {store.url}"
        + (f"; kept {len(report.skipped)} selected result(s)" if report.skipped else "")
    )
    return EXIT_OK
