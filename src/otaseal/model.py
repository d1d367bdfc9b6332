"""Signed metadata as small frozen values: Root, Role, ChannelManifest, Release.

``from_payload`` parses bytes that DSSE has already verified; ``to_payload`` makes the exact bytes
that get signed. Parsing is strict about types and ranges so that a signed but malformed document
is refused with a clear message rather than half-understood.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from otaseal import jsonread
from otaseal.crypto import PublicKey
from otaseal.errors import InputError, MalformedMetadataError, WrongTargetError

SPEC_VERSION = "1.2"  # 1.1: optional `capgo`; 1.2: optional `delta` and `capgo.files`
SPEC_MAJOR = 1
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
# App ids keep their case: iOS bundle ids and Android application ids are often mixed-case
# (com.Example.App, com.example.my_app). Compared exactly (SPEC §3).
APP_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
SPEC_VERSION_RE = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
# RFC 3339 with seconds and a zone, nothing else (SPEC §1): the one form every SDK parses alike.
TIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
FULL_ROLLOUT = 10_000  # basis points
MAX_RELEASES = 5
MAX_PATCHES = 8  # per release; `publish` makes at most 3 by default (SPEC §19)


def check_app_id(value: str) -> str:
    """Validate an app id: ``[A-Za-z0-9][A-Za-z0-9._-]{0,62}``, case kept."""
    if not APP_ID_RE.fullmatch(value):
        raise InputError(
            f"app id {value!r} is not allowed",
            expected="1–63 characters matching [A-Za-z0-9][A-Za-z0-9._-]{0,62}, the iOS bundle "
            "id or Android application id, e.g. com.example.app or com.Example.App",
            fix="use the app's id as the stores know it: letters, digits, '.', '_' and '-'",
        )
    return value


def check_name(value: str, what: str) -> str:
    """Validate a channel name: ``[a-z0-9][a-z0-9._-]{0,62}``."""
    if not NAME_RE.fullmatch(value):
        raise InputError(
            f"{what} {value!r} is not allowed",
            expected="1–63 characters matching [a-z0-9][a-z0-9._-]{0,62}, e.g. com.example.app "
            "or beta",
            fix=f"use lowercase letters, digits, '.', '_' and '-' in the {what}",
        )
    return value


def channel_role(channel: str) -> str:
    """Name of the role that signs ``channel``'s manifest."""
    return f"channel:{channel}"


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z``, second precision."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SS`` with ``Z`` or ``±HH:MM`` (SPEC §1); else ``ValueError``.

    A valid form whose UTC instant falls outside years 1..9999 (``0001-01-01T00:00:00+14:00``)
    is a ``ValueError`` too, never an ``OverflowError``.
    """
    if not TIME_RE.fullmatch(text):
        raise ValueError("not YYYY-MM-DDTHH:MM:SS with Z or ±HH:MM")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("not an instant from year 1 to year 9999 in UTC") from None


_KIND_NAMES = {str: "a string", bool: "true or false", dict: "an object", list: "an array"}


class _Reader:
    """Typed access to a JSON object with errors that name the field."""

    def __init__(self, doc: object, where: str) -> None:
        if not isinstance(doc, dict):
            raise self._bad(where, "an object")
        self.doc: dict[str, Any] = doc
        self.where = where

    @staticmethod
    def _bad(where: str, expected: str) -> MalformedMetadataError:
        return MalformedMetadataError(
            f"signed metadata has an invalid {where}",
            expected=expected,
            fix="the publisher wrote an invalid document; republish with a current otaseal",
        )

    def get(self, name: str, kind: type, *, optional: bool = False) -> Any:  # noqa: ANN401 - JSON edge
        value = self.doc.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, kind):
            raise self._bad(f"{self.where}.{name}", _KIND_NAMES.get(kind, kind.__name__))
        return value

    def nat(self, name: str, *, optional: bool = False) -> int | None:
        """An integer of SPEC §1: a whole number from 0 to 2^53−1."""
        value = self.doc.get(name)
        if value is None and optional:
            return None
        number = jsonread.integer(value)
        if number is None:
            raise self._bad(f"{self.where}.{name}", "an integer from 0 to 2^53−1")
        return number

    def int_(self, name: str) -> int:
        value = self.nat(name)
        assert value is not None  # noqa: S101 - not optional
        return value

    def time(self, name: str) -> datetime:
        try:
            return parse_time(self.get(name, str))
        except ValueError:
            raise self._bad(
                f"{self.where}.{name}",
                "YYYY-MM-DDTHH:MM:SS with Z or ±HH:MM, e.g. 2026-01-31T12:00:00Z",
            ) from None

    def digest(self, name: str) -> str:
        value = self.get(name, str)
        if not SHA256_RE.fullmatch(value):
            raise self._bad(f"{self.where}.{name}", "64 lowercase hex digits")
        return value  # type: ignore[no-any-return]

    def sub(self, name: str) -> _Reader:
        return _Reader(self.doc.get(name), f"{self.where}.{name}")


def _check_header(r: _Reader, kind: str, app: str | None) -> None:
    found = r.get("_type", str)
    if found != kind:
        raise WrongTargetError(f"the document is a {found[:40]!r}", expected=repr(kind))
    spec = r.get("spec_version", str)
    if not SPEC_VERSION_RE.fullmatch(spec):
        raise r._bad(f"{r.where}.spec_version", '"MAJOR.MINOR", e.g. "1.1"')  # noqa: SLF001
    if spec.split(".", 1)[0] != str(SPEC_MAJOR):
        raise WrongTargetError(
            f"the document uses spec version {spec}",
            expected=f"spec major version {SPEC_MAJOR}",
            fix="update the device client before it can read this channel",
        )
    if app is not None and r.get("app", str) != app:
        raise WrongTargetError(
            f"the {kind} metadata is for app {r.doc['app'][:64]!r}",
            expected=repr(app),
            fix="check the app id and store path the device uses",
        )


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class Role:
    """Key ids allowed to sign for a role, and how many must."""

    keyids: tuple[str, ...]
    threshold: int = 1


@dataclass(frozen=True, slots=True)
class Root:
    """The trust anchor: the keys and thresholds of ``root`` and of each channel role."""

    app: str
    version: int
    issued: datetime
    expires: datetime
    keys: dict[str, PublicKey]
    roles: dict[str, Role]
    spec_version: str = SPEC_VERSION

    def role(self, name: str) -> Role:
        """The role ``name``; a missing role is an unsigned-metadata situation for callers."""
        found = self.roles.get(name)
        if found is None:
            raise WrongTargetError(
                f"root.json has no role {name!r}",
                expected="one of " + ", ".join(sorted(self.roles)),
                fix="add the channel to otaseal.yml and re-sign root, or pick a listed channel",
            )
        return found

    def channels(self) -> list[str]:
        """Channel names the root has roles for."""
        return sorted(r.removeprefix("channel:") for r in self.roles if r.startswith("channel:"))

    def to_payload(self) -> bytes:
        """The exact bytes to sign."""
        return _dump(
            {
                "_type": "root",
                "spec_version": self.spec_version,
                "app": self.app,
                "version": self.version,
                "issued": format_time(self.issued),
                "expires": format_time(self.expires),
                "keys": {
                    k: {"algorithm": v.algorithm, "public": base64.b64encode(v.der).decode()}
                    for k, v in sorted(self.keys.items())
                },
                "roles": {
                    name: {"keyids": sorted(role.keyids), "threshold": role.threshold}
                    for name, role in sorted(self.roles.items())
                },
            }
        )

    @classmethod
    def from_payload(cls, data: bytes, *, app: str | None = None) -> Root:
        """Parse verified payload bytes."""
        r = _Reader(_load(data), "root")
        _check_header(r, "root", app)
        keys: dict[str, PublicKey] = {}
        for keyid, entry in r.get("keys", dict).items():
            e = _Reader(entry, f"root.keys.{keyid[:12]}")
            der = jsonread.decode_base64(e.get("public", str))
            if der is None:
                raise _Reader._bad(f"root.keys.{keyid[:12]}.public", "padded standard base64")  # noqa: SLF001
            key = PublicKey(e.get("algorithm", str), der)
            if not key.is_canonical():
                raise _Reader._bad(  # noqa: SLF001
                    f"key {keyid[:12]}",
                    "a supported key in canonical DER SPKI (uncompressed point)",
                )
            if key.keyid != keyid:
                raise _Reader._bad(f"key id {keyid[:12]}", "SHA-256 of the key's DER SPKI")  # noqa: SLF001
            keys[keyid] = key
        roles: dict[str, Role] = {}
        for name, entry in r.get("roles", dict).items():
            e = _Reader(entry, f"root.roles.{name}")
            ids = e.get("keyids", list)
            if not all(isinstance(i, str) for i in ids) or len(set(ids)) != len(ids):
                raise _Reader._bad(f"root.roles.{name}.keyids", "distinct key id strings")  # noqa: SLF001
            threshold = e.int_("threshold")
            if not 1 <= threshold <= len(ids):
                raise _Reader._bad(f"root.roles.{name}.threshold", "1 ≤ threshold ≤ keys")  # noqa: SLF001
            roles[name] = Role(tuple(ids), threshold)
        if "root" not in roles:
            raise _Reader._bad("root.roles", "a 'root' role")  # noqa: SLF001
        return cls(
            app=r.get("app", str),
            version=r.int_("version"),
            issued=r.time("issued"),
            expires=r.time("expires"),
            keys=keys,
            roles=roles,
            spec_version=r.get("spec_version", str),
        )


CAPGO_KEY_ID_RE = re.compile(r"[A-Za-z0-9+/=]{1,20}")
CAPGO_CHECKSUM_RE = re.compile(r"[0-9a-f]{512}")


@dataclass(frozen=True, slots=True)
class CapgoFiles:
    """The signed pointer to a release's per-file Capgo list (manifest mode, SPEC §17.1).

    The list itself is a separate, content-addressed object so that the channel manifest stays
    small; its digest here is what makes every entry in it signed.
    """

    sha256: str  # of the list object; store key <app>/bundles/<sha256>.capgo-files.json
    length: int
    count: int  # entries in the list: every file of the bundle

    def to_dict(self) -> dict[str, Any]:
        """JSON form inside ``capgo``."""
        return {"sha256": self.sha256, "length": self.length, "count": self.count}

    @classmethod
    def from_dict(cls, doc: object, where: str) -> CapgoFiles:
        """Parse ``capgo.files``."""
        r = _Reader(doc, where)
        return cls(sha256=r.digest("sha256"), length=r.int_("length"), count=r.int_("count"))


@dataclass(frozen=True, slots=True)
class CapgoArtifact:
    """The same release in Capgo's "encryption v2" format, for ``@capgo/capacitor-updater``.

    Signed inside the release so that ``serve`` hands out only what the channel's key approved,
    and promote, rollout and revert carry it without a re-upload.
    """

    sha256: str  # of the AES-128-CBC artifact; store key <app>/bundles/<sha256>.capgo.zip
    length: int
    session_key: str  # base64(IV) ":" base64(RSA type-1 block of the AES key)
    checksum: str  # 512 lowercase hex: RSA type-1 block over the raw SHA-256 of the zip ("V3")
    key_id: str  # the plugin's key_id of the public key (first 20 base64 chars of the PKCS#1 body)
    files: CapgoFiles | None = None  # spec 1.2: the per-file list for the plugin's manifest mode

    def to_dict(self) -> dict[str, Any]:
        """JSON form inside a release entry (``files`` only when the release has the list)."""
        doc: dict[str, Any] = {
            "sha256": self.sha256,
            "length": self.length,
            "session_key": self.session_key,
            "checksum": self.checksum,
            "key_id": self.key_id,
        }
        if self.files is not None:
            doc["files"] = self.files.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: object, where: str) -> CapgoArtifact:
        """Parse a release's ``capgo`` member."""
        r = _Reader(doc, where)
        checksum = r.get("checksum", str)
        if not CAPGO_CHECKSUM_RE.fullmatch(checksum):
            raise _Reader._bad(f"{where}.checksum", "512 lowercase hex digits")  # noqa: SLF001
        session_key = r.get("session_key", str)
        parts = session_key.split(":")
        if len(parts) != 2 or not all(parts):  # noqa: PLR2004 - IV and key
            raise _Reader._bad(f"{where}.session_key", "base64(IV):base64(RSA block)")  # noqa: SLF001
        key_id = r.get("key_id", str)
        if not CAPGO_KEY_ID_RE.fullmatch(key_id):
            raise _Reader._bad(f"{where}.key_id", "1–20 base64 characters")  # noqa: SLF001
        return cls(
            sha256=r.digest("sha256"),
            length=r.int_("length"),
            session_key=session_key,
            checksum=checksum,
            key_id=key_id,
            files=None
            if r.doc.get("files") is None
            else CapgoFiles.from_dict(r.doc["files"], f"{where}.files"),
        )


