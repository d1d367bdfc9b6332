"""``rollout_plans:`` in otaseal.yml: what a plan accepts; one paragraph (exit 2) for the rest."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from otaseal.cli import main
from otaseal.config import load_config
from otaseal.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

BASE = "app: com.example.app\nchannels: [beta, production]\nkeys: {beta: file:k}\n"
BASE += "recipients: [file:r]\n"
GOOD = (
    "rollout_plans:\n  production:\n    steps: [1, 10, 50, 100]\n    min_hours_per_step: 24\n"
    "    min_installs: 200\n    max_failure_rate: {rate}\n"
)


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "otaseal.yml"
    path.write_text(BASE + text)
    return load_config(path)


def plan_text(**fields: object) -> str:
    doc = {
        "steps": "[1, 10, 50, 100]",
        "min_hours_per_step": 24,
        "min_installs": 200,
        "max_failure_rate": "2%",
    } | fields
    lines = "".join(f"    {k}: {v}\n" for k, v in doc.items() if v is not None)
    return "rollout_plans:\n  production:\n" + lines


def test_the_issue_example_parses(tmp_path: Path) -> None:
    config = load(tmp_path, plan_text(on_breach="pause"))
    plan = config.rollout_plans["production"]  # type: ignore[attr-defined]
    assert plan.steps == (100, 1000, 5000, 10000)
    assert plan.min_hours_per_step == 24
    assert plan.min_installs == 200
    assert plan.max_failure_rate == pytest.approx(0.02)
    assert plan.on_breach == "pause"
    assert plan.max_stats_age == timedelta(hours=6)  # status's --stale-after default
    assert plan.next_step(100) == 1000
    assert plan.next_step(2500) == 5000
    assert plan.next_step(10000) is None


@pytest.mark.parametrize(
    ("rate", "expected"), [("2%", 0.02), ("2.5 %", 0.025), ("0.02", 0.02), ("0.5%", 0.005)]
)
def test_rates(tmp_path: Path, rate: str, expected: float) -> None:
    config = load(tmp_path, plan_text(max_failure_rate=rate))
    plan = config.rollout_plans["production"]  # type: ignore[attr-defined]
    assert plan.max_failure_rate == pytest.approx(expected)


@pytest.mark.parametrize(
    ("age", "expected"),
    [("6", timedelta(hours=6)), ("30m", timedelta(minutes=30)), ("2d", timedelta(days=2))],
)
def test_max_stats_age(tmp_path: Path, age: str, expected: timedelta) -> None:
    config = load(tmp_path, plan_text(max_stats_age=age, on_breach="revert"))
    plan = config.rollout_plans["production"]  # type: ignore[attr-defined]
    assert plan.max_stats_age == expected
    assert plan.on_breach == "revert"


def test_no_plans_is_fine(tmp_path: Path) -> None:
    assert load(tmp_path, "").rollout_plans == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (plan_text(steps="[10, 1, 100]"), "do not increase"),
        (plan_text(steps="[10, 10, 100]"), "do not increase"),
        (plan_text(steps="[0, 10, 100]"), "outside 0–100"),
        (plan_text(steps="[10, 150]"), "outside 0–100"),
        (plan_text(steps="[-5, 100]"), "outside 0–100"),
        (plan_text(steps="[10, 50]"), "stop before 100"),
        (plan_text(steps="[]"), "steps is"),
        (plan_text(steps="ten"), "steps is"),
        (plan_text(steps="[1.234, 100]"), "two decimals"),
        (plan_text(steps="[true, 100]"), "outside 0–100"),
        (plan_text(max_failure_rate="2"), "not a rate"),
        (plan_text(max_failure_rate="1.0"), "not a rate"),
        (plan_text(max_failure_rate="0"), "not a rate"),
        (plan_text(max_failure_rate="120%"), "not a rate"),
        (plan_text(max_failure_rate="two%"), "not a rate"),
        (plan_text(max_failure_rate="high"), "not a rate"),
        (plan_text(max_failure_rate="0%"), "not a rate"),
        (plan_text(min_installs="0"), "min_installs"),
        (plan_text(min_installs="2.5"), "min_installs"),
        (plan_text(min_hours_per_step="-1"), "min_hours_per_step"),
        (plan_text(min_hours_per_step="soon"), "min_hours_per_step"),
        (plan_text(on_breach="panic"), "on_breach"),
        (plan_text(max_stats_age="soon"), "max_stats_age"),
        (plan_text(max_stats_age="0"), "max_stats_age"),
        (plan_text(min_installs=None), "missing min_installs"),
        (plan_text(surprise=1), "unknown field"),
        ("rollout_plans:\n  staging:\n    steps: [100]\n", "no channel 'staging'"),
        ("rollout_plans: [production]\n", "not a mapping"),
        ("rollout_plans:\n  production: 5\n", "not a mapping"),
    ],
)
def test_bad_plans_are_one_paragraph(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load(tmp_path, text)
    text_out = info.value.diagnostics()
    assert "rollout_plans" in text_out
    assert "\n" not in text_out


def test_a_bad_plan_exits_2_before_anything_is_signed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "otaseal.yml"
    path.write_text(BASE + plan_text(max_failure_rate="2"))
    assert main(["guard", "--channel", "production", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("otaseal: error:") == 1
    assert "Traceback" not in err
