"""The pure verification core: no clock, no files, no network.

Every function takes bytes and a reference time and returns a verified value or raises. The
device client (``otaseal.client``) does the I/O around it in the order the spec fixes.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from otaseal import dsse
from otaseal.errors import (
    ExpiredMetadataError,
    OversizeMetadataError,
    RollbackError,
)
from otaseal.model import ChannelManifest, Root, channel_role, format_time

if TYPE_CHECKING:
    from datetime import datetime

    from otaseal.model import Release

#: Largest root or manifest a device reads, before parsing.
METADATA_MAX_BYTES = 512 * 1024
#: Most root versions a device walks in one update (a bound on work an attacker can cause).
MAX_ROOT_HOPS = 32


def check_size(data: bytes, what: str) -> None:
    """Refuse metadata above the cap before any parsing."""
    if len(data) > METADATA_MAX_BYTES:
        raise OversizeMetadataError(
            f"the {what} is {len(data)} bytes",
            expected=f"at most {METADATA_MAX_BYTES} bytes",
            fix="the store serves an oversized file; check the store",
        )


def verify_trusted_root(data: bytes, *, app: str) -> Root:
    """Load the device's initial trust anchor: it must be signed by its own root threshold."""
    check_size(data, "root")
    envelope = dsse.Envelope.from_json(data)
    unverified = Root.from_payload(envelope.payload, app=app)
    _signed_by_root_role(envelope, unverified, "root")
    return unverified


def _signed_by_root_role(envelope: dsse.Envelope, root: Root, label: str) -> bytes:
    """The payload, if a threshold of ``root``'s root-role keys signed it."""
    role = root.role("root")
    return dsse.verify(
        envelope,
        payload_type=dsse.PAYLOAD_TYPE_ROOT,
        keys=root.keys,
        keyids=role.keyids,
        threshold=role.threshold,
        role=label,
    )


def verify_root_update(trusted: Root, data: bytes) -> Root:
    """Accept root ``trusted.version + 1`` only when signed by old and new root thresholds."""
    check_size(data, "root")
    envelope = dsse.Envelope.from_json(data)
    payload = _signed_by_root_role(envelope, trusted, f"root v{trusted.version} (old keys)")
    new = Root.from_payload(payload, app=trusted.app)
    _signed_by_root_role(envelope, new, f"root v{new.version} (new keys)")
    if new.version != trusted.version + 1:
        raise RollbackError(
            f"the store's root {trusted.version + 1} says it is version {new.version}",
            expected=f"version {trusted.version + 1}",
        )
    return new


def verify_not_expired(what: str, expires: datetime, now: datetime) -> None:
    """Refuse metadata whose expiry is at or before ``now``."""
    if expires <= now:
        raise ExpiredMetadataError(
            f"the {what} expired at {format_time(expires)} (now {format_time(now)})",
            expected="unexpired metadata",
            fix="re-sign it (`otaseal resign`) or check the device clock",
        )


def rotated_roles(old: Root, new: Root) -> set[str]:
    """Roles whose set of key ids or threshold changed, or that exist in one root only.

    Key ids compare as a set: a root that lists the same keys in another order has not rotated
    anything, so the channel keeps its rollback protection (SPEC §6.4).
    """
    return {
        name
        for name in set(old.roles) | set(new.roles)
        if _role_identity(old, name) != _role_identity(new, name)
    }


def _role_identity(root: Root, name: str) -> tuple[frozenset[str], int] | None:
    role = root.roles.get(name)
    return None if role is None else (frozenset(role.keyids), role.threshold)


def verify_channel_signature(root: Root, data: bytes, *, channel: str) -> ChannelManifest:
    """Size cap, signatures by the channel's role, then parse and check app, channel and spec."""
    check_size(data, "channel manifest")
    envelope = dsse.Envelope.from_json(data)
    role_name = channel_role(channel)
    role = root.role(role_name)
    payload = dsse.verify(
        envelope,
        payload_type=dsse.PAYLOAD_TYPE_CHANNEL,
        keys=root.keys,
        keyids=role.keyids,
        threshold=role.threshold,
        role=role_name,
    )
    return ChannelManifest.from_payload(payload, app=root.app, channel=channel)


def verify_channel_manifest(
    root: Root,
    data: bytes,
    *,
    channel: str,
    now: datetime,
    trusted_version: int | None,
) -> ChannelManifest:
    """Signatures first, then parse, then app/channel/spec, then version, then expiry."""
    manifest = verify_channel_signature(root, data, channel=channel)
    if trusted_version is not None and manifest.version < trusted_version:
        raise RollbackError(
            f"the store serves {channel} manifest version {manifest.version}",
            expected=f"version {trusted_version} or newer (this device already trusts "
            f"{trusted_version})",
            fix="the store or CDN serves stale metadata; devices keep their current release",
        )
    verify_not_expired(f"{channel} manifest", manifest.expires, now)
    return manifest


def rollout_bucket(app: str, channel: str, salt: str, install_id: str) -> int:
    """The device's bucket in 0..9999; a device is in a rollout when bucket < basis points."""
    digest = hashlib.sha256(
        b"rollout-v1" + _field(app) + _field(channel) + _field(salt) + _field(install_id),
    ).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def _field(text: str) -> bytes:
    # Length-prefix each field so ("ab", "c") and ("a", "bc") cannot collide.
    raw = text.encode()
    return len(raw).to_bytes(4, "big") + raw


def is_in_rollout(release: Release, *, app: str, channel: str, install_id: str) -> bool:
    """Whether this install is inside the release's rollout cohort."""
    if release.paused:
        return False
    return rollout_bucket(app, channel, release.rollout_salt, install_id) < release.rollout_bp


def pick_release(
    manifest: ChannelManifest,
    *,
    install_id: str,
    native: int | None,
    installed_sha256: str | None,
) -> Release | None:
    """The newest release this device may run, or None (stay, or nothing for this device).

    A device never moves to an older release just because it fell out of a cohort: if the release
    it runs is still listed and eligible, it keeps it unless a newer eligible one is in reach.
    """
    if manifest.builtin:
        return None
    for release in manifest.releases:
        if release.counter < manifest.security_floor:
            continue
        if not release.is_native_compatible(native):
            continue
        if release.sha256 == installed_sha256:
            return release
        if is_in_rollout(
            release, app=manifest.app, channel=manifest.channel, install_id=install_id
        ):
            return release
    return None
