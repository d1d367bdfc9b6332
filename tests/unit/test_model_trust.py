from __future__ import annotations

import json
from datetime import timedelta

import pytest

from otaseal import dsse, trust
from otaseal.crypto import generate_signing_key
from otaseal.errors import (
    ExpiredMetadataError,
    InputError,
    MalformedMetadataError,
    OversizeMetadataError,
    RollbackError,
    UnsignedMetadataError,
    WrongTargetError,
)
from otaseal.model import ChannelManifest, Release, Root, check_name
from otaseal.project import make_root, sign_root
from tests.conftest import APP, NOW

SHA = "ab" * 32


def release(counter: int = 1, **kw: object) -> Release:
    base: dict[str, object] = dict(
        label=f"1.0.{counter}",
        counter=counter,
        sha256=f"{counter:064x}",
        length=10,
        plaintext_sha256=SHA,
        plaintext_length=9,
        files=1,
        unpacked_size=5,
        published=NOW,
        rollout_salt="s",
    )
    base.update(kw)
    return Release(**base)  # type: ignore[arg-type]


def manifest(version: int = 1, **kw: object) -> ChannelManifest:
    base: dict[str, object] = dict(
        app=APP,
        channel="beta",
        version=version,
        issued=NOW,
        expires=NOW + timedelta(days=30),
        releases=(release(),),
    )
    base.update(kw)
    return ChannelManifest(**base)  # type: ignore[arg-type]


def test_manifest_round_trip_keeps_every_field() -> None:
    m = manifest(
        releases=(
            release(
                2, native_min=3, native_max=9, commit="c" * 40, pr=7, rollout_bp=1234, paused=True
            ),
            release(1),
        ),
        security_floor=1,
        event="publish 1.0.2",
        extra={"future": 1},
    )
    again = ChannelManifest.from_payload(m.to_payload(), app=APP, channel="beta")
    assert again == m
    assert again.find("1.0.1") == m.releases[1]
    assert again.find(f"{2:064x}"[:10]) is None or again.find(f"{2:064x}") == m.releases[0]
    assert again.find("nope") is None


def test_root_round_trip() -> None:
    key = generate_signing_key()
    root = make_root(APP, 1, now=NOW, root_keys=[key], channel_keys={"beta": [key]})
    assert Root.from_payload(root.to_payload(), app=APP) == root
    with pytest.raises(WrongTargetError):
        root.role("channel:nope")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version="1"),
        lambda d: d.update(version=-1),
        lambda d: d.update(version=True),
        lambda d: d.update(expires="yesterday"),
        lambda d: d.update(expires="2026-01-01T00:00:00"),
        lambda d: d.update(target="other"),
        lambda d: d["releases"][0]["bundle"].update(sha256="xyz"),
        lambda d: d["releases"][0]["rollout"].update(basis_points=10001),
        lambda d: d.update(releases=[d["releases"][0]] * 6),
        lambda d: d.update(releases={}),
    ],
)
def test_malformed_manifest_fields_refused(mutate: object) -> None:
    doc = json.loads(manifest().to_payload())
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(MalformedMetadataError):
        ChannelManifest.from_payload(json.dumps(doc).encode())


def test_wrong_type_and_spec_major_refused() -> None:
    doc = json.loads(manifest().to_payload())
    with pytest.raises(WrongTargetError, match="spec"):
        ChannelManifest.from_payload(json.dumps(doc | {"spec_version": "2.0"}).encode())
    with pytest.raises(WrongTargetError):
        ChannelManifest.from_payload(json.dumps(doc | {"_type": "root"}).encode())
    with pytest.raises(WrongTargetError, match="channel"):
        ChannelManifest.from_payload(manifest().to_payload(), channel="production")
    with pytest.raises(MalformedMetadataError):
        ChannelManifest.from_payload(b"\xff")


def _signed(m: ChannelManifest, *keys: object) -> bytes:
    return dsse.sign(dsse.PAYLOAD_TYPE_CHANNEL, m.to_payload(), list(keys)).to_json()  # type: ignore[arg-type]


