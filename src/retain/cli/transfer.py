"""`retain export` (results to an archive), `retain import` (an archive into the storage) and
`retain copy` (results into another storage), keeping their ids."""

from __future__ import annotations

import argparse

from .._settings import current_storage
from .._transfer import copy as library_copy, export as library_export, ingest
from ._registry import EXIT_OK, PARSERS, command
from .browse import existing_storage
from .commands import _check_id, _find_record
from .lifecycle import size_text
from .output import print_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._transfer import Moved

__all__ = ["copy", "export", "import_"]

_EPILOG = (
    "Records and files move with their ids (checked against their content), the identity "
    "baselines of their classes with them; the classes' code is not needed."
)


def _with_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="+", metavar="ID", help="ids or unique id prefixes")
    parser.add_argument("--with-inputs", action="store_true",
                        help="also move the results they use as inputs (at any depth)")


def _export_parser(parser: argparse.ArgumentParser) -> None:
    _with_inputs(parser)
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="the archive to write (a tar; .tar.gz or .tgz: compressed)")
    parser.epilog = _EPILOG + " `retain import FILE` reads it into another storage."


def _import_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", help="an archive written by retain export")
    parser.epilog = (
        "Results the storage holds already (the same record) are left as they are; an id it holds "
        "with another record, or other identity baselines for a class, refuse the import before "
        "anything is written (exit 1). Importing again after a crash completes it."
    )


def _copy_parser(parser: argparse.ArgumentParser) -> None:
    _with_inputs(parser)
    parser.add_argument("--to", required=True, metavar="URL",
                        help="the storage to copy into: a path, file://...?shard=N, s3://bucket/prefix...")
    parser.epilog = _EPILOG + " Results the target holds already are left as they are."


PARSERS["export"] = _export_parser
PARSERS["import"] = _import_parser
PARSERS["copy"] = _copy_parser


def _ids(args: argparse.Namespace) -> list[str]:
    for text in args.ids:
        _check_id(text)
    store = existing_storage()
    return [_find_record(text, store)["id"] for text in args.ids]


def _report(moved: list[Moved], args: argparse.Namespace, verb: str, where: str, extra: dict[str, object]) -> int:
    total = sum(item.size for item in moved)
    if args.json:
        print_json({**extra, "results": [item.as_dict() for item in moved], "bytes": total})
        return EXIT_OK
    for item in moved:
        state = "already present" if item.state == "present" else verb
        print(f"{state} {item.qualname} [{item.id}]  {item.module}  {size_text(item.size)}")
    done = [item for item in moved if item.state != "present"]
    print(f"{verb} {len(done)} result(s), {size_text(sum(item.size for item in done))} {where}"
          + (f"; {len(moved) - len(done)} already present" if len(done) < len(moved) else ""))
    return EXIT_OK


@command("export", "write results (--with-inputs: and their inputs) to an archive: retain export ID... -o FILE")
def export(args: argparse.Namespace) -> int:
    ids = _ids(args)
    moved = library_export(ids, args.output, with_inputs=args.with_inputs, storage=existing_storage())
    return _report(moved, args, "exported", f"to {args.output}", {"archive": args.output})


@command("import", "import an archive of retain export into the storage (same ids; twice is a no-op)")
def import_(args: argparse.Namespace) -> int:
    store = current_storage()
    moved = ingest(args.archive, storage=store)
    return _report(moved, args, "imported", f"into {store.url}", {"storage": store.url})


@command("copy", "copy results (--with-inputs: and their inputs) into another storage: --to URL")
def copy(args: argparse.Namespace) -> int:
    ids = _ids(args)
    moved = library_copy(ids, args.to, with_inputs=args.with_inputs, storage=existing_storage())
    return _report(moved, args, "copied", f"into {args.to}", {"to": args.to})
