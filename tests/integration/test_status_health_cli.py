"""``otaseal status --stats``: a real project, a real SQLite stats database filled through
StatsDb.record, and the text, JSON, markdown and HTML it prints and writes."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_health_status import check_xychart

from otaseal import cli
from otaseal.project import init_project
from otaseal.serve.db import StatsEvent, open_stats

APP = "com.example.app"
UNTIL = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T = int(UNTIL.timestamp() * 1000)
HOUR = 3_600_000
WINDOW = ["--since", "24h", "--until", "2026-11-23T12:00:00Z"]


def _event(action: str, version: str, dev: int, at: int, channel: str = "production") -> StatsEvent:
    timestamp = None if action == "check" else at
    return StatsEvent(
        APP,
        str(uuid.UUID(int=dev)),
        action,
        version,
        channel=channel,
        timestamp_ms=timestamp,
        received_ms=at,
    )


@pytest.fixture
def project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """production serves 1.1 at 10 % over 1.0; beta is empty."""
    init_project(APP, tmp_path / "p", now=UNTIL - timedelta(days=30))
    config = str(tmp_path / "p" / "otaseal.yml")
    for label, rollout, text in (("1.0", "100", "one"), ("1.1", "10", "two")):
        build = tmp_path / f"dist-{label}"
        build.mkdir()
        (build / "index.html").write_text(f"<p>{text}</p>")
        args = ["publish", str(build), "--channel", "production", "--label", label]
        assert cli.main([*args, "--rollout", rollout, "--config", config]) == 0
    capsys.readouterr()
    return tmp_path / "p"


def _fill(url: str) -> None:
    db = open_stats(url)
    db.migrate()
    events = []
    # 20 devices check every hour for the last 4 hours; 1.1 grows from 1 to 4 of them
    for hour in range(4):
        start = T - (4 - hour) * HOUR
        for dev in range(20):
            version = "1.1" if dev <= hour else "1.0"
            events.append(_event("check", version, dev, start + 60_000 + dev))
    events += [_event("download_complete", "1.1", d, T - 3 * HOUR + d) for d in range(5)]
    events += [_event("set", "1.1", d, T - 3 * HOUR + 100 + d) for d in range(4)]
    events += [
        _event("update_fail", "1.1", 3, T - 2 * HOUR),
        _event("set_fail", "1.1", 4, T - 2 * HOUR + 1),
        _event("download_fail", "1.0", 7, T - 2 * HOUR + 2),  # names what device 7 runs
    ]
    assert db.record(events) == len(events)
    db.close()


def _status(project: Path, *extra: str) -> list[str]:
    return ["status", "--config", str(project / "otaseal.yml"), *WINDOW, *extra]


def test_status_stats_text(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite://{tmp_path / 'stats.sqlite'}"
    _fill(url)
    assert cli.main(_status(project, "--stats", url)) == 0
    out = capsys.readouterr().out
    assert f"device stats from 2026-11-22T12:00:00Z to 2026-11-23T12:00:00Z ({tmp_path}" in out
    assert "1.1 (current): rollout 10 %" in out
    assert "1.0: rollout 100 %" in out
    assert "devices 5, checks 10, downloads 5, installs 4, rollbacks 1, failures set_fail=1" in out
    # (1 set_fail + 1 update_fail) of (4 set + 1 set_fail)
    assert "failure rate 40.0 % (2 of 5), 95 % upper bound 76.9 % (Wilson)" in out
    assert "adoption: 20.0 % of 20 devices checking in the hour from 2026-11-23 11:00Z" in out
    assert "(from 5.0 % at 11-23 08:00Z)" in out
    assert "production: newest event 58 min ago" in out
    assert "no failure rate: no install attempt reported" in out  # 1.0: checks only


def test_status_stats_json_html_and_markdown(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite://{tmp_path / 'stats.sqlite'}"
    _fill(url)
    html, md = tmp_path / "report.html", tmp_path / "section.md"
    args = _status(project, "--stats", url, "--json", "--html", str(html), "--markdown", str(md))
    assert cli.main(args) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    health = doc["health"]
    assert health["method"] == "Wilson score interval, 95 % two-sided, upper end"
    current = health["channels"]["production"]["releases"][0]
    assert (current["label"], current["rollout"], current["paused"]) == ("1.1", 10.0, False)
    assert (current["installs"], current["install_failures"], current["rollbacks"]) == (4, 1, 1)
    assert current["failures"] == {"set_fail": 1}
    assert current["failure_rate"] == 0.4
    assert current["failure_rate_upper"] == pytest.approx(0.7693, abs=1e-4)
    assert current["newest_event_age_seconds"] == 3539  # a check from a device running it
    assert current["evidence"] == "ok"
    shares = [p["share"] for p in health["channels"]["production"]["adoption"]]
    assert shares == [None] * 20 + [0.05, 0.1, 0.15, 0.2]
    assert health["channels"]["beta"]["releases"] == []
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<polyline" in page
    assert "<script" not in page
    section = md.read_text()
    block = re.search(r"```mermaid\n.*?\n```", section, re.DOTALL)
    assert block is not None
    body = check_xychart(block.group(0))
    assert body[3] == "    line [5.0, 10.0, 15.0, 20.0]"


def test_an_empty_stats_database_is_said_plainly(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite://{tmp_path / 'stats.sqlite'}"
    db = open_stats(url)
    db.migrate()
    db.close()
    assert cli.main(_status(project, "--stats", url)) == 0
    out = capsys.readouterr().out
    assert "stats missing: the stats database has no event for this app" in out
    assert "Stats missing: no device has reported anything about this release" in out
    assert "failure rate" not in out.replace("no failure rate", "")
    assert "0.0 %" not in out


def test_stale_stats_are_said_plainly(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite://{tmp_path / 'stats.sqlite'}"
    _fill(url)
    later = ["--since", "7d", "--until", "2026-11-24T12:00:00Z"]
    args = ["status", "--config", str(project / "otaseal.yml"), *later, "--stats", url]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "Stats stale: the newest event is 1 d ago, older than 6 h" in out
    assert cli.main([*args, "--stale-after", "2d"]) == 0
    assert "Stats stale" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        (["--html", "x.html"], 2, "no --stats was given"),
        (["--stats", "sqlite:///{tmp}/none.sqlite"], 5, "there is no stats database at"),
        (["--stats", "sqlite:///{tmp}/s.sqlite", "--stale-after", "soon"], 2, "not a duration"),
        (["--stats", "sqlite:///{tmp}/s.sqlite", "--stale-after", "0h"], 2, "not a duration"),
        (["--stats", "mysql://x"], 2, "unknown scheme"),
        (
            ["--stats", "sqlite:///{tmp}/s.sqlite", "--html", "{tmp}/no/dir/x.html"],
            2,
            "cannot write",
        ),
    ],
)
def test_bad_status_stats_input(
    *,
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    code: int,
    words: str,
) -> None:
    db = open_stats(f"sqlite://{tmp_path / 's.sqlite'}")
    db.migrate()
    db.close()
    args = [a.replace("{tmp}", str(tmp_path).lstrip("/")) for a in extra]
    assert cli.main(_status(project, *args)) == code
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err
