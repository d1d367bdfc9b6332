"""Attacks on the bundle a good manifest points at, through the real device client.

The manifest is honest and validly signed; the store swaps, cuts, pads or forges the bytes behind
it. Each attack must fail with exactly the expected error, leave the device's trusted state and
its installed web build untouched, and, where the ciphertext itself is wrong, never reach the
decryption step. Format-level attacks on the ``.cub`` segments and on the zip entries live in
``test_sealed_attacks.py`` and ``test_archive_attacks.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import replace

import pytest

from otaseal.archive import INDEX_PATH
from otaseal.errors import (
    ArchiveError,
    DecryptionError,
    HashMismatchError,
    LengthError,
    NotFoundError,
)
from otaseal.store import bundle_key


@pytest.fixture
def serve_new(repo, device):
    """Release 1.0.0 is installed; return a function that serves a manifest for a new release."""
    repo.publish("beta", label="1.0.0")
    assert device.check().status == "installed"

    def serve(release):
        repo.serve_manifest(repo.manifest("beta", (release, *repo.served["beta"].releases)))
        return release

    return serve


def flip(data, offset):
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def test_ciphertext_hash_mismatch_never_decrypted(repo, device, serve_new, decrypt_calls):
    bundle = repo.build(label="2.0.0")
    release = serve_new(repo.release(bundle, label="2.0.0"))
    repo.upload(bundle, data=flip(bundle.cub, len(bundle.cub) - 100))

    device.refuses(HashMismatchError, bundle_allowed=True)

    assert decrypt_calls == []
    assert device.fetcher.bundle_requests == [bundle_key(repo.app, release.sha256)]


def test_bundle_swapped_for_another_valid_bundle(repo, device, serve_new, decrypt_calls):
    """A well-formed bundle of the same length, sealed by anyone with the app's public key."""
    bundle = repo.build(label="2.0.0")
    serve_new(repo.release(bundle, label="2.0.0"))
    other = _forged(repo, bundle, bundle.zip)
    assert (len(other.cub), other.sha256) != (len(bundle.cub), bundle.sha256)
    assert len(other.cub) == len(bundle.cub)
    repo.upload(bundle, data=other.cub)

    device.refuses(HashMismatchError, bundle_allowed=True)

    assert decrypt_calls == []


def test_length_exceeded_download_stops_at_signed_length(repo, device, serve_new, decrypt_calls):
    bundle = repo.build(label="2.0.0")
    release = serve_new(repo.release(bundle, label="2.0.0"))
    key = bundle_key(repo.app, release.sha256)
    repo.upload(bundle, data=bundle.cub + b"\0" * (8 << 20))

    device.refuses(LengthError, bundle_allowed=True)

    assert device.fetcher.max_bytes_for(key) == [release.length]
    assert device.fetcher.delivered[key] <= release.length
    assert decrypt_calls == []


def test_endless_bundle_from_a_transport_ignoring_the_cap(repo, device, serve_new, decrypt_calls):
    bundle = repo.build(label="2.0.0")
    release = serve_new(repo.release(bundle, label="2.0.0"))
    key = bundle_key(repo.app, release.sha256)
    repo.upload(bundle, data=bundle.cub + b"\0" * (8 << 20))
    device.fetcher.honour_limits = False

    device.refuses(LengthError, bundle_allowed=True)

    assert device.fetcher.delivered[key] <= release.length + device.fetcher.chunk
    assert decrypt_calls == []


def test_truncated_bundle_rejected(repo, device, serve_new, decrypt_calls):
    bundle = repo.build(label="2.0.0")
    serve_new(repo.release(bundle, label="2.0.0"))
    repo.upload(bundle, data=bundle.cub[:-1])

    device.refuses(LengthError, bundle_allowed=True)

    assert decrypt_calls == []


def test_missing_bundle_leaves_device_unchanged(repo, device, serve_new, decrypt_calls):
    bundle = repo.build(label="2.0.0")
    serve_new(repo.release(bundle, label="2.0.0"))

    device.refuses(NotFoundError, bundle_allowed=True)

    assert decrypt_calls == []


def _forged(repo, honest, zip_bytes):
    """``zip_bytes`` validly sealed to the app key (anyone with the public key can do this)."""
    return repo.seal(zip_bytes, packed=honest.packed, files=honest.files)


def test_plaintext_hash_mismatch_rejected(repo, device, serve_new, decrypt_calls):
    honest = repo.build(label="2.0.0")
    other = repo.build(label="2.0.1")
    forged = _forged(repo, honest, other.zip)
    repo.upload(forged)
    # The manifest signs the forged ciphertext, but the honest plaintext's hash.
    release = repo.release(forged, label="2.0.0", plaintext_sha256=honest.seal.plaintext_sha256)
    serve_new(release)

    error = device.refuses(HashMismatchError, bundle_allowed=True)

    assert decrypt_calls == ["open_sealed"]
    assert "decrypted" in error.what


def test_plaintext_longer_than_signed_rejected(repo, device, serve_new, decrypt_calls):
    bundle = repo.build(label="2.0.0")
    repo.upload(bundle)
    serve_new(
        repo.release(bundle, label="2.0.0", plaintext_length=bundle.seal.plaintext_length - 1)
    )

    device.refuses(LengthError, bundle_allowed=True)

    assert decrypt_calls == ["open_sealed"]


def test_bundle_sealed_to_another_app_rejected(repo, device, serve_new):
    bundle = repo.build(label="2.0.0", recipients=[repo.keys.other_app_decryption.public])
    repo.upload(bundle)
    serve_new(repo.release(bundle, label="2.0.0"))

    device.refuses(DecryptionError, bundle_allowed=True)


def test_file_count_mismatch_rejected(repo, device, serve_new):
    bundle = repo.build(label="2.0.0")
    repo.upload(bundle)
    release = repo.release(bundle, label="2.0.0")
    serve_new(replace(release, files=release.files + 1))

    device.refuses(HashMismatchError, bundle_allowed=True)


def test_unpacked_size_beyond_signed_budget_rejected(repo, device, serve_new):
    bundle = repo.build(label="2.0.0")
    repo.upload(bundle)
    release = repo.release(bundle, label="2.0.0")
    serve_new(replace(release, unpacked_size=release.unpacked_size - 1))

    device.refuses(ArchiveError, bundle_allowed=True)


def _zip_with_wrong_file_hash(files):
    """A well-formed zip whose index lists the right sizes but a wrong hash for the last file."""
    names = sorted(files, key=str.encode)
    entries = [
        {"path": n, "sha256": hashlib.sha256(files[n]).hexdigest(), "size": len(files[n])}
        for n in names
    ]
    entries[-1]["sha256"] = hashlib.sha256(b"something else").hexdigest()
    index = json.dumps({"files": entries, "version": 1}, separators=(",", ":"), sort_keys=True)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(INDEX_PATH, index)
        for name in names:
            zf.writestr(name, files[name])
    return out.getvalue()


def test_per_file_hash_mismatch_leaves_installed_release_intact(repo, device, serve_new):
    """Extraction fails after writing some files: the running release must not be touched."""
    honest = repo.build(label="2.0.0")
    zip_bytes = _zip_with_wrong_file_hash(honest.files)
    forged = _forged(repo, honest, zip_bytes)
    repo.upload(forged)
    serve_new(repo.release(forged, label="2.0.0"))
    before = device.files()

    device.refuses(ArchiveError, bundle_allowed=True)

    assert device.files() == before
    assert b"1.0.0" in before["index.html"]
