"""Publisher side of sealed deltas (SPEC §19, ADR 0010): which bases, their files, the patches.

A patch turns an earlier release's files into the new release's. The earlier release's files
come from the store: its bundle is sealed to the CI report key too, so ``publish`` opens it with
``keys.report`` and extracts it into a temporary folder. Choosing the bases and the typical patch
of a release are pure functions; the rest is the I/O around ``formats.delta.make_patch``.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from otaseal.errors import ConfigError, Error, InputError, KeyMaterialError, NotFoundError
from otaseal.model import MAX_PATCHES, Delta, Patch
from otaseal.progress import NO_PROGRESS
from otaseal.store import bundle_key

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from otaseal.crypto import DecryptionKey, RecipientKey
    from otaseal.model import ChannelManifest, Release
    from otaseal.operations import Notice, Project
    from otaseal.progress import Progress

DEFAULT_BASES: Final = 3
"""Patches ``publish`` makes by default: from the releases the channel serves, newest first."""


# --- pure: which releases, which patch ---------------------------------------------------------
def default_bases(served: Sequence[Release], new_plaintext_sha256: str) -> tuple[Release, ...]:
    """The channel's releases in its order, one per bundle, never the new build, at most 3."""
    out: list[Release] = []
    for release in served:
        if release.plaintext_sha256 == new_plaintext_sha256:
            continue
        if all(r.sha256 != release.sha256 for r in out):
            out.append(release)
    return tuple(out[:DEFAULT_BASES])


def find_base(ref: str, releases: Sequence[Release], channel: str) -> Release | None:
    """A release of ``channel`` by label, digest (prefix) or release counter (``12``, ``r12``)."""
    from otaseal.operations import find_release  # noqa: PLC0415

    found = find_release(releases, ref, channel)
    if found is not None:
        return found
    number = ref.removeprefix("r")
    if number.isdigit():
        hits = {r.sha256: r for r in releases if r.counter == int(number)}
        if len(hits) == 1:
            return next(iter(hits.values()))
    return None


def typical_patch(release: Release, after: Release | None) -> Patch | None:
    """The patch most devices take: from ``after`` (listed next), else the smallest one."""
    if release.delta is None or not release.delta.patches:
        return None
    if after is not None:
        found = release.delta.patch_from(after.sha256)
        if found is not None:
            return found
    return min(release.delta.patches, key=lambda p: p.length)


@dataclass(frozen=True, slots=True)
class UpdateSize:
    """What a device downloads for a release: the full bundle, or its typical patch."""

    release: Release
    patch: Patch | None  # the typical patch (:func:`typical_patch`), None without patches

    def to_json(self) -> dict[str, object]:
        """The ``update`` object of a release in ``status --json``."""
        patch = self.patch
        return {
            "full_bytes": self.release.length,
            "delta_bytes": patch.length if patch else None,
            "delta_from": (patch.base_label or patch.base) if patch else None,
            "files_changed": patch.changed if patch else None,
            "patches": len(self.release.delta.patches) if self.release.delta else 0,
        }

    def text(self) -> str:
        """``r4: full 1.2 MB; delta from r3 3.1 kB (0.3 %), 2 files changed``."""
        from otaseal.progress import human_size  # noqa: PLC0415

        head = f"{self.release.label}: full {human_size(self.release.length)}"
        patch = self.patch
        if patch is None:
            return f"{head}; no delta patch"
        share = patch.length / self.release.length * 100 if self.release.length else 0.0
        name = patch.base_label or patch.base[:12]
        files = f"{patch.changed} file{'' if patch.changed == 1 else 's'} changed"
        return f"{head}; delta from {name} {human_size(patch.length)} ({share:.1f} %), {files}"


def update_sizes(releases: Sequence[Release]) -> tuple[UpdateSize, ...]:
    """Each release of a channel (in its order) with the patch from the release listed after it."""
    return tuple(
        UpdateSize(r, typical_patch(r, releases[i + 1] if i + 1 < len(releases) else None))
        for i, r in enumerate(releases)
    )


def delta_of(index_json: bytes, patches: Sequence[Patch]) -> Delta | None:
    """The release's ``delta`` member, or None without patches."""
    if not patches:
        return None
    return Delta(index=hashlib.sha256(index_json).hexdigest(), patches=tuple(patches))


def sealed_to_with_report(
    recipients: Sequence[RecipientKey], report_to: RecipientKey | None
) -> list[RecipientKey]:
    """The app's recipients plus the report recipient (ADR 0010), each key once."""
    from otaseal.formats.sealed import MAX_RECIPIENTS  # noqa: PLC0415

    keys = list(recipients)
    if report_to is not None and all(k.keyid != report_to.keyid for k in keys):
        if len(keys) >= MAX_RECIPIENTS:
            raise ConfigError(
                f"otaseal.yml lists {len(keys)} recipients and a report_recipient",
                expected=f"at most {MAX_RECIPIENTS} keys per bundle header, the report key "
                "included (ADR 0010)",
                fix="remove an app key that no installed app version ships any more "
                "(`otaseal recipients remove KEYID`)",
            )
        keys.append(report_to)
    return keys


