"""Release management: promote, rollout, revert, resign, history, status (publish: ``publishing``).

Every change is a new signed channel manifest written in the store protocol's order: bundle →
versioned manifest (create-only; creating ``<version>.json`` is what claims the version) →
pointer (compare-and-swap). A loser of either race re-reads and rebuilds its change on top of the
winner's, so no release is ever lost or published twice. A crash at any step leaves the pointer
on the last complete release; the next operation on the channel moves a lagging pointer forward.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets as _random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
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
from otaseal.model import (
    FULL_ROLLOUT,
    MAX_RELEASES,
    ChannelManifest,
    Release,
    Root,
    channel_role,
)
from otaseal.store import bundle_key, capgo_key, manifest_key, pointer_key, root_key

if TYPE_CHECKING:
    from otaseal.config import Config
    from otaseal.crypto import CapgoPrivateKey, RecipientKey
    from otaseal.secrets import Masker
    from otaseal.store import Storage

LABEL_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")
MAX_ATTEMPTS = 200
Notice = Callable[[str], None]


def _quiet(value: str) -> None:
    """Default notice and mask sink: the CLI prints nothing secret, so nothing to mask."""


def now_utc() -> datetime:
    """The wall clock, at second precision (what manifests record)."""
    return datetime.now(UTC).replace(microsecond=0)


def percent_to_bp(percent: float, *, option: str = "--rollout") -> int:
    """Rollout percent (0–100, up to two decimals) to basis points; ``option`` names the flag."""
    if not 0 <= percent <= 100:  # noqa: PLR2004
        raise InputError(
            f"rollout {percent:g} is outside 0–100",
            expected="a percentage from 0 to 100, e.g. 10 or 12.5",
            fix=f"pass a value between 0 and 100, e.g. `{option} 10` for 10 % of devices",
        )
    return round(percent * 100)


def open_store(url: str, *, s3_endpoint: str | None = None, s3_lock_mode: bool = False) -> Storage:
    """A folder path or ``s3://bucket/prefix``; lock mode for S3 without conditional writes."""
    if url.startswith("s3://"):
        from otaseal.extras import load  # noqa: PLC0415
        from otaseal.store.s3 import S3Store  # noqa: PLC0415 - boto3 only when needed

        load("boto3", needed_for=f"the store {url}")

        return S3Store(url, endpoint_url=s3_endpoint, lock_mode=s3_lock_mode)
    if "://" in url:
        raise InputError(
            f"unsupported store {url!r}",
            expected="a folder path or s3://bucket/prefix",
            fix="for plain HTTP(S) reads use `otaseal fetch --base-url`",
        )
    from otaseal.store.folder import FolderStore  # noqa: PLC0415

    return FolderStore(url)


