"""The sealed ``.cub`` bundle: ``header ‖ segments``, streamed in constant memory.

The header names the recipients and carries one HPKE-wrapped content key for each. Every segment
is one whole AES-256-GCM call under a key derived from the content key *and the header's bytes*,
with a nonce that counts segments and flags the last (the STREAM construction), so a changed
header, a changed, reordered or missing segment, or appended bytes all fail authentication.
Plaintext leaves :func:`open_sealed` only after its segment's tag has verified. The byte layout
is specified in ``docs/SPEC.md`` ("Sealed bundle format").
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, cast

from otaseal.crypto import SegmentCipher, hkdf_sha256
from otaseal.errors import DecryptionError, InputError, LengthError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from types import TracebackType
    from typing import BinaryIO, Self

    from _typeshed import SupportsWrite

    from otaseal.crypto import DecryptionKey

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_RECIPIENTS",
    "SEGMENT_SIZE",
    "Header",
    "Recipient",
    "RecipientEntry",
    "SealResult",
    "SealWriter",
    "open_sealed",
    "read_header",
    "seal_file",
]

MAGIC: Final = b"\x89CUB\r\n\x1a\n"
FORMAT_VERSION: Final = 1
SEGMENT_SIZE: Final = 65536
MIN_SEGMENT_SIZE: Final = 1024
MAX_SEGMENT_SIZE: Final = 1 << 20
MAX_RECIPIENTS: Final = 16
TAG_SIZE: Final = 16
CONTENT_KEY_SIZE: Final = 32
SALT_SIZE: Final = 32
NONCE_PREFIX_SIZE: Final = 7
BUNDLE_ID_SIZE: Final = 16
KEYID_SIZE: Final = 32
WRAPPED_KEY_SIZE: Final = 113  # HPKE DHKEM(P-256) enc (65) ‖ AES-256-GCM(content key) (32 + 16)
MAX_SEGMENTS: Final = 1 << 32  # the nonce counter is 32 bits

HPKE_INFO_LABEL: Final = b"otaseal-cub-v1/content-key"
SEGMENT_KEY_LABEL: Final = b"otaseal-cub-v1/segment-key"

_PREAMBLE = struct.Struct(">8sH")  # magic, version: read alone so any future layout is named
_FIXED = struct.Struct(">8sHHII32s7s16s")  # ... recipient count, header length, segment size, ...
_ENTRY = struct.Struct(">32s113s")  # recipient key id, wrapped content key
_NONCE = struct.Struct(">7sIB")  # prefix, segment counter, last flag


class Recipient(Protocol):
    """Anything that wraps a content key to one app key; :class:`otaseal.crypto.RecipientKey`."""

    @property
    def keyid(self) -> str:
        """SHA-256 of the recipient's DER SubjectPublicKeyInfo, lowercase hex."""
        ...

    def wrap(self, content_key: bytes, info: bytes) -> bytes:
        """HPKE base-mode single-shot seal of ``content_key``: ``enc ‖ ciphertext``."""
        ...


@dataclass(frozen=True, slots=True)
class SealResult:
    """Digest and length of the ciphertext (what the manifest signs) and of the plaintext."""

    sha256: str
    length: int
    plaintext_sha256: str
    plaintext_length: int


@dataclass(frozen=True, slots=True)
class RecipientEntry:
    """One header entry: whose key it is and the content key wrapped to it."""

    keyid: str
    wrapped_key: bytes


