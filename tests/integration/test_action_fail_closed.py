"""Fail-closed publishing through the Action: refusals fail the step with nothing written.

The Action runs as in test_action.py (its fixtures: the runner's environment, a contract-checked
GitHub stand-in); ``replace-rollout`` and ``accept-incompatible`` are the overrides,
``native-min`` the way forward after a native change.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import test_action
from github_standin import GitHubStandIn
from test_action import Workspace, mutations, publish_inputs

# test_action's fixtures, used here under the same names
ws = test_action.ws
gh = test_action.gh
action = test_action.action


def _change_build(ws: Workspace, text: str) -> None:
    (ws.root / "web" / "dist" / "app.js").write_text(f"console.log('{text}');\n")


def _package(ws: Workspace, android: str) -> None:
    deps = {"@capacitor/core": "6.1.0", "@capacitor/android": android, "react": "18.3.1"}
    (ws.root / "web" / "package.json").write_text(json.dumps({"dependencies": deps}))


def _refused(ws: Workspace, gh: GitHubStandIn, action: Any, text: str, **inputs: str) -> str:
    before, sent = ws.snapshot(), len(mutations(gh))
    run = action("push", **publish_inputs(ws, **inputs))
    assert run.returncode == 2, run.stdout
    [error] = run.annotations("error")
    assert text in error
    assert text in run.summary
    assert ws.snapshot() == before
    assert len(mutations(gh)) == sent
    assert run.outputs == {}
    return error


def test_staged_rollout_fails_the_step_until_replace_rollout(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    assert action("push", **publish_inputs(ws, label="1.4.2", rollout="10")).returncode == 0
    _change_build(ws, "v2")
    error = _refused(ws, gh, action, "staged rollout", label="1.4.3")
    assert "set `replace-rollout: 'true'` to replace it" in error
    assert "`command: rollout` with `channel: beta` and `rollout: 100`" in error
    assert "--" not in error
    run = action("push", **publish_inputs(ws, label="1.4.3", replace_rollout="true"))
    assert run.returncode == 0, run.stdout
    assert "replaced the staged rollout of 1.4.2" in run.printed
    assert run.outputs["rollout"] == "100"


def test_the_same_build_on_a_staged_rollout_is_a_noop(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    first = action("push", **publish_inputs(ws, label="1.4.2", rollout="10"))
    again = action("push", **publish_inputs(ws, label="1.4.2"))
    assert again.returncode == 0, again.stdout
    assert "nothing published" in again.printed
    assert again.outputs["manifest-version"] == first.outputs["manifest-version"]


def test_native_change_fails_the_step_until_native_min_or_accept(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    _package(ws, "6.1.0")
    assert action("push", **publish_inputs(ws, label="1.4.2", native_min="40")).returncode == 0
    _package(ws, "7.0.0")
    _change_build(ws, "v2")
    error = _refused(ws, gh, action, "native layer changed", label="1.4.3")
    assert "@capacitor/android 6.1.0 → 7.0.0" in error
    assert "set `accept-incompatible: 'true'`" in error
    assert "`native-min: N` above the current release's (40)" in error
    assert "--" not in error  # the Action's inputs, not the CLI's flags
    _refused(ws, gh, action, "native layer changed", label="1.4.3", native_min="40")
    run = action("push", **publish_inputs(ws, label="1.4.3", native_min="41"))
    assert run.returncode == 0, run.stdout
    head = test_action.read_head(ws.project(), "beta").manifest
    assert head is not None
    assert head.current is not None
    assert head.current.native_min == 41
    _package(ws, "7.0.1")
    _change_build(ws, "v3")
    run = action("push", **publish_inputs(ws, label="1.4.4", accept_incompatible="true"))
    assert run.returncode == 0, run.stdout
    assert "accepted with `accept-incompatible: 'true'`" in run.printed
    assert "--" not in run.printed.split("accepted with")[1].split("\n")[0]


def test_project_dir_input(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    app = ws.root / "app"
    app.mkdir()
    (app / "package.json").write_text('{"dependencies": {"@capacitor/ios": "6.0.0"}}')
    run = action("push", **publish_inputs(ws, label="1.4.2", project_dir="app"))
    assert run.returncode == 0, run.stdout
    head = test_action.read_head(ws.project(), "beta").manifest
    assert head is not None
    assert head.current is not None
    assert dict(head.current.native_packages or ()) == {"@capacitor/ios": "6.0.0"}


@pytest.mark.parametrize(
    ("inputs", "text"),
    [
        ({"native_min": "forty"}, "the input 'native-min' is 'forty'"),
        ({"native_min": "-1"}, "the input 'native-min' is '-1'"),
        ({"project_dir": "no/such/folder"}, "the input 'project-dir' is 'no/such/folder'"),
        ({"replace_rollout": "yes"}, "the input 'replace-rollout' is 'yes'"),
        ({"accept_incompatible": "1"}, "the input 'accept-incompatible' is '1'"),
    ],
)
def test_bad_fail_closed_inputs(
    inputs: dict[str, str], text: str, ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    _refused(ws, gh, action, text, **inputs)


def test_publish_inputs_are_unused_by_other_commands(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.2"))
    run = action(
        "workflow_dispatch",
        command="resign",
        channel="beta",
        signing_key=ws.keys["beta"],
        replace_rollout="true",
    )
    assert run.returncode == 0, run.stdout
    assert any("'replace-rollout' is not used by `resign`" in w for w in run.annotations("warning"))
