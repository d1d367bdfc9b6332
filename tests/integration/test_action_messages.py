"""What a person reads in the Action's log, job summary and PR comment must be true (issue 10).

The Action runs as in test_action.py (its fixtures: the runner's environment, a contract-checked
GitHub stand-in); each test asserts the text a person sees, for a case where it was once wrong.
"""

from __future__ import annotations

from typing import Any

import pytest
import test_action
from github_standin import GitHubStandIn
from test_action import Workspace, bot_comments, deployments, mutations, publish_inputs

from otaseal.operations import read_head

# test_action's fixtures, used here under the same names
ws = test_action.ws
gh = test_action.gh
action = test_action.action

PAUSED = "no device moves to it; devices already on it keep it"


def test_paused_rollout_says_paused_in_log_summary_comment_and_deployment(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.2", rollout="20"))

    run = action(
        "workflow_dispatch",
        command="rollout",
        channel="beta",
        rollout="pause",
        signing_key=ws.keys["beta"],
    )

    assert run.returncode == 0, run.stdout
    headline = f"**1.4.2** is paused on **beta** at 20 %: {PAUSED}"
    assert f"1.4.2 on beta at 20 %, paused: {PAUSED}" in run.printed
    assert headline in run.summary
    assert "| **beta** | 1.4.2 | 20 % (paused) |" in run.summary
    assert "rolling out" not in run.summary
    [comment] = bot_comments(gh)
    assert headline in comment["body"]
    assert "rolling out" not in comment["body"]
    assert deployments(gh)[-1]["description"] == f"1.4.2 on beta at 20 %, paused: {PAUSED}"

    status = action("workflow_dispatch", command="status", channel="beta")
    assert f"**1.4.2** is paused on **beta** at 20 %: {PAUSED}" in status.summary

    resumed = action(
        "workflow_dispatch",
        command="rollout",
        channel="beta",
        rollout="resume",
        signing_key=ws.keys["beta"],
    )
    assert "**1.4.2** is rolling out on **beta** (20 %)" in resumed.summary
    assert "paused" not in resumed.summary


@pytest.mark.parametrize("channel", ["beta", "production"])
def test_empty_signing_key_names_the_input_and_the_secret(
    channel: str, ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    if channel == "production":
        action("push", **publish_inputs(ws))
        inputs = {"command": "promote", "from": "beta", "to": "production"}
    else:
        inputs = publish_inputs(ws)
    before = ws.snapshot()
    secret = f"OTASEAL_{channel.upper()}_KEY"

    run = action("workflow_dispatch", **{**inputs, "signing_key": ""})

    assert run.returncode == 2, run.stdout
    [error] = run.annotations("error")
    assert error.startswith("the input 'signing-key' is empty")
    assert f"keys.{channel} in otaseal.yml is file:" in error
    assert f"Add the secret {secret}" in error
    assert f"`signing-key: ${{{{ secrets.{secret} }}}}`" in error
    assert "not readable" not in error
    assert error in run.summary
    assert ws.snapshot() == before


def test_failure_before_the_command_is_known_is_titled_once(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    run = action("push", **publish_inputs(ws, command="deploy"))

    assert run.returncode == 2
    assert run.summary.startswith("### otaseal failed\n")
    assert "otaseal otaseal" not in run.summary
    assert "otaseal otaseal" not in run.printed
    assert [c.properties.get("title") for c in run.commands if c.name == "error"] == [
        "otaseal failed"
    ]


def test_empty_channel_has_no_release_and_no_bundle_facts(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    run = action("workflow_dispatch", command="status", channel="production")

    assert run.returncode == 0, run.stdout
    assert "**production** has no release yet" in run.summary
    assert "- **Bundle:** none yet: devices on this channel run the web build shipped" in (
        run.summary
    )
    assert "no release\\" not in run.summary
    assert "0 B" not in run.summary
    assert "0 files" not in run.summary
    assert "production has no release yet" in run.printed


def test_revert_to_builtin_shows_no_empty_bundle(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.2"))

    run = action(
        "workflow_dispatch",
        command="revert",
        channel="beta",
        release="builtin",
        signing_key=ws.keys["beta"],
    )

    assert run.returncode == 0, run.stdout
    assert "**beta** was reverted to the app's builtin build" in run.summary
    assert "- **Bundle:** none: devices run the web build shipped inside the app" in run.summary
    assert "0 B" not in run.summary


def test_republishing_the_same_build_reports_no_change_against_itself(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.2"))

    again = action("push", **publish_inputs(ws, label="1.4.2"))

    assert again.returncode == 0
    assert "Change since 1.4.2" not in again.summary
    assert "- **Previous release:** none on this channel" in again.summary
    [comment] = bot_comments(gh)
    assert "Change since 1.4.2" not in comment["body"]


def test_republishing_the_same_build_compares_with_the_release_before(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.1"))
    (ws.root / "web" / "dist" / "app.js").write_text("console.log('checkout v2');\n")
    action("push", **publish_inputs(ws, label="1.4.2"))

    again = action("push", **publish_inputs(ws, label="1.4.2"))

    assert "- **Change since 1.4.1:**" in again.summary
    assert "Change since 1.4.2" not in again.summary


def test_a_false_positive_secret_file_ships_with_the_allow_file_input(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    (ws.root / "web" / "dist" / "assets" / "demo.pem").write_text("not a key, a test fixture\n")
    before = ws.snapshot()

    refused = action("push", **publish_inputs(ws))
    assert refused.returncode == 2
    [error] = refused.annotations("error")
    assert "assets/demo.pem" in error
    assert "add a pattern matching its path to `allow:` in otaseal.yml or set " in error
    assert "`allow-file: PATTERN`" in error
    assert ws.snapshot() == before

    run = action("push", **publish_inputs(ws, allow_file="assets/*.txt\nassets/demo.pem\n"))

    assert run.returncode == 0, run.stdout
    assert read_head(ws.project(), "beta").manifest.current.files == 4


def test_a_false_positive_secret_file_ships_with_allow_in_otaseal_yml(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    (ws.root / "web" / "dist" / "assets" / "demo.pem").write_text("not a key, a test fixture\n")
    config = ws.root / "otaseal.yml"
    config.write_text(config.read_text() + "allow:\n  - assets/demo.pem\n")

    run = action("push", **publish_inputs(ws))

    assert run.returncode == 0, run.stdout


def test_hints_name_the_action_inputs_not_cli_flags(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    promote = action(
        "workflow_dispatch",
        command="promote",
        signing_key=ws.keys["production"],
        **{"from": "beta", "to": "production"},
    )
    action("push", **publish_inputs(ws, label="1.4.2"))
    revert = action(
        "workflow_dispatch", command="revert", channel="beta", signing_key=ws.keys["beta"]
    )

    [error] = promote.annotations("error")
    assert "(`command: publish` with `build-dir: DIST` and `channel: beta`)" in error
    [error] = revert.annotations("error")
    assert "Name one with `release: LABEL`, or `release: builtin`" in error
    for run in (promote, revert):
        assert "--to" not in run.summary
        assert "otaseal publish" not in run.summary


def test_a_label_reused_for_another_build_is_refused(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.2"))
    (ws.root / "web" / "dist" / "app.js").write_text("console.log('checkout v2');\n")
    before = ws.snapshot()
    writes = len(mutations(gh))

    run = action("push", **publish_inputs(ws, label="1.4.2"))

    assert run.returncode == 2, run.stdout
    [error] = run.annotations("error")
    assert error.startswith("label '1.4.2' already names another build on beta (1.4.2 (")
    assert "`label: 1.4.2+<commit>`" in error
    assert ws.snapshot() == before
    assert len(mutations(gh)) == writes
