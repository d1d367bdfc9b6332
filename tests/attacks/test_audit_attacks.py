"""`otaseal audit` after an incident: each test plants one attack in a store and names it.

The store is written by the real publish and promote (through the ``project`` fixture), then
the attacker (``repo``) changes bytes, deletes objects or signs with keys it should not have.
Each test asserts the finding's code, the key it names, and the exit code a CI job sees.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from otaseal import dsse
from otaseal.audit_run import AuditReport, run_audit
from otaseal.model import ChannelManifest
from otaseal.operations import promote, publish
from otaseal.store import bundle_key, manifest_key, pointer_key, root_key

if TYPE_CHECKING:
    from pathlib import Path

    from tests.attacks.conftest import Repository

    from otaseal.model import Release
    from otaseal.operations import Project

APP = "com.example.app"


def _build(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web" / text
    (path / "assets").mkdir(parents=True)
    (path / "index.html").write_text(f"<p>{text}</p>\n")
    (path / "assets" / "app.js").write_text(f"console.log({text!r});\n")
    return path


@pytest.fixture
def released(tmp_path: Path, project: Project) -> tuple[Release, Release]:
    """beta v1 (1.0.0) and v2 (1.1.0); production v1 serves 1.1.0."""
    first = publish(project, _build(tmp_path, "one"), channel="beta", label="1.0.0").release
    second = publish(project, _build(tmp_path, "two"), channel="beta", label="1.1.0").release
    promote(project, source="beta", target="production")
    return first, second


def _codes(report: AuditReport, severity: str = "error") -> set[tuple[str, str]]:
    return {(f.code, f.key) for f in report.findings if f.severity == severity}


def _write_manifest(repo: Repository, manifest: ChannelManifest, signers: list) -> bytes:  # type: ignore[type-arg]
    envelope = dsse.sign(dsse.PAYLOAD_TYPE_CHANNEL, manifest.to_payload(), signers).to_json()
    repo.put(manifest_key(APP, manifest.channel, manifest.version), envelope)
    repo.put(pointer_key(APP, manifest.channel), envelope)
    return envelope


def _beta_manifest(repo: Repository, version: int) -> ChannelManifest:
    """The payload of ``beta/<version>.json`` as stored, whoever signed it."""
    data = repo.get(manifest_key(APP, "beta", version))
    return ChannelManifest.from_payload(dsse.Envelope.from_json(data).payload)


def test_an_honest_store_passes(project: Project, released: tuple[Release, Release]) -> None:
    report = run_audit(project)
    assert report.findings == ()
    assert report.exit_code == 0
    doc = report.to_json()
    assert doc["ok"] is True
    assert doc["channels"] == {
        "beta": {"versions": 2, "newest": 2, "pointer": 2},
        "production": {"versions": 1, "newest": 1, "pointer": 1},
    }
    assert doc["bundles_checked"] == 2


def test_audit_catches_a_tampered_bundle(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    _, served = released
    key = bundle_key(APP, served.sha256)
    data = bytearray(repo.get(key))
    data[-1] ^= 1  # same length, one bit flipped in the last segment
    repo.put(key, bytes(data))
    report = run_audit(project)
    assert _codes(report) == {("bundle-hash", key)}
    assert report.exit_code == 4


def test_audit_catches_a_bundle_with_bytes_appended(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    _, served = released
    key = bundle_key(APP, served.sha256)
    repo.put(key, repo.get(key) + b"extra")
    report = run_audit(project)
    assert _codes(report) == {("bundle-length", key)}
    assert "longer than" in report.findings[0].message
    assert report.exit_code == 4


def test_audit_catches_a_deleted_bundle(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    _, served = released
    key = bundle_key(APP, served.sha256)
    repo.store.root.joinpath(*key.split("/")).unlink()
    report = run_audit(project)
    assert _codes(report) == {("bundle-missing", key)}
    assert report.exit_code == 4


def test_a_tampered_bundle_no_current_manifest_serves_is_a_warning(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    old, served = released
    head = _beta_manifest(repo, 2)
    _write_manifest(repo, replace(head, version=3, releases=(served,)), [repo.keys.beta])
    key = bundle_key(APP, old.sha256)
    repo.put(key, repo.get(key)[:-1])
    report = run_audit(project)
    assert _codes(report) == set()
    assert _codes(report, "warning") == {("bundle-length", key)}
    assert "a revert to it would fail" in report.findings[0].message
    assert report.exit_code == 0


def test_audit_catches_a_deleted_manifest_version(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    key = manifest_key(APP, "beta", 1)
    repo.store.root.joinpath(*key.split("/")).unlink()
    report = run_audit(project)
    assert _codes(report) == {("manifest-missing", key)}
    assert report.exit_code == 3


def test_audit_catches_a_root_version_gap(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    """Root v3 stored without v2: devices stop at v1 and never see v3's keys."""
    v3 = repo.make_root(version=3)
    repo.put_root(3, repo.sign_root(v3, [repo.keys.root[0]]))
    report = run_audit(project)
    assert _codes(report) == {("root-gap", root_key(APP, 2))}
    assert report.exit_code == 3


