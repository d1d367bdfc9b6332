"""The Action publishes sealed delta patches with its `report-key`, and reports their size."""

from __future__ import annotations

import json
from typing import Any

import test_action
from github_standin import GitHubStandIn
from test_action import Workspace, bot_comments, publish_inputs

from otaseal.operations import read_head

# test_action's fixtures, used here under the same names
ws = test_action.ws
gh = test_action.gh
action = test_action.action


def test_the_second_publish_reports_its_delta_in_outputs_comment_and_summary(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    report = ws.keys["report"]
    first = action("push", **publish_inputs(ws, label="1.4.1", report_key=report))
    assert first.returncode == 0, first.stdout
    assert (first.outputs["delta-bytes"], first.outputs["delta-patches"]) == ("", "[]")
    (ws.root / "web/dist/app.js").write_text("console.log('checkout v2');\n")

    run = action("push", **publish_inputs(ws, label="1.4.2", report_key=report))

    assert run.returncode == 0, run.stdout
    current = read_head(ws.project(), "beta").manifest.current
    assert current is not None
    assert current.delta is not None
    [patch] = json.loads(run.outputs["delta-patches"])
    assert (patch["base_label"], patch["changed"]) == ("1.4.1", 1)
    assert run.outputs["delta-bytes"] == str(patch["bytes"]) == str(current.delta.patches[0].length)
    body = bot_comments(gh)[0]["body"]
    assert "**Update size:** full " in body
    assert "; delta from 1.4.1 " in body
    assert ", 1 file changed" in body
    assert "| Channel | Release | Rollout | Delta |" in run.summary


def test_a_delta_from_a_release_never_on_the_channel_stops_before_anything_is_published(
    ws: Workspace, action: Any
) -> None:
    report = ws.keys["report"]
    action("push", **publish_inputs(ws, label="1.4.1", report_key=report))
    (ws.root / "web/dist/app.js").write_text("console.log('checkout v2');\n")
    before = ws.snapshot()

    run = action("push", **publish_inputs(ws, label="1.4.2", report_key=report, delta_from="9.9"))

    assert run.returncode == 2
    assert ws.snapshot() == before
    [error] = run.annotations("error")
    assert "`delta-from:` '9.9': no release of that label, digest or counter was ever on beta" in (
        error
    )
    assert "leave `delta-from:` out" in error


def test_without_report_key_publish_makes_no_patch_and_says_which_input_is_missing(
    ws: Workspace, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.1"))
    (ws.root / "web/dist/app.js").write_text("console.log('checkout v2');\n")

    run = action("push", **publish_inputs(ws, label="1.4.2"))

    assert run.returncode == 0, run.stdout
    assert run.outputs["delta-patches"] == "[]"
    assert "the Action's `report-key`) is not set" in run.printed
    off = action("push", **publish_inputs(ws, label="1.4.3", delta_from="none"))
    assert off.returncode == 0, off.stdout
    assert off.outputs["delta-patches"] == "[]"
