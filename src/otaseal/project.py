"""Creating projects and keys: ``otaseal init`` and ``otaseal keygen``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from otaseal import dsse
from otaseal.config import CONFIG_NAME, FORMATS
from otaseal.crypto import (
    CapgoPrivateKey,
    DecryptionKey,
    SigningKey,
    generate_capgo_key,
    generate_decryption_key,
    generate_signing_key,
)
from otaseal.errors import InputError
from otaseal.model import Role, Root, channel_role, check_app_id
from otaseal.store import root_key

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

ROOT_LIFETIME = timedelta(days=365)
DEFAULT_CHANNELS = ("beta", "production")


def write_private(path: Path, data: bytes) -> None:
    """Write a private key 0600, refusing to overwrite an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(
            f"{path} already exists",
            expected="a path where no key exists yet",
            fix="choose another --out path; otaseal never overwrites a key",
        ) from None
    except OSError as exc:
        raise InputError(f"cannot write {path} ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _public_path(private: Path) -> Path:
    return private.with_name(private.name.removesuffix(".pem") + ".pub.pem")


@dataclass(frozen=True, slots=True)
class KeygenResult:
    """What ``keygen`` wrote: never the private key itself."""

    kind: str
    private_key: Path
    public_key: Path
    keyid: str
    algorithm: str
    capacitor_public_key: str | None = None  # capgo: the publicKey value, as a JSON string


def capacitor_public_key(key: CapgoPrivateKey) -> str:
    """The ``publicKey`` value for ``capacitor.config``: the PKCS#1 PEM as a JSON string."""
    return json.dumps(key.public.pem.decode("ascii"))


def keygen(kind: str, out: Path, *, algorithm: str = "ecdsa-p256-sha256") -> KeygenResult:
    """Make one signing, encryption or Capgo key; the public half goes next to it (``.pub.pem``)."""
    key: SigningKey | DecryptionKey | CapgoPrivateKey
    capacitor = None
    if kind == "signing":
        key = generate_signing_key(algorithm)
        public_pem, keyid, alg = key.public.to_pem(), key.keyid, key.algorithm
    elif kind == "encryption":
        key = generate_decryption_key()
        public_pem, keyid, alg = key.public.to_pem(), key.public.keyid, "hpke-p256"
    elif kind == "capgo":
        key = generate_capgo_key()
        public_pem, keyid, alg = key.public.pem, key.public.key_id, "rsa-2048-pkcs1"
        capacitor = capacitor_public_key(key)
    else:
        raise InputError(f"unknown key kind {kind!r}", expected="signing, encryption or capgo")
    if not out.parent.is_dir():
        raise InputError(
            f"the folder {out.parent} does not exist", fix="create it first or pass another --out"
        )
    public = _public_path(out)
    write_private(out, key.to_pem())
    public.write_bytes(public_pem)
    return KeygenResult(kind, out, public, keyid, alg, capacitor)


def make_root(
    app: str,
    version: int,
    *,
    now: datetime,
    root_keys: list[SigningKey],
    channel_keys: dict[str, list[SigningKey]],
    threshold: int = 1,
) -> Root:
    """A root listing every key and role (used by init and by tests for rotations)."""
    keys = {k.keyid: k.public for k in root_keys}
    roles = {"root": Role(tuple(k.keyid for k in root_keys), threshold)}
    for channel, signers in channel_keys.items():
        keys.update({k.keyid: k.public for k in signers})
        roles[channel_role(channel)] = Role(tuple(k.keyid for k in signers), 1)
    return Root(
        app=app, version=version, issued=now, expires=now + ROOT_LIFETIME, keys=keys, roles=roles
    )


def sign_root(root: Root, signers: list[dsse.Signer]) -> bytes:
    """The DSSE envelope bytes of ``root``."""
    return dsse.sign(dsse.PAYLOAD_TYPE_ROOT, root.to_payload(), signers).to_json()


@dataclass(frozen=True, slots=True)
class InitResult:
    """Paths ``init`` created."""

    config: Path
    root: Path
    store: Path
    keys: dict[str, Path]
    decryption_key: Path
    formats: tuple[str, ...] = ("sealed",)
    capgo_private_key: Path | None = None
    capgo_public_key: Path | None = None
    capacitor_public_key: str | None = None


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """``sealed`` or ``sealed,capgo``: the sealed format is always published."""
    chosen = tuple(dict.fromkeys(f.strip() for f in formats if f.strip()))
    if "sealed" not in chosen or not set(chosen) <= set(FORMATS):
        raise InputError(
            f"formats {','.join(chosen) or '(none)'} are not allowed",
            expected="sealed, or sealed,capgo",
            fix="pass --formats sealed,capgo to publish Capgo's format as well",
        )
    return chosen


def init_project(
    app: str,
    directory: Path,
    *,
    now: datetime,
    algorithm: str = "ecdsa-p256-sha256",
    formats: Sequence[str] = ("sealed",),
) -> InitResult:
    """Create keys, a signed root.json v1, otaseal.yml and a folder store."""
    check_app_id(app)
    formats = check_formats(formats)
    config_path = directory / CONFIG_NAME
    if config_path.exists():
        raise InputError(
            f"{config_path} already exists",
            expected="a directory without an otaseal project",
            fix="use that project, or pass another --dir",
        )
    keys_dir = directory / "keys"
    try:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise InputError(
            f"cannot create {keys_dir} ({exc.strerror})", fix="pass a writable --dir"
        ) from None
    signers = {role: generate_signing_key(algorithm) for role in ("root", *DEFAULT_CHANNELS)}
    paths: dict[str, Path] = {}
    for role, key in signers.items():
        paths[role] = keys_dir / f"{role}.pem"
        write_private(paths[role], key.to_pem())
        _public_path(paths[role]).write_bytes(key.public.to_pem())
    decryption = generate_decryption_key()
    decryption_path = keys_dir / "app-decryption.pem"
    write_private(decryption_path, decryption.to_pem())
    _public_path(decryption_path).write_bytes(decryption.public.to_pem())
    report = generate_decryption_key()
    report_path = keys_dir / "report.pem"
    write_private(report_path, report.to_pem())
    _public_path(report_path).write_bytes(report.public.to_pem())
    capgo_path, capgo_public, capacitor = None, None, None
    if "capgo" in formats:
        capgo = generate_capgo_key()
        capgo_path = keys_dir / "capgo.pem"
        capgo_public = _public_path(capgo_path)
        write_private(capgo_path, capgo.to_pem())
        capgo_public.write_bytes(capgo.public.pem)
        capacitor = capacitor_public_key(capgo)
    (keys_dir / ".gitignore").write_text("# private keys never go into git\n*.pem\n!*.pub.pem\n")

    root = make_root(
        app,
        1,
        now=now,
        root_keys=[signers["root"]],
        channel_keys={c: [signers[c]] for c in DEFAULT_CHANNELS},
    )
    envelope = sign_root(root, [signers["root"]])
    root_path = directory / "root.json"
    root_path.write_bytes(envelope)
    store = directory / "store"
    first_root = store.joinpath(*root_key(app, 1).split("/"))
    first_root.parent.mkdir(parents=True, exist_ok=True)
    first_root.write_bytes(envelope)
    config_path.write_text(
        "# otaseal project: see README, 'Configuration'.\n"
        f"app: {app}\n"
        "store: store            # a folder (relative to this file) or s3://bucket/prefix\n"
        "root: root.json\n"
        f"channels: [{', '.join(DEFAULT_CHANNELS)}]\n"
        "keys:                   # file:PATH, env:NAME, aws-sm://, vault://, kms://, ...\n"
        + "".join(f"  {role}: file:keys/{role}.pem\n" for role in signers)
        + "  report: file:keys/report.pem   # CI only: opens earlier releases for delta patches\n"
        + (
            "  capgo: file:keys/capgo.pem   # RSA-2048 PKCS#1, for the capgo format\n"
            if capgo_path
            else ""
        )
        + "recipients:             # app decryption PUBLIC keys (several during a rotation)\n"
        "  - file:keys/app-decryption.pub.pem\n"
        "# CI-only key: lets the Action read a previous release's file list for the PR comment,\n"
        "# and publish open earlier releases to make delta patches (ADR 0010)\n"
        "report_recipient: file:keys/report.pub.pem\n"
        "manifest_expiry_days: 30\n"
        f"formats: [{', '.join(formats)}]   # sealed always; capgo for @capgo/capacitor-updater\n",
        encoding="utf-8",
    )
    return InitResult(
        config_path,
        root_path,
        store,
        {**paths, "report": report_path},
        decryption_path,
        formats,
        capgo_path,
        capgo_public,
        capacitor,
    )
