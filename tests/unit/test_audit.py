"""The audit's pure core on listed keys and bytes: one table row per rule, no store needed.

The bytes come from a real publish (root v1, beta v1 and v2, production v1); each test removes,
replaces or adds objects in the mapping and asserts the finding a team would read.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from otaseal import audit
from otaseal.audit_run import run_audit
from otaseal.errors import InputError
from otaseal.model import CapgoArtifact, ChannelManifest
from otaseal.operations import promote, publish
from otaseal.store import bundle_key, capgo_key, index_key, manifest_key, pointer_key, root_key
from tests.conftest import NOW

if TYPE_CHECKING:
    from pathlib import Path

    from otaseal.operations import Project

APP = "com.example.app"


@pytest.fixture
def stored(project: Project, web: Path) -> dict[str, bytes]:
    publish(project, web, channel="beta", label="1.0.0")
    (web / "index.html").write_text("<p>two</p>\n")
    publish(project, web, channel="beta", label="1.1.0", delta=False)  # patches: test_deltas
    promote(project, source="beta", target="production")
    keys = project.store.list(APP + "/")
    return {k: project.store.read(k)[0] for k in keys}


def _meta(objects: dict[str, bytes | None], **kw: object) -> audit.MetadataAudit:
    options: dict[str, object] = {
        "shipped": objects.get(root_key(APP, 1)),
        "channels": ("beta", "production"),
        "now": NOW,
    }
    options.update(kw)
    metadata = {k: v for k, v in objects.items() if "/root/" in k or "/channels/" in k}
    return audit.audit_metadata(APP, sorted(objects), metadata, **options)  # type: ignore[arg-type]


def _codes(findings: tuple[audit.Finding, ...] | list[audit.Finding]) -> list[tuple[str, str]]:
    return sorted((f.code, f.key) for f in findings)


def test_an_honest_history_has_no_findings(stored: dict[str, bytes]) -> None:
    meta = _meta(dict(stored))
    assert meta.findings == ()
    assert [r.version for r in meta.roots] == [1]
    assert len(meta.expected) == 2
    assert all(e.served for e in meta.expected.values())


def test_a_store_without_roots(stored: dict[str, bytes]) -> None:
    objects = {k: v for k, v in stored.items() if "/root/" not in k}
    meta = _meta(objects, shipped=None)
    codes = {c for c, _ in _codes(meta.findings)}
    assert codes == {"root-missing", "manifest-rejected", "pointer-rejected"}


def test_oversized_metadata_is_refused(stored: dict[str, bytes]) -> None:
    objects: dict[str, bytes | None] = dict(stored)
    objects[root_key(APP, 1)] = None
    objects[manifest_key(APP, "beta", 1)] = None
    objects[pointer_key(APP, "production")] = None
    found = _codes(_meta(objects, shipped=None).findings)
    assert ("root-rejected", root_key(APP, 1)) in found


def test_manifest_oversize_and_pointer_oversize(stored: dict[str, bytes]) -> None:
    objects: dict[str, bytes | None] = dict(stored)
    objects[manifest_key(APP, "beta", 1)] = None
    objects[pointer_key(APP, "production")] = None
    assert _codes(_meta(objects).findings) == [
        ("manifest-rejected", manifest_key(APP, "beta", 1)),
        ("pointer-rejected", pointer_key(APP, "production")),
    ]


def test_a_manifest_stored_under_the_wrong_version(stored: dict[str, bytes]) -> None:
    objects = dict(stored)
    objects[manifest_key(APP, "beta", 1)] = stored[manifest_key(APP, "beta", 2)]
    found = _codes(_meta(objects).findings)
    assert ("manifest-rejected", manifest_key(APP, "beta", 1)) in found


def test_a_root_stored_under_the_wrong_version(stored: dict[str, bytes]) -> None:
    objects = dict(stored)
    objects[root_key(APP, 2)] = stored[root_key(APP, 1)]
    found = _codes(_meta(objects).findings)
    assert ("root-rejected", root_key(APP, 2)) in found


def test_versions_without_a_pointer(stored: dict[str, bytes]) -> None:
    objects = {k: v for k, v in stored.items() if k != pointer_key(APP, "beta")}
    assert _codes(_meta(objects).findings) == [("pointer-missing", pointer_key(APP, "beta"))]


def test_the_shipped_root_must_be_the_stores_copy(stored: dict[str, bytes]) -> None:
    assert _codes(_meta(dict(stored), shipped=b"{}").findings) == [
        ("shipped-root-rejected", "root.json")
    ]
    objects = dict(stored)
    shipped = objects.pop(root_key(APP, 1))
    found = _codes(_meta(objects, shipped=shipped).findings)
    assert ("shipped-root-differs", root_key(APP, 1)) in found


def test_a_shipped_root_beyond_a_broken_chain_is_unreachable(stored: dict[str, bytes]) -> None:
    found = audit._check_shipped(
        APP, [], {root_key(APP, 1): stored[root_key(APP, 1)]}, stored[root_key(APP, 1)]
    )
    assert _codes(found) == [("shipped-root-unreachable", root_key(APP, 1))]


def test_an_expired_root(stored: dict[str, bytes]) -> None:
    meta = _meta(dict(stored), now=NOW + timedelta(days=400))
    assert ("expired", root_key(APP, 1)) in _codes(meta.findings)


def _manifest(stored: dict[str, bytes], channel: str, version: int) -> ChannelManifest:
    from otaseal import dsse

    data = stored[manifest_key(APP, channel, version)]
    return ChannelManifest.from_payload(dsse.Envelope.from_json(data).payload)


def test_named_objects_lengths_capgo_and_reused_counters(stored: dict[str, bytes]) -> None:
    beta = _manifest(stored, "beta", 2)
    first, second = beta.releases[1], beta.releases[0]
    capgo = CapgoArtifact("cd" * 32, 32, "aXY=:a2V5", "0" * 512, "MIIBCgKCAQEAqK+bgW8e")
    production = replace(
        _manifest(stored, "production", 1),
        releases=(replace(second, capgo=capgo, length=second.length + 1, counter=first.counter),),
    )
    expected, found = audit.expected_objects(
        APP, {"beta": [beta], "production": [production]}, {"production": production}
    )
    assert _codes(found) == [
        ("counter-reused", f"{APP}/counters/{first.counter}"),
        ("length-disagrees", bundle_key(APP, second.sha256)),
    ]
    assert expected[capgo_key(APP, capgo.sha256)].served
    assert not expected[bundle_key(APP, first.sha256)].served
    measured: dict[str, audit.Measured | None] = {
        bundle_key(APP, second.sha256): audit.Measured(second.length, second.sha256),
        bundle_key(APP, first.sha256): audit.Measured(first.length - 1, "00" * 32),
    }
    objects = audit.check_objects(expected, measured)
    assert sorted((f.severity, f.code, f.key) for f in objects) == [
        ("error", "bundle-length", bundle_key(APP, second.sha256)),
        ("error", "capgo-missing", capgo_key(APP, capgo.sha256)),
        ("warning", "bundle-length", bundle_key(APP, first.sha256)),
    ]
    shorter = next(f for f in objects if f.severity == "warning")
    assert f"is {first.length - 1} bytes" in shorter.message


def test_orphans_indexes_counters_and_stats(stored: dict[str, bytes]) -> None:
    meta = _meta(dict(stored))
    served = next(iter(meta.expected.values())).sha256
    keys = [
        *stored,
        index_key(APP, served),
        index_key(APP, "ef" * 32),
        f"{APP}/stats/2026-11-23.json",
        f"{APP}/counters/99",
    ]
    assert _codes(audit.check_orphans(APP, keys, meta.expected)) == [
        ("orphan", index_key(APP, "ef" * 32))
    ]


def test_exit_codes_rank_metadata_before_bundles() -> None:
    def finding(kind: audit.Kind, severity: audit.Severity = "error") -> audit.Finding:
        return audit.Finding(severity, kind, "x", "k", "m")

    assert audit.exit_code([finding("bundle"), finding("metadata")]) == 3
    assert audit.exit_code([finding("bundle")]) == 4
    assert audit.exit_code([finding("metadata", "warning")]) == 0
    assert finding("store").to_dict()["kind"] == "store"


def test_run_audit_reports_and_refuses_an_unreadable_shipped_root(
    project: Project, stored: dict[str, bytes]
) -> None:
    del stored
    report = run_audit(project)
    assert report.exit_code == 0
    assert report.lines()[-1] == "OK: nothing a device would refuse (0 warning(s))"
    project.config.root.unlink()
    with pytest.raises(InputError, match="cannot read the project's root.json"):
        run_audit(project)


def test_run_audit_text_lists_each_finding(project: Project, stored: dict[str, bytes]) -> None:
    manifest = manifest_key(APP, "beta", 1)
    project.store.root.joinpath(*manifest.split("/")).unlink()  # type: ignore[attr-defined]
    big = pointer_key(APP, "production")
    project.store.root.joinpath(*big.split("/")).write_bytes(b" " * (512 * 1024 + 1))  # type: ignore[attr-defined]
    del stored
    report = run_audit(project)
    lines = report.lines()
    assert any(line.startswith("  ERROR   manifest-missing  ") for line in lines)
    assert any("pointer-rejected" in line for line in lines)
    assert lines[-1].startswith("2 error(s), 0 warning(s)")
    assert report.exit_code == 3
