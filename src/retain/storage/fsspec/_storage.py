"""`FsspecStorage`: the storage contract over an object store and its local cache."""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qsl, urlsplit

from ..._errors import StorageError
from ..._fs import TEMP_PREFIX, atomic_write, makedirs, temp_path_for
from ..._timestamps import now_iso
from ...identity import ID_LENGTH, is_id
from ..base import Storage
from ..layout import (
    MARKER_FORMAT,
    RECORD_FILE,
    REMOVAL_DIR,
    RESERVED_PREFIX,
    STORAGE_META_DIR,
    interface_directory,
    marker_path,
    read_marker,
    removal_area,
)
from ._cache_versions import read_versions, record_versions, s3_upload_version, version_of
from ._filesystems import cache_name, defaults, endpoint_of, filesystem
from ._store import ObjectStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

__all__ = ["CONDITIONAL_WRITE_PROTOCOLS", "URL_OPTIONS", "FsspecStorage", "default_cache_dir", "storage_from_cache"]

#: Stores whose fsspec backend makes ``pipe_file(..., mode="create")`` an atomic put-if-absent:
#: S3 (s3fs >= 2024.12, ``If-None-Match: *``) and GCS (gcsfs >= 2024.12,
#: ``ifGenerationMatch=0``). The in-memory store is made atomic here with a lock (it lives in
#: one process).
CONDITIONAL_WRITE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "memory"})
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs"})
#: Query parameters of a storage URL that are passed to the fsspec backend (never secrets:
#: the URL is written into payloads and logs; credentials come from the environment).
URL_OPTIONS = ("endpoint_url", "region_name", "anon", "requester_pays", "project")
#: Lookups `ids_with_file` has in flight at once (threads; each waits on a round trip).
_LOOKUPS = 32
#: How many candidates `iter_ids` checks one by one before it lists the whole store instead.
_CHECK_ONE_BY_ONE = 8


