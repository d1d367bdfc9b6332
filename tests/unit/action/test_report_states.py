"""Comment and summary of a paused rollout, an empty channel and the builtin build (issue 10)."""

from __future__ import annotations

import dataclasses

import pytest

from otaseal.action.report import ChannelRow, Stage, render_comment, render_summary
from tests.unit.action.test_report import DIGEST, make

PAUSED = "no device moves to it; devices already on it keep it"


def paused(stage: Stage) -> str:
    rows = (ChannelRow("beta", "1.4.2", DIGEST, 20.0, 3, None, paused=True),)
    return render_comment(make(stage=stage, channels=rows))


@pytest.mark.parametrize(
    ("stage", "headline"),
    [
        ("rollout", "**1.4.2** is paused on **beta** at 20 %"),
        ("status", "**1.4.2** is paused on **beta** at 20 %"),
        ("published", "**1.4.2** is on **beta** at 20 %, paused"),
        ("promoted", "**1.4.2** was promoted to **beta** at 20 %, paused"),
        ("reverted", "**beta** was reverted to **1.4.2** at 20 %, paused"),
        ("resigned", "**beta** was re-signed; **1.4.2** is still current and paused at 20 %"),
    ],
)
def test_a_paused_release_is_never_rolling_out(stage: Stage, headline: str) -> None:
    text = paused(stage)

    assert f"\n{headline}: {PAUSED}\n" in text
    assert "rolling out" not in text
    assert "| **beta** | 1.4.2 | 20 % (paused) |" in text


def test_an_empty_channel_has_no_release_and_no_zero_byte_bundle() -> None:
    report = make(
        stage="status",
        label="",
        digest="",
        size=0,
        files=0,
        previous_label=None,
        size_delta=None,
        added=None,
        removed=None,
        changed=None,
        signer_keyids=(),
        formats=(),
        channels=(ChannelRow("beta", None, None, None, None, None),),
    )

    for text in (render_comment(report), render_summary(report)):
        assert "\n**beta** has no release yet\n" in text
        assert "- **Bundle:** none yet: devices on this channel run the web build" in text
        assert "no release\\" not in text
        assert "(no label)" not in text
        assert "0 B" not in text
        assert "0 files" not in text
        assert "Signed by" not in text


@pytest.mark.parametrize(
    ("stage", "headline"),
    [
        ("reverted", "**beta** was reverted to the app's builtin build"),
        ("status", "**beta** serves the app's builtin build"),
        ("resigned", "**beta** was re-signed; it still serves the app's builtin build"),
    ],
)
def test_the_builtin_build_is_named_not_shown_as_an_empty_bundle(
    stage: Stage, headline: str
) -> None:
    report = dataclasses.replace(
        make(stage=stage, label="builtin", digest="", size=0, files=0), builtin=True
    )

    text = render_summary(report)

    assert f"\n{headline}\n" in text
    assert "- **Bundle:** none: devices run the web build shipped inside the app" in text
    assert "0 B" not in text
