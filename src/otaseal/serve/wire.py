"""The plugin's JSON (``@capgo/capacitor-updater`` 8.x): requests in, replies out, error codes.

Tolerant in: missing fields get defaults (``capgo probe`` omits several), unknown keys are
ignored, the body is capped before parsing, a wrong JSON type is a :class:`RequestError`.
Strict out: ``to_json()`` emits exact JSON types, never ``null``, never ``message`` in an update,
``session_key`` in snake case and always ``kind`` when there is no update.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from otaseal.errors import Error

#: Largest request body read, checked before any parsing.
MAX_BODY = 64 * 1024
UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
)
PLATFORMS = frozenset({"ios", "android"})


@dataclass(frozen=True, slots=True)
class Code:
    """One row of the error table: HTTP status, ``kind`` and a default message."""

    status: int
    kind: str
    message: str


#: Every ``error`` code serve answers with (as Kinto's ``ERRORS``). 200s are outcomes the plugin
#: acts on; the rest are refusals of the request itself.
ERRORS: dict[str, Code] = {
    # outcomes of an update check (answer.py)
    "no_new_version_available": Code(200, "up_to_date", "No new version available"),
    "already_on_builtin": Code(200, "up_to_date", "The device already runs its builtin bundle"),
    "disable_auto_update_under_native": Code(
        200, "blocked", "The release needs a newer native build from the app store"
    ),
    "key_id_mismatch": Code(
        200, "blocked", "The release is signed with another key than the app's publicKey"
    ),
    "unsupported_platform": Code(200, "blocked", "Updates are served to ios and android only"),
    "unknown_version_build": Code(
        200, "blocked", "The release has a native range and version_code is not a build number"
    ),
    "no_channel": Code(200, "failed", "The app has no such channel"),
    "misconfigured_channel": Code(
        200, "failed", "The channel's signed manifest failed verification on the server"
    ),
    "no_bundle": Code(
        200, "failed", "The release has no Capgo-format bundle; publish with formats: capgo"
    ),
    "unknown_app": Code(200, "failed", "The server does not serve this app_id"),
    # refusals of the request
    "invalid_request": Code(400, "failed", "The request body is not the plugin's JSON"),
    "invalid_device_id": Code(400, "failed", "device_id must be a UUID"),
    "mixed_apps": Code(400, "failed", "A stats batch must not mix apps"),
    "channel_not_self_assignable": Code(
        400, "failed", "Devices may not assign themselves to this channel"
    ),
    "not_found": Code(404, "failed", "No such endpoint"),
    "method_not_allowed": Code(405, "failed", "Method not allowed on this endpoint"),
    "payload_too_large": Code(413, "failed", f"The request body is over {MAX_BODY} bytes"),
    "too_many_requests": Code(429, "failed", "Too many requests"),
    "server_error": Code(500, "failed", "Internal server error"),
    "service_unavailable": Code(503, "failed", "The store or stats database is unavailable"),
}

_encoder = msgspec.json.Encoder()


def error_body(code: str, message: str | None = None, kind: str | None = None) -> bytes:
    """The one builder of error bodies: ``{"error", "message", "kind"}``."""
    row = ERRORS[code]
    return _encoder.encode(
        {"error": code, "message": message or row.message, "kind": kind or row.kind}
    )


class RequestError(Error):
    """A request the plugin's protocol refuses; ``code`` is a key of :data:`ERRORS`."""

    def __init__(self, code: str, message: str | None = None) -> None:
        row = ERRORS[code]
        super().__init__(message or row.message)
        self.code = code
        self.status = row.status
        self.message = message or row.message

    def body(self) -> bytes:
        """The JSON reply."""
        return error_body(self.code, self.message)


# --- requests -----------------------------------------------------------------------------------
class InfoObject(msgspec.Struct, frozen=True, kw_only=True):
    """The fields every plugin request carries (reference §3.1); defaults for absent ones."""

    app_id: str = ""
    device_id: str = ""
    platform: str = ""
    version_name: str = ""
    version_build: str = ""
    version_code: str = ""
    version_os: str = ""
    plugin_version: str = ""
    custom_id: str = ""
    is_emulator: bool = False
    is_prod: bool = False
    install_source: str = ""
    default_channel: str = msgspec.field(default="", name="defaultChannel")
    key_id: str = ""


class UpdateRequest(InfoObject, frozen=True, kw_only=True):
    """``POST /updates``."""


class ChannelRequest(InfoObject, frozen=True, kw_only=True):
    """``POST`` / ``PUT /channel_self`` (``channel`` only on POST)."""

    channel: str = ""


class StatsIn(InfoObject, frozen=True, kw_only=True):
    """One ``POST /stats`` event: the info object plus what happened."""

    action: str = ""
    old_version_name: str = ""
    timestamp: int | None = None
    metadata: Any = None  # opaque: never read


_update_decoder = msgspec.json.Decoder(UpdateRequest)
_channel_decoder = msgspec.json.Decoder(ChannelRequest)
_stats_decoder = msgspec.json.Decoder(list[StatsIn] | StatsIn)


def check_size(body: bytes) -> None:
    """Refuse a body over :data:`MAX_BODY` before parsing."""
    if len(body) > MAX_BODY:
        raise RequestError("payload_too_large")


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:  # noqa: ANN401 - generic
    check_size(body)
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise RequestError("invalid_request", f"Wrong JSON type: {exc}") from None
    except msgspec.DecodeError:
        raise RequestError("invalid_request", "The request body is not JSON") from None