@dataclass
class Project:
    """A configured project with its store, clock and masking hook."""

    config: Config
    store: Storage
    clock: Callable[[], datetime] = now_utc
    mask: Masker = _quiet
    env: Mapping[str, str] | None = None
    _root: tuple[Root, bytes] | None = field(default=None, repr=False)

    @property
    def app(self) -> str:
        """The app id."""
        return self.config.app

    @property
    def environment(self) -> Mapping[str, str]:
        """Where ``env:`` key references are looked up (the process environment by default)."""
        return os.environ if self.env is None else self.env

    def root(self) -> tuple[Root, bytes]:
        """The project's root.json, verified against itself."""
        if self._root is None:
            try:
                data = self.config.root.read_bytes()
            except OSError as exc:
                raise InputError(
                    f"cannot read root.json at {self.config.root} ({exc.strerror})",
                    fix="set `root:` in otaseal.yml to the project's root.json",
                ) from None
            self._root = (trust.verify_trusted_root(data, app=self.app), data)
        return self._root

    def signer(self, channel: str) -> dsse.Signer:
        """The channel's signer, checked against the keys root.json lists for the channel."""
        from otaseal.secrets import describe_ref, resolve_signer  # noqa: PLC0415

        root, _ = self.root()
        ref = self.config.key_ref(channel)
        signer = resolve_signer(ref, role=channel, mask=self.mask, env=self.environment)
        role = root.role(channel_role(channel))
        if signer.keyid not in role.keyids:
            raise KeyMaterialError(
                f"the key from {describe_ref(ref)} (key id {signer.keyid[:12]}) is not a "
                f"{channel} signing key",
                expected="one of the key ids root.json lists for channel:"
                f"{channel}: " + ", ".join(k[:12] for k in role.keyids),
                fix=f"pass the {channel} channel's key; a key of another channel cannot sign it",
            )
        return signer

    def recipients(self) -> list[RecipientKey]:
        """The app's public decryption keys (never a signing key listed in root.json)."""
        from otaseal.secrets import resolve_recipient  # noqa: PLC0415

        keys = [
            resolve_recipient(r, mask=self.mask, env=self.environment)
            for r in self.config.recipients
        ]
        for ref, key in zip(self.config.recipients, keys, strict=True):
            self._refuse_signing_key(ref, key, "recipients")
        return keys

    def _refuse_signing_key(self, ref: str, key: RecipientKey, field_name: str) -> None:
        from otaseal.secrets import describe_ref  # noqa: PLC0415

        root, _ = self.root()
        if key.keyid in root.keys:
            roles = [n for n, r in root.roles.items() if key.keyid in r.keyids]
            raise KeyMaterialError(
                f"`{field_name}` names {describe_ref(ref)}, the public key of the "
                f"{', '.join(roles) or 'root.json'} signing key",
                expected="the app's decryption public key (keys/app-decryption.pub.pem)",
                fix=f"point `{field_name}` at the .pub.pem made by `otaseal keygen --kind "
                "encryption`; devices could not decrypt bundles sealed to a signing key",
            )

    def capgo_key(self) -> CapgoPrivateKey | None:
        """The Capgo format's RSA key when ``formats`` lists capgo; refused early when missing."""
        from otaseal.errors import ConfigError  # noqa: PLC0415
        from otaseal.secrets import resolve_capgo_key  # noqa: PLC0415

        if "capgo" not in self.config.formats:
            return None
        ref = self.config.keys.get("capgo")
        if ref is None:
            raise ConfigError(
                f"{self.config.path} lists the capgo format but names no key for it",
                expected="keys.capgo set to the RSA-2048 PKCS#1 private key (file:, env:, "
                "aws-sm://, vault:// or an inline value)",
                fix="make one with `otaseal keygen --kind capgo --out keys/capgo.pem` and add "
                "`capgo: file:keys/capgo.pem` under `keys:`, or drop capgo from `formats`",
            )
        return resolve_capgo_key(ref, mask=self.mask, env=self.environment)

    def report_recipient(self) -> RecipientKey | None:
        """The CI report key's public half, if the project has one."""
        from otaseal.secrets import resolve_recipient  # noqa: PLC0415

        ref = self.config.report_recipient
        if not ref:
            return None
        key = resolve_recipient(ref, mask=self.mask, env=self.environment)
        self._refuse_signing_key(ref, key, "report_recipient")
        return key

    def expiry(self, now: datetime) -> datetime:
        """When a manifest signed now expires."""
        return now + timedelta(days=self.config.manifest_expiry_days)


# --- reading a channel -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Head:
    """A channel as publishers see it: the newest versioned manifest and the pointer's etag."""

    manifest: ChannelManifest | None
    envelope: bytes | None
    pointer_version: int | None
    pointer_etag: str | None
    served: ChannelManifest | None = None

    @property
    def version(self) -> int:
        """Newest manifest version, 0 for a channel never written."""
        return self.manifest.version if self.manifest else 0


def read_head(project: Project, channel: str) -> Head:
    """Pointer, then any versioned manifests a crashed or concurrent writer left beyond it."""
    root, _ = project.root()
    store, app = project.store, project.app
    try:
        data, etag = store.read(pointer_key(app, channel))
    except NotFoundError:
        data, etag = None, None
    manifest = trust.verify_channel_signature(root, data, channel=channel) if data else None
    served = manifest
    pointer_version = manifest.version if manifest else None
    envelope = data
    version = pointer_version or 0
    while True:
        try:
            nxt, _ = store.read(manifest_key(app, channel, version + 1))
        except NotFoundError:
            break
        manifest = trust.verify_channel_signature(root, nxt, channel=channel)
        envelope, version = nxt, version + 1
    return Head(manifest, envelope, pointer_version, etag, served)


