"""Boundaries of what a device decides, pinned so that a flipped comparison fails a test.

Written against the survivors of `make mutation` (docs/TESTING.md): each test names the decision
it guards. The spec's fixed numbers appear as literals (512 * 1024, 32, 10000, 1024 * 1024, the
75-byte header and 145-byte recipient entry), not only through the constants, so a change to a
constant is a change to the spec and fails here. Errors are checked for the three parts every
otaseal error carries (what was seen, what was expected, what to do) and for the facts they name.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from otaseal import crypto, dsse, trust
from otaseal.errors import (
    DecryptionError,
    Error,
    ExpiredMetadataError,
    InputError,
    LengthError,
    MalformedMetadataError,
    OversizeMetadataError,
    RollbackError,
    UnsignedMetadataError,
    WrongTargetError,
)
from otaseal.formats import sealed
from otaseal.formats.sealed import SealWriter, open_sealed
from otaseal.model import ChannelManifest, Release, Role, Root, channel_role
from tests.attacks.conftest import APP, NOW, Keys

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from otaseal.crypto import SigningKey

KIB = 1024
APP_KEY = crypto.decryption_key_from_scalar(0x0A11CE)
NEXT_KEY = crypto.decryption_key_from_scalar(0x0B0B)
OTHER_KEY = crypto.decryption_key_from_scalar(0x0CAFE)


def explains(error: Error, *, fix: bool = True) -> Error:
    """An otaseal error says what it saw, what it expected and (on a device) what to do."""
    assert error.what
    assert error.expected
    assert bool(error.fix) is fix
    assert error.diagnostics().startswith(error.what.rstrip("."))
    return error


# --- fixtures made of fixed keys --------------------------------------------------------------
def make_root(
    version: int = 1,
    *,
    app: str = APP,
    channels: dict[str, Sequence[SigningKey]] | None = None,
    thresholds: dict[str, int] | None = None,
) -> Root:
    channels = {"beta": [Keys.beta]} if channels is None else channels
    keys = {Keys.root[0].keyid: Keys.root[0].public}
    roles = {"root": Role((Keys.root[0].keyid,), 1)}
    for channel, signers in channels.items():
        keys.update({k.keyid: k.public for k in signers})
        roles[channel_role(channel)] = Role(
            tuple(k.keyid for k in signers), (thresholds or {}).get(channel, 1)
        )
    return Root(app, version, NOW, NOW + timedelta(days=365), keys, roles)


def signed_root(root: Root, signers: Sequence[SigningKey] = (Keys.root[0],)) -> bytes:
    return dsse.sign(dsse.PAYLOAD_TYPE_ROOT, root.to_payload(), signers).to_json()


def release(counter: int = 1, **changes: Any) -> Release:
    fields: dict[str, Any] = {
        "label": f"1.0.{counter}",
        "counter": counter,
        "sha256": f"{counter:064x}",
        "length": 10,
        "plaintext_sha256": "ab" * 32,
        "plaintext_length": 9,
        "files": 1,
        "unpacked_size": 5,
        "published": NOW,
        "rollout_salt": "s",
    }
    fields.update(changes)
    return Release(**fields)


def manifest(*releases: Release, version: int = 1, **changes: Any) -> ChannelManifest:
    fields: dict[str, Any] = {
        "app": APP,
        "channel": "beta",
        "version": version,
        "issued": NOW,
        "expires": NOW + timedelta(days=30),
        "releases": releases or (release(),),
    }
    fields.update(changes)
    return ChannelManifest(**fields)


def signed_manifest(m: ChannelManifest, signers: Sequence[SigningKey] = (Keys.beta,)) -> bytes:
    return dsse.sign(dsse.PAYLOAD_TYPE_CHANNEL, m.to_payload(), signers).to_json()


def padded(envelope: bytes, size: int) -> bytes:
    """The same envelope, grown to ``size`` bytes with JSON whitespace after it."""
    assert len(envelope) <= size
    return envelope + b" " * (size - len(envelope))


# --- the size cap: 512 KiB, inclusive -----------------------------------------------------------
def test_spec_limits_are_512_kib_and_32_hops() -> None:
    assert trust.METADATA_MAX_BYTES == 512 * 1024 == 524_288
    assert trust.MAX_ROOT_HOPS == 32


def test_a_manifest_of_exactly_512_kib_is_read_and_one_byte_more_is_refused() -> None:
    root = make_root()
    envelope = signed_manifest(manifest())

    at_cap = trust.verify_channel_manifest(
        root, padded(envelope, 512 * KIB), channel="beta", now=NOW, trusted_version=None
    )
    assert at_cap.version == 1
    with pytest.raises(OversizeMetadataError) as caught:
        trust.verify_channel_manifest(
            root, padded(envelope, 512 * KIB + 1), channel="beta", now=NOW, trusted_version=None
        )
    error = explains(caught.value)
    assert error.what == "the channel manifest is 524289 bytes"
    assert error.expected == "at most 524288 bytes"


def test_a_shipped_root_of_exactly_512_kib_is_read_and_one_byte_more_is_refused() -> None:
    envelope = signed_root(make_root())

    assert trust.verify_trusted_root(padded(envelope, 512 * KIB), app=APP).version == 1
    with pytest.raises(OversizeMetadataError) as caught:
        trust.verify_trusted_root(padded(envelope, 512 * KIB + 1), app=APP)
    assert explains(caught.value).what == "the root is 524289 bytes"


def test_a_root_update_of_exactly_512_kib_is_read_and_one_byte_more_is_refused() -> None:
    trusted = make_root()
    envelope = signed_root(make_root(2))

    assert trust.verify_root_update(trusted, padded(envelope, 512 * KIB)).version == 2
    with pytest.raises(OversizeMetadataError) as caught:
        trust.verify_root_update(trusted, padded(envelope, 512 * KIB + 1))
    assert explains(caught.value).what == "the root is 524289 bytes"


# --- the app id, wherever a root comes from -----------------------------------------------------
def test_shipped_root_of_another_app_is_refused() -> None:
    foreign = signed_root(make_root(app="com.evil.app"))

    with pytest.raises(WrongTargetError) as caught:
        trust.verify_trusted_root(foreign, app=APP)
    assert "com.evil.app" in explains(caught.value).what
    assert caught.value.expected == repr(APP)


def test_root_update_to_another_app_is_refused_even_when_signed_by_the_trusted_keys() -> None:
    foreign = signed_root(make_root(2, app="com.evil.app"))

    with pytest.raises(WrongTargetError) as caught:
        trust.verify_root_update(make_root(), foreign)
    assert "com.evil.app" in explains(caught.value).what


def test_shipped_root_not_signed_by_its_own_root_keys_names_the_root_role() -> None:
    forged = signed_root(make_root(), [Keys.attacker])

    with pytest.raises(UnsignedMetadataError) as caught:
        trust.verify_trusted_root(forged, app=APP)
    error = explains(caught.value)
    assert error.what == "root metadata has 0 valid signature(s) from trusted keys"
    assert error.expected == "at least 1 from the keys root.json lists for root"


def test_root_update_that_skips_a_version_names_both_versions() -> None:
    skipping = signed_root(make_root(3))

    with pytest.raises(RollbackError) as caught:
        trust.verify_root_update(make_root(), skipping)
    assert caught.value.what == "the store's root 2 says it is version 3"
    assert caught.value.expected == "version 2"


# --- fast-forward recovery: which roles changed --------------------------------------------------
def test_a_role_in_only_one_of_two_roots_has_changed() -> None:
    old = make_root(channels={"beta": [Keys.beta], "production": [Keys.production]})
    new = make_root(2, channels={"beta": [Keys.beta], "staging": [Keys.production_2]})

    assert trust.rotated_roles(old, new) == {"channel:production", "channel:staging"}
    assert trust.rotated_roles(new, old) == {"channel:production", "channel:staging"}


def test_a_role_with_other_keys_or_threshold_has_changed_and_an_equal_one_has_not() -> None:
    old = make_root(channels={"beta": [Keys.beta], "production": [Keys.production]})
    rekeyed = make_root(2, channels={"beta": [Keys.new_beta], "production": [Keys.production]})
    stricter = make_root(
        2,
        channels={"beta": [Keys.beta], "production": [Keys.production, Keys.production_2]},
        thresholds={"production": 2},
    )

    assert trust.rotated_roles(old, old) == set()
    same = make_root(2, channels={"beta": [Keys.beta], "production": [Keys.production]})
    assert trust.rotated_roles(old, same) == set()
    assert trust.rotated_roles(old, rekeyed) == {"channel:beta"}
    assert trust.rotated_roles(old, stricter) == {"channel:production"}


# --- channel manifests: signatures, rollback and expiry name what they saw -----------------------
def test_manifest_signed_by_an_unknown_key_names_the_channel_role() -> None:
    forged = signed_manifest(manifest(), [Keys.attacker])

    with pytest.raises(UnsignedMetadataError) as caught:
        trust.verify_channel_signature(make_root(), forged, channel="beta")
    error = explains(caught.value)
    assert error.what == "channel:beta metadata has 0 valid signature(s) from trusted keys"
    assert error.expected == "at least 1 from the keys root.json lists for channel:beta"


def test_rolled_back_manifest_names_the_trusted_version() -> None:
    old = signed_manifest(manifest(version=4))

    with pytest.raises(RollbackError) as caught:
        trust.verify_channel_manifest(make_root(), old, channel="beta", now=NOW, trusted_version=5)
    error = explains(caught.value)
    assert "version 4" in error.what
    assert "version 5 or newer" in error.expected


def test_expired_manifest_names_the_channel_and_expiry_is_exclusive() -> None:
    envelope = signed_manifest(manifest(expires=NOW))

    with pytest.raises(ExpiredMetadataError) as caught:
        trust.verify_channel_manifest(
            make_root(), envelope, channel="beta", now=NOW, trusted_version=None
        )
    assert explains(caught.value).what.startswith("the beta manifest expired at ")
    early = NOW - timedelta(seconds=1)
    assert trust.verify_channel_manifest(
        make_root(), envelope, channel="beta", now=early, trusted_version=None
    )


# --- the rollout bucket: bucket < basis points, never <= ------------------------------------------
# Install ids whose bucket for (com.example.app, beta, salt "s") is 0, 2500 and 9999.
BUCKET_0, BUCKET_2500, BUCKET_9999 = "install-264", "install-3546", "install-8417"


def in_rollout(install_id: str, basis_points: int, *, paused: bool = False) -> bool:
    r = release(rollout_bp=basis_points, paused=paused)
    return trust.is_in_rollout(r, app=APP, channel="beta", install_id=install_id)


def test_rollout_buckets_of_the_boundary_devices() -> None:
    buckets = [trust.rollout_bucket(APP, "beta", "s", i) for i in (BUCKET_0, BUCKET_2500)]
    assert [*buckets, trust.rollout_bucket(APP, "beta", "s", BUCKET_9999)] == [0, 2500, 9999]


def test_zero_percent_reaches_no_device_not_even_bucket_0() -> None:
    assert not in_rollout(BUCKET_0, 0)
    assert in_rollout(BUCKET_0, 1)


def test_a_percentage_excludes_its_own_boundary_bucket() -> None:
    assert not in_rollout(BUCKET_2500, 2500)
    assert in_rollout(BUCKET_2500, 2501)
    assert not in_rollout(BUCKET_9999, 9999)
    assert in_rollout(BUCKET_9999, 10_000)
    assert not in_rollout(BUCKET_0, 10_000, paused=True)


def test_a_release_at_zero_percent_is_skipped_for_the_next_one() -> None:
    m = manifest(release(2, rollout_bp=0), release(1))

    picked = trust.pick_release(m, install_id=BUCKET_0, native=None, installed_sha256=None)
    assert picked is not None
    assert picked.counter == 1


# --- the security floor: counter >= floor, and a release below it is skipped, not a stop ----------
def pick(m: ChannelManifest, installed: str | None = None) -> Release | None:
    return trust.pick_release(m, install_id=BUCKET_0, native=None, installed_sha256=installed)


def test_a_release_whose_counter_equals_the_floor_is_selected() -> None:
    at_floor = release(3)

    assert pick(manifest(at_floor, security_floor=3)) == at_floor
    assert pick(manifest(at_floor, security_floor=4)) is None


def test_a_release_below_the_floor_is_skipped_and_the_walk_goes_on() -> None:
    vulnerable, fixed = release(1), release(3)
    # A revert lists 1 first; the floor (3) forbids it, so devices get 3, not nothing.
    m = manifest(vulnerable, fixed, security_floor=3)

    assert pick(m) == fixed
    assert pick(m, installed=vulnerable.sha256) == fixed


# --- DSSE envelopes: strict base64 ---------------------------------------------------------------
def envelope_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(signed_manifest(manifest()))
    return doc


def load(doc: dict[str, Any]) -> dsse.Envelope:
    return dsse.Envelope.from_json(json.dumps(doc).encode())


def test_a_valid_envelope_parses() -> None:
    parsed = load(envelope_doc())
    assert parsed.payload_type == dsse.PAYLOAD_TYPE_CHANNEL
    assert trust.verify_channel_signature(make_root(), parsed.to_json(), channel="beta")


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda s: s[:8] + "!" + s[8:], id="non-alphabet character"),
        pytest.param(lambda s: s[:8] + "\n" + s[8:], id="newline"),
        pytest.param(lambda s: s[:8] + " " + s[8:], id="space"),
        pytest.param(lambda s: s[:8] + "é" + s[8:], id="non-ASCII"),
        pytest.param(lambda s: s.rstrip("=") if s.endswith("=") else s[:-1], id="no padding"),
    ],
)
@pytest.mark.parametrize("field", ["payload", "sig"])
def test_envelope_base64_that_a_lenient_decoder_would_accept_is_malformed(
    spoil: Any, field: str
) -> None:
    doc = envelope_doc()
    if field == "payload":
        doc["payload"] = spoil(doc["payload"])
    else:
        doc["signatures"][0]["sig"] = spoil(doc["signatures"][0]["sig"])

    with pytest.raises(MalformedMetadataError) as caught:
        load(doc)
    assert explains(caught.value)


@pytest.mark.parametrize(
    ("doc", "detail"),
    [
        pytest.param([], "it is not a JSON object", id="array"),
        pytest.param(
            {"payloadType": 1, "payload": "", "signatures": []},
            '"payloadType" is not a string',
            id="payloadType",
        ),
        pytest.param(
            {"payloadType": "t", "payload": "e30", "signatures": []},
            '"payload" is not padded standard base64',
            id="payload",
        ),
        pytest.param(
            {"payloadType": "t", "payload": "", "signatures": {}},
            '"signatures" is not an array',
            id="signatures",
        ),
        pytest.param(
            {"payloadType": "t", "payload": "", "signatures": ["ab"]},
            'a signature is not an object with a string "keyid" and a base64 "sig"',
            id="signature a string",
        ),
        pytest.param(
            {"payloadType": "t", "payload": "", "signatures": [["keyid", "sig"]]},
            'a signature is not an object with a string "keyid" and a base64 "sig"',
            id="signature an array",
        ),
        pytest.param(
            {"payloadType": "t", "payload": "", "signatures": [{"keyid": 1, "sig": ""}]},
            'a signature is not an object with a string "keyid" and a base64 "sig"',
            id="keyid a number",
        ),
    ],
)
def test_a_malformed_envelope_names_the_member_at_fault(doc: object, detail: str) -> None:
    with pytest.raises(MalformedMetadataError) as caught:
        dsse.Envelope.from_json(json.dumps(doc).encode())
    assert explains(caught.value).what == f"the metadata is not a DSSE envelope: {detail}"


def test_payload_type_mismatch_names_the_expected_type() -> None:
    envelope = dsse.Envelope.from_json(signed_root(make_root()))

    with pytest.raises(UnsignedMetadataError) as caught:
        dsse.verify(
            envelope,
            payload_type=dsse.PAYLOAD_TYPE_CHANNEL,
            keys=make_root().keys,
            keyids=[Keys.root[0].keyid],
            threshold=1,
            role="channel:beta",
        )
    assert dsse.PAYLOAD_TYPE_ROOT in caught.value.what
    assert caught.value.expected == repr(dsse.PAYLOAD_TYPE_CHANNEL)


# --- the .cub reader: header boundaries -------------------------------------------------------
def seal(data: bytes, recipients: list[Any] | None = None, **kw: Any) -> bytes:
    out = io.BytesIO()
    with SealWriter(out, recipients or [APP_KEY.public], **kw) as writer:
        writer.write(data)
    return out.getvalue()


def unseal(bundle: bytes, key: crypto.DecryptionKey = APP_KEY, budget: int | None = None) -> bytes:
    out = io.BytesIO()
    limit = len(bundle) if budget is None else budget
    digest, length = open_sealed(io.BytesIO(bundle), key, out, max_plaintext=limit)
    assert (digest, length) == (hashlib.sha256(out.getvalue()).hexdigest(), len(out.getvalue()))
    return out.getvalue()


def refusal(bundle: bytes, key: crypto.DecryptionKey = APP_KEY, budget: int = 1 << 30) -> Error:
    with pytest.raises((DecryptionError, LengthError)) as caught:
        open_sealed(io.BytesIO(bundle), key, io.BytesIO(), max_plaintext=budget)
    assert isinstance(caught.value, Error)
    return explains(caught.value)


def test_header_sizes_are_the_specs() -> None:
    one = seal(b"", segment_size=1 * KIB)
    header = sealed.read_header(io.BytesIO(one))
    assert header.length == 75 + 145 == 220
    two = sealed.read_header(io.BytesIO(seal(b"", [APP_KEY.public, NEXT_KEY.public])))
    assert two.length == 75 + 2 * 145


@pytest.mark.parametrize("size", [1 * KIB, 1024 * KIB], ids=["1 KiB", "1 MiB"])
def test_segment_sizes_at_both_ends_of_the_range_round_trip(size: int) -> None:
    data = hashlib.shake_256(b"edge").digest(size + 17)

    bundle = seal(data, segment_size=size)

    assert sealed.read_header(io.BytesIO(bundle)).segment_size == size
    assert unseal(bundle) == data


@pytest.mark.parametrize("size", [1 * KIB - 1, 1024 * KIB + 1])
def test_segment_size_outside_the_range_is_refused_by_writer_and_reader(size: int) -> None:
    with pytest.raises(InputError) as caught:
        SealWriter(io.BytesIO(), [APP_KEY.public], segment_size=size)
    assert explains(caught.value, fix=False).expected == "1024 to 1048576 bytes (65536 by default)"
    bundle = bytearray(seal(b"x"))
    bundle[16:20] = size.to_bytes(4, "big")
    error = refusal(bytes(bundle))
    assert error.what == f"the header's segment size is {size} bytes"
    assert error.expected == "1024 to 1048576 bytes"


@pytest.mark.parametrize(
    ("cut", "what", "expected"),
    [
        (5, "after 5 bytes", "at least 75 bytes"),
        (10, "after 10 bytes", "at least 75 bytes"),
        (74, "after 74 bytes", "at least 75 bytes"),
        (219, "after 219 bytes", "at least 220 bytes"),
    ],
)
def test_a_header_cut_short_says_where(cut: int, what: str, expected: str) -> None:
    error = refusal(seal(b"x")[:cut])
    assert error.what == f"the bundle ends inside its header {what}"
    assert error.expected == f"a header of {expected}"


def test_wrong_format_version_says_what_to_do() -> None:
    bundle = bytearray(seal(b"x"))
    bundle[8:10] = (2).to_bytes(2, "big")
    error = refusal(bytes(bundle))
    assert error.what == "unknown .cub format version 2"
    assert error.expected == "format version 1"


def test_recipient_count_and_header_length_must_agree() -> None:
    bundle = bytearray(seal(b"x"))
    bundle[10:12] = (17).to_bytes(2, "big")
    assert refusal(bytes(bundle)).expected == "1 to 16 recipients"
    bundle[10:12] = (2).to_bytes(2, "big")
    error = refusal(bytes(bundle))
    assert error.what == "the header length field says 220 bytes for 2 recipients"
    assert error.expected == "75 + 145 x 2 = 365"


def test_a_recipient_listed_twice_in_a_header_is_refused() -> None:
    bundle = bytearray(seal(b"x", [APP_KEY.public, NEXT_KEY.public]))
    bundle[75 + 145 : 75 + 145 + 32] = bundle[75 : 75 + 32]
    error = refusal(bytes(bundle))
    assert error.expected == "distinct recipient key ids"


def test_a_bundle_for_other_keys_lists_them_all() -> None:
    bundle = seal(b"x", [NEXT_KEY.public, OTHER_KEY.public])
    error = refusal(bundle)
    assert f"{NEXT_KEY.public.keyid}, {OTHER_KEY.public.keyid}" in error.what
    assert APP_KEY.public.keyid in error.expected


# --- the .cub reader: segments ---------------------------------------------------------------
def test_a_changed_full_segment_and_a_changed_final_segment_are_told_apart() -> None:
    data = bytes(1 * KIB + 10)
    bundle = seal(data, segment_size=1 * KIB)
    first, final = 220, 220 + 1 * KIB + 16

    full = bytearray(bundle)
    full[first] ^= 1
    error = refusal(bytes(full))
    assert "segment 0 (a full segment) failed authentication" in error.what
    last = bytearray(bundle)
    last[final] ^= 1
    error = refusal(bytes(last))
    assert "segment 1 (the final segment) failed authentication" in error.what
    assert "altered, reordered, cut short or extended" in error.what


def test_a_bundle_without_its_final_segment_says_so() -> None:
    bundle = seal(bytes(1 * KIB), segment_size=1 * KIB)  # one full segment, then an empty final
    error = refusal(bundle[: 220 + 1 * KIB + 16])
    assert error.what == "the bundle ends after 1 full segments without its final segment"


def test_plaintext_above_the_signed_length_names_the_budget() -> None:
    bundle = seal(bytes(100))
    assert unseal(bundle, budget=100) == bytes(100)
    error = refusal(bundle, budget=99)
    assert isinstance(error, LengthError)
    assert error.expected == "at most the signed plaintext length, 99 bytes"


# --- the .cub writer (publish side) -------------------------------------------------------------
def test_a_recipient_key_id_of_64_non_hex_characters_is_refused() -> None:
    class Odd:
        keyid = "X" * 64

        def wrap(self, content_key: bytes, info: bytes) -> bytes:
            return bytes(113)

    with pytest.raises(InputError) as caught:
        SealWriter(io.BytesIO(), [Odd()])
    assert explains(caught.value, fix=False)


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("unsafe_fixed_content_key", 32),
        ("unsafe_fixed_salt", 32),
        ("unsafe_fixed_nonce_prefix", 7),
        ("unsafe_fixed_bundle_id", 16),
    ],
)
def test_a_fixed_value_of_the_wrong_size_is_named(name: str, size: int) -> None:
    with pytest.raises(InputError) as caught:
        SealWriter(io.BytesIO(), [APP_KEY.public], **{name: b"short"})
    assert caught.value.what == f"{name} has 5 bytes"
    assert caught.value.expected == f"exactly {size} bytes"


def test_recipient_list_errors_explain_themselves() -> None:
    with pytest.raises(InputError) as caught:
        SealWriter(io.BytesIO(), [])
    assert explains(caught.value).expected == "1 to 16 recipient keys"
    with pytest.raises(InputError) as caught:
        SealWriter(io.BytesIO(), [APP_KEY.public, APP_KEY.public])
    explains(caught.value)

    class Short:
        keyid = "ab" * 32

        def wrap(self, content_key: bytes, info: bytes) -> bytes:
            return bytes(112)

    with pytest.raises(InputError) as caught:
        SealWriter(io.BytesIO(), [Short()])
    assert caught.value.expected == "113 bytes (HPKE P-256, AES-256-GCM)"


def test_writer_is_open_until_closed_and_counts_every_byte() -> None:
    writer = SealWriter(io.BytesIO(), [APP_KEY.public], segment_size=1 * KIB)
    assert writer.closed is False
    writer.write(bytes(1 * KIB + 3))
    writer.close()
    assert writer.closed is True
    assert writer.tell() == 1 * KIB + 3


@pytest.mark.parametrize(
    "pieces",
    [
        [1000, 24],  # a buffered segment filled exactly, nothing left over
        [1000, 24, 1024],
        [1000, 24, 5],
        [1, 1023, 1, 1023],
    ],
)
def test_writes_that_fill_the_buffer_exactly_round_trip(pieces: list[int]) -> None:
    data = hashlib.shake_256(b"pieces").digest(sum(pieces))
    out = io.BytesIO()
    writer = SealWriter(out, [APP_KEY.public], segment_size=1 * KIB)
    at = 0
    for n in pieces:
        writer.write(data[at : at + n])
        at += n
    result = writer.close()

    assert unseal(out.getvalue()) == data
    assert result.plaintext_length == len(data)
    assert writer.tell() == len(data)


def test_the_segment_counter_limit_explains_itself() -> None:
    with pytest.raises(LengthError) as caught:
        sealed._nonce(b"prefix7", 1 << 32, last=False)
    assert explains(caught.value).expected.startswith("at most 4294967296 segments")


def test_an_unreadable_source_file_names_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "missing.zip"
    with pytest.raises(InputError) as caught:
        sealed.seal_file(missing, io.BytesIO(), [APP_KEY.public])
    error = explains(caught.value)
    assert error.what == f"cannot read {missing}: No such file or directory"


def test_ciphertext_is_the_same_base64_both_ways() -> None:
    """Envelopes round-trip their bytes: to_json emits what from_json reads."""
    env = dsse.sign(dsse.PAYLOAD_TYPE_CHANNEL, b"\x00\xff payload", [Keys.beta])
    again = dsse.Envelope.from_json(env.to_json())
    assert again == env
    assert json.loads(env.to_json())["payload"] == base64.b64encode(b"\x00\xff payload").decode()
