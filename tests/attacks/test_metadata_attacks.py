"""Attacks on root.json and channel manifests, and the release-selection rules devices follow.

Each attack runs the real device client against a store the attacker controls. A refused check
must raise exactly the expected error, leave the device's trusted state and installed files
byte-for-byte as they were, and download no bundle (see ``Device.refuses`` in conftest.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from otaseal import crypto, dsse, operations, trust
from otaseal.errors import (
    ExpiredMetadataError,
    MalformedMetadataError,
    MetadataError,
    OversizeMetadataError,
    RollbackError,
    UnsignedMetadataError,
    WrongTargetError,
)
from otaseal.model import Role
from otaseal.store import pointer_key, root_key


def install_first_release(repo, device, channel="beta"):
    """The honest start of most attacks: release 1.0.0 published and installed."""
    release = repo.publish(channel, label="1.0.0")
    result = device.check(channel=channel)
    assert result.status == "installed"
    assert result.release == release
    return release


def evil_manifest(repo, channel="beta", **changes):
    """The next manifest for ``channel``, pointing at a new bundle that really is in the store."""
    bundle = repo.build(label="6.6.6")
    repo.upload(bundle)
    return repo.manifest(channel, [repo.release(bundle, label="6.6.6")], **changes)


# --- the simulator itself -----------------------------------------------------------------------
def test_honest_update_installs_and_records_state(repo, device):
    release = repo.publish("beta", label="1.0.0")

    result = device.check()

    assert (result.status, result.release) == ("installed", release)
    assert device.files() == repo.build(label="1.0.0").files
    assert device.trusted_version() == 1
    assert device.installed() == {"sha256": release.sha256, "label": "1.0.0", "counter": 1}
    bundle = f"{repo.app}/bundles/{release.sha256}.cub"
    assert device.fetcher.bundle_requests == [bundle]
    assert device.fetcher.max_bytes_for(bundle) == [release.length]


# --- signatures -------------------------------------------------------------------------------
def test_unsigned_manifest_rejected(repo, device):
    install_first_release(repo, device)
    repo.serve("beta", repo.sign(evil_manifest(repo).to_payload(), []))

    device.refuses(UnsignedMetadataError)


def test_manifest_signed_by_unknown_key_rejected(repo, device):
    install_first_release(repo, device)
    repo.serve_manifest(evil_manifest(repo), signers=[repo.keys.attacker])

    device.refuses(UnsignedMetadataError)


def test_mix_and_match_beta_key_signs_production(repo, new_device):
    device = new_device(channel="production")
    install_first_release(repo, device, "production")
    repo.serve_manifest(evil_manifest(repo, "production"), signers=[repo.keys.beta])

    device.refuses(UnsignedMetadataError)


def test_production_manifest_replayed_on_beta_rejected(repo, device):
    install_first_release(repo, device)
    repo.publish("production", label="2.0.0")
    repo.serve("beta", repo.get(pointer_key(repo.app, "production")))

    device.refuses(UnsignedMetadataError)


def test_tampered_manifest_payload_rejected(repo, device):
    install_first_release(repo, device)
    honest = repo.manifest("beta", repo.served["beta"].releases)
    envelope = dsse.Envelope.from_json(repo.sign_manifest(honest))
    swapped = dsse.Envelope(
        envelope.payload_type, evil_manifest(repo).to_payload(), envelope.signatures
    )
    repo.serve("beta", swapped.to_json())

    device.refuses(UnsignedMetadataError)


def test_payload_type_confusion_rejected(repo, device):
    install_first_release(repo, device)
    payload = evil_manifest(repo).to_payload()
    repo.serve("beta", repo.sign(payload, [repo.keys.beta], payload_type=dsse.PAYLOAD_TYPE_ROOT))

    device.refuses(UnsignedMetadataError)


def _two_of_two_production(repo):
    keys = [repo.keys.production, repo.keys.production_2]
    repo.rotate_root(
        channel_keys={**repo.channel_signers, "production": keys},
        channel_thresholds={"production": 2},
    )


def test_one_key_counted_twice_toward_channel_threshold(repo, new_device):
    _two_of_two_production(repo)
    device = new_device(channel="production")
    install_first_release(repo, device, "production")
    twice = [repo.keys.production, repo.keys.production]
    repo.serve_manifest(evil_manifest(repo, "production"), signers=twice)

    device.refuses(UnsignedMetadataError)


def test_channel_threshold_not_met_rejected(repo, new_device):
    _two_of_two_production(repo)
    device = new_device(channel="production")
    install_first_release(repo, device, "production")
    repo.serve_manifest(evil_manifest(repo, "production"), signers=[repo.keys.production])

    device.refuses(UnsignedMetadataError)


def _two_of_two_root(repo):
    """Root v2 needs two root keys; the device walks to it on its first check."""
    repo.rotate_root(root_keys=repo.keys.root[:2], root_threshold=2)


def _hostile_root_v3(repo, signers):
    """Root v3 that hands beta to the attacker, and a beta manifest the attacker signed."""
    evil = repo.make_root(
        version=3,
        root_keys=repo.keys.root[:2],
        root_threshold=2,
        channel_keys={**repo.channel_signers, "beta": [repo.keys.attacker]},
    )
    repo.put_root(3, repo.sign_root(evil, signers))
    repo.serve_manifest(evil_manifest(repo), signers=[repo.keys.attacker])


def test_one_key_counted_twice_toward_root_threshold(repo, device):
    _two_of_two_root(repo)
    install_first_release(repo, device)
    assert device.trusted_root_version() == 2
    root0 = repo.keys.root[0]
    _hostile_root_v3(repo, [root0, root0])

    device.refuses(UnsignedMetadataError)


def test_root_threshold_not_met_rejected(repo, device):
    _two_of_two_root(repo)
    install_first_release(repo, device)
    _hostile_root_v3(repo, [repo.keys.root[0]])

    device.refuses(UnsignedMetadataError)


# --- versions and expiry ----------------------------------------------------------------------
def test_rollback_attack_rejected(repo, device):
    repo.publish("beta", label="1.0.0")
    old_envelope = repo.get(pointer_key(repo.app, "beta"))
    repo.publish("beta", label="2.0.0")
    assert device.check().release.label == "2.0.0"
    repo.serve("beta", old_envelope)

    error = device.refuses(RollbackError)

    assert "version 1" in error.what
    assert device.trusted_version() == 2


def test_equal_version_is_a_no_op(repo, device):
    install_first_release(repo, device)
    before, state = device.snapshot(), device.state_bytes()
    device.fetcher.reset()

    result = device.check()

    assert result.status == "up_to_date"
    assert result.release is None
    assert device.fetcher.bundle_requests == []
    assert (device.snapshot(), device.state_bytes()) == (before, state)


def test_expired_manifest_rejected(repo, device):
    install_first_release(repo, device)
    manifest = evil_manifest(
        repo, issued=repo.now - timedelta(days=31), expires=repo.now - timedelta(seconds=1)
    )
    repo.serve_manifest(manifest)

    device.refuses(ExpiredMetadataError)


def test_freeze_attack_stale_manifest_expires(repo, device):
    """A store that keeps serving the last manifest cannot hide new releases forever."""
    install_first_release(repo, device)

    device.refuses(ExpiredMetadataError, now=repo.now + timedelta(days=30))


def test_expired_root_rejected(repo, device):
    install_first_release(repo, device)
    long_lived = replace(repo.served["beta"], version=2, expires=repo.now + timedelta(days=800))
    repo.serve_manifest(long_lived)

    error = device.refuses(ExpiredMetadataError, now=repo.now + timedelta(days=366))

    assert "root v1" in error.what


def test_expired_new_root_rejected(repo, device):
    install_first_release(repo, device)
    repo.rotate_root(issued=repo.now - timedelta(days=400))  # v2 expired 35 days ago
    repo.serve_manifest(evil_manifest(repo))

    error = device.refuses(ExpiredMetadataError)

    assert "root v2" in error.what
    assert device.trusted_root_version() == 1


def test_expired_intermediate_root_is_walked(repo, device):
    """Expiry applies to the newest root only: an old device can still catch up."""
    install_first_release(repo, device)
    repo.rotate_root(issued=repo.now - timedelta(days=400))
    repo.rotate_root(root_keys=[repo.keys.new_root[0]])
    repo.publish("beta", label="2.0.0")

    assert device.check().status == "installed"
    assert device.trusted_root_version() == 3


# --- root rotation ------------------------------------------------------------------------------
def _hostile_rotation(repo, signers):
    """Root v2 with new root keys that hands beta to the attacker."""
    evil = repo.make_root(
        version=2,
        root_keys=[repo.keys.new_root[0]],
        channel_keys={**repo.channel_signers, "beta": [repo.keys.attacker]},
    )
    repo.put_root(2, repo.sign_root(evil, signers))
    repo.serve_manifest(evil_manifest(repo), signers=[repo.keys.attacker])


def test_root_rotation_without_old_threshold_rejected(repo, device):
    install_first_release(repo, device)
    _hostile_rotation(repo, [repo.keys.new_root[0]])

    error = device.refuses(UnsignedMetadataError)

    assert "old keys" in error.what


def test_root_rotation_without_new_threshold_rejected(repo, device):
    install_first_release(repo, device)
    _hostile_rotation(repo, [repo.keys.root[0]])

    error = device.refuses(UnsignedMetadataError)

    assert "new keys" in error.what


def test_root_version_skip_rejected(repo, device):
    install_first_release(repo, device)
    skipping = repo.make_root(version=3)
    repo.put_root(2, repo.sign_root(skipping, repo.root_signers))
    repo.publish("beta", label="2.0.0")

    device.refuses(RollbackError)


def test_root_for_another_app_rejected(repo, device):
    install_first_release(repo, device)
    foreign = repo.make_root(version=2, app="com.evil.app")
    repo.put_root(2, repo.sign_root(foreign, repo.root_signers))
    repo.publish("beta", label="2.0.0")

    device.refuses(WrongTargetError)


def test_root_rotation_is_followed(repo, device):
    install_first_release(repo, device)
    repo.rotate_root(root_keys=[repo.keys.new_root[0]])
    repo.rotate_root(root_keys=[repo.keys.new_root[1]])
    repo.publish("beta", label="2.0.0")

    assert device.check().status == "installed"
    assert device.trusted_root_version() == 3


def test_fast_forward_recovery_after_key_rotation(repo, device):
    install_first_release(repo, device)
    # The beta key leaks; the attacker pushes version 10**9 and freezes the channel.
    stolen = repo.manifest("beta", repo.served["beta"].releases, version=10**9)
    frozen_envelope = repo.sign_manifest(stolen, [repo.keys.beta])
    repo.serve("beta", frozen_envelope)
    assert device.check().status == "up_to_date"
    assert device.trusted_version() == 10**9
    repo.publish("beta", label="2.0.0")
    device.refuses(RollbackError)

    # Root v2 replaces the beta key; the channel starts a new history at version 1.
    repo.rotate_root(channel_keys={**repo.channel_signers, "beta": [repo.keys.new_beta]})
    fixed = repo.publish("beta", label="2.0.1", keep=False)
    repo.serve_manifest(replace(repo.served["beta"], version=1))

    result = device.check()

    assert (result.status, result.release) == ("installed", fixed)
    assert device.trusted_version() == 1
    assert device.trusted_root_version() == 2
    # The stolen key no longer counts.
    repo.serve("beta", frozen_envelope)
    device.refuses(UnsignedMetadataError)


def test_fast_forward_recovery_when_rotation_is_first_seen_on_another_channel(repo, new_device):
    production = new_device(channel="production")
    install_first_release(repo, production, "production")
    repo.publish("beta", label="1.0.0")
    stolen = repo.manifest("production", repo.served["production"].releases, version=10**9)
    repo.serve_manifest(stolen, signers=[repo.keys.production])
    assert production.check().status == "up_to_date"
    assert production.trusted_version() == 10**9

    repo.rotate_root(
        channel_keys={**repo.channel_signers, "production": [repo.keys.new_production]}
    )
    assert production.check(channel="beta").status == "installed"  # adopts root v2
    assert production.trusted_root_version() == 2
    fixed = repo.publish("production", label="2.0.0", keep=False)
    repo.serve_manifest(replace(repo.served["production"], version=1))

    result = production.check()

    assert (result.status, result.release) == ("installed", fixed)


def test_oversize_root_rejected(repo, device):
    install_first_release(repo, device)
    repo.put_root(2, b" " * (trust.METADATA_MAX_BYTES + 1))

    device.refuses(OversizeMetadataError)

    assert device.fetcher.delivered[root_key(repo.app, 2)] <= trust.METADATA_MAX_BYTES


def test_too_many_root_hops_rejected(repo, device):
    install_first_release(repo, device)
    for _ in range(trust.MAX_ROOT_HOPS + 1):
        repo.rotate_root()
    repo.publish("beta", label="2.0.0")

    error = device.refuses(MetadataError)

    assert str(trust.MAX_ROOT_HOPS) in error.what
    assert device.trusted_root_version() == 1


def test_root_chain_of_max_hops_is_walked(repo, device):
    install_first_release(repo, device)
    for _ in range(trust.MAX_ROOT_HOPS):
        repo.rotate_root()
    repo.publish("beta", label="2.0.0")

    assert device.check().status == "installed"
    assert device.trusted_root_version() == trust.MAX_ROOT_HOPS + 1


# --- what the manifest says ---------------------------------------------------------------------
def test_wrong_app_rejected(repo, device):
    install_first_release(repo, device)
    repo.serve_manifest(evil_manifest(repo, app="com.evil.app"), signers=[repo.keys.beta])

    error = device.refuses(WrongTargetError)

    assert "com.evil.app" in error.what


def test_wrong_channel_rejected(repo, device):
    install_first_release(repo, device)
    repo.serve_manifest(evil_manifest(repo, channel="production"), signers=[repo.keys.beta])
    repo.serve("beta", repo.get(pointer_key(repo.app, "production")))

    error = device.refuses(WrongTargetError)

    assert "production" in error.what


def test_unknown_spec_major_rejected(repo, device):
    install_first_release(repo, device)
    repo.serve_manifest(evil_manifest(repo, spec_version="2.0"))

    error = device.refuses(WrongTargetError)

    assert "2.0" in error.what


def test_newer_spec_minor_with_unknown_fields_accepted(repo, device):
    """Minor versions only add fields; a device ignores what it does not know."""
    install_first_release(repo, device)
    bundle = repo.build(label="2.0.0")
    repo.upload(bundle)
    newer = repo.manifest(
        "beta",
        [repo.release(bundle, label="2.0.0")],
        spec_version="1.9",
        extra={"future_field": {"anything": [1, 2, 3]}},
    )
    repo.serve_manifest(newer)

    assert device.check().release.label == "2.0.0"


def test_signed_but_malformed_manifest_rejected(repo, device):
    install_first_release(repo, device)
    doc = json.loads(evil_manifest(repo).to_payload())
    doc["releases"][0]["bundle"]["length"] = "a lot"
    repo.serve("beta", repo.sign(json.dumps(doc).encode(), [repo.keys.beta]))

    device.refuses(MalformedMetadataError)


def test_garbage_instead_of_envelope_rejected(repo, device):
    install_first_release(repo, device)
    repo.serve("beta", b"<html>503 Service Unavailable</html>")

    device.refuses(MalformedMetadataError)


def test_oversize_manifest_rejected(repo, device):
    install_first_release(repo, device)
    padded = evil_manifest(repo, extra={"padding": "x" * trust.METADATA_MAX_BYTES})
    repo.serve_manifest(padded)
    stored = len(repo.get(pointer_key(repo.app, "beta")))
    assert stored > trust.METADATA_MAX_BYTES

    device.refuses(OversizeMetadataError)

    pointer = pointer_key(repo.app, "beta")
    assert device.fetcher.max_bytes_for(pointer) == [trust.METADATA_MAX_BYTES]
    assert device.fetcher.delivered[pointer] <= trust.METADATA_MAX_BYTES < stored


# --- release selection: rollout, revert, security floor, native range -------------------------
def test_device_outside_rollout_cohort_not_given_release(repo, new_device):
    salt = "salt-2.0.0"  # the salt repo.release gives label 2.0.0
    outside = new_device(install_id=repo.install_id(salt, low=3000))
    inside = new_device(install_id=repo.install_id(salt, high=3000))
    first = install_first_release(repo, outside)
    assert inside.check().release == first
    second = repo.publish("beta", label="2.0.0", rollout_bp=3000)
    outside.fetcher.reset()

    result = outside.check()

    assert result.status == "up_to_date"
    assert outside.fetcher.bundle_requests == []
    assert outside.installed()["sha256"] == first.sha256
    assert outside.trusted_version() == 2  # the manifest itself was good
    assert inside.check().release == second


def test_new_device_outside_cohort_gets_previous_release(repo, new_device):
    first = repo.publish("beta", label="1.0.0")
    repo.publish("beta", label="2.0.0", rollout_bp=1000)
    device = new_device(install_id=repo.install_id("salt-2.0.0", low=1000))

    assert device.check().release == first


def test_device_never_moves_to_older_release_when_it_falls_out_of_cohort(repo, new_device):
    device = new_device(install_id=repo.install_id("salt-2.0.0", low=1000, high=5000))
    install_first_release(repo, device)
    second = repo.publish("beta", label="2.0.0", rollout_bp=5000)
    assert device.check().release == second
    shrunk = replace(repo.served["beta"].releases[0], rollout_bp=1000)
    repo.serve_manifest(repo.manifest("beta", (shrunk, *repo.served["beta"].releases[1:])))
    files = device.files()
    device.fetcher.reset()

    result = device.check()

    assert result.status == "up_to_date"
    assert device.installed()["sha256"] == second.sha256
    assert device.files() == files
    assert device.fetcher.bundle_requests == []


def test_paused_release_not_given_to_new_devices(repo, new_device):
    early = new_device()
    install_first_release(repo, early)
    second = repo.publish("beta", label="2.0.0")
    assert early.check().release == second
    paused = replace(repo.served["beta"].releases[0], paused=True)
    repo.serve_manifest(repo.manifest("beta", (paused, *repo.served["beta"].releases[1:])))

    assert early.check().status == "up_to_date"
    assert early.installed()["label"] == "2.0.0"
    assert new_device().check().release.label == "1.0.0"


def _write_build(path, label):
    for name, data in {
        "index.html": f"<h1>{label}</h1>\n".encode(),
        "app.js": f"// {label}\n".encode(),
    }.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def test_revert_moves_devices_back(repo, device, project, tmp_path):
    v1 = operations.publish(
        project, _write_build(tmp_path / "v1", "1.0.0"), channel="beta", label="1.0.0"
    )
    operations.publish(
        project, _write_build(tmp_path / "v2", "2.0.0"), channel="beta", label="2.0.0"
    )
    assert device.check().release.label == "2.0.0"

    operations.revert(project, channel="beta")
    result = device.check()

    assert (result.status, result.release.sha256) == ("installed", v1.release.sha256)
    assert device.files() == {"index.html": b"<h1>1.0.0</h1>\n", "app.js": b"// 1.0.0\n"}
    assert device.installed()["label"] == "1.0.0"


def test_builtin_revert_clears_the_install(repo, device, project, tmp_path):
    operations.publish(project, _write_build(tmp_path / "v1", "1.0.0"), channel="beta")
    assert device.check().status == "installed"

    operations.revert(project, channel="beta", to="builtin")
    result = device.check()

    assert result.status == "builtin"
    assert device.files() is None
    assert device.installed() is None
    assert device.check().status == "up_to_date"


def test_security_floor_refuses_low_counter_releases(repo, new_device):
    device = new_device()
    install_first_release(repo, device)
    second = repo.publish("beta", label="2.0.0")
    assert device.check().release == second
    first = repo.served["beta"].releases[1]
    # A revert to 1.0.0 after the floor was raised to 2.0.0's counter.
    repo.serve_manifest(repo.manifest("beta", (first, second), security_floor=second.counter))
    device.fetcher.reset()

    assert device.check().status == "up_to_date"
    assert device.installed()["sha256"] == second.sha256
    assert device.fetcher.bundle_requests == []

    fresh = new_device()
    repo.serve_manifest(repo.manifest("beta", (first,), security_floor=second.counter))
    result = fresh.check()
    assert (result.status, result.release) == ("up_to_date", None)
    assert fresh.fetcher.bundle_requests == []
    assert fresh.files() is None


def test_native_range_incompatibility(repo, new_device):
    old_shell, new_shell, any_shell = (
        new_device(native=10),
        new_device(native=25),
        new_device(native=None),
    )
    first = repo.publish("beta", label="1.0.0", native_max=19)
    second = repo.publish("beta", label="2.0.0", native_min=20)

    assert old_shell.check().release == first
    assert new_shell.check().release == second
    assert any_shell.check().release == second

    too_new = new_device(native=30)
    repo.publish("beta", label="3.0.0", native_min=40, keep=False)
    result = too_new.check()
    assert (result.status, result.release) == ("up_to_date", None)
    assert too_new.fetcher.bundle_requests == []


def _compressed_spki(der):
    """The same P-256 public key as a compressed-point SPKI: other bytes, so another key id.

    A root listing both encodings would let one key count twice toward a threshold, so a root
    holding a non-canonical key encoding is refused as malformed.
    """
    x, y = der[27:59], der[59:91]
    prefix = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200")
    return prefix + bytes([2 + (y[-1] & 1)]) + x


def test_one_key_listed_under_two_key_ids_rejected(repo, new_device):
    key = repo.keys.production
    twin = crypto.PublicKey(key.public.algorithm, _compressed_spki(key.public.der))
    assert twin.keyid != key.keyid
    assert twin.is_valid_signature(key.sign(b"x"), b"x")
    root = repo.make_root(version=2, channel_thresholds={"production": 2})
    root = replace(
        root,
        keys={**root.keys, twin.keyid: twin},
        roles={**root.roles, "channel:production": Role((key.keyid, twin.keyid), 2)},
    )
    repo.put_root(2, repo.sign_root(root, repo.root_signers))
    device = new_device(channel="production")
    manifest = evil_manifest(repo, "production")
    envelope = dsse.Envelope.from_json(repo.sign_manifest(manifest, [key]))
    ((_, signature),) = envelope.signatures
    doubled = replace(envelope, signatures=((key.keyid, signature), (twin.keyid, signature)))
    repo.serve("production", doubled.to_json())

    error = device.refuses(MalformedMetadataError, channel="production")

    assert "canonical" in error.expected


def test_root_key_rotation_keeps_rollback_protection_of_a_channel_named_root(repo, new_device):
    repo.rotate_root(channel_keys={**repo.channel_signers, "root": [repo.keys.new_beta]})
    device = new_device(channel="root")
    repo.publish("root", label="1.0.0")
    old_envelope = repo.get(pointer_key(repo.app, "root"))
    repo.publish("root", label="2.0.0")
    assert device.check().release.label == "2.0.0"
    repo.rotate_root(root_keys=[repo.keys.new_root[0]])  # only the root role changes
    repo.serve("root", old_envelope)

    device.refuses(RollbackError)
