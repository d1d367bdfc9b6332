"""One StatsDb contract, run on both backends: SQLite in a file, a real PostgreSQL on 127.0.0.1.

Plus a migration test (the oldest schema with rows, then ``migrate()``), and backend specifics:
SQLite reads never wait for a write, two processes' worth of writers share one file, and
driver failures become StatsError.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from otaseal.errors import StoreError
from otaseal.serve import migrations, postgres, sqlite
from otaseal.serve.db import DeviceFacts, StatsDb, StatsError, StatsEvent, open_stats
from otaseal.serve.sqlite import SqliteStatsDb

if TYPE_CHECKING:
    from collections.abc import Iterator

APP = "com.example.app"
OTHER = "com.example.other"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
DAY = timedelta(days=1)


ALL_STEPS = [m.number for m in migrations.load("sqlite")]


def clock() -> float:
    return T0.timestamp()


def device(n: int) -> str:
    return str(uuid.UUID(int=n))


def event(
    action: str,
    version: str,
    *,
    dev: int = 1,
    app: str = APP,
    channel: str = "production",
    at: int | None = T0_MS,
    received: int = T0_MS,
    old: str = "",
) -> StatsEvent:
    return StatsEvent(
        app=app,
        device_id=device(dev),
        action=action,
        version_name=version,
        old_version_name=old,
        platform="android",
        channel=channel,
        version_build="1.0.0",
        timestamp_ms=at,
        received_ms=received,
    )


@pytest.fixture(scope="module")
def pg_template(postgres: Any) -> Any:
    """A database migrated once; each test copies it (CREATE DATABASE … TEMPLATE)."""
    url = postgres.create_database("otaseal_template")
    db = open_stats(url)
    db.migrate()
    db.close()
    return postgres


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``--stats`` URL of a fresh, migrated database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'stats.sqlite'}"
        db = open_stats(url)
        db.migrate()
        db.close()
        return url
    server = request.getfixturevalue("pg_template")
    return str(server.create_database(f"t_{uuid.uuid4().hex[:12]}", template="otaseal_template"))


@pytest.fixture
def db(backend: str) -> Iterator[StatsDb]:
    opened = open_stats(backend)
    assert isinstance(opened, SqliteStatsDb | postgres.PostgresStatsDb)
    opened._clock = clock  # type: ignore[union-attr]
    yield opened
    opened.close()


def window(db: StatsDb, **kw: Any) -> dict[tuple[str, str, str], Any]:
    since = kw.pop("since", T0 - DAY)
    until = kw.pop("until", T0 + DAY)
    return {(c.app, c.channel, c.version): c for c in db.counts(since=since, until=until, **kw)}


# --- the contract ------------------------------------------------------------------------------
def test_record_counts_new_events_and_a_resent_batch_is_not_counted_twice(db: StatsDb) -> None:
    batch = [event("download_complete", "1.1"), event("set", "1.1", old="1.0")]
    assert db.record(batch) == 2
    assert db.record(batch) == 0
    assert db.record([*batch, event("set", "1.1", dev=2)]) == 1
    counts = window(db)[(APP, "production", "1.1")]
    assert (counts.downloads, counts.installs, counts.devices) == (1, 2, 2)


def test_an_empty_batch_records_nothing(db: StatsDb) -> None:
    assert db.record([]) == 0
    assert db.counts(since=T0 - DAY, until=T0 + DAY) == []


def test_sqlite_a_channel_another_worker_set_is_seen_within_a_second(tmp_path: Path) -> None:
    now = [T0.timestamp()]
    one = SqliteStatsDb(tmp_path / "s.sqlite", clock=lambda: now[0])
    one.migrate()
    two = SqliteStatsDb(tmp_path / "s.sqlite", clock=lambda: now[0])
    assert two.device(APP, device(1)) == DeviceFacts()  # two has read: nobody has facts
    one.set_channel(APP, device(1), "beta")
    one.record([event("update_fail", "1.1", dev=2)])
    assert one.device(APP, device(1)) == DeviceFacts("beta")  # the writer knows at once
    now[0] += 1.0
    assert two.device(APP, device(1)) == DeviceFacts("beta")
    assert two.device(APP, device(2)) == DeviceFacts(failed=frozenset({"1.1"}))
    one.set_channel(APP, device(1), None)
    assert (one.device(APP, device(1)), two.device(APP, device(1))) == (DeviceFacts(),) * 2
    one.close()
    two.close()


def test_sqlite_a_batch_another_worker_stored_is_not_counted_twice(tmp_path: Path) -> None:
    # Each worker process remembers only its own keys; the table's key catches the rest.
    one = SqliteStatsDb(tmp_path / "s.sqlite", clock=clock)
    one.migrate()
    two = SqliteStatsDb(tmp_path / "s.sqlite", clock=clock)
    batch = [event("download_complete", "1.1"), event("set", "1.1", old="1.0")]
    assert (one.record(batch), two.record(batch), one.record(batch)) == (2, 0, 0)
    one.close()
    two.close()


def test_duplicates_inside_one_batch_count_once(db: StatsDb) -> None:
    assert db.record([event("set", "1.1"), event("set", "1.1")]) == 1


def test_worker_events_without_timestamp_dedupe_within_the_minute(db: StatsDb) -> None:
    minute = T0_MS - T0_MS % 60_000
    first = event("download_zip_complete", "1.1", at=None, received=minute + 1_000)
    retry = event("download_zip_complete", "1.1", at=None, received=minute + 59_000)
    later = event("download_zip_complete", "1.1", at=None, received=minute + 61_000)
    assert db.record([first]) == 1
    assert db.record([retry]) == 0
    assert db.record([later]) == 1


def test_queued_events_dedupe_by_device_timestamp_whenever_resent(db: StatsDb) -> None:
    assert db.record([event("set", "1.1", received=T0_MS)]) == 1
    assert db.record([event("set", "1.1", received=T0_MS + 3_600_000)]) == 0


def test_an_explicit_event_id_is_the_key(db: StatsDb) -> None:
    a = StatsEvent(APP, device(1), "check", "1.0", received_ms=T0_MS, event_id="k1")
    b = StatsEvent(APP, device(1), "check", "1.0", received_ms=T0_MS, event_id="k2")
    assert db.record([a, b, a]) == 2


def test_a_nul_byte_or_lone_surrogate_from_one_device_does_not_drop_the_batch(
    db: StatsDb,
) -> None:
    poisoned = [
        event("set", "1.1\x00evil", dev=1),
        event("update_fail", "\ud800", dev=2),
        event("set", "1.1", dev=3, old="\udfff\x00"),
    ]
    assert db.record([*poisoned, event("set", "1.1", dev=4)]) == 4
    assert db.record(poisoned) == 0  # the same keys when re-sent
    counts = window(db)
    assert counts[(APP, "production", "1.1")].installs == 2
    assert counts[(APP, "production", "1.1\ufffdevil")].installs == 1
    assert db.device(APP, device(2)).failed == {"\ufffd"}


def test_device_facts_come_from_update_fail_reports(db: StatsDb) -> None:
    assert db.device(APP, device(1)) == DeviceFacts()
    db.record(
        [
            event("update_fail", "1.1"),
            event("update_fail", "1.2", at=T0_MS + 1),
            event("set_fail", "1.3"),
            event("download_fail", "1.0"),
            event("update_fail", "9.9", dev=2),
            event("update_fail", "8.8", app=OTHER),
        ]
    )
    db.record([event("update_fail", "1.1")])  # re-sent
    assert db.device(APP, device(1)) == DeviceFacts(failed=frozenset({"1.1", "1.2"}))
    assert db.device(APP, device(2)).failed == {"9.9"}
    assert db.device(OTHER, device(1)).failed == {"8.8"}
    assert db.device(APP, device(3)) == DeviceFacts()


def test_set_and_clear_a_device_channel(db: StatsDb) -> None:
    db.set_channel(APP, device(1), "beta")
    assert db.device(APP, device(1)) == DeviceFacts(channel="beta")
    db.set_channel(APP, device(1), "nightly")
    assert db.device(APP, device(1)).channel == "nightly"
    assert db.device(OTHER, device(1)).channel is None
    db.record([event("update_fail", "1.1")])
    assert db.device(APP, device(1)) == DeviceFacts("nightly", frozenset({"1.1"}))
    db.set_channel(APP, device(1), None)
    assert db.device(APP, device(1)) == DeviceFacts(failed=frozenset({"1.1"}))
    db.set_channel(APP, device(2), None)  # clearing nothing is fine
    assert db.device(APP, device(2)) == DeviceFacts()


def test_counts_per_app_channel_and_release(db: StatsDb) -> None:
    db.record(
        [
            event("check", "1.0", at=None, dev=1),
            event("check", "1.0", at=None, dev=2),
            event("check", "1.0", at=None, dev=3, channel="beta"),
            event("download_zip_complete", "1.1", dev=1),
            event("download_complete", "1.1", dev=1),
            event("download_complete", "1.1", dev=2),
            event("set", "1.1", dev=1, old="1.0"),
            event("set", "1.1", dev=2, old="1.0"),
            event("update_fail", "1.1", dev=2),
            event("checksum_fail", "1.1", dev=1, at=T0_MS + 5),
            event("checksum_required", "1.1", dev=1),
            event("download_manifest_file_fail", "1.1:assets/app.js", dev=3, channel="beta"),
            event("download_fail", "1.0", dev=3, channel="beta"),
            event("app_moved_to_foreground", "1.1", dev=4),
            event("set", "2.0", app=OTHER),
        ]
    )
    counts = window(db)
    assert set(counts) == {
        (APP, "production", "1.0"),
        (APP, "production", "1.1"),
        (APP, "beta", "1.0"),
        (APP, "beta", "1.1"),
        (OTHER, "production", "2.0"),
    }
    running = counts[(APP, "production", "1.0")]
    assert (running.checks, running.devices) == (2, 2)
    target = counts[(APP, "production", "1.1")]
    assert target.downloads == 2  # download_zip_complete is the same download
    assert target.installs == 2
    assert target.rollbacks == 1
    assert target.failures == {"checksum_fail": 1, "checksum_required": 1}
    assert target.devices == 3  # devices 1, 2 and 4 (an opaque action still names a device)
    beta_running = counts[(APP, "beta", "1.0")]
    assert (beta_running.checks, beta_running.failures) == (1, {"download_fail": 1})
    beta_target = counts[(APP, "beta", "1.1")]
    assert beta_target.failures == {"download_manifest_file_fail": 1}
    assert list(window(db, app=OTHER)) == [(OTHER, "production", "2.0")]
    assert window(db, app="com.example.none") == {}


def test_counts_window_is_half_open_on_when_it_happened(db: StatsDb) -> None:
    db.record(
        [
            event("set", "1.1", dev=1, at=T0_MS - 1, received=T0_MS + 10),
            event("set", "1.1", dev=2, at=T0_MS, received=T0_MS + 10),
            event("set", "1.1", dev=3, at=T0_MS + 999, received=T0_MS + 1_000),
            event("set", "1.1", dev=4, at=None, received=T0_MS + 1_000),
            # a device clock in the future counts when the server received it
            event("set", "1.1", dev=5, at=T0_MS + 10 * 86_400_000, received=T0_MS + 500),
        ]
    )
    one_second = window(db, since=T0, until=T0 + timedelta(seconds=1))
    assert one_second[(APP, "production", "1.1")].installs == 3  # devices 2, 3 and 5
    before = window(db, since=T0 - DAY, until=T0)
    assert before[(APP, "production", "1.1")].installs == 1


def test_adoption_counts_each_device_once_per_hour_under_its_last_check(db: StatsDb) -> None:
    hour = 3_600_000
    h0 = T0_MS - T0_MS % hour
    db.record(
        [
            # hour 0: device 1 runs 1.0 then updates to 1.1; device 2 stays on 1.0
            event("check", "1.0", dev=1, at=None, received=h0 + 60_000),
            event("check", "1.1", dev=1, at=None, received=h0 + 120_000),
            event("check", "1.0", dev=2, at=None, received=h0 + 180_000),
            event("check", "1.0", dev=2, at=None, received=h0 + 240_000),
            # other channel, other app, another action: not counted
            event("check", "1.0", dev=3, at=None, received=h0 + 60_000, channel="beta"),
            event("check", "1.0", dev=4, at=None, received=h0 + 60_000, app=OTHER),
            event("set", "1.1", dev=5, at=h0 + 60_000),
            # hour 2 (hour 1 has no check): both on 1.1
            event("check", "1.1", dev=1, at=None, received=h0 + 2 * hour + 1),
            event("check", "1.1", dev=2, at=None, received=h0 + 3 * hour - 1),
            # at the window's end: outside [since, until)
            event("check", "1.1", dev=6, at=None, received=h0 + 3 * hour),
        ]
    )
    since = datetime.fromtimestamp(h0 / 1000, tz=UTC)
    rows = db.adoption(APP, "production", since=since, until=since + timedelta(hours=3))
    assert [(r.hour, r.version, r.devices) for r in rows] == [
        (since, "1.0", 1),
        (since, "1.1", 1),
        (since + timedelta(hours=2), "1.1", 2),
    ]
    assert db.adoption(APP, "nightly", since=since, until=since + timedelta(hours=3)) == []


def test_newest_event_per_channel_and_release_before_until(db: StatsDb) -> None:
    db.record(
        [
            event("set", "1.1", dev=1, at=T0_MS - 5_000),
            event("set", "1.1", dev=2, at=T0_MS - 1_000),
            event("update_fail", "1.1", dev=2, at=T0_MS + 1_000),  # after until
            event("check", "1.0", dev=3, at=None, received=T0_MS - 60_000, channel="beta"),
            event("set", "2.0", app=OTHER, at=T0_MS - 10),
        ]
    )
    seconds = T0.timestamp()
    newest = db.newest(APP, until=T0)
    assert newest == {
        ("production", "1.1"): datetime.fromtimestamp(seconds - 1, tz=UTC),
        ("beta", "1.0"): datetime.fromtimestamp(seconds - 60, tz=UTC),
    }
    assert db.newest("com.example.none", until=T0) == {}


def test_prune_deletes_old_events_and_keeps_device_facts(
    db: StatsDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "PRUNE_CHUNK", 2)
    monkeypatch.setattr(postgres, "PRUNE_CHUNK", 2)
    old = [event("set", "1.0", dev=n, received=T0_MS - 100 * 86_400_000) for n in range(5)]
    db.record([*old, event("update_fail", "1.1", received=T0_MS - 100 * 86_400_000)])
    db.set_channel(APP, device(1), "beta")
    db.record([event("set", "1.1", dev=9)])
    assert db.prune(T0 - timedelta(days=90)) == 6
    assert db.prune(T0 - timedelta(days=90)) == 0
    everything = window(db, since=T0 - 1000 * DAY)
    assert list(everything) == [(APP, "production", "1.1")]
    assert db.device(APP, device(1)) == DeviceFacts("beta", frozenset({"1.1"}))


def test_migrate_twice_is_a_no_op(backend: str) -> None:
    db = open_stats(backend)
    try:
        db.migrate()
        db.record([event("set", "1.1")])
        db.migrate()
        assert window(db)[(APP, "production", "1.1")].installs == 1
    finally:
        db.close()
    assert _versions(backend) == ALL_STEPS


def test_a_database_newer_than_the_code_is_refused(backend: str) -> None:
    latest = migrations.load("sqlite")[-1].number
    future = f"INSERT INTO schema_version VALUES ({latest + 1}, 'future.sql', 0)"  # noqa: S608
    _execute(backend, future)
    db = open_stats(backend)
    try:
        with pytest.raises(StatsError) as caught:
            db.migrate()
    finally:
        db.close()
    text = caught.value.diagnostics()
    assert f"schema version {latest + 1}, newer than this otaseal" in text
    assert "password" not in text.lower() or "***" in text


# --- migrations ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_the_oldest_schema_with_rows_migrates_and_reads_back(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    oldest = migrations.load(dialect)[0]
    assert T0_MS == 1795435200000  # the rows below are written at T0
    if dialect == "sqlite":
        url = f"sqlite://{tmp_path / 'old.sqlite'}"
        conn = sqlite3.connect(tmp_path / "old.sqlite")
        conn.executescript(oldest.sql)
        conn.close()
    else:
        server = request.getfixturevalue("postgres")
        url = server.create_database(f"old_{uuid.uuid4().hex[:12]}")
        _execute(url, oldest.sql)
    # rows as version 0001 wrote them, with no schema_version table (a database made by hand
    # from the shipped file): migrate() must take the tables as they are.
    _execute(
        url,
        "INSERT INTO events VALUES ('e1', 'com.example.app', 'd1', 'set', '1.1', '1.1', '1.0',"
        " 'ios', 'production', '1.0.0', 1795435200000, 1795435200000, 1795435200000);"
        " INSERT INTO device_failures VALUES ('com.example.app', 'd1', '1.0', 1795435200000);"
        " INSERT INTO device_channels VALUES ('com.example.app', 'd1', 'beta', 1795435200000)",
    )
    _execute(
        url,
        "CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL,"
        " applied_ms bigint NOT NULL); INSERT INTO schema_version VALUES (1, 'x', 0)",
    )
    db = open_stats(url)
    try:
        db.migrate()
        assert db.device(APP, "d1") == DeviceFacts("beta", frozenset({"1.0"}))
        counts = window(db)[(APP, "production", "1.1")]
        assert (counts.installs, counts.devices) == (1, 1)
        assert db.record([event("set", "1.1", dev=2)]) == 1
    finally:
        db.close()
    assert _versions(url) == [m.number for m in migrations.load(dialect)]


def test_migrate_on_an_empty_database_applies_every_step(tmp_path: Path) -> None:
    db = open_stats(f"sqlite://{tmp_path / 'new.sqlite'}")
    db.migrate()
    db.close()
    assert _versions(f"sqlite://{tmp_path / 'new.sqlite'}") == ALL_STEPS


def _execute(url: str, sql: str) -> None:
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite://"))
        conn.executescript(sql)
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.encode())


def _versions(url: str) -> list[int]:
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite://"))
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        conn.close()
        return [r[0] for r in rows]
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        return [r[0] for r in rows]


# --- SQLite specifics ----------------------------------------------------------------------------
def test_sqlite_reads_do_not_wait_for_a_write(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    db = SqliteStatsDb(path, clock=clock)
    db.migrate()
    db.record([event("update_fail", "1.1")])
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    other.execute("INSERT INTO device_channels VALUES (?, ?, 'beta', 0)", (APP, device(1)))
    try:
        started = time.monotonic()
        assert db.device(APP, device(1)) == DeviceFacts(failed=frozenset({"1.1"}))
        assert time.monotonic() - started < 1.0
    finally:
        other.execute("ROLLBACK")
        other.close()
        db.close()


def test_sqlite_writers_in_two_processes_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first, second = SqliteStatsDb(path), SqliteStatsDb(path)
    first.migrate()
    second.migrate()

    def write(db: SqliteStatsDb, base: int) -> None:
        for n in range(50):
            db.record([event("set", "1.1", dev=base + n)])

    threads = [
        threading.Thread(target=write, args=(first, 0)),
        threading.Thread(target=write, args=(second, 1000)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert window(first)[(APP, "production", "1.1")].installs == 100
    first.close()
    second.close()


def test_sqlite_readers_on_many_threads_each_get_a_connection(tmp_path: Path) -> None:
    db = SqliteStatsDb(tmp_path / "s.sqlite")
    db.migrate()
    db.set_channel(APP, device(1), "beta")
    seen: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: seen.append(db.device(APP, device(1)).channel))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == ["beta"] * 4
    assert len(db._readers) == 5  # this thread (migrate read the version) and four more
    db.close()
    db.close()  # twice is fine


def test_sqlite_after_close_is_a_stats_error(tmp_path: Path) -> None:
    db = SqliteStatsDb(tmp_path / "s.sqlite")
    db.migrate()
    db.close()
    with pytest.raises(StatsError, match="closed"):
        db.record([event("set", "1.1")])
    with pytest.raises(StatsError):
        db.device(APP, device(1))
    fresh_thread: list[BaseException] = []

    def read() -> None:
        try:
            db.device(APP, device(1))
        except StatsError as exc:
            fresh_thread.append(exc)

    t = threading.Thread(target=read)
    t.start()
    t.join()
    assert fresh_thread
    assert "closed" in str(fresh_thread[0])


def test_sqlite_missing_file_without_create_is_a_stats_error(tmp_path: Path) -> None:
    with pytest.raises(StatsError, match="no stats database at") as caught:
        open_stats(f"sqlite://{tmp_path / 'none.sqlite'}", create=False)
    assert isinstance(caught.value, StoreError)
    assert caught.value.exit_code == 5
    assert not (tmp_path / "none.sqlite").exists()


def test_sqlite_creates_missing_folders(tmp_path: Path) -> None:
    db = open_stats(f"sqlite://{tmp_path / 'a' / 'b' / 'stats.sqlite'}")
    db.migrate()
    db.close()
    assert (tmp_path / "a" / "b" / "stats.sqlite").is_file()


def test_sqlite_unwritable_folder_is_a_stats_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StatsError, match="cannot make the folder"):
        open_stats(f"sqlite://{blocker / 'sub' / 'stats.sqlite'}")


def test_sqlite_a_file_that_is_not_a_database_is_a_stats_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StatsError, match="failed"):
        open_stats(f"sqlite://{path}")


def test_sqlite_without_write_ahead_logging_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an in-memory database answers journal_mode=WAL with "memory", as some filesystems do
    # with "delete"
    monkeypatch.setattr(
        SqliteStatsDb,
        "_connect",
        lambda self: sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False),
    )
    with pytest.raises(StatsError, match="cannot use write-ahead logging"):
        SqliteStatsDb(tmp_path / "s.sqlite")


def test_sqlite_migrate_skips_a_step_another_process_applied_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = SqliteStatsDb(tmp_path / "s.sqlite")
    db.migrate()
    real = SqliteStatsDb._version
    calls: list[int] = []

    def stale_first(self: SqliteStatsDb, conn: sqlite3.Connection) -> int:
        calls.append(1)
        return 0 if len(calls) == 1 else real(self, conn)

    monkeypatch.setattr(SqliteStatsDb, "_version", stale_first)
    db.migrate()  # saw 0 outside the lock, then the step is there: nothing applied twice
    monkeypatch.undo()
    db.close()
    assert _versions(f"sqlite://{tmp_path / 's.sqlite'}") == ALL_STEPS


def test_sqlite_write_failure_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = SqliteStatsDb(tmp_path / "s.sqlite", clock=clock)
    db.migrate()
    monkeypatch.setattr(sqlite, "_INSERT_FAILURE", "INSERT INTO no_such_table VALUES (?, ?, ?, ?)")
    with pytest.raises(StatsError, match="no such table"):
        db.record([event("set", "1.1"), event("update_fail", "1.1")])
    monkeypatch.undo()
    assert db.counts(since=T0 - DAY, until=T0 + DAY) == []  # the events went too
    assert db.record([event("set", "1.1")]) == 1
    db.close()


# --- PostgreSQL specifics ------------------------------------------------------------------------
def test_postgres_unreachable_is_a_stats_error_without_the_password(postgres: Any) -> None:
    from servers import free_port

    url = f"postgresql://otaseal:s3cret-pw@127.0.0.1:{free_port()}/stats"
    with pytest.raises(StatsError) as caught:
        open_stats(url)
    text = caught.value.diagnostics()
    assert "s3cret-pw" not in text
    assert "otaseal:***@127.0.0.1" in text
    assert caught.value.exit_code == 5


def test_postgres_unknown_database_is_a_stats_error(postgres: Any) -> None:
    with pytest.raises(StatsError, match="does not exist"):
        open_stats(postgres.url("no_such_db"))


def test_postgres_two_migrators_at_once_apply_each_step_once(postgres: Any) -> None:
    url = postgres.create_database(f"race_{uuid.uuid4().hex[:12]}")
    dbs = [open_stats(url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(db: StatsDb) -> None:
        try:
            db.migrate()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for db in dbs:
        db.close()
    assert errors == []
    assert _versions(url) == ALL_STEPS


def test_postgres_after_close_is_a_stats_error(pg_template: Any) -> None:
    url = pg_template.create_database(f"c_{uuid.uuid4().hex[:12]}", template="otaseal_template")
    db = open_stats(url)
    db.close()
    with pytest.raises(StatsError):
        db.device(APP, device(1))


def test_postgres_starts_as_nobody_without_a_postgres_account(
    postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import pwd

    import pg

    if os.geteuid() != 0:
        pytest.skip("only root has to drop to another account")
    real = pwd.getpwnam

    def no_postgres(name: str) -> Any:
        if name == "postgres":
            raise KeyError(name)
        return real(name)

    monkeypatch.setattr(pg.pwd, "getpwnam", no_postgres)
    server = pg.start_postgres()  # nobody: no login shell, home /nonexistent
    try:
        assert server.prefix == ["runuser", "-u", "nobody", "--"]
        db = open_stats(server.create_database("as_nobody"))
        db.migrate()
        assert db.record([event("set", "1.1")]) == 1
        db.close()
    finally:
        server.stop()
    assert not server.root.exists()
