"""The only module that imports ``cryptography``.

Everything above speaks in the small types defined here: :class:`SigningKey`, :class:`PublicKey`,
:class:`DecryptionKey`, :class:`RecipientKey` and :class:`SegmentCipher`; for Capgo's format,
:class:`CapgoPrivateKey`, :class:`CapgoPublicKey`, :class:`CbcEncryptor` and
:class:`CbcDecryptor`. Key ids are the SHA-256 of the public key's DER SubjectPublicKeyInfo,
lowercase hex (Capgo's ``key_id`` is its own).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Final, Literal

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
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


# --- Capgo's RSA and AES-CBC (docs/SPEC.md, "Capgo format") -------------------------------------
CAPGO_RSA_BITS: Final = 2048
CAPGO_BLOCK_SIZE: Final = CAPGO_RSA_BITS // 8
CAPGO_AES_KEY_SIZE: Final = 16
_AES_BLOCK = 16
_CAPGO_PRIVATE_PEM = b"-----BEGIN RSA PRIVATE KEY-----"
_CAPGO_PUBLIC_PEM = b"-----BEGIN RSA PUBLIC KEY-----"
_TYPE1_MIN_PADDING = 8
_CAPGO_CONTENT_KEY_LABEL = b"otaseal/capgo-content-key/v1\x00"  # then the app id
_PKCS1 = serialization.PublicFormat.PKCS1
_TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
_CAPGO_FIX = (
    "make the pair with `otaseal keygen --kind capgo`, or convert an existing RSA-2048 key with "
    "`openssl rsa -in KEY -traditional -out key.pem`"
)


@dataclass(frozen=True, slots=True)
class CapgoPublicKey:
    """The RSA-2048 PKCS#1 public key a Capgo app ships as ``publicKey``."""

    pem: bytes  # "-----BEGIN RSA PUBLIC KEY-----" ... as the plugin requires

    @property
    def key_id(self) -> str:
        """The plugin's ``key_id``: the first 20 characters of the PEM's base64 body."""
        body = b"".join(
            line.strip() for line in self.pem.splitlines() if not line.startswith(b"-----")
        )
        return body[:20].decode("ascii")

    def recover(self, block: bytes) -> bytes:
        """Undo the private-key type-1 operation; raise :class:`DecryptionError` if it fails."""
        if len(block) != CAPGO_BLOCK_SIZE:
            raise DecryptionError(
                f"an RSA block of {len(block)} bytes",
                expected=f"{CAPGO_BLOCK_SIZE} bytes (RSA-2048), as the plugin requires",
            )
        key = serialization.load_pem_public_key(self.pem)
        assert isinstance(key, rsa.RSAPublicKey)  # noqa: S101 - checked on load
        try:
            return key.recover_data_from_signature(block, padding.PKCS1v15(), None)
        except InvalidSignature:
            raise DecryptionError(
                "an RSA block does not open with the Capgo public key",
                expected="a block made by the matching private key (PKCS#1 type 1)",
                fix="the artifact was altered or made with another key; republish it",
            ) from None


