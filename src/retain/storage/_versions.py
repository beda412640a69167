"""The versions of the files an object store's local cache holds, so that a cached file is
read only while the store holds that same version (another machine may save it again).

Kept per interface in `<cache>/.retain/versions/<id>.json` (name -> version); a version is the
object's size and ETag, or what the store has instead. A lost or missing entry only costs
fetching the file again.
"""

from __future__ import annotations

import json
import os

from .._errors import StorageError
from .._fs import atomic_write, makedirs, read_small_file
from .layout import STORAGE_META_DIR

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


def record_versions(cache: str, id: str, versions: dict[str, str]) -> None:
    """Record the versions of files of `id` just fetched or uploaded."""
    try:
        path = _path(cache, id)
        makedirs(os.path.dirname(path))
        data = json.dumps({**read_versions(cache, id), **versions}, sort_keys=True).encode()
        atomic_write(path, lambda handle: handle.write(data))
    except (OSError, StorageError):
        pass  # only a cache: the file is fetched again when next read
