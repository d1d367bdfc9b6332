"""Publish's sealed delta patches (ADR 0010): which bases, what is refused, what a patch holds."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from otaseal import deltas
from otaseal import operations as ops
from otaseal.archive import INDEX_PATH, Index
from otaseal.errors import ConfigError, InputError, KeyMaterialError
from otaseal.formats.delta import decompressor, read_header
from otaseal.formats.sealed import open_sealed
from otaseal.model import Delta, Patch, Release
from otaseal.project import keygen
from otaseal.publishing import publish
from otaseal.recipients import sealed_to
from otaseal.secrets import resolve_decryption_key
from otaseal.store import bundle_key
from tests.conftest import NOW

DIGITS = "0123456789abcdef"


def _release(n: int, *, plain: str | None = None, patches: tuple[Patch, ...] = ()) -> Release:
    return Release(
        label=f"r{n}",
        counter=n,
        sha256=DIGITS[n % 16] * 64,
        length=1000 * n,
        plaintext_sha256=plain or DIGITS[(n + 8) % 16] * 64,
        plaintext_length=900,
        files=3,
        unpacked_size=800,
        published=NOW,
        delta=Delta("e" * 64, patches) if patches else None,
    )


def _patch(base: Release, length: int, changed: int = 1) -> Patch:
    return Patch(base.sha256, "d" * 64, length, "c" * 64, length, base.label, changed)


def _files(project: ops.Project) -> dict[str, bytes]:
    root = Path(project.store.describe())
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _edit(web: Path, text: str) -> Path:
    (web / "index.html").write_text(f"<!doctype html><p>{text}</p>\n")
    return web


def _key(project: ops.Project, name: str) -> object:
    path = project.config.path.parent / "keys" / name
    return resolve_decryption_key(f"file:{path}", mask=lambda _: None)


def _without_report_key(project: ops.Project) -> ops.Project:
    keys = {k: v for k, v in project.config.keys.items() if k != "report"}
    return replace(project, config=replace(project.config, report_recipient=None, keys=keys))


# --- pure choices ------------------------------------------------------------------------------
def test_default_bases_are_the_served_releases_without_the_new_build_at_most_three() -> None:
    served = [_release(n) for n in (5, 4, 3, 2, 1)]
    assert deltas.default_bases(served, served[0].plaintext_sha256) == tuple(served[1:4])
    assert deltas.default_bases(served, "0" * 64) == tuple(served[:3])
    assert deltas.default_bases([served[0], served[0]], "0" * 64) == (served[0],)


def test_a_base_is_found_by_label_counter_or_digest() -> None:
    served = [_release(3), replace(_release(2), label="1.0.2"), _release(1)]
    assert deltas.find_base("1.0.2", served, "beta") == served[1]
    assert deltas.find_base("2", served, "beta") == served[1]
    assert deltas.find_base("r2", served, "beta") == served[1]
    assert deltas.find_base("r1", served, "beta") == served[2]
    assert deltas.find_base(served[0].sha256[:10], served, "beta") == served[0]
    assert deltas.find_base("r9", served, "beta") is None


def test_the_typical_patch_starts_from_the_release_listed_after_else_the_smallest() -> None:
    one, two = _release(1), _release(2)
    three = _release(3, patches=(_patch(one, 50), _patch(two, 70)))
    assert deltas.typical_patch(three, two) == three.delta.patches[1]  # type: ignore[union-attr]
    assert deltas.typical_patch(three, None) == three.delta.patches[0]  # type: ignore[union-attr]
    assert deltas.typical_patch(one, None) is None
    sizes = deltas.update_sizes([three, two])
    assert sizes[0].to_json() == {
        "full_bytes": 3000,
        "delta_bytes": 70,
        "delta_from": "r2",
        "files_changed": 1,
        "patches": 2,
    }
    assert sizes[0].text() == "r3: full 3.0 KB; delta from r2 70 B (2.3 %), 1 file changed"
    assert sizes[1].text() == "r2: full 2.0 KB; no delta patch"


# --- publish -----------------------------------------------------------------------------------
def _base_index(project: ops.Project, release: Release) -> bytes:
    """The index bytes a device keeps after installing ``release`` (SPEC §19.2)."""
    key = _key(project, "app-decryption.pem")
    data = project.store.fetch(bundle_key(project.app, release.sha256), max_bytes=release.length)
    plain = io.BytesIO()
    open_sealed(io.BytesIO(data), key, plain, max_plaintext=release.plaintext_length)  # type: ignore[arg-type]
    with zipfile.ZipFile(plain) as zf:
        return zf.read(INDEX_PATH)


def _apply(patch_plain: bytes, base_dir: Path, base_index: bytes) -> dict[str, bytes]:
    """Play a device's apply from SPEC §19 (no staging dir): the resulting files by path."""
    header = read_header(io.BytesIO(patch_plain), len(patch_plain), base_index=base_index)
    index = Index.from_json(header.index_json)
    offset = header.payload_offset
    out = {}
    for entry, op, _ in header.jobs(index):
        base = (base_dir / op.source).read_bytes() if op.source else None
        if op.op == "copy":
            assert base is not None
            out[entry.path] = base
            continue
        frame = patch_plain[offset : offset + op.length]
        offset += op.length
        out[entry.path] = decompressor(base).decompress(frame, max_output_size=entry.size)
        assert hashlib.sha256(out[entry.path]).hexdigest() == entry.sha256
    assert offset == len(patch_plain)
    return out


