"""The on-disk format, in one place.

A storage is a directory tree; below, `<root>/<id>/` stands for the directory of interface
`<id>`, `interface_directory(root, id, shard)`::

    <root>/<id>/interface.json    the record: written last, atomically; its presence *is* the commit
    <root>/<id>/<files...>        files saved by the interface (before or after commit)
    <root>/<id>/.retain-tmp-*     temporaries of writes in progress (never read)

`<id>` is the 32-hex content id. A directory without `interface.json` is not committed: it is
what an uncommitted interface's `save_file` or a crashed commit leaves, and is invisible.

A local storage is sharded (the default of a new one, ``shard=2``): each interface directory
sits one level down, under the first `shard` characters of its id, so that no directory grows
huge (see "Storage marker" below)::

    <root>/<id[:shard]>/<id>/...      e.g. <root>/29/29f034.../interface.json

A plain storage (``shard=0``, and every storage written before sharding was the default) has
them at the top: ``<root>/29f034.../interface.json``.

An object store (`FsspecStorage`) has the plain layout under its URL
(``s3://bucket/prefix/<id>/``); its files are used through a local cache directory with the
same layout, marked as a cache.

The index (see "Index files" below) adds::

    <root>/<id>/summary.json      summary values (scalars) of an interface, written atomically
    <root>/.retain/index.sqlite   the default index: a cache, rebuilt from the records at will
    <root>/.retain/journal        one line per commit, summary or removal, appended before it happens

Removal (`Storage.remove`, what `Interface.delete` and `retain rm` use; see "Removal" below)
adds a removal area::

    <root>/.retain/removing/<id>.<pid>.<token>/   a local directory being deleted: renamed here
                                                  first (the rename is the removal's commit point)
    <root>/.retain/removing/<id>                  on an object store: the marker of a removal in
                                                  progress (written before the record is deleted)

Tags and notes (`Interface.tag`, `Interface.note`, `retain tag`; see "Annotations" below), the
one part of a committed interface that changes, are events beside the record::

    <root>/<id>/.retain/annotations/<time_ns>-<token>.json   one change (tags added or removed,
                                                             the note replaced), created once
    <root>/.retain/annotated/<id>                            empty: `id` has annotations (what
                                                             an index rebuild reads them for)
"""

from __future__ import annotations

# json, re and hashlib are imported where they are used: `import retain` loads this module
# and must not load them (tests/test_package.py).
from .._errors import RecordError
from ..identity import ID_LENGTH, SCHEME, compute_id, identical, is_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "INDEX_FILE",
    "JOURNAL_ANNOTATE",
    "JOURNAL_COMMIT",
    "JOURNAL_FILE",
    "JOURNAL_REMOVE",
    "REMOVAL_DIR",
    "JOURNAL_SUMMARY",
    "MARKER_FILE",
    "MARKER_FORMAT",
    "RECORD_FILE",
    "RECORD_FORMAT",
    "RESERVED_PREFIX",
    "SHARD_WIDTHS",
    "STORAGE_ID_FILE",
    "STORAGE_META_DIR",
    "SUMMARY_FILE",
    "check_record",
    "decode_journal",
    "decode_record",
    "decode_summary",
    "encode_journal_line",
    "encode_record",
    "encode_summary",
    "index_fields",
    "index_path",
    "interface_directory",
    "journal_path",
    "marker_path",
    "read_marker",
    "removal_area",
    "summary_text",
]

RECORD_FILE = "interface.json"
RECORD_FORMAT = "retain.interface"
#: File names at the top of an interface directory that belong to retain, not to the user.
RESERVED_PREFIX = ".retain"

# field -> expected JSON type(s); every record has all of these.
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "scheme": int,
    "id": str,
    "module": str,
    "class": str,
    "kind": str,
    "version": list,
    "config": dict,
    "canonical_config": dict,
    "created": str,
}


