"""What the report and the step outputs say, read back from the store after the command.

The file list needs the CI report key (ADR 0005): it is resolved before anything is written, so a
bad key stops the run, and a release whose index cannot be read only loses its file list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from otaseal import crypto, dsse
from otaseal.action.report import ChannelRow, ReleaseReport
from otaseal.action.runner import RunnerError
from otaseal.deltas import update_sizes
from otaseal.errors import Error
from otaseal.model import format_time
from otaseal.operations import read_head, status
from otaseal.publishing import read_index
from otaseal.secrets import describe_ref, resolve_bytes

if TYPE_CHECKING:
    from collections.abc import Mapping

    from otaseal.action.command import Outcome
    from otaseal.action.inputs import Inputs
    from otaseal.action.runner import Runner
    from otaseal.archive import IndexDiff
    from otaseal.model import ChannelManifest, Patch, Release
    from otaseal.operations import Project


def resolve_report_key(
    inputs: Inputs, env: Mapping[str, str], runner: Runner
) -> crypto.DecryptionKey | None:
    """The CI report key (ADR 0005), resolved before anything is written so a bad one stops us."""
    if inputs.report_key is None:
        return None
    data = resolve_bytes(inputs.report_key, what="the report key", mask=runner.add_mask, env=env)
    return crypto.load_decryption_key(data, source=describe_ref(inputs.report_key))


@dataclass(frozen=True, slots=True)
class Report:
    """The rendered report and the channels ``status`` found unreadable."""

    release: ReleaseReport
    broken: tuple[str, ...]


def build_report(
    project: Project, outcome: Outcome, report_key: crypto.DecryptionKey | None, runner: Runner
) -> Report:
    """Everything the comment and the summary show, read back from the store."""
    current, previous = outcome.current, outcome.previous
    diff = file_changes(project, report_key, current, previous, runner)
    rows, broken = channel_rows(project)
    release = ReleaseReport(
        app=project.app,
        stage=outcome.stage,
        channel=outcome.channel,
        label=outcome.label,
        digest=current.sha256 if current else "",
        size=current.length if current else 0,
        files=current.files if current else 0,
        previous_label=previous.label if previous else None,
        size_delta=current.length - previous.length if current and previous else None,
        added=diff.added if diff else None,
        removed=diff.removed if diff else None,
        changed=diff.changed if diff else None,
        signer_keyids=signer_keyids(project, outcome.channel),
        channels=rows,
        run_url=runner.run_url,
        commit=current.commit if current else None,
        formats=formats_of(current),
        capgo_size=current.capgo.length if current and current.capgo else None,
        builtin=outcome.manifest is not None and outcome.manifest.builtin,
        guard=outcome.guard.text if outcome.guard else "",
        **_delta_fields(typical_patch_of(outcome.manifest)),
    )
    return Report(release, broken)


def typical_patch_of(manifest: ChannelManifest | None) -> Patch | None:
    """The current release's patch most devices take (from the release listed after it)."""
    if manifest is None or manifest.builtin or not manifest.releases:
        return None
    return update_sizes(manifest.releases)[0].patch


def _delta_fields(patch: Patch | None) -> dict[str, Any]:
    """``delta_size``, ``delta_from`` and ``delta_changed`` of a report or channel row."""
    if patch is None:
        return {}
    return {
        "delta_size": patch.length,
        "delta_from": patch.base_label or patch.base[:12],
        "delta_changed": patch.changed,
    }


def file_changes(
    project: Project,
    report_key: crypto.DecryptionKey | None,
    current: Release | None,
    previous: Release | None,
    runner: Runner,
) -> IndexDiff | None:
    """Which files changed, from both releases' indexes; None when the list is not readable."""
    if report_key is None or current is None or previous is None:
        return None
    try:
        new = read_index(project, current, report_key)
        old = read_index(project, previous, report_key)
    except Error as exc:
        runner.warning(f"the file list is not available: {exc.diagnostics()}", title="otaseal")
        return None
    if new is None or old is None:
        return None
    return new.diff(old)


def signer_keyids(project: Project, channel: str) -> tuple[str, ...]:
    """Key ids that signed the channel's newest manifest."""
    envelope = read_head(project, channel).envelope
    if envelope is None:
        return ()
    return tuple(keyid for keyid, _ in dsse.Envelope.from_json(envelope).signatures)


def channel_rows(project: Project) -> tuple[tuple[ChannelRow, ...], tuple[str, ...]]:
    """One row per configured channel, and the diagnostics of channels that cannot be read."""
    rows, broken = [], []
    for entry in status(project):
        manifest = entry.manifest
        if entry.error is not None:
            broken.append(f"{entry.channel}: {entry.error}")
            rows.append(ChannelRow(entry.channel, "unreadable", None, None, None, None))
            continue
        current = manifest.current if manifest else None
        label = "builtin" if manifest and manifest.builtin else current.label if current else None
        patch = typical_patch_of(manifest)
        rows.append(
            ChannelRow(
                channel=entry.channel,
                label=label,
                digest=current.sha256 if current else None,
                rollout_percent=current.rollout_bp / 100 if current else None,
                manifest_version=manifest.version if manifest else None,
                expires=format_time(manifest.expires) if manifest else None,
                paused=current.paused if current else False,
                delta_size=patch.length if patch else None,
                delta_changed=patch.changed if patch else None,
            )
        )
    return tuple(rows), tuple(broken)


def set_outputs(runner: Runner, values: Mapping[str, str]) -> None:
    """Step outputs; outside Actions (no GITHUB_OUTPUT) a warning instead."""
    for name, value in values.items():
        try:
            runner.set_output(name, value)
        except RunnerError as exc:
            runner.warning(exc.diagnostics(), title="otaseal: outputs not written")
            return


def outcome_outputs(outcome: Outcome) -> dict[str, str]:
    """The outputs that describe the channel after the command."""
    current = outcome.current
    rollout = outcome.rollout
    return {
        "release-label": outcome.label,
        "bundle-sha256": current.sha256 if current else "",
        "manifest-version": str(outcome.manifest.version) if outcome.manifest else "",
        "channel": outcome.channel,
        "rollout": f"{rollout:g}" if rollout is not None else "",
        "formats": ",".join(formats_of(current)),
        "capgo-session-key": current.capgo.session_key if current and current.capgo else "",
        "capgo-checksum": current.capgo.checksum if current and current.capgo else "",
        **delta_outputs(outcome.manifest),
    }


def delta_outputs(manifest: ChannelManifest | None) -> dict[str, str]:
    """``delta-bytes`` (the typical patch) and ``delta-patches`` (all, as JSON) of the current."""
    current = manifest.current if manifest is not None else None
    patch = typical_patch_of(manifest)
    patches = current.delta.patches if current is not None and current.delta else ()
    listed = [
        {"base_label": p.base_label, "base_sha256": p.base, "bytes": p.length, "changed": p.changed}
        for p in patches
    ]
    return {
        "delta-bytes": str(patch.length) if patch else "",
        "delta-patches": json.dumps(listed, sort_keys=True),
    }


def formats_of(release: Release | None) -> tuple[str, ...]:
    """The formats a release is published in (sealed always; capgo when it carries one)."""
    if release is None:
        return ()
    return ("sealed", "capgo") if release.capgo is not None else ("sealed",)
