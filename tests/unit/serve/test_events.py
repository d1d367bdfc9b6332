"""The stored form of a device report: its key, when it happened, the release it counts for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from otaseal.serve.db import StatsEvent
from otaseal.serve.events import (
    MAX_LATE_MS,
    RecentKeys,
    Row,
    event_id,
    keyed,
    occurred_ms,
    release_of,
    row,
    text,
    to_ms,
)

DEVICE = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
T = 1_795_435_200_000  # 2026-11-23T12:00Z, a minute boundary
FIELDS = {
    "app": "com.example.app",
    "device_id": DEVICE,
    "action": "set",
    "version_name": "1.1",
    "old_version_name": "1.0",
}


def test_event_id_is_stable_and_short() -> None:
    key = event_id(**FIELDS, timestamp_ms=T, received_ms=T + 5)
    assert key == event_id(**FIELDS, timestamp_ms=T, received_ms=T + 86_400_000)
    assert len(key) == 32
    assert int(key, 16) >= 0


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_event_id_changes_with_every_device_field(field: str) -> None:
    changed = {**FIELDS, field: FIELDS[field] + "x"}
    assert event_id(**FIELDS, timestamp_ms=T, received_ms=T) != event_id(
        **changed, timestamp_ms=T, received_ms=T
    )


def test_event_id_fields_cannot_run_into_each_other() -> None:
    a = {**FIELDS, "version_name": "1.1", "old_version_name": "0"}
    b = {**FIELDS, "version_name": "1.", "old_version_name": "10"}
    assert event_id(**a, timestamp_ms=T, received_ms=T) != event_id(
        **b, timestamp_ms=T, received_ms=T
    )


def test_event_id_without_timestamp_is_the_receive_minute() -> None:
    first = event_id(**FIELDS, timestamp_ms=None, received_ms=T)
    assert first == event_id(**FIELDS, timestamp_ms=None, received_ms=T + 59_999)
    assert first != event_id(**FIELDS, timestamp_ms=None, received_ms=T + 60_000)
    # a device timestamp that happens to equal the minute is not the same key
    assert first != event_id(**FIELDS, timestamp_ms=T // 60_000, received_ms=T)


@pytest.mark.parametrize(
    ("timestamp", "received", "expected"),
    [
        (None, T, T),
        (T - 1_000, T, T - 1_000),
        (T, T, T),
        (T + 1, T, T),  # device clock ahead of the server
        (T - MAX_LATE_MS, T, T - MAX_LATE_MS),
        (T - MAX_LATE_MS - 1, T, T),  # implausibly late
        (0, T, T),
    ],
)
def test_occurred_ms(timestamp: int | None, received: int, expected: int) -> None:
    assert occurred_ms(timestamp, received) == expected


@pytest.mark.parametrize(
    ("action", "version_name", "release"),
    [
        ("set", "1.1", "1.1"),
        ("download_manifest_file_fail", "1.1:assets/app.js", "1.1"),
        ("download_manifest_checksum_fail", "1.1:a:b.js", "1.1"),
        ("download_manifest_brotli_fail", "1.1", "1.1"),
        ("manifest_path_fail", "2.0:../x", "2.0"),
        ("set", "odd:name", "odd:name"),  # only manifest failures carry ":file"
    ],
)
def test_release_of(action: str, version_name: str, release: str) -> None:
    assert release_of(action, version_name) == release


def test_keyed_fills_receive_time_and_key_only_when_missing() -> None:
    bare = StatsEvent("com.example.app", DEVICE, "check", "1.0")
    filled = keyed(bare, now_ms=T)
    assert filled.received_ms == T
    assert filled.event_id == event_id(
        app="com.example.app",
        device_id=DEVICE,
        action="check",
        version_name="1.0",
        old_version_name="",
        timestamp_ms=None,
        received_ms=T,
    )
    given = StatsEvent("com.example.app", DEVICE, "check", "1.0", received_ms=5, event_id="k")
    assert keyed(given, now_ms=T) is given
    no_time = StatsEvent("com.example.app", DEVICE, "check", "1.0", event_id="k")
    assert keyed(no_time, now_ms=T).event_id == "k"
    assert keyed(no_time, now_ms=T).received_ms == T


def test_row_is_in_schema_order() -> None:
    event = StatsEvent(
        app="com.example.app",
        device_id=DEVICE,
        action="download_manifest_file_fail",
        version_name="1.1:app.js",
        old_version_name="",
        platform="ios",
        channel="beta",
        version_build="1.0.0",
        timestamp_ms=T - 10,
        received_ms=T,
        event_id="k",
    )
    assert row(event, now_ms=0) == (
        "k",
        "com.example.app",
        DEVICE,
        "download_manifest_file_fail",
        "1.1:app.js",
        "1.1",
        "",
        "ios",
        "beta",
        "1.0.0",
        T - 10,
        T,
        T - 10,
    )


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("1.1", "1.1"),
        ("é 🚀", "é 🚀"),
        ("a\x00b", "a\ufffdb"),
        ("x\ud800y\udfff", "x\ufffdy\ufffd"),
    ],
)
def test_text_is_storable_by_both_databases(value: str, stored: str) -> None:
    assert text(value) == stored
    text(value).encode()


def test_event_id_of_unencodable_fields_does_not_raise() -> None:
    fields = {**FIELDS, "device_id": "\ud800", "version_name": "\x00"}
    assert len(event_id(**fields, timestamp_ms=None, received_ms=T)) == 32


def test_to_ms_takes_naive_as_utc() -> None:
    aware = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert to_ms(aware) == T
    assert to_ms(aware.replace(tzinfo=None)) == T
    assert to_ms(aware.astimezone(timezone(timedelta(hours=2)))) == T


def _rows(*keys: str) -> list[Row]:
    return [row(StatsEvent(**FIELDS, event_id=k, received_ms=T), now_ms=T) for k in keys]


def test_recent_keys_drop_what_was_stored_and_duplicates_inside_a_batch() -> None:
    recent = RecentKeys()
    first = recent.fresh(_rows("a", "b", "a"))
    assert [r[0] for r in first] == ["a", "b"]
    assert [r[0] for r in recent.fresh(_rows("a", "c"))] == ["a", "c"]  # nothing remembered yet
    recent.remember(first)
    assert [r[0] for r in recent.fresh(_rows("a", "b", "c"))] == ["c"]


def test_recent_keys_forget_everything_past_the_limit_rather_than_grow() -> None:
    recent = RecentKeys(limit=3)
    recent.remember(_rows("a", "b"))
    recent.remember(_rows("c", "d"))  # 4 > 3: start over with these
    assert [r[0] for r in recent.fresh(_rows("a", "b", "c", "d"))] == ["a", "b"]