def encode_record(record: dict[str, Any]) -> bytes:
    """The bytes of a record: sorted JSON, one top-level field per line, readable and diffable.

    Each field's value is compact: `json.dumps` with `indent` falls back to its pure-Python
    encoder, which would make this the slowest step of a commit.
    """
    encode = _value_encoder()
    names = _FIELD_NAMES
    lines = ",\n".join([f"  {names.get(key) or encode(key)}: {encode(record[key])}" for key in sorted(record)])
    return ("{\n" + lines + "\n}\n").encode("utf-8")


#: The JSON text of a record's field names (every record has most of them).
_FIELD_NAMES = {name: f'"{name}"' for name in (
    *_REQUIRED, "baseline", "non_identifying", "inputs", "provenance",
)}


_encoder: Any = None


def _value_encoder() -> Any:
    """`json.dumps(value, sort_keys=True, ensure_ascii=False)`, for the process."""
    global _encoder
    if _encoder is None:
        import json
        from json import encoder

        plain = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
        make = getattr(encoder, "c_make_encoder", None)  # CPython's C accelerator
        if make is None:
            _encoder = plain.encode
        else:
            # One C encoder, reused: `JSONEncoder.encode` makes a new one per call, which was
            # 40% of encoding a record (a call per field). No check for values that contain
            # themselves (they come from `to_json`, which refuses them).
            iterencode = make(None, plain.default, encoder.encode_basestring, None, ": ", ", ", True, False, True)
            _encoder = lambda value: "".join(iterencode(value, 0))  # noqa: E731
    return _encoder


