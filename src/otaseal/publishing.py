"""Publish: pack, seal (and make the Capgo artifact), check and sign a channel's newest release.

Split from :mod:`otaseal.operations`, which keeps the channel protocol every change goes through
(read the head, build the next manifest, compare-and-swap the pointer) and the other changes.
Publish adds what only it needs: the formats written in one pass, the fail-closed gates, the
release counter claim and the uploads that must land before the manifest names them.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from otaseal import deltas, gates
from otaseal.counters import claim_counter
from otaseal.errors import InputError, NotFoundError, StoreError
from otaseal.formats.capgo_files import attach_files, known_files, upload_files
from otaseal.model import Release
from otaseal.operations import (
    Change,
    Head,
    Notice,
    Project,
    _channel_manifest,
    _new_salt,
    _next_manifest,
    _quiet,
    change_channel,
    check_label,
    ensure_roots,
    history,
    percent_to_bp,
    read_head,
)
from otaseal.progress import NO_PROGRESS
from otaseal.store import bundle_key, capgo_key, index_key

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from otaseal.archive import Index, PackResult
    from otaseal.config import Config
    from otaseal.crypto import CapgoPrivateKey, DecryptionKey, RecipientKey
    from otaseal.deltas import MadePatchFile
    from otaseal.formats.capgo import CapgoResult
    from otaseal.formats.capgo_files import CapgoFile, Prepared
    from otaseal.formats.sealed import SealResult
    from otaseal.model import ChannelManifest, Patch
    from otaseal.native import NativeLayer
    from otaseal.progress import Progress


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What publish did."""

    change: Change
    release: Release
    warnings: tuple[str, ...]
    store: str
    replaced_rollout: Release | None = None
    """The staged rollout this publish replaced (``--replace-rollout``), if any."""
    native_fingerprint: str | None = None

    @property
    def patches(self) -> tuple[Patch, ...]:
        """The release's sealed delta patches (SPEC §19), newest base first."""
        return self.release.delta.patches if self.release.delta is not None else ()

    @property
    def noop(self) -> bool:
        """Whether the same build was already the channel's current release."""
        return self.change.noop

    @property
    def capgo_path(self) -> str | None:
        """Where the release's Capgo artifact is: the store's name joined with its key."""
        capgo = self.release.capgo
        if capgo is None:
            return None
        app = self.change.manifest.app
        return self.store.rstrip("/") + "/" + capgo_key(app, capgo.sha256)


def verify_label_unused(
    label: str, plaintext_sha256: str, channels: Mapping[str, Sequence[Release]]
) -> None:
    """Refuse a label that already names a different build on one of the app's channels.

    A label is how people name a release to promote or revert, so it must name one build. The
    same build (same plaintext) may carry its label to another channel.
    """
    for name, releases in channels.items():
        for release in releases:
            if release.label == label and release.plaintext_sha256 != plaintext_sha256:
                raise InputError(
                    f"label {label!r} already names another build on {name} ({release.short}, "
                    f"published {release.published:%Y-%m-%d %H:%M} UTC)",
                    expected="a label that names one build, so that promoting or reverting by "
                    "label finds exactly one release",
                    fix=f"pass a label that says which build this is, e.g. `--label "
                    f"{label[:48]}+<commit>`, or leave the label out for r<counter>",
                )


