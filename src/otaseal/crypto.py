"""The only module that imports ``cryptography``.

Everything above speaks in the small types defined here: :class:`SigningKey`, :class:`PublicKey`,
:class:`DecryptionKey`, :class:`RecipientKey` and :class:`SegmentCipher`. Key ids are the
SHA-256 of the public key's DER SubjectPublicKeyInfo, lowercase hex.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Literal

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from otaseal.errors import DecryptionError, KeyMaterialError

Algorithm = Literal["ecdsa-p256-sha256", "ed25519"]
ALGORITHMS: Final[tuple[str, ...]] = ("ecdsa-p256-sha256", "ed25519")
KEM_ID: Final = "dhkem-p256-hkdf-sha256/hkdf-sha256/aes-256-gcm"
_HPKE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
_DER = serialization.Encoding.DER
_PEM = serialization.Encoding.PEM
_ECDSA = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


def keyid_of(spki_der: bytes) -> str:
    """Key id: SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex."""
    return hashlib.sha256(spki_der).hexdigest()


# --- signing -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verification key as root.json lists it: algorithm and DER SPKI."""

    algorithm: str
    der: bytes

    @property
    def keyid(self) -> str:
        """SHA-256 of the DER SPKI."""
        return keyid_of(self.der)

    def is_valid_signature(self, signature: bytes, data: bytes) -> bool:
        """Check ``signature`` over ``data`` with the algorithm pinned by the trusted entry."""
        try:
            key = serialization.load_der_public_key(self.der)
            if self.algorithm == "ecdsa-p256-sha256":
                if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                    return False
                key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            elif self.algorithm == "ed25519":
                if not isinstance(key, ed25519.Ed25519PublicKey):
                    return False
                key.verify(signature, data)
            else:
                return False
        except (InvalidSignature, ValueError, UnsupportedAlgorithm):
            return False
        return True

    def to_pem(self) -> bytes:
        """PEM SubjectPublicKeyInfo."""
        return serialization.load_der_public_key(self.der).public_bytes(_PEM, _SPKI)

    def is_canonical(self) -> bool:
        """One key, one encoding: otherwise a key could be listed (and counted) twice."""
        try:
            again = load_public_key(self.der)
        except KeyMaterialError:
            return False
        return again == self


