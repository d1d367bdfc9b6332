"""The command the Action runs, and what it left on its channel (:class:`Outcome`).

Each command (publish, promote, rollout, revert, resign, status, guard) maps to one operation;
everything it writes follows the store protocol (pointer last). The outcome is what the report,
the outputs and the deployment describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from otaseal.action.report import PAUSED_MEANING
from otaseal.action.wording import for_action
from otaseal.errors import InputError
from otaseal.operations import promote, read_head, resign, revert, set_rollout
from otaseal.publishing import publish

if TYPE_CHECKING:
    from otaseal.action.guard_step import GuardNote
    from otaseal.action.inputs import Inputs
    from otaseal.action.report import Stage
    from otaseal.action.runner import Runner
    from otaseal.model import ChannelManifest, Release
    from otaseal.operations import Change, Project


_STAGES: Final[dict[str, Stage]] = {
    "publish": "published",
    "promote": "promoted",
    "rollout": "rollout",
    "revert": "reverted",
    "resign": "resigned",
    "status": "status",
}


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
        previous_release(change.manifest) if change.noop else change.previous,
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
        project.app, "status", channel, manifest, previous_release(manifest), changed=False
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
    previous = change.previous if change and acted else previous_release(manifest)
    return Outcome(project.app, stage, channel, manifest, previous, changed=acted, guard=note)


def previous_release(manifest: ChannelManifest | None) -> Release | None:
    """The release before the current one: what an unchanged channel is compared with."""
    if manifest is None or manifest.builtin or len(manifest.releases) < 2:  # noqa: PLR2004
        return None
    return manifest.releases[1]


def describe(outcome: Outcome) -> str:
    """What the channel serves after the command, in one line for the log and the deployment."""
    rollout = outcome.rollout
    if outcome.manifest is not None and outcome.manifest.builtin:
        return f"{outcome.channel} serves the app's builtin build"
    current = outcome.current
    if current is None:
        return f"{outcome.channel} has no release yet"
    at = f" at {rollout:g} %" if rollout is not None else ""
    paused = f", paused: {PAUSED_MEANING}" if current.paused else ""
    return f"{outcome.label} on {outcome.channel}{at}{paused}"
