"""health/status.py, chart.py and page.py: what ``status --stats`` shows, from values (no I/O)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from otaseal.health import chart, page
from otaseal.health.stats import Evidence
from otaseal.health.status import (
    METHOD,
    StatusHealth,
    age_text,
    status_health,
    text,
    to_json,
)
from otaseal.model import ChannelManifest, Release
from otaseal.serve.db import HourlyDevices, ReleaseCounts

APP = "com.example.app"
UNTIL = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(hours=6)
HOURS = [SINCE + timedelta(hours=n) for n in range(6)]
UTC_DAY = datetime(2026, 11, 21, tzinfo=UTC)


def release(label: str, *, rollout_bp: int = 10_000, paused: bool = False) -> Release:
    return Release(
        label=label,
        counter=1,
        sha256="ab" * 32,
        length=100,
        plaintext_sha256="cd" * 32,
        plaintext_length=90,
        files=3,
        unpacked_size=300,
        published=SINCE,
        rollout_bp=rollout_bp,
        paused=paused,
    )


def manifest(channel: str, *releases: Release, builtin: bool = False) -> ChannelManifest:
    return ChannelManifest(
        app=APP,
        channel=channel,
        version=3,
        issued=SINCE,
        expires=UNTIL + timedelta(days=30),
        releases=releases,
        builtin=builtin,
    )


def report(**kw: object) -> StatusHealth:
    args: dict[str, object] = {
        "app": APP,
        "stats": "/var/lib/otaseal/stats.db",
        "channels": [
            (
                "production",
                manifest("production", release("1.1", rollout_bp=1_000), release("1.0")),
                None,
            ),
            ("beta", manifest("beta", builtin=True), None),
            ("nightly", None, "the manifest signature does not verify"),
        ],
        "counts": [
            ReleaseCounts(
                APP,
                "production",
                "1.1",
                checks=4,
                downloads=50,
                installs=48,
                rollbacks=1,
                devices=52,
                failures={"download_fail": 3, "set_fail": 1},
            ),
            ReleaseCounts(APP, "production", "1.0", checks=300, devices=280),
            ReleaseCounts("com.example.other", "production", "1.1", installs=999),
        ],
        "newest": {
            ("production", "1.1"): UNTIL - timedelta(minutes=3),
            ("production", "1.0"): UNTIL - timedelta(seconds=20),
        },
        "hourly": {
            "production": [
                HourlyDevices(HOURS[0], "1.0", 100),
                HourlyDevices(HOURS[2], "1.0", 90),
                HourlyDevices(HOURS[2], "1.1", 10),
                HourlyDevices(HOURS[3], "1.0", 80),
                HourlyDevices(HOURS[3], "1.1", 20),
                HourlyDevices(HOURS[5], "1.1", 30),
                HourlyDevices(HOURS[5], "1.0", 70),
            ]
        },
        "since": SINCE,
        "until": UNTIL,
    }
    args.update(kw)
    return status_health(**args)  # type: ignore[arg-type]


def test_each_listed_release_gets_its_rollout_counts_and_bound() -> None:
    r = report()
    production = r.channels[0]
    current, previous = production.releases
    assert (current.health.release, current.rollout_percent, current.current) == ("1.1", 10.0, True)
    assert (previous.health.release, previous.rollout_percent, previous.current) == (
        "1.0",
        100.0,
        False,
    )
    h = current.health
    # set_fail names 1.1; download_fail names the release the device runs: shown, not held
    assert (h.installs, h.failures, h.rollbacks, h.trials, h.bad) == (48, 1, 1, 49, 2)
    assert h.rate == pytest.approx(2 / 49)
    assert h.upper == pytest.approx(0.1371, abs=1e-4)
    assert h.evidence is Evidence.OK
    assert previous.health.evidence is Evidence.EMPTY  # checks only: no install attempt
    assert production.newest_age == timedelta(seconds=20)
    assert [p.share for p in production.adoption] == [0.0, None, 0.1, 0.2, None, 0.3]
    assert production.active_devices == 400


def test_text_says_the_method_and_never_shows_missing_stats_as_zero() -> None:
    lines = "\n".join(text(report()))
    assert "failure rate 4.1 % (2 of 49), 95 % upper bound 13.7 % (Wilson)" in lines
    assert "1.1 (current): rollout 10 %" in lines
    assert "1.0: rollout 100 %" in lines
    assert "failures download_fail=3, set_fail=1" in lines
    assert "no failure rate: no install attempt reported" in lines
    assert "Stats empty" in lines
    assert "beta: serves the app's builtin build" in lines
    assert "nightly: manifest unreadable" in lines
    assert "adoption: 30.0 % of 100 devices checking in the hour from 2026-11-23 11:00Z" in lines
    assert "(from 0.0 % at 11-23 06:00Z)" in lines  # a measured 0 % share, not missing data
    assert "failure rate 0.0 %" not in lines  # 1.0 had no install attempt: no rate at all


def test_missing_and_stale_stats_are_said_plainly() -> None:
    empty = report(counts=[], newest={}, hourly={})
    lines = "\n".join(text(empty))
    assert "stats missing: the stats database has no event for this app" in lines
    assert "Stats missing: no device has reported anything about this release" in lines
    assert "adoption: no device checked in during the window" in lines
    assert "failure rate" not in lines.replace("no failure rate", "")
    stale = report(newest={("production", "1.1"): UNTIL - timedelta(hours=7)})
    assert "Stats stale: the newest event is 7 h ago, older than 6 h" in "\n".join(text(stale))


def test_json_has_every_number_and_nulls_where_there_is_no_evidence() -> None:
    doc = to_json(report())
    assert doc["method"] == METHOD
    assert doc["since"] == "2026-11-23T06:00:00Z"
    channels = doc["channels"]
    assert isinstance(channels, dict)
    current, previous = channels["production"]["releases"]
    assert current == {
        "label": "1.1",
        "current": True,
        "rollout": 10.0,
        "paused": False,
        "devices": 52,
        "checks": 4,
        "downloads": 50,
        "installs": 48,
        "install_failures": 1,
        "rollbacks": 1,
        "failures": {"download_fail": 3, "set_fail": 1},
        "trials": 49,
        "failure_rate": pytest.approx(2 / 49),
        "failure_rate_upper": pytest.approx(0.1371, abs=1e-4),
        "newest_event_age_seconds": 180,
        "evidence": "ok",
    }
    assert (previous["failure_rate"], previous["failure_rate_upper"]) == (None, None)
    assert channels["production"]["adoption"][1] == {
        "hour": "2026-11-23T07:00:00Z",
        "devices": 0,
        "active": 0,
        "share": None,
    }
    assert channels["nightly"]["error"] == "the manifest signature does not verify"
    assert channels["beta"]["builtin"] is True


@pytest.mark.parametrize(
    ("age", "words"),
    [
        (None, "never"),
        (timedelta(seconds=59), "59 s ago"),
        (timedelta(minutes=1), "1 min ago"),
        (timedelta(minutes=59, seconds=59), "59 min ago"),
        (timedelta(hours=23), "23 h ago"),
        (timedelta(days=3, hours=5), "3 d ago"),
    ],
)
def test_age_words(age: timedelta | None, words: str) -> None:
    assert age_text(age) == words


# --- Mermaid -------------------------------------------------------------------------------------
# The rules of Mermaid's xychart.jison this block relies on, one regex per statement.
_QUOTED = r'"[^"\n]*"'
_NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"
_STATEMENTS = [
    re.compile(rf"    title {_QUOTED}"),
    re.compile(rf"    x-axis {_QUOTED} \[{_QUOTED}(?:, {_QUOTED})*\]"),
    re.compile(rf"    y-axis {_QUOTED} {_NUMBER} --> {_NUMBER}"),
    re.compile(rf"    line \[{_NUMBER}(?:, {_NUMBER})*\]"),
]


def check_xychart(block: str) -> list[str]:
    """Assert ``block`` is a fenced xychart-beta our grammar rules accept; return its lines."""
    lines = block.split("\n")
    assert lines[0] == "```mermaid"
    assert lines[1] == "xychart-beta"
    assert lines[-1] == "```"
    body = lines[2:-1]
    assert len(body) == len(_STATEMENTS)
    for line, rule in zip(body, _STATEMENTS, strict=True):
        assert rule.fullmatch(line), line
    categories = re.findall(_QUOTED, body[1])[1:]
    values = re.findall(_NUMBER, body[3].removeprefix("    line"))
    assert len(categories) == len(values)  # one value per category
    assert len(set(categories)) == len(categories)  # a band needs distinct labels
    return body


def test_mermaid_charts_the_current_release_over_hours_with_data() -> None:
    block = chart.mermaid(report().channels[0])
    assert block is not None
    body = check_xychart(block)
    assert body == [
        '    title "production: 1.1 on active devices"',
        '    x-axis "hour (UTC)" ["06h", "08h", "09h", "11h"]',
        '    y-axis "devices on 1.1 (%)" 0 --> 100',
        "    line [0.0, 10.0, 20.0, 30.0]",
    ]


def test_mermaid_text_keeps_quotes_and_markup_out() -> None:
    hostile = 'x" ] line [1\n```<script>#quot;'
    assert chart.mermaid_text(hostile) == "x_ _ line _1_____script__quot_"
    assert chart.mermaid_text("a" * 100) == "a" * 37 + "..."
    lab = release('1.1" evil')
    hourly = {"production": [HourlyDevices(HOURS[0], '1.1" evil', 1)]}
    r = report(channels=[("production", manifest("production", lab), None)], hourly=hourly)
    block = chart.mermaid(r.channels[0])
    assert block is not None
    check_xychart(block)


def test_mermaid_labels_stay_distinct_over_more_than_a_day() -> None:
    hours = [UTC_DAY + timedelta(hours=n) for n in range(30)]
    hourly = {"production": [HourlyDevices(h, "1.1", 1) for h in hours]}
    r = report(since=hours[0], until=hours[-1] + timedelta(hours=1), hourly=hourly)
    block = chart.mermaid(r.channels[0], hours=30)
    assert block is not None
    body = check_xychart(block)
    assert '"22 00h"' in body[1]
    assert len(check_xychart(chart.mermaid(r.channels[0]) or "")[1].split(",")) == 24


def test_no_chart_without_data_or_release() -> None:
    r = report(hourly={})
    assert chart.mermaid(r.channels[0]) is None
    assert chart.mermaid(r.channels[1]) is None  # builtin: no release


# --- HTML ----------------------------------------------------------------------------------------
class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_page_is_self_contained_and_escapes_what_devices_and_manifests_say() -> None:
    hostile = report(
        channels=[
            ("production", manifest("production", release("1.1"), release("1.0")), None),
            ("nightly", None, "<img src=https://evil.example/x.png>"),
        ]
    )
    html = page.render(hostile)
    parsed = _Collect()
    parsed.feed(html)
    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    assert "link" not in parsed.tags
    assert not [v for k, v in parsed.attrs if k in {"src", "href"}]
    assert "&lt;img src=https://evil.example/x.png&gt;" in html
    assert "default-src 'none'" in html
    assert parsed.tags.count("svg") == 1  # nightly has no chart
    assert parsed.tags.count("polyline") >= 1
    assert parsed.tags.count("tr") == 3  # header + two releases
    assert "Wilson" in html


def test_svg_breaks_the_line_where_nobody_checked() -> None:
    svg = chart.svg(report().channels[0])
    assert svg.count("<polyline") == 1  # hours 2-3
    assert svg.count("<circle") == 2  # hours 0 and 5 stand alone
    empty = chart.svg(report(hourly={}).channels[0])
    assert "<polyline" not in empty
    assert "no device checked in during the window" in empty
