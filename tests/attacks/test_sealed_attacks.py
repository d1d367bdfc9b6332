"""Attacks on a stored .cub bundle: each is refused, and no unverified plaintext reaches ``out``.

``out`` may hold whole segments that verified before the failure (the caller discards them on
error); it never holds any byte of the segment that failed, nor anything after it.
"""

from __future__ import annotations

import hashlib
import io
import struct

import pytest

from otaseal import crypto
from otaseal.errors import BundleError, DecryptionError, InputError, LengthError
from otaseal.formats.sealed import SEGMENT_SIZE, SealWriter, open_sealed, read_header

SEG = SEGMENT_SIZE
FULL = SEG + 16
APP_KEY = crypto.decryption_key_from_scalar(0x0A11CE)
NEXT_KEY = crypto.decryption_key_from_scalar(0x0B0B)
STRANGER_KEY = crypto.decryption_key_from_scalar(0x0BAD)
PLAINTEXT = hashlib.shake_256(b"attack").digest(2 * SEG + 1000)  # two full segments and a final one


def seal(data: bytes = PLAINTEXT, keys: tuple[crypto.DecryptionKey, ...] = (APP_KEY,)) -> bytes:
    out = io.BytesIO()
    with SealWriter(out, [k.public for k in keys]) as writer:
        writer.write(data)
    return out.getvalue()


BUNDLE = seal()
HEADER_LEN = read_header(io.BytesIO(BUNDLE)).length


def split(bundle: bytes) -> tuple[bytes, list[bytes]]:
    length = read_header(io.BytesIO(bundle)).length
    body = bundle[length:]
    return bundle[:length], [body[i : i + FULL] for i in range(0, len(body), FULL)]


def refuse(
    bundle: bytes,
    *,
    verified_segments: int = 0,
    key: crypto.DecryptionKey = APP_KEY,
    error: type[BundleError] = DecryptionError,
    max_plaintext: int = 1 << 30,
    plaintext: bytes = PLAINTEXT,
) -> BundleError:
    """Open must fail; ``out`` holds exactly the whole segments that verified before it."""
    out = io.BytesIO()
    with pytest.raises(error) as caught:
        open_sealed(io.BytesIO(bundle), key, out, max_plaintext=max_plaintext)
    assert out.getvalue() == plaintext[: verified_segments * SEG]
    assert "Traceback" not in caught.value.diagnostics()
    return caught.value


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def with_fixed(bundle: bytes, **fields: int) -> bytes:
    """Rewrite fixed header fields (version, count, length, segment_size) in place."""
    offsets = {"version": (8, ">H"), "count": (10, ">H"), "length": (12, ">I"),
               "segment_size": (16, ">I")}  # fmt: skip
    data = bytearray(bundle)
    for name, value in fields.items():
        offset, fmt = offsets[name]
        struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def test_untouched_bundle_opens() -> None:
    out = io.BytesIO()
    open_sealed(io.BytesIO(BUNDLE), APP_KEY, out, max_plaintext=len(PLAINTEXT))
    assert out.getvalue() == PLAINTEXT


@pytest.mark.parametrize("segment", [0, 1, 2])
@pytest.mark.parametrize("where", ["ciphertext", "tag"])
def test_tampered_segment_refused(segment: int, where: str) -> None:
    header, segments = split(BUNDLE)
    offset = 0 if where == "ciphertext" else len(segments[segment]) - 1
    segments[segment] = flip(segments[segment], offset)
    error = refuse(header + b"".join(segments), verified_segments=segment)
    assert f"segment {segment} " in error.what


def test_reordered_segments_refused() -> None:
    header, (first, second, final) = split(BUNDLE)
    refuse(header + second + first + final)


def test_dropped_final_segment_refused() -> None:
    header, segments = split(BUNDLE)
    error = refuse(header + b"".join(segments[:-1]), verified_segments=2)
    assert "without its final segment" in error.what


def test_dropped_empty_final_segment_refused() -> None:
    data = PLAINTEXT[: 2 * SEG]
    header, segments = split(seal(data))
    assert len(segments[-1]) == 16
    refuse(header + b"".join(segments[:-1]), verified_segments=2, plaintext=data)


def test_dropped_middle_segment_refused() -> None:
    header, (first, _, final) = split(BUNDLE)
    refuse(header + first + final, verified_segments=1)


def test_truncated_mid_segment_refused() -> None:
    refuse(BUNDLE[: HEADER_LEN + FULL + 500], verified_segments=1)


def test_full_segment_presented_as_final_refused() -> None:
    # Cutting the tail so that segment 1 is read as the final one: its nonce says "not last".
    header, (first, second, _) = split(BUNDLE)
    refuse(header + first + second[:-1], verified_segments=1)


@pytest.mark.parametrize("extra", [1, 15, 16, 1000, FULL, 3 * FULL])
def test_trailing_bytes_refused(extra: int) -> None:
    error = refuse(BUNDLE + bytes(extra), verified_segments=2)
    assert "segment 2" in error.what


def test_trailing_bytes_after_empty_final_segment_refused() -> None:
    data = PLAINTEXT[:SEG]
    refuse(seal(data) + b"\0" * 16, verified_segments=1, plaintext=data)


