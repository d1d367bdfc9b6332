"""Errors shown by the Action name its inputs, never the CLI's flags (issue 10)."""

from __future__ import annotations

import pytest

from otaseal.action.wording import for_action
from otaseal.errors import InputError
from otaseal.operations import check_label, percent_to_bp

CASES = {
    "revert --to is the release input": (
        "revert",
        "Name one with `--to LABEL`, or `--to builtin` for the app's own build.",
        "Name one with `release: LABEL`, or `release: builtin` for the app's own build.",
    ),
    "promote --to stays to": (
        "promote",
        "`--from` and `--to` are both beta.",
        "`from:` and `to:` are both beta.",
    ),
    "rollout --percent is the rollout input": (
        "rollout",
        "Pass a value between 0 and 100, e.g. `--percent 10` for 10 % of devices.",
        "Pass a value between 0 and 100, e.g. `rollout: 10` for 10 % of devices.",
    ),
    "pause and resume are rollout values": (
        "rollout",
        "rollout needs exactly one of `--percent`, `--pause` or `--resume`",
        "rollout needs exactly one of `rollout:`, `rollout: pause` or `rollout: resume`",
    ),
    "a CLI command becomes the command input": (
        "promote",
        "Publish to beta first (`otaseal publish DIST --channel beta`) or promote a release "
        "into it (`otaseal promote --from CHANNEL --to beta`).",
        "Publish to beta first (`command: publish` with `build-dir: DIST` and `channel: beta`) "
        "or promote a release into it (`command: promote` with `from: CHANNEL` and `to: beta`).",
    ),
    "bare flags": (
        "publish",
        "Check --store, --s3-endpoint and the AWS configuration.",
        "Check `store:`, `s3-endpoint:` and the AWS configuration.",
    ),
    "pass before an input becomes set": (
        "publish",
        "pass --label with a version",
        "set `label:` with a version",
    ),
    "local commands and flags without an input stay": (
        "publish",
        "Make one with `otaseal keygen --kind capgo`; see `otaseal history --channel beta`; "
        "--native-max 2 is below 3; `otaseal publish DIST --native-max 3`.",
        "Make one with `otaseal keygen --kind capgo`; see `otaseal history --channel beta`; "
        "--native-max 2 is below 3; `otaseal publish DIST --native-max 3`.",
    ),
    "publish's native range and fail-closed overrides": (
        "publish",
        "`--native-min N` above 40; pass `--replace-rollout`, or --accept-incompatible; "
        "see `--project-dir`",
        "`native-min: N` above 40; set `replace-rollout: 'true'`, or "
        "`accept-incompatible: 'true'`; see `project-dir:`",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_flags_become_action_inputs(case: str) -> None:
    command, cli_text, action_text = CASES[case]

    assert for_action(cli_text, command) == action_text


def test_rollout_percent_hint_names_percent_not_rollout() -> None:
    with pytest.raises(InputError) as caught:
        percent_to_bp(150, option="--percent")

    text = caught.value.diagnostics()
    assert "`--percent 10`" in text
    assert "--rollout" not in text
    assert "`rollout: 10`" in for_action(text, "rollout")


def test_label_hint_in_both_interfaces() -> None:
    with pytest.raises(InputError) as caught:
        check_label("1.4.2 beta")

    text = caught.value.diagnostics()
    assert "Pass a version such as `--label 1.4.2`." in text
    assert "Pass a version such as `label: 1.4.2`." in for_action(text, "publish")