# --- the report key ----------------------------------------------------------------------------
def resolve_report_key(project: Project) -> DecryptionKey | None:
    """``keys.report``, checked to be the private half of ``report_recipient``; None if unset."""
    from otaseal.secrets import describe_ref, resolve_decryption_key  # noqa: PLC0415

    ref = project.config.keys.get("report")
    if ref is None:
        return None
    public = project.report_recipient()
    if public is None:
        raise ConfigError(
            f"{project.config.path.name} sets keys.report but no report_recipient",
            expected="report_recipient: the public half of the report key (keys/report.pub.pem)",
            fix="add `report_recipient: file:keys/report.pub.pem`, or remove keys.report",
        )
    key = resolve_decryption_key(ref, mask=project.mask, env=project.environment)
    if key.public.keyid != public.keyid:
        raise KeyMaterialError(
            f"the report key from {describe_ref(ref)} is not the private half of "
            f"report_recipient ({describe_ref(project.config.report_recipient or '')})",
            expected="the private key whose public half report_recipient names "
            "(keys/report.pem and keys/report.pub.pem from `otaseal init`)",
            fix="point keys.report (the Action's `report-key`) and report_recipient at the two "
            "halves of the same key pair",
        )
    return key


# --- planning (before anything is written) ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Plan:
    """The bases a publish will try, and whether a failure is the user's mistake."""

    bases: tuple[Release, ...]
    explicit: bool
    key: DecryptionKey | None
    current: Release | None = None  # what the channel served when the plan was made


NO_PLAN: Final = Plan((), explicit=False, key=None)


def plan(
    project: Project,
    channel: str,
    refs: Sequence[str],
    *,
    served: Sequence[Release],
    history: Callable[[], Sequence[ChannelManifest]],
    key: DecryptionKey | None,
    current: Release | None = None,
) -> Plan:
    """Resolve ``--delta-from`` (or the default) and check each base can be read; exit 2 if not.

    Explicit bases are checked here, before packing, so a mistake stops the publish before any
    upload. Default bases are only filtered later (:func:`usable`), never refused.
    """
    if not refs:
        return Plan(tuple(served), explicit=False, key=key, current=current)
    if len(set(refs)) > MAX_PATCHES:
        raise InputError(
            f"--delta-from names {len(set(refs))} releases",
            expected=f"at most {MAX_PATCHES} patches per release (SPEC §19)",
            fix="name the releases most devices run, e.g. the ones `otaseal status` lists",
        )
    seen: tuple[Release, ...] | None = None  # every release any version listed, newest first
    bases: list[Release] = []
    for ref in refs:
        release = find_base(ref, served, channel)
        if release is None:  # it may have left the manifest: look through the channel's history
            if seen is None:
                seen = tuple(r for m in reversed(history()) for r in m.releases)
            release = find_base(ref, seen, channel)
        if release is None:
            listed = ", ".join(r.short for r in served) or "none"
            raise InputError(
                f"--delta-from {ref!r}: no release of that label, digest or counter was ever on "
                f"{channel}",
                expected=f"a release any manifest version of {channel} listed; it serves now: "
                f"{listed}",
                fix=f"name a release of {channel} (`otaseal history --channel {channel}`), or "
                "leave --delta-from out to use the releases the channel serves",
            )
        if all(b.sha256 != release.sha256 for b in bases):
            bases.append(release)
    for release in bases:
        reason = unusable(project, release, key)
        if reason is not None:
            raise InputError(
                f"--delta-from {release.label}: {reason}",
                expected="a release whose sealed bundle is in the store and opens with the "
                "report key (keys.report; ADR 0010)",
                fix=_NO_KEY_FIX
                if key is None
                else "name another release, or pass --no-delta to publish without patches",
            )
    return Plan(tuple(bases), explicit=True, key=key, current=current)


_NO_KEY_FIX: Final = (
    "add `report: file:keys/report.pem` under `keys:` in otaseal.yml (the private half of "
    "report_recipient; in the Action, pass the `report-key` input from a secret), or pass "
    "--no-delta to publish without patches"
)


def unusable(project: Project, release: Release, key: DecryptionKey | None) -> str | None:
    """Why ``release`` cannot be a base (reads only its ``.cub`` header), or None."""
    from otaseal.recipients import sealed_to  # noqa: PLC0415

    if key is None:
        return (
            "publish cannot read earlier releases: keys.report (the Action's `report-key`) is "
            "not set"
        )
    try:
        keyids = sealed_to(project.store, project.app, release)
    except NotFoundError:
        return f"its sealed bundle {bundle_key(project.app, release.sha256)} is not in the store"
    except Error as exc:
        return f"its sealed bundle cannot be read ({exc.what})"
    if key.public.keyid not in keyids:
        return (
            "it was sealed before releases were sealed to the report key too, so the report key "
            "cannot open it"
        )
    return None


