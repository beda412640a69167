"""The commands of `retain`; each parses, makes one library call, and formats."""

from __future__ import annotations

import argparse
import json
import os

from .._annotations import read as read_annotations
from .._api import StatusReport, status
from .._diff import ENVIRONMENT_KEYS, environment, record_diff
from .._errors import InterfaceNotFoundError, ModuleResolutionError, RetainError
from .._get import get
from .._grid import VERSION_KEY, Grid, grid_of_axes
from .._syntax import format_value, parse_grid, parse_versions, recreate_command
from ..component import Component, check_runnable
from ..execution import Execution
from ..identity import is_id
from ..interface import Interface, load_record
from ..runs.status import ExecutionStatus
from ..storage.layout import RECORD_FILE, decode_record
from ._registry import EXIT_NOT_FOUND, EXIT_OK, PARSERS, command
from .browse import existing_storage
from .output import human, print_json, to_jsonable
from .parse import RunWords, UsageError, builtin_executions, execution_module, split_run_words

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..runs.dispatch import Outcome
    from ..storage.base import Storage


# -- retain MODULE key=value ~version --method ---------------------------------------------


def _run_parser(parser: argparse.ArgumentParser) -> None:
    parser.usage = (
        "retain MODULE [key=value ...] [~version ...] [--commit] [--launch [--dry-run] "
        "[--execution NAME [key=value ...]]] [--METHOD ...]"
    )
    parser.add_argument("module", help="a module (its one Interface class) or module:Class")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "key=value words change the configuration (dotted keys nest; values are typed: 1, 1.0,\n"
        "true, null, [1,2], '\"quoted\"' strings, @ID for a committed interface); ~name(args)\n"
        "calls a version method. Commas make a grid: lr=0.1,0.01 batch=8,16 is 4 cells,\n"
        "'seed=range(5)' 5, '~small,~large' 2 (\"name='a,b'\" keeps the comma); without an\n"
        "action the cells are listed. Actions, in the order given:\n"
        "  --commit                 commit it\n"
        "  --launch                 commit and run a component (unless finished); prints ran,\n"
        "                           cached, or fails with exit code 1\n"
        "  --dry-run                with --launch: say what would run, write nothing\n"
        "  --execution NAME k=v...  with --launch: how to run it (pool processes=4; NAME is\n"
        "                           retain.execution.NAME or a module of yours)\n"
        "  --NAME                   call method NAME and print what it returns"
    )


PARSERS["run"] = _run_parser


@command("run", "get an interface by module and configuration; commit, launch, or call its methods")
def run(args: argparse.Namespace) -> int:
    words = split_run_words(list(args.extra))
    execution = _execution(words.execution, args.json) if "launch" in words.actions else None
    axes = parse_grid(words.versions)
    if any(len(values) > 1 for _, values in axes):
        return _run_grid(args, words, axes, execution)
    interface = get(args.module, [values[0] if key == VERSION_KEY else {key: values[0]} for key, values in axes])
    if not words.actions:
        _describe(interface, args.json)
        return EXIT_OK
    results: dict[str, Any] = {}
    for name in words.actions:
        if name == "commit":
            interface.commit()
            results[name] = {"id": interface.id, "directory": interface.local_directory()}
            if not args.json:
                print(f"committed {interface!r} in {interface.local_directory()}")
            continue
        if name == "launch":
            assert execution is not None
            results[name] = _launch(interface, execution, words.dry_run, args.json)
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


def _execution(spec: tuple[str, list[str]] | None, as_json: bool) -> Execution:
    """The execution of ``--execution NAME key=value...``; by default in process, echoing the
    run's output unless the output is JSON."""
    if spec is None:
        return get("retain.execution.local", {"echo": not as_json})  # type: ignore[return-value]
    name, words = spec
    module = execution_module(name)
    try:
        execution = get(module, parse_versions(words))
    except ModuleResolutionError as exc:
        if module != name or not name.isidentifier() or "no module named" not in str(exc):
            raise  # a module path of the user's: its own error says what is wrong
        import difflib

        names = builtin_executions()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(
            f"--execution {name}: no execution of retain has that name and no module of yours "
            f"either; retain's executions: {', '.join(names)}{hint}"
        ) from exc
    if not isinstance(execution, Execution):
        raise UsageError(
            f"--execution {name}: {type(execution).__qualname__} is a {execution.kind}, not an "
            "Execution (try pool, or a module of yours that defines one Execution subclass)"
        )
    return execution