def _advance_pointer(
    project: Project, channel: str, envelope: bytes, version: int, etag: str | None
) -> None:
    """Move the pointer to ``version`` unless something newer is already there."""
    root, _ = project.root()
    key = pointer_key(project.app, channel)
    for _attempt in range(MAX_ATTEMPTS):
        try:
            project.store.replace(key, envelope, etag=etag)
        except ConflictError:
            try:
                data, etag = project.store.read(key)
            except NotFoundError:
                etag = None
                continue
            if trust.verify_channel_signature(root, data, channel=channel).version >= version:
                return
        else:
            return
    raise StoreError(f"could not move the {channel} pointer after {MAX_ATTEMPTS} attempts")


@dataclass(frozen=True, slots=True)
class Change:
    """The result of one channel change."""

    channel: str
    manifest: ChannelManifest
    noop: bool
    previous: Release | None = None
    healed: bool = False


def change_channel(
    project: Project,
    channel: str,
    build: Callable[[Head], ChannelManifest | None],
    signer: dsse.Signer,
) -> Change:
    """Claim the next version with ``build``'s manifest, retrying on every lost race."""
    for _attempt in range(MAX_ATTEMPTS):
        head = read_head(project, channel)
        previous = head.manifest.current if head.manifest else None
        manifest = build(head)
        if manifest is None:
            if head.manifest is None or head.envelope is None:
                raise StoreError(f"nothing to do on the empty channel {channel}")
            healed = head.pointer_version != head.version
            if healed:
                _advance_pointer(project, channel, head.envelope, head.version, head.pointer_etag)
            return Change(channel, head.manifest, noop=True, previous=previous, healed=healed)
        envelope = dsse.sign(dsse.PAYLOAD_TYPE_CHANNEL, manifest.to_payload(), [signer]).to_json()
        if not project.store.create(manifest_key(project.app, channel, manifest.version), envelope):
            continue
        _advance_pointer(project, channel, envelope, manifest.version, head.pointer_etag)
        return Change(channel, manifest, noop=False, previous=previous)
    raise StoreError(
        f"gave up on {channel} after {MAX_ATTEMPTS} lost races",
        fix="too many writers at once; re-run the command",
    )


def _next_manifest(
    project: Project,
    head: Head,
    channel: str,
    *,
    event: str,
    releases: Sequence[Release],
    builtin: bool = False,
) -> ChannelManifest:
    now = project.clock()
    floor = head.manifest.security_floor if head.manifest else 0
    return ChannelManifest(
        app=project.app,
        channel=channel,
        version=head.version + 1,
        issued=now,
        expires=project.expiry(now),
        releases=tuple(releases)[:MAX_RELEASES],
        security_floor=floor,
        builtin=builtin,
        event=event,
    )


def ensure_roots(project: Project) -> None:
    """Make sure the store has the project's root.json (devices walk roots from the store)."""
    root, data = project.root()
    project.store.create(root_key(project.app, root.version), data)


def _channel_manifest(project: Project, channel: str) -> ChannelManifest | None:
    return read_head(project, channel).manifest


def _new_salt() -> str:
    return _random.token_hex(16)


# --- labels ------------------------------------------------------------------------------------
def check_label(label: str) -> str:
    """A release label people read, e.g. 1.4.2."""
    if not LABEL_RE.fullmatch(label):
        raise InputError(
            f"label {label!r} is not allowed",
            expected="1–64 characters of letters, digits, '.', '+', '_' and '-', e.g. 1.4.2",
            fix="pass a version such as `--label 1.4.2`",
        )
    return label


