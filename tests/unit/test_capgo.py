"""Capgo's RSA and AES-CBC (crypto) and the artifact writer and verifier (formats/capgo)."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from otaseal import crypto
from otaseal.errors import DecryptionError, HashMismatchError, InputError, KeyMaterialError
from otaseal.formats.capgo import CapgoWriter, Tee, recover_checksum, verify_artifact

# Capgo's own contract vectors (Cap-go/capacitor-updater, native-contract-tests/crypto-rsa.json):
# blocks made with Node's crypto.privateEncrypt, as Capgo's CLI makes them. Public data.
CONTRACT_PUBLIC_PEM = (
    b"-----BEGIN RSA PUBLIC KEY-----\n"
    b"MIIBCgKCAQEAqJikYizowR4jGct5Uv8NdTjc+oXdnSp+I/P27huEx/eHTP+UQRIR\n"
    b"v6cYq2d9wOCU5qZpyf4P7u5qibvfWM+Db2L9FS6zjLrFxaKIVk4bnixHEkzFEwJ4\n"
    b"lIWq2cuwyVpdwriXvKRTen1bxslJHDKSkRAZX/u2rS+lbfs5k//2FBnVXK2aNGIv\n"
    b"I3Kl9bHl4xhnwe1CAahX+5j4mB50jrGJEYU/Ocp9gGHwwm4+smJhJRw8d6060dRY\n"
    b"SmoGQ34X4J4jO16Wln26TGNaSA0iBPVJt82MvO1FJJJFMAuIJDQfbysIKYFBWlBA\n"
    b"2OCmylv7cVls7DdUCiDIWbzNefCZa3RyBwIDAQAB\n"
    b"-----END RSA PUBLIC KEY-----"
)
CONTRACT_SESSION_BLOCK = (
    "371cabdcb9827ffbc75fa978701d4bb5751fbdbddc0f46b6670c10f4529a0d212ecebd1460b5aecda16fe3a13f14"
    "cfbc48da3768db978b93acc1e707fa7eab54ffc13062601eb2bce6a8f17bd0faa042cc44660f8f7235451c968609"
    "77abb57bfe031e01a21787d21fcc2f9bdf9f9fba07a8ab089db417bd0443633accbdad56d4a8ec0a1d3d35c7aafd"
    "163bd5f1b96fd94791911b2fe7f4561038dd9350ad703839281da43f07b06c78418e6af3530dc78d1fb9d4467ab2"
    "c83d745f01f051431cfbd70c8cad6db2f3153759e5bed6045a7e1b316d18a6aa06a1af38277e1daca559c5f1dc88"
    "7268c1ff19b51199a51e948fcc9cb9de8be0a05d2fd90c1d1988"
)
CONTRACT_CHECKSUM = (
    "05d6d98e02793a420054175330ffdad7bf0bbf64459829341663ca59c9ee2ef278ab8291b6d094410fbdd25d4bf4"
    "0528d965d8b4fad590daf212b0d309602f895b3bbcd492e7fd42783fbfe23afa70370afa9e6c6a0a606dc12ecbc2"
    "c14c6d7bde8e008b378c9dbe4d269626ecb2475c6ab86e8f9ea183352bad4439fd561273b8fa75799382b4dc99d1"
    "6172793ac200c5f885c9f5e91527afe2b95b0d0c6a9bcd8ce12897a7aff0c4901551f444396ba059d9adf4805719"
    "a86529ccc77cbaae58f6456eeeb44b936443b37a40e3b86ec883e4d58b16fb5dc1059171d4149568d42cda2ba474"
    "dcea82d706a8d89b55620c5fbac3d719922ee6753ff05f0d2bc8"
)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGN = ("openssl", "pkeyutl", "-sign", "-inkey")
WEAK_BITS = 1024  # refused: the plugin reads 256-byte blocks only


@pytest.fixture(scope="module")
def key() -> crypto.CapgoPrivateKey:
    return crypto.generate_capgo_key()


def _pem(private: object, fmt: serialization.PrivateFormat) -> bytes:
    assert isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return private.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


# --- known answers ------------------------------------------------------------------------------
def test_capgo_contract_vectors_recover_and_key_id() -> None:
    public = crypto.load_capgo_public_key(CONTRACT_PUBLIC_PEM)
    assert public.key_id == "MIIBCgKCAQEAqJikYizo"
    assert public.recover(bytes.fromhex(CONTRACT_SESSION_BLOCK)) == b"\xab" * 16
    assert recover_checksum(CONTRACT_CHECKSUM, public) == EMPTY_SHA256
    # The plugin also reads a checksum block given as base64.
    as_b64 = base64.b64encode(bytes.fromhex(CONTRACT_CHECKSUM)).decode()
    assert recover_checksum(as_b64, public) == EMPTY_SHA256
    with pytest.raises(DecryptionError, match="255 bytes"):
        recover_checksum("00" * 255, public)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_type1_is_byte_identical_to_openssl_private_encrypt(
    key: crypto.CapgoPrivateKey, tmp_path: Path
) -> None:
    pem = tmp_path / "k.pem"
    pem.write_bytes(key.to_pem())
    for message in (b"\x00" * 16, bytes(range(16)), hashlib.sha256(b"zip").digest()):
        theirs = subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-sign",
                "-inkey",
                str(pem),
                "-pkeyopt",
                "rsa_padding_mode:pkcs1",
            ],
            input=message,
            capture_output=True,
            check=True,
        ).stdout
        assert key.type1(message) == theirs


def test_type1_is_deterministic_and_recovers(key: crypto.CapgoPrivateKey) -> None:
    block = key.type1(b"k" * 16)
    assert len(block) == 256
    assert block == key.type1(b"k" * 16)
    assert key.public.recover(block) == b"k" * 16
    with pytest.raises(ValueError, match="too long"):
        key.type1(b"x" * 246)
    assert "CapgoPrivateKey(key_id=MIIBCgKCAQEA" in repr(key)


def test_fixed_primes_make_the_same_key_as_their_numbers(key: crypto.CapgoPrivateKey) -> None:
    private = serialization.load_pem_private_key(key.to_pem(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    numbers = private.private_numbers()
    again = crypto.capgo_key_from_primes(numbers.p, numbers.q)
    assert again.public == key.public
    assert again.type1(b"m" * 16) == key.type1(b"m" * 16)
    small = rsa.generate_private_key(65537, WEAK_BITS).private_numbers()
    with pytest.raises(KeyMaterialError, match="RSA-1024"):
        crypto.capgo_key_from_primes(small.p, small.q)


# --- loading keys -------------------------------------------------------------------------------
def test_pkcs1_private_key_loads_from_pem_and_der(key: crypto.CapgoPrivateKey) -> None:
    assert key.to_pem().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert crypto.load_capgo_private_key(key.to_pem()).public == key.public
    der = serialization.load_pem_private_key(key.to_pem(), None).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert crypto.load_capgo_private_key(der).public == key.public
    assert crypto.load_capgo_public_key(key.public.pem) == key.public


def test_keys_that_are_not_rsa_2048_pkcs1_are_refused(key: crypto.CapgoPrivateKey) -> None:
    private = serialization.load_pem_private_key(key.to_pem(), None)
    pkcs8 = _pem(private, serialization.PrivateFormat.PKCS8)
    pkcs8_der = serialization.load_pem_private_key(pkcs8, None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    big = _pem(
        rsa.generate_private_key(65537, 3072), serialization.PrivateFormat.TraditionalOpenSSL
    )
    ec_key = _pem(
        ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL
    )
    ec_der = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    cases = {
        pkcs8: "not a PKCS#1 RSA private key",
        pkcs8_der: "DER key that is not in PKCS#1 form",
        big: "RSA-3072",
        ec_key: "not a PKCS#1 RSA private key",
        ec_der: "not an RSA key",
        key.public.pem: "is the Capgo public key",
        b"-----BEGIN RSA PRIVATE KEY-----\nnope\n-----END RSA PRIVATE KEY-----\n": "readable",
        b"garbage": "readable",
    }
    for data, message in cases.items():
        with pytest.raises(KeyMaterialError, match=message) as caught:
            crypto.load_capgo_private_key(data, source="keys.capgo")
        assert caught.value.exit_code == 2
        assert "keygen --kind capgo" in caught.value.diagnostics()
        assert "\n" not in caught.value.diagnostics()


def test_public_keys_that_the_plugin_cannot_load_are_refused(key: crypto.CapgoPrivateKey) -> None:
    spki = serialization.load_pem_public_key(key.public.pem).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    small = (
        rsa.generate_private_key(65537, WEAK_BITS)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    )
    bad = b"-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n"
    for data, message in ((spki, "not a PKCS#1"), (small, "RSA-2048"), (bad, "readable")):
        with pytest.raises(KeyMaterialError, match=message):
            crypto.load_capgo_public_key(data)


def test_recover_refuses_blocks_of_another_size_or_key(key: crypto.CapgoPrivateKey) -> None:
    other = crypto.generate_capgo_key()
    with pytest.raises(DecryptionError, match="255 bytes"):
        key.public.recover(b"\x01" * 255)
    with pytest.raises(DecryptionError, match="does not open"):
        key.public.recover(other.type1(b"k" * 16))


# --- the artifact -------------------------------------------------------------------------------
def _make(
    key: crypto.CapgoPrivateKey, zip_bytes: bytes, **fixed: bytes
) -> tuple[bytes, CapgoWriter]:
    out = io.BytesIO()
    writer = CapgoWriter(out, key, **fixed)
    for i in range(0, len(zip_bytes), 1000):  # pieces that do not line up with AES blocks
        writer.write(zip_bytes[i : i + 1000])
    writer.close()
    return out.getvalue(), writer


@pytest.mark.parametrize("size", [1, 15, 16, 4096, 100_003])
def test_artifact_round_trip(key: crypto.CapgoPrivateKey, size: int) -> None:
    zip_bytes = hashlib.shake_256(b"zip").digest(size)
    data, writer = _make(key, zip_bytes)
    result = writer.close()
    assert len(data) == result.length == (size // 16 + 1) * 16  # a whole extra block if aligned
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.plaintext_sha256 == hashlib.sha256(zip_bytes).hexdigest()
    assert result.plaintext_length == size
    iv, block = result.session_key.split(":")
    assert (len(iv), len(block)) == (24, 344)
    assert len(result.checksum) == 512
    assert result.checksum == result.checksum.lower()
    assert result.key_id == key.public.key_id
    assert result.artifact().to_dict()["checksum"] == result.checksum
    out = io.BytesIO()
    digest = verify_artifact(
        io.BytesIO(data),
        public_key=key.public,
        session_key=result.session_key,
        checksum=result.checksum,
        out=out,
        max_length=result.length,
        sha256=result.sha256,
    )
    assert digest == result.plaintext_sha256
    assert out.getvalue() == zip_bytes
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert verify_artifact(
        chunks, public_key=key.public, session_key=result.session_key, checksum=result.checksum
    ) == (result.plaintext_sha256)


def test_fresh_key_and_iv_for_every_artifact(key: crypto.CapgoPrivateKey) -> None:
    first, a = _make(key, b"same zip")
    second, b = _make(key, b"same zip")
    assert first != second
    assert a.close().session_key != b.close().session_key
    assert a.close().checksum == b.close().checksum  # the same zip: the same signed digest


def test_fixed_key_and_iv_are_for_vectors_only(key: crypto.CapgoPrivateKey) -> None:
    fixed = {"unsafe_fixed_aes_key": bytes(16), "unsafe_fixed_iv": bytes(range(16))}
    first, _ = _make(key, b"zip", **fixed)
    second, writer = _make(key, b"zip", **fixed)
    assert first == second
    assert writer.close().session_key.startswith(base64.b64encode(bytes(range(16))).decode())
    with pytest.raises(InputError, match="15 bytes"):
        CapgoWriter(io.BytesIO(), key, unsafe_fixed_iv=bytes(15))


def test_writer_after_close_and_tee(key: crypto.CapgoPrivateKey) -> None:
    plain = io.BytesIO()
    out = io.BytesIO()
    writer = CapgoWriter(out, key)
    tee = Tee(plain, writer)
    assert tee.write(b"abc") == 3
    assert writer.close() is writer.close()
    assert plain.getvalue() == b"abc"
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")


def _session(iv: bytes, block: bytes) -> str:
    return base64.b64encode(iv).decode() + ":" + base64.b64encode(block).decode()


def test_verifier_refuses_malformed_session_keys_and_lengths(key: crypto.CapgoPrivateKey) -> None:
    data, writer = _make(key, b"zip bytes")
    result = writer.close()
    good_block = key.type1(b"k" * 16)

    def check(session_key: str, message: str, *, checksum: str = result.checksum) -> None:
        with pytest.raises(DecryptionError, match=message):
            verify_artifact(
                io.BytesIO(data), public_key=key.public, session_key=session_key, checksum=checksum
            )

    check("only-one-part", "two non-empty parts")
    check(":" + result.session_key.split(":")[1], "two non-empty parts")
    check("a:b:c", "two non-empty parts")
    check("!!!!:" + result.session_key.split(":")[1], "not base64")
    check(_session(bytes(8), good_block), "IV has 8 bytes")
    check(_session(bytes(16), key.type1(b"k" * 15)), "15-byte AES key")
    check(result.session_key, "not signed", checksum=hashlib.sha256(b"zip bytes").hexdigest())
    with pytest.raises(DecryptionError, match="empty"):
        verify_artifact(
            io.BytesIO(b""),
            public_key=key.public,
            session_key=result.session_key,
            checksum=result.checksum,
        )
    with pytest.raises(HashMismatchError, match="signed digest"):
        verify_artifact(
            io.BytesIO(data),
            public_key=key.public,
            session_key=result.session_key,
            checksum=result.checksum,
            sha256="0" * 64,
        )