class CapgoPrivateKey:
    """The RSA-2048 private key that makes Capgo session keys and checksums (CI only)."""

    __slots__ = ("_crt", "_d", "_e", "_key", "_n", "public")

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        numbers = key.private_numbers()
        self._d = numbers.d
        self._e = numbers.public_numbers.e
        self._n = numbers.public_numbers.n
        # p, q, d mod p-1, d mod q-1, q^-1 mod p: the CRT form, ~3x faster than one pow mod n
        self._crt = (numbers.p, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp)
        self.public = CapgoPublicKey(key.public_key().public_bytes(_PEM, _PKCS1))

    def __repr__(self) -> str:
        return f"CapgoPrivateKey(key_id={self.public.key_id})"

    def type1(self, message: bytes) -> bytes:
        """``00 01 FF.. 00 || message`` raised to ``d`` mod ``n``: Node's ``privateEncrypt``.

        Capgo signs raw bytes with no DigestInfo, which no ``cryptography`` API does, so the
        padding is built here (docs/adr/0007). The exponentiation is blinded with a fresh random
        ``r`` (``(m·rᵉ)ᵈ·r⁻¹ = mᵈ``) so its timing says nothing about ``d``, and the result is
        checked with the public key before it leaves.
        """
        run = CAPGO_BLOCK_SIZE - 3 - len(message)
        if run < _TYPE1_MIN_PADDING:
            raise ValueError("message too long for an RSA-2048 type-1 block")
        encoded = b"\x00\x01" + b"\xff" * run + b"\x00" + message
        n = self._n
        blind = secrets.randbelow(n - 3) + 2  # in 2..n-2; one not coprime to n would factor n
        blinded = int.from_bytes(encoded, "big") * pow(blind, self._e, n) % n
        p, q, dp, dq, qinv = self._crt
        m1, m2 = pow(blinded, dp, p), pow(blinded, dq, q)
        value = (m2 + (qinv * (m1 - m2) % p) * q) * pow(blind, -1, n) % n
        block = value.to_bytes(CAPGO_BLOCK_SIZE, "big")
        if self.public.recover(block) != message:  # pragma: no cover - a fault, not an input
            raise DecryptionError("the RSA private-key operation gave a wrong result")
        return block

    def content_key(self, app: str) -> tuple[bytes, bytes]:
        """The app's stable AES-128 key and IV for its Capgo artifacts (docs/adr/0009).

        HKDF-SHA256 of the private exponent: the same for every release, so an unchanged file
        encrypts to the same stored object; a new Capgo key gives a new pair. Not a secret from
        app holders: every ``session_key`` hands it to whoever has the public key.
        """
        okm = hkdf_sha256(
            self._d.to_bytes(CAPGO_BLOCK_SIZE, "big"),
            salt=b"",
            info=_CAPGO_CONTENT_KEY_LABEL + app.encode(),
            length=CAPGO_AES_KEY_SIZE + _AES_BLOCK,
        )
        return okm[:CAPGO_AES_KEY_SIZE], okm[CAPGO_AES_KEY_SIZE:]

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#1 PEM (``BEGIN RSA PRIVATE KEY``), as Capgo's CLI writes it."""
        return self._key.private_bytes(_PEM, _TRADITIONAL, serialization.NoEncryption())


def generate_capgo_key() -> CapgoPrivateKey:
    """Make a new RSA-2048 pair (e = 65537), as ``capgo key create`` does."""
    return CapgoPrivateKey(rsa.generate_private_key(65537, CAPGO_RSA_BITS))


def capgo_key_from_primes(p: int, q: int, e: int = 65537) -> CapgoPrivateKey:
    """RSA key from fixed primes: only for golden test vectors."""
    n = p * q
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, n),
    )
    key = numbers.private_key()
    if key.key_size != CAPGO_RSA_BITS:
        raise KeyMaterialError(f"the primes make an RSA-{key.key_size} key", expected="RSA-2048")
    return CapgoPrivateKey(key)


def _not_capgo(source: str, what: str, expected: str) -> KeyMaterialError:
    return KeyMaterialError(f"{source} {what}", expected=expected, fix=_CAPGO_FIX)