def decode_record(
    data: bytes, where: str, expected_id: str | None = None, *, resolved: tuple[str, str, Any] | None = None
) -> dict[str, Any]:
    """Parse and check a record; `where` names it in errors. `resolved` is the (module,
    class, canonical config) that `expected_id` was just computed from: a record holding
    exactly those needs no second hash of its content (see `check_record`).

    Raises:
        RecordError: the bytes are not JSON, not a retain record, from a newer scheme, or
            inconsistent (the id does not match the content or the directory).
    """
    import json

    try:
        record = parse_json(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fix = f"move {where!r} aside (nothing else is affected), or restore it from a backup"
        raise RecordError(f"record {where!r} is corrupted: not valid JSON ({exc}); {fix}") from None
    return check_record(record, where, expected_id, resolved=resolved)


def parse_json(data: bytes) -> Any:
    """`json.loads(data)`, a fifth faster for the UTF-8 that retain writes (a `get` hit parses
    a record): decoded and parsed without `json.loads`'s encoding detection and per-call
    setup. Anything else (a byte order mark, surrogates, leading whitespace, an error) goes
    through `json.loads` itself, so results and errors are exactly its own."""
    try:
        text = data.decode("utf-8")
        value, end = raw_decoder()(text)
    except (UnicodeDecodeError, ValueError):
        value, end, text = None, -1, ""
    if end >= 0 and not text[end:].strip(" \t\n\r"):
        return value
    import json

    return json.loads(data)


def check_record(
    record: Any,
    where: str,
    expected_id: str | None = None,
    *,
    content: bool = True,
    resolved: tuple[str, str, Any] | None = None,
) -> dict[str, Any]:
    """`decode_record` of a record already parsed; without `content`, the content hash is
    not checked (`retain.verify` checks it itself, to tell that problem from the others).
    With `resolved`, the content is compared with it instead of hashed when it matches.

    Raises:
        RecordError: as `decode_record`.
    """
    fix = f"move {where!r} aside (nothing else is affected), or restore it from a backup"
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise RecordError(
            f"{where!r} is not a retain record (expected a JSON object with "
            f"\"format\": \"{RECORD_FORMAT}\"); {fix}"
        )
    for field, kind in _REQUIRED.items():
        if field not in record:
            raise RecordError(f"record {where!r} is corrupted: field {field!r} is missing; {fix}")
        value = record[field]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RecordError(
                f"record {where!r} is corrupted: field {field!r} should be "
                f"{_json_type(kind)}, got {type(value).__name__}; {fix}"
            )
    if record["scheme"] > SCHEME:
        raise RecordError(
            f"record {where!r} uses identity scheme {record['scheme']}, newer than this "
            f"retain understands ({SCHEME}); upgrade retain to read it"
        )
    record_id = record["id"]
    if not is_id(record_id):
        raise RecordError(f"record {where!r} is corrupted: {record_id!r} is not an id; {fix}")
    if expected_id is not None and record_id != expected_id:
        raise RecordError(
            f"record {where!r} is corrupted: it holds id {record_id} but lives in directory "
            f"{expected_id}; {fix}"
        )
    if content and record["scheme"] == SCHEME and not (
        # `expected_id` hashes these three, so a record equal to them hashes to it: comparing
        # costs a third of hashing again (a `get` hit does this).
        resolved is not None
        and record["module"] == resolved[0]
        and record["class"] == resolved[1]
        and identical(record["canonical_config"], resolved[2])
    ):
        content_id = compute_id(record["module"], record["class"], record["canonical_config"])
        if content_id != record_id:
            raise RecordError(
                f"record {where!r} is corrupted: its content hashes to {content_id}, not to its "
                f"id {record_id} (was it edited by hand?); {fix}"
            )
    return record


def _json_type(kind: type | tuple[type, ...]) -> str:
    names: dict[object, str] = {str: "a string", int: "an integer", list: "a list", dict: "an object"}
    return names.get(kind, str(kind))


# -- Storage marker ---------------------------------------------------------------------------
#
# `<root>/.retain/storage.json` records what every process must agree on before it reads or
# writes a storage directory: the sharded layout (``{"format": "retain.storage", "shard": 2}``),
# or that the directory is the local cache of an object store
# (``{"format": "retain.storage", "cache_of": "s3://bucket/prefix"}``), so that
# `Interface.from_directory` of a cached directory finds its store. Written once, exclusively,
# before the first interface directory is created (`Storage.prepare_directory`); every process
# follows what it says. No marker (a storage written by an earlier release, or one nothing was
# written into yet): plain if interface directories sit at the top of the root, else new (the
# first writer records ``shard: 2``, or what it was asked for).

MARKER_FILE = "storage.json"
MARKER_FORMAT = "retain.storage"
#: Shard widths (characters of the id) that `LocalStorage(shard=...)` accepts: 16, 256 or 4,096
#: sub-directories.
SHARD_WIDTHS = (1, 2, 3)


def marker_path(root: str) -> str:
    """The storage marker of the storage (or cache) directory `root`."""
    return f"{root}/.retain/{MARKER_FILE}"


def interface_directory(root: str, id: str, shard: int = 0) -> str:
    """The directory of interface `id` in the storage directory `root`."""
    if shard:
        return f"{root}/{id[:shard]}/{id}"
    return f"{root}/{id}"


def read_marker(root: str) -> dict[str, Any] | None:
    """The storage marker of `root`, or None when there is none.

    Raises:
        RecordError: the marker is not a retain storage marker (damaged, or foreign).
    """
    import json

    path = marker_path(root)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        marker = json.loads(data)
    except ValueError:
        marker = None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT:
        raise RecordError(
            f"{path!r} is not a retain storage marker (expected a JSON object with "
            f"\"format\": \"{MARKER_FORMAT}\"); it records the storage's layout: restore it "
            "from a backup, or write {\"format\": \"retain.storage\"} for a plain layout"
        )
    shard = marker.get("shard", 0)
    if isinstance(shard, bool) or (shard != 0 and shard not in SHARD_WIDTHS):
        raise RecordError(f"{path!r} names an unknown layout (shard={shard!r}); upgrade retain")
    return marker


# -- Index files ------------------------------------------------------------------------------
#
# Everything the index keeps lives in `<root>/.retain/`, a name that is not an id, so listing
# ids never sees it. The journal is the index's safety net: a commit appends its id *before*
# publishing the record (and `save_summary` before writing the summary), so an index that
# missed an update (a killed process) finds the id by reading the journal past the offset it
# recorded. Lines are short appends with O_APPEND (atomic on local file systems); a reader
# ignores anything that is not a complete, well-formed line. Beside the SQLite index (and its
# -wal and -shm), ``index.sqlite-checked`` notes the state of the file when retain last knew it
# whole (see `retain.index.sqlite._connection`).

#: Directory of the storage's own files (index, journal), beside the interface directories.
STORAGE_META_DIR = ".retain"
INDEX_FILE = "index.sqlite"
JOURNAL_FILE = "journal"
#: A random token that names a local storage wherever it is mounted, created (exclusively) the
#: first time an index of several hosts serves it: that index records it and refuses another
#: storage (two storages in one PostgreSQL schema would keep replacing each other's rows).
STORAGE_ID_FILE = "storage-id"
#: Summary values of an interface, in its directory; reserved (not writable with `save_file`).
SUMMARY_FILE = "summary.json"
#: Journal line kinds: a commit, a summary saved, or a removal (appended before the removal:
#: the next query drops the id from the index unless its record is there).
JOURNAL_COMMIT = "c"
JOURNAL_SUMMARY = "s"
JOURNAL_REMOVE = "r"
#: Journal line kind of an annotation (tags or note) changed (appended before the change).
JOURNAL_ANNOTATE = "t"


def index_path(root: str) -> str:
    """The default SQLite index of the storage at `root`."""
    return f"{root}/{STORAGE_META_DIR}/{INDEX_FILE}"


def journal_path(root: str) -> str:
    """The journal of the storage at `root`."""
    return f"{root}/{STORAGE_META_DIR}/{JOURNAL_FILE}"


def encode_journal_line(id: str, kind: str, time_ns: int) -> bytes:
    """One journal line: ``<id> <kind> <unix time in ns>\\n`` (54 bytes); kind is
    `JOURNAL_COMMIT`, `JOURNAL_SUMMARY`, `JOURNAL_REMOVE` or `JOURNAL_ANNOTATE`."""
    return f"{id} {kind} {time_ns}\n".encode("ascii")


def decode_journal(data: bytes) -> tuple[list[tuple[str, str]], int]:
    """The ``(id, kind)`` pairs in journal bytes, and how many bytes were consumed: up to the
    last complete line (a line being appended is left for the next read). Malformed lines, such
    as a torn write on a file system without atomic appends, are skipped."""
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[:end].split(b"\n"):
        if len(line) < ID_LENGTH + 3 or line[ID_LENGTH:ID_LENGTH + 1] != b" ":
            continue
        try:
            text = line[:ID_LENGTH + 2].decode("ascii")
        except UnicodeDecodeError:
            continue
        id, kind = text[:ID_LENGTH], text[ID_LENGTH + 1:]
        if is_id(id) and kind in (JOURNAL_COMMIT, JOURNAL_SUMMARY, JOURNAL_REMOVE, JOURNAL_ANNOTATE):
            out.append((id, kind))
    return out, end


# -- Annotations ------------------------------------------------------------------------------
#
# Records are frozen once committed; tags and a note are the one thing that changes after (they
# are not part of identity). Each change is a small immutable event file, created exclusively
# (`Storage.create_file`: atomic, on object stores too) and never rewritten::
#
#   <root>/<id>/.retain/annotations/00001764720000000000000-1a2b3c4d.json
#   {"add": ["best"], "format": "retain.annotation", "remove": [], "time": "2026-...Z"}
#   {"add": [], "format": "retain.annotation", "note": "lr too high", "remove": [], "time": ...}
#
# The name is the time in ns (20 digits) and a random token: the events of an id, folded in
# name order (tags added, then removed; the last ``note`` is the note, ``""`` none), give its
# tags and its note, and the notes before it are its history. There is no read-modify-write:
# two processes tagging one result at once each add a file and neither tag is lost, and a
# process killed while tagging leaves the event whole or absent. A damaged event (edited by
# hand) is skipped.
#
# ``<root>/.retain/annotated/<id>`` (empty, created before the first event of `id`, through
# `Storage.create_meta`) lists the ids that have events: an index rebuild lists that folder
# once and reads the events of those ids only, so results never annotated cost it nothing.
# A directory copied into a local storage by hand is looked at when the index's scan finds it
# (which marks it); whatever brings results into a storage otherwise marks them.
# The index follows a change through the journal (a ``t`` line appended before the event) and
# stores the tags (`Index.set_tags`); `retain.index.rebuild()` reads them back from the events.

#: The folder of an id's annotation events, relative to its directory.
ANNOTATIONS_FOLDER = f"{RESERVED_PREFIX}/annotations"
#: Under `STORAGE_META_DIR`: one empty file per id that has annotation events.
ANNOTATED_DIR = "annotated"
ANNOTATION_FORMAT = "retain.annotation"

__all__ += ["ANNOTATED_DIR", "ANNOTATIONS_FOLDER", "ANNOTATION_FORMAT", "annotation_name", "encode_annotation",
            "fold_annotations"]


def annotation_name(time_ns: int, token: str) -> str:
    """The file name (in `ANNOTATIONS_FOLDER`) of an event made at `time_ns`."""
    return f"{time_ns:020d}-{token}.json"


def encode_annotation(time: str, add: list[str], remove: list[str], note: str | None) -> bytes:
    """The bytes of one annotation event (`note` None: the note is left as it was)."""
    event: dict[str, Any] = {"format": ANNOTATION_FORMAT, "time": time, "add": add, "remove": remove}
    if note is not None:
        event["note"] = note
    text: str = _value_encoder()(event)
    return (text + "\n").encode("utf-8")


def fold_annotations(events: list[bytes]) -> tuple[frozenset[str], list[tuple[str, str]]]:
    """The tags and the note history (``(time, text)``, oldest first; ``""``: cleared) that
    `events` (in name order) give. Damaged events are skipped."""
    import json

    tags: set[str] = set()
    notes: list[tuple[str, str]] = []
    for data in events:
        try:
            event = json.loads(data)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("format") != ANNOTATION_FORMAT:
            continue
        add, remove = event.get("add"), event.get("remove")
        if isinstance(add, list):
            tags.update(name for name in add if isinstance(name, str))
        if isinstance(remove, list):
            tags.difference_update(name for name in remove if isinstance(name, str))
        note = event.get("note")
        if isinstance(note, str):
            notes.append((str(event.get("time", "")), note))
    return frozenset(tags), notes


# -- Removal ----------------------------------------------------------------------------------
#
# Removing an interface (`Storage.remove`) is atomic for readers: after a crash at any point the
# interface is whole (found by get, from_directory and the index) or gone (found nowhere).
#
# Local (and sharded) storage: the journal line (``r``) is appended first; then the interface
# directory is renamed into the removal area, ``<root>/.retain/removing/<id>.<pid>.<token>/``
# (one rename on one file system: the commit point, after which ``<root>/<id>/`` is absent),
# then deleted. What a crash leaves in the removal area is invisible (not an id directory) and
# deleted by the next removal on the storage.
#
# Object store: objects cannot be renamed, so the record goes first. The objects of the id are
# listed, the marker ``<root>/.retain/removing/<id>`` is written, the record is deleted (the
# commit point: `get` finds nothing), then the other objects listed, then the marker. A crash
# leaves objects without a record (invisible, like a killed commit's uploads) and the marker;
# the next removal, a re-commit of that id (which looks for the marker first: one HEAD), and the
# index's listing finish it, deleting only objects not newer than the marker, so the files a
# re-commit uploads after it are never taken. A marker beside a record (a crash before the
# record was deleted) is dropped: the interface stayed whole. Each machine's local cache of the
# id is removed with it (renamed into the cache's own removal area, then deleted).
#
# The index follows: the removal's journal line is written before the storage changes, and the
# removed ids are dropped from the index after it; a query reads the journal and drops every
# journaled id whose record is absent, so a crash between the two steps is repaired by the next
# query.

#: Under `STORAGE_META_DIR`: the removal area.
REMOVAL_DIR = "removing"


def removal_area(root: str) -> str:
    """The removal area of the storage (or cache) directory `root`."""
    return f"{root}/{STORAGE_META_DIR}/{REMOVAL_DIR}"


def _record_lines() -> Any:
    """A pattern of the lines the index reads in a record written by `encode_record` (one
    sorted field per line), with other fields' lines allowed between them. Each skipped line
    may not be the line looked for next, and is skipped possessively: the match is linear in
    the record's length, whatever it holds."""
    import re

    plain = r'"([^"\\\n]*)"'  # a string without escapes (others go to the full parser)
    fields = [
        ("canonical_config", r"(\{[^\n]*\})"),
        ("class", plain),
        ("config", r"(\{[^\n]*\})"),
        ("created", plain),
        ("format", f'"{re.escape(RECORD_FORMAT)}"'),
        ("id", r'"([0-9a-f]{32})"'),
        ("kind", plain),
        ("module", plain),
        ("scheme", r"([0-9]+)"),
    ]
    # Never the last line (`version` sorts after them all): each ends with a comma.
    lines = "".join(f'(?:(?!  "{name}": )  "[^\\n]*\\n)*+  "{name}": {value},\\n' for name, value in fields)
    return re.compile("\\{\\n" + lines)


_RECORD_LINES: Any = None


def index_fields(data: bytes, where: str, expected_id: str) -> dict[str, Any]:
    """What the index needs from a record: ``id``, ``module``, ``class``, ``kind``,
    ``created``, ``config`` (parsed), and ``config_text``/``canonical_text`` (JSON as stored).

    A record in the layout `encode_record` writes (one top-level field per line) is read by
    matching those lines with one regular expression and parsing only the config: three
    times faster than parsing it whole, and a large part of `retain.index.rebuild()`. Format, scheme, field types
    and the id of the directory are checked, not the content hash (reloading the interface
    checks it). Anything unusual (another layout, escapes in names) goes through
    `decode_record`.

    Raises:
        RecordError: as `decode_record`.
    """
    fields = _fast_index_fields(data, expected_id)
    if fields is not None:
        return fields
    record = decode_record(data, where, expected_id)
    encode = _value_encoder()
    out = {name: record[name] for name in ("id", "module", "class", "kind", "created", "config")}
    out["config_text"] = encode(record["config"])
    out["canonical_text"] = encode(record["canonical_config"])
    return out


def _fast_index_fields(data: bytes, expected_id: str) -> dict[str, Any] | None:
    global _RECORD_LINES
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _RECORD_LINES is None:
        _RECORD_LINES = _record_lines()
    found = _RECORD_LINES.match(text)
    if found is None:
        return None
    canonical, klass, config, created, id, kind, module, scheme = found.groups()
    if id != expected_id or int(scheme) > SCHEME:
        return None
    try:
        # raw_decode: json.loads without its per-call overhead (a third of the parse here).
        parsed, stop = raw_decoder()(config)
    except ValueError:
        return None
    if stop != len(config) or type(parsed) is not dict:
        return None
    return {
        "id": expected_id,
        "module": module,
        "class": klass,
        "kind": kind,
        "created": created,
        "config": parsed,
        "config_text": config,
        "canonical_text": canonical,
    }


_decoder: Any = None


def raw_decoder() -> Any:
    """`json.JSONDecoder().raw_decode`, made once: `json.loads` without its per-call checks,
    for the many small texts of records, configs and rows."""
    global _decoder
    if _decoder is None:
        import json

        _decoder = json.JSONDecoder().raw_decode
    return _decoder


def encode_summary(values: dict[str, Any]) -> bytes:
    """The bytes of `summary.json`: one sorted key per line. NaN and infinities are kept
    (as JavaScript's `NaN`, `Infinity`), since a diverged run's loss is a result too."""
    import json

    return (json.dumps(values, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def summary_text(data: bytes) -> str | None:
    """`summary.json` as JSON text for the index, without parsing it (None if it is plainly
    not a JSON object); whoever reads the index parses it, and treats a damaged one as absent."""
    text = data.strip()
    if not (text.startswith(b"{") and text.endswith(b"}")):
        return None
    try:
        # Newlines in JSON text are only ever formatting (in strings they are escaped).
        return text.replace(b"\n", b"").decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_summary(data: bytes, where: str) -> dict[str, Any]:
    """Parse `summary.json`.

    Raises:
        RecordError: it is not a JSON object.
    """
    import json

    try:
        values = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(
            f"summary {where!r} is corrupted: not valid JSON ({exc}); delete it and save the "
            "summary again"
        ) from None
    if not isinstance(values, dict):
        raise RecordError(f"summary {where!r} is corrupted: expected a JSON object")
    return values


# -- Component runtime files ------------------------------------------------------------------
#
# A Component's runs live beside its record, under names reserved for retain (save_file refuses
# top-level names starting with ".retain"):
#
#   <root>/<id>/output.log                   everything its runs printed (stdout and stderr,
#                                            child processes too), appended as it happens, a
#                                            header line per run
#   <root>/<id>/.retain.claim-000001.json    run 1's claim, created exclusively (one creator
#                                            wins): host, pid, lease, versions, command line,
#                                            execution settings, what it resumes or takes over
#   <root>/<id>/.retain.heartbeat-000001.json  run 1's latest heartbeat, replaced by its owner
#   <root>/<id>/.retain.end-000001.json      how run 1 ended: finished | failed | died, created
#                                            exclusively (by its owner, or by whoever took over)
#   <root>/<id>/.retain.finished.json        the component is finished (launch() is a no-op);
#                                            a hard link to the end of the run that finished it
#   <root>/<id>/.retain.events.jsonl         append-only: claimed, resumed, takeover, finished...
#   <root>/<id>/.retain.failures.jsonl       append-only: every failure (type, message,
#                                            traceback, time, run, host, pid)
#   <root>/<id>/metrics.jsonl                append-only: the metrics its runs logged
#                                            (`Component.log_metrics`), buffered and written
#                                            at least every second and at the run's end, one
#                                            line per run of calls with the same names:
#                                            ``[names, steps, times, values]`` (values call by
#                                            call); a torn last line is ignored
#   <root>/<id>/.retain.metrics-last.json    the last value of each metric (a JSON object,
#                                            like summary.json), replaced atomically at each
#                                            write of metrics.jsonl: what the index reads
#   <root>/<id>/.retain.submissions.jsonl    append-only: each hand-over to a batch system
#                                            (Slurm), written by the launcher at submission:
#                                            time, execution (module, class), job (``123`` or
#                                            ``123_4``), script, log; `retain.status` asks the
#                                            scheduler about the latest
#   <root>/.retain/slurm/<time>-<token>/     the Slurm execution's batch scripts, task specs
#                                            and job logs (a local storage's default folder)
#
# Runs are numbered 1, 2, 3... without gaps. Run n+1 may be claimed only when run n has ended,
# or its claim is dead (its heartbeat is older than the lease the claim declares, or its
# process is gone from this host); the exclusive create of claim n+1 is what makes exactly one
# launcher win. Times are ISO 8601 UTC ("...Z"). These are files, not a directory: creating a
# directory costs more than a whole run's bookkeeping on some file systems.

__all__ += [
    "EVENTS_FILE",
    "FAILURES_FILE",
    "FINISHED_FILE",
    "METRICS_FILE",
    "METRICS_LAST_FILE",
    "OUTPUT_LOG",
    "RUN_FORMAT",
    "RUNTIME_PREFIX",
    "SLURM_DIR",
    "SUBMISSIONS_FILE",
    "claim_file",
    "end_file",
    "heartbeat_file",
]

RUNTIME_PREFIX = RESERVED_PREFIX + "."  # ".retain."
OUTPUT_LOG = "output.log"
FINISHED_FILE = RUNTIME_PREFIX + "finished.json"
EVENTS_FILE = RUNTIME_PREFIX + "events.jsonl"
FAILURES_FILE = RUNTIME_PREFIX + "failures.jsonl"
SUBMISSIONS_FILE = RUNTIME_PREFIX + "submissions.jsonl"
#: Metrics over steps (reserved: `save_file` refuses it); their last values for the index.
METRICS_FILE = "metrics.jsonl"
METRICS_LAST_FILE = RUNTIME_PREFIX + "metrics-last.json"
RUN_FORMAT = "retain.run"
#: Under `STORAGE_META_DIR`: the folders of Slurm batch scripts.
SLURM_DIR = "slurm"


def claim_file(run: int) -> str:
    return f"{RUNTIME_PREFIX}claim-{run:06d}.json"


def heartbeat_file(run: int) -> str:
    return f"{RUNTIME_PREFIX}heartbeat-{run:06d}.json"


def end_file(run: int) -> str:
    return f"{RUNTIME_PREFIX}end-{run:06d}.json"


# -- Identity baselines -----------------------------------------------------------------------
#
# Identity leaves out the keys of a configuration whose value equals the key's *baseline*: the
# default that the storage first saw for it (see `retain._baselines`). Baselines are the
# storage's own files, shared by every machine (in the store for an object store)::
#
#   <root>/.retain/baselines/<class token>-000001.json   the baselines of one class: module,
#   <root>/.retain/baselines/<class token>-000002.json   class and a tree of values; each
#                                                        version adds keys (never changes one),
#                                                        created exclusively (one writer wins)
#   <root>/.retain/baselines/ready.json                  every record of the storage has its
#                                                        baselines here (a storage written by
#                                                        an earlier release is migrated first)
#
# `<class token>` is the first 32 hex characters of sha256("<module>:<class>"). Each record
# also keeps the tree its id was computed with (field ``baseline``), so the files can be
# rebuilt from the records.

__all__ += [
    "BASELINE_FORMAT",
    "BASELINES_READY",
    "baseline_name",
    "decode_baseline",
    "encode_baseline",
]

BASELINE_FORMAT = "retain.baseline"
BASELINES_READY = "baselines/ready.json"


def baseline_name(module: str, qualname: str, version: int) -> str:
    """The name (under ``.retain/``) of version `version` of a class's baselines."""
    import hashlib

    token = hashlib.sha256(f"{module}:{qualname}".encode("utf-8", "surrogatepass")).hexdigest()[:ID_LENGTH]
    return f"baselines/{token}-{version:06d}.json"


def encode_baseline(module: str, qualname: str, tree: dict[str, Any]) -> bytes:
    """The bytes of one version of a class's baselines."""
    payload = {"format": BASELINE_FORMAT, "module": module, "class": qualname, "baseline": tree}
    text: str = _value_encoder()(payload)
    return (text + "\n").encode("utf-8")


def decode_baseline(data: bytes, where: str, module: str, qualname: str) -> dict[str, Any]:
    """The tree of one version of a class's baselines.

    Raises:
        RecordError: the file is damaged, or belongs to another class.
    """
    import json

    try:
        payload = json.loads(data)
    except ValueError:
        payload = None
    if (
        not isinstance(payload, dict)
        or payload.get("format") != BASELINE_FORMAT
        or not isinstance(payload.get("baseline"), dict)
    ):
        raise RecordError(
            f"{where!r} is not a retain baseline file; it records the defaults that identities "
            "of this storage leave out: restore it from a backup, or delete every file of "
            "<storage>/.retain/baselines/ to rebuild them from the records"
        )
    if payload.get("module") != module or payload.get("class") != qualname:
        raise RecordError(
            f"{where!r} holds the baselines of {payload.get('module')}:{payload.get('class')}, "
            f"not of {module}:{qualname} (a hash collision, or a file copied by hand)"
        )
    return payload["baseline"]  # type: ignore[no-any-return]
