"""The sealed .cub format: round trips, layout, determinism and the writer's contract."""

from __future__ import annotations

import array
import hashlib
import io
import itertools
import struct
import zipfile
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, cast

import pytest

from otaseal import crypto
from otaseal.errors import DecryptionError, InputError, LengthError
from otaseal.formats import sealed
from otaseal.formats.sealed import SEGMENT_SIZE, SealWriter, open_sealed, read_header, seal_file

if TYPE_CHECKING:
    from pathlib import Path

SEG = SEGMENT_SIZE
APP_KEY = crypto.decryption_key_from_scalar(0x0A11CE)
NEXT_KEY = crypto.decryption_key_from_scalar(0x0B0B)
OTHER_KEY = crypto.decryption_key_from_scalar(0x0CAFE)
FIXED: dict[str, Any] = {
    "unsafe_fixed_content_key": bytes(range(32)),
    "unsafe_fixed_salt": bytes(range(100, 132)),
    "unsafe_fixed_nonce_prefix": b"prefix7",
    "unsafe_fixed_bundle_id": b"bundle-id-16byte",
}


@dataclass
class MemoWrap:
    """A recipient that wraps once per (content key, info), as a golden-vector script would."""

    key: crypto.RecipientKey
    cache: dict[tuple[bytes, bytes], bytes] = field(default_factory=dict)

    @property
    def keyid(self) -> str:
        return self.key.keyid

    def wrap(self, content_key: bytes, info: bytes) -> bytes:
        if (content_key, info) not in self.cache:
            self.cache[content_key, info] = self.key.wrap(content_key, info)
        return self.cache[content_key, info]


@dataclass
class FakeRecipient:
    keyid: str
    wrapped: bytes = b"\0" * 113

    def wrap(self, content_key: bytes, info: bytes) -> bytes:
        return self.wrapped


def plaintext_of(size: int) -> bytes:
    return hashlib.shake_256(b"plaintext").digest(size)


def seal(
    data: bytes | memoryview, recipients: list[sealed.Recipient] | None = None, **kw: Any
) -> bytes:
    out = io.BytesIO()
    with SealWriter(out, recipients or [APP_KEY.public], **kw) as writer:
        writer.write(data)
    return out.getvalue()


def unseal(bundle: bytes, key: crypto.DecryptionKey = APP_KEY) -> bytes:
    out = io.BytesIO()
    digest, length = open_sealed(io.BytesIO(bundle), key, out, max_plaintext=len(bundle))
    assert digest == hashlib.sha256(out.getvalue()).hexdigest()
    assert length == len(out.getvalue())
    return out.getvalue()


