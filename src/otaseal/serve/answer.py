"""The update check's decision: verified manifests + request + what the db knows -> a reply value.

Pure: no clock, no store, no database, no network. ``service.py`` gathers every input, calls
:func:`answer_update` once and acts on the result. Releases are picked only by
``trust.pick_release`` and expiry is checked by ``trust.verify_not_expired`` on every call, so the
server and the reference device cannot disagree. The fall-through is "no update".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from otaseal import trust
from otaseal.errors import ExpiredMetadataError
from otaseal.serve.wire import PLATFORMS, BuiltinReply, NoUpdate

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from otaseal.model import ChannelManifest, Release
    from otaseal.serve.db import DeviceFacts
    from otaseal.serve.wire import InfoObject, UpdateRequest


@dataclass(frozen=True, slots=True)
class Rejected:
    """A channel whose manifest failed verification (``reason`` is for the server log)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Offer:
    """Serve ``release`` from ``channel``; the caller adds the download URL.

    ``manifest``: the release has a signed file list and the device's plugin can build a bundle
    from it (the caller still needs the verified list, else it answers with the zip alone).
    """

    channel: str
    release: Release
    manifest: bool = False


#: The lowest plugin version per major that takes an encrypted manifest: the CLI refuses delta
#: uploads below 5.10.0 / 6.25.0 / 7.0.30 and signs per-file hashes only above 6.14.4
#: (capgo-protocol.md §2.3 steps 3 and 5), so no 5.x and no 6.x below 6.25.0.
MANIFEST_MINIMUM: Final = {6: (6, 25, 0), 7: (7, 0, 30)}
MANIFEST_ANY_FROM_MAJOR: Final = 8
_SEMVER = re.compile(
    r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})"
    r"(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
)


def takes_manifest(plugin_version: str) -> bool:
    """Whether a plugin of ``plugin_version`` builds an encrypted bundle from ``manifest``.

    Unknown or garbled versions get the zip: the zip works on every plugin. A pre-release of a
    minimum (``7.0.30-beta.1``) comes before it, as in semver.
    """
    match = _SEMVER.fullmatch(plugin_version)
    if match is None:
        return False
    version = (int(match[1]), int(match[2]), int(match[3]))
    if version[0] >= MANIFEST_ANY_FROM_MAJOR:
        return True
    minimum = MANIFEST_MINIMUM.get(version[0])
    if minimum is None:
        return False
    return version > minimum if match[4] else version >= minimum


@dataclass(frozen=True, slots=True)
class AppView:
    """What the server knows about one app at the moment of the check.

    ``manifests`` maps each channel the root has a role for to its verified manifest, a
    :class:`Rejected`, or None (nothing published yet). ``default_channel`` serves devices
    that name no channel ("" = none).
    """

    app: str
    manifests: Mapping[str, ChannelManifest | Rejected | None]
    default_channel: str = ""


Decision = Offer | BuiltinReply | NoUpdate


def resolve_channel(view: AppView, request: InfoObject, facts: DeviceFacts) -> str:
    """Device override (if the app still has it) > request ``defaultChannel`` > app default."""
    if facts.channel and facts.channel in view.manifests:
        return facts.channel
    return request.default_channel or view.default_channel


def native_build(request: UpdateRequest) -> int | None:
    """``version_code`` (Android versionCode, iOS CFBundleVersion) as the native build number.

    None when absent (``capgo probe`` sends none) or not a plain integer.
    """
    code = request.version_code
    return int(code) if code.isdigit() and code.isascii() else None


def is_on_builtin(request: UpdateRequest) -> bool:
    """The plugin reports its shipped bundle as the native ``version_build`` (or ``builtin``)."""
    return request.version_name in (request.version_build, "builtin")


def answer_update(
    view: AppView,
    request: UpdateRequest,
    facts: DeviceFacts,
    *,
    now: datetime,
) -> Decision:
    """The reply for one update check, in the reference's decision order."""
    channel = resolve_channel(view, request, facts)
    manifest = _usable_manifest(view, channel, now)
    if isinstance(manifest, NoUpdate):
        return manifest
    if request.platform not in PLATFORMS:
        return NoUpdate("unsupported_platform")
    if manifest.builtin:
        return NoUpdate("already_on_builtin") if is_on_builtin(request) else BuiltinReply()
    return _pick(manifest, request, facts)


def _usable_manifest(view: AppView, channel: str, now: datetime) -> ChannelManifest | NoUpdate:
    """The channel's verified, unexpired manifest, or why there is nothing to serve from it."""
    if channel not in view.manifests:
        return NoUpdate("no_channel", f"The app has no channel {channel!r}" if channel else "")
    manifest = view.manifests[channel]
    if isinstance(manifest, Rejected):
        return NoUpdate("misconfigured_channel")
    if manifest is None:
        return NoUpdate("no_new_version_available")
    try:
        trust.verify_not_expired(f"{channel} manifest", manifest.expires, now)
    except ExpiredMetadataError:
        return NoUpdate("misconfigured_channel", "The channel's signed manifest has expired")
    return manifest


def _pick(manifest: ChannelManifest, request: UpdateRequest, facts: DeviceFacts) -> Decision:
    # Versions this device reported as failed are not candidates at all, so a device never
    # loops download -> boot -> rollback on them; it may still get an older eligible release.
    candidates = (
        replace(
            manifest, releases=tuple(r for r in manifest.releases if r.label not in facts.failed)
        )
        if facts.failed
        else manifest
    )
    installed = next(
        (r.sha256 for r in candidates.releases if r.label == request.version_name), None
    )
    native = native_build(request)
    release = trust.pick_release(
        candidates, install_id=request.device_id, native=native, installed_sha256=installed
    )
    if release is None or release.label == request.version_name:
        return _nothing_new(candidates, request, native, installed, release)
    if native is None and request.version_code and _has_native_range(release):
        return NoUpdate("unknown_version_build")
    capgo = release.capgo
    if capgo is None:
        return NoUpdate("no_bundle", f"Release {release.label} has no Capgo-format bundle")
    if request.key_id != capgo.key_id and (request.key_id or request.version_os):
        # A real plugin always sends version_os, and key_id whenever it has a publicKey;
        # ``capgo probe`` sends neither, so only it is served without a key_id.
        return NoUpdate("key_id_mismatch")
    return Offer(
        manifest.channel,
        release,
        manifest=capgo.files is not None and takes_manifest(request.plugin_version),
    )


def _has_native_range(release: Release) -> bool:
    return release.native_min is not None or release.native_max is not None


def _nothing_new(
    manifest: ChannelManifest,
    request: UpdateRequest,
    native: int | None,
    installed: str | None,
    kept: Release | None,
) -> NoUpdate:
    """Nothing for this device; say "store update required" when only its native build is short.

    That is when the release picked for a device of any native build is not the one it keeps and
    needs a higher build than the device has (``breaking``: the plugin fires ``breakingAvailable``).
    """
    if native is not None:
        wanted = trust.pick_release(
            manifest, install_id=request.device_id, native=None, installed_sha256=installed
        )
        if (
            wanted is not None
            and wanted != kept
            and wanted.native_min is not None
            and wanted.native_min > native
        ):
            return NoUpdate("disable_auto_update_under_native", breaking=True, version=wanted.label)
    return NoUpdate("no_new_version_available")
