"""Interop with Capgo's own CLI (``@capgo/cli`` 8.68.1): each side accepts the other's artifact.

How the CLI is installed and run (once per session, offline, V3 checksums) is in
``capgo_support.py``. Without ``node`` and ``npm`` the tests skip and say so.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from tests.integration.capgo_support import Capgo, json_of, make_project, needs_node

from otaseal import crypto
from otaseal import operations as ops
from otaseal.config import load_config
from otaseal.errors import BundleError, HashMismatchError
from otaseal.formats.capgo import verify_artifact
from otaseal.project import init_project
from otaseal.store import capgo_key

APP = "com.example.interop"
NOW = ops.now_utc()

pytestmark = needs_node


@pytest.fixture(scope="session")
def capgo(tmp_path_factory: pytest.TempPathFactory) -> Capgo:
    """The CLI in a project with a key it made (``capgo key create``)."""
    made = make_project(tmp_path_factory.mktemp("capgo-project"), APP)
    done = made.run("key", "create")
    assert made.private_key.is_file(), done.stdout + done.stderr
    return made


def _web(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "index.html").write_text(f"<!doctype html><h1>{text}</h1>\n")
    (folder / "app.js").write_text(f"window.notifyAppReady && notifyAppReady(); // {text}\n")
    (folder / "photo.webp").write_bytes(hashlib.shake_256(text.encode()).digest(3000))  # stored
    return folder


@dataclass(frozen=True)
class Published:
    artifact: Path
    session_key: str
    checksum: str
    zip_bytes: bytes


@pytest.fixture(scope="session")
def ours(capgo: Capgo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Published]:
    """Two builds published by otaseal with the key Capgo's CLI made (keys.capgo)."""
    home = tmp_path_factory.mktemp("otaseal-project")
    init_project(APP, home / "p", now=NOW, formats=("sealed", "capgo"))
    config = load_config(home / "p" / "otaseal.yml")
    config = replace(config, keys={**config.keys, "capgo": f"file:{capgo.private_key}"})
    project = ops.Project(config, ops.open_store(config.store))
    public = crypto.load_capgo_public_key(capgo.public_key.read_bytes())
    out = {}
    for label in ("1.0.0", "2.0.0"):
        release = ops.publish(
            project, _web(home / label, label), channel="beta", label=label
        ).release
        assert release.capgo is not None
        assert release.capgo.key_id == public.key_id
        artifact = Path(project.store.describe()) / capgo_key(APP, release.capgo.sha256)
        zip_out = io.BytesIO()
        verify_artifact(
            io.BytesIO(artifact.read_bytes()),
            public_key=public,
            session_key=release.capgo.session_key,
            checksum=release.capgo.checksum,
            out=zip_out,
        )
        out[label] = Published(
            artifact, release.capgo.session_key, release.capgo.checksum, zip_out.getvalue()
        )
    return out


def _decrypt(capgo: Capgo, enc: Path, session_key: str, checksum: str):
    """``capgo bundle decrypt`` on a copy of ``enc`` in the project folder."""
    local = capgo.folder / f"{hashlib.sha256(enc.read_bytes()).hexdigest()[:12]}.enc"
    shutil.copyfile(enc, local)
    done = capgo.run(
        "bundle",
        "decrypt",
        local.name,
        session_key,
        "--checksum",
        checksum,
        "--key",
        str(capgo.public_key),
    )
    return done, local.with_name(local.name + "_decrypted.zip")


def test_capgo_cli_decrypts_our_artifact_byte_for_byte(
    capgo: Capgo, ours: dict[str, Published]
) -> None:
    build = ours["1.0.0"]
    done, decrypted = _decrypt(capgo, build.artifact, build.session_key, build.checksum)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Checksum matches" in done.stdout
    assert "V3" in done.stdout  # the CLI read the stub updater version, as a real project would
    assert decrypted.read_bytes() == build.zip_bytes


def test_our_verifier_accepts_capgo_cli_zip_and_encrypt(capgo: Capgo, tmp_path: Path) -> None:
    dist = _web(tmp_path / "dist", "made by capgo")
    zipped = capgo.run(
        "bundle", "zip", APP, "--path", str(dist), "--bundle", "1.0.1", "--json", "--no-code-check"
    )
    assert zipped.returncode == 0, zipped.stdout + zipped.stderr
    made = json_of(zipped.stdout)
    zip_path = capgo.folder / made["filename"]
    assert made["checksum"] == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    encrypted = capgo.run(
        "bundle", "encrypt", made["filename"], made["checksum"], "--key", str(capgo.private_key),
        "--json",
    )  # fmt: skip
    assert encrypted.returncode == 0, encrypted.stdout + encrypted.stderr
    enc = json_of(encrypted.stdout)
    assert len(enc["checksum"]) == 512  # V3: hex of the 256-byte block
    public = crypto.load_capgo_public_key(capgo.public_key.read_bytes())
    out = io.BytesIO()
    digest = verify_artifact(
        io.BytesIO((capgo.folder / enc["filename"]).read_bytes()),
        public_key=public,
        session_key=enc["ivSessionKey"],
        checksum=enc["checksum"],
        out=out,
    )
    assert digest == made["checksum"]
    assert out.getvalue() == zip_path.read_bytes()


def test_flipped_ciphertext_byte_is_refused_by_both(
    capgo: Capgo, ours: dict[str, Published], tmp_path: Path
) -> None:
    build = ours["1.0.0"]
    data = bytearray(build.artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "tampered.enc"
    tampered.write_bytes(bytes(data))
    done, _ = _decrypt(capgo, tampered, build.session_key, build.checksum)
    assert done.returncode != 0
    assert "Checksum does not match" in done.stdout + done.stderr
    public = crypto.load_capgo_public_key(capgo.public_key.read_bytes())
    with pytest.raises(BundleError):
        verify_artifact(
            io.BytesIO(bytes(data)),
            public_key=public,
            session_key=build.session_key,
            checksum=build.checksum,
        )


def test_checksum_of_another_build_is_refused_by_both(
    capgo: Capgo, ours: dict[str, Published]
) -> None:
    one, two = ours["1.0.0"], ours["2.0.0"]
    done, _ = _decrypt(capgo, one.artifact, one.session_key, two.checksum)
    assert done.returncode != 0
    assert "Checksum does not match" in done.stdout + done.stderr
    public = crypto.load_capgo_public_key(capgo.public_key.read_bytes())
    with pytest.raises(HashMismatchError):
        verify_artifact(
            io.BytesIO(one.artifact.read_bytes()),
            public_key=public,
            session_key=one.session_key,
            checksum=two.checksum,
        )
