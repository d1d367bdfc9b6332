"""The CLI's Capgo surface: keygen --kind capgo, init --formats, publish --json, key errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from otaseal import crypto
from otaseal.cli import main
from tests.conftest import EXAMPLE_WEB


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object], str]:
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1, captured.out
    return code, json.loads(lines[0]), captured.err


def test_keygen_capgo_writes_a_pkcs1_pair_and_the_public_key_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, _ = run(capsys, "keygen", "--kind", "capgo", "--out", str(tmp_path / "capgo.pem"))
    assert code == 0
    private, public = Path(str(doc["private_key"])), Path(str(doc["public_key"]))
    assert public == tmp_path / "capgo.pub.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = crypto.load_capgo_private_key(private.read_bytes())
    assert public.read_bytes().startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert crypto.load_capgo_public_key(public.read_bytes()) == key.public
    assert doc["key_id"] == doc["keyid"] == key.public.key_id
    assert doc["algorithm"] == "rsa-2048-pkcs1"
    assert doc["capacitor_public_key"] == public.read_text()

    assert main(["keygen", "--kind", "capgo", "--out", str(tmp_path / "two.pem")]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if '"publicKey":' in x)
    value = json.loads(line.split('"publicKey": ', 1)[1])
    assert value == (tmp_path / "two.pub.pem").read_text()
    assert value.startswith("-----BEGIN RSA PUBLIC KEY-----\n")
    assert "PRIVATE" not in out


def test_keygen_capgo_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "capgo.pem"
    target.write_text("keep me")
    code, doc, _ = run(capsys, "keygen", "--kind", "capgo", "--out", str(target))
    assert code == 2
    assert "already exists" in str(doc["error"])
    assert target.read_text() == "keep me"


def test_init_with_capgo_then_publish_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, init, _ = run(
        capsys,
        "init",
        "--app",
        "com.example.cli",
        "--dir",
        str(tmp_path / "p"),
        "--formats",
        "sealed,capgo",
    )
    assert code == 0
    assert init["formats"] == ["sealed", "capgo"]
    private = Path(str(init["capgo_private_key"]))
    public = Path(str(init["capgo_public_key"]))
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_bytes().startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert init["capacitor_public_key"] == public.read_text()
    config = (tmp_path / "p" / "otaseal.yml").read_text()
    assert "formats: [sealed, capgo]" in config
    assert "capgo: file:keys/capgo.pem" in config

    monkeypatch.chdir(tmp_path / "p")
    code, pub, _ = run(capsys, "publish", str(EXAMPLE_WEB), "--channel", "beta", "--label", "1.0")
    assert code == 0
    assert pub["formats"] == ["sealed", "capgo"]
    capgo = pub["capgo"]
    assert isinstance(capgo, dict)
    assert set(capgo) == {"path", "session_key", "checksum"}
    assert Path(capgo["path"]).is_file()
    assert capgo["path"].endswith(".capgo.zip")
    assert len(capgo["checksum"]) == 512
    assert pub["release"]["capgo"]["checksum"] == capgo["checksum"]  # type: ignore[index]

    assert main(["publish", str(EXAMPLE_WEB), "--channel", "beta"]) == 0
    assert "nothing published" in capsys.readouterr().out

    code, status, _ = run(capsys, "status")
    assert status["channels"]["beta"]["current"]["capgo"]["key_id"]  # type: ignore[index]


def test_init_refuses_formats_without_sealed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for formats in ("capgo", "sealed,cbor", ""):
        code, doc, _ = run(
            capsys, "init", "--app", "com.example.cli", "--dir", str(tmp_path), "--formats", formats
        )
        assert code == 2
        assert "sealed,capgo" in str(doc["error"])
    assert not (tmp_path / "otaseal.yml").exists()


def _store_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("key_line", "message"),
    [
        (None, "names no key for it"),
        ("  capgo: kms://alias/capgo\n", "remote signer cannot make Capgo"),
        ("  capgo: file:keys/beta.pem\n", "not a PKCS#1 RSA private key"),
    ],
)
def test_publish_with_a_bad_capgo_key_exits_2_and_publishes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key_line: str | None,
    message: str,
) -> None:
    assert main(["init", "--app", "com.example.cli", "--dir", str(tmp_path / "p")]) == 0
    capsys.readouterr()
    config = tmp_path / "p" / "otaseal.yml"
    text = config.read_text().replace("formats: [sealed]", "formats: [sealed, capgo]")
    if key_line is not None:
        text = text.replace("keys:", "keys:\n" + key_line.rstrip("\n"), 1)
    config.write_text(text)
    store = tmp_path / "p" / "store"
    before = _store_files(store)
    monkeypatch.chdir(tmp_path / "p")
    code = main(["publish", str(EXAMPLE_WEB), "--channel", "beta"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1  # one paragraph
    assert "Traceback" not in err
    assert _store_files(store) == before