# --- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size", [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 3 * SEG + 4321], ids=lambda n: f"{n}B"
)
def test_round_trip(size: int) -> None:
    data = plaintext_of(size)
    out = io.BytesIO()
    writer = SealWriter(out, [APP_KEY.public])
    writer.write(data)
    result = writer.close()
    bundle = out.getvalue()

    assert unseal(bundle) == data
    assert result.sha256 == hashlib.sha256(bundle).hexdigest()
    assert result.length == len(bundle)
    assert result.plaintext_sha256 == hashlib.sha256(data).hexdigest()
    assert result.plaintext_length == size
    # full segments, then one final segment that is always shorter than a full one
    header = read_header(io.BytesIO(bundle))
    assert len(bundle) == header.length + (size // SEG) * (SEG + 16) + (size % SEG) + 16


def test_empty_plaintext_is_one_empty_final_segment() -> None:
    bundle = seal(b"")
    header = read_header(io.BytesIO(bundle))
    assert len(bundle) == header.length + 16
    assert unseal(bundle) == b""


def test_exact_multiple_of_segment_size_ends_with_empty_final_segment() -> None:
    bundle = seal(plaintext_of(2 * SEG))
    header = read_header(io.BytesIO(bundle))
    assert len(bundle) == header.length + 2 * (SEG + 16) + 16


def test_every_recipient_can_open_and_a_stranger_cannot() -> None:
    data = plaintext_of(SEG + 10)
    bundle = seal(data, [APP_KEY.public, NEXT_KEY.public])
    assert unseal(bundle, APP_KEY) == data
    assert unseal(bundle, NEXT_KEY) == data
    with pytest.raises(DecryptionError):
        unseal(bundle, OTHER_KEY)


def test_custom_segment_size_is_read_from_the_header() -> None:
    data = plaintext_of(5000)
    bundle = seal(data, segment_size=1024)
    assert read_header(io.BytesIO(bundle)).segment_size == 1024
    assert unseal(bundle) == data


def test_open_reassembles_short_reads() -> None:
    class Trickle(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(min(size if size is not None and size >= 0 else 999, 999))

    data = plaintext_of(2 * SEG + 7)
    out = io.BytesIO()
    open_sealed(Trickle(seal(data)), APP_KEY, out, max_plaintext=len(data))
    assert out.getvalue() == data


def test_plaintext_budget_is_inclusive() -> None:
    data = plaintext_of(SEG + 3)
    out = io.BytesIO()
    assert open_sealed(io.BytesIO(seal(data)), APP_KEY, out, max_plaintext=len(data))[1] == len(
        data
    )


def test_seal_file_round_trip(tmp_path: Path) -> None:
    data = plaintext_of(40 * SEG + 99)  # larger than seal_file's read chunk
    src = tmp_path / "bundle.zip"
    src.write_bytes(data)
    out = io.BytesIO()
    result = seal_file(src, out, [APP_KEY.public])
    assert unseal(out.getvalue()) == data
    assert result.sha256 == hashlib.sha256(out.getvalue()).hexdigest()
    assert result.plaintext_length == len(data)


def test_seal_file_missing_source_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read .*missing\.zip"):
        seal_file(tmp_path / "missing.zip", io.BytesIO(), [APP_KEY.public])


def test_zipfile_can_write_straight_into_the_writer() -> None:
    out = io.BytesIO()
    with SealWriter(out, [APP_KEY.public]) as writer:
        # typeshed wants close() -> None; zipfile never closes a file object it was given
        sink = cast("IO[bytes]", writer)
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("index.html", "<h1>hi</h1>")
            archive.writestr("big.bin", plaintext_of(3 * SEG))
        assert writer.tell() > 3 * SEG
    with zipfile.ZipFile(io.BytesIO(unseal(out.getvalue()))) as archive:
        assert archive.read("index.html") == b"<h1>hi</h1>"
        assert archive.read("big.bin") == plaintext_of(3 * SEG)


# --- determinism and layout -------------------------------------------------------------------
def test_fixed_values_make_identical_bundles_whatever_the_write_pattern() -> None:
    data = plaintext_of(3 * SEG + 500)
    recipient = MemoWrap(APP_KEY.public)
    one_write = seal(data, [recipient], **FIXED)

    out = io.BytesIO()
    writer = SealWriter(out, [recipient], **FIXED)
    steps = itertools.cycle([1, 15, 1000, SEG - 1, 2 * SEG, 3, SEG, SEG + 17])
    view = memoryview(bytearray(data))
    while view:
        step = next(steps)
        assert writer.write(view[:step]) == len(view[:step])
        view = view[step:]
    writer.close()

    assert out.getvalue() == one_write
    assert unseal(one_write) == data


def test_typed_buffers_are_sealed_as_their_bytes() -> None:
    words = array.array("I", range(20000))
    recipient = MemoWrap(APP_KEY.public)
    assert seal(words.tobytes(), [recipient], **FIXED) == seal(
        memoryview(words), [recipient], **FIXED
    )


def test_fresh_values_for_every_bundle() -> None:
    data = plaintext_of(100)
    first, second = seal(data), seal(data)
    h1, h2 = read_header(io.BytesIO(first)), read_header(io.BytesIO(second))
    assert h1.salt != h2.salt
    assert h1.nonce_prefix != h2.nonce_prefix
    assert h1.bundle_id != h2.bundle_id
    assert first[h1.length :] != second[h2.length :]


def test_header_fields_as_written() -> None:
    bundle = seal(b"x", [APP_KEY.public, NEXT_KEY.public], segment_size=4096, **FIXED)
    src = io.BytesIO(bundle)
    header = read_header(src)
    assert header.version == 1
    assert header.segment_size == 4096
    assert header.salt == FIXED["unsafe_fixed_salt"]
    assert header.nonce_prefix == b"prefix7"
    assert header.bundle_id == b"bundle-id-16byte"
    assert header.recipient_keyids == (APP_KEY.public.keyid, NEXT_KEY.public.keyid)
    assert header.length == 75 + 2 * 145
    assert src.tell() == header.length  # left at the first segment
    assert header.to_bytes() == bundle[: header.length]


def test_layout_matches_the_spec() -> None:
    """Recompute segment 0 from the spec's formulas, as a device SDK in another language would."""
    data = plaintext_of(SEG + 1)
    bundle = seal(data, **FIXED)
    magic, version, count, length, segment_size = struct.unpack_from(">8sHHII", bundle)
    assert (magic, version, count, length, segment_size) == (
        b"\x89CUB\r\n\x1a\n",
        1,
        1,
        220,
        SEG,
    )
    assert bundle[20:52] == FIXED["unsafe_fixed_salt"]
    assert bundle[52:59] == b"prefix7"
    assert bundle[59:75] == b"bundle-id-16byte"
    assert bundle[75:107].hex() == APP_KEY.public.keyid
    wrapped = bundle[107:220]
    content_key = FIXED["unsafe_fixed_content_key"]
    assert APP_KEY.unwrap(wrapped, b"otaseal-cub-v1/content-key" + b"bundle-id-16byte") == (
        content_key
    )

    segment_key = crypto.hkdf_sha256(
        content_key,
        salt=FIXED["unsafe_fixed_salt"],
        info=b"otaseal-cub-v1/segment-key" + hashlib.sha256(bundle[:220]).digest(),
    )
    cipher = crypto.SegmentCipher(segment_key)
    first = bundle[220 : 220 + SEG + 16]
    final = bundle[220 + SEG + 16 :]
    assert cipher.open(b"prefix7" + b"\0\0\0\0" + b"\0", first, b"") == data[:SEG]
    assert cipher.open(b"prefix7" + b"\0\0\0\1" + b"\1", final, b"") == data[SEG:]


# --- writer contract -------------------------------------------------------------------------
@pytest.mark.parametrize("count", [0, 17])
def test_recipient_count_outside_1_to_16_is_refused(count: int) -> None:
    recipients = [FakeRecipient(f"{i:064x}") for i in range(count)]
    with pytest.raises(InputError, match=f"{count} recipient keys"):
        SealWriter(io.BytesIO(), recipients)


def test_sixteen_recipients_are_accepted() -> None:
    keys = [crypto.decryption_key_from_scalar(1000 + i) for i in range(16)]
    bundle = seal(b"hi", [k.public for k in keys])
    assert unseal(bundle, keys[15]) == b"hi"


def test_duplicate_recipient_is_refused() -> None:
    with pytest.raises(InputError, match="listed twice"):
        SealWriter(io.BytesIO(), [APP_KEY.public, APP_KEY.public])


@pytest.mark.parametrize("keyid", ["ab" * 31, "AB" * 32, "zz" * 32])
def test_malformed_recipient_keyid_is_refused(keyid: str) -> None:
    with pytest.raises(InputError, match="64 lowercase hex"):
        SealWriter(io.BytesIO(), [FakeRecipient(keyid)])


def test_wrapped_key_of_wrong_size_is_refused() -> None:
    with pytest.raises(InputError, match="has 112 bytes"):
        SealWriter(io.BytesIO(), [FakeRecipient("00" * 32, b"\0" * 112)])


@pytest.mark.parametrize("size", [1023, (1 << 20) + 1])
def test_segment_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(InputError, match=f"segment size {size}"):
        SealWriter(io.BytesIO(), [APP_KEY.public], segment_size=size)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_value_of_wrong_size_is_refused(name: str) -> None:
    with pytest.raises(InputError, match=name):
        SealWriter(io.BytesIO(), [APP_KEY.public], **{name: b"short"})  # type: ignore[arg-type]


def test_writer_lifecycle() -> None:
    out = io.BytesIO()
    writer = SealWriter(out, [APP_KEY.public])
    assert writer.writable()
    assert not writer.closed
    writer.write(b"abc")
    writer.flush()
    assert writer.tell() == 3
    with pytest.raises(ValueError, match="not been closed"):
        _ = writer.result
    result = writer.close()
    assert writer.closed
    assert writer.close() is result
    assert writer.result is result
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")


def test_abandoned_writer_leaves_output_no_reader_accepts() -> None:
    out = io.BytesIO()
    writer = SealWriter(out, [APP_KEY.public])

    def pack_then_crash() -> None:
        with writer:
            writer.write(plaintext_of(SEG + 5))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        pack_then_crash()
    assert writer.closed
    with pytest.raises(ValueError, match="abandoned"):
        writer.close()
    with pytest.raises(DecryptionError, match="without its final segment"):
        unseal(out.getvalue())


def test_segment_counter_limit() -> None:
    assert len(sealed._nonce(b"prefix7", sealed.MAX_SEGMENTS - 1, last=True)) == 12
    with pytest.raises(LengthError, match="segments"):
        sealed._nonce(b"prefix7", sealed.MAX_SEGMENTS, last=False)
    writer = SealWriter(io.BytesIO(), [APP_KEY.public], segment_size=1024)
    writer._counter = sealed.MAX_SEGMENTS
    with pytest.raises(LengthError):
        writer.write(bytes(1024))


SPEC_EXAMPLE = bytes.fromhex(
    "894355420d0a1a0a00010001000000dc00010000202122232425262728292a2b2c2d2e2f"
    "303132333435363738393a3b3c3d3e3fa0a1a2a3a4a5a6b0b1b2b3b4b5b6b7b8b9babbbc"
    "bdbebfc7610375878cb1bafebd04d4c5109248e972894c3467fa4ae8de2af275cf8a7d04"
    "11cd0a8f98b9ae989f45f031174bdf9b348a026979317d7c341c348cd0facc06543bd64f"
    "5cd57b5f072e4482cbe18b78c3481cfde28e3032e86a48f838c2f6aac366f3af6f8b9c2d"
    "b54897f8fac72ab6554c94b67ce2d50ee5152507f177496d8838db2b2d59cc999da26102"
    "b073645d2f8178ea0699b4c2d7ac657d9cc73b2963be54da25bf2c7e7f564f133c18f7"
)


def test_spec_worked_example_opens() -> None:
    """The worked example in docs/SPEC.md: a format change that breaks it breaks every device."""
    out = io.BytesIO()
    key = crypto.decryption_key_from_scalar(0x0A11CE)
    digest, length = open_sealed(io.BytesIO(SPEC_EXAMPLE), key, out, max_plaintext=15)
    assert out.getvalue() == b"hello, otaseal\n"
    assert (digest, length) == (
        "1effc6896d0cae6f29dc15eb553f12a91a6322eb7fe7868d6eafd7999f7bd586",
        15,
    )
    assert hashlib.sha256(SPEC_EXAMPLE).hexdigest() == (
        "2a28a3c4ee915658cb4750a22904bee265c8da43db805aace8282017322c039e"
    )
