"""The GitHub Action: inputs → project → command → outputs, job summary, PR comment, deployments.

One function per stage. Secret inputs are masked before anything is printed. An otaseal
:class:`~otaseal.errors.Error` up to and during the command ends the run with ``::error::``, the
same text in the job summary and a non-zero exit; because the pointer is written last, devices
keep each channel's current release. After the command, GitHub is best effort: a token that may
not comment or deploy (pull requests from forks, read-only tokens) never fails the step, and the
summary says which permission to add.

The image runs this file as a script (Dockerfile ``ENTRYPOINT``); tests call :func:`main`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import requests

from otaseal import crypto, dsse
from otaseal.action.inputs import Inputs, read_inputs
from otaseal.action.report import (
    PAUSED_MEANING,
    ChannelRow,
    ReleaseReport,
    Stage,
    marker,
    render_comment,
    render_summary,
)
from otaseal.action.runner import Runner, RunnerError
from otaseal.action.wording import for_action
from otaseal.config import find_config, load_config
from otaseal.deltas import update_sizes
from otaseal.errors import Error, GitHubError, InputError
from otaseal.github import GitHub, is_permission_denied, permission_hint
from otaseal.model import format_time
from otaseal.operations import (
    Change,
    Project,
    open_store,
    promote,
    read_head,
    resign,
    revert,
    set_rollout,
    status,
)
from otaseal.publishing import publish, read_index
from otaseal.secrets import describe_ref, resolve_bytes

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import TextIO

    from otaseal.action.guard_step import GuardNote
    from otaseal.archive import IndexDiff
    from otaseal.config import Config
    from otaseal.model import ChannelManifest, Patch, Release

T = TypeVar("T")

ENVIRONMENT_PREFIX: Final = "otaseal-"
"""Deployments go to ``otaseal-<channel>``, apart from the job's own ``environment:``."""

_STAGES: Final[dict[str, Stage]] = {
    "publish": "published",
    "promote": "promoted",
    "rollout": "rollout",
    "revert": "reverted",
    "resign": "resigned",
    "status": "status",
}
_DEPLOYED_STAGES: Final = frozenset({"published", "promoted", "rollout", "reverted"})
_DASH: Final = "\u2014"
_STOPPED: Final = (
    "otaseal stopped before moving any channel pointer: devices keep the channel's current release."
)


# --- what the run is about ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Context:
    """The repository, event and commit of the workflow run."""

    repository: str
    event_name: str
    event: Mapping[str, Any]
    sha: str
    ref: str

    @property
    def is_pull_request(self) -> bool:
        """``pull_request`` or ``pull_request_target``."""
        return self.event_name.startswith("pull_request")

    @property
    def pull_request(self) -> int | None:
        """The PR a pull_request event names, or a workflow_run's PR from the same repository."""
        if self.is_pull_request:
            number = self.event.get("number")
        else:
            pulls = _path(self.event, "workflow_run", "pull_requests")
            first = pulls[0] if isinstance(pulls, list) and pulls else None
            number = first.get("number") if isinstance(first, dict) else None
        ok = isinstance(number, int) and not isinstance(number, bool) and number > 0
        return number if ok else None

    @property
    def from_fork(self) -> bool:
        """A PR from a fork only ever gets a read-only token (and 404s for what it cannot see)."""
        if not self.is_pull_request:
            return False
        head = _path(self.event, "pull_request", "head", "repo", "full_name")
        return head != _path(self.event, "repository", "full_name")

    @property
    def commit(self) -> str | None:
        """The commit a release is built from: a merged PR's merge commit, else GITHUB_SHA."""
        merged = _path(self.event, "pull_request", "merge_commit_sha")
        if self.is_pull_request and _path(self.event, "pull_request", "merged") and merged:
            return str(merged)
        built = _path(self.event, "workflow_run", "head_sha")  # a preview built by another run
        if self.event_name == "workflow_run" and isinstance(built, str) and built:
            return built
        return self.sha or None

    @property
    def default_branch(self) -> str:
        """The branch a push's PR was merged into."""
        branch = _path(self.event, "repository", "default_branch")
        return str(branch) if branch else self.ref.removeprefix("refs/heads/") or "main"