def default_cache_dir() -> str:
    """Where object stores are cached: ``$RETAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/retain``,
    else ``~/.cache/retain``."""
    explicit = os.environ.get("RETAIN_CACHE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "retain")


class FsspecStorage(Storage):
    """Interfaces in an object store (any fsspec URL), used through a local cache.

    Args:
        url: ``s3://bucket/prefix``, ``gs://bucket/prefix``, ``memory://name``... Query
            parameters in `URL_OPTIONS` go to the backend
            (``s3://bucket/prefix?endpoint_url=http://127.0.0.1:8333``); credentials come from
            the environment (``AWS_ACCESS_KEY_ID``...), or from `storage_options`.
        cache_dir: the directory of local caches (default `default_cache_dir()`); this
            storage's cache is a sub-directory named after the URL and endpoint.
        exclusive_create: whether the store's conditional write is atomic (default: known
            for S3, GCS and memory); where False, a commit checks for the record and then
            writes it, so two committers racing on one identity may both write it (each a
            complete record of the same identity; one of them stays).
        storage_options: passed to the fsspec backend (``key``, ``secret``...).

    Raises:
        ImportError: fsspec or the store's backend is not installed (the message says which
            extra to install).
    """

    is_remote = True

    def __init__(
        self,
        url: str,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        exclusive_create: bool | None = None,
        **storage_options: Any,
    ) -> None:
        if "://" not in url:
            raise StorageError(f"an object store URL looks like 's3://bucket/prefix'; got {url!r}")
        parts = urlsplit(url)
        protocol = parts.scheme.lower()
        options = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in URL_OPTIONS:
                raise StorageError(
                    f"unknown option {key!r} in storage URL {url!r}; the URL accepts "
                    f"{', '.join(URL_OPTIONS)} (credentials come from the environment)"
                )
            options[key] = {"true": True, "false": False}.get(value.lower(), value)
        path = (parts.netloc + parts.path).rstrip("/")
        query = "&".join(f"{k}={options[k] if not isinstance(options[k], bool) else str(options[k]).lower()}"
                         for k in sorted(options))
        self._url = f"{protocol}://{path}" + (f"?{query}" if query else "")
        self.protocol = protocol
        self.fs = filesystem(protocol, self._url, {**defaults(protocol), **options, **storage_options})
        self.root = self.fs._strip_protocol(f"{protocol}://{path}").rstrip("/")
        self.bucket = self.root.split("/", 1)[0] if protocol in _OBJECT_STORES else ""
        self.endpoint = endpoint_of(self.fs, options)
        if protocol in _OBJECT_STORES and not self.bucket:
            raise StorageError(f"storage URL {url!r} names no bucket; use {protocol}://bucket/prefix")
        self.supports_exclusive_create = (
            exclusive_create if exclusive_create is not None else protocol in CONDITIONAL_WRITE_PROTOCOLS
        )
        self.supports_runs = self.supports_exclusive_create  # claims are created put-if-absent
        self.cache_dir = os.path.abspath(os.fspath(cache_dir)) if cache_dir is not None else default_cache_dir()
        self.cache = os.path.join(self.cache_dir, cache_name(protocol, path, self.endpoint))
        #: The calls to the store (each error names it).
        self.store = ObjectStore(
            self.fs, url=self._url, protocol=protocol, bucket=self.bucket, endpoint=self.endpoint,
            exclusive_create=self.supports_exclusive_create,
        )

    # -- naming ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        where = f", endpoint {self.endpoint}" if self.endpoint else ""
        return f"FsspecStorage({self._url!r}{where})"

    def _key(self, id: str, name: str | None = None) -> str:
        return f"{self.root}/{id}" if name is None else f"{self.root}/{id}/{name}"

    # -- the two steps of a commit, and the check before the first call ---------------------

    def _check(self) -> None:
        self.store.check()

    def _upload(self, id: str, names: list[str]) -> None:
        """Send files `names` of `id` from the cache to the store."""
        directory = self.local_directory(id)
        paths = [os.path.join(directory, *name.split("/")) for name in names]
        self.store.upload(paths, [self._key(id, name) for name in names], f"the files of {id}")

    def _create(self, key: str, data: bytes) -> bool:
        """Write object `key` unless it exists (records, claims: the first writer wins)."""
        return self.store.create(key, data)

    # -- the local cache ---------------------------------------------------------------------

    def local_directory(self, id: str) -> str:
        return interface_directory(self.cache, id)

    def local_root(self) -> str:
        self._ensure_cache()
        return self.cache

    def _ensure_cache(self) -> None:
        if os.path.isfile(marker_path(self.cache)):
            return
        makedirs(os.path.join(self.cache, STORAGE_META_DIR))
        data = (json.dumps({"format": MARKER_FORMAT, "cache_of": self._url}) + "\n").encode()
        atomic_write(marker_path(self.cache), lambda handle: handle.write(data), exclusive=True)

    def _cache_record(self, id: str, data: bytes) -> None:
        """Keep a copy of a record in the cache (records never change), so that
        `Interface.from_directory` of the cached directory works."""
        path = os.path.join(self.local_directory(id), RECORD_FILE)
        if os.path.exists(path):
            return
        try:
            self._ensure_cache()
            makedirs(os.path.dirname(path))
            atomic_write(path, lambda handle: handle.write(data), exclusive=True)
        except OSError:
            pass  # only a cache

    def _local_files(self, id: str) -> list[str]:
        """The files of `id` in the cache (relative, ``/``-separated), without temporaries and
        the record."""
        directory = self.local_directory(id)
        out = []
        for parent, dirs, names in os.walk(directory):
            dirs[:] = [d for d in dirs if not d.startswith(TEMP_PREFIX)]
            for name in names:
                if name.startswith(TEMP_PREFIX):
                    continue
                relative = os.path.relpath(os.path.join(parent, name), directory).replace(os.sep, "/")
                if relative != RECORD_FILE:
                    out.append(relative)
        return sorted(out)

    # -- the contract ------------------------------------------------------------------------

    def read_record(self, id: str) -> bytes | None:
        data = self.store.cat(self._key(id, RECORD_FILE))
        if data is not None:
            self._cache_record(id, data)
        elif os.path.isfile(os.path.join(self.local_directory(id), RECORD_FILE)):
            # Cached while committed, and removed since (elsewhere): its cached files belong
            # to the removed interface, not to a new commit of the identity.
            self._drop_cache(id)
        return data

    def has_record(self, id: str) -> bool:
        return self.store.exists(self._key(id, RECORD_FILE))

    def publish_record(self, id: str, data: bytes, *, durable: bool = False) -> bool:
        # Object stores acknowledge a write once it is durable: `durable` asks nothing more.
        self._check()
        # A removal of this id that a crash interrupted left objects without a record: they
        # must not join this commit (a component's old run files would say it ran).
        marker = self.store.info(self._removal_marker(id))
        if marker is not None:
            self._finish_removal(id, marker)
        names = self._local_files(id)
        if names and self.has_record(id):
            won = False  # committed already: its files stay as they are
        else:
            if names:
                self._upload_files(id, names)
            won = self._create(self._key(id, RECORD_FILE), data)
        if won:
            self._cache_record(id, data)
        elif names:
            # The cache must not disagree with the store: the winner's files are fetched when read.
            directory = self.local_directory(id)
            for name in names:
                _unlink(os.path.join(directory, *name.split("/")))
        return won

    def _upload_files(self, id: str, names: list[str]) -> None:
        """Upload files of `id` from the cache, and record the versions these uploads make.

        The versions come from the files themselves (computed before they are sent), never
        from reading the store afterwards: another machine may have saved the same name in
        between, and its version would then pass for this cache's copy. Where the version an
        upload makes cannot be known beforehand (stores other than S3), or the upload fails,
        the recorded version is forgotten: the file is fetched again when read.
        """
        directory = self.local_directory(id)
        versions: dict[str, str | None] = {}
        for name in names:
            path = os.path.join(directory, *name.split("/"))
            try:
                versions[name] = s3_upload_version(path) if self.store.s3 else None
            except OSError:
                versions[name] = None  # the upload says what is wrong with the file
        try:
            self._upload(id, names)
        except BaseException:
            record_versions(self.cache, id, dict.fromkeys(names))
            raise
        record_versions(self.cache, id, versions)

    def iter_ids(self, prefix: str = "") -> Iterator[str]:
        candidates = list(self.iter_directories(prefix))
        if len(candidates) <= _CHECK_ONE_BY_ONE:
            for id in candidates:
                if self.has_record(id):
                    yield id
            return
        # Many: one listing of every object beats a request per candidate.
        suffix = "/" + RECORD_FILE
        try:
            keys = self.fs.find(self.root)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self.store.error("list the interfaces", exc) from exc
        wanted = set(candidates)
        start = len(self.root) + 1
        for key in keys:
            if key.endswith(suffix) and len(key) == start + ID_LENGTH + len(suffix):
                id = key[start:start + ID_LENGTH]
                if id in wanted:
                    yield id

    # -- removal -----------------------------------------------------------------------------
    #
    # The order (see retain.storage.layout, "Removal"): list the objects, write the marker,
    # delete the record (the commit point), the objects listed, the marker.

    def _removal_marker(self, id: str) -> str:
        return f"{self.root}/{STORAGE_META_DIR}/{REMOVAL_DIR}/{id}"

    def remove(self, id: str, *, durable: bool = False) -> bool:
        self._check()
        record = self._key(id, RECORD_FILE)
        keys = self._objects(id)
        committed = record in keys
        if keys:
            marker = self._removal_marker(id)
            self.store.put(marker, (now_iso() + "\n").encode())
            if committed:
                self._delete([record], f"the record of {id}")
            rest = [key for key in keys if key != record]
            if rest:
                self._delete(rest, f"the files of {id}")
            self._delete([marker], f"the removal marker of {id}")
            self._remove_directories(id, keys)
        self._drop_cache(id)
        self.finish_removals()
        return committed

    def _objects(self, id: str, detail: bool = False) -> Any:
        """The keys of the objects of `id` (with `detail`, a dict of key -> info)."""
        try:
            found = self.fs.find(self._key(id), detail=detail)
        except FileNotFoundError:
            return {} if detail else []
        except Exception as exc:
            raise self.store.error(f"list the files of {id}", exc) from exc
        if detail:
            return {self.fs._strip_protocol(key): info for key, info in found.items()}
        return [self.fs._strip_protocol(key) for key in found]

    def _delete(self, keys: list[str], what: str) -> None:
        try:
            if len(keys) == 1:
                self.fs.rm_file(keys[0])
            else:
                self.fs.rm(keys)  # in batches of up to 1,000 keys on S3
        except FileNotFoundError:
            pass  # deleted meanwhile by another remover
        except Exception as exc:
            raise self.store.error(f"delete {what}", exc) from exc

    def _remove_directories(self, id: str, keys: list[str]) -> None:
        """Remove the directories the objects of `id` leave empty, deepest first, where the
        store keeps them (the memory store, a file system; SeaweedFS's S3 lists an empty
        folder until its key is deleted, which real S3 answers as a no-op): a listing would
        take the id's directory for a commit in flight. A directory that is not empty (a new
        commit's files) stays."""
        if self.bucket and not self.store.s3:
            return
        directories = {self._key(id)}
        for key in keys:
            parent = key.rsplit("/", 1)[0]
            while parent.startswith(self._key(id) + "/"):
                directories.add(parent)
                parent = parent.rsplit("/", 1)[0]
        for directory in sorted(directories, key=len, reverse=True):
            try:
                if self.store.s3:
                    bucket, _, name = directory.partition("/")
                    self.fs.call_s3("delete_object", Bucket=bucket, Key=name)
                else:
                    self.fs.rmdir(directory)
            except Exception:
                pass  # not empty (a new commit's files), or already gone

    def _finish_removal(self, id: str, marker: dict[str, Any]) -> None:
        """Finish the removal of `id` that left `marker`: delete the objects not newer than
        the marker (never the uploads of a commit made after it), unless the record is still
        there (the removal never reached its commit point: the interface stays whole)."""
        if not self.has_record(id):
            since = _modified(marker)
            old = [
                key for key, info in self._objects(id, detail=True).items()
                if since is None or (_modified(info) or 0.0) <= since
            ]
            if old:
                self._delete(old, f"the files left by the removal of {id}")
                self._remove_directories(id, old)
        self._delete([self._removal_marker(id)], f"the removal marker of {id}")

    def finish_removals(self) -> None:
        area = f"{self.root}/{STORAGE_META_DIR}/{REMOVAL_DIR}"
        try:
            found = self.fs.find(area, detail=True)
        except FileNotFoundError:
            found = {}
        except Exception as exc:
            raise self.store.error("list the removals in progress", exc) from exc
        for key, info in found.items():
            id = key.rstrip("/").rsplit("/", 1)[-1]
            if is_id(id):
                self._finish_removal(id, info)
        super().finish_removals()  # the cache's removal area

    def unfinished_removals(self) -> list[str]:
        self._check()
        area = f"{self.root}/{STORAGE_META_DIR}/{REMOVAL_DIR}"
        try:
            keys = self.fs.find(area)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self.store.error("list the removals in progress", exc) from exc
        ids = (key.rstrip("/").rsplit("/", 1)[-1] for key in keys)
        return [id for id in ids if is_id(id)]

    def size(self, id: str) -> int:
        self._check()
        return sum(int(info.get("size") or 0) for info in self._objects(id, detail=True).values())

    def _drop_cache(self, id: str) -> None:
        """Remove this machine's cached copy of `id` (renamed away first, then deleted)."""
        directory = self.local_directory(id)
        if os.path.isdir(directory):
            area = removal_area(self.cache)
            makedirs(area)
            target = f"{area}/{id}.{os.getpid()}.{os.urandom(4).hex()}"
            try:
                os.rename(directory, target)
            except FileNotFoundError:
                pass
            else:
                import shutil  # here: `import retain` does not load shutil

                shutil.rmtree(target, ignore_errors=True)
        _unlink(os.path.join(self.cache, STORAGE_META_DIR, "versions", f"{id}.json"))

    # -- files -------------------------------------------------------------------------------

    def upload_file(self, id: str, name: str) -> None:
        self.upload_files(id, [name])

    def upload_files(self, id: str, names: list[str]) -> None:
        self._check()
        self._upload_files(id, names)

    def local_file(self, id: str, name: str, *, committed: bool) -> bool:
        path = os.path.join(self.local_directory(id), *name.split("/"))
        if not committed:  # its files are in the cache, or (adopted meanwhile) in the store
            return os.path.isfile(path) or self._fetch(id, name, self.store.info(self._key(id, name)))
        # One HEAD: another machine may have saved the file again since it was cached.
        info = self.store.info(self._key(id, name))
        if os.path.isfile(path) and (info is None or read_versions(self.cache, id).get(name) == version_of(info)):
            return True  # the stored version, or not in the store: the local copy is all there is
        return self._fetch(id, name, info)

    def has_file(self, id: str, name: str) -> bool:
        return super().has_file(id, name) or self.store.info(self._key(id, name)) is not None

    def ids_with_file(self, ids: Iterable[str], name: str) -> set[str]:
        # The cache first; then the store, asked about many ids at once: a status of a sweep
        # waits for one round trip per _LOOKUPS ids, not one per id.
        found = set()
        asked = []
        for id in ids:
            if Storage.has_file(self, id, name):
                found.add(id)
            else:
                asked.append(id)
        if len(asked) < 2:
            return found | {id for id in asked if self.store.info(self._key(id, name)) is not None}
        from concurrent.futures import ThreadPoolExecutor  # a status of many only

        with ThreadPoolExecutor(min(_LOOKUPS, len(asked))) as pool:
            infos = pool.map(lambda id: self.store.info(self._key(id, name)), asked)
            found.update(id for id, info in zip(asked, infos) if info is not None)
        return found

    def _fetch(self, id: str, name: str, info: dict[str, Any] | None) -> bool:
        """Get file `name` of `id` (whose `info` was read before) into the cache; False when
        the store has no such file. On S3 the copy is recorded under the version computed
        from its bytes when that differs from `info`'s single-part ETag (the object changed
        between the HEAD and the GET): `info`'s version would pass for this copy if the
        first content were saved back. Elsewhere the copy, newer than `info`, is fetched
        again next time."""
        if info is None:
            return False
        key = self._key(id, name)
        path = os.path.join(self.local_directory(id), *name.split("/"))
        makedirs(os.path.dirname(path))
        tmp = temp_path_for(path)
        try:
            self.fs.get_file(key, tmp)
        except (FileNotFoundError, IsADirectoryError):
            _unlink(tmp)
            return False
        except Exception as exc:
            _unlink(tmp)
            raise self.store.error(f"fetch {key}", exc) from exc
        if not os.path.isfile(tmp):  # some backends make nothing for a missing key
            return False
        version = version_of(info)
        if self.store.s3 and "-" not in str(info.get("ETag")):  # an MD5: what the bytes must give
            try:
                version = s3_upload_version(tmp, single=True)
            except OSError:
                pass
        os.replace(tmp, path)
        record_versions(self.cache, id, {name: version})
        return True

    def list_files(self, id: str) -> list[str]:
        if not self.has_record(id):
            return super().list_files(id)  # not committed: its files are in the cache only
        try:
            found = self.fs.find(self._key(id))
        except Exception as exc:
            raise self.store.error(f"list the files of {id}", exc) from exc
        prefix = self._key(id) + "/"
        out = []
        for key in found:
            key = self.fs._strip_protocol(key)
            name = key[len(prefix):] if key.startswith(prefix) else ""
            if name and not any(part.startswith((TEMP_PREFIX, RESERVED_PREFIX)) for part in name.split("/")):
                out.append(name)
        return sorted(out)

    def stored_files(self, id: str) -> list[str]:
        prefix = self._key(id) + "/"
        out = []
        for key in self._objects(id):
            name = key[len(prefix):] if key.startswith(prefix) else ""
            if name and name != RECORD_FILE and not any(part.startswith(TEMP_PREFIX) for part in name.split("/")):
                out.append(name)
        return sorted(out)

    # -- what the index reads ----------------------------------------------------------------

    def iter_directories(self, prefix: str = "") -> Iterator[str]:
        self._check()
        try:
            entries = self.fs.ls(self.root, detail=False)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self.store.error("list the interfaces", exc) from exc
        for entry in entries:
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if len(name) == ID_LENGTH and name.startswith(prefix) and is_id(name):
                yield name

    def has_directory(self, id: str) -> bool:
        self._check()
        try:
            return bool(self.fs.ls(self._key(id), detail=False))
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self.store.error(f"look up {self._key(id)}", exc) from exc

    def read_meta(self, name: str) -> bytes | None:
        # In the store, not the cache: every machine must read the same storage files.
        return self.store.cat(f"{self.root}/{STORAGE_META_DIR}/{name}")

    def create_meta(self, name: str, data: bytes, *, durable: bool = False) -> bool:
        return self._create(f"{self.root}/{STORAGE_META_DIR}/{name}", data)

    def read_file(self, id: str, name: str) -> bytes | None:
        return self.store.cat(self._key(id, name))

    def list_folder(self, id: str, folder: str) -> list[str]:
        return self._list(self._key(id, folder), f"list {folder} of {id}")

    def list_meta(self, folder: str) -> list[str]:
        # In the store, not the cache (as read_meta).
        return self._list(f"{self.root}/{STORAGE_META_DIR}/{folder}", f"list {STORAGE_META_DIR}/{folder}")

    def _list(self, key: str, doing: str) -> list[str]:
        self._check()
        try:
            entries = self.fs.ls(key, detail=True)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self.store.error(doing, exc) from exc
        names = (
            str(entry["name"]).rstrip("/").rsplit("/", 1)[-1] for entry in entries if entry.get("type") != "directory"
        )
        return sorted(name for name in names if name and not name.startswith(TEMP_PREFIX))

    # Runtime files change: they go to the store at once, never through the cache. Object
    # stores acknowledge a write once it is durable: `durable` asks nothing more.

    def create_file(self, id: str, name: str, data: bytes, *, durable: bool = False) -> bool:
        return self._create(self._key(id, name), data)

    def replace_file(self, id: str, name: str, data: bytes, *, durable: bool = False) -> None:
        self.store.put(self._key(id, name), data)

    def append_file(self, id: str, name: str, data: bytes, *, durable: bool = False) -> None:
        self.store.append(self._key(id, name), data)

    def delete_file(self, id: str, name: str) -> None:
        self._check()
        self._delete([self._key(id, name)], f"{name} of {id}")
        _unlink(os.path.join(self.local_directory(id), *name.split("/")))
        record_versions(self.cache, id, {name: None})

    def read_files(self, items: Iterable[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        self._check()
        keys = {self._key(id, name): (id, name) for id, name in items}
        if not keys:
            return {}
        try:
            found = self.fs.cat(list(keys), on_error="omit", **self.store.small)
        except Exception as exc:
            raise self.store.error("read records", exc) from exc
        out = {}
        for key, data in found.items():
            item = keys.get(key) or keys.get(self.fs._strip_protocol(key))
            if item is not None and isinstance(data, (bytes, bytearray)):
                out[item] = bytes(data)
        return out


def _modified(info: dict[str, Any]) -> float | None:
    """When an object was last written (seconds since the epoch), from fsspec's info; None
    when the store does not say."""
    for name in ("LastModified", "mtime", "created"):
        value = info.get(name)
        stamp = getattr(value, "timestamp", None)
        if stamp is not None:
            return float(stamp())
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def storage_from_cache(root: str) -> FsspecStorage | None:
    """The object store whose local cache is `root` (from its marker), or None."""
    marker = read_marker(root)
    if marker is None or "cache_of" not in marker:
        return None
    storage = FsspecStorage(str(marker["cache_of"]), cache_dir=os.path.dirname(root))
    storage.cache = root  # credentials or endpoint given otherwise may have named it differently
    return storage
