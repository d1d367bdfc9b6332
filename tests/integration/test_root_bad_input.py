"""``otaseal root`` on bad input: one paragraph, exit 2, nothing written to store or root.json."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from otaseal import cli
from otaseal.operations import now_utc
from otaseal.project import init_project, keygen

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

APP = "com.example.app"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    init_project(APP, tmp_path / "p", now=now_utc())
    return tmp_path / "p"


def _files(project: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(project)): p.read_bytes()
        for p in sorted(project.rglob("*"))
        if p.is_file() and "keys" not in p.parts and not p.name.endswith(".json.tmp")
    }


def _refused(
    project: Path, capsys: pytest.CaptureFixture[str], *argv: str, expect: str
) -> dict[str, object]:
    before = _files(project)
    capsys.readouterr()
    code = cli.main(["root", *argv, "--json", "--config", str(project / "otaseal.yml")])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    error = json.loads(captured.out)["error"]
    assert "\n" not in error["message"]
    assert expect in error["message"], error["message"]
    assert _files(project) == before  # nothing in the store, root.json unchanged
    return error


def _p384(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP384R1())
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def test_a_key_reference_that_cannot_be_read(project: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _refused(
        project, capsys, "add-key", "--role", "root", "file:/nonexistent/k.pem", expect="k.pem"
    )
    _refused(
        project,
        capsys,
        "rotate-channel",
        "beta",
        "env:OTASEAL_NO_SUCH_KEY",
        expect="OTASEAL_NO_SUCH_KEY",
    )


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (lambda d: _p384(d / "p384.pub.pem"), "Expected an ECDSA P-256 or Ed25519 public key"),
        (lambda d: keygen("capgo", d / "rsa.pem").public_key, "otaseal keygen --kind signing"),
        (lambda d: d / "p" / "keys" / "app-decryption.pub.pem", "the app's decryption key"),
    ],
    ids=["p384-curve", "rsa-algorithm", "decryption-key"],
)
def test_a_key_of_the_wrong_algorithm_or_curve(
    project: Path,
    capsys,
    tmp_path: Path,
    make: Callable[[Path], Path],
    expect: str,  # type: ignore[no-untyped-def]
) -> None:
    path = make(tmp_path)
    _refused(project, capsys, "add-key", "--role", "root", f"file:{path}", expect=expect)


def test_removing_the_last_key_of_a_role(project: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert cli.main(["root", "show", "--json", "--config", str(project / "otaseal.yml")]) == 0
    roles = json.loads(capsys.readouterr().out)["roles"]
    _refused(
        project,
        capsys,
        "remove-key",
        "--role",
        "root",
        roles["root"]["keyids"][0],
        expect="last key of root",
    )
    _refused(
        project,
        capsys,
        "remove-key",
        "--role",
        "beta",
        roles["channel:beta"]["keyids"][0][:12],
        expect="last key of channel:beta",
    )


@pytest.mark.parametrize(
    ("n", "expect"),
    [("2", "a threshold of 2"), ("0", "a threshold of 0"), ("-1", "a threshold of -1")],
)
def test_a_threshold_above_the_keys_or_below_1(project: Path, capsys, n: str, expect: str) -> None:  # type: ignore[no-untyped-def]
    _refused(project, capsys, "threshold", "--role", "root", f"{n}", expect=expect)


@pytest.mark.parametrize("expires", ["2020-01-01T00:00:00Z", "-5d", "0d"])
def test_an_expiry_in_the_past(project: Path, capsys, expires: str) -> None:  # type: ignore[no-untyped-def]
    _refused(project, capsys, "renew", f"--expires-in={expires}", expect="not after now")


def test_signing_a_proposal_for_another_app(project: Path, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proposal = tmp_path / "next.root.json"
    config = ["--config", str(project / "otaseal.yml")]
    assert cli.main(["root", "propose", "renew", "--out", str(proposal), *config]) == 0
    before = proposal.read_bytes()
    capsys.readouterr()
    code = cli.main(
        [
            "root",
            "sign",
            str(proposal),
            "--app",
            "com.other.app",
            "--json",
            "--key",
            f"file:{project / 'keys' / 'root.pem'}",
        ]
    )
    assert code == 2
    assert (
        "for the app 'com.example.app'" in json.loads(capsys.readouterr().out)["error"]["message"]
    )
    assert proposal.read_bytes() == before


def test_publishing_a_proposal_whose_version_is_not_the_next(
    project: Path,
    capsys,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    config = ["--config", str(project / "otaseal.yml")]
    first, second = tmp_path / "a.root.json", tmp_path / "b.root.json"
    for path in (first, second):
        assert cli.main(["root", "propose", "renew", "--out", str(path), *config]) == 0
        key = f"file:{project / 'keys' / 'root.pem'}"
        assert cli.main(["root", "sign", str(path), "--key", key, *config]) == 0
    assert cli.main(["root", "publish", str(first), *config]) == 0
    _refused(project, capsys, "publish", str(second), expect="the store's newest root is v2")


def test_rotating_a_channel_to_a_public_key_cannot_re_sign_it(project: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    keygen("signing", project / "beta-2.pem")
    config = ["--config", str(project / "otaseal.yml")]
    web = project / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><p>hi</p>")
    assert cli.main(["publish", str(web), "--channel", "beta", "--label", "1.0.0", *config]) == 0
    _refused(
        project,
        capsys,
        "rotate-channel",
        "beta",
        f"file:{project / 'beta-2.pub.pem'}",
        expect="--channel-key beta=KEYREF",
    )


def test_proposal_files_and_options_that_are_wrong(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    existing = tmp_path / "taken.json"
    existing.write_text("{}")
    _refused(project, capsys, "propose", "renew", "--out", str(existing), expect="already exists")
    _refused(project, capsys, "publish", str(tmp_path / "none.json"), expect="cannot read")
    _refused(project, capsys, "publish", str(existing), expect="is not a root proposal")
    _refused(project, capsys, "renew", "--channel-key", "beta", expect="is not CHANNEL=KEYREF")
    monkeypatch.chdir(tmp_path)  # no otaseal.yml here, and no --app: which app is meant?
    capsys.readouterr()
    key = f"file:{project / 'keys' / 'root.pem'}"
    assert cli.main(["root", "sign", str(existing), "--key", key, "--json"]) == 2
    assert "Pass --app" in json.loads(capsys.readouterr().out)["error"]["message"]
    assert existing.read_text() == "{}"


def test_root_show_names_roles_and_key_ids(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli.main(["root", "show", "--config", str(project / "otaseal.yml")]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{APP} root v1, expires ")
    assert "  channel:beta           1 of 1\n" in text
    assert "(ecdsa-p256-sha256)" in text
