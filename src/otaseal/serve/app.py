"""Starlette routes for the plugin's endpoints, and the one mapping from failures to JSON.

Every reply is a JSON object (or the bare array ``listChannels`` wants): the plugin can only log
Starlette's plain-text 404/405/500 as a generic ``response_error``. Bodies come from
``wire.error_body``; tracebacks and ``diagnostics()`` go to the server log only.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from otaseal.errors import Error, InputError, StoreError
from otaseal.serve import wire
from otaseal.serve.service import OverloadedError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from starlette.requests import Request
    from starlette.types import Receive, Scope, Send

    from otaseal.serve.service import Service

log = logging.getLogger("otaseal.serve")
JSON = "application/json"
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=JSON, headers=headers)


async def read_body(request: Request) -> bytes:
    """The body, refused past ``wire.MAX_BODY`` before it is all read or parsed."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > wire.MAX_BODY:
        raise wire.RequestError("payload_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > wire.MAX_BODY:
            raise wire.RequestError("payload_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _not_allowed(_: Request) -> Response:
    """Methods other than POST on /updates (POST never reaches the router, see HotPath)."""
    return _json(wire.error_body("method_not_allowed"), 405, {"Allow": "POST"})


def _guarded(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """A failure that is not ours becomes the JSON 500 here, traceback to the log.

    Starlette's handler for ``Exception`` re-raises after answering, and uvicorn then drops the
    connection; answering in the route keeps the 500 a normal reply.
    """

    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except (Error, HTTPException):
            raise
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return _json(wire.error_body("server_error"), 500)

    return guarded


def create_app(service: Service) -> HotPath:
    """The ASGI app around ``service``; the lifespan starts and stops its stats writer."""

    async def stats(request: Request) -> Response:
        service.record(wire.parse_stats(await read_body(request)))
        return _json(wire.STATS_OK)

    async def channel_self(request: Request) -> Response:
        if request.method == "GET":
            query = wire.parse_channel_query(dict(request.query_params))
            return _json(wire.channel_list(service.list_channels(query.app_id)))
        body = wire.parse_channel(await read_body(request))
        if request.method == "POST":
            return _json(wire.set_channel_reply(service.set_channel(body)))
        channel, status, allow_set = service.get_channel(body)
        return _json(wire.channel_reply(channel, status=status, allow_set=allow_set))

    async def healthz(_: Request) -> Response:
        return _json(msgspec.json.encode(service.healthy()))

    async def bundle(request: Request) -> Response:
        path = service.bundle_path(request.path_params["app"], request.path_params["name"])
        return FileResponse(path, media_type="application/octet-stream")

    async def file_body(request: Request) -> Response:
        # Plain bytes, never Content-Encoding: the ".br" in file_name is the plugin's only
        # compression signal, and Range offsets count stored bytes.
        path = service.file_path(request.path_params["app"], request.path_params["name"])
        return FileResponse(path, media_type="application/octet-stream")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = Starlette(
        routes=[
            Route("/updates", _not_allowed, methods=["GET", "PUT", "DELETE", "PATCH", "HEAD"]),
            Route("/stats", _guarded(stats), methods=["POST"]),
            Route("/channel_self", _guarded(channel_self), methods=["GET", "POST", "PUT"]),
            Route("/healthz", _guarded(healthz), methods=["GET"]),
            Route("/bundles/{app}/{name}", _guarded(bundle), methods=["GET", "HEAD"]),
            Route("/files/{app}/{name}", _guarded(file_body), methods=["GET", "HEAD"]),
        ],
        exception_handlers={
            Error: _otaseal_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    return HotPath(app, service)


_JSON_HEADER = (b"content-type", b"application/json")


class HotPath:
    """``POST /updates`` straight on ASGI, everything else (and the lifespan) through Starlette.

    The update check is the one route under load; skipping Starlette's request object, router
    and middleware for it measured faster (see docs/BENCHMARKS.md). Same parsing, same decision,
    same error mapping as the routes.
    """

    def __init__(self, app: Starlette, service: Service) -> None:
        self.app = app
        self.service = service
        self.routes = app.routes  # for introspection, as on a Starlette app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI call."""
        if scope["type"] != "http" or scope["path"] != "/updates" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] | None = None
        try:
            request = wire.parse_update(await _receive_capped(scope, receive))
            reply = self.service.update_check(request, own_base=_scope_base(scope))
            status, body = 200, reply.to_json()
        except Error as exc:
            status, body, headers = error_reply(exc, "POST /updates")
        except Exception:
            log.exception("POST /updates failed")
            status, body = 500, wire.error_body("server_error")
        raw_headers = [_JSON_HEADER, (b"content-length", str(len(body)).encode())]
        if headers:
            raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


async def _receive_capped(scope: Scope, receive: Receive) -> bytes:
    """The request body, refused past ``wire.MAX_BODY`` before it is all read."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > wire.MAX_BODY:
            raise wire.RequestError("payload_too_large")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > wire.MAX_BODY:
            raise wire.RequestError("payload_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _scope_base(scope: Scope) -> str:
    """``scheme://host[:port]`` as the device addressed us (the Host header)."""
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope['scheme']}://{host}{scope.get('root_path', '')}"


def error_reply(exc: Error, where: str) -> tuple[int, bytes, dict[str, str] | None]:
    """The one mapping of our error families to (status, JSON body, headers).

    Refusals carry their code; store and stats trouble is 503 (the device retries); other input
    is 400; anything else of ours is 500. ``diagnostics()`` goes to the log, never the body.
    """
    if isinstance(exc, wire.RequestError):
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, OverloadedError) else None
        )
        return exc.status, exc.body(), headers
    log.warning("%s: %s", where, exc.diagnostics())
    if isinstance(exc, StoreError):
        return 503, wire.error_body("service_unavailable"), None
    if isinstance(exc, InputError):
        return 400, wire.error_body("invalid_request"), None
    return 500, wire.error_body("server_error"), None


async def _otaseal_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Error)  # noqa: S101 - registered for this type
    status, body, headers = error_reply(exc, f"{request.method} {request.url.path}")
    return _json(body, status, headers)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for this type
    code = _HTTP_CODES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "")  # noqa: PLR2004
    if not code:
        return _json(wire.error_body("invalid_request", str(exc.detail)), exc.status_code)
    return _json(wire.error_body(code), exc.status_code, dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _json(wire.error_body("server_error"), 500)
