"""The on-disk format, in one place.

A storage is a directory tree::

    <root>/<id>/interface.json    the record: written last, atomically; its presence *is* the commit
    <root>/<id>/<files...>        files saved by the interface (before or after commit)
    <root>/<id>/.retain-tmp-*     temporaries of writes in progress (never read)

`<id>` is the 32-hex content id. A directory without `interface.json` is not committed: it is
what an uncommitted interface's `save_file` or a crashed commit leaves, and is invisible.
"""

from __future__ import annotations


from .._errors import RecordError
from ..identity import SCHEME, compute_id, is_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "RECORD_FILE",
    "RECORD_FORMAT",
    "RESERVED_PREFIX",
    "decode_record",
    "encode_record",
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
    lines = ",\n".join(f"  {encode(key)}: {encode(record[key])}" for key in sorted(record))
    return ("{\n" + lines + "\n}\n").encode("utf-8")


_encoder: Any = None


def _value_encoder() -> Any:
    # One encoder for the process: json.dumps with arguments builds a new one on every call.
    global _encoder
    if _encoder is None:
        import json

        _encoder = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode
    return _encoder


def decode_record(data: bytes, where: str, expected_id: str | None = None) -> dict[str, Any]:
    """Parse and check a record; `where` names it in errors.

    Raises:
        RecordError: the bytes are not JSON, not a retain record, from a newer scheme, or
            inconsistent (the id does not match the content or the directory).
    """
    import json

    fix = f"move {where!r} aside (nothing else is affected), or restore it from a backup"
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"record {where!r} is corrupted: not valid JSON ({exc}); {fix}") from None
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
    if record["scheme"] == SCHEME:
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