def find_release(releases: Sequence[Release], ref: str, channel: str) -> Release | None:
    """A release by label, digest or unique digest prefix; an ambiguous label is an error."""
    named = {r.sha256: r for r in releases if r.label == ref}
    if len(named) > 1:
        raise InputError(
            f"the label {ref!r} names {len(named)} different builds on {channel}: "
            + ", ".join(r.short for r in named.values()),
            expected="a reference that names one release",
            fix="name the release by its digest (at least 8 hex digits) instead of its label",
        )
    if named:
        return next(iter(named.values()))
    exact = [r for r in releases if r.sha256 == ref]
    if exact:
        return exact[0]
    if len(ref) >= 8:  # noqa: PLR2004 - shortest digest prefix people may type
        hits = {r.sha256: r for r in releases if r.sha256.startswith(ref)}
        if len(hits) == 1:
            return next(iter(hits.values()))
    return None


# --- promote, rollout, revert, resign ----------------------------------------------------------
def _require_release(manifest: ChannelManifest | None, channel: str, ref: str | None) -> Release:
    if manifest is None or not manifest.releases:
        raise InputError(
            f"channel {channel} has no release yet",
            expected="a channel with at least one published release",
            fix=f"publish to {channel} first (`otaseal publish DIST --channel {channel}`) or "
            f"promote a release into it (`otaseal promote --from CHANNEL --to {channel}`)",
        )
    release = manifest.current if ref is None else find_release(manifest.releases, ref, channel)
    if release is None:
        listed = ", ".join(r.short for r in manifest.releases) or "none (it serves the builtin)"
        raise InputError(
            f"release {ref!r} is not on {channel}" if ref else f"{channel} serves no release now",
            expected=f"a label or digest of a release on {channel}: {listed}",
            fix=f"pick one of those, or publish it to {channel} first",
        )
    return release


def promote(
    project: Project, *, source: str, target: str, ref: str | None = None, rollout: float = 100.0
) -> Change:
    """The same bundle bytes (by digest) become the newest release of ``target``."""
    project.config.check_channel(source)
    project.config.check_channel(target)
    if source == target:
        raise InputError(f"`--from` and `--to` are both {source}", fix="promote to another channel")
    basis_points = percent_to_bp(rollout)
    signer = project.signer(target)
    release = _require_release(_channel_manifest(project, source), source, ref)
    if not project.store.exists(bundle_key(project.app, release.sha256)):
        raise StoreError(
            f"the bundle of {release.short} is missing from the store", fix="republish the release"
        )
    if release.capgo is not None and not project.store.exists(
        capgo_key(project.app, release.capgo.sha256)
    ):
        raise StoreError(
            f"the Capgo artifact of {release.short} is missing from the store",
            fix="republish the release",
        )

    def build(head: Head) -> ChannelManifest | None:
        listed = head.manifest.releases if head.manifest else ()
        current = head.manifest.current if head.manifest else None
        if (
            current is not None
            and current.sha256 == release.sha256
            and (current.rollout_bp == basis_points and not current.paused)
        ):
            return None
        entry = release.with_rollout(basis_points)
        if current is None or current.sha256 != release.sha256:
            entry = replace(entry, rollout_salt=_new_salt())
        else:
            entry = replace(entry, rollout_salt=current.rollout_salt)
        rest = [r for r in listed if r.sha256 != release.sha256]
        return _next_manifest(
            project,
            head,
            target,
            releases=(entry, *rest),
            event=f"promote {release.label} from {source}",
        )

    return change_channel(project, target, build, signer)


def set_rollout(
    project: Project,
    *,
    channel: str,
    percent: float | None = None,
    pause: bool = False,
    resume: bool = False,
    expect_version: int | None = None,
    note: str = "",
) -> Change:
    """Change the current release's rollout: a percentage, pause, or resume.

    With ``expect_version`` (``guard``) the change applies only on top of that manifest version:
    if anyone signed a newer one since the caller read the channel, it is refused, not rebased.
    """
    project.config.check_channel(channel)
    if sum((percent is not None, pause, resume)) != 1:
        raise InputError("rollout needs exactly one of `--percent`, `--pause` or `--resume`")
    basis_points = percent_to_bp(percent, option="--percent") if percent is not None else None
    signer = project.signer(channel)

    def build(head: Head) -> ChannelManifest | None:
        verify_head_unmoved(head, channel, expect_version)
        current = _require_release(head.manifest, channel, None)
        assert head.manifest is not None  # noqa: S101 - checked above
        if basis_points is not None:
            updated, event = (
                current.with_rollout(basis_points, paused=current.paused),
                (f"rollout {current.label} to {basis_points / 100:g} %"),
            )
        else:
            updated, event = (
                replace(current, paused=pause),
                (f"{'pause' if pause else 'resume'} {current.label}"),
            )
        if updated == current:
            return None
        return _next_manifest(
            project,
            head,
            channel,
            event=f"{event} ({note})" if note else event,
            releases=(updated, *head.manifest.releases[1:]),
        )

    return change_channel(project, channel, build, signer)


