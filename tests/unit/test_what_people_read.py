"""What a person reads must be true: CLI and operation messages seen by a new user (issue 10).

Each test asserts the text a user sees, for a case where the text was once wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from otaseal.cli import main


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_of_a_fresh_project_claims_no_interrupted_publish(
    project_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project_dir)

    code, out, _ = _cli(capsys, "status")

    assert code == 0
    assert "beta         (empty)" in out
    assert "production   (empty)" in out
    assert "interrupted" not in out
    assert "v0" not in out


def test_percent_with_a_percent_sign_is_accepted(
    project_dir: Path,
    web: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project_dir)
    assert _cli(capsys, "publish", str(web), "--channel", "beta", "--rollout", "10%")[0] == 0

    code, out, err = _cli(capsys, "rollout", "--channel", "beta", "--percent", "25 %")

    assert code == 0, err
    assert "beta: v2 (rollout r1 to 25 %): serves r1 (" in out
