"""The ASGI application of `retain ui`: JSON endpoints over `Source`, the page, and its
scripts (plotly.js from the `plotly` package).

Every route is a GET: the application never writes to the storage. With a token, each
request must carry it (``Authorization: Bearer T``, the ``retain_ui_token`` cookie, or
``?token=T``, which also sets the cookie).
"""

from __future__ import annotations

import hmac
import json
import os
import shlex

from .._errors import InterfaceNotFoundError, RetainError, UnsafePathError
from ._data import IMAGE_TYPES, Source
from .._settings import current_storage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ..storage.base import Storage

__all__ = ["COOKIE", "create_app"]

COOKIE = "retain_ui_token"
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def plotly_js() -> str:
    """The path of ``plotly.min.js`` shipped inside the `plotly` package."""
    try:
        import plotly
    except ImportError as exc:
        raise ImportError("retain ui draws charts with plotly: pip install 'retain[ui]'") from exc
    path = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")
    if not os.path.isfile(path):
        raise ImportError(f"the plotly package has no {path}: pip install --force-reinstall plotly")
    return path


class _TokenGate:
    """Refuses requests without the token (401), in constant time."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request
        from starlette.responses import JSONResponse

        request = Request(scope)
        given = [
            request.headers.get("authorization", "").removeprefix("Bearer ").strip(),
            request.cookies.get(COOKIE, ""),
            request.query_params.get("token", ""),
        ]
        if not any(hmac.compare_digest(text.encode(), self.token.encode()) for text in given if text):
            response = JSONResponse(
                {"error": "this retain ui needs its token: open the URL it printed (with ?token=...), "
                 "or send 'Authorization: Bearer TOKEN'"},
                status_code=401,
            )
            await response(scope, receive, send)
            return
        if request.query_params.get("token") and request.cookies.get(COOKIE) != self.token:
            async def send_with_cookie(message: Any) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    headers.append((b"set-cookie", cookie.encode()))
                    message = {**message, "headers": headers}
                await send(message)

            await self.app(scope, receive, send_with_cookie)
            return
        await self.app(scope, receive, send)


def create_app(
    storage: Storage | str | None = None, *, token: str | None = None, loopback: bool = True, host: str | None = None
) -> Any:
    """The Starlette application of `retain ui` over `storage` (default: the storage in
    force).

    Args:
        token: when given, every request must carry it.
        loopback: served on a loopback address only: requests whose Host header names
            another host than `host` or a loopback name are refused (a web page elsewhere
            cannot reach it through DNS rebinding).
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    store = current_storage(storage)
    source = Source(store)
    plotly_path = plotly_js()

    def answer(function: Any) -> Any:
        """A JSON endpoint: retain's errors as ``{"error": message}`` (404 for what is not
        found, 400 for bad input), never a blank page."""

        def endpoint(request: Request) -> Response:
            try:
                value = function(request)
            except UnsafePathError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            except InterfaceNotFoundError as exc:
                return JSONResponse({"error": str(exc)}, status_code=404)
            except (RetainError, ValueError, ImportError, LookupError, TypeError) as exc:
                return JSONResponse({"error": " ".join(str(exc).split()) or type(exc).__name__}, status_code=400)
            if isinstance(value, Response):
                return value
            return Response(
                json.dumps(value, ensure_ascii=False, allow_nan=False),
                media_type="application/json",
                headers={"cache-control": "no-store"},
            )

        return endpoint

    def where_of(request: Request) -> list[str]:
        expressions = list(request.query_params.getlist("where"))
        text = request.query_params.get("filter", "").strip()
        if text:
            try:
                expressions += shlex.split(text)
            except ValueError as exc:
                raise ValueError(f"cannot read the filter {text!r}: {exc} (quote values with spaces)") from None
        return expressions

    def number(request: Request, name: str, default: int) -> int:
        text = request.query_params.get(name)
        if text is None or text == "":
            return default
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name} must be a whole number; got {text!r}") from None

    def classes(request: Request) -> Any:
        return {"storage": store.url, "classes": source.classes()}

    def rows(request: Request) -> Any:
        sort = request.query_params.get("sort") or None
        return source.table(
            request.path_params["ref"], where_of(request), sort,
            number(request, "offset", 0), number(request, "limit", 100),
        )

    def values(request: Request) -> Any:
        keys = [key for key in request.query_params.get("keys", "").split(",") if key]
        if not keys:
            raise ValueError("values needs keys: ?keys=lr,summary.loss")
        return source.values(request.path_params["ref"], keys, where_of(request))

    def result(request: Request) -> Any:
        return source.detail(request.path_params["id"])

    def preview(request: Request) -> Any:
        return source.preview(request.path_params["id"], request.path_params["name"])

    def raw_file(request: Request) -> Any:
        name = request.path_params["name"]
        id = request.path_params["id"]
        path = source.local_file(id, name)
        head = source.file_bytes(id, name, 1024)
        extension = os.path.splitext(name.lower())[1]
        media = IMAGE_TYPES.get(extension, "text/plain; charset=utf-8" if b"\x00" not in head else "application/octet-stream")
        headers = {
            "x-content-type-options": "nosniff",
            # A stored file is data, never a page of this site: no scripts, even in an SVG.
            "content-security-policy": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox",
            "cache-control": "no-store",
        }
        if request.query_params.get("download"):
            headers["content-disposition"] = f"attachment; filename*=UTF-8''{_quote(os.path.basename(name))}"
        if path is not None:  # streamed from the disk, not read into memory
            return FileResponse(path, media_type=media, headers=headers)
        return Response(source.file_bytes(id, name), media_type=media, headers=headers)

    def output(request: Request) -> Any:
        text = request.query_params.get("offset")
        offset = None if text in (None, "") else number(request, "offset", 0)
        return source.output(request.path_params["id"], offset)

    def series(request: Request) -> Any:
        return source.series(request.path_params["id"])

    def compare(request: Request) -> Any:
        ids = [part for part in request.query_params.get("ids", "").split(",") if part.strip()]
        return source.compare(ids)

    def live(request: Request) -> Any:
        return source.live()

    def page(request: Request) -> Response:
        return FileResponse(os.path.join(STATIC, "index.html"), headers={"cache-control": "no-store"})

    def static(name: str, media: str) -> Any:
        def endpoint(request: Request) -> Response:
            return FileResponse(os.path.join(STATIC, name), media_type=media, headers={"cache-control": "no-cache"})

        return endpoint

    def plotly(request: Request) -> Response:
        return FileResponse(plotly_path, media_type="text/javascript", headers={"cache-control": "max-age=86400"})

    routes = [
        Route("/", page),
        Route("/static/app.js", static("app.js", "text/javascript")),
        Route("/static/app.css", static("app.css", "text/css")),
        Route("/static/plotly.min.js", plotly),
        Route("/api/classes", answer(classes)),
        Route("/api/classes/{ref}/rows", answer(rows)),
        Route("/api/classes/{ref}/values", answer(values)),
        Route("/api/results/{id}", answer(result)),
        Route("/api/results/{id}/preview/{name:path}", answer(preview)),
        Route("/api/results/{id}/files/{name:path}", answer(raw_file)),
        Route("/api/results/{id}/output", answer(output)),
        Route("/api/results/{id}/series", answer(series)),
        Route("/api/compare", answer(compare)),
        Route("/api/live", answer(live)),
    ]
    middleware = [Middleware(GZipMiddleware, minimum_size=2048, compresslevel=1)]
    if loopback:
        names = LOOPBACK_NAMES + ([host.strip("[]"), f"[{host.strip('[]')}]"] if host else [])
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=names))
    if token:
        middleware.insert(0, Middleware(_TokenGate, token=token))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.source = source
    return app


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")

