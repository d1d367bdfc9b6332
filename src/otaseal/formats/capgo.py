"""Capgo's "encryption v2" artifact with the "V3" checksum, for ``@capgo/capacitor-updater``.

The artifact is the plaintext zip under AES-128-CBC with the app's content key and IV (stable
across releases, derived from the Capgo key: docs/adr/0009, so the per-file objects of manifest
mode, ``formats/capgo_files``, share the release's one ``session_key``); ``session_key`` is
``base64(IV):base64(type1(key))`` and ``checksum`` the lowercase hex of ``type1(SHA-256(zip))``,
where ``type1`` is the RSA-2048 private-key operation without a DigestInfo. Never the V2 (base64)
or CRC32 checksum forms: the plugin rejects both. The zip is the very one the sealed bundle
holds, so :class:`CapgoWriter` takes the same stream as ``SealWriter`` (see ``Tee``).

This format gives tamper evidence, not secrecy: the public key ships in every app and opens the
session key. The byte layout is specified in ``docs/SPEC.md`` ("Capgo format").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from otaseal.crypto import CAPGO_AES_KEY_SIZE, CAPGO_BLOCK_SIZE, CbcDecryptor, CbcEncryptor
from otaseal.errors import DecryptionError, HashMismatchError, InputError, LengthError
from otaseal.model import CapgoArtifact, CapgoFiles

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import BinaryIO

    from _typeshed import SupportsWrite

    from otaseal.crypto import CapgoPrivateKey, CapgoPublicKey

__all__ = [
    "CapgoResult",
    "CapgoWriter",
    "Tee",
    "recover_checksum",
    "session_key_of",
    "verify_artifact",
]

IV_SIZE: Final = 16
_READ_SIZE: Final = 1 << 20
_HEX = re.compile(r"[0-9a-fA-F]+")
_FIX: Final = "the Capgo artifact or its release entry was altered; republish the release"


@dataclass(frozen=True, slots=True)
class CapgoResult:
    """What a closed :class:`CapgoWriter` made: the artifact's digest and the device's values."""

    sha256: str
    length: int
    session_key: str
    checksum: str
    key_id: str
    plaintext_sha256: str
    plaintext_length: int
    files: CapgoFiles | None = None  # the per-file list for manifest mode, once made

    def artifact(self) -> CapgoArtifact:
        """The release entry's signed ``capgo`` member."""
        return CapgoArtifact(
            sha256=self.sha256,
            length=self.length,
            session_key=self.session_key,
            checksum=self.checksum,
            key_id=self.key_id,
            files=self.files,
        )


def session_key_of(key: CapgoPrivateKey, aes_key: bytes, iv: bytes) -> str:
    """``base64(IV):base64(type1(K))``, the plugin's ``session_key`` (deterministic)."""
    return base64.b64encode(iv).decode() + ":" + base64.b64encode(key.type1(aes_key)).decode()


def _fixed_or_random(value: bytes | None, name: str) -> bytes:
    if value is None:
        return os.urandom(CAPGO_AES_KEY_SIZE)
    if len(value) != CAPGO_AES_KEY_SIZE:
        raise InputError(
            f"{name} has {len(value)} bytes", expected=f"exactly {CAPGO_AES_KEY_SIZE} bytes"
        )
    return bytes(value)


class CapgoWriter:
    """A write-only sink: the plaintext zip in, the AES-128-CBC artifact out, in constant memory.

    ``out`` must copy what it is handed before the next write (files and ``BytesIO`` do): the
    ciphertext comes from one reused buffer. With ``app`` the key and IV are that app's content
    key (what publish uses, ADR 0009); without it, fresh random ones. The ``unsafe_fixed_*``
    values exist for golden vectors only.
    """

    __slots__ = (
        "_cipher",
        "_cipher_hash",
        "_key",
        "_length",
        "_out",
        "_plain_hash",
        "_plain_length",
        "_result",
        "_session_key",
    )

    def __init__(
        self,
        out: SupportsWrite[bytes],
        key: CapgoPrivateKey,
        *,
        app: str | None = None,
        unsafe_fixed_aes_key: bytes | None = None,
        unsafe_fixed_iv: bytes | None = None,
    ) -> None:
        if app is not None and unsafe_fixed_aes_key is None and unsafe_fixed_iv is None:
            aes_key, iv = key.content_key(app)
        else:
            aes_key = _fixed_or_random(unsafe_fixed_aes_key, "unsafe_fixed_aes_key")
            iv = _fixed_or_random(unsafe_fixed_iv, "unsafe_fixed_iv")
        self._session_key = session_key_of(key, aes_key, iv)
        self._key = key
        self._out = out
        self._cipher = CbcEncryptor(aes_key, iv)
        self._plain_hash = hashlib.sha256()
        self._cipher_hash = hashlib.sha256()
        self._plain_length = 0
        self._length = 0
        self._result: CapgoResult | None = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Take plaintext; emit the whole AES blocks it completes."""
        if self._result is not None:
            raise ValueError("write to a closed CapgoWriter")
        self._plain_hash.update(data)
        self._plain_length += len(data)
        self._emit(self._cipher.update(data))
        return len(data)

    def close(self) -> CapgoResult:
        """Pad, emit the last block and sign the zip's SHA-256 (the V3 checksum)."""
        if self._result is None:
            self._emit(self._cipher.finalize())
            self._result = CapgoResult(
                sha256=self._cipher_hash.hexdigest(),
                length=self._length,
                session_key=self._session_key,
                checksum=self._key.type1(self._plain_hash.digest()).hex(),
                key_id=self._key.public.key_id,
                plaintext_sha256=self._plain_hash.hexdigest(),
                plaintext_length=self._plain_length,
            )
        return self._result

    def _emit(self, data: bytes | memoryview) -> None:
        if data:
            # Files and BytesIO take any buffer; a copy of every megabyte would cost throughput.
            self._out.write(cast("bytes", data))
            self._cipher_hash.update(data)
            self._length += len(data)