def publish(
    project: Project,
    build_dir: Path,
    *,
    channel: str,
    label: str | None = None,
    rollout: float = 100.0,
    native_min: int | None = None,
    native_max: int | None = None,
    commit: str | None = None,
    pr: int | None = None,
    allow: Sequence[str] = (),
    notice: Notice = _quiet,
    progress: Progress = NO_PROGRESS,
    project_dir: Path | None = None,
    replace_rollout: bool = False,
    accept_incompatible: bool = False,
    delta_from: Sequence[str] = (),
    delta: bool = True,
) -> PublishResult:
    """Pack, seal and sign ``build_dir`` as the newest release of ``channel``.

    ``progress`` hears of packing, writing the sealed bundle, making patches and uploading.
    Fail-closed (``gates``): a staged rollout is replaced only with ``replace_rollout``, and a
    changed native layer (read from ``project_dir``) needs a higher ``native_min`` or
    ``accept_incompatible``. Delta patches (ADR 0010) start from ``delta_from`` (labels or
    counters of releases of the channel; a bad one is exit 2 before anything is written) or by
    default from the releases the channel serves; ``delta=False`` makes none.
    """
    project.config.check_channel(channel)
    basis_points = percent_to_bp(rollout)
    if label is not None:
        check_label(label)
    if native_min is not None and native_max is not None and native_min > native_max:
        raise InputError(
            f"--native-min {native_min} is above --native-max {native_max}",
            fix="swap them or drop one",
        )
    signer = project.signer(channel)
    report_to = project.report_recipient()
    seal_to = deltas.sealed_to_with_report(project.recipients(), report_to)
    capgo_signer = project.capgo_key()
    plan = _delta_plan(project, channel, delta_from, delta=delta)
    layer = _read_native_layer(project.config, build_dir, project_dir, notice)
    replaced: Release | None = None
    with tempfile.TemporaryDirectory(prefix="otaseal-publish-") as tmp:
        allowed = (*project.config.allow, *allow)
        made = _pack_formats(
            build_dir,
            Path(tmp),
            seal_to,
            capgo_signer,
            allowed,
            progress=progress,
            app=project.app,
            known=_known_capgo_files(project, channel, capgo_signer),
        )
        packed, sealed, capgo = made.packed, made.sealed, made.capgo
        for warning in packed.warnings:
            notice(f"warning: {warning}")
        patches = _make_patches(
            project,
            plan,
            build_dir=build_dir,
            made=made,
            tmp=Path(tmp),
            seal_to=seal_to,
            notice=notice,
            progress=progress,
        )
        ensure_roots(project)
        others = {
            c: m.releases
            for c in project.config.channels
            if c != channel and (m := _channel_manifest(project, c))
        }
        # Counters already in manifests (stores from before counter claims have no claims).
        counter_floor = max((r.counter for rs in others.values() for r in rs), default=0)
        uploaded = False
        claimed = 0

        def build(head: Head) -> ChannelManifest | None:
            nonlocal uploaded, claimed, replaced
            current = head.manifest.current if head.manifest else None
            if current is not None and _same_build(current, packed.sha256, capgo):
                return None
            replaced = gates.verify_publish(
                current,
                layer,
                channel,
                native_min=native_min,
                replace_rollout=replace_rollout,
                accept_incompatible=accept_incompatible,
            )
            if label is not None:
                mine = head.manifest.releases if head.manifest else ()
                verify_label_unused(label, packed.sha256, {channel: mine, **others})
            if not uploaded:
                progress.start("uploading")
                _upload(project, made, report_to, patches)
                uploaded = True
            listed = head.manifest.releases if head.manifest else ()
            above = max([counter_floor, *(r.counter for r in listed)])
            counter = claimed = _release_counter(project, channel, sealed.sha256, above, claimed)
            release = Release(
                label=label or f"r{counter}",
                counter=counter,
                sha256=sealed.sha256,
                length=sealed.length,
                plaintext_sha256=packed.sha256,
                plaintext_length=packed.length,
                files=len(packed.index.files),
                unpacked_size=packed.index.total_size,
                published=project.clock(),
                native_min=native_min,
                native_max=native_max,
                rollout_bp=basis_points,
                rollout_salt=_new_salt(),
                commit=commit,
                pr=pr,
                capgo=capgo.artifact() if capgo is not None else None,
                native_fingerprint=layer.fingerprint if layer is not None else None,
                native_packages=tuple(layer.packages.items()) if layer is not None else None,
                delta=deltas.delta_of(packed.index.to_json(), [p.patch for p in patches]),
            )
            return _next_manifest(
                project,
                head,
                channel,
                event=f"publish {release.label}",
                releases=(release, *listed),
            )

        change = change_channel(project, channel, build, signer)
    current = change.manifest.current
    assert current is not None  # noqa: S101 - a publish always leaves a current release
    if change.healed:
        notice(
            f"completed an interrupted publish: {channel} now serves {current.short} "
            f"(manifest v{change.manifest.version})"
        )
    elif change.noop:
        notice(f"{channel} already serves this build as {current.short}; nothing published")
    else:
        _fail_closed_notices(change, replaced, layer, native_min, notice)
    return PublishResult(
        change,
        current,
        packed.warnings,
        project.store.describe(),
        replaced_rollout=None if change.noop else replaced,
        native_fingerprint=layer.fingerprint if layer is not None else None,
    )