class SigningKey:
    """A private signing key held in this process (ECDSA P-256 with RFC 6979, or Ed25519)."""

    __slots__ = ("_key", "algorithm", "public")

    def __init__(self, key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self.algorithm: str = (
            "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else ("ecdsa-p256-sha256")
        )
        self.public = PublicKey(self.algorithm, key.public_key().public_bytes(_DER, _SPKI))

    def __repr__(self) -> str:
        return f"SigningKey({self.algorithm}, keyid={self.keyid[:12]}…)"

    @property
    def keyid(self) -> str:
        """Key id of the public half."""
        return self.public.keyid

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``: DER ECDSA (deterministic, RFC 6979) or raw Ed25519."""
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data)
        return self._key.sign(data, _ECDSA)

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM; callers write it 0600 and never print it."""
        return self._key.private_bytes(
            _PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def generate_signing_key(algorithm: str = "ecdsa-p256-sha256") -> SigningKey:
    """Make a new signing key."""
    if algorithm == "ed25519":
        return SigningKey(ed25519.Ed25519PrivateKey.generate())
    if algorithm == "ecdsa-p256-sha256":
        return SigningKey(ec.generate_private_key(ec.SECP256R1()))
    raise KeyMaterialError(
        f"unknown signing algorithm {algorithm!r}",
        expected="one of " + ", ".join(ALGORITHMS),
        fix="pass --algorithm ecdsa-p256-sha256 (default) or ed25519",
    )


def signing_key_from_scalar(secret: int) -> SigningKey:
    """ECDSA P-256 key from a fixed scalar: only for golden test vectors."""
    return SigningKey(ec.derive_private_key(secret, ec.SECP256R1()))


def _load_private(data: bytes, source: str) -> object:
    try:
        # Never strip DER: its last bytes are key material and may look like whitespace.
        if data.lstrip().startswith(b"-----BEGIN"):
            return serialization.load_pem_private_key(data.strip(), password=None)
        return serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyMaterialError(
            f"{source} is not a readable private key",
            expected="an unencrypted PKCS#8 PEM private key as written by `otaseal keygen`",
            fix="check the path or secret, or make a new key with `otaseal keygen`",
        ) from None


def load_signing_key(data: bytes, *, source: str = "the key") -> SigningKey:
    """Load a PEM/DER private signing key; wrong type or garbage gives a clear error."""
    key = _load_private(data, source)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return SigningKey(key)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return SigningKey(key)
    raise KeyMaterialError(
        f"{source} is a {type(key).__name__.removeprefix('_')}, not a signing key",
        expected="an ECDSA P-256 or Ed25519 private key",
        fix="use the key made by `otaseal keygen --kind signing`",
    )


def load_public_key(data: bytes, *, source: str = "the public key") -> PublicKey:
    """Load a PEM or DER public key as a verification key."""
    try:
        key = (
            serialization.load_pem_public_key(data.strip())
            if data.lstrip().startswith(b"-----BEGIN")
            else serialization.load_der_public_key(data)
        )
    except (ValueError, UnsupportedAlgorithm):
        raise KeyMaterialError(
            f"{source} is not a readable public key", expected="a PEM SubjectPublicKeyInfo"
        ) from None
    der = key.public_bytes(_DER, _SPKI)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return PublicKey("ed25519", der)
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return PublicKey("ecdsa-p256-sha256", der)
    raise KeyMaterialError(
        f"{source} has an unsupported type", expected="an ECDSA P-256 or Ed25519 public key"
    )


def public_key_from_der(algorithm: str, der: bytes) -> PublicKey:
    """A verification key from a remote signer's DER SPKI (KMS, Vault transit)."""
    loaded = load_public_key(der, source="the remote signer's public key")
    if loaded.algorithm != algorithm:
        raise KeyMaterialError(
            f"the remote signer's key is {loaded.algorithm}",
            expected=algorithm,
            fix="create the key as ECC_NIST_P256 / ecdsa-p256 with SIGN_VERIFY usage",
        )
    return loaded


# --- encryption (HPKE recipients, segment AEAD) -------------------------------------------------
@dataclass(frozen=True, slots=True)
class RecipientKey:
    """An app's public decryption key: CI wraps each bundle's content key to it."""

    der: bytes

    @property
    def keyid(self) -> str:
        """SHA-256 of the DER SPKI."""
        return keyid_of(self.der)

    def wrap(self, content_key: bytes, info: bytes) -> bytes:
        """HPKE base-mode single-shot seal: ``enc ‖ ciphertext ‖ tag``."""
        key = serialization.load_der_public_key(self.der)
        assert isinstance(key, ec.EllipticCurvePublicKey)  # noqa: S101 - checked on load
        return _HPKE.encrypt(content_key, key, info=info)

    def to_pem(self) -> bytes:
        """PEM SubjectPublicKeyInfo."""
        return serialization.load_der_public_key(self.der).public_bytes(_PEM, _SPKI)


class DecryptionKey:
    """The app's HPKE P-256 private key (ships inside the app; see the threat model)."""

    __slots__ = ("_key", "public")

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.public = RecipientKey(key.public_key().public_bytes(_DER, _SPKI))

    def __repr__(self) -> str:
        return f"DecryptionKey(keyid={self.public.keyid[:12]}…)"

    def unwrap(self, wrapped: bytes, info: bytes) -> bytes:
        """Open an HPKE-wrapped content key, or raise :class:`DecryptionError`."""
        try:
            return _HPKE.decrypt(wrapped, self._key, info=info)
        except (InvalidTag, ValueError):
            raise DecryptionError(
                "the bundle's wrapped content key does not open with this decryption key",
                expected="a bundle sealed to this app's recipient key",
            ) from None

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM."""
        return self._key.private_bytes(
            _PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def generate_decryption_key() -> DecryptionKey:
    """Make a new HPKE P-256 key pair."""
    return DecryptionKey(ec.generate_private_key(ec.SECP256R1()))


def decryption_key_from_scalar(secret: int) -> DecryptionKey:
    """HPKE P-256 key from a fixed scalar: only for golden test vectors."""
    return DecryptionKey(ec.derive_private_key(secret, ec.SECP256R1()))


def load_decryption_key(data: bytes, *, source: str = "the decryption key") -> DecryptionKey:
    """Load the app's PEM decryption key."""
    key = _load_private(data, source)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return DecryptionKey(key)
    raise KeyMaterialError(
        f"{source} is not an HPKE P-256 private key",
        expected="the key made by `otaseal keygen --kind encryption`",
    )


def load_recipient_key(data: bytes, *, source: str = "the recipient key") -> RecipientKey:
    """Load an app's public decryption key (PEM or DER SPKI)."""
    public = load_public_key(data, source=source)
    if public.algorithm != "ecdsa-p256-sha256":
        raise KeyMaterialError(
            f"{source} is not a P-256 public key",
            expected="the .pub.pem made by `otaseal keygen --kind encryption`",
        )
    return RecipientKey(public.der)


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


class SegmentCipher:
    """One-shot AES-256-GCM per segment: never incremental, which releases unverified data."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt one segment; returns ciphertext ‖ 16-byte tag."""
        return self._aead.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Decrypt one whole segment or raise :class:`DecryptionError`."""
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise DecryptionError(
                "a bundle segment failed authentication (tampered, reordered or truncated)",
                expected="segments exactly as sealed",
                fix="the stored bundle is corrupt or was altered; republish it",
            ) from None
