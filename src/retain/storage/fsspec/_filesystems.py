"""The fsspec backends behind `FsspecStorage`: making a filesystem for a URL (with the install
hint when its package is missing), finding its endpoint, probing it, naming its local cache,
and reading a refused conditional write."""

from __future__ import annotations

import hashlib
import os
import re
import socket
from urllib.parse import urlsplit

from ..._errors import StorageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Which extra installs the backend of a protocol.
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


def defaults(protocol: str) -> dict[str, Any]:
    if protocol in ("s3", "s3a"):
        # Listings must never come from a cache: a commit elsewhere has to be seen.
        return {"use_listings_cache": False}
    if protocol in ("gs", "gcs"):
        return {"use_listings_cache": False}
    return {}


def filesystem(protocol: str, url: str, options: dict[str, Any]) -> Any:
    extra = _EXTRAS.get(protocol, "fsspec")
    try:
        import fsspec  # optional: the extra of the store installs it
    except ImportError:
        raise ImportError(
            f"storage {url} needs fsspec, which is not installed: pip install 'retain[{extra}]'"
        ) from None
    try:
        return fsspec.filesystem(protocol, **options)
    except ImportError as exc:
        raise ImportError(
            f"storage {url} needs the fsspec backend for {protocol!r} ({exc}): "
            f"pip install 'retain[{extra}]'"
        ) from None
    except ValueError as exc:
        if "Protocol not known" in str(exc) or "not known" in str(exc):
            raise StorageError(f"no fsspec backend knows {protocol!r} URLs ({url})") from None
        raise


def endpoint_of(fs: Any, options: dict[str, Any]) -> str | None:
    endpoint = options.get("endpoint_url") or getattr(fs, "endpoint_url", None)
    if not endpoint:
        client = getattr(fs, "client_kwargs", None) or {}
        endpoint = client.get("endpoint_url")
    if not endpoint and getattr(fs, "protocol", None) and "s3" in fs.protocol:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return str(endpoint) if endpoint else None


def cache_name(protocol: str, path: str, endpoint: str | None) -> str:
    digest = hashlib.sha256(f"{protocol}://{path}\n{endpoint or ''}".encode()).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{protocol}-{path}").strip("-.")[:60]
    return f"{readable}-{digest}"


def probe_endpoint(endpoint: str, url: str) -> None:
    """Connect to the endpoint's port once, with a short timeout: an endpoint that is down
    then fails in a second, not after the backend's retries."""
    parts = urlsplit(endpoint)
    host = parts.hostname
    if not host:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=3.0).close()
    except OSError as exc:
        raise StorageError(
            f"cannot reach the object store of {url} at {endpoint} ({exc.strerror or exc}); "
            "is the server running? Check endpoint_url (or AWS_ENDPOINT_URL)"
        ) from None


def precondition(exc: BaseException) -> str | None:
    """"exists" when `exc` says a conditional write found the key; "conflict" when the store
    asks to retry a conditional write that raced another; else None."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, FileExistsError):
            return "exists"
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            error = response.get("Error") or {}
            code = str(error.get("Code", ""))
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "412") or status == 412:
                return "exists"
            if code == "ConditionalRequestConflict" or status == 409:
                return "conflict"
        if getattr(seen, "code", None) == 412:  # gcsfs HttpError
            return "exists"
        seen = seen.__cause__ or seen.__context__
    return None
