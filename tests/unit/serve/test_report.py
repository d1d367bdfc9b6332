"""``otaseal stats``: the window it reads and the table and JSON it prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from otaseal.errors import InputError
from otaseal.serve.db import ReleaseCounts
from otaseal.serve.report import iso, text, to_json, window

NOW = datetime(2026, 11, 23, 12, 0, 30, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "back"),
    [
        ("24h", timedelta(hours=24)),
        ("90m", timedelta(minutes=90)),
        ("30s", timedelta(seconds=30)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_since_as_a_duration_back_from_until(since: str, back: timedelta) -> None:
    assert window(since, None, now=NOW) == (NOW - back, NOW)
    until = datetime(2026, 11, 1, tzinfo=UTC)
    assert window(since, "2026-11-01T00:00:00Z", now=NOW) == (until - back, until)


def test_iso_times_without_an_offset_are_utc() -> None:
    start, end = window("2026-11-22", "2026-11-23T06:00:00", now=NOW)
    assert start == datetime(2026, 11, 22, tzinfo=UTC)
    assert end == datetime(2026, 11, 23, 6, tzinfo=UTC)
    start, _ = window("2026-11-22T02:00:00+02:00", None, now=NOW)
    assert start == datetime(2026, 11, 22, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("yesterday", None, "--since 'yesterday' is neither a duration nor an ISO 8601 time"),
        ("24h", "tomorrow", "--until 'tomorrow' is neither a duration nor an ISO 8601 time"),
        ("0h", None, "is empty"),
        ("2026-11-24", "2026-11-23", "is empty"),
        ("-3h", None, "neither a duration"),
    ],
)
def test_bad_windows_are_input_errors(since: str, until: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        window(since, until, now=NOW)
    assert caught.value.exit_code == 2


def test_iso_is_utc_to_the_second() -> None:
    assert iso(NOW) == "2026-11-23T12:00:30Z"
    assert iso(NOW.astimezone(timezone(timedelta(hours=-5)))) == "2026-11-23T12:00:30Z"


COUNTS = [
    ReleaseCounts(
        "com.example.app",
        "production",
        "1.10.0",
        checks=1200,
        downloads=30,
        installs=28,
        failures={"checksum_fail": 1, "download_fail": 2},
        rollbacks=1,
        devices=950,
    ),
    ReleaseCounts("com.example.app", "", "", checks=3, devices=1),
]


def test_json_has_the_window_and_every_counter() -> None:
    doc = to_json(COUNTS, since=NOW - timedelta(days=1), until=NOW, app=None)
    assert doc["since"] == "2026-11-22T12:00:30Z"
    assert doc["until"] == "2026-11-23T12:00:30Z"
    assert doc["app"] is None
    assert doc["releases"] == [
        {
            "app": "com.example.app",
            "channel": "production",
            "version": "1.10.0",
            "checks": 1200,
            "downloads": 30,
            "installs": 28,
            "failures": {"checksum_fail": 1, "download_fail": 2},
            "rollbacks": 1,
            "devices": 950,
        },
        {
            "app": "com.example.app",
            "channel": "",
            "version": "",
            "checks": 3,
            "downloads": 0,
            "installs": 0,
            "failures": {},
            "rollbacks": 0,
            "devices": 1,
        },
    ]


def test_text_is_an_aligned_table() -> None:
    lines = text(COUNTS, since=NOW - timedelta(days=1), until=NOW, app="com.example.app")
    assert lines == [
        "stats from 2026-11-22T12:00:30Z to 2026-11-23T12:00:30Z for com.example.app:",
        "APP              CHANNEL     RELEASE  CHECKS  DOWNLOADS  INSTALLS  ROLLBACKS  DEVICES"
        "  FAILURES",
        "com.example.app  production  1.10.0     1200         30        28          1      950"
        "  checksum_fail=1, download_fail=2",
        "com.example.app  -           -             3          0         0          0        1  -",
    ]


def test_text_without_events_says_so() -> None:
    assert text([], since=NOW - timedelta(hours=1), until=NOW, app=None) == [
        "stats from 2026-11-23T11:00:30Z to 2026-11-23T12:00:30Z: no events"
    ]
