"""`retain rm`: remove committed interfaces (and, with --cascade, the results that use them)."""

from __future__ import annotations

import argparse

from .._lifecycle import remove
from ._registry import EXIT_OK, PARSERS, command
from .browse import existing_storage
from .commands import _check_id, _find_record
from .output import print_json

__all__ = ["rm"]


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