def verify_head_unmoved(head: Head, channel: str, expected: int | None) -> None:
    """Refuse a change computed from an older head (two guards never take two steps at once)."""
    if expected is not None and head.version != expected:
        raise ConflictError(
            f"{channel} moved from manifest version {expected} to {head.version} while this run "
            "was deciding (another guard, release or rollout change signed first)",
            expected=f"version {expected} still current when the change is signed",
            fix="nothing was signed; run guard again to decide on the new state",
        )


def _history_release(project: Project, channel: str, ref: str) -> Release | None:
    """A release that left the manifest, by reference; the newest copy of each build."""
    seen: dict[str, Release] = {}
    for manifest in reversed(history(project, channel)):
        for release in manifest.releases:
            seen.setdefault(release.sha256, release)
    return find_release(list(seen.values()), ref, channel)


def revert(
    project: Project,
    *,
    channel: str,
    to: str | None = None,
    expect_version: int | None = None,
    note: str = "",
) -> Change:
    """A newer manifest whose newest release is an older one, or the app's builtin build."""
    project.config.check_channel(channel)
    signer = project.signer(channel)
    suffix = f" ({note})" if note else ""

    def build(head: Head) -> ChannelManifest | None:
        verify_head_unmoved(head, channel, expect_version)
        manifest = head.manifest
        if manifest is None or (not manifest.releases and not manifest.builtin):
            raise InputError(
                f"channel {channel} has no release to revert", fix=f"publish to {channel} first"
            )
        if to == "builtin":
            if manifest.builtin:
                return None
            return _next_manifest(
                project,
                head,
                channel,
                releases=manifest.releases,
                builtin=True,
                event="revert to builtin" + suffix,
            )
        current = manifest.current
        if to is None:
            candidates = manifest.releases[1:] if current is not None else manifest.releases
            if not candidates:
                raise InputError(
                    f"{channel} has no earlier release to revert to",
                    expected="a channel with at least two releases",
                    fix="name one with `--to LABEL`, or `--to builtin` for the app's own build",
                )
            target = candidates[0]
        else:
            found = find_release(manifest.releases, to, channel) or _history_release(
                project, channel, to
            )
            if found is None:
                raise InputError(
                    f"release {to!r} was never on {channel}",
                    fix=f"see `otaseal history --channel {channel}`",
                )
            target = found
        if current is not None and target.sha256 == current.sha256:
            return None
        index = next(
            (i for i, r in enumerate(manifest.releases) if r.sha256 == target.sha256), None
        )
        older = manifest.releases[index + 1 :] if index is not None else manifest.releases
        entry = target.with_rollout(FULL_ROLLOUT)
        return _next_manifest(
            project,
            head,
            channel,
            releases=(entry, *older),
            event=f"revert to {target.label}{suffix}",
        )

    return change_channel(project, channel, build, signer)


def resign(project: Project, *, channel: str) -> Change:
    """Same content, a new version and expiry (for a scheduled job)."""
    project.config.check_channel(channel)
    signer = project.signer(channel)

    def build(head: Head) -> ChannelManifest | None:
        if head.manifest is None:
            raise InputError(
                f"channel {channel} has nothing to re-sign yet", fix=f"publish to {channel} first"
            )
        return _next_manifest(
            project,
            head,
            channel,
            releases=head.manifest.releases,
            builtin=head.manifest.builtin,
            event="resign",
        )

    return change_channel(project, channel, build, signer)


