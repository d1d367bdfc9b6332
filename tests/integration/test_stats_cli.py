"""``otaseal stats`` against both backends, outside any project (no otaseal.yml)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from otaseal.cli import main
from otaseal.serve.db import StatsEvent, open_stats
from servers import free_port

APP = "com.example.app"
T = 1_795_435_200_000  # 2026-11-23T12:00:00Z
WINDOW = ["--since", "2026-11-23", "--until", "2026-11-24"]


def _fill(url: str) -> None:
    db = open_stats(url)
    db.migrate()

    def e(action: str, version: str, dev: int, **kw: Any) -> StatsEvent:
        return StatsEvent(APP, str(uuid.UUID(int=dev)), action, version, received_ms=T, **kw)

    db.record(
        [
            e("check", "1.0", 1, channel="production"),
            e("check", "1.0", 2, channel="production"),
            e("download_complete", "1.1", 1, channel="production", timestamp_ms=T - 5),
            e("set", "1.1", 1, channel="production", timestamp_ms=T - 4),
            e("update_fail", "1.1", 2, channel="production", timestamp_ms=T - 3),
            e("download_fail", "1.0", 2, channel="production", timestamp_ms=T - 2),
            e("set", "0.9", 3, channel="beta", timestamp_ms=T - 2),
            StatsEvent("org.other.app", "d", "set", "5.0", received_ms=T),
            e("set", "0.1", 4, channel="production", timestamp_ms=T - 86_400_000),  # before
        ]
    )
    db.close()


@pytest.fixture(params=["sqlite", "postgres"])
def stats_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.chdir(tmp_path)  # no otaseal.yml here
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'stats.sqlite'}"
    else:
        server = request.getfixturevalue("postgres")
        url = server.create_database(f"cli_{uuid.uuid4().hex[:12]}")
    _fill(url)
    return str(url)


def test_stats_json(stats_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--stats", stats_url, "--app", APP, *WINDOW, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["since"], doc["until"], doc["app"]) == (
        "2026-11-23T00:00:00Z",
        "2026-11-24T00:00:00Z",
        APP,
    )
    rows = {(r["channel"], r["version"]): r for r in doc["releases"]}
    assert set(rows) == {("production", "1.0"), ("production", "1.1"), ("beta", "0.9")}
    assert rows[("production", "1.0")] == {
        "app": APP,
        "channel": "production",
        "version": "1.0",
        "checks": 2,
        "downloads": 0,
        "installs": 0,
        "failures": {"download_fail": 1},
        "rollbacks": 0,
        "devices": 2,
    }
    target = rows[("production", "1.1")]
    assert (target["downloads"], target["installs"], target["rollbacks"]) == (1, 1, 1)


def test_stats_text_for_every_app(stats_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--stats", stats_url, *WINDOW]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "stats from 2026-11-23T00:00:00Z to 2026-11-24T00:00:00Z:"
    assert lines[1].split() == [
        "APP",
        "CHANNEL",
        "RELEASE",
        "CHECKS",
        "DOWNLOADS",
        "INSTALLS",
        "ROLLBACKS",
        "DEVICES",
        "FAILURES",
    ]
    assert lines[2].split() == [APP, "beta", "0.9", "0", "0", "1", "0", "1", "-"]
    assert lines[-1].split() == ["org.other.app", "-", "5.0", "0", "0", "1", "0", "1", "-"]
    assert len(lines) == 6


def test_stats_bad_url_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--stats", "sqlite://db.example.com/x.db", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["type"] == "InputError"
    assert captured.err.count("\n") == 1
    assert "names the host 'db.example.com'" in captured.err


def test_stats_unreachable_database_is_exit_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://otaseal:pw-not-shown@127.0.0.1:{free_port()}/stats"
    assert main(["stats", "--stats", url]) == 5
    err = capsys.readouterr().err
    assert "pw-not-shown" not in err
    assert "Connection refused" in err
    assert err.count("\n") == 1
    assert main(["stats", "--stats", f"sqlite://{tmp_path / 'missing.sqlite'}"]) == 5
    assert "no stats database at" in capsys.readouterr().err
    assert not (tmp_path / "missing.sqlite").exists()


def test_stats_default_url_is_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    _fill(f"sqlite://{tmp_path / 'state' / 'otaseal' / 'stats.sqlite'}")
    assert main(["stats", *WINDOW, "--app", "org.other.app"]) == 0
    assert "org.other.app" in capsys.readouterr().out


def test_stats_as_a_process(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'stats.sqlite'}"
    _fill(url)
    done = subprocess.run(
        [sys.executable, "-m", "otaseal", "stats", "--stats", url, *WINDOW, "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["releases"]) == 4
    bad = subprocess.run(
        [sys.executable, "-m", "otaseal", "stats", "--stats", "nope"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
