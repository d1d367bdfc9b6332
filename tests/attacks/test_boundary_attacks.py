"""Attacks that sit exactly on a boundary of a device's decision, run through the real client.

Each was a surviving mutant of `make mutation` (docs/TESTING.md): the client still refused or
accepted for another reason, so a flipped check passed every older test. The spec's fixed numbers
are literals here (512 * 1024 bytes, 32 hops, basis points out of 10000).
"""

from __future__ import annotations

import json
from dataclasses import replace

from otaseal.errors import (
    MalformedMetadataError,
    MetadataError,
    OversizeMetadataError,
    WrongTargetError,
)
from otaseal.store import pointer_key, root_key


def install_first_release(repo, device, channel="beta"):
    release = repo.publish(channel, label="1.0.0")
    assert device.check(channel=channel).release == release
    return release


# --- the app id of every root -------------------------------------------------------------------
def test_shipped_root_for_another_app_rejected_before_any_fetch(repo, new_device):
    foreign = repo.sign_root(repo.make_root(version=1, app="com.evil.app"), repo.root_signers)
    device = new_device(initial_root=foreign)
    repo.publish("beta", label="1.0.0")

    error = device.refuses(WrongTargetError)

    assert "com.evil.app" in error.what
    assert "--root" in error.what
    assert device.fetcher.keys == []
    assert device.state_bytes() is None


def test_root_update_for_another_app_rejected_before_the_manifest_is_read(repo, device):
    install_first_release(repo, device)
    foreign = repo.make_root(version=2, app="com.evil.app")
    repo.put_root(2, repo.sign_root(foreign, repo.root_signers))
    repo.publish("beta", label="2.0.0")

    error = device.refuses(WrongTargetError)

    assert "com.evil.app" in error.what
    assert device.fetcher.keys == [root_key(repo.app, 2)]
    assert pointer_key(repo.app, "beta") not in device.fetcher.keys
    assert device.trusted_root_version() == 1


# --- 512 KiB and 32 hops ------------------------------------------------------------------------
def test_oversize_manifest_by_one_byte_rejected(repo, device):
    install_first_release(repo, device)
    repo.publish("beta", label="2.0.0")
    pointer = pointer_key(repo.app, "beta")
    envelope = repo.get(pointer)
    repo.serve("beta", envelope + b" " * (512 * 1024 + 1 - len(envelope)))

    device.refuses(OversizeMetadataError)

    assert device.fetcher.max_bytes_for(pointer) == [512 * 1024]
    # Exactly 512 KiB is still a manifest the device reads.
    repo.serve("beta", envelope + b" " * (512 * 1024 - len(envelope)))
    assert device.check().release.label == "2.0.0"


def test_more_than_32_root_hops_rejected_and_32_walked(repo, device):
    install_first_release(repo, device)
    for _ in range(33):
        repo.rotate_root()
    repo.publish("beta", label="2.0.0")

    error = device.refuses(MetadataError)

    assert "more than 32 new root versions" in error.what
    assert device.trusted_root_version() == 1
    # Root 34 gone: the chain 2..33 is 32 hops, which a device walks in one check.
    (repo.store.root / root_key(repo.app, 34)).unlink()
    assert device.check().release.label == "2.0.0"
    assert device.trusted_root_version() == 33


# --- fast-forward recovery when a channel leaves root.json and comes back -----------------------
def test_frozen_channel_dropped_from_root_and_re_added_with_a_new_key_recovers(repo, new_device):
    device = new_device()
    install_first_release(repo, device)
    repo.publish("production", label="1.0.0")
    # The beta key leaks and freezes beta at version 10**9.
    stolen = repo.manifest("beta", repo.served["beta"].releases, version=10**9)
    repo.serve("beta", repo.sign_manifest(stolen, [repo.keys.beta]))
    assert device.check().status == "up_to_date"
    assert device.trusted_version() == 10**9

    # Root 2 drops beta; the device adopts it while checking production.
    repo.rotate_root(channel_keys={"production": [repo.keys.production]})
    assert device.check(channel="production").status == "installed"
    assert device.trusted_root_version() == 2
    assert "beta" not in device.state()["versions"]
    # Root 3 brings beta back under a new key, with a new history from version 1.
    repo.rotate_root(
        channel_keys={"production": [repo.keys.production], "beta": [repo.keys.new_beta]}
    )
    fixed = repo.publish("beta", label="2.0.0", keep=False)
    repo.serve_manifest(replace(repo.served["beta"], version=1))

    result = device.check()

    assert (result.status, result.release) == ("installed", fixed)
    assert device.trusted_version() == 1
    assert device.trusted_root_version() == 3


# --- the security floor and the rollout cohort --------------------------------------------------
def test_revert_below_the_security_floor_gives_devices_the_next_eligible_release(repo, new_device):
    first = repo.publish("beta", label="1.0.0")
    second = repo.publish("beta", label="2.0.0")
    third = repo.publish("beta", label="3.0.0")
    # A revert to 1.0.0 signed after the floor rose to 2.0.0's counter: 1.0.0 is skipped, and
    # the walk goes on to 3.0.0 rather than stopping with nothing.
    repo.serve_manifest(repo.manifest("beta", (first, third), security_floor=second.counter))

    assert new_device().check().release == third
    # A release whose counter equals the floor is above it.
    repo.serve_manifest(repo.manifest("beta", (first, second), security_floor=second.counter))
    assert new_device().check().release == second


def test_zero_percent_rollout_reaches_no_device_not_even_bucket_0(repo, new_device):
    # The device whose bucket is 0 for 2.0.0's salt: at 0 basis points (of 10000) it stays out.
    device = new_device(install_id=repo.install_id("salt-2.0.0", low=0, high=1))
    first = install_first_release(repo, device)
    repo.publish("beta", label="2.0.0", rollout_bp=0)
    device.fetcher.reset()

    result = device.check()

    assert result.status == "up_to_date"
    assert device.installed()["sha256"] == first.sha256
    assert device.fetcher.bundle_requests == []
    # One basis point (0.01 %) is bucket 0 exactly.
    repo.serve_manifest(
        repo.manifest("beta", (replace(repo.served["beta"].releases[0], rollout_bp=1), first))
    )
    assert device.check().release.label == "2.0.0"


# --- envelopes: only strict base64 --------------------------------------------------------------
def test_envelope_with_whitespace_inside_its_base64_rejected(repo, device):
    install_first_release(repo, device)
    repo.publish("beta", label="2.0.0")
    doc = json.loads(repo.get(pointer_key(repo.app, "beta")))
    doc["payload"] = doc["payload"][:64] + "\n" + doc["payload"][64:]
    repo.serve("beta", json.dumps(doc).encode())

    device.refuses(MalformedMetadataError)


def test_signature_with_a_non_alphabet_character_rejected(repo, device):
    install_first_release(repo, device)
    repo.publish("beta", label="2.0.0")
    doc = json.loads(repo.get(pointer_key(repo.app, "beta")))
    sig = doc["signatures"][0]["sig"]
    doc["signatures"][0]["sig"] = sig[:10] + "*" + sig[10:]
    repo.serve("beta", json.dumps(doc).encode())

    device.refuses(MalformedMetadataError)