_DRY_RUN = {
    "missing": "would run",
    "failed": "would resume",
    "died": "would resume",
    "queued": "queued on a scheduler; would wait for",
    "running": "running elsewhere; would wait for",
    "finished": "cached",
}


def _launch(interface: Interface, execution: Execution, dry_run: bool, as_json: bool) -> dict[str, Any]:
    """``--launch``: one dispatch (or, with ``--dry-run``, one status); what happened."""
    if not isinstance(interface, Component):
        raise UsageError(
            f"{interface!r} is an {interface.kind}, not a Component: --launch runs a component's "
            "__call__; use --commit to commit it"
        )
    if dry_run:
        check_runnable(type(interface))
        return _dry_run(interface, status(interface), "", as_json)
    return _did(interface, execution.dispatch([interface])[0], "", as_json)


def _dry_run(component: Component, report: StatusReport, label: str, as_json: bool) -> dict[str, Any]:
    """What ``--launch --dry-run`` says of one component (of a grid: with its `label`)."""
    directory = component.local_directory()
    state = report.state(component)
    error = report.errors.get(component.id)
    detail = f": {error.get('type')}: {_first_line(error.get('message'))}" if error else ""
    if not as_json:
        print(f"{_DRY_RUN.get(state, state)} {component!r}{label} ({state}{detail}; id {component.id}) in {directory}")
    return {
        "dry_run": True, "state": state, "would_run": state in ("missing", "failed", "died"),
        "id": component.id, "directory": directory,
        "error": None if error is None else {"type": error.get("type"), "message": error.get("message")},
    }


def _did(component: Component, outcome: Outcome, label: str, as_json: bool) -> dict[str, Any]:
    """What ``--launch`` says of one component it dispatched (of a grid: with its `label`)."""
    directory = component.local_directory()
    did = "ran" if outcome.status == "finished" else outcome.status
    run = f", run {outcome.run}" if outcome.run else ""
    if not as_json:
        print(f"{did} {component!r}{label} (id {component.id}{run}) in {directory}")
    return {"did": did, "id": component.id, "run": outcome.run, "directory": directory}


def _run_grid(args: argparse.Namespace, words: RunWords, axes: list[tuple[str, list[Any]]],
              execution: Execution | None) -> int:
    """``retain MODULE lr=0.1,0.01 ...``: the words make several cells; list, commit or launch
    them (one dispatch for all, so an execution runs them side by side)."""
    methods = [name for name in words.actions if name not in ("commit", "launch")]
    if methods:
        raise UsageError(
            f"--{methods[0]} calls a method of one interface, and the words make a grid of "
            f"{_cell_count(axes)} cells (comma-separated values or a range); give one value per key"
        )
    cells = grid_of_axes(args.module, axes)
    labels = _labels(cells)
    if not words.actions:
        _describe_grid(cells, labels, args.json)
        return EXIT_OK
    results: list[dict[str, Any]] = [{} for _ in cells]
    for name in words.actions:
        if name == "commit":
            for cell, label, result in zip(cells, labels, results):
                cell.commit()
                result[name] = {"id": cell.id, "directory": cell.local_directory()}
                if not args.json:
                    print(f"committed {cell!r}{label} in {cell.local_directory()}")
            continue
        assert name == "launch" and execution is not None
        components = _components_of_grid(cells)
        if words.dry_run:
            check_runnable(cells.target)
            report = status(components)
            for cell, label, result in zip(components, labels, results):
                result[name] = _dry_run(cell, report, label, args.json)
            if not args.json:
                counts: dict[str, int] = {}
                for cell in components:
                    said = _DRY_RUN.get(report.state(cell), report.state(cell)).split(";")[0]
                    counts[said] = counts.get(said, 0) + 1
                print(f"{len(cells)} cells: " + ", ".join(f"{n} {said}" for said, n in counts.items()))
            continue
        outcomes = {outcome.id: outcome for outcome in execution.dispatch(components)}
        for cell, label, result in zip(components, labels, results):
            result[name] = _did(cell, outcomes[cell.id], label, args.json)
    if args.json:
        print_json({"cells": [
            {"id": cell.id, "values": point, "results": result}
            for (point, cell), result in zip(cells.items(), results)
        ]})
    return EXIT_OK


def _cell_count(axes: list[tuple[str, list[Any]]]) -> int:
    count = 1
    for _, values in axes:
        count *= len(values)
    return count


def _labels(cells: Grid[Interface]) -> list[str]:
    """Each cell's values of the keys that vary, as words (`` lr=0.1 ~small``)."""
    keys = list(cells.points[0]) if cells.points else []
    varying = [key for key in keys if len({repr(point.get(key)) for point in cells.points}) > 1]
    return [
        "".join(f" {point[key]}" if key == VERSION_KEY else f" {key}={format_value(point[key])}" for key in varying)
        for point in cells.points
    ]


