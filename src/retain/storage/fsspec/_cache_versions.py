"""The versions of the files an object store's local cache holds, so that a cached file is
read only while the store holds that same version (another machine may save it again).

Kept per interface in `<cache>/.retain/versions/<id>.json` (name -> version); a version is the
object's size and ETag, or what the store has instead. A lost or missing entry only costs
fetching the file again; an entry that names a version other than the cached copy's would
make the cache read the wrong file, so an upload records the version it makes itself (on S3,
the ETag computed from the file it sends), never the one a later read of the store finds:
another machine may have saved the file again in between.
"""

from __future__ import annotations

import hashlib
import json
import os

from ..._errors import StorageError
from ..._fs import atomic_write, makedirs, read_small_file
from ..layout import STORAGE_META_DIR

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Under `STORAGE_META_DIR` of a cache: one JSON file per interface.
VERSIONS_DIR = "versions"


def version_of(info: dict[str, Any]) -> str:
    """What changes when an object is written again: its size and ETag (S3), hash (GCS), or
    time (other stores), from fsspec's ``info()``."""
    for field in ("ETag", "etag", "md5Hash", "generation", "mtime", "LastModified", "created"):
        value = info.get(field)
        if value is not None:
            return f"{info.get('size')}:{value}"
    return f"{info.get('size')}:"


#: The part size s3fs uploads with when it does not compute one (its ``calculate_chunksize``).
_S3_PART_SIZE = 50 * 2**20


def s3_upload_version(path: str, *, single: bool = False) -> str:
    """The version (as `version_of` gives it from a HEAD) of the object that s3fs makes when
    it uploads the local file `path`: its size and ETag, the MD5 of the content for a single
    PUT (or with `single`), the MD5 of the parts' MD5s and the number of parts for a multipart
    upload. If the store computes ETags otherwise (encrypted with a KMS key, for example), the
    version never matches and the file is fetched again when read: slower, never wrong."""
    size = os.path.getsize(path)
    try:
        from s3fs.core import calculate_chunksize  # optional: only S3 stores have it

        part = int(calculate_chunksize(size))
    except (ImportError, AttributeError, TypeError):
        part = _S3_PART_SIZE
    with open(path, "rb") as handle:
        if single or size < min(5 * 2**30, 2 * part):  # s3fs sends one PUT
            digest = hashlib.md5(usedforsecurity=False)
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
            return f'{size}:"{digest.hexdigest()}"'
        parts = []
        for chunk in iter(lambda: handle.read(part), b""):
            parts.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    return f'{size}:"{hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest()}-{len(parts)}"'


def _path(cache: str, id: str) -> str:
    return os.path.join(cache, STORAGE_META_DIR, VERSIONS_DIR, f"{id}.json")


def read_versions(cache: str, id: str) -> dict[str, str]:
    """The recorded versions of the cached files of `id`."""
    data = read_small_file(_path(cache, id))
    try:
        found = json.loads(data) if data else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def record_versions(cache: str, id: str, versions: dict[str, str | None]) -> None:
    """Record the versions of files of `id` just fetched or uploaded (None: forget the version
    of a file, which is then fetched again when read)."""
    try:
        path = _path(cache, id)
        makedirs(os.path.dirname(path))
        merged = {**read_versions(cache, id), **versions}
        data = json.dumps({k: v for k, v in merged.items() if v is not None}, sort_keys=True).encode()
        atomic_write(path, lambda handle: handle.write(data))
    except (OSError, StorageError):
        pass  # only a cache: the file is fetched again when next read
