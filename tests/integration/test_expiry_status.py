"""``otaseal status`` warns from 60 days before the root or a channel manifest expires and fails
from 14 days, so a scheduled job goes red in time (the Action's ``status``: test_action.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from otaseal import cli
from otaseal.operations import now_utc
from otaseal.project import init_project

if TYPE_CHECKING:
    from pathlib import Path

APP = "com.example.app"


def _status(directory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = cli.main(["status", "--json", "--config", str(directory / "otaseal.yml")])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("age_days", "code", "levels"),
    [(300, 0, []), (320, 0, ["warning"]), (352, 3, ["error"]), (400, 3, ["error"])],
    ids=["65-days-left", "45-days-left", "13-days-left", "expired"],
)
def test_cli_status_on_an_ageing_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], age_days: int, code: int, levels: list[str]
) -> None:
    init_project(APP, tmp_path / "p", now=now_utc() - timedelta(days=age_days))
    got, doc = _status(tmp_path / "p", capsys)
    assert got == code
    assert [n["level"] for n in doc["expiry"]] == levels
    if levels:
        assert doc["expiry"][0]["what"] == "root v1"
        assert "otaseal root renew" in doc["expiry"][0]["message"]


def test_cli_status_after_renewing_is_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init_project(APP, tmp_path / "p", now=now_utc() - timedelta(days=352))
    assert _status(tmp_path / "p", capsys)[0] == 3
    capsys.readouterr()
    assert cli.main(["root", "renew", "--config", str(tmp_path / "p" / "otaseal.yml")]) == 0
    code, doc = _status(tmp_path / "p", capsys)
    assert (code, doc["expiry"]) == (0, [])