def _delta_plan(project: Project, channel: str, refs: Sequence[str], *, delta: bool) -> deltas.Plan:
    """The bases to try, checked before anything is packed or written (``--delta-from``)."""
    if not delta:
        return deltas.NO_PLAN
    key = deltas.resolve_report_key(project)
    head = read_head(project, channel).manifest
    served = head.releases if head is not None and not head.builtin else ()
    return deltas.plan(
        project,
        channel,
        refs,
        served=served,
        current=head.current if head is not None else None,
        history=lambda: history(project, channel),
        key=key,
    )


def _make_patches(
    project: Project,
    plan: deltas.Plan,
    *,
    build_dir: Path,
    made: _Made,
    tmp: Path,
    seal_to: Sequence[RecipientKey],
    notice: Notice,
    progress: Progress,
) -> tuple[MadePatchFile, ...]:
    """Patches from the usable bases, made once before the channel change (not per attempt)."""
    if not plan.bases:
        return ()
    current = plan.current
    if current is not None and _same_build(current, made.packed.sha256, made.capgo):
        return ()  # a no-op publish: nothing to patch
    chosen = deltas.usable(project, plan, made.packed.sha256, notice)
    return deltas.make_patches(
        project,
        chosen,
        build_dir,
        made.packed.index.to_json(),
        target_bundle=made.sealed.sha256,
        full_length=made.sealed.length,
        seal_to=seal_to,
        tmp=tmp,
        notice=notice,
        progress=progress,
    )


def _read_native_layer(
    config: Config, build_dir: Path, explicit: Path | None, notice: Notice
) -> NativeLayer | None:
    """This build's native layer; a notice, never a refusal, when there is no package.json."""
    from otaseal.native import DEFAULT_NATIVE_PACKAGES, project_dir_for, read_native_layer  # noqa: PLC0415

    where = project_dir_for(build_dir, explicit, Path.cwd())
    patterns = config.native_packages
    layer = read_native_layer(where, DEFAULT_NATIVE_PACKAGES if patterns is None else patterns)
    if layer is None:
        notice(
            f"no package.json in {where}: the native layer is not fingerprinted, so publish "
            "cannot tell a web build that needs new native plugins (pass `--project-dir`)"
        )
    return layer


def _fail_closed_notices(
    change: Change,
    replaced: Release | None,
    layer: NativeLayer | None,
    native_min: int | None,
    notice: Notice,
) -> None:
    """Say what a publish let through: a replaced rollout, a native change with its reason."""
    if replaced is not None:
        notice(
            f"replaced the staged rollout of {replaced.short} on {change.channel} "
            f"({replaced.rollout_bp / 100:g} %{', paused' if replaced.paused else ''}) "
            "with this build (--replace-rollout)"
        )
    moved = gates.native_change(change.previous, layer)
    if moved is not None and layer is not None and change.previous is not None:
        why = (
            f"for native builds from {native_min} on"
            if gates.is_new_native_range(change.previous, native_min)
            else "accepted with --accept-incompatible"
        )
        notice(
            f"the native layer changed since {change.previous.short} "
            f"({moved.describe(layer.config_file)}): {why}"
        )


def _release_counter(project: Project, channel: str, sha256: str, above: int, claimed: int) -> int:
    """This publish's own claim while it is still above ``above``, else a newly claimed one.

    A claim made before losing a race on the channel is dropped when the winner's release has a
    higher counter, so counters keep increasing with the channel's versions (gaps are allowed).
    """
    if claimed > above:
        return claimed
    return claim_counter(
        project.store,
        project.app,
        above=max(above, claimed),
        channel=channel,
        sha256=sha256,
        now=project.clock(),
    )


@dataclass(frozen=True, slots=True)
class _Made:
    """One pass over the build: the zip's facts and the files of each format, still local."""

    packed: PackResult
    sealed: SealResult
    sealed_path: Path
    capgo: CapgoResult | None
    capgo_path: Path
    capgo_files: Prepared | None = None  # manifest mode's list and bodies (SPEC §17.1)


def _known_capgo_files(
    project: Project, channel: str, key: CapgoPrivateKey | None
) -> dict[str, CapgoFile]:
    """Files the channel's releases already store in Capgo manifest mode, to reuse unchanged."""
    if key is None:
        return {}
    return known_files(project.store, project.app, read_head(project, channel).manifest, key)


