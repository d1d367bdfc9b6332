from __future__ import annotations

import stat
from pathlib import Path

import pytest

from otaseal import trust
from otaseal.config import find_config, load_config
from otaseal.errors import ConfigError, InputError
from otaseal.project import init_project, keygen
from tests.conftest import APP, NOW


def test_init_creates_keys_0600_root_and_config(project_dir: Path) -> None:
    for name in ("root.pem", "beta.pem", "production.pem", "app-decryption.pem", "report.pem"):
        mode = stat.S_IMODE((project_dir / "keys" / name).stat().st_mode)
        assert mode == 0o600, name
    root = trust.verify_trusted_root((project_dir / "root.json").read_bytes(), app=APP)
    assert root.version == 1
    assert root.channels() == ["beta", "production"]
    assert (root.expires - NOW).days == 365
    config = load_config(project_dir / "otaseal.yml")
    assert config.app == APP
    assert config.channels == ("beta", "production")
    assert (project_dir / "store" / APP / "root" / "1.root.json").is_file()


def test_init_refuses_existing_project(project_dir: Path) -> None:
    with pytest.raises(InputError, match="already exists"):
        init_project(APP, project_dir, now=NOW)


@pytest.mark.parametrize("app", ["Com Example", "-app", "a" * 70, "app/x", ""])
def test_init_refuses_bad_app_id(tmp_path: Path, app: str) -> None:
    with pytest.raises(InputError, match="app id"):
        init_project(app, tmp_path / "p", now=NOW)


def test_keygen_writes_private_0600_and_public(tmp_path: Path) -> None:
    result = keygen("signing", tmp_path / "k.pem", algorithm="ed25519")
    assert stat.S_IMODE(result.private_key.stat().st_mode) == 0o600
    assert result.public_key.name == "k.pub.pem"
    assert len(result.keyid) == 64
    enc = keygen("encryption", tmp_path / "e.pem")
    assert enc.algorithm == "hpke-p256"
    with pytest.raises(InputError, match="already exists"):
        keygen("signing", tmp_path / "k.pem")
    with pytest.raises(InputError, match="unknown key kind"):
        keygen("nope", tmp_path / "n.pem")
    with pytest.raises(InputError, match="does not exist"):
        keygen("signing", tmp_path / "missing" / "k.pem")


def test_find_config_explains_missing_project(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="otaseal init"):
        find_config(None, tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app: [", "not valid YAML"),
        ("- a\n- b\n", "not a mapping"),
        ("app: x\nbogus: 1\n", "unknown field"),
        ("store: s\n", "`app`"),
        ("app: Bad!\nchannels: [beta]\n", "app id"),
        ("app: a\nchannels: []\n", "channels"),
        ("app: a\nchannels: [Beta]\n", "channel name"),
        ("app: a\nchannels: [beta]\nkeys: 3\n", "keys"),
        ("app: a\nchannels: [beta]\nkeys: {beta: file:k}\n", "recipients"),
        (
            "app: a\nchannels: [beta]\nkeys: {beta: file:k}\nrecipients: [file:r]\n"
            "manifest_expiry_days: 0\n",
            "manifest_expiry_days",
        ),
        (
            "app: a\nchannels: [beta]\nkeys: {beta: file:k}\nrecipients: [file:r]\n"
            "s3_endpoint: 3\n",
            "s3_endpoint",
        ),
        (
            "app: a\nchannels: [beta]\nkeys: {beta: file:k}\nrecipients: [file:r]\n"
            "report_recipient: 3\n",
            "report_recipient",
        ),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "otaseal.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "otaseal.yml" in info.value.diagnostics()


def test_config_resolves_relative_file_refs(project_dir: Path) -> None:
    config = load_config(project_dir / "otaseal.yml")
    assert config.key_ref("beta") == f"file:{project_dir.resolve()}/keys/beta.pem"
    with pytest.raises(ConfigError, match="names no key"):
        config.key_ref("staging")
    with pytest.raises(InputError, match="not in otaseal.yml"):
        config.check_channel("staging")
