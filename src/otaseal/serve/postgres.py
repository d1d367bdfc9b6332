"""StatsDb on PostgreSQL through psycopg 3 and a ``psycopg_pool.ConnectionPool``, for fleets.

The only module that imports psycopg. The pool is opened in the constructor (after one direct
connection, so an unreachable or refusing server gives its own reason at once) and closed by
``close()``; open it in each process after any fork (uvicorn's lifespan). Connections run in
autocommit; writes and multi-query reads take an explicit transaction. Batches go in as one
``INSERT … SELECT FROM unnest(…)`` per table, so a batch is one round trip however long.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool

from otaseal.serve import events as ev
from otaseal.serve import migrations, rollup
from otaseal.serve.db import DeviceFacts, HourlyDevices, ReleaseCounts, StatsError
from otaseal.serve.known import KnownDevices
from otaseal.serve.stats_url import redact

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime

    from otaseal.serve.db import StatsEvent

CONNECT_TIMEOUT_S = 10
PRUNE_CHUNK = 10_000
# pg_advisory_lock key: one migrator at a time across replicas ("otaseal" in ASCII).
MIGRATION_LOCK = 0x6F74617365616C

_INSERT_EVENTS = (
    "INSERT INTO events (event_id, app, device_id, action, version_name, release,"
    " old_version_name, platform, channel, version_build, timestamp_ms, received_ms, at_ms)"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
    " %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[],"
    " %s::bigint[]) ON CONFLICT (event_id) DO NOTHING"
)
_INSERT_FAILURES = (
    "INSERT INTO device_failures (app, device_id, version, reported_ms)"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[])"
    " ON CONFLICT DO NOTHING"
)
_DEVICE = (
    "SELECT 1, channel FROM device_channels WHERE app = %(app)s AND device_id = %(device)s"
    " UNION ALL SELECT 2, version FROM device_failures"
    " WHERE app = %(app)s AND device_id = %(device)s"
)
_CHANGED_SINCE = (
    "SELECT app, device_id FROM device_channels WHERE updated_ms >= %(since)s"
    " UNION SELECT app, device_id FROM device_failures WHERE reported_ms >= %(since)s"
)
_COUNT_ACTIONS = (
    "SELECT app, channel, release, action, count(*) FROM events"
    " WHERE at_ms >= %(since)s AND at_ms < %(until)s"
    " AND (%(app)s::text IS NULL OR app = %(app)s::text)"
    " GROUP BY app, channel, release, action"
)
_COUNT_DEVICES = (
    "SELECT app, channel, release, count(DISTINCT device_id) FROM events"
    " WHERE at_ms >= %(since)s AND at_ms < %(until)s"
    " AND (%(app)s::text IS NULL OR app = %(app)s::text)"
    " GROUP BY app, channel, release"
)

# One row per device and hour (its last check there), then devices per hour and version.
_ADOPTION = (
    "SELECT hour, version_name, count(*) FROM (SELECT at_ms / 3600000 AS hour, version_name,"
    " row_number() OVER (PARTITION BY at_ms / 3600000, device_id"
    " ORDER BY at_ms DESC, event_id DESC) AS nth FROM events"
    " WHERE app = %(app)s AND channel = %(channel)s AND action = 'check'"
    " AND at_ms >= %(since)s AND at_ms < %(until)s) AS last_checks"
    " WHERE nth = 1 GROUP BY hour, version_name ORDER BY hour, version_name"
)
_NEWEST = (
    "SELECT channel, release, max(at_ms) FROM events WHERE app = %(app)s AND at_ms < %(until)s"
    " GROUP BY channel, release"
)


class PostgresStatsDb:
    """The stats database on a PostgreSQL server (see the module docstring)."""

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._where = redact(conninfo)
        self._clock = clock
        self._recent = ev.RecentKeys()
        self._recent_lock = threading.Lock()
        self._known = KnownDevices(self._changed_since, clock=clock)
        with self._errors("connecting to"):
            psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S).close()
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = (
            psycopg_pool.ConnectionPool(
                conninfo,
                min_size=min_size,
                max_size=max_size,
                open=False,
                timeout=CONNECT_TIMEOUT_S,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
                name="otaseal-stats",
            )
        )
        with self._errors("connecting to"):
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StatsError(
                f"{what} the PostgreSQL stats database {self._where} failed ({detail})",
                fix="check that the server is running and reachable, and that the URL's user, "
                "database and password are right",
            ) from exc

    @contextmanager
    def _conn(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        with self._errors(what), self._pool.connection() as conn:
            yield conn

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- StatsDb ---------------------------------------------------------------------------
    def migrate(self) -> None:
        """Apply missing migrations under an advisory lock, one transaction each."""
        steps = migrations.load("postgres")
        latest = steps[-1].number
        with self._conn("migrating") as conn:
            current = self._version(conn)
            migrations.check_not_newer(current, latest, self._where)
            if current == latest:
                return
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
                    " name text NOT NULL, applied_ms bigint NOT NULL)"
                )
                for step in steps:
                    with conn.transaction():
                        current = self._version(conn)
                        migrations.check_not_newer(current, latest, self._where)
                        if current >= step.number:
                            continue
                        conn.execute(step.sql.encode())
                        conn.execute(
                            "INSERT INTO schema_version (version, name, applied_ms)"
                            " VALUES (%s, %s, %s)",
                            (step.number, step.name, self._now_ms()),
                        )
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    @staticmethod
    def _version(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if row is None or not row[0]:
            return 0
        found = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        return int(found[0]) if found else 0

    def record(self, events: Sequence[StatsEvent]) -> int:
        """Insert a batch idempotently (by ``event_id``); return how many were new."""
        if not events:
            return 0
        now = self._now_ms()
        rows = [ev.row(e, now_ms=now) for e in events]
        failures = [(r[1], r[2], r[5], r[11]) for r in rows if r[3] == rollup.ROLLBACK]
        with self._recent_lock:
            fresh = self._recent.fresh(rows)
        new = 0
        with self._conn("recording events in") as conn, conn.transaction():
            if fresh:
                columns = [list(c) for c in zip(*fresh, strict=True)]
                new = conn.execute(_INSERT_EVENTS, columns).rowcount
            if failures:
                conn.execute(_INSERT_FAILURES, [list(c) for c in zip(*failures, strict=True)])
        with self._recent_lock:
            self._recent.remember(fresh)
        for app, device_id, _, _ in failures:
            self._known.add(app, device_id)
        return max(new, 0)

    def device(self, app: str, device_id: str) -> DeviceFacts:
        """The device's channel override and failed versions: one indexed query, if any."""
        if not self._known.may_have_facts(app, device_id):
            return DeviceFacts()
        with self._conn("reading a device from") as conn:
            found = conn.execute(_DEVICE, {"app": app, "device": device_id}).fetchall()
        if not found:
            return DeviceFacts()
        channel = None
        failed = []
        for kind, value in found:
            if kind == 1:
                channel = value
            else:
                failed.append(value)
        return DeviceFacts(channel=channel, failed=frozenset(failed))

    def _changed_since(self, since_ms: int | None) -> list[tuple[str, str]]:
        """Devices whose facts changed at or after ``since_ms`` (None: every device with facts)."""
        with self._conn("reading device facts from") as conn:
            rows = conn.execute(_CHANGED_SINCE, {"since": -1 if since_ms is None else since_ms})
            return [(str(app), str(device)) for app, device in rows.fetchall()]

    def set_channel(self, app: str, device_id: str, channel: str | None) -> None:
        """Set (or with None clear) the device's self-assigned channel."""
        self._known.add(app, device_id)  # before the write: a reader never misses it
        with self._conn("setting a device channel in") as conn:
            if channel is None:
                conn.execute(
                    "DELETE FROM device_channels WHERE app = %s AND device_id = %s",
                    (app, device_id),
                )
            else:
                conn.execute(
                    "INSERT INTO device_channels (app, device_id, channel, updated_ms)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (app, device_id) DO UPDATE"
                    " SET channel = excluded.channel, updated_ms = excluded.updated_ms",
                    (app, device_id, channel, self._now_ms()),
                )

    def counts(
        self, *, since: datetime, until: datetime, app: str | None = None
    ) -> list[ReleaseCounts]:
        """Counts per app, channel and release for events in ``[since, until)``."""
        params = {"since": ev.to_ms(since), "until": ev.to_ms(until), "app": app}
        with self._conn("counting events in") as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            actions = conn.execute(_COUNT_ACTIONS, params).fetchall()
            devices = conn.execute(_COUNT_DEVICES, params).fetchall()
        return rollup.fold(actions, devices)

    def adoption(
        self, app: str, channel: str, *, since: datetime, until: datetime
    ) -> list[HourlyDevices]:
        """Per clock hour in ``[since, until)``: devices checking on ``channel``, by version run."""
        params = {
            "app": app,
            "channel": channel,
            "since": ev.to_ms(since),
            "until": ev.to_ms(until),
        }
        with self._conn("reading adoption from") as conn:
            rows = conn.execute(_ADOPTION, params).fetchall()
        return [HourlyDevices(ev.hour_of(int(h)), str(v), int(n)) for h, v, n in rows]

    def newest(self, app: str, *, until: datetime) -> dict[tuple[str, str], datetime]:
        """When the newest event before ``until`` happened, per (channel, release)."""
        with self._conn("reading the newest events from") as conn:
            rows = conn.execute(_NEWEST, {"app": app, "until": ev.to_ms(until)}).fetchall()
        return {(str(c), str(r)): ev.from_ms(int(at)) for c, r, at in rows}

    def prune(self, before: datetime) -> int:
        """Delete events received before ``before``, in chunks so writes interleave."""
        cutoff = ev.to_ms(before)
        total = 0
        while True:
            with self._conn("pruning") as conn:
                gone = conn.execute(
                    "DELETE FROM events WHERE event_id IN (SELECT event_id FROM events"
                    " WHERE received_ms < %s LIMIT %s)",
                    (cutoff, PRUNE_CHUNK),
                ).rowcount
            total += gone
            if gone < PRUNE_CHUNK:
                return total

    def close(self) -> None:
        """Close the pool and its connections."""
        self._pool.close()