def _path(doc: Mapping[str, Any], *keys: str) -> object:
    value: object = doc
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def read_context(runner: Runner) -> Context:
    """The run's context from the runner's environment and event payload."""
    return Context(runner.repository, runner.event_name, runner.event(), runner.sha, runner.ref)


# --- preparing -----------------------------------------------------------------------------------
def open_project(inputs: Inputs, env: Mapping[str, str], runner: Runner) -> Project:
    """otaseal.yml, with the ``signing-key`` (and ``capgo-key``) inputs as key references."""
    config = load_config(find_config(inputs.config))
    if inputs.app_id is not None and inputs.app_id != config.app:
        raise InputError(
            f"the input 'app-id' is {inputs.app_id!r} but {config.path.name} is for {config.app!r}",
            expected="the same app id in both",
            fix="point `config:` at the right otaseal.yml, or fix `app-id:`",
        )
    channel = inputs.written_channel
    if channel is not None and inputs.signing_key is not None:
        config = replace(config, keys={**config.keys, channel: inputs.signing_key})
    elif channel is not None:
        verify_config_key(config, channel, env)
    if inputs.capgo_key is not None:
        config = replace(config, keys={**config.keys, "capgo": inputs.capgo_key})
    # keys.report is the `report-key` input, never a key file CI does not have (ADR 0010).
    keys = {k: v for k, v in config.keys.items() if k != "report"}
    if inputs.report_key is not None:
        keys["report"] = inputs.report_key
    config = replace(config, keys=keys)
    store = open_store(
        inputs.store or config.store,
        s3_endpoint=inputs.s3_endpoint or config.s3_endpoint,
        s3_lock_mode=config.s3_lock_mode,
    )
    return Project(config, store, mask=runner.add_mask, env=env)


def secret_name(channel: str) -> str:
    """The secret the example workflows keep a channel's key in: ``OTASEAL_<CHANNEL>_KEY``."""
    return "OTASEAL_" + re.sub(r"[^A-Z0-9]", "_", channel.upper()) + "_KEY"


def verify_config_key(config: Config, channel: str, env: Mapping[str, str]) -> None:
    """With ``signing-key`` empty (an unset secret is empty), otaseal.yml's key must be there.

    Without this, an unset secret surfaces as "file keys/beta.pem is not readable", which sends
    people looking for a file instead of the secret they forgot to set.
    """
    ref = config.keys.get(channel)
    where = f"keys.{channel} in {config.path.name} is {describe_ref(ref or '')}"
    if ref is None:
        fallback = f"{config.path.name} names no key for {channel} under `keys:`"
    elif ref.startswith("file:"):
        if Path(ref.removeprefix("file:")).exists():
            return
        fallback = f"{where}, which does not exist here"
    elif ref.startswith("env:"):
        if env.get(ref.removeprefix("env:"), "").strip():
            return
        fallback = f"{where}, which is not set or empty"
    else:
        return  # a KMS, Vault or AWS reference: resolved (and explained) by otaseal.secrets
    name = secret_name(channel)
    raise InputError(
        f"the input 'signing-key' is empty (a secret that is not set reaches the Action "
        f"empty), and {fallback}",
        expected=f"the {channel} channel's private signing key, passed from a secret",
        fix=f"add the secret {name} (the contents of keys/{channel}.pem from `otaseal init`) to "
        f"the repository, or to the environment the job runs in, and pass it as "
        f"`signing-key: ${{{{ secrets.{name} }}}}` under `with:`",
    )


def resolve_report_key(
    inputs: Inputs, env: Mapping[str, str], runner: Runner
) -> crypto.DecryptionKey | None:
    """The CI report key (ADR 0005), resolved before anything is written so a bad one stops us."""
    if inputs.report_key is None:
        return None
    data = resolve_bytes(inputs.report_key, what="the report key", mask=runner.add_mask, env=env)
    return crypto.load_decryption_key(data, source=describe_ref(inputs.report_key))


