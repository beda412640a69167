"""`retain ui`: a read-only web application over a storage (``pip install 'retain[ui]'``).

`create_app` builds the ASGI application (Starlette); `serve` runs it on uvicorn. The views
and the JSON endpoints are described in docs/ui.md.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import sys

from ._app import create_app as make

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

    from ..storage.base import Storage

__all__ = ["create_app", "is_loopback", "serve"]

#: Where `retain ui` listens unless told otherwise.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


def create_app(
    storage: Storage | str | None = None, *, token: str | None = None, loopback: bool = True, host: str | None = None
) -> Any:
    """The ASGI application of `retain ui` over `storage` (see `retain.ui._app.create_app`)."""
    return make(storage, token=token, loopback=loopback, host=host)


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _warm(source: Any) -> None:
    """Answer the first queries in the background while the server starts."""
    import threading

    def run() -> None:
        try:
            source.warm()
        except Exception:  # the same error reaches the first request that asks
            pass

    threading.Thread(target=run, name="retain-ui-warm", daemon=True).start()


def serve(
    storage: Storage | str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Serve `retain ui` until interrupted, after printing its URL to `stream` (stdout).

    On a host other than loopback a token is required: `token`, or one generated and printed
    in the URL. Port 0 takes a free port (the URL printed has it).

    Raises:
        ImportError: the ``ui`` extra is not installed.
        OSError: the address cannot be bound (the port is taken).
    """
    try:
        import plotly  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ImportError(f"retain ui needs its extra ({exc}): pip install 'retain[ui]'") from exc
    loopback = is_loopback(host)
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
    app = create_app(storage, token=token, loopback=loopback, host=host)
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by the connections accepted: a response's head and body are two writes, which
    # Nagle's algorithm would hold for the client's delayed ACK (~40 ms a request on a
    # kept-alive connection).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
    url = f"http://{shown}:{bound}/" + (f"?token={token}" if token else "")
    out = stream or sys.stdout
    where = app.state.source.storage.url
    print(f"retain ui: serving {where} at {url}", file=out, flush=True)
    if not loopback:
        print("retain ui: listening beyond this machine; requests need the token in the URL above", file=out, flush=True)
    _warm(app.state.source)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