def test_the_second_publish_carries_a_sealed_patch_from_the_first(
    project: ops.Project, web: Path, tmp_path: Path
) -> None:
    base_copy = tmp_path / "base"
    shutil.copytree(web, base_copy)
    first = publish(project, web, channel="beta", label="1.0.0").release
    assert first.delta is None
    second = publish(project, _edit(web, "two"), channel="beta", label="1.0.1")
    release = second.release
    assert release.delta is not None
    (patch,) = second.patches
    assert (patch.base, patch.base_label, patch.changed) == (first.sha256, "1.0.0", 1)
    assert patch.length < release.length
    data = project.store.fetch(bundle_key(project.app, patch.sha256), max_bytes=patch.length)
    assert hashlib.sha256(data).hexdigest() == patch.sha256
    report_id = _key(project, "report.pem").public.keyid  # type: ignore[attr-defined]
    assert report_id in sealed_to(project.store, project.app, release)
    plain = io.BytesIO()
    app_key = _key(project, "app-decryption.pem")
    assert open_sealed(io.BytesIO(data), app_key, plain, max_plaintext=patch.plaintext_length) == (  # type: ignore[arg-type]
        patch.plaintext_sha256,
        patch.plaintext_length,
    )
    base_index = _base_index(project, first)
    header = read_header(
        io.BytesIO(plain.getvalue()), patch.plaintext_length, base_index=base_index
    )
    assert hashlib.sha256(header.index_json).hexdigest() == release.delta.index
    assert (header.base, header.target) == (first.sha256, release.sha256)
    files = _apply(plain.getvalue(), base_copy, base_index)
    assert files["index.html"] == (web / "index.html").read_bytes()
    assert len(files) == release.files


def test_promote_and_revert_carry_the_delta_unchanged(project: ops.Project, web: Path) -> None:
    publish(project, web, channel="beta", label="1.0.0")
    second = publish(project, _edit(web, "two"), channel="beta", label="1.0.1").release
    promoted = ops.promote(project, source="beta", target="production", ref="1.0.1")
    assert promoted.manifest.current is not None
    assert promoted.manifest.current.delta == second.delta
    publish(project, _edit(web, "three"), channel="beta", label="1.0.2")
    reverted = ops.revert(project, channel="beta", to="1.0.1")
    assert reverted.manifest.current is not None
    assert reverted.manifest.current.delta == second.delta


def test_no_delta_and_a_no_op_publish_make_no_patch(project: ops.Project, web: Path) -> None:
    publish(project, web, channel="beta", label="1.0.0")
    second = publish(project, _edit(web, "two"), channel="beta", label="1.0.1", delta=False)
    assert second.release.delta is None
    before = _files(project)
    again = publish(project, web, channel="beta", label="1.0.1")
    assert again.noop
    assert _files(project) == before


def test_delta_from_a_release_that_left_the_manifest_uses_the_channel_history(
    project: ops.Project, web: Path
) -> None:
    clock = iter(NOW + timedelta(minutes=n) for n in range(100))
    project = replace(project, clock=lambda: next(clock))
    first = publish(project, web, channel="beta", label="1.0.0").release
    for n in range(1, 6):
        publish(project, _edit(web, f"v{n}"), channel="beta", label=f"1.0.{n}", delta=False)
    result = publish(project, _edit(web, "last"), channel="beta", delta_from=["1.0.0", "1.0.5"])
    assert [p.base_label for p in result.patches] == ["1.0.0", "1.0.5"]
    assert result.patches[0].base == first.sha256


def _refused(project: ops.Project, web: Path, **kwargs: object) -> InputError:
    before = _files(project)
    with pytest.raises(InputError) as caught:
        publish(project, _edit(web, "refused"), channel="beta", **kwargs)  # type: ignore[arg-type]
    assert _files(project) == before  # nothing uploaded, nothing signed
    return caught.value


