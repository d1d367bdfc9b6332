"""The GitHub Action: inputs → project → command → outputs, job summary, PR comment, deployments.

One function per stage; the stages live beside this file: :mod:`run_context` (what the run is
about), :mod:`command` (the command and its :class:`Outcome`), :mod:`report_data` (what the
report and outputs say, read back with the report key), :mod:`github_steps` (comment and
deployment, best effort). Secret inputs are masked before anything is printed. An otaseal
:class:`~otaseal.errors.Error` up to and during the command ends the run with ``::error::``, the
same text in the job summary and a non-zero exit; because the pointer is written last, devices
keep each channel's current release. After the command, GitHub is best effort: a token that may
not comment or deploy (pull requests from forks, read-only tokens) never fails the step, and the
summary says which permission to add.

The image runs this file as a script (Dockerfile ``ENTRYPOINT``); tests call :func:`main`.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from otaseal.action.command import describe, run_command
from otaseal.action.github_steps import (
    GitHubSteps,
    comment_target,
    escape_html,
    find_pull_request,
    github_section,
    post_comment,
    record_deployment,
)
from otaseal.action.inputs import Inputs, read_inputs
from otaseal.action.report import render_summary
from otaseal.action.report_data import (
    Report,
    build_report,
    outcome_outputs,
    resolve_report_key,
    set_outputs,
)
from otaseal.action.run_context import read_context
from otaseal.action.runner import Runner
from otaseal.action.wording import for_action
from otaseal.config import find_config, load_config
from otaseal.errors import Error, InputError
from otaseal.operations import Project, open_store, status
from otaseal.secrets import describe_ref

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    from otaseal import crypto
    from otaseal.action.command import Outcome
    from otaseal.config import Config

_DASH: Final = "\u2014"
_STOPPED: Final = (
    "otaseal stopped before moving any channel pointer: devices keep the channel's current release."
)


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
    elif inputs.command == "publish":
        verify_capgo_key(config, env)
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
    fallback = _missing_key(config, channel, env)
    if fallback is None:
        return
    name = secret_name(channel)
    raise InputError(
        f"the input 'signing-key' is empty (a secret that is not set reaches the Action "
        f"empty), and {fallback}",
        expected=f"the {channel} channel's private signing key, passed from a secret",
        fix=f"add the secret {name} (the contents of keys/{channel}.pem from `otaseal init`) to "
        f"the repository, or to the environment the job runs in, and pass it as "
        f"`signing-key: ${{{{ secrets.{name} }}}}` under `with:`",
    )


def verify_capgo_key(config: Config, env: Mapping[str, str]) -> None:
    """The same check for ``capgo-key`` when ``formats`` has capgo: name the secret, not a file."""
    if "capgo" not in config.formats:
        return
    fallback = _missing_key(config, "capgo", env)
    if fallback is None:
        return
    raise InputError(
        f"{config.path.name} publishes the capgo format, the input 'capgo-key' is empty (a "
        f"secret that is not set reaches the Action empty), and {fallback}",
        expected="the Capgo RSA private key (keys/capgo.pem from `otaseal keygen --kind capgo`), "
        "passed from a secret",
        fix="add the secret OTASEAL_CAPGO_KEY to the repository (or the job's environment) and "
        "pass it as `capgo-key: ${{ secrets.OTASEAL_CAPGO_KEY }}` under `with:`, or drop capgo "
        "from `formats:`",
    )


def _missing_key(config: Config, name: str, env: Mapping[str, str]) -> str | None:
    """Why otaseal.yml's ``keys.<name>`` cannot work here, or None when it may."""
    ref = config.keys.get(name)
    where = f"keys.{name} in {config.path.name} is {describe_ref(ref or '')}"
    if ref is None:
        return f"{config.path.name} names no key for {name} under `keys:`"
    if ref.startswith("file:"):
        if Path(ref.removeprefix("file:")).exists():
            return None
        return f"{where}, which does not exist here"
    if ref.startswith("env:"):
        if env.get(ref.removeprefix("env:"), "").strip():
            return None
        return f"{where}, which is not set or empty"
    return None  # a KMS, Vault or AWS reference: resolved (and explained) by otaseal.secrets


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
            runner.info(describe(outcome) + ("" if outcome.changed else " (unchanged)"))
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
        runner.append_summary(f"### otaseal {_DASH} {describe(outcome)}\n\n{_fenced(text)}")
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
            + "".join(f"- **{n.level}:** {escape_html(n.message(now))}\n" for n in notes)
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