def _components_of_grid(cells: Grid[Interface]) -> list[Component]:
    components = [cell for cell in cells if isinstance(cell, Component)]
    if len(components) != len(cells):
        raise UsageError(
            f"{cells.target.__qualname__} is not a Component: --launch runs a component's "
            "__call__; use --commit to commit the cells"
        )
    return components


def _describe_grid(cells: Grid[Interface], labels: list[str], as_json: bool) -> None:
    """The cells of a grid without an action: each with whether it is committed."""
    if as_json:
        print_json({"cells": [
            {"id": cell.id, "values": point, "committed": cell.is_committed(),
             "directory": cell.local_directory(), "config": cell.config.to_dict()}
            for point, cell in cells.items()
        ]})
        return
    committed = [cell.is_committed() for cell in cells]
    print(f"{len(cells)} cells of {cells.target.__qualname__}, {sum(committed)} committed "
          "(--launch runs them, --launch --dry-run says what would run):")
    for cell, label, done in zip(cells, labels, committed):
        print(f"  {cell!r}{label} ({'committed' if done else 'not committed'}; id {cell.id})")


def _plain(value: Any) -> str:
    if value is None or isinstance(value, (str, int, float, bool)) or isinstance(value, Interface):
        return str(value)
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
    print(f"  config: {show_value(interface.config.to_dict())}")


# -- retain find MODULE key=value ----------------------------------------------------------


def _find_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", help="a module (its one Interface class) or module:Class")
    parser.add_argument("words", nargs="*", metavar="key=value|~version")


PARSERS["find"] = _find_parser


@command("find", "print the id of that exact configuration if committed, else exit 1")
def find(args: argparse.Namespace) -> int:
    existing_storage()
    interface = get(args.module, parse_versions(args.words))
    if not interface.is_committed():
        if args.json:
            print_json({"id": None, "committed": False})
            return EXIT_NOT_FOUND
        raise InterfaceNotFoundError(f"{interface!r} is not committed in {interface.storage.url}")
    if args.json:
        print_json({"id": interface.id, "committed": True, "directory": interface.local_directory()})
    else:
        print(interface.id)
    return EXIT_OK


# -- retain show ID ------------------------------------------------------------------------


def _show_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="an id or a unique id prefix")
    parser.add_argument("--cli", action="store_true", help="print the command that recreates it")
    parser.add_argument(
        "--env", action="store_true", help="print the environment it was committed in (python, platform, packages)"
    )


PARSERS["show"] = _show_parser


@command("show", "show a committed interface: record, config, summary, status, files (by id or prefix)")
def show(args: argparse.Namespace) -> int:
    _check_id(args.id)
    store = existing_storage()
    record = _find_record(args.id, store)
    id = record["id"]
    if args.cli:
        line = recreate_command(record)
        print_json({"id": id, "command": line}) if args.json else print(line)
        return EXIT_OK
    if args.env:
        _show_environment(record, args.json)
        return EXIT_OK
    # The record is readable without its code (DESIGN decision 12): the class is loaded only
    # for a component's status, and what fails to load is said, not raised.
    interface, problem = _load(record, store)
    directory = store.local_directory(id)
    files = store.list_files(id)
    summary = _stored_summary(store, id)
    state, error = _status(record, store)
    marks = read_annotations(store, id)
    if args.json:
        extra = {} if state is None else {"status": state, "error": error}
        if problem is not None:
            extra["code_error"] = problem
        notes = {"tags": sorted(marks.tags), "note": marks.note}
        print_json({**record, "summary": summary, "directory": directory, "files": files, **notes, **extra})
        return EXIT_OK
    print(f"{record['class']} [{id[:6]}]  {record['module']}:{record['class']}  ({record['kind']})")
    print(f"  id:        {id}")
    print(f"  created:   {record.get('created')}")
    print(f"  directory: {directory}")
    print(f"  version:   {show_value(record.get('version'))}")
    print(f"  config:    {show_value(record.get('config'))}")
    if summary is not None:
        print(f"  summary:   {show_value(summary, rounded=True)}")
    if marks.tags:
        print(f"  tags:      {', '.join(sorted(marks.tags))}")
    if marks.note is not None:
        print(f"  note:      {marks.note}")
    git = (record.get("provenance") or {}).get("git")
    if git:
        print(f"  git:       {git.get('commit')}{' (dirty)' if git.get('dirty') else ''}")
    if problem is not None:
        print(f"  code:      not loaded ({problem}); shown from the record")
    if state is not None:
        detail = f" ({error['type']}: {_first_line(error.get('message'))})" if error else ""
        print(f"  status:    {state}{detail}")
    print(f"  files:     {', '.join(files) if files else '(none)'}")
    return EXIT_OK


