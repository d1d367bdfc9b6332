"""A repository simulator and a device, for attack tests that drive the real device client.

The repository writes a real folder store the way an attacker who controls the bucket or CDN
could: any key, any bytes, signed with any key. The device is the real
:func:`otaseal.client.check_for_update` reading through a :class:`RecordingFetcher`, which
records every key it was asked for and every byte it handed over, so a test can prove that no
bundle was downloaded or that a download stopped at the signed length. Keys come from fixed
scalars and the clock is fixed, so every run is the same.

Fixtures: ``repo`` (:class:`Repository`), ``device`` (:class:`Device` on ``beta``), ``new_device``
(a factory for more devices), ``decrypt_calls`` (records calls to ``open_sealed``) and ``project``
(an :class:`otaseal.operations.Project` on the same store, for publish / promote / revert).
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from otaseal import client, dsse, trust
from otaseal.archive import pack
from otaseal.config import Config
from otaseal.crypto import decryption_key_from_scalar, signing_key_from_scalar
from otaseal.errors import Error, LengthError
from otaseal.formats import sealed
from otaseal.model import FULL_ROLLOUT, ChannelManifest, Release, Role, Root, channel_role
from otaseal.operations import Project
from otaseal.store import bundle_key, pointer_key, root_key
from otaseal.store.folder import FolderStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from otaseal.archive import PackResult
    from otaseal.crypto import SigningKey
    from otaseal.formats.sealed import SealResult

APP = "com.example.app"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
MANIFEST_LIFETIME = timedelta(days=30)
ROOT_LIFETIME = timedelta(days=365)


class Keys:
    """Fixed test keys. Scalars are public: never use them outside tests."""

    root = tuple(signing_key_from_scalar(0x2001 + i) for i in range(3))
    new_root = tuple(signing_key_from_scalar(0x2101 + i) for i in range(3))
    beta = signing_key_from_scalar(0x3001)
    new_beta = signing_key_from_scalar(0x3002)
    production = signing_key_from_scalar(0x4001)
    production_2 = signing_key_from_scalar(0x4002)
    new_production = signing_key_from_scalar(0x4003)
    attacker = signing_key_from_scalar(0x0BAD)
    decryption = decryption_key_from_scalar(0x5001)
    other_app_decryption = decryption_key_from_scalar(0x5002)


# --- the fetcher the device reads through -------------------------------------------------------
class RecordingFetcher:
    """A ``Fetcher`` over the store that records every request and every byte delivered.

    It hands data over in small chunks and honours ``max_bytes`` exactly as the ``Fetcher``
    contract says (``LengthError`` before delivering a byte past it). ``honour_limits=False``
    makes it a broken transport that ignores ``max_bytes`` (it still stops after ``give_up``
    bytes so a test cannot hang).
    """

    def __init__(self, store: FolderStore, *, chunk: int = 4096) -> None:
        self.store = store
        self.chunk = chunk
        self.calls: list[tuple[str, str, int]] = []
        self.delivered: Counter[str] = Counter()
        self.honour_limits = True
        self.give_up = 1 << 24

    def reset(self) -> None:
        self.calls.clear()
        self.delivered.clear()

    @property
    def keys(self) -> list[str]:
        return [key for _, key, _ in self.calls]

    @property
    def bundle_requests(self) -> list[str]:
        return [key for key in self.keys if "/bundles/" in key]

    def max_bytes_for(self, key: str) -> list[int]:
        return [limit for _, k, limit in self.calls if k == key]

    def fetch(self, key: str, *, max_bytes: int) -> bytes:
        self.calls.append(("fetch", key, max_bytes))
        return b"".join(self._chunks(key, max_bytes))

    def stream(self, key: str, *, max_bytes: int) -> Iterator[bytes]:
        self.calls.append(("stream", key, max_bytes))
        return self._chunks(key, max_bytes)

    def _chunks(self, key: str, max_bytes: int) -> Iterator[bytes]:
        data = self.store.read(key)[0]  # NotFoundError propagates like a real fetcher's
        limit = max_bytes if self.honour_limits else self.give_up
        sent = 0
        while sent < len(data):
            piece = data[sent : sent + self.chunk]
            if sent + len(piece) > limit:
                if self.honour_limits:
                    raise LengthError(f"{key} is longer than {max_bytes} bytes")
                return
            sent += len(piece)
            self.delivered[key] += len(piece)
            yield piece


# --- bundles ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bundle:
    """A packed and sealed web build, not yet in the store unless uploaded."""

    files: dict[str, bytes]
    zip: bytes
    cub: bytes
    packed: PackResult
    seal: SealResult

    @property
    def sha256(self) -> str:
        return self.seal.sha256


def default_files(label: str) -> dict[str, bytes]:
    return {
        "index.html": f"<!doctype html><title>{label}</title><h1>{label}</h1>\n".encode(),
        "assets/app.js": f"console.log('web build {label}');\n".encode(),
        "assets/style.css": b"body { font-family: sans-serif; }\n",
    }


# --- the repository ---------------------------------------------------------------------------
@dataclass
class Repository:
    """A folder store plus the publisher's (and the attacker's) signing powers."""

    path: Path
    app: str = APP
    keys: type[Keys] = Keys
    now: datetime = NOW
    store: FolderStore = field(init=False)
    root: Root = field(init=False)
    root_bytes: bytes = field(init=False)
    root_signers: list[SigningKey] = field(init=False)
    channel_signers: dict[str, list[SigningKey]] = field(init=False)
    served: dict[str, ChannelManifest] = field(init=False, default_factory=dict)
    counter: int = 0
    builds: int = 0

    def __post_init__(self) -> None:
        self.store = FolderStore(self.path / "store")
        self.root_signers = [Keys.root[0]]
        self.channel_signers = {"beta": [Keys.beta], "production": [Keys.production]}
        self.root = self.make_root(version=1)
        self.root_bytes = self.sign_root(self.root, self.root_signers)
        self.put(root_key(self.app, 1), self.root_bytes)

    # raw store access: the attacker controls every byte
    def put(self, key: str, data: bytes) -> None:
        target = self.store.root.joinpath(*key.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def get(self, key: str) -> bytes:
        return self.store.read(key)[0]

    # roots
    def make_root(
        self,
        *,
        version: int,
        root_keys: Sequence[SigningKey] | None = None,
        root_threshold: int = 1,
        channel_keys: dict[str, Sequence[SigningKey]] | None = None,
        channel_thresholds: dict[str, int] | None = None,
        issued: datetime | None = None,
        expires: datetime | None = None,
        app: str | None = None,
    ) -> Root:
        """A root listing ``root_keys`` and each channel's keys (defaults: the current ones)."""
        root_keys = list(root_keys if root_keys is not None else self.root_signers)
        channel_keys = dict(channel_keys if channel_keys is not None else self.channel_signers)
        thresholds = channel_thresholds or {}
        keys = {k.keyid: k.public for k in root_keys}
        roles = {"root": Role(tuple(k.keyid for k in root_keys), root_threshold)}
        for channel, signers in channel_keys.items():
            keys.update({k.keyid: k.public for k in signers})
            roles[channel_role(channel)] = Role(
                tuple(k.keyid for k in signers), thresholds.get(channel, 1)
            )
        issued = issued or self.now
        return Root(
            app=app or self.app,
            version=version,
            issued=issued,
            expires=expires or issued + ROOT_LIFETIME,
            keys=keys,
            roles=roles,
        )

    @staticmethod
    def sign_root(root: Root, signers: Sequence[SigningKey]) -> bytes:
        return dsse.sign(dsse.PAYLOAD_TYPE_ROOT, root.to_payload(), signers).to_json()

    def put_root(self, version: int, envelope: bytes) -> None:
        self.put(root_key(self.app, version), envelope)

    def rotate_root(
        self,
        *,
        root_keys: Sequence[SigningKey] | None = None,
        channel_keys: dict[str, Sequence[SigningKey]] | None = None,
        signers: Sequence[SigningKey] | None = None,
        **kwargs: Any,
    ) -> Root:
        """Publish root N+1, signed by the old and the new root keys unless ``signers`` says."""
        new = self.make_root(
            version=self.root.version + 1,
            root_keys=root_keys,
            channel_keys=channel_keys,
            **kwargs,
        )
        new_root_keys = list(root_keys if root_keys is not None else self.root_signers)
        if signers is None:
            signers = [
                *self.root_signers,
                *(k for k in new_root_keys if k not in self.root_signers),
            ]
        envelope = self.sign_root(new, signers)
        self.put_root(new.version, envelope)
        self.root, self.root_bytes, self.root_signers = new, envelope, new_root_keys
        if channel_keys is not None:
            self.channel_signers = {c: list(k) for c, k in channel_keys.items()}
        return new

    # bundles and releases
    def build(
        self,
        files: dict[str, bytes] | None = None,
        *,
        label: str = "1.0.0",
        recipients: Sequence[Any] | None = None,
    ) -> Bundle:
        """Pack and seal a web build; not uploaded."""
        files = files if files is not None else default_files(label)
        self.builds += 1
        scratch = self.path / "builds" / str(self.builds)
        for name, data in files.items():
            target = scratch.joinpath(*name.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        plain = io.BytesIO()
        packed = pack(scratch, plain, workers=1)
        return self.seal(plain.getvalue(), packed=packed, files=files, recipients=recipients)

    def seal(
        self,
        zip_bytes: bytes,
        *,
        packed: PackResult,
        files: dict[str, bytes],
        recipients: Sequence[Any] | None = None,
    ) -> Bundle:
        out = io.BytesIO()
        writer = sealed.SealWriter(out, list(recipients or [Keys.decryption.public]))
        writer.write(zip_bytes)
        result = writer.close()
        return Bundle(files, zip_bytes, out.getvalue(), packed, result)

    def upload(self, bundle: Bundle, *, data: bytes | None = None) -> None:
        """Put the bundle (or other bytes in its place) at its key."""
        self.put(bundle_key(self.app, bundle.sha256), bundle.cub if data is None else data)

    def release(
        self, bundle: Bundle, *, label: str = "1.0.0", counter: int | None = None, **changes: Any
    ) -> Release:
        """The release entry that honestly describes ``bundle`` (then ``changes`` applied)."""
        if counter is None:
            self.counter += 1
            counter = self.counter
        release = Release(
            label=label,
            counter=counter,
            sha256=bundle.seal.sha256,
            length=bundle.seal.length,
            plaintext_sha256=bundle.seal.plaintext_sha256,
            plaintext_length=bundle.seal.plaintext_length,
            files=len(bundle.packed.index.files),
            unpacked_size=bundle.packed.index.total_size,
            published=self.now,
            rollout_salt=f"salt-{label}",
        )
        return replace(release, **changes)

    # channel manifests
    def manifest(
        self,
        channel: str,
        releases: Sequence[Release] = (),
        *,
        version: int | None = None,
        **changes: Any,
    ) -> ChannelManifest:
        """The next manifest for ``channel`` (version = last served + 1 unless given)."""
        served = self.served.get(channel)
        if version is None:
            version = served.version + 1 if served else 1
        manifest = ChannelManifest(
            app=self.app,
            channel=channel,
            version=version,
            issued=self.now,
            expires=self.now + MANIFEST_LIFETIME,
            releases=tuple(releases),
        )
        return replace(manifest, **changes)

    def sign(
        self,
        payload: bytes,
        signers: Sequence[SigningKey],
        *,
        payload_type: str = dsse.PAYLOAD_TYPE_CHANNEL,
    ) -> bytes:
        return dsse.sign(payload_type, payload, signers).to_json()

    def sign_manifest(
        self, manifest: ChannelManifest, signers: Sequence[SigningKey] | None = None
    ) -> bytes:
        """Envelope of ``manifest``; by default signed by the channel's current keys."""
        if signers is None:
            signers = self.channel_signers[manifest.channel]
        return self.sign(manifest.to_payload(), signers)

    def serve(self, channel: str, envelope: bytes) -> None:
        """Make ``envelope`` the channel's pointer (no checks: the store is not trusted)."""
        self.put(pointer_key(self.app, channel), envelope)

    def serve_manifest(
        self, manifest: ChannelManifest, signers: Sequence[SigningKey] | None = None
    ) -> bytes:
        envelope = self.sign_manifest(manifest, signers)
        self.serve(manifest.channel, envelope)
        self.served[manifest.channel] = manifest
        return envelope

    def publish(
        self,
        channel: str = "beta",
        *,
        label: str = "1.0.0",
        files: dict[str, bytes] | None = None,
        keep: bool = True,
        **changes: Any,
    ) -> Release:
        """Honest publish: build, upload, a new manifest with this release first."""
        bundle = self.build(files, label=label)
        self.upload(bundle)
        release = self.release(bundle, label=label, **changes)
        served = self.served.get(channel)
        older = served.releases if served and keep else ()
        self.serve_manifest(self.manifest(channel, (release, *older)[:5]))
        return release

    def install_id(
        self, salt: str, *, low: int = 0, high: int = FULL_ROLLOUT, channel: str = "beta"
    ) -> str:
        """An install id whose rollout bucket for ``salt`` is in ``low <= bucket < high``."""
        for n in range(100_000):
            candidate = f"install-{n}"
            if low <= trust.rollout_bucket(self.app, channel, salt, candidate) < high:
                return candidate
        raise AssertionError("no such install id")  # pragma: no cover


# --- the device -------------------------------------------------------------------------------
Snapshot = dict[str, tuple[object, ...]]


@dataclass
class Device:
    """A device with a state dir and an output dir under ``home``, ready to check for updates."""

    home: Path
    repo: Repository
    fetcher: RecordingFetcher
    channel: str = "beta"
    install_id: str = "install-0"
    native: int | None = None
    initial_root: bytes | None = None

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def out_dir(self) -> Path:
        return self.home / "www"

    def check(self, *, now: datetime = NOW, channel: str | None = None) -> client.FetchResult:
        """One update check with the real client."""
        return client.check_for_update(
            self.fetcher,
            app=self.repo.app,
            channel=channel or self.channel,
            state_dir=self.state_dir,
            decryption_key=Keys.decryption,
            install_id=self.install_id,
            out_dir=self.out_dir,
            now=now,
            native=self.native,
            initial_root=self.initial_root,
        )

    def state_bytes(self) -> bytes | None:
        path = self.state_dir / client.STATE_FILE
        return path.read_bytes() if path.is_file() else None

    def state(self) -> dict[str, Any]:
        raw = self.state_bytes()
        assert raw is not None, "the device has no state yet"
        doc: dict[str, Any] = json.loads(raw)
        return doc

    def trusted_version(self, channel: str | None = None) -> int | None:
        return self.state()["versions"].get(channel or self.channel)

    def installed(self, channel: str | None = None) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.state()["installed"].get(channel or self.channel)
        return found

    def trusted_root_version(self) -> int:
        envelope = dsse.Envelope.from_json(base64.b64decode(self.state()["root"]))
        return Root.from_payload(envelope.payload).version

    def files(self) -> dict[str, bytes] | None:
        """The installed web build, or None when nothing is installed."""
        if not self.out_dir.exists():
            return None
        return {
            p.relative_to(self.out_dir).as_posix(): p.read_bytes()
            for p in sorted(self.out_dir.rglob("*"))
            if p.is_file()
        }

    def snapshot(self) -> Snapshot:
        """Every file and folder under ``home``: bytes, inode and mtime (folders: inode)."""
        out: Snapshot = {}
        for dirpath, dirnames, filenames in os.walk(self.home):
            for name in dirnames:
                path = Path(dirpath) / name
                out[path.relative_to(self.home).as_posix() + "/"] = (path.stat().st_ino,)
            for name in filenames:
                path = Path(dirpath) / name
                info = path.stat()
                out[path.relative_to(self.home).as_posix()] = (
                    path.read_bytes(),
                    info.st_ino,
                    info.st_mtime_ns,
                )
        return out

    def refuses(
        self,
        error: type[Error],
        *,
        now: datetime = NOW,
        channel: str | None = None,
        bundle_allowed: bool = False,
    ) -> Error:
        """The check fails with exactly ``error``; trusted state and the install are untouched.

        Unless ``bundle_allowed`` (bundle attacks), no bundle may have been requested.
        """
        before, state_before = self.snapshot(), self.state_bytes()
        self.fetcher.reset()
        with pytest.raises(Error) as caught:
            self.check(now=now, channel=channel)
        assert type(caught.value) is error, caught.value.diagnostics()
        assert self.state_bytes() == state_before, "trusted state changed"
        assert self.snapshot() == before, "the device's files changed"
        if not bundle_allowed:
            assert self.fetcher.bundle_requests == [], "a bundle was fetched"
        text = caught.value.diagnostics()
        assert "Traceback" not in text
        assert "PRIVATE KEY" not in text
        return caught.value


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "repo")