# --- GitHub, best effort -----------------------------------------------------------------------
@dataclass
class GitHubSteps:
    """GitHub calls that must not fail the run; what happened is kept for the summary."""

    runner: Runner
    context: Context
    client: GitHub | None
    done: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def connect(cls, runner: Runner, inputs: Inputs, context: Context) -> GitHubSteps:
        """A client when the run wants GitHub and can reach it; otherwise say why not."""
        steps = cls(runner, context, None)
        if not (inputs.comment or inputs.deployments or inputs.command == "publish"):
            return steps
        if not inputs.github_token:
            steps.problems.append(
                "GitHub steps skipped: the input 'github-token' is empty; "
                "leave it at its default `${{ github.token }}`"
            )
        elif not context.repository:
            steps.done.append(
                "GitHub steps skipped: not running in GitHub Actions (GITHUB_REPOSITORY is not set)"
            )
        else:
            try:
                steps.client = GitHub(inputs.github_token, api_url=runner.api_url)
            except InputError as exc:
                steps.problems.append(f"GitHub steps skipped: {exc.diagnostics()}")
        return steps

    def attempt(self, doing: str, call: Callable[[GitHub], T]) -> T | None:
        """``call`` with the client; a GitHub failure becomes a warning and a summary line."""
        if self.client is None:
            return None
        try:
            return call(self.client)
        except GitHubError as exc:
            if is_permission_denied(exc, from_fork=self.context.from_fork):
                hint = _capital(permission_hint(str(getattr(exc, "operation", ""))))
                self._problem(f"could not {doing}: the token may not do that. {hint}.")
            else:
                self._problem(f"could not {doing}: {exc.diagnostics()}")
        except Error as exc:  # e.g. GITHUB_REPOSITORY is not owner/name
            self._problem(f"could not {doing}: {exc.diagnostics()}")
        except requests.RequestException as exc:  # what the client does not retry
            self._problem(f"could not {doing}: {type(exc).__name__} while talking to GitHub")
        return None

    def _problem(self, text: str) -> None:
        self.runner.warning(text, title="otaseal: GitHub step skipped")
        self.problems.append(text)

    def close(self) -> None:
        """Release the HTTP session."""
        if self.client is not None:
            self.client.close()


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def find_pull_request(github: GitHubSteps, explicit: int | None) -> int | None:
    """The ``pull-request`` input, the event's PR, or for a push the PR that merged the commit."""
    context = github.context
    if explicit is not None:
        return explicit
    if context.pull_request is not None:
        return context.pull_request
    if context.event_name != "push" or not context.sha:
        return None
    return github.attempt(
        "find the pull request of the pushed commit",
        lambda gh: gh.pull_request_for_commit(
            context.repository, context.sha, context.default_branch
        ),
    )


def comment_target(event_pr: int | None, outcome: Outcome) -> int | None:
    """The run's own PR, else the PR recorded with the release (the one reverted away from)."""
    if event_pr is not None:
        return event_pr
    if outcome.stage == "reverted" and outcome.previous is not None and outcome.previous.pr:
        return outcome.previous.pr
    current = outcome.current
    return current.pr if current is not None else None


def post_comment(github: GitHubSteps, report: ReleaseReport, number: int | None) -> str | None:
    """Create or update this app's sticky comment on PR ``number``."""
    if number is None:
        github.done.append("Pull request comment: no pull request is linked to this run")
        return None
    url = github.attempt(
        "post the pull request comment",
        lambda gh: gh.upsert_sticky_comment(
            github.context.repository, number, render_comment(report), marker(report.app)
        ),
    )
    if url is not None:
        github.done.append(f"Pull request comment on #{number}: {url}")
    return url


def record_deployment(github: GitHubSteps, outcome: Outcome, log_url: str | None) -> int | None:
    """A deployment of the channel's new state to ``otaseal-<channel>``, marked successful."""
    if not outcome.changed or outcome.stage not in _DEPLOYED_STAGES:
        return None
    current = outcome.current
    ref = (current.commit if current is not None else None) or github.context.sha
    if not ref:
        github.done.append("Deployment: skipped, the run has no commit (GITHUB_SHA)")
        return None
    environment = ENVIRONMENT_PREFIX + outcome.channel
    description = outcome.guard.short if outcome.guard else _describe(outcome)
    payload = {
        "app": outcome.app,
        "channel": outcome.channel,
        "label": outcome.label,
        "bundle_sha256": current.sha256 if current else None,
        "manifest_version": outcome.manifest.version if outcome.manifest else None,
        "rollout": outcome.rollout,
    }
    repository = github.context.repository
    deployment_id = github.attempt(
        "create the deployment",
        lambda gh: gh.create_deployment(
            repository,
            ref,
            environment,
            description=description,
            payload=payload,
            production=outcome.channel == "production",
        ),
    )
    if deployment_id is None:
        return None
    state = github.attempt(
        "set the deployment status",
        lambda gh: gh.create_deployment_status(
            repository,
            deployment_id,
            "success",
            environment_url=None,
            log_url=log_url,
            description=description,
        ),
    )
    result = "success" if state is not None else "status not set"
    github.done.append(f"Deployment to `{environment}`: id {deployment_id}, {result}")
    return deployment_id


