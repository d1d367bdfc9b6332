"""``otaseal stats``: the time window it reads and how it prints counts (pure; the CLI does I/O).

``--since`` is a duration back from now (``90m``, ``24h``, ``7d``, ``2w``) or an ISO 8601 time;
``--until`` an ISO 8601 time (default now). Times without an offset are UTC.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from otaseal.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from otaseal.serve.db import ReleaseCounts

_DURATION = re.compile(r"(\d{1,6})([smhdw])")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_COLUMNS = ("APP", "CHANNEL", "RELEASE", "CHECKS", "DOWNLOADS", "INSTALLS", "ROLLBACKS", "DEVICES")


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{option} {text!r} is neither a duration nor an ISO 8601 time",
            expected="e.g. 24h, 7d, 2026-11-23 or 2026-11-23T12:00:00Z",
            fix=f"pass {option} in one of those forms",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def duration(text: str) -> timedelta | None:
    """``90m``, ``24h``, ``7d``, ``2w`` (or seconds, ``30s``) as a timedelta; None if not one."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        return None
    return timedelta(**{_UNIT[match.group(2)]: int(match.group(1))})


def window(since: str, until: str | None, *, now: datetime) -> tuple[datetime, datetime]:
    """``[since, until)`` from the options; an empty or reversed window is an input error."""
    end = _moment(until, "--until") if until else now
    back = duration(since)
    start = end - back if back is not None else _moment(since, "--since")
    if start >= end:
        raise InputError(
            f"the window from {iso(start)} to {iso(end)} is empty",
            expected="--since before --until",
            fix="pass an earlier --since or a later --until",
        )
    return start, end


def iso(moment: datetime) -> str:
    """UTC, to the second, with ``Z``."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def to_json(
    counts: Sequence[ReleaseCounts], *, since: datetime, until: datetime, app: str | None
) -> dict[str, object]:
    """The ``--json`` document."""
    return {
        "since": iso(since),
        "until": iso(until),
        "app": app,
        "releases": [asdict(c) for c in counts],
    }


def text(
    counts: Sequence[ReleaseCounts], *, since: datetime, until: datetime, app: str | None
) -> list[str]:
    """A table for people: one row per app, channel and release, failures by action last."""
    head = f"stats from {iso(since)} to {iso(until)}" + (f" for {app}" if app else "")
    if not counts:
        return [head + ": no events"]
    rows = [
        (
            c.app,
            c.channel or "-",
            c.version or "-",
            str(c.checks),
            str(c.downloads),
            str(c.installs),
            str(c.rollbacks),
            str(c.devices),
            ", ".join(f"{action}={n}" for action, n in c.failures.items()) or "-",
        )
        for c in counts
    ]
    header = (*_COLUMNS, "FAILURES")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(_COLUMNS))]
    lines = [head + ":"]
    for r in [header, *rows]:
        cells = [
            cell.ljust(w) if i < 3 else cell.rjust(w)  # noqa: PLR2004 - names left, numbers right
            for i, (cell, w) in enumerate(zip(r, widths, strict=False))
        ]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return lines
