"""The calls `FsspecStorage` makes to its object store: the one-time reachability check, and
read, look up, create if absent, replace, append and upload, each failing with a
`StorageError` that names the store."""

from __future__ import annotations

import os
import threading
import time

from .._errors import StorageError
from ._backends import precondition, probe_endpoint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: The in-memory store lives in one process: a lock makes its create-if-absent atomic.
_memory_lock = threading.Lock()


class StoreCalls:
    """What `FsspecStorage` sets up, and the calls built on it."""

    fs: Any
    protocol: str
    bucket: str
    endpoint: str | None
    supports_exclusive_create: bool
    _url: str
    _checked: bool
    _s3: bool
    _small: dict[str, Any]

    if TYPE_CHECKING:  # defined by FsspecStorage

        def local_directory(self, id: str) -> str: ...

        def _key(self, id: str, name: str | None = None) -> str: ...

    def _where(self) -> str:
        return f"{self._url}" + (f" (endpoint {self.endpoint})" if self.endpoint else "")

    def _check(self) -> None:
        """Once per storage and process: fail fast, and clearly, when the store cannot be
        reached or the bucket does not exist (instead of slow retries, or a missing bucket
        read as an empty storage)."""
        if self._checked:
            return
        if self.endpoint:
            probe_endpoint(self.endpoint, self._url)
        if self.bucket:
            try:
                if self._s3:
                    self.fs.call_s3("head_bucket", Bucket=self.bucket)
                else:
                    self.fs.info(self.bucket)
            except FileNotFoundError:
                raise StorageError(
                    f"bucket {self.bucket!r} does not exist in {self._where()}; create it first "
                    "(for example with the store's console or CLI), or fix the URL"
                ) from None
            except PermissionError as exc:
                raise StorageError(
                    f"access to bucket {self.bucket!r} in {self._where()} was denied ({exc}); check "
                    "the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for S3)"
                ) from exc
            except Exception as exc:
                raise self._error(f"reach bucket {self.bucket!r}", exc) from exc
        self._checked = True

    def _error(self, doing: str, exc: BaseException) -> StorageError:
        return StorageError(f"could not {doing} in {self._where()}: {type(exc).__name__}: {exc}")

    def _cat(self, key: str) -> bytes | None:
        self._check()
        try:
            data = self.fs.cat_file(key, **self._small)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except Exception as exc:
            raise self._error(f"read {key}", exc) from exc
        return bytes(data)

    def _info(self, key: str) -> dict[str, Any] | None:
        """fsspec's ``info()`` of an object (size, ETag...), None when there is none."""
        self._check()
        try:
            if self._s3:  # one HEAD (info() also lists, to tell a missing key from a directory)
                bucket, _, name = key.partition("/")
                head = self.fs.call_s3("head_object", Bucket=bucket, Key=name)
                return {"type": "file", "size": head.get("ContentLength"), "ETag": head.get("ETag")}
            info = self.fs.info(key)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error(f"look up {key}", exc) from exc
        return info if isinstance(info, dict) and info.get("type", "file") == "file" else None

    def _exists(self, key: str) -> bool:
        return self._info(key) is not None

    def _create(self, key: str, data: bytes) -> bool:
        """Write `key` unless it exists; False when it did (the store's put-if-absent)."""
        self._check()
        if not self.supports_exclusive_create:
            if self._exists(key):
                return False
            self._put_bytes(key, data)
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
                raise self._error(f"write {key}", exc) from exc
        raise AssertionError("unreachable")

    def _put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(key, data)
        except Exception as exc:
            raise self._error(f"write {key}", exc) from exc

    def _append(self, key: str, data: bytes) -> None:
        """Add `data` at the end of object `key` (created if missing). An object store cannot
        append: the object is read and written back, on S3 only if nobody wrote it in between
        (``If-Match`` its ETag; again if somebody did), elsewhere unconditionally."""
        for attempt in range(20):
            info = self._info(key) if self._s3 else None
            etag = info.get("ETag") if info is not None else None
            if self._s3 and info is None:
                if self._create(key, data):
                    return
                continue  # created meanwhile by another writer: append to theirs
            current = self._cat(key) or b""
            if etag is None:
                self._put_bytes(key, current + data)
                return
            bucket, _, name = key.partition("/")
            try:
                self.fs.call_s3("put_object", Bucket=bucket, Key=name, Body=current + data, IfMatch=etag)
                return
            except Exception as exc:
                if precondition(exc) is None:
                    raise self._error(f"append to {key}", exc) from exc
            # Another writer won this round; a random pause keeps racing writers out of step.
            time.sleep(0.01 * (attempt + 1) * (0.5 + os.urandom(1)[0] / 255))
        raise StorageError(f"could not append to {key} in {self._where()}: too many concurrent writers")

    def _upload(self, id: str, names: list[str]) -> None:
        directory = self.local_directory(id)
        local = [os.path.join(directory, *name.split("/")) for name in names]
        remote = [self._key(id, name) for name in names]
        try:
            if len(names) == 1:
                self.fs.put_file(local[0], remote[0])
            else:
                self.fs.put(local, remote)  # concurrently, for async stores
        except Exception as exc:
            raise self._error(f"upload the files of {id}", exc) from exc

