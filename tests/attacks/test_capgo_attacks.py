"""Attacks on the Capgo-format artifact, against our verifier (the plugin's checks, in Python).

The artifact is AES-128-CBC with no MAC: its integrity rests on the checksum block only the
private key can make, and on the release entry that the channel key signs. Each attack changes
what a bucket or CDN could change, and must be refused with a ``BundleError`` (or, for the
signed entry, a ``MetadataError``). The same attacks against Capgo's own CLI are in
``tests/integration/test_capgo_interop.py``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from otaseal import crypto, dsse, operations, trust
from otaseal.archive import pack
from otaseal.errors import (
    BundleError,
    DecryptionError,
    HashMismatchError,
    LengthError,
    UnsignedMetadataError,
)
from otaseal.formats.capgo import CapgoResult, CapgoWriter, verify_artifact
from otaseal.store import manifest_key

KEY = crypto.generate_capgo_key()
ATTACKER = crypto.generate_capgo_key()


def default_files(label: str) -> dict[str, bytes]:
    return {
        "index.html": f"<!doctype html><title>{label}</title><h1>{label}</h1>\n".encode(),
        "assets/app.js": f"console.log('web build {label}');\n".encode(),
    }


def _zip(tmp_path: Path, label: str) -> bytes:
    build = tmp_path / f"build-{label}"
    for name, data in default_files(label).items():
        target = build.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    # an incompressible file, stored rather than deflated, spanning many AES blocks
    (build / "assets" / "photo.webp").write_bytes(hashlib.shake_256(label.encode()).digest(5000))
    out = io.BytesIO()
    pack(build, out, workers=1)
    return out.getvalue()


def _artifact(zip_bytes: bytes, key: crypto.CapgoPrivateKey = KEY) -> tuple[bytes, CapgoResult]:
    out = io.BytesIO()
    writer = CapgoWriter(out, key)
    writer.write(zip_bytes)
    result = writer.close()  # before reading ``out``: close emits the last, padded block
    return out.getvalue(), result


def _verify(data: bytes, result: CapgoResult, **changes: str) -> str:
    fields = {"session_key": result.session_key, "checksum": result.checksum} | changes
    return verify_artifact(io.BytesIO(data), public_key=KEY.public, **fields)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, CapgoResult]:
    zip_bytes = _zip(tmp_path_factory.mktemp("capgo"), "1.0.0")
    data, result = _artifact(zip_bytes)
    assert _verify(data, result) == hashlib.sha256(zip_bytes).hexdigest()
    return zip_bytes, data, result


@pytest.mark.parametrize("where", ["first block", "middle", "next to last block", "last byte"])
def test_flipped_ciphertext_byte_is_refused(build: tuple[bytes, bytes, CapgoResult], where: str):
    _, data, result = build
    position = {
        "first block": 3,
        "middle": len(data) // 2,
        "next to last block": len(data) - 20,
        "last byte": len(data) - 1,
    }[where]
    tampered = bytearray(data)
    tampered[position] ^= 0x01
    with pytest.raises(BundleError) as caught:
        _verify(bytes(tampered), result)
    assert isinstance(caught.value, HashMismatchError | DecryptionError)


def test_checksum_of_another_build_is_refused(
    build: tuple[bytes, bytes, CapgoResult], tmp_path: Path
) -> None:
    _, data, result = build
    _, other = _artifact(_zip(tmp_path, "2.0.0"))
    with pytest.raises(HashMismatchError, match="signed checksum"):
        _verify(data, result, checksum=other.checksum)


def test_artifact_of_an_older_release_swapped_in_is_refused(
    build: tuple[bytes, bytes, CapgoResult], tmp_path: Path
) -> None:
    """The bucket serves another release's artifact under this release's entry."""
    _, _, result = build
    older, _ = _artifact(_zip(tmp_path, "0.9.0"))
    with pytest.raises(BundleError):
        verify_artifact(
            io.BytesIO(older),
            public_key=KEY.public,
            session_key=result.session_key,
            checksum=result.checksum,
            sha256=result.sha256,
        )


def test_session_key_made_with_an_attacker_key_is_refused(
    build: tuple[bytes, bytes, CapgoResult],
) -> None:
    zip_bytes, _, _ = build
    data, forged = _artifact(zip_bytes + b"evil", key=ATTACKER)
    with pytest.raises(DecryptionError, match="does not open"):
        _verify(data, forged)


def test_checksum_made_with_an_attacker_key_is_refused(
    build: tuple[bytes, bytes, CapgoResult],
) -> None:
    _, data, result = build
    forged = ATTACKER.type1(hashlib.sha256(b"evil zip").digest()).hex()
    with pytest.raises(DecryptionError, match="does not open"):
        _verify(data, result, checksum=forged)


def test_truncated_artifact_is_refused(build: tuple[bytes, bytes, CapgoResult]) -> None:
    _, data, result = build
    with pytest.raises(DecryptionError, match="length or padding"):
        _verify(data[:-5], result)
    with pytest.raises(BundleError):
        _verify(data[:-16], result)


def test_appended_bytes_are_refused(build: tuple[bytes, bytes, CapgoResult]) -> None:
    _, data, result = build
    with pytest.raises(BundleError):
        _verify(data + data[-16:], result)
    with pytest.raises(LengthError):
        verify_artifact(
            io.BytesIO(data + bytes(16)),
            public_key=KEY.public,
            session_key=result.session_key,
            checksum=result.checksum,
            max_length=result.length,
        )


def test_v2_checksum_encoding_is_refused(build: tuple[bytes, bytes, CapgoResult]) -> None:
    """Capgo's CLI "V2": the hex digest read as base64 text, signed, printed as base64."""
    zip_bytes, data, result = build
    digest_hex = hashlib.sha256(zip_bytes).hexdigest()
    v2 = base64.b64encode(KEY.type1(base64.b64decode(digest_hex))).decode()
    with pytest.raises(HashMismatchError):
        _verify(data, result, checksum=v2)


