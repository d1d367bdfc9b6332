"""The Action's inputs, read from the runner and validated, because the runner validates nothing.

Each problem is an :class:`~otaseal.errors.InputError` that names the input, what was given (never
a secret), what was expected and what to write in the workflow. Secret inputs are masked before
anything else is read, so no later message can show them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from otaseal.errors import InputError
from otaseal.model import APP_ID_RE, NAME_RE
from otaseal.operations import check_label
from otaseal.secrets import describe_ref

if TYPE_CHECKING:
    from otaseal.action.runner import Runner

Command = Literal["publish", "promote", "rollout", "revert", "resign", "status", "audit", "guard"]
COMMANDS: Final[tuple[Command, ...]] = (
    "publish",
    "promote",
    "rollout",
    "revert",
    "resign",
    "status",
    "audit",
    "guard",
)
RolloutMode = Literal["percent", "pause", "resume"]

_PR_NUMBER: Final = re.compile(r"[1-9][0-9]{0,9}")
_NATIVE_BUILD: Final = re.compile(r"0|[1-9][0-9]{0,14}")

_KEY_INPUTS: Final = ("signing-key", "report-key", "capgo-key")
# publish only: the native range and the two fail-closed overrides (README, Fail-closed publishing).
_PUBLISH_GATES: Final = ("native-min", "project-dir", "replace-rollout", "accept-incompatible")
# The inputs each command reads beyond the shared ones (config, store, keys, GitHub switches).
_USES: Final[dict[Command, frozenset[str]]] = {
    "publish": frozenset(
        {
            "build-dir",
            "channel",
            "rollout",
            "label",
            "signing-key",
            "capgo-key",
            "allow-file",
            "delta-from",
            *_PUBLISH_GATES,
        }
    ),
    "promote": frozenset({"from", "to", "release", "rollout", "signing-key"}),
    "rollout": frozenset({"channel", "rollout", "signing-key"}),
    "revert": frozenset({"channel", "release", "signing-key"}),
    "resign": frozenset({"channel", "signing-key"}),
    "status": frozenset({"channel", "stats"}),
    "audit": frozenset(),
    "guard": frozenset({"channel", "signing-key", "stats", "dry-run"}),
}
_OPTIONAL: Final = frozenset(
    {
        "build-dir",
        "channel",
        "from",
        "to",
        "release",
        "rollout",
        "label",
        "signing-key",
        "capgo-key",
        "allow-file",
        "delta-from",
        "stats",
        "dry-run",
        *_PUBLISH_GATES,
    }
)


@dataclass(frozen=True, slots=True)
class Inputs:
    """Every input, validated; ``None`` means not given."""

    command: Command
    config: str
    app_id: str | None = None
    channel: str | None = None
    source: str | None = None
    target: str | None = None
    release: str | None = None
    rollout: float | None = None
    rollout_mode: RolloutMode = "percent"
    label: str | None = None
    build_dir: Path | None = None
    store: str | None = None
    s3_endpoint: str | None = None
    signing_key: str | None = None
    report_key: str | None = None
    capgo_key: str | None = None
    allow_files: tuple[str, ...] = ()
    native_min: int | None = None
    project_dir: Path | None = None
    replace_rollout: bool = False
    accept_incompatible: bool = False
    pull_request: int | None = None
    github_token: str = ""
    comment: bool = True
    deployments: bool = True
    delta_from: tuple[str, ...] = ()  # publish: bases of delta patches; () the default ones
    delta: bool = True  # publish: False when `delta-from: none`
    stats: str | None = None  # status, guard: the stats database URL (guard: serve's default)
    dry_run: bool = False  # guard: decide, sign nothing

    @property
    def written_channel(self) -> str | None:
        """The channel the command writes (its signing key is the ``signing-key`` input)."""
        if self.command in {"status", "audit"}:
            return None
        return self.target if self.command == "promote" else self.channel


def read_inputs(runner: Runner) -> Inputs:
    """Mask the secret inputs, then read and check every input for the command."""
    _mask_secrets(runner)
    command = _command(runner.input("command"))
    for name in sorted(_OPTIONAL - _USES[command]):
        if runner.input(name) not in {"", "false"}:  # a switch left at its default is unused
            runner.warning(
                f"the input '{name}' is not used by `{command}`; ignoring it",
                title="otaseal: unused input",
            )
    uses = _USES[command]
    channel = _channel(runner, "channel") if "channel" in uses else None
    if command in {"publish", "rollout", "revert", "resign", "guard"} and channel is None:
        raise _missing("channel", command, "the channel to change, e.g. `channel: beta`")
    rollout, mode = (
        _rollout(runner.input("rollout"), command) if "rollout" in uses else (None, "percent")
    )
    label = runner.input("label") if "label" in uses else ""
    if label:
        check_label(label)
    native_min, project_dir, replace_rollout, accept_incompatible = (
        _publish_gates(runner) if command == "publish" else (None, None, False, False)
    )
    delta_from, delta = (
        _delta_from(runner.input("delta-from")) if "delta-from" in uses else ((), True)
    )
    return Inputs(
        command=command,
        config=runner.input("config", default="otaseal.yml"),
        app_id=_app_id(runner.input("app-id")),
        channel=channel,
        source=_channel(runner, "from", required_by=command) if "from" in uses else None,
        target=_channel(runner, "to", required_by=command) if "to" in uses else None,
        release=(runner.input("release") or None) if "release" in uses else None,
        rollout=rollout,
        rollout_mode=mode,
        label=label or None,
        build_dir=_build_dir(runner.input("build-dir")) if "build-dir" in uses else None,
        store=runner.input("store") or None,
        s3_endpoint=runner.input("s3-endpoint") or None,
        signing_key=(runner.input("signing-key") or None) if "signing-key" in uses else None,
        report_key=runner.input("report-key") or None,
        capgo_key=(runner.input("capgo-key") or None) if "capgo-key" in uses else None,
        allow_files=_patterns(runner.input("allow-file")) if "allow-file" in uses else (),
        delta_from=delta_from,
        delta=delta,
        pull_request=_pull_request(runner.input("pull-request")),
        github_token=runner.input("github-token"),
        comment=runner.bool_input("comment", default=True),
        deployments=runner.bool_input("deployments", default=True),
        native_min=native_min,
        project_dir=project_dir,
        replace_rollout=replace_rollout,
        accept_incompatible=accept_incompatible,
        stats=(runner.input("stats") or None) if "stats" in uses else None,
        dry_run=runner.bool_input("dry-run") if "dry-run" in uses else False,
    )


def _publish_gates(runner: Runner) -> tuple[int | None, Path | None, bool, bool]:
    """``native-min``, ``project-dir``, ``replace-rollout`` and ``accept-incompatible``."""
    native = runner.input("native-min")
    if native and not _NATIVE_BUILD.fullmatch(native):
        raise InputError(
            f"the input 'native-min' is {native!r}, which is not a native build number",
            expected="a whole number such as 42: the build number (versionCode / "
            "CFBundleVersion) of the first native build this web build needs",
            fix="set `native-min:` to that build's number, or leave it out",
        )
    project = runner.input("project-dir")
    if project and not Path(project).is_dir():
        raise InputError(
            f"the input 'project-dir' is {project!r}, which is not a folder in the workspace",
            expected="the app's folder that holds package.json and capacitor.config",
            fix="set `project-dir:` relative to the workspace, or leave it out (default: the "
            "parent of build-dir if it has package.json, else the workspace)",
        )
    return (
        int(native) if native else None,
        Path(project) if project else None,
        runner.bool_input("replace-rollout"),
        runner.bool_input("accept-incompatible"),
    )


def _mask_secrets(runner: Runner) -> None:
    """Key values (not references such as ``env:NAME``) and the token are masked first."""
    for name in _KEY_INPUTS:
        value = runner.input(name)
        if value and describe_ref(value) != value:
            runner.add_mask(value)
    token = runner.input("github-token")
    if token:
        runner.add_mask(token)


def _command(value: str) -> Command:
    for command in COMMANDS:
        if value == command:
            return command
    shown = f"{value!r}" if value else "empty"
    raise InputError(
        f"the input 'command' is {shown}",
        expected="one of " + ", ".join(COMMANDS),
        fix="set `command:` under `with:`, e.g. `command: publish`",
    )


def _missing(name: str, command: str, what: str) -> InputError:
    return InputError(
        f"`{command}` needs the input '{name}', which is empty",
        expected=what,
        fix=f"set `{name}:` under `with:` in the workflow step",
    )


def _channel(runner: Runner, name: str, *, required_by: str | None = None) -> str | None:
    value = runner.input(name)
    if not value:
        if required_by is not None:
            raise _missing(name, required_by, f"a channel name, e.g. `{name}: beta`")
        return None
    if not NAME_RE.fullmatch(value):
        raise InputError(
            f"the input '{name}' is {value!r}, which is not a channel name",
            expected="lowercase letters, digits, '.', '_' and '-', e.g. beta or production",
            fix=f"set `{name}:` to a channel listed under `channels:` in otaseal.yml",
        )
    return value


def _app_id(value: str) -> str | None:
    if value and not APP_ID_RE.fullmatch(value):
        raise InputError(
            f"the input 'app-id' is {value!r}, which is not an app id",
            expected="letters, digits, '.', '_' and '-', e.g. com.example.shop or com.Example.Shop",
            fix="set `app-id:` to the `app:` of otaseal.yml, or leave it out",
        )
    return value or None


def _patterns(value: str) -> tuple[str, ...]:
    """``allow-file``: one path pattern per line (a YAML block), blank lines ignored."""
    return tuple(line.strip() for line in value.splitlines() if line.strip())


def _delta_from(value: str) -> tuple[tuple[str, ...], bool]:
    """``delta-from``: labels or counters (one per line or comma-separated), or ``none``."""
    refs = tuple(r.strip() for line in value.splitlines() for r in line.split(",") if r.strip())
    if refs == ("none",):
        return (), False
    if "none" in refs:
        raise InputError(
            f"the input 'delta-from' mixes `none` with releases ({', '.join(refs)[:200]})",
            expected="labels or release counters of the channel, or `none` alone",
            fix="write `delta-from: none` to make no patches, or list the releases only",
        )
    for ref in refs:
        check_label(ref)
    return refs, True


def _pull_request(value: str) -> int | None:
    if not value:
        return None
    if not _PR_NUMBER.fullmatch(value.removeprefix("#")):
        raise InputError(
            f"the input 'pull-request' is {value!r}, which is not a pull request number",
            expected="a positive number such as 42",
            fix="pass the number only, e.g. `pull-request: ${{ github.event.number }}`",
        )
    return int(value.removeprefix("#"))


def _rollout(value: str, command: Command) -> tuple[float | None, RolloutMode]:
    """A percentage (publish, promote, rollout), or ``pause`` / ``resume`` (rollout only)."""
    if command == "rollout":
        if value in {"pause", "resume"}:
            return None, "pause" if value == "pause" else "resume"
        if not value:
            raise _missing("rollout", command, "a percentage from 0 to 100, `pause` or `resume`")
    if not value:
        return None, "percent"
    expected = "a percentage from 0 to 100 with at most two decimals, e.g. 10 or 12.5" + (
        ", or `pause` / `resume`" if command == "rollout" else ""
    )
    fix = "set `rollout:` to a number such as 10 (it means 10 % of devices)"
    try:
        percent = float(value.removesuffix("%").strip())
    except ValueError:
        raise InputError(
            f"the input 'rollout' is {value!r}, which is not a number", expected=expected, fix=fix
        ) from None
    if not math.isfinite(percent) or not 0 <= percent <= 100:  # noqa: PLR2004
        raise InputError(
            f"the input 'rollout' is {value!r}, which is outside 0 to 100",
            expected=expected,
            fix=fix,
        )
    if abs(percent * 100 - round(percent * 100)) > 1e-6:  # noqa: PLR2004
        raise InputError(
            f"the input 'rollout' is {value!r}, which has more than two decimals",
            expected=expected,
            fix="round it to two decimals (basis points)",
        )
    return percent, "percent"


def _build_dir(value: str) -> Path:
    if not value:
        raise _missing("build-dir", "publish", "the web build folder, e.g. `build-dir: dist`")
    path = Path(value)
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise InputError(
            f"the input 'build-dir' is {value!r}, which {state} in the workspace",
            expected="the folder your web build writes (dist, www, build), relative to the "
            "workspace",
            fix="build the web app in an earlier step of the same job, and check the path",
        )
    return path