def usable(project: Project, chosen: Plan, new_plaintext_sha256: str, notice: Notice) -> Plan:
    """The default bases minus the new build and those that cannot be read (each with a notice)."""
    if chosen.explicit or not chosen.bases:
        return chosen
    bases = default_bases(chosen.bases, new_plaintext_sha256)
    if bases and chosen.key is None:
        notice(
            "no delta patches: keys.report (the Action's `report-key`) is not set, so publish "
            "cannot read the releases devices run now (ADR 0010)"
        )
        return NO_PLAN
    kept = []
    for release in bases:
        reason = unusable(project, release, chosen.key)
        if reason is None:
            kept.append(release)
        else:
            notice(f"no delta patch from {release.short}: {reason}")
    return Plan(tuple(kept), explicit=False, key=chosen.key, current=chosen.current)


# --- making the patches -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MadePatchFile:
    """A sealed patch ready to upload, and its entry for the release."""

    patch: Patch
    path: Path


def make_patches(
    project: Project,
    chosen: Plan,
    build_dir: Path,
    index_json: bytes,
    *,
    target_bundle: str,
    full_length: int,
    seal_to: Sequence[RecipientKey],
    tmp: Path,
    notice: Notice,
    progress: Progress = NO_PROGRESS,
) -> tuple[MadePatchFile, ...]:
    """One sealed patch per base, each smaller than the full bundle (``full_length``).

    A default base that fails is skipped with a notice; an explicit one stops the publish.
    """
    if chosen.key is None:
        return ()
    made = []
    for number, base in enumerate(chosen.bases):
        work = tmp / f"delta-{number}"
        work.mkdir()
        progress.start(f"delta from {base.label}", files=base.files, size=base.unpacked_size)
        try:
            one = _make_one(
                project,
                base,
                build_dir=build_dir,
                index_json=index_json,
                target_bundle=target_bundle,
                seal_to=seal_to,
                key=chosen.key,
                work=work,
            )
        except Error as exc:
            if chosen.explicit:
                raise
            notice(f"no delta patch from {base.short}: {exc.what}")
            continue
        finally:
            progress.advance(base.files, base.unpacked_size)
        if one.patch.length >= full_length:  # devices would download more, not less
            notice(
                f"no delta patch from {base.short}: at {one.patch.length} bytes it is not "
                f"smaller than the full bundle ({full_length} bytes)"
            )
            continue
        made.append(one)
    return tuple(made)


def _make_one(
    project: Project,
    base: Release,
    *,
    build_dir: Path,
    index_json: bytes,
    target_bundle: str,
    seal_to: Sequence[RecipientKey],
    key: DecryptionKey,
    work: Path,
) -> MadePatchFile:
    from otaseal.formats.delta import make_patch  # noqa: PLC0415
    from otaseal.formats.sealed import SealWriter  # noqa: PLC0415

    base_dir = work / "base"
    base_index = extract_base(project, base, key, work / "base.zip", base_dir)
    result = make_patch(
        base_dir,
        build_dir,
        index_json,
        base_bundle=base.sha256,
        target_bundle=target_bundle,
        base_index=base_index,
    )
    shutil.rmtree(base_dir)  # several bases: keep one extracted tree on disk at a time
    path = work / "patch.cub"
    with path.open("wb") as out:
        writer = SealWriter(out, list(seal_to))
        writer.write(result.plaintext)
        sealed = writer.close()
    patch = Patch(
        base=base.sha256,
        sha256=sealed.sha256,
        length=sealed.length,
        plaintext_sha256=sealed.plaintext_sha256,
        plaintext_length=sealed.plaintext_length,
        base_label=base.label,
        changed=result.changed,
    )
    return MadePatchFile(patch, path)


def extract_base(
    project: Project, release: Release, key: DecryptionKey, zip_path: Path, dest: Path
) -> bytes:
    """Download ``release``'s bundle, open it with the report key, check it, extract it.

    Returns its index bytes: what a device that installed it keeps as the patch's dictionary.
    """
    from otaseal.archive import extract  # noqa: PLC0415
    from otaseal.errors import HashMismatchError  # noqa: PLC0415
    from otaseal.formats.delta import index_bytes  # noqa: PLC0415
    from otaseal.formats.sealed import open_sealed  # noqa: PLC0415

    sealed = zip_path.with_suffix(".cub")
    digest = hashlib.sha256()
    with sealed.open("wb") as out:
        for chunk in project.store.stream(
            bundle_key(project.app, release.sha256), max_bytes=release.length
        ):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != release.sha256:
        raise HashMismatchError(
            f"the stored bundle of {release.short} does not match its signed digest",
            expected=release.sha256,
            fix="the store was changed after the release was signed; run `otaseal audit`",
        )
    with sealed.open("rb") as src, zip_path.open("wb") as out:
        plain_sha, plain_length = open_sealed(src, key, out, max_plaintext=release.plaintext_length)
    sealed.unlink()
    if (plain_sha, plain_length) != (release.plaintext_sha256, release.plaintext_length):
        raise HashMismatchError(
            f"the bundle of {release.short} does not open to its signed plaintext",
            expected=f"{release.plaintext_length} bytes with SHA-256 {release.plaintext_sha256}",
            fix="the store was changed after the release was signed; run `otaseal audit`",
        )
    extract(zip_path, dest, max_total_size=release.unpacked_size)
    base_index = index_bytes(zip_path)
    zip_path.unlink()
    return base_index