def _pack_formats(
    build_dir: Path,
    tmp: Path,
    recipients: Sequence[RecipientKey],
    capgo_signer: CapgoPrivateKey | None,
    allow: Sequence[str],
    *,
    progress: Progress = NO_PROGRESS,
    app: str | None = None,
    known: Mapping[str, CapgoFile] | None = None,
) -> _Made:
    """Pack once; the zip streams into the sealed writer and, when asked, the Capgo writer."""
    from otaseal.archive import pack  # noqa: PLC0415 - keep CLI start-up light
    from otaseal.formats.capgo import CapgoWriter, Tee  # noqa: PLC0415
    from otaseal.formats.sealed import SealWriter  # noqa: PLC0415

    sealed_path, capgo_path = tmp / "bundle.cub", tmp / "bundle.capgo.zip"
    capgo, files = None, None
    with sealed_path.open("wb") as out, contextlib.ExitStack() as stack:
        writer = SealWriter(out, recipients)
        if capgo_signer is None:
            packed = pack(build_dir, writer, allow=allow, progress=progress)
        else:
            capgo_out = stack.enter_context(capgo_path.open("wb"))
            capgo_writer = CapgoWriter(capgo_out, capgo_signer, app=app)
            packed = pack(build_dir, Tee(writer, capgo_writer), allow=allow, progress=progress)
            capgo, files = attach_files(
                capgo_writer.close(), capgo_signer, build_dir, packed.index, app=app, known=known
            )
        sealed = writer.close()
    if capgo is not None and capgo.plaintext_sha256 != packed.sha256:  # pragma: no cover
        raise StoreError("the Capgo artifact was not made from the packed zip; nothing published")
    return _Made(packed, sealed, sealed_path, capgo, capgo_path, files)


def _upload(
    project: Project,
    made: _Made,
    report_to: RecipientKey | None,
    patches: Sequence[MadePatchFile] = (),
) -> None:
    """Content-addressed, create-only uploads, all before the versioned manifest names them."""
    app = project.app
    project.store.create_from_file(bundle_key(app, made.sealed.sha256), made.sealed_path)
    for made_patch in patches:
        project.store.create_from_file(bundle_key(app, made_patch.patch.sha256), made_patch.path)
    if made.capgo is not None:
        project.store.create_from_file(capgo_key(app, made.capgo.sha256), made.capgo_path)
    if made.capgo_files is not None:
        upload_files(project.store, app, made.capgo_files)
    if report_to is not None:
        project.store.create(
            index_key(app, made.sealed.sha256),
            _seal_bytes(made.packed.index.to_json(), report_to),
        )


def _same_build(current: Release, plaintext_sha256: str, capgo: CapgoResult | None) -> bool:
    """A no-op publish: the same zip, and a Capgo artifact already there when one is wanted.

    The Capgo artifact is compared by the key that made it (its bytes follow from the zip and
    that key, ADR 0009), and a release from before manifest mode, without a file list, is
    published again so that it gets one.
    """
    if current.plaintext_sha256 != plaintext_sha256:
        return False
    if capgo is None:
        return True
    have = current.capgo
    return (
        have is not None
        and have.key_id == capgo.key_id
        and (have.files is not None or capgo.files is None)
    )


def _seal_bytes(data: bytes, recipient: RecipientKey) -> bytes:
    import io  # noqa: PLC0415

    from otaseal.formats.sealed import SealWriter  # noqa: PLC0415

    out = io.BytesIO()
    writer = SealWriter(out, [recipient])
    writer.write(data)
    writer.close()
    return out.getvalue()


def read_index(project: Project, release: Release, report_key: DecryptionKey) -> Index | None:
    """A release's file index, readable with the CI report key; None when not stored."""
    import io  # noqa: PLC0415

    from otaseal.archive import Index  # noqa: PLC0415
    from otaseal.formats.sealed import open_sealed  # noqa: PLC0415

    try:
        data = project.store.fetch(
            index_key(project.app, release.sha256), max_bytes=64 * 1024 * 1024
        )
    except NotFoundError:
        return None
    out = io.BytesIO()
    open_sealed(io.BytesIO(data), report_key, out, max_plaintext=64 * 1024 * 1024)
    return Index.from_json(out.getvalue())
