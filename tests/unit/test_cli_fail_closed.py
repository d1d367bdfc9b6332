"""``otaseal publish`` fails closed: exit 2 and an untouched store, or the override and its say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from otaseal.cli import main
from tests.conftest import EXAMPLE_WEB


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object], str]:
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1, captured.out
    return code, json.loads(lines[0]), captured.err


def _store(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _build(app: Path, text: str) -> str:
    target = app / f"dist-{text}"
    if not target.exists():
        shutil.copytree(EXAMPLE_WEB, target)
    (target / "index.html").write_text(f"<!doctype html><p>{text}</p>")
    return str(target)


def _package(app: Path, android: str, **more: str) -> None:
    deps = {"@capacitor/core": "6.1.0", "@capacitor/android": android, "react": "18.3.1", **more}
    (app / "package.json").write_text(json.dumps({"name": "shop", "dependencies": deps}))


@pytest.fixture
def app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    code, _, _ = _run(capsys, "init", "--app", "com.example.cli", "--dir", str(tmp_path / "p"))
    assert code == 0
    monkeypatch.chdir(tmp_path / "p")
    _package(tmp_path / "p", "6.1.0")
    return tmp_path / "p"


def test_staged_rollout_refused_then_replaced(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _build(app, "one")
    code, pub, _ = _run(capsys, "publish", first, "--channel", "beta", "--rollout", "10")
    assert code == 0
    assert pub["replaced_rollout"] is None
    assert len(str(pub["native_fingerprint"])) == 64
    before = _store(app / "store")
    second = _build(app, "two")
    code, doc, err = _run(capsys, "publish", second, "--channel", "beta")
    assert code == 2
    message = str(doc["error"]["message"])  # type: ignore[index]
    assert "staged rollout" in message
    assert "10 % of devices" in message
    assert "--replace-rollout" in message
    assert "Traceback" not in err
    assert _store(app / "store") == before
    code, again, err = _run(capsys, "publish", first, "--channel", "beta")
    assert (code, again["noop"]) == (0, True)
    assert "nothing published" in err
    code, pub, err = _run(capsys, "publish", second, "--channel", "beta", "--replace-rollout")
    assert code == 0
    assert pub["replaced_rollout"] == {
        "label": "r1",
        "bundle_sha256": pub["replaced_rollout"]["bundle_sha256"],  # type: ignore[index]
        "rollout": 10.0,
        "paused": False,
    }
    assert "replaced the staged rollout of r1" in err


def test_native_change_refused_then_let_through(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = _run(
        capsys, "publish", _build(app, "one"), "--channel", "beta", "--native-min", "40"
    )
    assert code == 0
    _package(app, "7.0.0", **{"@capgo/capacitor-updater": "7.1.0"})
    before = _store(app / "store")
    code, doc, _ = _run(capsys, "publish", _build(app, "two"), "--channel", "beta")
    assert code == 2
    message = str(doc["error"]["message"])  # type: ignore[index]
    assert "added @capgo/capacitor-updater 7.1.0" in message
    assert "@capacitor/android 6.1.0 → 7.0.0" in message
    assert "--native-min N" in message
    assert _store(app / "store") == before
    code, _, err = _run(
        capsys, "publish", _build(app, "two"), "--channel", "beta", "--native-min", "41"
    )
    assert code == 0
    assert "for native builds from 41 on" in err
    _package(app, "7.0.1")
    code, _, err = _run(
        capsys, "publish", _build(app, "three"), "--channel", "beta", "--accept-incompatible"
    )
    assert code == 0
    assert "accepted with --accept-incompatible" in err


def test_project_dir_option(app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "native-app"
    other.mkdir()
    _package(other, "5.0.0")
    code, _, _ = _run(
        capsys, "publish", _build(app, "one"), "--channel", "beta", "--project-dir", str(other)
    )
    assert code == 0
    # the working directory's package.json (6.1.0) is another native layer
    code, doc, _ = _run(capsys, "publish", _build(app, "two"), "--channel", "beta")
    assert code == 2
    assert "@capacitor/android 5.0.0 → 6.1.0" in str(doc["error"]["message"])  # type: ignore[index]
    empty = tmp_path / "no-package"
    empty.mkdir()
    code, _, err = _run(
        capsys, "publish", _build(app, "two"), "--channel", "beta", "--project-dir", str(empty)
    )
    assert code == 0
    assert f"no package.json in {empty}" in err