def load_capgo_private_key(data: bytes, *, source: str = "the Capgo key") -> CapgoPrivateKey:
    """Load a PKCS#1 RSA-2048 private key (PEM, or its DER); anything else is refused."""
    expected = "an RSA-2048 private key in PKCS#1 form (-----BEGIN RSA PRIVATE KEY-----)"
    pem = data.lstrip().startswith(b"-----BEGIN")
    if pem and data.strip().startswith(_CAPGO_PUBLIC_PEM):
        raise _not_capgo(source, "is the Capgo public key", expected + ", the private half")
    if pem and not data.strip().startswith(_CAPGO_PRIVATE_PEM):
        raise _not_capgo(source, "is not a PKCS#1 RSA private key", expected)
    try:
        key = (
            serialization.load_pem_private_key(data.strip(), password=None)
            if pem
            else serialization.load_der_private_key(data, password=None)
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _not_capgo(source, "is not a readable PKCS#1 RSA private key", expected) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _not_capgo(source, "is not an RSA key", expected)
    if not pem and key.private_bytes(_DER, _TRADITIONAL, serialization.NoEncryption()) != data:
        raise _not_capgo(source, "is a DER key that is not in PKCS#1 form", expected)
    if key.key_size != CAPGO_RSA_BITS:
        raise _not_capgo(
            source,
            f"is an RSA-{key.key_size} key",
            expected + ": the plugin reads 256-byte blocks only",
        )
    return CapgoPrivateKey(key)


def load_capgo_public_key(data: bytes, *, source: str = "the Capgo public key") -> CapgoPublicKey:
    """Load the PKCS#1 RSA-2048 public key (``BEGIN RSA PUBLIC KEY``), the only form apps load."""
    expected = "an RSA-2048 public key in PKCS#1 form (-----BEGIN RSA PUBLIC KEY-----)"
    if not data.strip().startswith(_CAPGO_PUBLIC_PEM):
        raise _not_capgo(source, "is not a PKCS#1 RSA public key", expected)
    try:
        key = serialization.load_pem_public_key(data.strip())
    except (ValueError, UnsupportedAlgorithm):
        raise _not_capgo(source, "is not a readable PKCS#1 RSA public key", expected) from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size != CAPGO_RSA_BITS:
        raise _not_capgo(source, "is not an RSA-2048 key", expected)
    return CapgoPublicKey(key.public_bytes(_PEM, _PKCS1))


class CbcEncryptor:
    """AES-128-CBC with PKCS#7 padding, fed in pieces: constant memory for any zip size.

    Ciphertext goes into one reused buffer (``update_into``): allocating a fresh ``bytes`` for
    every megabyte costs more than the cipher itself.
    """

    __slots__ = ("_buffer", "_cipher", "_length")

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        self._buffer = bytearray(0)
        self._length = 0

    def update(self, data: bytes | bytearray | memoryview) -> memoryview:
        """Ciphertext of the whole blocks so far; the view is valid until the next call."""
        need = len(data) + _AES_BLOCK - 1
        if len(self._buffer) < need:
            self._buffer = bytearray(need)  # a new object: a view handed out earlier stays valid
        count = self._cipher.update_into(data, self._buffer)
        self._length += len(data)
        return memoryview(self._buffer)[:count]

    def finalize(self) -> bytes:
        """The last block(s): PKCS#7 padding, a whole block of it when the input is aligned."""
        pad = _AES_BLOCK - self._length % _AES_BLOCK
        return self._cipher.update(bytes([pad]) * pad) + self._cipher.finalize()


class CbcDecryptor:
    """AES-128-CBC decryption; unauthenticated, so callers check the checksum afterwards."""

    __slots__ = ("_cipher", "_unpadder")

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._unpadder = sym_padding.PKCS7(128).unpadder()

    def update(self, data: bytes) -> bytes:
        """Plaintext so far (the last block is held back until :meth:`finalize`)."""
        return self._unpadder.update(self._cipher.update(data))

    def finalize(self) -> bytes:
        """The rest; a length that is not whole blocks, or bad padding, is refused."""
        try:
            return self._unpadder.update(self._cipher.finalize()) + self._unpadder.finalize()
        except ValueError:
            raise DecryptionError(
                "the Capgo artifact does not decrypt: its length or padding is wrong",
                expected="AES-128-CBC with PKCS#7 padding under the session key",
                fix="the artifact was altered or cut short; republish it",
            ) from None