class Tee:
    """One stream into several sinks, so the zip is written once for both formats."""

    __slots__ = ("_sinks",)

    def __init__(self, *sinks: SupportsWrite[bytes]) -> None:
        self._sinks = sinks

    def write(self, data: bytes) -> int:
        """Hand ``data`` to every sink, in order."""
        for sink in self._sinks:
            sink.write(data)
        return len(data)


# --- verifying, as the plugin does -------------------------------------------------------------
def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError(
            f"the {what} is not base64", expected="standard base64 with padding", fix=_FIX
        ) from None


def open_session(session_key: str, public_key: CapgoPublicKey) -> tuple[bytes, bytes]:
    """``(IV, AES key)`` of a ``session_key``, recovered with the public key (as the plugin)."""
    parts = session_key.split(":")
    if len(parts) != 2 or not all(parts):  # noqa: PLR2004 - IV and key
        raise DecryptionError(
            "the session key is not two non-empty parts joined by ':'",
            expected="base64(IV):base64(RSA block)",
            fix=_FIX,
        )
    iv = _b64(parts[0], "session key's IV")
    if len(iv) != IV_SIZE:
        raise DecryptionError(
            f"the session key's IV has {len(iv)} bytes", expected=f"{IV_SIZE} bytes", fix=_FIX
        )
    aes_key = public_key.recover(_b64(parts[1], "session key's RSA block"))
    if len(aes_key) != CAPGO_AES_KEY_SIZE:
        raise DecryptionError(
            f"the session key holds a {len(aes_key)}-byte AES key",
            expected=f"{CAPGO_AES_KEY_SIZE} bytes (AES-128)",
            fix=_FIX,
        )
    return iv, aes_key


def recover_checksum(checksum: str, public_key: CapgoPublicKey) -> str:
    """The SHA-256 (lowercase hex) a signed checksum carries; hex or base64 as the plugin reads."""
    block = bytes.fromhex(checksum) if _HEX.fullmatch(checksum) and len(checksum) % 2 == 0 else None
    if block is None:
        block = _b64(checksum, "checksum")
    if len(block) != CAPGO_BLOCK_SIZE:
        raise DecryptionError(
            f"the checksum decodes to {len(block)} bytes, so it is not signed",
            expected=f"{2 * CAPGO_BLOCK_SIZE} hex digits (the V3 form)",
            fix=_FIX,
        )
    return public_key.recover(block).hex()


def verify_artifact(
    src: BinaryIO | Iterable[bytes],
    *,
    public_key: CapgoPublicKey,
    session_key: str,
    checksum: str,
    out: SupportsWrite[bytes] | None = None,
    max_length: int | None = None,
    sha256: str | None = None,
) -> str:
    """Recover the key, decrypt, hash and compare, as a device does; returns the zip's SHA-256.

    CBC is not authenticated: plaintext reaches ``out`` before the checksum is compared, so on
    any error the caller must discard what ``out`` received. ``max_length`` and ``sha256`` are
    the artifact's signed length and digest, when the caller has a release entry.
    """
    iv, aes_key = open_session(session_key, public_key)
    expected = recover_checksum(checksum, public_key)
    chunks = iter(lambda: src.read(_READ_SIZE), b"") if hasattr(src, "read") else src
    cipher = CbcDecryptor(aes_key, iv)
    digest = hashlib.sha256()
    cipher_digest = hashlib.sha256()
    total = 0
    for chunk in chunks:
        total += len(chunk)
        cipher_digest.update(chunk)
        if max_length is not None and total > max_length:
            raise LengthError(
                f"the Capgo artifact is longer than {max_length} bytes",
                expected=f"the signed length, {max_length} bytes",
                fix=_FIX,
            )
        plain = cipher.update(chunk)
        digest.update(plain)
        if out is not None:
            out.write(plain)
    if total == 0:
        raise DecryptionError("the Capgo artifact is empty", expected="AES-128-CBC data", fix=_FIX)
    if sha256 is not None and cipher_digest.hexdigest() != sha256:
        raise HashMismatchError(
            f"the Capgo artifact has SHA-256 {cipher_digest.hexdigest()}",
            expected=f"the signed digest {sha256}",
            fix=_FIX,
        )
    plain = cipher.finalize()
    digest.update(plain)
    if out is not None:
        out.write(plain)
    actual = digest.hexdigest()
    if actual != expected:
        raise HashMismatchError(
            f"the decrypted zip has SHA-256 {actual}, but the signed checksum says {expected}",
            expected="the zip the checksum was made for",
            fix=_FIX,
        )
    return actual