@dataclass(frozen=True, slots=True)
class Patch:
    """A sealed delta that turns an earlier release's files into this release's (SPEC §19).

    Sealed and addressed like a bundle (``<app>/bundles/<sha256>.cub``); a device takes it only
    when ``base`` is the bundle it runs, and still checks every resulting file against the
    release's index, whose digest is signed next to it.
    """

    base: str  # bundle.sha256 of the release the patch applies to
    sha256: str  # of the sealed patch
    length: int
    plaintext_sha256: str
    plaintext_length: int
    base_label: str = ""  # informative: the base release's label
    changed: int = 0  # informative: files not copied unchanged from the base

    def to_dict(self) -> dict[str, Any]:
        """JSON form inside ``delta.patches``."""
        return {
            "base": self.base,
            "base_label": self.base_label,
            "bundle": {"sha256": self.sha256, "length": self.length},
            "plaintext": {"sha256": self.plaintext_sha256, "length": self.plaintext_length},
            "changed": self.changed,
        }

    @classmethod
    def from_dict(cls, doc: object, where: str) -> Patch:
        """Parse one ``delta.patches`` entry; the informative members default when absent."""
        r = _Reader(doc, where)
        bundle, plain = r.sub("bundle"), r.sub("plaintext")
        return cls(
            base=r.digest("base"),
            sha256=bundle.digest("sha256"),
            length=bundle.int_("length"),
            plaintext_sha256=plain.digest("sha256"),
            plaintext_length=plain.int_("length"),
            base_label=r.get("base_label", str, optional=True) or "",
            changed=r.nat("changed", optional=True) or 0,
        )