@pytest.mark.parametrize("kind", ["unsigned sha256", "crc32"])
def test_unsigned_checksum_is_refused(build: tuple[bytes, bytes, CapgoResult], kind: str) -> None:
    zip_bytes, data, result = build
    checksum = hashlib.sha256(zip_bytes).hexdigest() if kind == "unsigned sha256" else "1a2b3c4d"
    with pytest.raises(DecryptionError, match="not signed"):
        _verify(data, result, checksum=checksum)


def test_capgo_entry_altered_in_a_signed_manifest_is_refused(
    project: operations.Project, tmp_path: Path
) -> None:
    """The release entry's checksum is swapped for another build's, keeping the signature."""
    key_file = tmp_path / "capgo.pem"
    key_file.write_bytes(KEY.to_pem())
    config = replace(
        project.config,
        formats=("sealed", "capgo"),
        keys={**project.config.keys, "capgo": f"file:{key_file}"},
    )
    project = replace(project, config=config)
    build_dir = tmp_path / "web"
    for name, data in default_files("3.0.0").items():
        target = build_dir.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    published = operations.publish(project, build_dir, channel="beta")
    assert published.release.capgo is not None
    key = manifest_key(project.app, "beta", published.change.manifest.version)
    envelope = json.loads(project.store.read(key)[0])
    payload = json.loads(base64.b64decode(envelope["payload"]))
    _, other = _artifact(_zip(tmp_path, "evil"))
    payload["releases"][0]["capgo"]["checksum"] = other.checksum
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    root, _ = project.root()
    with pytest.raises(UnsignedMetadataError):
        trust.verify_channel_signature(root, json.dumps(envelope).encode(), channel="beta")
    assert envelope["payloadType"] == dsse.PAYLOAD_TYPE_CHANNEL
