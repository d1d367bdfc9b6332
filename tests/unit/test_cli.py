from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otaseal.cli import main
from tests.conftest import EXAMPLE_WEB


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object], str]:
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1, captured.out
    return code, json.loads(lines[0]), captured.err


def test_whole_flow_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, init, _ = run(capsys, "init", "--app", "com.example.cli", "--dir", str(tmp_path / "p"))
    assert code == 0
    assert set(init) == {"config", "root", "store", "keys", "decryption_key", "formats"}
    assert set(init["keys"]) >= {"root", "beta", "production"}  # type: ignore[arg-type]
    monkeypatch.chdir(tmp_path / "p")
    code, pub, _ = run(
        capsys,
        "publish",
        str(EXAMPLE_WEB),
        "--channel",
        "beta",
        "--label",
        "1.0.0",
        "--rollout",
        "50",
        "--native-min",
        "3",
        "--commit",
        "a" * 40,
        "--pr",
        "9",
    )
    assert code == 0
    assert pub["channel"] == "beta"
    assert pub["manifest_version"] == 1
    assert pub["label"] == "1.0.0"
    assert pub["release_counter"] == 1
    assert len(str(pub["bundle_sha256"])) == 64
    assert int(pub["bundle_size"]) > int(pub["plaintext_size"]) > 0  # type: ignore[call-overload]
    code, again, err = run(capsys, "publish", str(EXAMPLE_WEB), "--channel", "beta")
    assert again["noop"] is True
    assert "nothing published" in err
    fetch_args = [
        "fetch",
        "--store",
        "store",
        "--app",
        "com.example.cli",
        "--channel",
        "beta",
        "--root",
        "root.json",
        "--decryption-key",
        "keys/app-decryption.pem",
        "--state",
        str(tmp_path / "state"),
        "--out",
        str(tmp_path / "www"),
        "--native",
        "3",
    ]
    # find a device inside the 50 % cohort
    for i in range(50):
        code, got, _ = run(
            capsys, *fetch_args, "--install-id", f"d{i}", "--state", str(tmp_path / f"state{i}")
        )
        if got["status"] == "installed":
            break
    assert got["status"] == "installed"
    assert got["label"] == "1.0.0"
    assert got["digest"] == pub["bundle_sha256"]
    assert (tmp_path / "www" / "index.html").read_bytes() == (
        EXAMPLE_WEB / "index.html"
    ).read_bytes()
    code, same, _ = run(
        capsys, *fetch_args, "--install-id", f"d{i}", "--state", str(tmp_path / f"state{i}")
    )
    assert same["status"] == "up_to_date"
    for args in (
        ["promote", "--from", "beta", "--to", "production", "--rollout", "10"],
        ["rollout", "--channel", "production", "--percent", "100"],
        ["rollout", "--channel", "production", "--pause"],
        ["revert", "--channel", "production", "--to", "builtin"],
        ["resign", "--channel", "beta"],
    ):
        code, doc, _ = run(capsys, *args)
        assert code == 0, doc
        assert doc["noop"] is False
    code, status, _ = run(capsys, "status")
    assert status["channels"]["production"]["builtin"] is True  # type: ignore[index]
    code, hist, _ = run(capsys, "history", "--channel", "production")
    assert [h["event"] for h in hist["history"]][-1] == "revert to builtin"  # type: ignore[index]
    # human output too
    assert main(["status"]) == 0
    assert "production" in capsys.readouterr().out
    assert main(["history", "--channel", "beta"]) == 0
    assert "publish 1.0.0" in capsys.readouterr().out


def test_errors_are_one_paragraph_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, doc, err = run(capsys, "status")
    assert code == 2
    assert "otaseal init" in doc["error"]["message"]  # type: ignore[index]
    assert "Traceback" not in err
    code, doc, _ = run(capsys, "publish")
    assert code == 2
    assert "DIST" in doc["error"]["message"]  # type: ignore[index]
    code, doc, _ = run(capsys, "init", "--app", "Bad App")
    assert code == 2
    code, doc, _ = run(
        capsys,
        "fetch",
        "--app",
        "a",
        "--channel",
        "b",
        "--decryption-key",
        "k",
        "--state",
        "s",
        "--install-id",
        "i",
        "--out",
        "o",
    )
    assert "exactly one of --store or --base-url" in doc["error"]["message"]  # type: ignore[index]
    code, doc, _ = run(capsys, "publish", "x", "--channel", "beta", "--rollout", "ten")
    assert "not a number" in doc["error"]["message"]  # type: ignore[index]


def test_keygen_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = run(capsys, "keygen", "--kind", "encryption", "--out", str(tmp_path / "k.pem"))
    assert code == 0
    assert doc["kind"] == "encryption"
    assert "PRIVATE" not in json.dumps(doc)
    assert main(["keygen", "--kind", "signing", "--out", str(tmp_path / "s.pem")]) == 0
    assert "key id" in capsys.readouterr().out


def test_version_starts_without_heavy_imports() -> None:
    code = (
        "import sys, otaseal.cli as c\n"
        "try:\n    c.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('boto3', 'cryptography', 'requests', 'yaml', 'hvac') "
        "if m in sys.modules]\nprint(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]"), out.stdout


def test_version_fast_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from otaseal import __version__, _entry

    monkeypatch.setattr(sys, "argv", ["otaseal", "--version"])
    assert _entry.main() == 0
    assert capsys.readouterr().out.strip() == f"otaseal {__version__}"
    monkeypatch.setattr(sys, "argv", ["otaseal", "status", "--json", "--config", "/nonexistent"])
    assert _entry.main() == 2
