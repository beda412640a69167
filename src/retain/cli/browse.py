"""Commands over many committed interfaces: ``ls``, ``status``, ``stale``, ``index rebuild``.

Each parses, makes one library call, and formats: a table on a terminal, tab-separated lines
when piped, JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import os
import sys

from .._api import status as library_status
from .._errors import InterfaceNotFoundError
from .._get import get
from .._settings import current_storage
from .._stale import stale as library_stale
from .._syntax import parse_versions, where_groups
from ..collection import input_classes
from ..component import Component
from ..index import rebuild
from ..interface import Interface
from ..query import has
from ._registry import EXIT_OK, PARSERS, command
from .output import ProgressBar, is_terminal, print_json, print_table
from .parse import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..storage.base import Storage

__all__ = ["existing_storage", "index", "ls", "stale", "status"]

_JSON_HELP = "print JSON (also accepted before the command)"


def _storage_url() -> str:
    return current_storage().url


def existing_storage() -> Storage:
    """The storage in force, which commands that only read must find, not create.

    Raises:
        InterfaceNotFoundError: a local storage whose directory does not exist (exit code 1:
            nothing there to read), whether named by ``--storage``, ``RETAIN_STORAGE`` or the
            default ``./storage``.
    """
    store = current_storage()
    root = None if store.is_remote else store.local_root()
    if root is not None and not os.path.isdir(root):
        what = "not a directory" if os.path.exists(root) else "does not exist"
        raise InterfaceNotFoundError(
            f"no storage at {root} ({what}); give the storage with --storage PATH or "
            "RETAIN_STORAGE, or commit something first"
        )
    return store


def _short(row: dict[str, Any], terminal: bool) -> dict[str, Any]:
    """On a terminal, ids as their first 6 characters and times to the second."""
    if not terminal:
        return row
    out = dict(row)
    if isinstance(out.get("id"), str):
        out["id"] = out["id"][:6]
    created = out.get("created")
    if isinstance(created, str) and len(created) >= 19:
        out["created"] = created[:19].replace("T", " ")
    return out


# -- retain ls [MODULE] [--where EXPR] [--limit N] -----------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _ls_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", nargs="?", help="a module (its one Interface class) or module:Class; default: every class")
    parser.add_argument(
        "--where", action="append", default=[], metavar="EXPR",
        help="a condition KEY OP VALUE, OP one of = < <= > >= (e.g. 'lr<0.01', 'batch_size=8', "
        "'summary.loss<=0.2', 'created>2024-05'); repeat for more (all must hold)",
    )
    parser.add_argument(
        "--sort", metavar="KEY",
        help="order by KEY (a config key, summary.<name>, metrics.<name>, created, id), smallest first; "
        "-KEY for largest first; missing values last",
    )
    parser.add_argument("--limit", type=_positive, metavar="N", help="only the N first (newest, or first in --sort order)")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="NAME",
        help="only those tagged NAME (retain tag ID NAME); repeat for more (all must be there)",
    )
    parser.add_argument("--json", action="store_true", help=_JSON_HELP)
    parser.epilog = (
        "Columns: id, class, created, tags, then each config key, each summary.<name> and the last value "
        "of each metric (metrics.<name>). Newest "
        "first unless --sort. Exits 1 when nothing matches."
    )


PARSERS["ls"] = _ls_parser


@command("ls", "a table of committed interfaces from the index, filtered with --where")
def ls(args: argparse.Namespace) -> int:
    existing_storage()
    groups = where_groups(args.where)
    if args.tag:
        # Tags go to the index with the first group: a has() condition is asked in SQL.
        if groups and "tags" not in groups[0]:
            groups[0]["tags"] = has(*args.tag)
        else:  # (a config key named tags is in the first group: filtered after, in Python)
            groups.append({"tags": has(*args.tag)})
    runs = get.all(args.module or Interface, where=groups[0] if groups else None)
    for more in groups[1:]:
        runs = runs.filter(more)
    if args.sort:
        key = args.sort[1:] if args.sort.startswith("-") else args.sort
        runs = runs.sort(key, reverse=args.sort.startswith("-"))
    if args.limit:
        runs = runs[: args.limit]
    table = runs.to_table()
    if not table:
        what = f"committed {args.module}" if args.module else "committed interface"
        said = [*args.where, *(f"tag {name}" for name in args.tag)]
        condition = f" with {' and '.join(said)}" if said else ""
        raise InterfaceNotFoundError(f"no {what}{condition} in {_storage_url()}")
    if args.json:
        print_json(table)
        return EXIT_OK
    terminal = is_terminal(sys.stdout)
    names = _column_names(table)
    if terminal:
        _show_inputs(table, input_classes(runs))
    for row in table:
        if "tags" in row:
            row["tags"] = ",".join(row["tags"])
    rows = [{names.get(key, key): value for key, value in _short(row, terminal).items()} for row in table]
    print_table(rows, _columns(list(names.values())), keep=("id", "created"))
    return EXIT_OK


def _show_inputs(table: list[dict[str, Any]], classes: dict[str, str]) -> None:
    """Config cells that are the id of an input interface as ``Class [shortid]``."""
    if not classes:
        return
    for row in table:
        for key, value in row.items():
            if key.startswith("config.") and isinstance(value, str) and value in classes:
                row[key] = f"{classes[value]} [{value[:6]}]"


def _column_names(table: list[dict[str, Any]]) -> dict[str, str]:
    """Table keys -> column names: ``config.lr`` is shown as ``lr`` unless that would clash
    with another column."""
    keys: dict[str, None] = {}
    for row in table:
        keys.update(dict.fromkeys(row))
    taken = {key for key in keys if not key.startswith("config.")}
    names = {}
    for key in keys:
        short = key[len("config."):] if key.startswith("config.") else key
        names[key] = short if key.startswith("config.") and short not in taken else key
    return names


def _columns(names: list[str]) -> list[str]:
    fixed = ["id", "class", "created", *(["tags"] if "tags" in names else [])]
    summary = sorted(name for name in names if name.startswith("summary."))
    metrics = sorted(name for name in names if name.startswith("metrics."))
    results = set(summary + metrics)
    config = sorted(name for name in names if name not in fixed and name != "module" and name not in results)
    return fixed + config + summary + metrics


# -- retain status MODULE [key=value ...] ---------------------------------------------------------


def _status_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", help="a module (its one Component class) or module:Class")
    parser.add_argument(
        "words", nargs="*", metavar="key=value|~version",
        help="one configuration; without any, every committed component of the class",
    )
    parser.add_argument("--json", action="store_true", help=_JSON_HELP)
    parser.epilog = (
        "States: missing (never ran), queued (submitted to a scheduler such as Slurm), running, "
        "failed (with its error), died (its process "
        "stopped without recording an end), finished. Exits 1 when the class has no committed "
        "component."
    )


PARSERS["status"] = _status_parser


@command("status", "missing / queued / running / failed / died / finished, for components")
def status(args: argparse.Namespace) -> int:
    existing_storage()
    target: Any = args.module
    if args.words:
        target = get(args.module, parse_versions(args.words))
        if not isinstance(target, Component):
            raise UsageError(
                f"{target!r} is an {target.kind}, not a Component: status is about a component's runs"
            )
    report = library_status(target)
    if not len(report):
        raise InterfaceNotFoundError(f"no committed {args.module} in {_storage_url()}")
    rows: list[dict[str, Any]] = []
    for component, state in report:
        error = report.errors.get(component.id)
        message = str(error.get("message") or "").strip().splitlines() if error else []
        rows.append({
            "id": component.id,
            "class": type(component).__qualname__,
            "state": state,
            "nickname": component.nickname,
            "error": f"{error.get('type')}: {message[0] if message else ''}" if error else None,
            "directory": component.local_directory(),
        })
    if args.json:
        for row, (component, _) in zip(rows, report):
            error = report.errors.get(component.id)
            row["error"] = None if error is None else {k: error.get(k) for k in ("type", "message", "run", "time")}
        print_json(rows)
        return EXIT_OK
    terminal = is_terminal(sys.stdout)
    columns = ["id", "class", "state", "nickname", "error"] + ([] if terminal else ["directory"])
    print_table([_short(row, terminal) for row in rows], columns, keep=("id", "state"), wrap="error")
    if terminal:
        counts = report.counts()
        print(f"{len(report)} component(s): " + ", ".join(f"{n} {state}" for state, n in counts.items() if n))
    return EXIT_OK


# -- retain stale [MODULE] ------------------------------------------------------------------------


def _stale_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", nargs="?", help="a module or module:Class; default: every class")
    parser.add_argument(
        "--git", action="store_true",
        help="also count results computed at another git commit, even if their module is unchanged",
    )
    parser.add_argument("--json", action="store_true", help=_JSON_HELP)
    parser.epilog = (
        "A result is stale when its module's source file changed since it was computed (its "
        "recorded sha256; the git commit when no hash was recorded), when its defaults changed "
        "(today's code resolves its versions to another configuration), or when its class or "
        "versions no longer load."
    )


PARSERS["stale"] = _stale_parser


@command("stale", "committed results older than their module's code, or whose defaults changed")
def stale(args: argparse.Namespace) -> int:
    existing_storage()
    results = library_stale(args.module, git=args.git)
    if args.json:
        print_json([result.to_dict() for result in results])
        return EXIT_OK
    if not results:
        print(f"nothing stale in {_storage_url()}", file=sys.stderr)
        return EXIT_OK
    terminal = is_terminal(sys.stdout)
    rows = [
        _short({
            "id": result.id,
            "class": result.qualname,
            "created": result.created,
            "why": ",".join(result.kinds),
            "details": "; ".join(reason["message"] for reason in result.reasons),
        }, terminal)
        for result in results
    ]
    print_table(rows, ["id", "class", "created", "why", "details"], keep=("id", "created", "why"), wrap="details")
    return EXIT_OK


# -- retain index rebuild -------------------------------------------------------------------------


def _index_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    rebuild = actions.add_parser(
        "rebuild", help="rebuild the index from the records in storage",
        description="Rebuild the index of the storage from its records alone (a progress bar "
        "on a terminal); prints how many interfaces it indexed. Nothing in storage changes.",
    )
    rebuild.add_argument("--json", action="store_true", help=_JSON_HELP)


PARSERS["index"] = _index_parser


@command("index", "maintain the index: `retain index rebuild` rebuilds it from storage")
def index(args: argparse.Namespace) -> int:
    existing_storage()
    bar = ProgressBar("rebuilding index")
    try:
        count = rebuild(progress=bar if bar.enabled else None)
    finally:
        bar.close()
    if args.json:
        print_json({"indexed": count, "storage": _storage_url()})
    else:
        print(f"indexed {count:,} interface(s) in {_storage_url()}")
    return EXIT_OK
