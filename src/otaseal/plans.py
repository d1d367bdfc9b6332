"""``rollout_plans:`` in otaseal.yml: the staged rollout ``otaseal guard`` drives per channel.

Parsed strictly, because a plan that reads differently from what its author meant moves real
devices: steps strictly increase and end at 100, a failure rate is written as a rate (``2%`` or
``0.02``, never a bare ``2``), and every problem is one :class:`~otaseal.errors.ConfigError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, TypeGuard

from otaseal.errors import ConfigError
from otaseal.health.stats import DEFAULT_STALE_AFTER

if TYPE_CHECKING:
    from pathlib import Path

OnBreach = Literal["pause", "revert"]
DEFAULT_MAX_STATS_AGE = DEFAULT_STALE_AFTER  # what status calls stale: one meaning of the word
_PLAN_FIELDS = frozenset(
    {
        "steps",
        "min_hours_per_step",
        "min_installs",
        "max_failure_rate",
        "on_breach",
        "max_stats_age",
    }
)
_EXAMPLE = (
    "rollout_plans: {production: {steps: [1, 10, 50, 100], min_hours_per_step: 24, "
    "min_installs: 200, max_failure_rate: 2%, on_breach: pause}}"
)
_AGE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([mhd])")
_AGE_UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    """One channel's staged rollout: the steps, what each must show, and what a breach does."""

    channel: str
    steps: tuple[int, ...]  # basis points, strictly increasing, the last 10000
    min_hours_per_step: float
    min_installs: int
    max_failure_rate: float  # 0 < rate < 1
    on_breach: OnBreach = "pause"
    max_stats_age: timedelta = DEFAULT_MAX_STATS_AGE

    def next_step(self, basis_points: int) -> int | None:
        """The first step above ``basis_points``; None at 100 %."""
        return next((step for step in self.steps if step > basis_points), None)


def _bad(path: Path, channel: str, what: str, expected: str) -> ConfigError:
    return ConfigError(
        f"{path}: rollout_plans.{channel}: {what}",
        expected=expected,
        fix=f"edit {path.name}; a complete plan reads {_EXAMPLE}",
    )


def parse_rollout_plans(
    path: Path, doc: object, channels: tuple[str, ...]
) -> dict[str, RolloutPlan]:
    """Validate ``rollout_plans`` (absent = no plans); each plan names a configured channel."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{path}: `rollout_plans` is not a mapping of channel to plan",
            expected=_EXAMPLE,
            fix=f"edit {path.name} (see README, 'Staged rollouts')",
        )
    plans = {}
    for channel, plan in doc.items():
        name = str(channel)
        if name not in channels:
            raise _bad(
                path,
                name,
                f"there is no channel {name!r}",
                "a plan for one of `channels`: " + ", ".join(channels),
            )
        plans[name] = _plan(path, name, plan)
    return plans


def _plan(path: Path, channel: str, doc: object) -> RolloutPlan:
    if not isinstance(doc, dict):
        raise _bad(path, channel, "is not a mapping", "steps, min_hours_per_step, ... as below")
    unknown = sorted(map(str, set(doc) - _PLAN_FIELDS))
    missing = sorted({"steps", "min_hours_per_step", "min_installs", "max_failure_rate"} - set(doc))
    if unknown or missing:
        what = f"unknown field(s) {', '.join(unknown)}" if unknown else ""
        what += "; " if unknown and missing else ""
        what += f"missing {', '.join(missing)}" if missing else ""
        raise _bad(path, channel, what, "only " + ", ".join(sorted(_PLAN_FIELDS)))
    hours = doc["min_hours_per_step"]
    if not _is_number(hours) or not 0 <= hours <= 24 * 366:
        raise _bad(path, channel, f"min_hours_per_step is {hours!r}", "a number of hours, e.g. 24")
    installs = doc["min_installs"]
    if not isinstance(installs, int) or isinstance(installs, bool) or installs < 1:
        raise _bad(path, channel, f"min_installs is {installs!r}", "a whole number of at least 1")
    on_breach = doc.get("on_breach", "pause")
    if on_breach not in ("pause", "revert"):
        raise _bad(path, channel, f"on_breach is {on_breach!r}", "pause or revert")
    return RolloutPlan(
        channel=channel,
        steps=_steps(path, channel, doc["steps"]),
        min_hours_per_step=float(hours),
        min_installs=installs,
        max_failure_rate=_rate(path, channel, doc["max_failure_rate"]),
        on_breach=on_breach,
        max_stats_age=_age(path, channel, doc.get("max_stats_age")),
    )


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _steps(path: Path, channel: str, value: object) -> tuple[int, ...]:
    expected = "percentages above 0 and up to 100 that strictly increase and end at 100, e.g. "
    expected += "[1, 10, 50, 100]"
    if not isinstance(value, list) or not value:
        raise _bad(path, channel, f"steps is {value!r}", expected)
    out: list[int] = []
    for step in value:
        if not _is_number(step) or not 0 < step <= 100:  # noqa: PLR2004 - percent
            raise _bad(path, channel, f"the step {step!r} is outside 0–100", expected)
        basis_points = round(step * 100)
        if abs(basis_points - step * 100) > 1e-6:  # noqa: PLR2004 - float noise
            raise _bad(path, channel, f"the step {step!r} has more than two decimals", expected)
        if out and basis_points <= out[-1]:
            raise _bad(
                path,
                channel,
                f"the steps {value!r} do not increase ({step:g} after {out[-1] / 100:g})",
                expected,
            )
        out.append(basis_points)
    if out[-1] != 10_000:  # noqa: PLR2004 - 100 % in basis points
        raise _bad(path, channel, f"the steps {value!r} stop before 100", expected)
    return tuple(out)


def _rate(path: Path, channel: str, value: object) -> float:
    """``2%``, ``2.5 %`` or ``0.02``; a bare ``2`` is refused (2 % or 200 %?)."""
    expected = "a rate: a percentage with its sign, like 2%, or a fraction below 1, like 0.02"
    rate: float | None = None
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            rate = float(value.strip().removesuffix("%").strip()) / 100
        except ValueError:
            rate = None
    elif isinstance(value, float) and not isinstance(value, bool):
        rate = value
    if rate is None or not math.isfinite(rate) or not 0 < rate < 1:
        raise _bad(path, channel, f"max_failure_rate {value!r} is not a rate", expected)
    return rate


def _age(path: Path, channel: str, value: object) -> timedelta:
    """Hours as a number, or ``30m``, ``6h``, ``2d``; absent means status's 6 hours."""
    expected = "a number of hours, or a duration like 30m, 6h or 2d"
    if value is None:
        return DEFAULT_MAX_STATS_AGE
    seconds: float | None = None
    if _is_number(value):
        seconds = float(value) * 3600
    elif isinstance(value, str) and (match := _AGE_RE.fullmatch(value.strip())):
        seconds = float(match[1]) * _AGE_UNITS[match[2]]
    if seconds is None or seconds <= 0:
        raise _bad(path, channel, f"max_stats_age is {value!r}", expected)
    return timedelta(seconds=seconds)