def test_audit_catches_a_root_signed_only_by_the_new_keys(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    repo.rotate_root(root_keys=[repo.keys.new_root[0]], signers=[repo.keys.new_root[0]])
    report = run_audit(project)
    assert {c for c, _ in _codes(report)} == {"root-rejected"}
    assert "v2" in report.findings[0].message
    assert report.exit_code == 3


def test_audit_catches_a_manifest_signed_by_a_revoked_key(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    """Root v2 rotates the beta key; the old key (leaked) then signs beta v4 and the pointer."""
    repo.rotate_root(
        channel_keys={"beta": [repo.keys.new_beta], "production": [repo.keys.production]}
    )
    head = _beta_manifest(repo, 2)
    _write_manifest(repo, replace(head, version=3, event="re-signed"), [repo.keys.new_beta])
    assert run_audit(project).findings == (), "the rotation itself is clean"

    _write_manifest(repo, replace(head, version=4, event="publish evil"), [repo.keys.beta])
    report = run_audit(project)
    assert _codes(report) == {
        ("manifest-revoked-key", manifest_key(APP, "beta", 4)),
        ("pointer-rejected", pointer_key(APP, "beta")),
    }
    assert report.exit_code == 3


def test_audit_catches_a_pointer_that_is_no_stored_version(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    """A pointer honestly signed but different from ``2.json``: someone rewrote history."""
    head = _beta_manifest(repo, 2)
    envelope = dsse.sign(
        dsse.PAYLOAD_TYPE_CHANNEL, replace(head, event="other").to_payload(), [repo.keys.beta]
    ).to_json()
    repo.put(pointer_key(APP, "beta"), envelope)
    report = run_audit(project)
    assert _codes(report) == {("pointer-differs", pointer_key(APP, "beta"))}


def test_audit_catches_expired_metadata(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    later = replace(project, clock=lambda: repo.now + timedelta(days=31))
    report = run_audit(later)
    assert {c for c, _ in _codes(report)} == {"expired"}
    assert {k for _, k in _codes(report)} == {
        pointer_key(APP, "beta"),
        pointer_key(APP, "production"),
    }
    assert report.exit_code == 3
    soon = run_audit(replace(project, clock=lambda: repo.now + timedelta(days=20)))
    assert {c for c, _ in _codes(soon, "warning")} == {"expires-soon"}
    assert soon.exit_code == 0


def test_an_orphan_bundle_and_an_unknown_object_are_warnings(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    orphan = bundle_key(APP, "ab" * 32)
    repo.put(orphan, b"left by an interrupted publish")
    repo.put(f"{APP}/notes.txt", b"?")
    report = run_audit(project)
    assert _codes(report, "warning") == {("orphan", orphan), ("unknown-object", f"{APP}/notes.txt")}
    assert report.exit_code == 0


def test_a_lagging_pointer_is_a_warning(
    project: Project, repo: Repository, released: tuple[Release, Release]
) -> None:
    """A publish killed between the versioned manifest and the pointer: devices still fine."""
    repo.put(pointer_key(APP, "beta"), repo.get(manifest_key(APP, "beta", 1)))
    report = run_audit(project)
    assert _codes(report, "warning") == {("pointer-lags", pointer_key(APP, "beta"))}
    assert report.exit_code == 0