def check_info(info: InfoObject) -> None:
    """The fields a request cannot do without: ``app_id`` and a UUID ``device_id``."""
    if not info.app_id:
        raise RequestError("invalid_request", "Missing field: app_id")
    if not info.device_id:
        raise RequestError("invalid_request", "Missing field: device_id")
    if not UUID_RE.fullmatch(info.device_id):
        raise RequestError("invalid_device_id")


def parse_update(body: bytes) -> UpdateRequest:
    """An update check; ``platform``, ``version_name`` and ``version_build`` are required too."""
    request: UpdateRequest = _decode(_update_decoder, body)
    check_info(request)
    for name in ("platform", "version_name", "version_build"):
        if not getattr(request, name):
            raise RequestError("invalid_request", f"Missing field: {name}")
    return request


def parse_channel(body: bytes) -> ChannelRequest:
    """A channel get or set."""
    request: ChannelRequest = _decode(_channel_decoder, body)
    check_info(request)
    return request


def parse_channel_query(params: dict[str, str]) -> ChannelRequest:
    """``GET /channel_self?<info object>``: booleans arrive as ``true``/``false`` strings."""
    fields = set(ChannelRequest.__struct_fields__)
    doc: dict[str, Any] = {}
    for key, value in params.items():
        name = "default_channel" if key == "defaultChannel" else key
        if name not in fields:
            continue
        doc[name] = value == "true" if name in ("is_emulator", "is_prod") else value
    request = ChannelRequest(**doc)
    check_info(request)
    return request


def parse_stats(body: bytes) -> list[StatsIn]:
    """A stats batch (JSON array, the queue) or one event (JSON object, worker-side)."""
    decoded: list[StatsIn] | StatsIn = _decode(_stats_decoder, body)
    events = decoded if isinstance(decoded, list) else [decoded]
    for event in events:
        check_info(event)
        if not event.action:
            raise RequestError("invalid_request", "Missing field: action")
    if len({e.app_id for e in events}) > 1:
        raise RequestError("mixed_apps")
    return events


# --- replies ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a manifest-mode update (capgo-protocol.md §2.1): all three always present."""

    file_name: str
    file_hash: str
    download_url: str


@dataclass(frozen=True, slots=True)
class UpdateReply:
    """An update: ``version``, ``url``, ``checksum``, ``session_key``; never ``message``.

    With ``manifest`` the plugin builds the bundle file by file and never fetches ``url``; the
    zip fields stay, since the plugin checks ``url`` first and older paths still need them.
    """

    version: str
    url: str
    checksum: str
    session_key: str
    manifest: tuple[ManifestEntry, ...] = ()

    def to_json(self) -> bytes:
        """Exact JSON types, snake-case ``session_key``; ``manifest`` only when there is one."""
        doc: dict[str, object] = {
            "version": self.version,
            "url": self.url,
            "checksum": self.checksum,
            "session_key": self.session_key,
        }
        if self.manifest:
            doc["manifest"] = [
                {"file_name": e.file_name, "file_hash": e.file_hash, "download_url": e.download_url}
                for e in self.manifest
            ]
        return _encoder.encode(doc)


@dataclass(frozen=True, slots=True)
class BuiltinReply:
    """Back to the bundle shipped in the app."""

    def to_json(self) -> bytes:
        """``{"version": "builtin"}``."""
        return b'{"version":"builtin"}'


@dataclass(frozen=True, slots=True)
class NoUpdate:
    """No update, in the plugin's classified form (``kind`` always present).

    ``breaking`` (with the release's ``version``) asks the app for a store update.
    """

    code: str
    message: str = ""
    breaking: bool = False
    version: str = ""

    def __post_init__(self) -> None:
        if not self.message:
            object.__setattr__(self, "message", ERRORS[self.code].message)

    @property
    def kind(self) -> str:
        """``up_to_date``, ``blocked`` or ``failed``, from the error table."""
        return ERRORS[self.code].kind

    def to_json(self) -> bytes:
        """``{"error", "message", "kind"[, "breaking", "version"]}``."""
        doc: dict[str, object] = {
            "error": self.code,
            "message": self.message,
            "kind": self.kind,
        }
        if self.breaking:
            doc["breaking"] = True
            doc["version"] = self.version
        return _encoder.encode(doc)


Reply = UpdateReply | BuiltinReply | NoUpdate

STATS_OK = b'{"status":"ok"}'


def channel_reply(channel: str, *, status: str, allow_set: bool) -> bytes:
    """``PUT /channel_self``: the channel the device is on."""
    return _encoder.encode({"channel": channel, "status": status, "allowSet": allow_set})


def set_channel_reply(channel: str) -> bytes:
    """``POST /channel_self`` succeeded."""
    return _encoder.encode({"status": "ok", "channel": channel})


def channel_list(entries: list[tuple[int, str, bool]]) -> bytes:
    """``GET /channel_self``: a bare array, numeric ``id``."""
    return _encoder.encode(
        [
            {"id": ident, "name": name, "public": public, "allow_self_set": True}
            for ident, name, public in entries
        ]
    )
