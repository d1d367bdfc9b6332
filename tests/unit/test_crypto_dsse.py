from __future__ import annotations

import pytest

from otaseal import crypto, dsse
from otaseal.errors import (
    DecryptionError,
    KeyMaterialError,
    MalformedMetadataError,
    UnsignedMetadataError,
)


@pytest.mark.parametrize("algorithm", ["ecdsa-p256-sha256", "ed25519"])
def test_sign_and_verify_round_trip(algorithm: str) -> None:
    key = crypto.generate_signing_key(algorithm)
    loaded = crypto.load_signing_key(key.to_pem())
    assert loaded.keyid == key.keyid == crypto.keyid_of(key.public.der)
    envelope = dsse.sign(dsse.PAYLOAD_TYPE_ROOT, b"{}", [loaded])
    parsed = dsse.Envelope.from_json(envelope.to_json())
    payload = dsse.verify(
        parsed,
        payload_type=dsse.PAYLOAD_TYPE_ROOT,
        keys={key.keyid: key.public},
        keyids=[key.keyid],
        threshold=1,
        role="root",
    )
    assert payload == b"{}"
    assert crypto.load_public_key(key.public.to_pem()) == key.public


def test_ecdsa_signatures_are_deterministic() -> None:
    key = crypto.signing_key_from_scalar(12345)
    assert key.sign(b"m") == key.sign(b"m")


def test_one_key_counted_once_toward_threshold() -> None:
    key = crypto.generate_signing_key()
    envelope = dsse.sign(dsse.PAYLOAD_TYPE_ROOT, b"x", [key, key])
    with pytest.raises(UnsignedMetadataError):
        dsse.verify(
            envelope,
            payload_type=dsse.PAYLOAD_TYPE_ROOT,
            keys={key.keyid: key.public},
            keyids=[key.keyid],
            threshold=2,
            role="root",
        )


def test_wrong_payload_type_refused() -> None:
    key = crypto.generate_signing_key()
    envelope = dsse.sign(dsse.PAYLOAD_TYPE_ROOT, b"x", [key])
    with pytest.raises(UnsignedMetadataError):
        dsse.verify(
            envelope,
            payload_type=dsse.PAYLOAD_TYPE_CHANNEL,
            keys={key.keyid: key.public},
            keyids=[key.keyid],
            threshold=1,
            role="channel:beta",
        )


def test_algorithm_comes_from_the_trusted_entry() -> None:
    key = crypto.generate_signing_key("ed25519")
    forged = crypto.PublicKey("ecdsa-p256-sha256", key.public.der)
    assert not forged.is_valid_signature(key.sign(b"m"), b"m")
    assert not crypto.PublicKey("rsa", key.public.der).is_valid_signature(b"", b"m")
    ec_key = crypto.generate_signing_key()
    assert not crypto.PublicKey("ed25519", ec_key.public.der).is_valid_signature(b"", b"m")


def test_garbage_envelope_is_malformed() -> None:
    with pytest.raises(MalformedMetadataError):
        dsse.Envelope.from_json(b"not json")


def test_garbage_key_gives_clear_error_without_content() -> None:
    with pytest.raises(KeyMaterialError) as info:
        crypto.load_signing_key(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            source="keys/beta.pem",
        )
    assert "keys/beta.pem" in info.value.diagnostics()
    assert "AAAA" not in info.value.diagnostics()


def test_encryption_key_is_not_a_signing_key_when_ed25519_expected() -> None:
    enc = crypto.generate_decryption_key()
    with pytest.raises(KeyMaterialError):
        crypto.load_decryption_key(crypto.generate_signing_key("ed25519").to_pem())
    assert crypto.load_decryption_key(enc.to_pem()).public == enc.public
    assert crypto.load_recipient_key(enc.public.to_pem()) == enc.public


def test_hpke_wrap_unwrap_and_wrong_key() -> None:
    key = crypto.generate_decryption_key()
    wrapped = key.public.wrap(b"k" * 32, b"info")
    assert key.unwrap(wrapped, b"info") == b"k" * 32
    with pytest.raises(DecryptionError):
        crypto.generate_decryption_key().unwrap(wrapped, b"info")
    with pytest.raises(DecryptionError):
        key.unwrap(wrapped, b"other info")


def test_unknown_algorithm_refused() -> None:
    with pytest.raises(KeyMaterialError):
        crypto.generate_signing_key("rsa")


def test_reprs_do_not_show_key_material() -> None:
    key = crypto.generate_signing_key()
    assert "PRIVATE" not in repr(key)
    assert "PRIVATE" not in repr(crypto.generate_decryption_key())