@pytest.fixture
def new_device(tmp_path: Path, repo: Repository) -> Callable[..., Device]:
    """Make a device; each has its own home and recording fetcher."""
    made: list[Device] = []

    def make(**kwargs: Any) -> Device:
        home = tmp_path / f"device-{len(made)}"
        home.mkdir()
        kwargs.setdefault("initial_root", repo.root_bytes)
        device = Device(home, repo, RecordingFetcher(repo.store), **kwargs)
        made.append(device)
        return device

    return make


@pytest.fixture
def device(new_device: Callable[..., Device]) -> Device:
    """A device on ``beta`` that ships with root v1."""
    return new_device()


@pytest.fixture
def decrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every call to ``otaseal.formats.sealed.open_sealed`` (the client imports it late)."""
    calls: list[str] = []
    real = sealed.open_sealed

    def spy(src: Any, key: Any, out: Any, *, max_plaintext: int) -> tuple[str, int]:
        calls.append("open_sealed")
        return real(src, key, out, max_plaintext=max_plaintext)

    monkeypatch.setattr(sealed, "open_sealed", spy)
    return calls


@pytest.fixture
def project(tmp_path: Path, repo: Repository) -> Project:
    """The publisher's view of ``repo``'s store: the real operations with the fixed keys."""
    home = tmp_path / "project"
    home.mkdir()
    refs: dict[str, str] = {}
    for role, key in (("root", Keys.root[0]), ("beta", Keys.beta), ("production", Keys.production)):
        path = home / f"{role}.pem"
        path.write_bytes(key.to_pem())
        refs[role] = f"file:{path}"
    recipient = home / "app.pub.pem"
    recipient.write_bytes(Keys.decryption.public.to_pem())
    root_file = home / "root.json"
    root_file.write_bytes(repo.root_bytes)
    config = Config(
        path=home / "otaseal.yml",
        app=repo.app,
        store=str(repo.store.root),
        root=root_file,
        channels=("beta", "production"),
        keys=refs,
        recipients=(f"file:{recipient}",),
    )
    return Project(config, repo.store, clock=lambda: NOW)
