"""Attacks on how a device reads metadata: parser confusion, resource exhaustion, calendar edges.

A store (or a leaked channel key) serves documents that Python's ``json`` or ``datetime`` would
crash on, or that another language's parser would read differently. Each must be refused with
exactly the spec's error, trusted state and installed files untouched and no bundle fetched
(``Device.refuses``), never a ``RecursionError``, ``OverflowError`` or ``ValueError``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from otaseal import dsse
from otaseal.errors import ExpiredMetadataError, MalformedMetadataError, RollbackError
from otaseal.model import Role
from otaseal.store import pointer_key
from otaseal.trust import rotated_roles


def install_first_release(repo, device, channel="beta"):
    release = repo.publish(channel, label="1.0.0")
    assert device.check(channel=channel).status == "installed"
    return release


def next_payload(repo, channel="beta", **changes):
    """The payload document of the channel's next honest manifest (same releases)."""
    manifest = repo.manifest(channel, repo.served[channel].releases, **changes)
    return json.loads(manifest.to_payload())


def serve_signed(repo, payload: bytes, channel="beta"):
    """What a holder of the channel's key (leaked, or a buggy publisher) can serve."""
    repo.serve(channel, repo.sign(payload, repo.channel_signers[channel]))


# --- envelopes: no key needed -------------------------------------------------------------------
def test_deeply_nested_envelope_stack_exhaustion_rejected(repo, device):
    install_first_release(repo, device)
    repo.serve("beta", b'{"payloadType": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")

    device.refuses(MalformedMetadataError)


def test_unclosed_brackets_under_the_size_cap_rejected(repo, device):
    install_first_release(repo, device)
    repo.serve("beta", b"[" * (512 * 1024))

    error = device.refuses(MalformedMetadataError)

    assert "not a DSSE envelope" in error.what


def test_duplicate_payload_in_envelope_parser_confusion_rejected(repo, device):
    """Two ``payload`` members: a JavaScript SDK would verify one, Python would parse another."""
    install_first_release(repo, device)
    honest = json.loads(repo.get(pointer_key(repo.app, "beta")))
    evil = json.dumps(next_payload(repo, version=99)).encode()
    doubled = (
        b'{"payloadType": "' + dsse.PAYLOAD_TYPE_CHANNEL.encode() + b'", '
        b'"payload": "' + base64.b64encode(evil) + b'", '
        b'"payload": "' + honest["payload"].encode() + b'", '
        b'"signatures": ' + json.dumps(honest["signatures"]).encode() + b"}"
    )
    repo.serve("beta", doubled)

    error = device.refuses(MalformedMetadataError)

    assert "twice" in error.what


def test_byte_order_mark_before_envelope_rejected(repo, device):
    install_first_release(repo, device)
    envelope = repo.sign(json.dumps(next_payload(repo)).encode(), [repo.keys.beta])
    repo.serve("beta", b"\xef\xbb\xbf" + envelope)

    device.refuses(MalformedMetadataError)


def test_unpadded_base64_payload_rejected(repo, device):
    install_first_release(repo, device)
    doc = json.loads(repo.sign(json.dumps(next_payload(repo)).encode() + b"  ", [repo.keys.beta]))
    assert doc["payload"].endswith("=")
    doc["payload"] = doc["payload"].rstrip("=")
    repo.serve("beta", json.dumps(doc).encode())

    device.refuses(MalformedMetadataError)


# --- signed payloads: a leaked channel key ------------------------------------------------------
def test_byte_order_mark_before_signed_payload_rejected(repo, device):
    install_first_release(repo, device)
    serve_signed(repo, b"\xef\xbb\xbf" + json.dumps(next_payload(repo)).encode())

    error = device.refuses(MalformedMetadataError)

    assert "byte-order mark" in error.what


def test_duplicate_version_key_in_signed_manifest_parser_confusion_rejected(repo, device):
    install_first_release(repo, device)
    payload = json.dumps(next_payload(repo)).encode()
    serve_signed(repo, payload.replace(b'"version": 2', b'"version": 2, "version": 1000000'))

    error = device.refuses(MalformedMetadataError)

    assert "twice" in error.what


def test_deeply_nested_signed_manifest_stack_exhaustion_rejected(repo, device):
    install_first_release(repo, device)
    doc = next_payload(repo)
    doc["future"] = "@"
    payload = json.dumps(doc).encode().replace(b'"@"', b"[" * 100_000 + b"]" * 100_000)
    serve_signed(repo, payload)

    error = device.refuses(MalformedMetadataError)

    assert "deeper than 32 levels" in error.what


def test_manifest_version_beyond_javascript_integers_freeze_rejected(repo, device):
    """A version of 2^53 reads as 2^53 + 1 in JavaScript too: SDKs would freeze on it."""
    install_first_release(repo, device)
    serve_signed(repo, json.dumps(next_payload(repo, version=2**53)).encode())

    device.refuses(MalformedMetadataError)

    serve_signed(repo, json.dumps(next_payload(repo, version=2**53 - 1)).encode())
    assert device.check().status == "up_to_date"
    assert device.trusted_version() == 9_007_199_254_740_991


@pytest.mark.parametrize(
    "expires",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "10000-01-01T00:00:00Z"],
)
def test_calendar_overflow_in_signed_manifest_rejected(repo, device, expires):
    install_first_release(repo, device)
    serve_signed(repo, json.dumps(next_payload(repo) | {"expires": expires}).encode())

    device.refuses(MalformedMetadataError)


