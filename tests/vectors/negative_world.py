"""The honest repository the negative vectors depart from, and the shape of one case."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hostile import envelope

from otaseal.model import ChannelManifest, Release, Root
from otaseal.project import make_root
from otaseal.store import bundle_key, pointer_key, root_key

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from otaseal.archive import PackResult
    from otaseal.crypto import DecryptionKey, SigningKey
    from otaseal.formats.sealed import SealResult

FOLDER = "negative"
#: The exit code of each error family (docs/SPEC.md §12).
EXIT = {"input": 2, "metadata": 3, "bundle": 4, "store": 5}
SEGMENT = 1024  # the smallest segment size readers accept: several segments in a few KiB
BUDGET = 1 << 20
INSTALL_ID = "device-a"

# The small web build the bundle cases start from: a stored (incompressible) file of 4000 bytes,
# so the zip spans five 1 KiB segments.
SMALL_BUILD: Mapping[str, bytes] = {
    "index.html": b'<!doctype html>\n<script src="assets/app.js"></script>\n',
    "assets/app.js": hashlib.shake_256(b"otaseal negative vector").digest(4000),
}


@dataclass(frozen=True)
class Context:
    """What make_vectors.py hands over: the keys, the clock, the sealer and the positive files."""

    keys: Any
    app: str
    now: datetime
    sealer: Any
    vectors: Mapping[str, bytes]
    root: Root
    pack_build: Callable[[Mapping[str, bytes]], tuple[bytes, PackResult]]


@dataclass(frozen=True)
class Case:
    """One hostile update check."""

    name: str
    attack: str
    spec: str
    family: str
    store: Mapping[str, bytes]
    trusted_root: bytes | None
    now: datetime
    state: Mapping[str, Any] | None = None
    native: int | None = 12
    install_id: str = INSTALL_ID
    channel: str = "beta"


@dataclass
class World:
    """The honest repository every case starts from, and the attacker's tools."""

    ctx: Context
    zip: bytes = field(init=False)
    cub: bytes = field(init=False)
    release: Release = field(init=False)
    root_bytes: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.zip, _ = self.ctx.pack_build(SMALL_BUILD)
        self.cub, result = self.seal(self.zip)
        self.release = self.release_for(result, self.zip)
        self.root_bytes = self.ctx.vectors["root.json"]

    def case(self, name: str, attack: str, spec: str, family: str, store: Any, **kw: Any) -> Case:
        """A case; the trusted root and the reference time default to the honest ones."""
        return Case(
            name,
            attack,
            spec,
            family,
            store,
            kw.pop("trusted_root", self.root_bytes),
            kw.pop("now", self.ctx.now),
            **kw,
        )

    @property
    def keys(self) -> Any:
        return self.ctx.keys

    def seal(
        self, plaintext: bytes, recipients: Sequence[DecryptionKey] | None = None
    ) -> tuple[bytes, SealResult]:
        """``plaintext`` sealed with the fixed inputs in 1 KiB segments (default: to the app)."""
        return self.ctx.sealer.seal(
            plaintext, list(recipients or [self.keys.decryption]), segment_size=SEGMENT
        )

    def release_for(self, result: SealResult, plaintext: bytes, **fields: Any) -> Release:
        """The release entry that signs ``result`` and its ``plaintext``; 100 % rollout."""
        base: dict[str, Any] = {
            "label": "2.0.0",
            "counter": 1,
            "sha256": result.sha256,
            "length": result.length,
            "plaintext_sha256": hashlib.sha256(plaintext).hexdigest(),
            "plaintext_length": len(plaintext),
            "files": len(SMALL_BUILD),
            "unpacked_size": BUDGET,
            "published": self.ctx.now,
        }
        return Release(**(base | fields))

    def manifest(self, *, version: int = 1, **fields: Any) -> ChannelManifest:
        """The honest beta manifest, valid for 30 days, with ``fields`` changed."""
        base: dict[str, Any] = {
            "app": self.ctx.app,
            "channel": "beta",
            "version": version,
            "issued": self.ctx.now,
            "expires": self.ctx.now + timedelta(days=30),
            "releases": (self.release,),
            "event": "publish 2.0.0",
        }
        return ChannelManifest(**(base | fields))

    def payload(self, **fields: Any) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.manifest(**fields).to_payload())
        return parsed

    def signed(self, payload: bytes | None = None, signers: Sequence[SigningKey] = ()) -> bytes:
        data = self.manifest().to_payload() if payload is None else payload
        return envelope(data, list(signers) or [self.keys.beta])

    def store(
        self,
        manifest: bytes | None = None,
        *,
        cub: bytes | None = None,
        sha256: str | None = None,
        roots: Sequence[bytes] = (),
        channel: str = "beta",
    ) -> dict[str, bytes]:
        """Root v1 (then ``roots`` as v2, v3, ...), the channel pointer and one bundle."""
        app = self.ctx.app
        files: dict[str, bytes] = {root_key(app, 1): self.root_bytes}
        for version, data in enumerate(roots, start=2):
            files[root_key(app, version)] = data
        files[pointer_key(app, channel)] = self.signed() if manifest is None else manifest
        files[bundle_key(app, sha256 or self.release.sha256)] = self.cub if cub is None else cub
        return files

    def hostile_cub(self, cub: bytes, **release: Any) -> dict[str, bytes]:
        """A store whose manifest signs ``cub`` exactly (digest, length): the reader must refuse."""
        sha = hashlib.sha256(cub).hexdigest()
        rel = replace(self.release, sha256=sha, length=len(cub), **release)
        manifest = self.signed(self.manifest(releases=(rel,)).to_payload())
        return self.store(manifest, cub=cub, sha256=sha)

    def hostile_zip(self, plaintext: bytes, *, files: int | None = None, **release: Any) -> Any:
        """A store serving ``plaintext`` (a zip) in a valid .cub that a valid manifest signs."""
        cub, result = self.seal(plaintext)
        rel = replace(
            self.release,
            sha256=hashlib.sha256(cub).hexdigest(),
            length=result.length,
            plaintext_sha256=hashlib.sha256(plaintext).hexdigest(),
            plaintext_length=len(plaintext),
            files=len(SMALL_BUILD) if files is None else files,
            **release,
        )
        manifest = self.signed(self.manifest(releases=(rel,)).to_payload())
        return self.store(manifest, cub=cub, sha256=rel.sha256)

    def root(self, version: int, **fields: Any) -> Root:
        """A root update to the root-2 and beta-2 keys, with ``fields`` changed."""
        base = make_root(
            self.ctx.app,
            version,
            now=self.ctx.now + timedelta(days=version - 1),
            root_keys=[self.keys.root_2],
            channel_keys={"beta": [self.keys.beta_2], "production": [self.keys.production]},
        )
        return replace(base, **fields)