def test_verify_channel_manifest_order_and_rules() -> None:
    root_key, beta = generate_signing_key(), generate_signing_key()
    root = make_root(APP, 1, now=NOW, root_keys=[root_key], channel_keys={"beta": [beta]})
    good = _signed(manifest(5), beta)
    assert (
        trust.verify_channel_manifest(
            root, good, channel="beta", now=NOW, trusted_version=5
        ).version
        == 5
    )
    with pytest.raises(RollbackError):
        trust.verify_channel_manifest(root, good, channel="beta", now=NOW, trusted_version=6)
    with pytest.raises(ExpiredMetadataError):
        trust.verify_channel_manifest(
            root, good, channel="beta", now=NOW + timedelta(days=31), trusted_version=None
        )
    with pytest.raises(UnsignedMetadataError):
        trust.verify_channel_manifest(
            root, _signed(manifest(), root_key), channel="beta", now=NOW, trusted_version=None
        )
    with pytest.raises(OversizeMetadataError):
        trust.check_size(b" " * (trust.METADATA_MAX_BYTES + 1), "x")


def test_root_update_requires_old_and_new_threshold() -> None:
    old_key, new_key = generate_signing_key(), generate_signing_key()
    v1 = make_root(APP, 1, now=NOW, root_keys=[old_key], channel_keys={})
    v2 = make_root(APP, 2, now=NOW, root_keys=[new_key], channel_keys={})
    assert trust.verify_root_update(v1, sign_root(v2, [old_key, new_key])).version == 2
    with pytest.raises(UnsignedMetadataError):
        trust.verify_root_update(v1, sign_root(v2, [new_key]))
    with pytest.raises(UnsignedMetadataError):
        trust.verify_root_update(v1, sign_root(v2, [old_key]))
    v3 = make_root(APP, 3, now=NOW, root_keys=[old_key], channel_keys={})
    with pytest.raises(RollbackError):
        trust.verify_root_update(v1, sign_root(v3, [old_key]))


def test_rollout_bucket_is_stable_and_cohorts_only_grow() -> None:
    ids = [f"d{i}" for i in range(2000)]
    buckets = {i: trust.rollout_bucket(APP, "beta", "salt", i) for i in ids}
    assert all(0 <= b < 10_000 for b in buckets.values())
    at10 = {i for i, b in buckets.items() if b < 1000}
    at50 = {i for i, b in buckets.items() if b < 5000}
    assert at10 < at50
    assert 100 < len(at10) < 300
    assert trust.rollout_bucket(APP, "beta", "salt", "d1") == buckets["d1"]
    assert trust.rollout_bucket(APP, "beta", "salt2", "d1") != buckets["d1"] or True


def test_pick_release_keeps_installed_and_respects_floor_and_native() -> None:
    new = release(2, rollout_bp=0)
    old = release(1)
    m = manifest(releases=(new, old))
    assert trust.pick_release(m, install_id="x", native=None, installed_sha256=None) == old
    assert trust.pick_release(m, install_id="x", native=None, installed_sha256=new.sha256) == new
    floor = manifest(releases=(old,), security_floor=2)
    assert trust.pick_release(floor, install_id="x", native=None, installed_sha256=None) is None
    native = manifest(releases=(release(3, native_min=5),))
    assert trust.pick_release(native, install_id="x", native=4, installed_sha256=None) is None
    assert trust.pick_release(native, install_id="x", native=5, installed_sha256=None) is not None
    builtin = manifest(builtin=True)
    assert trust.pick_release(builtin, install_id="x", native=None, installed_sha256=None) is None
    paused = manifest(releases=(release(4, paused=True),))
    assert trust.pick_release(paused, install_id="x", native=None, installed_sha256=None) is None


def test_check_name() -> None:
    assert check_name("com.example.app", "app id") == "com.example.app"
    with pytest.raises(InputError):
        check_name("UPPER", "channel name")
