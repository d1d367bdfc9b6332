"""Bare handlers: the floor of a Python ASGI stack for the update endpoint's load benchmark.

Each app parses the request body (an update check: the plugin's info object; stats: an array of
events or one event) and answers a fixed JSON, which is all an endpoint must do at the least.
``bench/serve_load.py`` runs them under uvicorn with 1 and 2 workers:

    uvicorn --app-dir bench serve_bare:starlette_msgspec --loop uvloop --http httptools

- ``raw_msgspec`` / ``raw_json``: a plain ASGI callable, no framework.
- ``starlette_msgspec`` / ``starlette_json``: Starlette routing, ``Request.body()``, ``Response``.

msgspec decodes into typed structs (what serve's request models do); ``json`` into dicts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from starlette.requests import Request

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

UP_TO_DATE = (
    b'{"error":"no_new_version_available","message":"No new version available","kind":"up_to_date"}'
)
STATS_OK = b'{"status":"ok"}'
BAD = b'{"error":"invalid_request","message":"bad body","kind":"failed"}'


class Info(msgspec.Struct, forbid_unknown_fields=False):
    """The fields of the plugin's info object that an update check reads."""

    platform: str
    device_id: str
    app_id: str
    version_build: str
    version_name: str
    defaultChannel: str = ""  # noqa: N815 - the plugin's spelling
    custom_id: str = ""
    version_code: str = ""
    version_os: str = ""
    plugin_version: str = ""
    is_emulator: bool = False
    is_prod: bool = True


class Event(Info, forbid_unknown_fields=False):
    """One stats event: the info object and what happened."""

    action: str = ""
    old_version_name: str = ""
    timestamp: int | None = None


_info = msgspec.json.Decoder(Info)
_events = msgspec.json.Decoder(list[Event] | Event)


def _msgspec_check(body: bytes) -> bytes:
    try:
        _info.decode(body)
    except msgspec.DecodeError:
        return BAD
    return UP_TO_DATE


def _msgspec_stats(body: bytes) -> bytes:
    try:
        _events.decode(body)
    except msgspec.DecodeError:
        return BAD
    return STATS_OK


def _json_check(body: bytes) -> bytes:
    try:
        info = json.loads(body)
    except ValueError:
        return BAD
    return UP_TO_DATE if isinstance(info, dict) and "device_id" in info else BAD


def _json_stats(body: bytes) -> bytes:
    try:
        events = json.loads(body)
    except ValueError:
        return BAD
    return STATS_OK if isinstance(events, list | dict) else BAD


def _raw(check: Callable[[bytes], bytes], stats: Callable[[bytes], bytes]) -> object:
    headers = [(b"content-type", b"application/json")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        answer = stats(body) if scope["path"] == "/stats" else check(body)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


def _starlette(check: Callable[[bytes], bytes], stats: Callable[[bytes], bytes]) -> Starlette:
    async def updates(request: Request) -> Response:
        return Response(check(await request.body()), media_type="application/json")

    async def stats_route(request: Request) -> Response:
        return Response(stats(await request.body()), media_type="application/json")

    return Starlette(
        routes=[
            Route("/updates", updates, methods=["POST"]),
            Route("/stats", stats_route, methods=["POST"]),
        ]
    )


raw_msgspec = _raw(_msgspec_check, _msgspec_stats)
raw_json = _raw(_json_check, _json_stats)
starlette_msgspec = _starlette(_msgspec_check, _msgspec_stats)
starlette_json = _starlette(_json_check, _json_stats)