def test_delta_from_a_release_never_on_the_channel_is_refused_and_nothing_is_published(
    project: ops.Project, web: Path
) -> None:
    publish(project, web, channel="production", label="1.0.0")
    publish(project, _edit(web, "beta"), channel="beta", label="1.0.1")
    error = _refused(project, web, delta_from=["1.0.0"])
    assert error.exit_code == 2
    assert "was ever on beta" in error.what
    assert "1.0.1" in error.expected


def test_delta_from_a_release_whose_bundle_is_not_in_the_store_is_refused(
    project: ops.Project, web: Path
) -> None:
    first = publish(project, web, channel="beta", label="1.0.0").release
    root = Path(project.store.describe())
    (root / bundle_key(project.app, first.sha256)).unlink()
    error = _refused(project, web, delta_from=["1.0.0"])
    assert "is not in the store" in error.what


def test_a_release_sealed_before_the_report_key_is_refused_explicitly_and_skipped_by_default(
    project: ops.Project, web: Path
) -> None:
    publish(_without_report_key(project), web, channel="beta", label="1.0.0")
    error = _refused(project, web, delta_from=["r1"])
    assert "report key cannot open it" in error.what
    assert "--no-delta" in error.fix
    notices: list[str] = []
    result = publish(project, _edit(web, "two"), channel="beta", notice=notices.append)
    assert result.release.delta is None
    assert any("no delta patch from 1.0.0" in n for n in notices)


def test_without_keys_report_the_default_publishes_without_patches_and_says_why(
    project: ops.Project, web: Path
) -> None:
    publish(project, web, channel="beta", label="1.0.0")
    keys = {k: v for k, v in project.config.keys.items() if k != "report"}
    plain = replace(project, config=replace(project.config, keys=keys))
    notices: list[str] = []
    result = publish(plain, _edit(web, "two"), channel="beta", notice=notices.append)
    assert result.release.delta is None
    assert any("keys.report" in n and "not set" in n for n in notices)
    error = _refused(plain, web, delta_from=["1.0.0"])
    assert "keys.report" in error.what


def test_a_report_key_that_does_not_match_report_recipient_is_refused(
    project: ops.Project, web: Path, tmp_path: Path
) -> None:
    publish(project, web, channel="beta", label="1.0.0")
    other = keygen("encryption", tmp_path / "other.pem")
    keys = {**project.config.keys, "report": f"file:{tmp_path / other.private_key}"}
    wrong = replace(project, config=replace(project.config, keys=keys))
    error = _refused(wrong, web)
    assert isinstance(error, KeyMaterialError)
    assert "not the private half of report_recipient" in error.what
    assert "PRIVATE" not in error.diagnostics()
    no_public = replace(project, config=replace(project.config, report_recipient=None))
    assert isinstance(_refused(no_public, web), ConfigError)


def test_sixteen_app_recipients_leave_no_room_for_the_report_key() -> None:
    from otaseal.crypto import generate_decryption_key

    keys = [generate_decryption_key().public for _ in range(17)]
    assert deltas.sealed_to_with_report(keys[:15], keys[16]) == [*keys[:15], keys[16]]
    assert deltas.sealed_to_with_report(keys[:2], keys[0]) == keys[:2]
    with pytest.raises(ConfigError) as caught:
        deltas.sealed_to_with_report(keys[:16], keys[16])
    assert "report key included" in caught.value.expected


def test_audit_counts_patches_as_named_objects_and_checks_them(
    project: ops.Project, web: Path
) -> None:
    from otaseal.audit_run import run_audit

    publish(project, web, channel="beta", label="1.0.0")
    (patch,) = publish(project, _edit(web, "two"), channel="beta", label="1.0.1").patches
    assert [f for f in run_audit(project).findings if f.code == "orphan"] == []
    path = Path(project.store.describe()) / bundle_key(project.app, patch.sha256)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    [finding] = run_audit(project).findings
    assert (finding.code, finding.key) == ("bundle-hash", bundle_key(project.app, patch.sha256))


class _Steps:
    """A Progress that records the steps it hears of."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, int, int]] = []

    def start(self, step: str, *, files: int = 0, size: int = 0) -> None:
        self.steps.append((step, files, size))

    def advance(self, files: int, size: int) -> None:
        """Amounts are not asserted here."""


def test_making_a_patch_is_a_progress_step_named_after_its_base(
    project: ops.Project, web: Path
) -> None:
    first = publish(project, web, channel="beta", label="1.0.0").release
    steps = _Steps()
    publish(project, _edit(web, "two"), channel="beta", progress=steps)
    names = [s[0] for s in steps.steps]
    assert ("delta from 1.0.0", first.files, first.unpacked_size) in steps.steps
    assert names.index("delta from 1.0.0") < names.index("uploading")