# --- reading -----------------------------------------------------------------------------------
def history(project: Project, channel: str) -> list[ChannelManifest]:
    """Every versioned manifest of ``channel``, oldest first, each verified.

    A manifest signed before a key rotation verifies with the root of its time: any root the
    store proves the project's root came from (``earlier_roots``), so revert and history keep
    working after ``otaseal root rotate-channel``.
    """
    project.config.check_channel(channel)
    roots = earlier_roots(project)
    prefix = f"{project.app}/channels/{channel}/"
    versions = sorted(
        int(name)
        for key in project.store.list(prefix)
        if (name := key.rsplit("/", 1)[-1].removesuffix(".json")).isdigit()
    )
    found: dict[int, bytes | ChannelManifest] = {}
    for version in versions:
        data, _ = project.store.read(manifest_key(project.app, channel, version))
        try:
            found[version] = trust.verify_channel_signature(roots[0], data, channel=channel)
        except MetadataError:
            found[version] = data
    # Older roots vouch only for versions below the first one the current keys signed: a
    # revoked key that signs a manifest after the rotation is not history.
    first_current = min((v for v, m in found.items() if not isinstance(m, bytes)), default=None)
    out = []
    for version, entry in found.items():
        if not isinstance(entry, bytes):
            out.append(entry)
            continue
        older = roots[1:] if first_current is None or version < first_current else []
        out.append(_verify_with_any(roots[0], older, entry, channel))
    return out


def earlier_roots(project: Project) -> list[Root]:
    """The project's root, then each older one in the store that signed its successor.

    Each older root must verify against itself and sign the next one as a device checks a root
    update (SPEC §6.3), so a forged old root cannot bring in keys of its own.
    """
    root, data = project.root()
    chain = [root]
    for version in range(root.version - 1, 0, -1):
        try:
            older_data, _ = project.store.read(root_key(project.app, version))
            older = trust.verify_trusted_root(older_data, app=project.app)
            trust.verify_root_update(older, data)
        except (MetadataError, NotFoundError):
            break
        chain.append(older)
        data = older_data
    return chain


def _verify_with_any(
    current: Root, older: Sequence[Root], data: bytes, channel: str
) -> ChannelManifest:
    """Verified by the first of ``older`` that accepts it; else the current root's error."""
    for root in older:
        with contextlib.suppress(MetadataError):
            return trust.verify_channel_signature(root, data, channel=channel)
    return trust.verify_channel_signature(current, data, channel=channel)


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """One channel's state for ``status``."""

    channel: str
    manifest: ChannelManifest | None
    error: str | None = None
    pending_version: int | None = None


def status(project: Project) -> list[ChannelStatus]:
    """What devices get from each channel (the pointer); a newer unpointed version is pending."""
    out = []
    for channel in project.config.channels:
        try:
            head = read_head(project, channel)
        except MetadataError as exc:
            out.append(ChannelStatus(channel, None, exc.diagnostics()))
            continue
        written = head.manifest is not None  # a channel never written has nothing pending
        served = head.served.version if head.served is not None else None
        pending = head.version if written and head.version != served else None
        out.append(ChannelStatus(channel, head.served, pending_version=pending))
    return out


def release_dict(release: Release | None) -> dict[str, object] | None:
    """A release as the CLI prints it in JSON."""
    if release is None:
        return None
    return {
        "label": release.label,
        "release_counter": release.counter,
        "bundle_sha256": release.sha256,
        "bundle_size": release.length,
        "plaintext_sha256": release.plaintext_sha256,
        "plaintext_size": release.plaintext_length,
        "files": release.files,
        "unpacked_size": release.unpacked_size,
        "rollout": release.rollout_bp / 100,
        "paused": release.paused,
        "rollout_salt": release.rollout_salt,
        "native_min": release.native_min,
        "native_max": release.native_max,
        "commit": release.commit,
        "pr": release.pr,
        "capgo": release.capgo.to_dict() if release.capgo else None,
    }


_PUBLISHING = frozenset({"PublishResult", "publish", "read_index", "verify_label_unused"})


def __getattr__(name: str) -> object:
    """``operations.publish`` and friends, which moved to :mod:`otaseal.publishing`."""
    if name in _PUBLISHING:
        from otaseal import publishing  # noqa: PLC0415 - publishing imports this module

        return getattr(publishing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