# --- the command ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Outcome:
    """What the command left on its channel."""

    app: str
    stage: Stage
    channel: str
    manifest: ChannelManifest | None
    previous: Release | None
    changed: bool
    guard: GuardNote | None = None  # command: guard, what it decided and on what evidence

    @property
    def current(self) -> Release | None:
        """The release the channel serves now (None: empty, or the app's builtin build)."""
        return self.manifest.current if self.manifest is not None else None

    @property
    def label(self) -> str:
        """What the channel serves, in words."""
        if self.manifest is None:
            return ""
        if self.manifest.builtin:
            return "builtin"
        current = self.current
        return current.label if current is not None else ""

    @property
    def rollout(self) -> float | None:
        """The current release's rollout in percent."""
        current = self.current
        return current.rollout_bp / 100 if current is not None else None


def _given(value: str | None, name: str) -> str:
    if value is None:  # read_inputs requires these for the command; kept for the type checker
        raise InputError(f"the input '{name}' is empty", fix=f"set `{name}:` under `with:`")
    return value


def run_command(
    project: Project, inputs: Inputs, runner: Runner, *, commit: str | None, pr: int | None
) -> Outcome:
    """Run the command; everything it writes follows the store protocol (pointer last)."""
    change: Change
    if inputs.command == "status":
        return _status_outcome(project, inputs.channel or project.config.channels[0])
    if inputs.command == "guard":
        return _guard_outcome(project, inputs, runner)
    if inputs.command == "publish":
        if inputs.build_dir is None:
            raise InputError("the input 'build-dir' is empty", fix="set `build-dir:`")
        change = publish(
            project,
            inputs.build_dir,
            channel=_given(inputs.channel, "channel"),
            label=inputs.label,
            rollout=100.0 if inputs.rollout is None else inputs.rollout,
            commit=commit,
            pr=pr,
            allow=inputs.allow_files,
            notice=lambda text: _notice(runner, text),
            native_min=inputs.native_min,
            project_dir=inputs.project_dir,
            replace_rollout=inputs.replace_rollout,
            accept_incompatible=inputs.accept_incompatible,
            delta_from=inputs.delta_from,
            delta=inputs.delta,
        ).change
    elif inputs.command == "promote":
        change = promote(
            project,
            source=_given(inputs.source, "from"),
            target=_given(inputs.target, "to"),
            ref=inputs.release,
            rollout=100.0 if inputs.rollout is None else inputs.rollout,
        )
    elif inputs.command == "rollout":
        change = set_rollout(
            project,
            channel=_given(inputs.channel, "channel"),
            percent=inputs.rollout,
            pause=inputs.rollout_mode == "pause",
            resume=inputs.rollout_mode == "resume",
        )
    elif inputs.command == "revert":
        change = revert(project, channel=_given(inputs.channel, "channel"), to=inputs.release)
    else:
        change = resign(project, channel=_given(inputs.channel, "channel"))
    return Outcome(
        project.app,
        _STAGES[inputs.command],
        change.channel,
        change.manifest,
        _previous_release(change.manifest) if change.noop else change.previous,
        changed=not change.noop,
    )


def _notice(runner: Runner, text: str) -> None:
    text = for_action(text, "publish")  # publish's notices name CLI flags
    if text.startswith("warning: "):
        runner.warning(text.removeprefix("warning: "), title="otaseal")
    else:
        runner.info(text)


