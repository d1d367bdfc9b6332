"""The I/O around the pure root changes: read the newest root, store N+1, keep channels working.

Writes, in order, only after every check passed: ``<app>/root/<N+1>.root.json`` (create-only,
never overwritten), then for each channel whose manifest the new root no longer accepts a
re-signed manifest (same content, next version, the new key; SPEC §6.4) and its pointer, then
the project's root.json file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from otaseal import dsse, trust
from otaseal.errors import (
    ConflictError,
    InputError,
    KeyMaterialError,
    MetadataError,
    NotFoundError,
    StoreError,
)
from otaseal.model import ChannelManifest, Root, channel_role
from otaseal.operations import earlier_roots, read_head
from otaseal.rootkeys import proposal as proposals
from otaseal.rootkeys.changes import AddKey, Change, RotateChannel, next_root, parse_expiry
from otaseal.rootkeys.expiry import ExpiryNote, expiry_notes
from otaseal.store import manifest_key, pointer_key, root_key

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from otaseal.crypto import PublicKey
    from otaseal.operations import Project

DEFAULT_EXPIRES_IN = "365d"


# --- keys ----------------------------------------------------------------------------------------
def resolve_signer(project: Project, ref: str, role: str) -> dsse.Signer:
    """A local key or a remote signer (``kms://``, ``vault-transit://``), as for channel keys."""
    from otaseal.secrets import resolve_signer as resolve  # noqa: PLC0415

    return resolve(ref, role=role, mask=project.mask, env=project.environment)


def resolve_public(project: Project | None, ref: str, role: str) -> PublicKey:
    """The public key behind ``ref``: a public key file, a private key, or a remote signer."""
    from otaseal import crypto  # noqa: PLC0415
    from otaseal.secrets import describe_ref, resolve_bytes  # noqa: PLC0415
    from otaseal.secrets import resolve_signer as resolve  # noqa: PLC0415

    mask = project.mask if project else (lambda _: None)
    env = project.environment if project else os.environ
    if ref.strip().split("://", 1)[0] in {"kms", "vault-transit"}:
        return resolve(ref, role=role, mask=mask, env=env).public
    data = resolve_bytes(ref, what=f"the new key for {role}", mask=mask, env=env)
    source = describe_ref(ref)
    try:
        if b"PRIVATE KEY" in data:
            return crypto.load_signing_key(data, source=source).public
        try:
            return crypto.load_public_key(data, source=source)
        except InputError:
            if data.lstrip().startswith(b"-----BEGIN"):
                raise
            return crypto.load_signing_key(data, source=source).public
    except KeyMaterialError as exc:
        raise KeyMaterialError(
            exc.what,
            expected=exc.expected,
            fix=exc.fix
            or f"make a key for {role} with `otaseal keygen --kind signing --out keys/NEW.pem` "
            "(ECDSA P-256, or Ed25519 with --algorithm ed25519); nothing was written",
        ) from None


# --- the newest root -----------------------------------------------------------------------------
def newest_root(project: Project) -> tuple[Root, bytes]:
    """The project's root.json, walked forward through the store exactly as a device would."""
    root, data = project.root()
    for _hop in range(trust.MAX_ROOT_HOPS * 1000):
        try:
            nxt, _ = project.store.read(root_key(project.app, root.version + 1))
        except NotFoundError:
            return root, data
        root, data = trust.verify_root_update(root, nxt), nxt
    raise StoreError("the store holds more root versions than otaseal walks")  # pragma: no cover


# --- channels ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChannelResign:
    """A channel whose current manifest the new root no longer accepts, and who re-signs it."""

    channel: str
    manifest: ChannelManifest
    pointer_etag: str | None
    signer: dsse.Signer


def plan_channels(
    project: Project,
    olds: Sequence[Root],
    new: Root,
    channel_signers: Mapping[str, dsse.Signer],
) -> list[ChannelResign]:
    """Channels to re-sign under ``new``; refuses (before any write) when no key can.

    ``olds`` are the roots a pointer may still be signed under, newest first; the channel's
    content is read under the first one that accepts its pointer.
    """
    plans = []
    for channel in new.channels():
        try:
            data, _ = project.store.read(pointer_key(project.app, channel))
        except NotFoundError:
            continue
        try:
            trust.verify_channel_signature(new, data, channel=channel)
            continue
        except MetadataError:
            pass
        signed_under = next((r for r in olds if _accepts(r, data, channel)), None)
        if signed_under is None:
            continue  # no root of ours signed it: not ours to re-sign (`otaseal audit` says more)
        head = read_head(replace(project, _root=(signed_under, b"")), channel)
        assert head.manifest is not None  # noqa: S101 - the pointer exists
        plans.append(
            ChannelResign(
                channel,
                head.manifest,
                head.pointer_etag,
                _channel_signer(project, new, channel, channel_signers),
            )
        )
    return plans


def _accepts(root: Root, data: bytes, channel: str) -> bool:
    try:
        trust.verify_channel_signature(root, data, channel=channel)
    except MetadataError:
        return False
    return True


def _channel_signer(
    project: Project, new: Root, channel: str, given: Mapping[str, dsse.Signer]
) -> dsse.Signer:
    role = new.role(channel_role(channel))
    signer = given.get(channel)
    if signer is None and channel in project.config.keys:
        try:
            signer = resolve_signer(project, project.config.key_ref(channel), channel)
        except InputError:
            signer = None
    if signer is None or signer.keyid not in role.keyids or role.threshold != 1:
        raise InputError(
            f"the new root no longer accepts the {channel} manifest, and no key at hand can "
            f"re-sign it for channel:{channel} (keys {', '.join(k[:12] for k in role.keyids)}, "
            f"threshold {role.threshold})",
            expected="the channel's new private key or remote signer",
            fix=f"pass it: `--channel-key {channel}=KEYREF` (or use `otaseal root "
            f"rotate-channel {channel} KEYREF`); nothing was written",
        )
    return signer


def _resign(project: Project, plan: ChannelResign, notice: Callable[[str], None]) -> None:
    now = project.clock()
    old = plan.manifest
    manifest = replace(
        old,
        version=old.version + 1,
        issued=now,
        expires=project.expiry(now),
        event=f"re-signed with the new {plan.channel} key",
    )
    envelope = dsse.sign(dsse.PAYLOAD_TYPE_CHANNEL, manifest.to_payload(), [plan.signer]).to_json()
    app = project.app
    if not project.store.create(manifest_key(app, plan.channel, manifest.version), envelope):
        raise StoreError(
            f"{plan.channel} manifest v{manifest.version} appeared while the key was rotated",
            fix=f"someone else changed {plan.channel}; run `otaseal root resign-channels` to "
            "finish",
        )
    try:
        project.store.replace(pointer_key(app, plan.channel), envelope, etag=plan.pointer_etag)
    except ConflictError:
        raise StoreError(
            f"the {plan.channel} pointer moved while the key was rotated",
            fix="run `otaseal root resign-channels` to finish",
        ) from None
    notice(
        f"{plan.channel}: re-signed manifest v{old.version} as v{manifest.version} with the new "
        f"key {plan.signer.keyid[:12]} (same releases; devices forget {plan.channel}'s stored "
        "version when the role's keys change, SPEC §6.4)"
    )


# --- publishing ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RootResult:
    """What a root command did."""

    root: Root
    path: str  # the store key of the new root
    resigned: tuple[str, ...] = ()


def _write_root_file(path: Path, data: bytes) -> None:
    """Replace the project's root.json atomically (the store copy is the one devices read)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".root.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {path} ({exc.strerror})") from None


def _refuse_gap(project: Project, newest: int) -> None:
    """A root above the chain (v3 stored without v2) is not ours to build on: stop and say so."""
    prefix = f"{project.app}/root/"
    stray = sorted(
        int(name)
        for key in project.store.list(prefix)
        if (name := key.removeprefix(prefix).removesuffix(".root.json")).isdigit()
        and int(name) > newest
    )
    if stray:
        raise StoreError(
            f"the store holds root v{stray[0]} but no v{newest + 1}: a gap in the root chain "
            "that otaseal did not write (devices never skip a version, so they ignore it)",
            expected=f"no root above v{newest} before v{newest + 1} is published",
            fix=f"find out who wrote {prefix}{stray[0]}.root.json and remove it from the store, "
            "then publish again; nothing was written",
        )


def publish(
    project: Project,
    proposal: proposals.Proposal,
    *,
    channel_signers: Mapping[str, dsse.Signer] | None = None,
    notice: Callable[[str], None] = lambda _: None,
) -> RootResult:
    """Store the next root once both thresholds are met, then keep every channel readable."""
    current = newest_root(project)
    if proposal.previous.to_payload() != current[0].to_payload():
        raise InputError(
            f"the proposal makes root v{proposal.next.version} out of v"
            f"{proposal.previous.version}, but the store's newest root is v{current[0].version}",
            expected=f"a proposal for v{current[0].version + 1}, made from the newest root",
            fix="make a new proposal with `otaseal root propose` and sign it again",
        )
    data = proposals.verify_ready(proposal)
    _refuse_gap(project, current[0].version)
    plans = plan_channels(project, [current[0]], proposal.next, channel_signers or {})
    key = root_key(project.app, proposal.next.version)
    if not project.store.create(key, data):
        raise StoreError(
            f"{key} already exists: someone published root v{proposal.next.version} meanwhile",
            fix="nothing was overwritten; make a new proposal from the newest root",
        )
    notice(f"stored root v{proposal.next.version} at {key}")
    for plan in plans:
        _resign(project, plan, notice)
    _write_root_file(project.config.root, data)
    notice(f"updated {project.config.root} to root v{proposal.next.version}")
    project._root = (proposal.next, data)  # noqa: SLF001 - the project now trusts the new root
    return RootResult(proposal.next, key, tuple(p.channel for p in plans))


def _refuse_recipient(project: Project, public: PublicKey) -> None:
    """The app's decryption key ships inside every app: it must never sign anything."""
    from otaseal.secrets import describe_ref  # noqa: PLC0415

    keys = []
    with contextlib.suppress(InputError):  # unreadable recipients are publish's business
        keys = project.recipients()
    for ref, key in zip(project.config.recipients, keys, strict=False):
        if key.keyid == public.keyid:
            raise KeyMaterialError(
                f"the key {public.keyid[:12]} is the app's decryption key "
                f"({describe_ref(ref)}), which ships inside every app",
                expected="a signing key made for this role",
                fix="make one with `otaseal keygen --kind signing --out keys/NEW.pem`",
            )


def make_proposal(
    project: Project, change: Change, *, expires_in: str | None
) -> proposals.Proposal:
    """The unsigned proposal for ``change`` on top of the store's newest root."""
    current, data = newest_root(project)
    if isinstance(change, (AddKey, RotateChannel)):
        _refuse_recipient(project, change.public)
    now = project.clock()
    expires = parse_expiry(expires_in or DEFAULT_EXPIRES_IN, now)
    return proposals.propose(current, data, next_root(current, change, now=now, expires=expires))


def apply(
    project: Project,
    change: Change,
    *,
    expires_in: str | None = None,
    key_refs: Sequence[str] = (),
    channel_signers: Mapping[str, dsse.Signer] | None = None,
    notice: Callable[[str], None] = lambda _: None,
) -> RootResult:
    """Propose, sign with the keys at hand and publish in one step, when they are enough."""
    proposal = make_proposal(project, change, expires_in=expires_in)
    refs = list(key_refs) or [project.config.key_ref("root")]
    for ref in refs:
        signer = resolve_signer(project, ref, "root")
        if signer.keyid in proposals.signing_keys(proposal) or key_refs:
            proposal = proposals.add_signature(proposal, signer)
    counted = proposals.tally(proposal)
    if not counted.ready:
        raise InputError(
            f"root v{proposal.next.version} needs more root signatures than the keys at hand "
            f"give: {counted.describe()}",
            expected="a threshold of the old and of the new root keys",
            fix="sign offline: `otaseal root propose ... --out next.root.json`, then "
            "`otaseal root sign next.root.json --key KEYREF` on each key holder's machine, then "
            "`otaseal root publish next.root.json`; or pass every key with --key; nothing was "
            "written",
        )
    signers = dict(channel_signers or {})
    result = publish(project, proposal, channel_signers=signers, notice=notice)
    if isinstance(change, RotateChannel):
        notice(
            f"the old {change.channel} key is revoked: point keys.{change.channel} in "
            f"{project.config.path.name} (or the CI secret) at the new key"
        )
    return result


def rotation_key(project: Project, ref: str, channel: str) -> tuple[PublicKey, dsse.Signer | None]:
    """The new channel key's public half, and a signer when ``ref`` can sign (not a .pub.pem)."""
    public = resolve_public(project, ref, f"channel:{channel}")
    try:
        signer = resolve_signer(project, ref, channel)
    except InputError:
        return public, None
    return public, signer


def channel_signers(project: Project, refs: Mapping[str, str]) -> dict[str, dsse.Signer]:
    """``--channel-key CH=KEYREF`` options resolved to signers."""
    return {channel: resolve_signer(project, ref, channel) for channel, ref in refs.items()}


def resign_channels(
    project: Project,
    *,
    channel_signers: Mapping[str, dsse.Signer] | None = None,
    notice: Callable[[str], None] = lambda _: None,
) -> RootResult:
    """Finish an interrupted root change (re-sign what the newest root no longer accepts).

    Also brings the project's root.json up to the store's newest root.
    """
    newest, data = newest_root(project)
    olds = [r for r in earlier_roots(project) if r.version < newest.version]
    plans = plan_channels(project, olds, newest, channel_signers or {})
    for plan in plans:
        _resign(project, plan, notice)
    if project.root()[1] != data:
        _write_root_file(project.config.root, data)
        notice(f"updated {project.config.root} to root v{newest.version}")
        project._root = (newest, data)  # noqa: SLF001 - the project now trusts the newest root
    if not plans:
        notice("every channel's manifest is signed by the keys of the newest root")
    return RootResult(
        newest, root_key(project.app, newest.version), tuple(p.channel for p in plans)
    )


# --- status --------------------------------------------------------------------------------------
def status_notes(
    project: Project, manifests: Mapping[str, ChannelManifest | None]
) -> tuple[ExpiryNote, ...]:
    """Expiry warnings and failures for the newest root and the served manifests, by the clock."""
    root, _ = newest_root(project)
    return expiry_notes(root, manifests, now=project.clock())
