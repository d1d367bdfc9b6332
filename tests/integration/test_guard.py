"""``otaseal guard`` on a folder store and a SQLite stats database: what it signs, what it refuses.

The population simulation (devices through ``otaseal serve``) is test_guard_population.py; here
the stats are recorded straight into the database, so each case pins one rule of the command.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from tests.conftest import APP, NOW

from otaseal.cli import main
from otaseal.config import load_config
from otaseal.errors import ConflictError
from otaseal.guard import StatsUnusableError, run_guard
from otaseal.operations import Project, history, open_store, promote, publish, set_rollout
from otaseal.serve.db import StatsEvent
from otaseal.serve.sqlite import SqliteStatsDb
from otaseal.store import manifest_key

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from otaseal.store import Storage

PLAN = (
    "rollout_plans:\n  production:\n    steps: [1, 10, 50, 100]\n    min_hours_per_step: {hours}\n"
    "    min_installs: 200\n    max_failure_rate: 2%\n    on_breach: {breach}\n"
    "    max_stats_age: 6h\n"
)


def with_plan(project_dir: Path, *, hours: int = 24, breach: str = "pause") -> Path:
    config = project_dir / "otaseal.yml"
    config.write_text(config.read_text() + PLAN.format(hours=hours, breach=breach))
    return config


@pytest.fixture
def staged(project_dir: Path, web: Path) -> Project:
    """1.0.0 then 1.1.0 on beta; production serves 1.0.0, then 1.1.0 at 1 % since NOW."""
    config = load_config(with_plan(project_dir))
    project = Project(config, open_store(config.store), clock=lambda: NOW - timedelta(days=2))
    publish(project, web, channel="beta", label="1.0.0")
    promote(project, source="beta", target="production")
    (web / "index.html").write_text("<p>1.1.0</p>")
    publish(project, web, channel="beta", label="1.1.0")
    project.clock = lambda: NOW
    promote(project, source="beta", target="production", rollout=1)
    return project


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteStatsDb]:
    stats = SqliteStatsDb(tmp_path / "stats.db")
    stats.migrate()
    yield stats
    stats.close()


def report(
    db: SqliteStatsDb, label: str, *, installs: int, failures: int = 0, at: datetime
) -> None:
    """``installs`` devices set ``label``; the first ``failures`` of them then roll back."""
    events = []
    for n in range(installs):
        device = f"{n:08x}-0000-4000-8000-000000000000"
        ms = int(at.timestamp() * 1000)
        events.append(StatsEvent(APP, device, "set", label, channel="production", received_ms=ms))
        if n < failures:
            events.append(
                StatsEvent(APP, device, "update_fail", label, channel="production", received_ms=ms)
            )
    db.record([replace(e, event_id=f"{e.device_id}/{e.action}") for e in events])


def at(project: Project, when: datetime) -> Project:
    project.clock = lambda: when
    return project


def versions(project: Project) -> list[int]:
    return [m.version for m in history(project, "production")]


# --- acting ------------------------------------------------------------------------------------
def test_advances_one_step_and_signs_a_manifest(staged: Project, db: SqliteStatsDb) -> None:
    report(db, "1.1.0", installs=300, at=NOW + timedelta(hours=20))
    before = versions(staged)
    result = run_guard(at(staged, NOW + timedelta(hours=25)), channel="production", db=db)
    assert result.acted
    assert result.decision.action == "advance"
    head = history(staged, "production")[-1]
    assert head.version == before[-1] + 1
    assert head.current is not None
    assert head.current.rollout_bp == 1000
    assert head.event.startswith("rollout 1.1.0 to 10 % (guard: 1.1.0 at 1 % for 25.0 h: 300")
    assert "advanced 1.1.0 on production from 1 % to 10 %" in result.summary()


def test_dry_run_decides_and_signs_nothing(staged: Project, db: SqliteStatsDb) -> None:
    report(db, "1.1.0", installs=300, at=NOW + timedelta(hours=20))
    before = versions(staged)
    result = run_guard(
        at(staged, NOW + timedelta(hours=25)), channel="production", db=db, dry_run=True
    )
    assert result.decision.action == "advance"
    assert not result.acted
    assert "would advance" in result.summary()
    assert versions(staged) == before


def test_pauses_a_failing_release(staged: Project, db: SqliteStatsDb) -> None:
    report(db, "1.1.0", installs=300, failures=30, at=NOW + timedelta(hours=2))
    result = run_guard(at(staged, NOW + timedelta(hours=3)), channel="production", db=db)
    assert result.decision.action == "pause"
    current = history(staged, "production")[-1].current
    assert current is not None
    assert current.paused
    assert current.rollout_bp == 100
    again = run_guard(at(staged, NOW + timedelta(hours=4)), channel="production", db=db)
    assert again.decision.action == "hold"
    assert not again.acted


def test_reverts_a_failing_release_with_on_breach_revert(
    project_dir: Path, staged: Project, db: SqliteStatsDb
) -> None:
    staged.config = replace(
        staged.config,
        rollout_plans={
            "production": replace(staged.config.rollout_plans["production"], on_breach="revert")
        },
    )
    report(db, "1.1.0", installs=300, failures=30, at=NOW + timedelta(hours=2))
    result = run_guard(at(staged, NOW + timedelta(hours=3)), channel="production", db=db)
    assert result.decision.action == "revert"
    head = history(staged, "production")[-1]
    assert head.current is not None
    assert head.current.label == "1.0.0"
    assert head.current.rollout_bp == 10000
    assert head.event.startswith("revert to 1.0.0 (guard: ")


# --- refusing ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("installs", "when", "words"),
    [
        (0, NOW + timedelta(hours=25), "no device reported about 1.1.0"),
        (300, NOW + timedelta(hours=40), "older than max_stats_age"),
    ],
    ids=["empty", "stale"],
)
def test_empty_or_stale_stats_are_an_error_and_nothing_is_signed(
    staged: Project, db: SqliteStatsDb, installs: int, when: datetime, words: str
) -> None:
    report(db, "1.1.0", installs=installs, at=NOW + timedelta(hours=20))
    before = versions(staged)
    with pytest.raises(StatsUnusableError, match=words) as info:
        run_guard(at(staged, when), channel="production", db=db)
    assert info.value.exit_code == 2
    assert "never advances without data" in info.value.diagnostics()
    assert versions(staged) == before


def test_missing_stats_database_is_exit_2_and_nothing_signed(
    staged: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = versions(staged)
    args = ["guard", "--channel", "production", "--config", str(staged.config.path)]
    code = main([*args, "--stats", f"sqlite:///{tmp_path}/absent.db", "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert "no stats database to judge by" in json.loads(captured.out)["error"]["message"]
    assert captured.err.count("otaseal: error:") == 1
    assert "Traceback" not in captured.err
    assert versions(staged) == before
    assert not (tmp_path / "absent.db").exists()


def test_a_channel_without_a_plan_is_exit_2(
    staged: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["guard", "--channel", "beta", "--config", str(staged.config.path)]
    assert main(args) == 2
    assert "has no rollout plan for beta" in capsys.readouterr().err


def test_a_paused_rollout_is_held(staged: Project, db: SqliteStatsDb) -> None:
    set_rollout(staged, channel="production", pause=True)
    report(db, "1.1.0", installs=300, at=NOW + timedelta(hours=20))
    result = run_guard(at(staged, NOW + timedelta(hours=25)), channel="production", db=db)
    assert result.decision.action == "hold"
    assert "paused" in result.summary()


def test_cli_prints_the_decision_as_json(
    project_dir: Path, web: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real clock: a plan with no minimum time, installs reported just now."""
    config = load_config(with_plan(project_dir, hours=0))
    project = Project(config, open_store(config.store))
    publish(project, web, channel="beta", label="1.0.0")
    promote(project, source="beta", target="production", rollout=1)
    stats = SqliteStatsDb(tmp_path / "live.db")
    stats.migrate()
    report(stats, "1.0.0", installs=250, at=datetime.now(UTC))
    stats.close()
    args = ["guard", "--channel", "production", "--config", str(config.path)]
    args += ["--stats", f"sqlite:///{tmp_path}/live.db"]
    assert main([*args, "--dry-run", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["action"] == "advance"
    assert doc["to_rollout"] == 10
    assert doc["acted"] is False
    assert doc["evidence"]["installs"] == 250
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "advanced 1.0.0 on production from 1 % to 10 %" in out
    assert "signed production manifest v" in out


# --- two guards at once ------------------------------------------------------------------------
class RaceStore:
    """A folder store that holds each manifest create until both guards reach it."""

    def __init__(self, inner: Storage, barrier: threading.Barrier) -> None:
        self.inner, self.barrier = inner, barrier

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def create(self, key: str, data: bytes) -> bool:
        if key.startswith(manifest_key(APP, "production", 0).rsplit("/", 1)[0]):
            self.barrier.wait(timeout=10)
        return bool(self.inner.create(key, data))


def test_two_concurrent_guards_take_one_step(staged: Project, db: SqliteStatsDb) -> None:
    report(db, "1.1.0", installs=300, at=NOW + timedelta(hours=20))
    before = versions(staged)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def guard() -> None:
        store = RaceStore(staged.store, barrier)
        project = Project(staged.config, store, clock=lambda: NOW + timedelta(hours=25))  # type: ignore[arg-type]
        try:
            results.append(run_guard(project, channel="production", db=db))
        except ConflictError as exc:
            results.append(exc)

    threads = [threading.Thread(target=guard) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 2
    errors = [r for r in results if isinstance(r, ConflictError)]
    assert len(errors) == 1
    assert "Nothing was signed; run guard again" in errors[0].diagnostics()
    assert errors[0].exit_code == 5
    assert versions(staged) == [*before, before[-1] + 1]
    current = history(staged, "production")[-1].current
    assert current is not None
    assert current.rollout_bp == 1000


# --- what the result says ----------------------------------------------------------------------
def test_a_dry_run_revert_to_the_builtin_build_says_so(
    project_dir: Path, web: Path, db: SqliteStatsDb
) -> None:
    config = load_config(with_plan(project_dir, breach="revert"))
    project = Project(config, open_store(config.store), clock=lambda: NOW)
    publish(project, web, channel="beta", label="1.0.0")
    promote(project, source="beta", target="production", rollout=1)
    report(db, "1.0.0", installs=300, failures=60, at=NOW + timedelta(hours=1))
    result = run_guard(
        at(project, NOW + timedelta(hours=2)), channel="production", db=db, dry_run=True
    )
    assert "would revert production from 1.0.0 to the app's builtin build" in result.summary()
    assert result.short().startswith("guard revert 1.0.0: 300 installs, 60 failed, upper ")
    assert len(result.short()) <= 140
    doc = result.to_dict()
    assert doc["to_release"] == "builtin"
    assert doc["acted"] is False
    assert doc["manifest_version"] is None
    real = run_guard(project, channel="production", db=db)
    head = history(project, "production")[-1]
    assert real.acted
    assert head.builtin
    assert head.event.startswith("revert to builtin (guard: ")


def test_a_hold_reads_as_json_and_in_short(staged: Project, db: SqliteStatsDb) -> None:
    report(db, "1.1.0", installs=50, at=NOW + timedelta(hours=1))
    result = run_guard(at(staged, NOW + timedelta(hours=2)), channel="production", db=db)
    doc = result.to_dict()
    assert doc["action"] == "hold"
    assert doc["hold"] == "waiting_time"
    assert "for 2.0 h of 24 h" in str(doc["reason"])
    assert doc["evidence"]["installs"] == 50  # type: ignore[index]
    assert result.short() == "guard held: waiting time"
    assert result.summary().startswith("guard held production: 1.1.0 has been at 1 % for 2.0 h")


def test_a_pause_reads_in_words(staged: Project, db: SqliteStatsDb) -> None:
    report(db, "1.1.0", installs=300, failures=30, at=NOW + timedelta(hours=2))
    dry = run_guard(at(staged, NOW + timedelta(hours=3)), channel="production", db=db, dry_run=True)
    assert dry.summary().startswith("guard would pause 1.1.0 on production at 1 %; evidence: ")
    done = run_guard(staged, channel="production", db=db)
    assert done.summary().startswith("guard paused 1.1.0 on production at 1 %; evidence: ")
    assert done.to_dict()["manifest_version"] == history(staged, "production")[-1].version
