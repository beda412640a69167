"""The calls `FsspecStorage` makes to its object store, held by it as an `ObjectStore`: the
one-time reachability check, and read, look up, create if absent, replace, append and
upload, each failing with a `StorageError` that names the store."""

from __future__ import annotations

import os
import threading
import time

from ..._errors import StorageError
from ._filesystems import precondition, probe_endpoint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ObjectStore"]

#: The in-memory store lives in one process: a lock makes its create-if-absent atomic.
_memory_lock = threading.Lock()


class ObjectStore:
    """Calls to the objects (by key: ``bucket/prefix/...``) of one store through its fsspec
    filesystem `fs`.

    Args:
        url: the storage's URL, to name the store in errors.
        bucket: checked to exist on first use ("" where the store has none).
        endpoint: probed on first use, when given.
        exclusive_create: whether ``pipe_file(..., mode="create")`` is an atomic put-if-absent
            here; where False, `create` checks for the key and then writes it.
    """

    def __init__(
        self, fs: Any, *, url: str, protocol: str, bucket: str, endpoint: str | None, exclusive_create: bool
    ) -> None:
        self.fs = fs
        self.url = url
        self.protocol = protocol
        self.bucket = bucket
        self.endpoint = endpoint
        self.exclusive_create = exclusive_create
        self.s3 = protocol in ("s3", "s3a")
        # Small objects in one request (s3fs otherwise asks for the size first).
        self.small: dict[str, Any] = {"max_concurrency": 1} if self.s3 else {}
        self._checked = False

    def where(self) -> str:
        return f"{self.url}" + (f" (endpoint {self.endpoint})" if self.endpoint else "")

    def check(self) -> None:
        """Once per store and process: fail fast, and clearly, when the store cannot be
        reached or the bucket does not exist (instead of slow retries, or a missing bucket
        read as an empty storage)."""
        if self._checked:
            return
        if self.endpoint:
            probe_endpoint(self.endpoint, self.url)
        if self.bucket:
            try:
                if self.s3:
                    self.fs.call_s3("head_bucket", Bucket=self.bucket)
                else:
                    self.fs.info(self.bucket)
            except FileNotFoundError:
                raise StorageError(
                    f"bucket {self.bucket!r} does not exist in {self.where()}; create it first "
                    "(for example with the store's console or CLI), or fix the URL"
                ) from None
            except PermissionError as exc:
                raise StorageError(
                    f"access to bucket {self.bucket!r} in {self.where()} was denied ({exc}); check "
                    "the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for S3)"
                ) from exc
            except Exception as exc:
                raise self.error(f"reach bucket {self.bucket!r}", exc) from exc
        self._checked = True

    def error(self, doing: str, exc: BaseException) -> StorageError:
        return StorageError(f"could not {doing} in {self.where()}: {type(exc).__name__}: {exc}")

    def cat(self, key: str) -> bytes | None:
        """The bytes of object `key`, None when there is none."""
        self.check()
        try:
            data = self.fs.cat_file(key, **self.small)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except Exception as exc:
            raise self.error(f"read {key}", exc) from exc
        return bytes(data)

    def info(self, key: str) -> dict[str, Any] | None:
        """fsspec's ``info()`` of an object (size, ETag...), None when there is none."""
        self.check()
        try:
            if self.s3:  # one HEAD (info() also lists, to tell a missing key from a directory)
                bucket, _, name = key.partition("/")
                head = self.fs.call_s3("head_object", Bucket=bucket, Key=name)
                return {
                    "type": "file", "size": head.get("ContentLength"), "ETag": head.get("ETag"),
                    "LastModified": head.get("LastModified"),
                }
            info = self.fs.info(key)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self.error(f"look up {key}", exc) from exc
        return info if isinstance(info, dict) and info.get("type", "file") == "file" else None

    def exists(self, key: str) -> bool:
        return self.info(key) is not None

    def create(self, key: str, data: bytes) -> bool:
        """Write `key` unless it exists; False when it did (the store's put-if-absent)."""
        self.check()
        if not self.exclusive_create:
            if self.exists(key):
                return False
            self.put(key, data)
            return True
        for attempt in range(8):
            try:
                if self.protocol == "memory":
                    with _memory_lock:
                        self.fs.pipe_file(key, data, mode="create")
                else:
                    self.fs.pipe_file(key, data, mode="create")
                return True
            except Exception as exc:
                verdict = precondition(exc)
                if verdict == "exists":
                    return False
                if verdict == "conflict" and attempt < 7:
                    # S3 answers 409 to a conditional write racing another one: retry, and the
                    # loser then gets 412.
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise self.error(f"write {key}", exc) from exc
        raise AssertionError("unreachable")

    def put(self, key: str, data: bytes) -> None:
        """Write `key`, over any object there."""
        try:
            self.fs.pipe_file(key, data)
        except Exception as exc:
            raise self.error(f"write {key}", exc) from exc

    def append(self, key: str, data: bytes) -> None:
        """Add `data` at the end of object `key` (created if missing). An object store cannot
        append: the object is read and written back, on S3 only if nobody wrote it in between
        (``If-Match`` its ETag; again if somebody did), elsewhere unconditionally."""
        for attempt in range(20):
            info = self.info(key) if self.s3 else None
            etag = info.get("ETag") if info is not None else None
            if self.s3 and info is None:
                if self.create(key, data):
                    return
                continue  # created meanwhile by another writer: append to theirs
            current = self.cat(key) or b""
            if etag is None:
                self.put(key, current + data)
                return
            bucket, _, name = key.partition("/")
            try:
                self.fs.call_s3("put_object", Bucket=bucket, Key=name, Body=current + data, IfMatch=etag)
                return
            except Exception as exc:
                if precondition(exc) is None:
                    raise self.error(f"append to {key}", exc) from exc
            # Another writer won this round; a random pause keeps racing writers out of step.
            time.sleep(0.01 * (attempt + 1) * (0.5 + os.urandom(1)[0] / 255))
        raise StorageError(f"could not append to {key} in {self.where()}: too many concurrent writers")

    def upload(self, paths: list[str], keys: list[str], what: str) -> None:
        """Send local files `paths` to `keys` (`what` names them in errors)."""
        try:
            if len(paths) == 1:
                self.fs.put_file(paths[0], keys[0])
            else:
                self.fs.put(paths, keys)  # concurrently, for async stores
        except Exception as exc:
            raise self.error(f"upload {what}", exc) from exc
