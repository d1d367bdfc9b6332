"""Signed channel manifests for the serve decision, from the attack tests' repository simulator.

Releases carry a Capgo artifact with made-up (but well-formed) values: the decision never opens
a bundle. Every manifest is signed by the channel's key and goes through
``trust.verify_channel_manifest`` before a test uses it, as ``service.py`` does.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from typing import Any

import pytest

from otaseal import trust
from otaseal.model import FULL_ROLLOUT, CapgoArtifact, ChannelManifest, Release
from otaseal.serve.db import DeviceFacts
from otaseal.serve.wire import UpdateRequest
from tests.attacks.conftest import NOW, Repository

APP = "com.example.app"
KEY_ID = "MIIBCgKCAQEAqJikYizo"
DEVICE = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
NATIVE = "1.2.0"  # version_build: the app's marketing version


def capgo(label: str, key_id: str = KEY_ID) -> CapgoArtifact:
    digest = hashlib.sha256(f"capgo {label}".encode()).hexdigest()
    return CapgoArtifact(
        sha256=digest,
        length=4096,
        session_key="AAAAAAAAAAAAAAAAAAAAAA==:" + "QUJD" * 4,
        checksum=hashlib.sha256(label.encode()).hexdigest() * 8,
        key_id=key_id,
    )


def release(label: str, counter: int, **changes: Any) -> Release:
    digest = hashlib.sha256(f"sealed {label}".encode()).hexdigest()
    base = Release(
        label=label,
        counter=counter,
        sha256=digest,
        length=5000,
        plaintext_sha256=hashlib.sha256(f"plain {label}".encode()).hexdigest(),
        plaintext_length=4000,
        files=3,
        unpacked_size=9000,
        published=NOW,
        rollout_salt=f"salt-{label}",
        capgo=capgo(label),
    )
    return replace(base, **changes)


def request(**fields: Any) -> UpdateRequest:
    """The real plugin's info object (reference §3.1), then ``fields``."""
    doc: dict[str, Any] = {
        "app_id": APP,
        "device_id": DEVICE,
        "platform": "android",
        "version_name": NATIVE,
        "version_build": NATIVE,
        "version_code": "7",
        "version_os": "14",
        "plugin_version": "8.51.23",
        "custom_id": "",
        "is_emulator": False,
        "is_prod": True,
        "default_channel": "",
        "key_id": KEY_ID,
    }
    doc.update(fields)
    return UpdateRequest(**doc)


def probe_request(**fields: Any) -> UpdateRequest:
    """What ``capgo probe`` sends (reference §5): no version_code, version_os, key_id."""
    doc: dict[str, Any] = {
        "app_id": APP,
        "device_id": "00000000-0000-0000-0000-000000000000",
        "version_name": "builtin",
        "version_build": NATIVE,
        "is_emulator": False,
        "is_prod": False,
        "platform": "android",
        "plugin_version": "8.51.23",
        "default_channel": "",
    }
    doc.update(fields)
    return UpdateRequest(**doc)


def device_in(salt: str, *, inside: bool, basis_points: int, channel: str = "production") -> str:
    """A UUID device id inside (or outside) a rollout of ``basis_points`` for ``salt``."""
    for n in range(1, 100_000):
        candidate = str(uuid.UUID(int=n * 7919 + 12345))
        bucket = trust.rollout_bucket(APP, channel, salt, candidate)
        if (bucket < basis_points) == inside:
            return candidate
    raise AssertionError("no such device")  # pragma: no cover


NO_FACTS = DeviceFacts()
FULL = FULL_ROLLOUT


@pytest.fixture
def repo(tmp_path) -> Repository:
    return Repository(tmp_path / "repo")


@pytest.fixture
def signed(repo: Repository):
    """``signed(channel, releases, **changes)``: a manifest signed by the channel and verified."""

    def make(channel: str, releases: tuple[Release, ...] = (), **changes: Any) -> ChannelManifest:
        manifest = repo.manifest(channel, releases, **changes)
        envelope = repo.sign_manifest(manifest)
        return trust.verify_channel_manifest(
            repo.root, envelope, channel=channel, now=NOW, trusted_version=None
        )

    return make