@dataclass(frozen=True, slots=True)
class Delta:
    """A release's optional ``delta`` member (spec 1.2): its index digest and its patches."""

    index: str  # SHA-256 of the release's `.otaseal/index.json` bytes
    patches: tuple[Patch, ...] = ()

    def patch_from(self, base: str) -> Patch | None:
        """The patch that starts from bundle ``base``, or None."""
        return next((p for p in self.patches if p.base == base), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON form inside a release entry."""
        return {"index": self.index, "patches": [p.to_dict() for p in self.patches]}

    @classmethod
    def from_dict(cls, doc: object, where: str) -> Delta:
        """Parse ``delta``: at most MAX_PATCHES patches, each from a different base."""
        r = _Reader(doc, where)
        raw = r.get("patches", list)
        if len(raw) > MAX_PATCHES:
            raise _Reader._bad(f"{where}.patches", f"at most {MAX_PATCHES} patches")  # noqa: SLF001
        patches = tuple(Patch.from_dict(p, f"{where}.patches[{i}]") for i, p in enumerate(raw))
        if len({p.base for p in patches}) != len(patches):
            raise _Reader._bad(f"{where}.patches", "one patch per base release")  # noqa: SLF001
        return cls(index=r.digest("index"), patches=patches)


@dataclass(frozen=True, slots=True)
class Release:
    """One sealed bundle and how a channel serves it."""

    label: str
    counter: int
    sha256: str
    length: int
    plaintext_sha256: str
    plaintext_length: int
    files: int
    unpacked_size: int
    published: datetime
    native_min: int | None = None
    native_max: int | None = None
    rollout_bp: int = FULL_ROLLOUT
    rollout_salt: str = ""
    paused: bool = False
    commit: str | None = None
    pr: int | None = None
    capgo: CapgoArtifact | None = None
    native_fingerprint: str | None = None
    native_packages: tuple[tuple[str, str], ...] | None = None
    delta: Delta | None = None  # spec 1.2: index digest and patches from earlier releases

    @property
    def short(self) -> str:
        """Label and short digest for people."""
        return f"{self.label} ({self.sha256[:12]})"

    def is_native_compatible(self, native: int | None) -> bool:
        """Whether a device on native build ``native`` may run this release."""
        if native is None:
            return True
        low_ok = self.native_min is None or native >= self.native_min
        high_ok = self.native_max is None or native <= self.native_max
        return low_ok and high_ok

    def with_rollout(self, basis_points: int, *, paused: bool = False) -> Release:
        """Same release, another rollout."""
        return replace(self, rollout_bp=basis_points, paused=paused)

    def to_dict(self) -> dict[str, Any]:
        """JSON form inside a channel manifest (``capgo`` only when the release has one)."""
        doc: dict[str, Any] = {
            "label": self.label,
            "counter": self.counter,
            "bundle": {"sha256": self.sha256, "length": self.length},
            "plaintext": {"sha256": self.plaintext_sha256, "length": self.plaintext_length},
            "content": {"files": self.files, "size": self.unpacked_size},
            "native": {"min": self.native_min, "max": self.native_max},
            "rollout": {
                "basis_points": self.rollout_bp,
                "salt": self.rollout_salt,
                "paused": self.paused,
            },
            "source": {"commit": self.commit, "pr": self.pr},
            "published": format_time(self.published),
        }
        if self.capgo is not None:
            doc["capgo"] = self.capgo.to_dict()
        if self.native_fingerprint is not None:
            doc["native_fingerprint"] = self.native_fingerprint
            doc["native_packages"] = dict(self.native_packages or ())
        if self.delta is not None:
            doc["delta"] = self.delta.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: object, where: str) -> Release:
        """Parse one release entry."""
        r = _Reader(doc, where)
        bundle, plain, content = r.sub("bundle"), r.sub("plaintext"), r.sub("content")
        native, rollout, source = r.sub("native"), r.sub("rollout"), r.sub("source")
        bp = rollout.int_("basis_points")
        if bp > FULL_ROLLOUT:
            raise _Reader._bad(f"{where}.rollout.basis_points", "0..10000")  # noqa: SLF001
        return cls(
            label=r.get("label", str),
            counter=r.int_("counter"),
            sha256=bundle.digest("sha256"),
            length=bundle.int_("length"),
            plaintext_sha256=plain.digest("sha256"),
            plaintext_length=plain.int_("length"),
            files=content.int_("files"),
            unpacked_size=content.int_("size"),
            published=r.time("published"),
            native_min=native.nat("min", optional=True),
            native_max=native.nat("max", optional=True),
            rollout_bp=bp,
            rollout_salt=rollout.get("salt", str),
            paused=rollout.get("paused", bool),
            commit=source.get("commit", str, optional=True),
            pr=source.nat("pr", optional=True),
            capgo=None
            if r.doc.get("capgo") is None
            else CapgoArtifact.from_dict(r.doc["capgo"], f"{where}.capgo"),
            delta=None
            if r.doc.get("delta") is None
            else Delta.from_dict(r.doc["delta"], f"{where}.delta"),
            **_native_layer(r.doc),
        )


def _native_layer(doc: dict[str, Any]) -> dict[str, Any]:
    """The informative ``native_fingerprint`` and ``native_packages``, or nothing.

    Devices ignore both (SPEC §7.2), so a malformed pair reads as absent rather than failing
    the manifest; only ``publish`` compares them.
    """
    fingerprint, packages = doc.get("native_fingerprint"), doc.get("native_packages")
    if not isinstance(fingerprint, str) or not SHA256_RE.fullmatch(fingerprint):
        return {}
    if not isinstance(packages, dict) or not all(isinstance(v, str) for v in packages.values()):
        return {}
    return {
        "native_fingerprint": fingerprint,
        "native_packages": tuple(sorted(packages.items())),
    }


@dataclass(frozen=True, slots=True)
class ChannelManifest:
    """What a channel serves: the single source of truth, signed by the channel's role."""

    app: str
    channel: str
    version: int
    issued: datetime
    expires: datetime
    releases: tuple[Release, ...] = ()
    security_floor: int = 0
    builtin: bool = False
    event: str = ""
    spec_version: str = SPEC_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def current(self) -> Release | None:
        """The preferred (first) release, or None for an empty or builtin channel."""
        return None if self.builtin or not self.releases else self.releases[0]

    def find(self, ref: str) -> Release | None:
        """A release by label, full digest, or unique digest prefix (≥ 8 hex)."""
        for release in self.releases:
            if ref in (release.label, release.sha256):
                return release
        if len(ref) >= 8:  # noqa: PLR2004 - shortest digest prefix people may type
            hits = [r for r in self.releases if r.sha256.startswith(ref)]
            if len(hits) == 1:
                return hits[0]
        return None

    def to_payload(self) -> bytes:
        """The exact bytes to sign."""
        return _dump(
            {
                **self.extra,
                "_type": "channel",
                "spec_version": self.spec_version,
                "app": self.app,
                "channel": self.channel,
                "version": self.version,
                "issued": format_time(self.issued),
                "expires": format_time(self.expires),
                "security_floor": self.security_floor,
                "target": "builtin" if self.builtin else "release",
                "event": self.event,
                "releases": [r.to_dict() for r in self.releases],
            }
        )

    @classmethod
    def from_payload(
        cls, data: bytes, *, app: str | None = None, channel: str | None = None
    ) -> ChannelManifest:
        """Parse verified payload bytes, checking app, channel and spec major."""
        r = _Reader(_load(data), "manifest")
        _check_header(r, "channel", app)
        if channel is not None and r.get("channel", str) != channel:
            raise WrongTargetError(
                f"the manifest is for channel {r.doc.get('channel')!r}",
                expected=repr(channel),
                fix="the store served another channel's manifest; check the store and channel",
            )
        target = r.get("target", str)
        if target not in ("release", "builtin"):
            raise _Reader._bad("manifest.target", "'release' or 'builtin'")  # noqa: SLF001
        entries = r.get("releases", list)
        if len(entries) > MAX_RELEASES:
            raise _Reader._bad("manifest.releases", f"at most {MAX_RELEASES} releases")  # noqa: SLF001
        known = {
            "_type",
            "spec_version",
            "app",
            "channel",
            "version",
            "issued",
            "expires",
            "security_floor",
            "target",
            "releases",
            "event",
        }
        return cls(
            app=r.get("app", str),
            channel=r.get("channel", str),
            version=r.int_("version"),
            issued=r.time("issued"),
            expires=r.time("expires"),
            releases=tuple(Release.from_dict(e, f"releases[{i}]") for i, e in enumerate(entries)),
            security_floor=r.int_("security_floor"),
            builtin=target == "builtin",
            event=r.get("event", str, optional=True) or "",
            spec_version=r.get("spec_version", str),
            extra={k: v for k, v in r.doc.items() if k not in known},
        )


def _load(data: bytes) -> object:
    try:
        return jsonread.loads(data)
    except jsonread.JsonError as exc:
        raise MalformedMetadataError(
            f"signed metadata is not valid: {exc.detail}",
            expected="a UTF-8 JSON object without a byte-order mark, duplicate keys or nesting "
            f"deeper than {jsonread.MAX_DEPTH} levels",
            fix="the publisher wrote an invalid document; republish",
        ) from None
