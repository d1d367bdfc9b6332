"""Pure: what is wrong with a store, from its list of keys and the bytes of its objects.

``otaseal audit`` (the I/O is in :mod:`otaseal.audit_run`) is what a team runs after an
incident. It checks the whole history a device could walk, not only the current state:

- roots: versions 1..N without gaps, v1 signed by itself, each next one by a threshold of the
  old and the new root keys (SPEC §6.3); the project's root.json is the store's copy; the newest
  root is not expired;
- channel manifests: versions 1..M without gaps, each signed by the channel role of some root
  version of the chain, and never by keys an earlier manifest's root had already replaced (a
  revoked key signing after the rotation); the pointer is a copy of a versioned manifest, verifies
  under the newest root, is not expired, and is the newest version;
- bundles and Capgo artifacts every manifest names: present, with the signed length and SHA-256;
- objects no manifest references (orphans) and objects otaseal does not know.

Findings are values. An ``error`` is something a device would refuse (or a sign of tampering);
a ``warning`` needs a look but breaks no device. Nothing here reads a clock, a file or a store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from otaseal import trust
from otaseal.errors import Error, OversizeMetadataError
from otaseal.formats.capgo_files import FileList, file_key, list_key
from otaseal.model import format_time
from otaseal.rootkeys.expiry import FAIL_BEFORE
from otaseal.store import bundle_key, capgo_key, manifest_key, pointer_key, root_key

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

    from otaseal.model import ChannelManifest, Root

Severity = Literal["error", "warning"]
Kind = Literal["metadata", "bundle", "store"]

_ROOT = re.compile(r"root/([1-9][0-9]{0,15})\.root\.json")
_MANIFEST = re.compile(r"channels/([a-z0-9][a-z0-9._-]{0,62})/([1-9][0-9]{0,15})\.json")
_POINTER = re.compile(r"channels/([a-z0-9][a-z0-9._-]{0,62})/manifest\.json")
_BUNDLE = re.compile(r"bundles/([0-9a-f]{64})(\.cub|\.capgo\.zip)")
_INDEX = re.compile(r"indexes/([0-9a-f]{64})\.cub")
_COUNTER = re.compile(r"counters/[1-9][0-9]{0,15}")
_NOT_AUDITED = ("stats/",)  # written by serve, not signed, read by no device
# Manifest mode's file bodies: each is checked against its signed hash by serve and the device.
_NOT_LISTED = ("capgo-files/",)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: how bad, which family (metadata, bundle, store), a stable code, the key."""

    severity: Severity
    kind: Kind
    code: str
    key: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {
            "severity": self.severity,
            "kind": self.kind,
            "code": self.code,
            "key": self.key,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Expected:
    """A bundle or Capgo artifact some manifest names: its signed length and digest."""

    key: str
    sha256: str
    length: int
    referrers: tuple[str, ...]  # e.g. "beta v3 (1.4.2)"
    served: bool  # named by a current pointer: devices may download it now


@dataclass(frozen=True, slots=True)
class Measured:
    """What the store holds at a key: bytes read (at most the signed length + 1) and digest."""

    length: int
    sha256: str | None  # None when the object is longer than the signed length


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """One channel's history as the audit saw it."""

    versions: int
    newest: int | None
    pointer: int | None


@dataclass(frozen=True, slots=True)
class MetadataAudit:
    """Findings about roots and manifests, and the objects the manifests name."""

    findings: tuple[Finding, ...]
    roots: tuple[Root, ...]  # the chain a device can walk, v1 first
    channels: dict[str, ChannelSummary]
    expected: dict[str, Expected] = field(default_factory=dict)


def parse_keys(app: str, keys: Iterable[str]) -> tuple[list[int], dict[str, list[int]], set[str]]:
    """Root versions, manifest versions per channel, and channels with a pointer."""
    roots: list[int] = []
    manifests: dict[str, list[int]] = {}
    pointers: set[str] = set()
    prefix = app + "/"
    for key in keys:
        rest = key.removeprefix(prefix)
        if m := _ROOT.fullmatch(rest):
            roots.append(int(m.group(1)))
        elif m := _MANIFEST.fullmatch(rest):
            manifests.setdefault(m.group(1), []).append(int(m.group(2)))
        elif m := _POINTER.fullmatch(rest):
            pointers.add(m.group(1))
            manifests.setdefault(m.group(1), [])
    return sorted(roots), {c: sorted(v) for c, v in manifests.items()}, pointers


def audit_metadata(
    app: str,
    keys: Sequence[str],
    objects: Mapping[str, bytes | None],
    *,
    shipped: bytes | None,
    channels: Iterable[str],
    now: datetime,
) -> MetadataAudit:
    """Roots, then every channel (configured or found in the store), then what they name.

    ``objects`` holds the bytes of every root and channel key in ``keys`` (None: over the cap).
    """
    root_versions, manifest_versions, _ = parse_keys(app, keys)
    findings, roots = check_roots(app, root_versions, objects, shipped=shipped, now=now)
    histories: dict[str, list[ChannelManifest]] = {}
    pointers: dict[str, ChannelManifest] = {}
    summaries: dict[str, ChannelSummary] = {}
    for channel in sorted(set(channels) | set(manifest_versions)):
        versions = manifest_versions.get(channel, [])
        found, manifests, pointer = check_channel(app, channel, versions, objects, roots, now=now)
        findings += found
        histories[channel] = manifests
        if pointer is not None:
            pointers[channel] = pointer
        summaries[channel] = ChannelSummary(
            len(versions), versions[-1] if versions else None, pointer.version if pointer else None
        )
    expected, named = expected_objects(app, histories, pointers)
    return MetadataAudit(tuple(findings + named), tuple(roots), summaries, expected)


# --- roots ---------------------------------------------------------------------------------------
def check_roots(
    app: str,
    versions: Sequence[int],
    objects: Mapping[str, bytes | None],
    *,
    shipped: bytes | None,
    now: datetime,
) -> tuple[list[Finding], list[Root]]:
    """The chain v1 → vN as a device walks it; stops at the first gap or broken link."""
    out: list[Finding] = []
    chain: list[Root] = []
    if not versions:
        out.append(_meta("root-missing", root_key(app, 1), "the store has no root at all"))
        return out + _check_shipped(app, chain, objects, shipped), chain
    for version in range(1, versions[-1] + 1):
        key = root_key(app, version)
        if version not in versions:
            later = [v for v in versions if v > version]
            out.append(
                _meta(
                    "root-gap",
                    key,
                    f"root v{version} is missing, so no device walks to root "
                    + ", ".join(f"v{v}" for v in later)
                    + " (each root must be signed by the one before it)",
                )
            )
            break
        data = objects.get(key)
        try:
            if data is None:
                raise OversizeMetadataError(f"{key} is larger than 512 KiB")
            root = (
                trust.verify_trusted_root(data, app=app)
                if not chain
                else trust.verify_root_update(chain[-1], data)
            )
        except Error as exc:
            out.append(_meta("root-rejected", key, f"root v{version}: {exc.diagnostics()}"))
            break
        if root.version != version:
            out.append(_meta("root-rejected", key, f"{key} says it is root v{root.version}"))
            break
        chain.append(root)
    if chain:
        out += _expiry(
            f"root v{chain[-1].version}", root_key(app, chain[-1].version), chain[-1], now
        )
    out += _check_shipped(app, chain, objects, shipped)
    return out, chain


def _check_shipped(
    app: str, chain: Sequence[Root], objects: Mapping[str, bytes | None], shipped: bytes | None
) -> list[Finding]:
    """The project's root.json (what new app builds ship) must be the store's copy."""
    if shipped is None:
        return []
    try:
        root = trust.verify_trusted_root(shipped, app=app)
    except Error as exc:
        return [_meta("shipped-root-rejected", "root.json", exc.diagnostics())]
    key = root_key(app, root.version)
    if objects.get(key) != shipped:
        return [
            _meta(
                "shipped-root-differs",
                key,
                f"the project's root.json is root v{root.version}, but the store's {key} "
                + ("is another document" if key in objects else "does not exist")
                + "; apps built with it trust a root the store does not continue",
            )
        ]
    if root.version > len(chain):
        return [
            _meta(
                "shipped-root-unreachable",
                key,
                f"the project's root.json is v{root.version}, beyond the chain devices can walk",
            )
        ]
    return []


def _expiry(what: str, key: str, doc: Root | ChannelManifest, now: datetime) -> list[Finding]:
    if doc.expires <= now:
        return [
            _meta(
                "expired",
                key,
                f"{what} expired at {format_time(doc.expires)} (audit time {format_time(now)}); "
                "devices refuse it",
            )
        ]
    if doc.expires - now <= FAIL_BEFORE:
        return [
            Finding(
                "warning",
                "metadata",
                "expires-soon",
                key,
                f"{what} expires at {format_time(doc.expires)}, in "
                f"{(doc.expires - now).days} day(s)",
            )
        ]
    return []


# --- channels ------------------------------------------------------------------------------------
def check_channel(
    app: str,
    channel: str,
    versions: Sequence[int],
    objects: Mapping[str, bytes | None],
    roots: Sequence[Root],
    *,
    now: datetime,
) -> tuple[list[Finding], list[ChannelManifest], ChannelManifest | None]:
    """Every version of one channel, then its pointer; returns findings, manifests, pointer."""
    out: list[Finding] = []
    manifests: list[ChannelManifest] = []
    epoch, epoch_version = 0, 0  # the newest root an earlier manifest needed, and which manifest
    for version in range(1, (versions[-1] if versions else 0) + 1):
        key = manifest_key(app, channel, version)
        if version not in versions:
            out.append(
                _meta(
                    "manifest-missing",
                    key,
                    f"{channel} manifest v{version} is missing between v{version - 1} and "
                    f"v{next(v for v in versions if v > version)} (deleted, or never completed)",
                )
            )
            continue
        found = _verify_manifest(objects.get(key), channel, roots, key)
        if isinstance(found, Finding):
            out.append(found)
            continue
        manifest, accepted = found
        if manifest.version != version:
            out.append(_meta("manifest-rejected", key, f"{key} says it is v{manifest.version}"))
            continue
        if max(accepted) < epoch:
            out.append(
                _meta(
                    "manifest-revoked-key",
                    key,
                    f"{channel} v{version} is signed only by keys that root v{max(accepted) + 1} "
                    f"or later no longer accepts for channel:{channel}, yet v{epoch_version} "
                    f"was already signed under root v{epoch}: a revoked key signed it after "
                    "the rotation",
                )
            )
        elif max(accepted) > epoch:
            epoch, epoch_version = max(accepted), version
        manifests.append(manifest)
    pointer = _check_pointer(app, channel, versions, objects, roots, out=out, now=now)
    return out, manifests, pointer


def _verify_manifest(
    data: bytes | None, channel: str, roots: Sequence[Root], key: str
) -> tuple[ChannelManifest, list[int]] | Finding:
    """The manifest and the root versions whose channel role accepts it."""
    if data is None:
        return _meta("manifest-rejected", key, f"{key} is larger than 512 KiB")
    accepted: list[int] = []
    manifest: ChannelManifest | None = None
    last: Error | None = None
    for root in roots:
        try:
            manifest = trust.verify_channel_signature(root, data, channel=channel)
        except Error as exc:
            last = exc
            continue
        accepted.append(root.version)
    if manifest is None:
        why = last.diagnostics() if last is not None else "no root to check it against"
        return _meta(
            "manifest-rejected",
            key,
            f"no root version's channel:{channel} keys accept {key}: {why}",
        )
    return manifest, accepted


def _check_pointer(
    app: str,
    channel: str,
    versions: Sequence[int],
    objects: Mapping[str, bytes | None],
    roots: Sequence[Root],
    *,
    out: list[Finding],
    now: datetime,
) -> ChannelManifest | None:
    key = pointer_key(app, channel)
    if key not in objects:
        if versions:
            out.append(
                _meta(
                    "pointer-missing",
                    key,
                    f"{channel} has manifests up to v{versions[-1]} but no pointer: devices "
                    "find no release",
                )
            )
        return None
    data = objects[key]
    if data is None or not roots:
        out.append(_meta("pointer-rejected", key, f"{key} is unreadable or oversized"))
        return None
    try:
        pointer = trust.verify_channel_signature(roots[-1], data, channel=channel)
    except Error as exc:
        out.append(
            _meta(
                "pointer-rejected",
                key,
                f"devices on root v{roots[-1].version} refuse the {channel} pointer: "
                f"{exc.diagnostics()}",
            )
        )
        return None
    if objects.get(manifest_key(app, channel, pointer.version)) != data:
        out.append(
            _meta(
                "pointer-differs",
                key,
                f"the {channel} pointer (v{pointer.version}) is not a copy of "
                f"{manifest_key(app, channel, pointer.version)}",
            )
        )
    if versions and pointer.version < versions[-1]:
        out.append(
            Finding(
                "warning",
                "metadata",
                "pointer-lags",
                key,
                f"the {channel} pointer is v{pointer.version} but v{versions[-1]} exists (an "
                f"interrupted write); the next command on {channel} completes it",
            )
        )
    out.extend(_expiry(f"{channel} manifest v{pointer.version}", key, pointer, now))
    return pointer


# --- releases, bundles, orphans ------------------------------------------------------------------
def expected_objects(
    app: str,
    histories: Mapping[str, Sequence[ChannelManifest]],
    pointers: Mapping[str, ChannelManifest],
) -> tuple[dict[str, Expected], list[Finding]]:
    """Every bundle, delta patch and Capgo artifact a manifest names, and reused counters."""
    refs: dict[str, list[tuple[str, int, str]]] = {}
    served: set[str] = set()
    counters: dict[int, set[str]] = {}
    for channel, manifests in histories.items():
        current = pointers.get(channel)
        for manifest in manifests:
            for release in manifest.releases:
                who = f"{channel} v{manifest.version} ({release.label})"
                counters.setdefault(release.counter, set()).add(release.plaintext_sha256)
                keys = [(bundle_key(app, release.sha256), release.length, release.sha256)]
                if release.capgo is not None:
                    capgo = release.capgo
                    keys.append((capgo_key(app, capgo.sha256), capgo.length, capgo.sha256))
                    if capgo.files is not None:
                        files = capgo.files
                        keys.append((list_key(app, files.sha256), files.length, files.sha256))
                patches = release.delta.patches if release.delta is not None else ()
                keys += [(bundle_key(app, p.sha256), p.length, p.sha256) for p in patches]
                for key, length, digest in keys:
                    refs.setdefault(key, []).append((who, length, digest))
                    if current is not None and manifest.version == current.version:
                        served.add(key)
    out: list[Finding] = []
    expected: dict[str, Expected] = {}
    for key, named in sorted(refs.items()):
        lengths = sorted({length for _, length, _ in named})
        if len(lengths) > 1:
            out.append(
                _meta(
                    "length-disagrees",
                    key,
                    f"manifests give {key} different lengths: {', '.join(map(str, lengths))}",
                )
            )
        expected[key] = Expected(
            key, named[0][2], lengths[-1], tuple(w for w, _, _ in named), key in served
        )
    out += [
        Finding(
            "warning",
            "metadata",
            "counter-reused",
            f"{app}/counters/{counter}",
            f"release counter {counter} names {len(builds)} different builds",
        )
        for counter, builds in sorted(counters.items())
        if len(builds) > 1
    ]
    return expected, out


def expected_bodies(
    app: str, lists: Mapping[str, tuple[Expected, FileList]]
) -> dict[str, Expected]:
    """Each manifest-mode file body an intact file list names, as an object to check.

    Bodies are shared by releases, so one body gathers the referrers (and "served") of every
    list that names it; serve and the plugin check each body's content, this checks it is there.
    """
    out: dict[str, Expected] = {}
    for listed, file_list in lists.values():
        for file in file_list.files:
            key = file_key(app, file.body_sha256)
            before = out.get(key)
            referrers = (*listed.referrers[:1], *(before.referrers if before else ()))
            served = listed.served or (before is not None and before.served)
            out[key] = Expected(key, file.body_sha256, file.length, referrers[:4], served)
    return out


def check_objects(
    expected: Mapping[str, Expected], measured: Mapping[str, Measured | None]
) -> list[Finding]:
    """Each named object is there with its signed length and digest (None: not found)."""
    out: list[Finding] = []
    for key, want in sorted(expected.items()):
        got = measured.get(key)
        what = "Capgo artifact" if key.endswith(".capgo.zip") else "bundle"
        what = "Capgo file list" if key.endswith(".capgo-files.json") else what
        what = "Capgo file body" if "/capgo-files/" in key else what
        named = ", ".join(want.referrers[:3]) + (" …" if len(want.referrers) > 3 else "")  # noqa: PLR2004
        problem = None
        if got is None:
            code, problem = "missing", f"the {what} named by {named} is not in the store"
        elif got.length != want.length or got.sha256 is None:
            longer = got.sha256 is None or got.length > want.length
            code = "length"
            problem = (
                f"the {what} named by {named} is "
                + (f"longer than {want.length} bytes" if longer else f"{got.length} bytes")
                + f", the signed length is {want.length}"
            )
        elif got.sha256 != want.sha256:
            code = "hash"
            problem = (
                f"the {what} named by {named} has SHA-256 {got.sha256[:16]}…, the signed one is "
                f"{want.sha256[:16]}…: it was altered"
            )
        if problem is not None:
            severity: Severity = "error" if want.served else "warning"
            if not want.served:
                problem += " (no current manifest serves it; a revert to it would fail)"
            prefix = "capgo" if what != "bundle" else "bundle"
            out.append(Finding(severity, "bundle", f"{prefix}-{code}", key, problem))
    return out


def check_orphans(app: str, keys: Iterable[str], expected: Mapping[str, Expected]) -> list[Finding]:
    """Objects no manifest references, and objects otaseal never writes."""
    out: list[Finding] = []
    referenced = {e.sha256 for e in expected.values()}
    prefix = app + "/"
    for key in keys:
        rest = key.removeprefix(prefix)
        if (
            key in expected
            or _ROOT.fullmatch(rest)
            or _MANIFEST.fullmatch(rest)
            or _POINTER.fullmatch(rest)
            or _COUNTER.fullmatch(rest)
            or rest.startswith(_NOT_AUDITED + _NOT_LISTED)
        ):
            continue
        if _BUNDLE.fullmatch(rest):
            out.append(
                Finding(
                    "warning",
                    "bundle",
                    "orphan",
                    key,
                    "no manifest names this object (an interrupted publish, or a release that "
                    "left every manifest); safe to delete once nothing you may revert to needs it",
                )
            )
        elif (m := _INDEX.fullmatch(rest)) and m.group(1) in referenced:
            continue
        elif m:
            out.append(
                Finding("warning", "bundle", "orphan", key, "a file index of no listed release")
            )
        else:
            out.append(
                Finding("warning", "store", "unknown-object", key, "otaseal never writes this key")
            )
    return out


def exit_code(findings: Iterable[Finding]) -> int:
    """3 when a device would refuse metadata, else 4 for bundle errors, else 0."""
    kinds = {f.kind for f in findings if f.severity == "error"}
    if "metadata" in kinds:
        return 3
    if "bundle" in kinds:
        return 4
    return 0


def _meta(code: str, key: str, message: str) -> Finding:
    return Finding("error", "metadata", code, key, message)