def test_manifest_at_the_calendar_edges_is_compared_not_crashed(repo, device):
    install_first_release(repo, device)
    serve_signed(
        repo, json.dumps(next_payload(repo) | {"expires": "0001-01-01T00:00:00Z"}).encode()
    )
    device.refuses(ExpiredMetadataError)

    serve_signed(
        repo, json.dumps(next_payload(repo) | {"expires": "9999-12-31T23:59:59Z"}).encode()
    )
    assert device.check().status == "up_to_date"


# --- roots --------------------------------------------------------------------------------------
def root_update_payload(repo):
    new = repo.make_root(version=repo.root.version + 1)
    return json.loads(new.to_payload())


def serve_root_update(repo, doc):
    payload = json.dumps(doc).encode()
    repo.put_root(
        doc["version"], repo.sign(payload, repo.root_signers, payload_type=dsse.PAYLOAD_TYPE_ROOT)
    )


@pytest.mark.parametrize("public", ["MFkw\u00e9AAA=", "MFkwEw", "MFkw\nEwYH"])
def test_root_update_with_non_base64_key_rejected(repo, device, public):
    install_first_release(repo, device)
    doc = root_update_payload(repo)
    next(iter(doc["keys"].values()))["public"] = public
    serve_root_update(repo, doc)

    error = device.refuses(MalformedMetadataError)

    assert "base64" in error.expected


@pytest.mark.parametrize("expires", ["9999-12-31T23:59:59-14:00", "2027-01-01T00:00:00.5Z"])
def test_root_update_with_calendar_edge_time_rejected(repo, device, expires):
    install_first_release(repo, device)
    serve_root_update(repo, root_update_payload(repo) | {"expires": expires})

    device.refuses(MalformedMetadataError)


def test_root_update_spec_version_without_minor_rejected(repo, device):
    install_first_release(repo, device)
    serve_root_update(repo, root_update_payload(repo) | {"spec_version": "1"})

    device.refuses(MalformedMetadataError)


def test_root_update_that_reorders_channel_key_ids_keeps_rollback_protection(repo, new_device):
    """SPEC §6.4 compares sets: a reordered list is not a rotation and must not reset versions."""
    second = repo.keys.new_beta
    repo.rotate_root(channel_keys={**repo.channel_signers, "beta": [repo.keys.beta, second]})
    device = new_device()
    repo.publish("beta", label="1.0.0")
    old_envelope = repo.get(pointer_key(repo.app, "beta"))
    repo.publish("beta", label="2.0.0")
    assert device.check().release.label == "2.0.0"
    doc = root_update_payload(repo)
    doc["roles"]["channel:beta"]["keyids"].reverse()
    assert doc["roles"]["channel:beta"]["keyids"] == sorted(
        doc["roles"]["channel:beta"]["keyids"], reverse=True
    )
    serve_root_update(repo, doc)
    repo.serve("beta", old_envelope)

    device.refuses(RollbackError)

    assert device.trusted_version() == 2


def test_rotated_roles_compares_key_ids_as_a_set(repo):
    one, two = repo.keys.beta.keyid, repo.keys.new_beta.keyid
    old = repo.make_root(version=1)
    base = {**old.roles, "channel:beta": Role((one, two), 1)}
    before = replace(old, roles=base)
    assert (
        rotated_roles(before, replace(old, roles={**base, "channel:beta": Role((two, one), 1)}))
        == set()
    )
    assert rotated_roles(before, replace(old, roles={**base, "channel:beta": Role((one,), 1)})) == {
        "channel:beta"
    }
    assert rotated_roles(
        before, replace(old, roles={**base, "channel:beta": Role((two, one), 2)})
    ) == {"channel:beta"}
    without = {k: v for k, v in base.items() if k != "channel:beta"}
    assert rotated_roles(before, replace(old, roles=without)) == {"channel:beta"}
    assert rotated_roles(replace(old, roles=without), before) == {"channel:beta"}
