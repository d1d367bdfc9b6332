"""The shipped migrations: numbered alike per dialect, split into statements, version rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from otaseal.serve import migrations
from otaseal.serve.db import StatsError


def test_both_dialects_ship_the_same_numbers() -> None:
    sqlite = migrations.load("sqlite")
    postgres = migrations.load("postgres")
    assert [m.number for m in sqlite] == [m.number for m in postgres]
    assert [m.name for m in sqlite] == [m.name for m in postgres]
    assert sqlite[0].name == "0001_events.sql"


def test_a_gap_in_the_numbers_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "schema" / "sqlite"
    folder.mkdir(parents=True)
    (folder / "0001_a.sql").write_text("SELECT 1;")
    (folder / "0003_c.sql").write_text("SELECT 3;")
    (folder / "README").write_text("not a migration")
    monkeypatch.setattr(migrations.resources, "files", lambda _: tmp_path)
    with pytest.raises(StatsError, match="without gaps"):
        migrations.load("sqlite")
    (folder / "0002_b.sql").write_text("SELECT 2;")
    assert [m.name for m in migrations.load("sqlite")] == ["0001_a.sql", "0002_b.sql", "0003_c.sql"]


def test_sqlite_statements_split_complete_statements() -> None:
    sql = (
        "-- a comment\n"
        "CREATE TABLE a (x TEXT DEFAULT ';');\n"
        "CREATE INDEX i ON a (x);\n"
        "-- trailing comment only\n"
    )
    assert migrations.sqlite_statements(sql) == [
        "-- a comment\nCREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE INDEX i ON a (x);",
    ]


def test_sqlite_statements_keep_a_last_statement_without_semicolon() -> None:
    assert migrations.sqlite_statements("SELECT 1;\nSELECT 2") == ["SELECT 1;", "SELECT 2"]


def test_check_not_newer() -> None:
    migrations.check_not_newer(0, 1, "x")
    migrations.check_not_newer(1, 1, "x")
    with pytest.raises(StatsError) as caught:
        migrations.check_not_newer(2, 1, "/var/lib/stats.sqlite")
    text = caught.value.diagnostics()
    assert "/var/lib/stats.sqlite is at schema version 2, newer than this otaseal" in text
    assert "Expected schema version 1 or older" in text