def _show_environment(record: dict[str, Any], as_json: bool) -> None:
    found = environment(record)
    if as_json:
        print_json({"id": record["id"], "environment": found})
        return
    print(f"{record['class']} [{record['id'][:6]}]  {record['module']}:{record['class']}  environment")
    # A record written before retain recorded a fact lacks it: said, not guessed.
    for key in ENVIRONMENT_KEYS:
        value = found.get(key, "(not recorded)")
        if key == "packages" and isinstance(value, dict):
            width = max((len(name) for name in value), default=0)
            print(f"  packages:{'' if value else '       (none)'}")
            for name, version in value.items():
                print(f"    {name.ljust(width)}  {version}")
        else:
            print(f"  {(key + ':').ljust(16)}{value}")


# -- retain diff ID1 ID2 -------------------------------------------------------------------


def _diff_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id1", help="an id or a unique id prefix")
    parser.add_argument("id2", help="another id or unique id prefix")


PARSERS["diff"] = _diff_parser


@command("diff", "how two committed interfaces differ: config, inputs, provenance, environment")
def diff(args: argparse.Namespace) -> int:
    _check_id(args.id1)
    _check_id(args.id2)
    store = existing_storage()
    # From the records alone (DESIGN decision 12), as `show`: the code need not import.
    difference = record_diff(_find_record(args.id1, store), _find_record(args.id2, store))
    if args.json:
        print_json(difference.to_dict())
    else:
        print(difference)
    return EXIT_OK  # found both: differing is an answer, not a failure


def _find_record(text: str, store: Storage) -> dict[str, Any]:
    """The record of the committed interface whose id is or starts with `text`.

    Raises:
        InterfaceNotFoundError: none, or several (listed: then exit code 2).
    """
    prefix = text.strip().lower()
    if is_id(prefix):
        matches = [prefix] if store.has_record(prefix) else []
    else:
        matches = sorted(store.iter_ids(prefix))
    if len(matches) > 1:
        shown = ", ".join(matches[:10]) + (f" and {len(matches) - 10} more" if len(matches) > 10 else "")
        raise InterfaceNotFoundError(
            f"id prefix {prefix!r} is ambiguous in {store.url}: it matches {shown}; give more characters"
        )
    data = store.read_record(matches[0]) if matches else None
    if data is None:
        what = f"interface {prefix}" if is_id(prefix) else f"interface id starts with {prefix!r}"
        raise InterfaceNotFoundError(f"no {what} in {store.url}")
    where = os.path.join(store.local_directory(matches[0]), RECORD_FILE)
    return decode_record(data, where, matches[0])


def _load(record: dict[str, Any], store: Storage) -> tuple[Interface | None, str | None]:
    """The interface of `record`, or None and why its code did not load."""
    try:
        return load_record(Interface, record, store), None
    except (RetainError, ImportError) as exc:
        return None, " ".join(str(exc).split())


def _stored_summary(store: Storage, id: str) -> dict[str, Any] | None:
    """The summary values of `id`, or ``{"(damaged)": reason}``: `show` says what it cannot read."""
    try:
        return store.read_summary(id)
    except RetainError as exc:
        return {"(damaged)": str(exc)}


def show_value(value: Any, rounded: bool = False) -> str:
    """A value of a record for people (see `output.human`): configurations exact, summaries
    `rounded`."""
    return human(value, quote=True, rounded=rounded)


def _check_id(text: str) -> None:
    """Refuse what is not an id or id prefix as bad input (exit 2), before looking: a
    well-formed id that is not there is "not found" (exit 1)."""
    prefix = text.strip().lower()
    if not prefix or len(prefix) > 32 or not set(prefix) <= set("0123456789abcdef"):
        raise UsageError(
            f"{text!r} is not an id or id prefix (up to 32 hex characters, e.g. '29f034'); "
            "`retain ls` lists the ids"
        )


def _status(record: dict[str, Any], store: Storage) -> tuple[str | None, dict[str, Any] | None]:
    """A component's state and error (None, None for other interfaces), without its code."""
    if record.get("kind") != "Component":
        return None, None
    return ExecutionStatus.of(record["id"], storage=store).state_and_error()


def _first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else ""


__all__ = ["diff", "find", "run", "show", "show_value"]
