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


def _own_base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


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


def create_app(service: Service) -> Starlette:
    """The ASGI app around ``service``; the lifespan starts and stops its stats writer."""

    async def updates(request: Request) -> Response:
        update = wire.parse_update(await read_body(request))
        reply = service.update_check(update, own_base=_own_base(request))
        return _json(reply.to_json())

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

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    return Starlette(
        routes=[
            Route("/updates", _guarded(updates), methods=["POST"]),
            Route("/stats", _guarded(stats), methods=["POST"]),
            Route("/channel_self", _guarded(channel_self), methods=["GET", "POST", "PUT"]),
            Route("/healthz", _guarded(healthz), methods=["GET"]),
            Route("/bundles/{app}/{name}", _guarded(bundle), methods=["GET", "HEAD"]),
        ],
        exception_handlers={
            wire.RequestError: _request_error,
            Error: _otaseal_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )


async def _request_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, wire.RequestError)  # noqa: S101 - registered for this type
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, OverloadedError) else None
    return _json(exc.body(), exc.status, headers)


async def _otaseal_error(request: Request, exc: Exception) -> Response:
    """Our error families: store and stats trouble is 503 (the device retries), input is 400."""
    assert isinstance(exc, Error)  # noqa: S101 - registered for this type
    log.warning("%s %s: %s", request.method, request.url.path, exc.diagnostics())
    if isinstance(exc, StoreError):
        return _json(wire.error_body("service_unavailable"), 503)
    if isinstance(exc, InputError):
        return _json(wire.error_body("invalid_request"), 400)
    return _json(wire.error_body("server_error"), 500)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for this type
    code = _HTTP_CODES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "")  # noqa: PLR2004
    if not code:
        return _json(wire.error_body("invalid_request", str(exc.detail)), exc.status_code)
    return _json(wire.error_body(code), exc.status_code, dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _json(wire.error_body("server_error"), 500)