@dataclass(frozen=True, slots=True)
class Header:
    """The parsed ``.cub`` header; authenticated by every segment, not secret."""

    version: int
    segment_size: int
    salt: bytes
    nonce_prefix: bytes
    bundle_id: bytes
    recipients: tuple[RecipientEntry, ...]

    @property
    def recipient_keyids(self) -> tuple[str, ...]:
        """Key ids of the app keys that can open the bundle, in header order."""
        return tuple(entry.keyid for entry in self.recipients)

    @property
    def length(self) -> int:
        """Size of the encoded header in bytes; the first segment starts here."""
        return _FIXED.size + len(self.recipients) * _ENTRY.size

    def to_bytes(self) -> bytes:
        """Encode exactly as stored; the encoding is canonical (fixed widths, no options)."""
        fixed = _FIXED.pack(
            MAGIC,
            self.version,
            len(self.recipients),
            self.length,
            self.segment_size,
            self.salt,
            self.nonce_prefix,
            self.bundle_id,
        )
        entries = (_ENTRY.pack(bytes.fromhex(e.keyid), e.wrapped_key) for e in self.recipients)
        return fixed + b"".join(entries)


# --- key schedule -------------------------------------------------------------------------------
def _hpke_info(bundle_id: bytes) -> bytes:
    return HPKE_INFO_LABEL + bundle_id


def _segment_cipher(content_key: bytes, salt: bytes, header: bytes) -> SegmentCipher:
    info = SEGMENT_KEY_LABEL + hashlib.sha256(header).digest()
    return SegmentCipher(hkdf_sha256(content_key, salt=salt, info=info))


def _nonce(prefix: bytes, counter: int, *, last: bool) -> bytes:
    if counter >= MAX_SEGMENTS:
        raise LengthError(
            f"the bundle needs more than {MAX_SEGMENTS} segments",
            expected=f"at most {MAX_SEGMENTS} segments (the nonce counter is 32 bits)",
            fix="ship a smaller bundle",
        )
    return _NONCE.pack(prefix, counter, last)


def _as_bytes(view: memoryview) -> bytes:
    # AES-GCM reads any contiguous buffer; SegmentCipher is annotated ``bytes`` only, and a copy of
    # every segment would cost throughput for nothing.
    return cast("bytes", view)


# --- sealing ------------------------------------------------------------------------------------
def _random_or_fixed(value: bytes | None, size: int, name: str) -> bytes:
    if value is None:
        return os.urandom(size)
    if len(value) != size:
        raise InputError(f"{name} has {len(value)} bytes", expected=f"exactly {size} bytes")
    return bytes(value)


def _check_segment_size(size: int) -> None:
    if not MIN_SEGMENT_SIZE <= size <= MAX_SEGMENT_SIZE:
        raise InputError(
            f"segment size {size} is out of range",
            expected=f"{MIN_SEGMENT_SIZE} to {MAX_SEGMENT_SIZE} bytes ({SEGMENT_SIZE} by default)",
        )


def _wrap_all(
    recipients: Sequence[Recipient], content_key: bytes, bundle_id: bytes
) -> tuple[RecipientEntry, ...]:
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise InputError(
            f"a bundle sealed to {len(recipients)} recipient keys",
            expected=f"1 to {MAX_RECIPIENTS} recipient keys",
            fix="list the app's current decryption public key (and, during a rotation, the next)",
        )
    entries: list[RecipientEntry] = []
    seen: set[str] = set()
    for recipient in recipients:
        keyid = recipient.keyid
        if len(keyid) != 2 * KEYID_SIZE or keyid.strip("0123456789abcdef"):
            raise InputError(
                "a recipient key id is not 64 lowercase hex digits",
                expected="the SHA-256 of the recipient's DER public key",
            )
        if keyid in seen:
            raise InputError(
                f"recipient key {keyid} is listed twice",
                expected="each recipient key once",
                fix="remove the duplicate",
            )
        seen.add(keyid)
        wrapped = recipient.wrap(content_key, _hpke_info(bundle_id))
        if len(wrapped) != WRAPPED_KEY_SIZE:
            raise InputError(
                f"the wrapped key for {keyid} has {len(wrapped)} bytes",
                expected=f"{WRAPPED_KEY_SIZE} bytes (HPKE P-256, AES-256-GCM)",
            )
        entries.append(RecipientEntry(keyid, wrapped))
    return tuple(entries)