def _status_outcome(project: Project, channel: str) -> Outcome:
    project.config.check_channel(channel)
    manifest = read_head(project, channel).manifest
    return Outcome(
        project.app, "status", channel, manifest, _previous_release(manifest), changed=False
    )


def _guard_outcome(project: Project, inputs: Inputs, runner: Runner) -> Outcome:
    from otaseal.action.guard_step import run_guard_step  # noqa: PLC0415

    channel = _given(inputs.channel, "channel")
    note = run_guard_step(project, inputs, runner, channel)
    change, acted = note.result.change, note.result.acted
    manifest = change.manifest if change else read_head(project, channel).manifest
    stage: Stage = "status"
    if acted:
        stage = "reverted" if note.result.decision.action == "revert" else "rollout"
    previous = change.previous if change and acted else _previous_release(manifest)
    return Outcome(project.app, stage, channel, manifest, previous, changed=acted, guard=note)


def _previous_release(manifest: ChannelManifest | None) -> Release | None:
    """The release before the current one: what an unchanged channel is compared with."""
    if manifest is None or manifest.builtin or len(manifest.releases) < 2:  # noqa: PLR2004
        return None
    return manifest.releases[1]


# --- reporting -----------------------------------------------------------------------------------
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


def _describe(outcome: Outcome) -> str:
    rollout = outcome.rollout
    if outcome.manifest is not None and outcome.manifest.builtin:
        return f"{outcome.channel} serves the app's builtin build"
    current = outcome.current
    if current is None:
        return f"{outcome.channel} has no release yet"
    at = f" at {rollout:g} %" if rollout is not None else ""
    paused = f", paused: {PAUSED_MEANING}" if current.paused else ""
    return f"{outcome.label} on {outcome.channel}{at}{paused}"


def github_section(github: GitHubSteps) -> str:
    """The summary lines about the PR comment and deployments."""
    if not (github.done or github.problems):
        return ""
    lines = ["", "#### GitHub"]
    lines += [f"- {_html(text)}" for text in github.done]
    lines += [f"- **Not done:** {_html(text)}" for text in github.problems]
    return "\n".join(lines) + "\n"


def _html(text: str) -> str:
    """Keep messages from GitHub or the store from opening HTML in the summary."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- failing -------------------------------------------------------------------------------------
def _failed(command: str | None) -> str:
    """``otaseal publish failed``, or ``otaseal failed`` before the command is known."""
    return f"otaseal {command} failed" if command else "otaseal failed"


def fail(runner: Runner, command: str | None, exc: Error) -> int:
    """``::error::``, the same text in the summary, and the error's exit code."""
    text = for_action(exc.diagnostics(), command)
    runner.error(text, title=_failed(command))
    after = "" if command in {"status", "audit"} else f"\n{_STOPPED}\n"
    runner.append_summary(f"### {_failed(command)}\n\n{_fenced(text)}{after}")
    return exc.exit_code


def crash(runner: Runner, command: str | None, exc: Exception) -> int:
    """An unexpected exception: a bug. The traceback goes to the log, masked and inert."""
    with runner.group("Traceback"), runner.stop_commands():
        runner.info("".join(traceback.format_exception(exc)))
    text = (
        f"{_failed(command).removesuffix(' failed')} stopped on an unexpected "
        f"{type(exc).__name__}; this is a bug in otaseal, please report it with the log of "
        "this step"
    )
    runner.error(text, title=_failed(command))
    runner.append_summary(f"### {_failed(command)}\n\n{_fenced(text)}")
    return 1


def _fenced(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}\n"


