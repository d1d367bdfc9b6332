"""Device decryption key rotation: `otaseal recipients` edits otaseal.yml, releases open for all.

The overlap story: add the new key, publish, and both an app that ships the old key and one
that ships the new key install the same release; remove the old key and only the new app can.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from otaseal.cli import main
from otaseal.client import check_for_update
from otaseal.config import load_config
from otaseal.errors import DecryptionError
from otaseal.operations import Project, open_store, publish
from otaseal.project import keygen
from otaseal.secrets import resolve_decryption_key
from otaseal.store.folder import FolderStore
from tests.conftest import NOW

if TYPE_CHECKING:
    from pathlib import Path

APP = "com.example.app"


def run(
    capsys: pytest.CaptureFixture[str], *args: str, json_mode: bool = True
) -> tuple[int, str, str]:
    code = main([*args, "--json"] if json_mode else list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _doc(out: str) -> dict[str, object]:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    doc = json.loads(lines[0])
    assert isinstance(doc, dict)
    return doc


def _project(project_dir: Path) -> Project:
    config = load_config(project_dir / "otaseal.yml")
    return Project(config, open_store(config.store), clock=lambda: NOW)


def _device(project_dir: Path, tmp_path: Path, name: str, key_path: Path, *, channel: str = "beta"):
    key = resolve_decryption_key(f"file:{key_path}", mask=lambda _: None)
    return check_for_update(
        FolderStore(project_dir / "store"),
        app=APP,
        channel=channel,
        state_dir=tmp_path / f"state-{name}",
        decryption_key=key,
        install_id=name,
        out_dir=tmp_path / f"www-{name}",
        now=NOW,
        initial_root=(project_dir / "root.json").read_bytes(),
    )


def test_old_and_new_app_keys_both_install_the_release_published_during_the_overlap(
    project_dir: Path,
    tmp_path: Path,
    web: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project_dir)
    old_key = project_dir / "keys" / "app-decryption.pem"
    new = keygen("encryption", project_dir / "keys" / "app-decryption-2.pem")
    code, out, _ = run(capsys, "recipients", "add", "keys/app-decryption-2.pub.pem")
    assert code == 0
    added = _doc(out)
    assert added["keyid"] == new.keyid
    assert added["ref"] == "file:keys/app-decryption-2.pub.pem"
    assert len(added["recipients"]) == 2  # type: ignore[arg-type]
    assert "until every installed app version" in str(added["overlap_rule"])
    assert "  - file:keys/app-decryption-2.pub.pem\n" in (project_dir / "otaseal.yml").read_text()

    release = publish(_project(project_dir), web, channel="beta", label="2.0.0").release
    for name, key in (("old-app", old_key), ("new-app", project_dir / new.private_key)):
        result = _device(project_dir, tmp_path, name, key)
        assert (result.status, result.release) == ("installed", release), name

    # status names both keys for the current release, read from the bundle's header.
    code, out, _ = run(capsys, "status")
    sealed = _doc(out)["channels"]["beta"]["sealed_to"]  # type: ignore[index]
    old_id = load_old_keyid(project_dir)
    assert sorted(sealed) == sorted([old_id, new.keyid])
    code, text, _ = run(capsys, "status", json_mode=False)
    assert f"sealed to {old_id[:12]}, {new.keyid[:12]}" in text

    # After the overlap: remove the old key; the next release opens for the new app only.
    code, out, _ = run(capsys, "recipients", "remove", old_id[:12])
    assert code == 0
    assert [r["keyid"] for r in _doc(out)["recipients"]] == [new.keyid]  # type: ignore[attr-defined, index]
    (web / "index.html").write_text("<p>three</p>\n")
    publish(_project(project_dir), web, channel="beta", label="3.0.0")
    assert _device(project_dir, tmp_path, "new-app", project_dir / new.private_key).status == (
        "installed"
    )
    with pytest.raises(DecryptionError):
        _device(project_dir, tmp_path, "old-app", old_key)
    code, out, _ = run(capsys, "status")
    assert _doc(out)["channels"]["beta"]["sealed_to"] == [new.keyid]  # type: ignore[index]


def load_old_keyid(project_dir: Path) -> str:
    key = resolve_decryption_key(
        f"file:{project_dir / 'keys' / 'app-decryption.pem'}", mask=lambda _: None
    )
    return key.public.keyid


def _refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run(capsys, *args)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    message = _doc(out)["error"]["message"]  # type: ignore[index]
    assert isinstance(message, str)
    return message


def test_removing_the_last_recipient_is_refused(
    project_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project_dir)
    before = (project_dir / "otaseal.yml").read_bytes()
    message = _refused(capsys, "recipients", "remove", load_old_keyid(project_dir))
    assert "only recipient" in message
    assert (project_dir / "otaseal.yml").read_bytes() == before


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("keys/beta.pub.pem", "signing key"),
        ("keys/ed.pub.pem", "not a P-256 public key"),
        ("keys/app-decryption.pem", "private key"),
        ("keys/app-decryption.pub.pem", "already a recipient"),
        ("keys/missing.pub.pem", "keys/missing.pub.pem"),
    ],
    ids=["signing-key", "ed25519-curve", "private-key", "duplicate", "unreadable"],
)
def test_a_key_that_cannot_be_a_recipient_is_refused_and_nothing_changes(
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    words: str,
) -> None:
    monkeypatch.chdir(project_dir)
    keygen("signing", project_dir / "keys" / "ed.pem", algorithm="ed25519")
    before = (project_dir / "otaseal.yml").read_bytes()
    assert words in _refused(capsys, "recipients", "add", path)
    assert (project_dir / "otaseal.yml").read_bytes() == before


def test_remove_needs_one_matching_key_id(
    project_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project_dir)
    assert "no recipient key ids match" in _refused(capsys, "recipients", "remove", "00000000")
    assert "no recipient key ids match" in _refused(capsys, "recipients", "remove", "abc")


def test_list_and_a_flow_style_recipients_line(
    project_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project_dir)
    config = project_dir / "otaseal.yml"
    text = config.read_text()
    text = text.replace(
        "recipients:             # app decryption PUBLIC keys (several during a rotation)\n"
        "  - file:keys/app-decryption.pub.pem\n",
        "recipients: [file:keys/app-decryption.pub.pem]  # the app keys\n",
    )
    config.write_text(text)
    code, out, _ = run(capsys, "recipients", "list")
    assert code == 0
    assert _doc(out)["recipients"] == [
        {"keyid": load_old_keyid(project_dir), "ref": "file:keys/app-decryption.pub.pem"}
    ]
    new = keygen("encryption", project_dir / "keys" / "two.pem")
    code, out, _ = run(capsys, "recipients", "add", str(project_dir / "keys" / "two.pub.pem"))
    assert code == 0
    assert "recipients:  # the app keys\n" in config.read_text()
    assert [r.keyid for r in _recipients(project_dir)] == [load_old_keyid(project_dir), new.keyid]
    code, text_out, _ = run(capsys, "recipients", "list", json_mode=False)
    assert f"{new.keyid[:12]}  file:keys/two.pub.pem" in text_out


def _recipients(project_dir: Path):
    from otaseal.recipients import listed

    return listed(_project(project_dir))


def test_status_says_when_a_release_header_cannot_be_read(
    project_dir: Path,
    web: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project_dir)
    release = publish(_project(project_dir), web, channel="beta", label="1.0.0").release
    (project_dir / "store" / APP / "bundles" / f"{release.sha256}.cub").write_bytes(b"junk")
    code, out, _ = run(capsys, "status")
    assert code == 0  # status reports it; `otaseal audit` is what fails on it
    beta = _doc(out)["channels"]["beta"]  # type: ignore[index]
    assert beta["sealed_to"] is None  # type: ignore[index]
    assert "not a .cub bundle" in beta["sealed_to_error"]  # type: ignore[index]
    _code, text, _ = run(capsys, "status", json_mode=False)
    assert "sealed to (unreadable: " in text