class SealWriter:
    """A write-only sink: plaintext in, ``.cub`` ciphertext out to ``out``, one segment buffered.

    The header is written at construction and each full segment as soon as it fills. Only
    :meth:`close` writes the final segment, so output abandoned early (or after an exception in a
    ``with`` block) is refused by every reader. The ``unsafe_fixed_*`` values exist for golden
    vectors: reusing a content key with a nonce prefix breaks AES-GCM, so never pass them otherwise.
    """

    __slots__ = (
        "_buffer",
        "_cipher",
        "_cipher_hash",
        "_counter",
        "_fill",
        "_finished",
        "_length",
        "_out",
        "_plain_hash",
        "_plain_length",
        "_prefix",
        "_result",
        "_segment_size",
    )

    def __init__(
        self,
        out: SupportsWrite[bytes],
        recipients: Sequence[Recipient],
        *,
        segment_size: int = SEGMENT_SIZE,
        unsafe_fixed_content_key: bytes | None = None,
        unsafe_fixed_salt: bytes | None = None,
        unsafe_fixed_nonce_prefix: bytes | None = None,
        unsafe_fixed_bundle_id: bytes | None = None,
    ) -> None:
        _check_segment_size(segment_size)
        content_key = _random_or_fixed(
            unsafe_fixed_content_key, CONTENT_KEY_SIZE, "unsafe_fixed_content_key"
        )
        salt = _random_or_fixed(unsafe_fixed_salt, SALT_SIZE, "unsafe_fixed_salt")
        prefix = _random_or_fixed(
            unsafe_fixed_nonce_prefix, NONCE_PREFIX_SIZE, "unsafe_fixed_nonce_prefix"
        )
        bundle_id = _random_or_fixed(
            unsafe_fixed_bundle_id, BUNDLE_ID_SIZE, "unsafe_fixed_bundle_id"
        )
        header = Header(
            version=FORMAT_VERSION,
            segment_size=segment_size,
            salt=salt,
            nonce_prefix=prefix,
            bundle_id=bundle_id,
            recipients=_wrap_all(recipients, content_key, bundle_id),
        ).to_bytes()
        self._out = out
        self._segment_size = segment_size
        self._prefix = prefix
        self._cipher = _segment_cipher(content_key, salt, header)
        self._buffer = memoryview(bytearray(segment_size))
        self._fill = 0
        self._counter = 0
        self._plain_hash = hashlib.sha256()
        self._plain_length = 0
        self._cipher_hash = hashlib.sha256(header)
        self._length = len(header)
        self._finished = False
        self._result: SealResult | None = None
        out.write(header)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._finished = True  # no final segment: the partial output can never verify

    @property
    def closed(self) -> bool:
        """True once closed or abandoned; file-like callers check it."""
        return self._finished

    @property
    def result(self) -> SealResult:
        """The :class:`SealResult` of a closed writer."""
        if self._result is None:
            raise ValueError("the SealWriter has not been closed successfully")
        return self._result

    def writable(self) -> bool:
        """File-like: this sink accepts writes."""
        return True

    def tell(self) -> int:
        """Plaintext bytes accepted so far (``zipfile`` asks for it)."""
        return self._plain_length + self._fill

    def flush(self) -> None:
        """Nothing to do: segments are emitted whole, and only when full or at close."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Take plaintext; encrypt and emit every segment that fills up."""
        if self._finished:
            raise ValueError("write to a closed SealWriter")
        view = memoryview(data).cast("B")
        taken = len(view)
        size = self._segment_size
        if self._fill:
            room = min(size - self._fill, len(view))
            self._buffer[self._fill : self._fill + room] = view[:room]
            self._fill += room
            view = view[room:]
            if self._fill < size:
                return taken
            self._seal(self._buffer, last=False)
            self._fill = 0
        while len(view) >= size:  # whole segments straight from the caller's buffer, no copy
            self._seal(view[:size], last=False)
            view = view[size:]
        if view:
            self._buffer[: len(view)] = view
            self._fill = len(view)
        return taken

    def close(self) -> SealResult:
        """Emit the final segment (shorter than a full one, possibly empty) and return digests."""
        if self._result is not None:
            return self._result
        if self._finished:
            raise ValueError("the SealWriter was abandoned after an error; its output is partial")
        self._seal(self._buffer[: self._fill], last=True)
        self._fill = 0
        self._finished = True
        self._result = SealResult(
            sha256=self._cipher_hash.hexdigest(),
            length=self._length,
            plaintext_sha256=self._plain_hash.hexdigest(),
            plaintext_length=self._plain_length,
        )
        return self._result

    def _seal(self, segment: memoryview, *, last: bool) -> None:
        nonce = _nonce(self._prefix, self._counter, last=last)
        self._plain_hash.update(segment)
        sealed = self._cipher.seal(nonce, _as_bytes(segment), b"")
        self._out.write(sealed)
        self._cipher_hash.update(sealed)
        self._length += len(sealed)
        self._plain_length += len(segment)
        self._counter += 1