# --- the run -------------------------------------------------------------------------------------
def main(env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the Action in ``env`` (the process environment by default); return the exit code."""
    environ = os.environ if env is None else env
    runner = Runner(environ, out)
    command: str | None = None
    try:
        inputs = read_inputs(runner)
        command = inputs.command
        return run(runner, inputs, environ)
    except Error as exc:
        return fail(runner, command, exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: report, never leak
        return crash(runner, command, exc)


def run(runner: Runner, inputs: Inputs, env: Mapping[str, str]) -> int:
    """Prepare, run the command, then report; errors up to the command propagate (fail closed)."""
    context = read_context(runner)
    project = open_project(inputs, env, runner)
    if inputs.command == "audit":  # reads the store only: no keys, no GitHub
        from otaseal.action.audit_step import run_audit_step  # noqa: PLC0415

        return run_audit_step(runner, project)
    report_key = resolve_report_key(inputs, env, runner)
    github = GitHubSteps.connect(runner, inputs, context)
    try:
        event_pr = find_pull_request(github, inputs.pull_request)
        with runner.group(f"otaseal {inputs.command}"):
            outcome = run_command(project, inputs, runner, commit=context.commit, pr=event_pr)
            runner.info(_describe(outcome) + ("" if outcome.changed else " (unchanged)"))
        try:
            code = report(
                runner,
                project=project,
                inputs=inputs,
                outcome=outcome,
                report_key=report_key,
                github=github,
                event_pr=event_pr,
            )
            if inputs.command == "status":
                return max(code, expiry_check(runner, project))
            if outcome.guard is None or outcome.guard.error is None:
                return code
            return fail(runner, inputs.command, outcome.guard.error)
        except Error as exc:  # the channel already changed: never report this as "stopped"
            text = f"`{inputs.command}` succeeded, but reporting it failed: {exc.diagnostics()}"
            runner.warning(text, title="otaseal")
            runner.append_summary(f"#### otaseal {_DASH} report incomplete\n\n{_fenced(text)}")
            return 0
    finally:
        github.close()


def report(
    runner: Runner,
    *,
    project: Project,
    inputs: Inputs,
    outcome: Outcome,
    report_key: crypto.DecryptionKey | None,
    github: GitHubSteps,
    event_pr: int | None,
) -> int:
    """Outputs, summary, comment, deployment. The command already succeeded: only warnings now."""
    set_outputs(runner, outcome_outputs(outcome))
    built: Report | None = None
    try:
        built = build_report(project, outcome, report_key, runner)
    except Error as exc:
        text = f"`{inputs.command}` succeeded, but its report could not be built: "
        runner.warning(text + exc.diagnostics(), title="otaseal")
        runner.append_summary(f"### otaseal {_DASH} {_describe(outcome)}\n\n{_fenced(text)}")
    health_code = 0
    if built is not None and inputs.command == "status" and inputs.stats:
        from otaseal.action.status_health_step import status_health  # noqa: PLC0415

        section, health_code = status_health(runner, project, inputs.stats, outcome.channel)
        built = replace(built, release=replace(built.release, health=section))
    if built is not None:
        runner.append_summary(render_summary(built.release))
    extra: dict[str, str] = {}
    if inputs.comment and built is not None and github.client is not None:
        url = post_comment(github, built.release, comment_target(event_pr, outcome))
        extra["comment-url"] = url or ""
    if inputs.deployments and github.client is not None:
        deployment_id = record_deployment(github, outcome, runner.run_url)
        extra["deployment-id"] = str(deployment_id) if deployment_id is not None else ""
    set_outputs(runner, extra)
    section = github_section(github)
    if section:
        runner.append_summary(section)
    return max(_broken_channels(runner, inputs, built), health_code)


def expiry_check(runner: Runner, project: Project) -> int:
    """``status``: warn from 60 days before the root or a manifest expires, fail from 14."""
    from otaseal.rootkeys.ops import status_notes  # noqa: PLC0415

    notes = status_notes(project, {row.channel: row.manifest for row in status(project)})
    now = project.clock()
    for note in notes:
        if note.level == "error":
            runner.error(note.message(now), title="otaseal: expires soon")
        else:
            runner.warning(note.message(now), title="otaseal: expires soon")
    if notes:
        runner.append_summary(
            "#### Expiry\n\n"
            + "".join(f"- **{n.level}:** {_html(n.message(now))}\n" for n in notes)
        )
    return 3 if any(n.level == "error" for n in notes) else 0


def _broken_channels(runner: Runner, inputs: Inputs, built: Report | None) -> int:
    """Unreadable channels fail ``status`` (a scheduled check must go red); elsewhere they warn."""
    if built is None or not built.broken:
        return 0
    for text in built.broken:
        if inputs.command == "status":
            runner.error(text, title="otaseal: channel unreadable")
        else:
            runner.warning(text, title="otaseal: channel unreadable")
    return 3 if inputs.command == "status" else 0


if __name__ == "__main__":
    sys.exit(main())