def test_appended_copy_of_the_final_segment_refused() -> None:
    _, segments = split(BUNDLE)
    refuse(BUNDLE + segments[-1], verified_segments=2)


def test_tampered_header_refused() -> None:
    """Any changed header byte, ours or another recipient's entry, refuses every segment."""
    data = PLAINTEXT[:100]
    bundle = seal(data, (APP_KEY, NEXT_KEY))
    length = read_header(io.BytesIO(bundle)).length
    for offset in range(length):
        refuse(flip(bundle, offset), plaintext=data)


def test_header_from_another_bundle_refused() -> None:
    header, _ = split(seal())
    _, segments = split(BUNDLE)
    refuse(header + b"".join(segments))


def test_segment_from_another_bundle_refused() -> None:
    header, segments = split(BUNDLE)
    _, foreign = split(seal())
    refuse(header + segments[0] + foreign[1] + segments[2], verified_segments=1)


def test_wrapped_key_replaced_by_attacker_refused() -> None:
    """The recipient key is public: an attacker can wrap a key of their own, not our segments."""
    header_obj = read_header(io.BytesIO(BUNDLE))
    forged = APP_KEY.public.wrap(b"\x42" * 32, b"otaseal-cub-v1/content-key" + header_obj.bundle_id)
    offset = HEADER_LEN - 113
    refuse(BUNDLE[:offset] + forged + BUNDLE[HEADER_LEN:])


def test_wrong_recipient_refused() -> None:
    error = refuse(BUNDLE, key=STRANGER_KEY)
    message = error.diagnostics()
    assert STRANGER_KEY.public.keyid in message  # the key id we have
    assert APP_KEY.public.keyid in message  # the key id the bundle lists
    assert "BEGIN" not in message


def test_recipient_entry_relabelled_refused() -> None:
    """Claiming the app's key id over a stranger's wrapped key fails to unwrap."""
    stranger_bundle = seal(keys=(STRANGER_KEY,))
    relabelled = stranger_bundle[:75] + bytes.fromhex(APP_KEY.public.keyid) + stranger_bundle[107:]
    error = refuse(relabelled)
    assert "does not open" in error.what


@pytest.mark.parametrize("cut", [0, 3, 8, 9, 10, 40, 74, 75, 100, HEADER_LEN - 1])
def test_truncated_header_refused(cut: int) -> None:
    error = refuse(BUNDLE[:cut])
    assert "ends inside its header" in error.what


@pytest.mark.parametrize(
    "start",
    [b"PK\x03\x04" + bytes(100), b"\x89CUB\r\n\x1a\r" + bytes(100), b"{}", b"\x89CUX"],
    ids=["zip", "line-endings-converted", "json", "short"],
)
def test_bad_magic_refused(start: bytes) -> None:
    error = refuse(start)
    assert "not a .cub bundle" in error.what
    assert "89 43 55 42 0d 0a 1a 0a" in error.expected


@pytest.mark.parametrize("version", [0, 2, 0xFFFF])
def test_unknown_format_version_refused(version: int) -> None:
    error = refuse(with_fixed(BUNDLE, version=version))
    assert f"version {version}" in error.what
    assert "version 1" in error.expected


def test_too_many_recipients_refused() -> None:
    with pytest.raises(InputError):  # the writer will not make one
        SealWriter(
            io.BytesIO(), [crypto.decryption_key_from_scalar(i).public for i in range(1, 18)]
        )
    header, segments = split(BUNDLE)
    entries = b"".join(i.to_bytes(32, "big") + bytes(113) for i in range(16)) + header[75:]
    forged = with_fixed(header[:75], count=17, length=75 + 17 * 145) + entries
    error = refuse(forged + b"".join(segments))
    assert "17 recipients" in error.what


def test_zero_recipients_refused() -> None:
    refuse(with_fixed(BUNDLE[:75], count=0, length=75))


def test_header_length_mismatch_refused() -> None:
    error = refuse(with_fixed(BUNDLE, length=HEADER_LEN + 145))
    assert "header length" in error.what


def test_duplicate_recipient_entries_refused() -> None:
    header, segments = split(BUNDLE)
    doubled = with_fixed(header, count=2, length=75 + 2 * 145) + header[75:]
    error = refuse(doubled + b"".join(segments))
    assert "twice" in error.what


@pytest.mark.parametrize("size", [0, 16, 1023, (1 << 20) + 1, 0xFFFFFFFF])
def test_unreasonable_segment_size_refused(size: int) -> None:
    """A huge declared segment size is refused before any buffer is allocated for it."""
    error = refuse(with_fixed(BUNDLE, segment_size=size))
    assert "segment size" in error.what


def test_segment_size_changed_refused() -> None:
    refuse(with_fixed(BUNDLE, segment_size=SEG // 2))


def test_plaintext_beyond_budget_refused() -> None:
    refuse(BUNDLE, error=LengthError, max_plaintext=len(PLAINTEXT) - 1, verified_segments=2)


def test_plaintext_budget_smaller_than_first_segment_refused() -> None:
    error = refuse(BUNDLE, error=LengthError, max_plaintext=SEG - 1)
    assert str(SEG - 1) in error.what