def seal_file(src: Path, out: SupportsWrite[bytes], recipients: Sequence[Recipient]) -> SealResult:
    """Seal the file at ``src`` (the packed zip) to ``recipients``, streaming into ``out``."""
    try:
        plain = src.open("rb")
    except OSError as exc:
        raise InputError(
            f"cannot read {src}: {exc.strerror or exc}",
            expected="a readable bundle file",
            fix="check the path and that the pack step wrote it",
        ) from None
    chunk = memoryview(bytearray(16 * SEGMENT_SIZE))
    with plain:
        writer = SealWriter(out, recipients)
        while count := plain.readinto(chunk):
            writer.write(chunk[:count])
        return writer.close()


# --- opening ------------------------------------------------------------------------------------
def _read_up_to(src: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at end of stream (streams may return short reads)."""
    data = src.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size and (more := src.read(size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _malformed(what: str, expected: str) -> DecryptionError:
    return DecryptionError(
        what, expected=expected, fix="the stored bundle is corrupt or was altered; republish it"
    )


def _truncated(got: int, needed: int) -> DecryptionError:
    return _malformed(
        f"the bundle ends inside its header after {got} bytes",
        f"a header of at least {needed} bytes",
    )


def _read_header(src: BinaryIO) -> tuple[Header, bytes]:
    preamble = _read_up_to(src, _PREAMBLE.size)
    if preamble[: len(MAGIC)] != MAGIC[: len(preamble)]:
        raise _malformed(
            f"not a .cub bundle: it starts with {preamble[: len(MAGIC)].hex(' ')}",
            f"the magic bytes {MAGIC.hex(' ')}",
        )
    if len(preamble) < _PREAMBLE.size:
        raise _truncated(len(preamble), _FIXED.size)
    _, version = _PREAMBLE.unpack(preamble)
    if version != FORMAT_VERSION:
        raise DecryptionError(
            f"unknown .cub format version {version}",
            expected=f"format version {FORMAT_VERSION}",
            fix="update the device client, or publish with the otaseal version the app supports",
        )
    fixed = preamble + _read_up_to(src, _FIXED.size - _PREAMBLE.size)
    if len(fixed) < _FIXED.size:
        raise _truncated(len(fixed), _FIXED.size)
    _, _, count, length, segment_size, salt, prefix, bundle_id = _FIXED.unpack(fixed)
    if not 1 <= count <= MAX_RECIPIENTS:
        raise _malformed(
            f"the header lists {count} recipients", f"1 to {MAX_RECIPIENTS} recipients"
        )
    if length != _FIXED.size + count * _ENTRY.size:
        raise _malformed(
            f"the header length field says {length} bytes for {count} recipients",
            f"{_FIXED.size} + {_ENTRY.size} x {count} = {_FIXED.size + count * _ENTRY.size}",
        )
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise _malformed(
            f"the header's segment size is {segment_size} bytes",
            f"{MIN_SEGMENT_SIZE} to {MAX_SEGMENT_SIZE} bytes",
        )
    body = _read_up_to(src, length - _FIXED.size)
    if len(body) < length - _FIXED.size:
        raise _truncated(_FIXED.size + len(body), length)
    entries = tuple(
        RecipientEntry(keyid.hex(), wrapped) for keyid, wrapped in _ENTRY.iter_unpack(body)
    )
    keyids = {entry.keyid for entry in entries}
    if len(keyids) != len(entries):
        raise _malformed("the header lists a recipient key id twice", "distinct recipient key ids")
    header = Header(FORMAT_VERSION, segment_size, salt, prefix, bundle_id, entries)
    return header, fixed + body


def read_header(src: BinaryIO) -> Header:
    """Parse and check the header; ``src`` is left at the first segment."""
    return _read_header(src)[0]


def _open_segment(
    cipher: SegmentCipher, nonce: bytes, sealed: bytes, index: int, *, last: bool
) -> bytes:
    try:
        return cipher.open(nonce, sealed, b"")
    except DecryptionError:
        where = "the final segment" if last else "a full segment"
        raise DecryptionError(
            f"segment {index} ({where}) failed authentication: the header or segments were "
            "altered, reordered, cut short or extended",
            expected="the bundle exactly as sealed",
            fix="the stored bundle is corrupt or was altered; republish it",
        ) from None


def open_sealed(
    src: BinaryIO, key: DecryptionKey, out: SupportsWrite[bytes], *, max_plaintext: int
) -> tuple[str, int]:
    """Decrypt a ``.cub`` into ``out``; returns ``(plaintext sha256 hex, plaintext length)``.

    Each segment reaches ``out`` only after its tag verified; a failure raises
    :class:`DecryptionError` (or :class:`LengthError` past ``max_plaintext``) and leaves ``out``
    holding at most the verified whole segments before it, which the caller must discard.
    """
    header, raw = _read_header(src)
    ours = key.public.keyid
    entry = next((e for e in header.recipients if e.keyid == ours), None)
    if entry is None:
        raise DecryptionError(
            f"the bundle is not sealed to this decryption key: it lists key ids "
            f"{', '.join(header.recipient_keyids)}",
            expected=f"a recipient entry for key id {ours}",
            fix="publish with this app's recipient key, or use the decryption key the bundle lists",
        )
    # The fixed 113-byte slot only authenticates with a 32-byte content key inside.
    content_key = key.unwrap(entry.wrapped_key, _hpke_info(header.bundle_id))
    cipher = _segment_cipher(content_key, header.salt, raw)
    full = header.segment_size + TAG_SIZE
    digest = hashlib.sha256()
    total = 0
    index = 0
    while True:
        sealed = _read_up_to(src, full)
        last = len(sealed) < full  # the final segment is always shorter than a full one
        if len(sealed) < TAG_SIZE:
            raise DecryptionError(
                f"the bundle ends after {index} full segments without its final segment",
                expected="a final segment (shorter than a full one) at the end",
                fix="the stored bundle is truncated; download or republish it",
            )
        size = len(sealed) - TAG_SIZE
        if total + size > max_plaintext:
            raise LengthError(
                f"the bundle decrypts to more than {max_plaintext} bytes",
                expected=f"at most the signed plaintext length, {max_plaintext} bytes",
                fix="the stored bundle does not match its manifest; republish it",
            )
        nonce = _nonce(header.nonce_prefix, index, last=last)
        plaintext = _open_segment(cipher, nonce, sealed, index, last=last)
        out.write(plaintext)
        digest.update(plaintext)
        total += size
        index += 1
        if last:
            return digest.hexdigest(), total
