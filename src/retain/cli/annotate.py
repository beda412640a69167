"""`retain tag` and `retain note`: the tags and note of a committed interface, by id, from the
records alone (the classes' code is never loaded: DESIGN 12)."""

from __future__ import annotations

import argparse

from .._annotations import Annotations, annotate, read
from ._registry import EXIT_OK, PARSERS, command
from .browse import existing_storage
from .commands import _check_id, _find_record
from .output import print_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["note", "tag"]


def _tag_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="an id or a unique id prefix")
    parser.add_argument("names", nargs="+", metavar="NAME", help="tags: letters, digits and _ . - : / + = @")
    parser.add_argument("--remove", action="store_true", help="remove these tags instead of adding them")
    parser.epilog = "Tags are not part of identity; `retain ls --tag NAME` lists the results that carry one."


PARSERS["tag"] = _tag_parser


@command("tag", "add tags to a committed interface (--remove: take them off), e.g. retain tag 29f034 best")
def tag(args: argparse.Namespace) -> int:
    _check_id(args.id)
    store = existing_storage()
    record = _find_record(args.id, store)
    if args.remove:
        found = annotate(store, record["id"], remove=args.names)
    else:
        found = annotate(store, record["id"], add=args.names)
    _report(record, found, args.json)
    return EXIT_OK


def _note_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="an id or a unique id prefix")
    parser.add_argument("text", nargs="?", help='the new note ("" clears it); without it, print the notes it had')


PARSERS["note"] = _note_parser


@command("note", 'replace the note of a committed interface (retain note 29f034 "lr too high"), or print its notes')
def note(args: argparse.Namespace) -> int:
    _check_id(args.id)
    store = existing_storage()
    record = _find_record(args.id, store)
    if args.text is None:
        found = read(store, record["id"])
        if args.json:
            print_json({"id": record["id"], "note": found.note, "notes": [list(n) for n in found.notes]})
            return EXIT_OK
        for when, text in found.notes:
            print(f"{when}  {text if text else '(cleared)'}")
        if not found.notes:
            print(f"{record['class']} [{record['id'][:6]}] has no note")
        return EXIT_OK
    found = annotate(store, record["id"], note=args.text)
    _report(record, found, args.json)
    return EXIT_OK


def _report(record: dict[str, Any], found: Annotations, as_json: bool) -> None:
    if as_json:
        print_json({"id": record["id"], "tags": sorted(found.tags), "note": found.note})
        return
    print(f"{record['class']} [{record['id'][:6]}]  tags: {', '.join(sorted(found.tags)) or '(none)'}")
    if found.note is not None:
        print(f"  note: {found.note}")
