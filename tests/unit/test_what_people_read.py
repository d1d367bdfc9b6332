"""What a person reads must be true: CLI and operation messages seen by a new user (issue 10).

Each test asserts the text a user sees, for a case where the text was once wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from otaseal import publishing
from otaseal.cli import main
from otaseal.project import init_project
from tests.conftest import EXAMPLE_WEB, NOW


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


def _store_files(project_dir: Path) -> dict[str, bytes]:
    store = project_dir / "store"
    return {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*") if p.is_file()}


def test_a_label_reused_for_another_build_is_refused_and_nothing_is_written(
    project_dir: Path,
    web: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project_dir)
    assert _cli(capsys, "publish", str(web), "--channel", "beta", "--label", "1.4.2")[0] == 0
    (web / "app.js").write_text("console.log('v2')\n")
    before = _store_files(project_dir)

    code, _, err = _cli(capsys, "publish", str(web), "--channel", "production", "--label", "1.4.2")

    assert code == 2
    assert err.startswith("otaseal: error: label '1.4.2' already names another build on beta (")
    assert "Pass a label that says which build this is, e.g. `--label 1.4.2+<commit>`" in err
    assert _store_files(project_dir) == before


def test_the_same_build_may_keep_its_label_on_another_channel(
    project_dir: Path,
    web: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project_dir)
    (project_dir / "package.json").write_text("{}")  # no notice about a missing package.json
    assert _cli(capsys, "publish", str(web), "--channel", "beta", "--label", "1.4.2")[0] == 0

    code, out, err = _cli(
        capsys, "publish", str(web), "--channel", "production", "--label", "1.4.2"
    )

    assert code == 0, err
    assert out.startswith("production: v1 (publish 1.4.2)")


def test_a_label_that_names_two_builds_is_an_ambiguous_reference(
    project_dir: Path,
    web: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stores written before labels were checked can hold one label for two builds."""
    monkeypatch.chdir(project_dir)
    monkeypatch.setattr(publishing, "verify_label_unused", lambda *_args: None)
    assert _cli(capsys, "publish", str(web), "--channel", "beta", "--label", "1.4.2")[0] == 0
    (web / "app.js").write_text("console.log('v2')\n")
    assert _cli(capsys, "publish", str(web), "--channel", "beta", "--label", "1.4.2")[0] == 0

    promote = _cli(capsys, "promote", "--from", "beta", "--to", "production", "--release", "1.4.2")
    revert = _cli(capsys, "revert", "--channel", "beta", "--to", "1.4.2")

    for code, _, err in (promote, revert):
        assert code == 2
        assert "the label '1.4.2' names 2 different builds on beta: 1.4.2 (" in err
        assert "name the release by its digest" in err.lower()


def test_rollout_percent_out_of_range_names_percent(
    project_dir: Path,
    web: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project_dir)
    assert _cli(capsys, "publish", str(web), "--channel", "beta")[0] == 0

    code, _, err = _cli(capsys, "rollout", "--channel", "beta", "--percent", "150%")

    assert code == 2
    assert "e.g. `--percent 10` for 10 % of devices" in err
    assert "--rollout" not in err


ROOT_PROBLEMS = {
    "a public key": "it is not JSON",
    "another app's root": "the root metadata is for app 'com.example.other'",
    "an empty JSON object": "is not a string",
}


@pytest.mark.parametrize("case", sorted(ROOT_PROBLEMS))
def test_a_wrong_root_file_blames_the_file_not_the_store(
    case: str, project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root-file"
    if case == "a public key":
        root.write_bytes((project_dir / "keys" / "beta.pub.pem").read_bytes())
    elif case == "another app's root":
        init_project("com.example.other", tmp_path / "other", now=NOW)
        root.write_bytes((tmp_path / "other" / "root.json").read_bytes())
    else:
        root.write_text("{}")
    problem = ROOT_PROBLEMS[case]

    code, _, err = _cli(
        capsys,
        *("fetch", "--store", str(project_dir / "store"), "--app", "com.example.app"),
        *("--channel", "beta", "--root", str(root), "--install-id", "d1"),
        *("--decryption-key", str(project_dir / "keys" / "app-decryption.pem")),
        *("--state", str(tmp_path / "state"), "--out", str(tmp_path / "www")),
    )

    assert code == 3
    assert err.startswith(f"otaseal: error: --root {root} is not a root.json this device can trust")
    assert problem in err
    assert "Pass that file as --root; the store was not read." in err
    assert "store holds" not in err
    assert "republish" not in err
    assert not (tmp_path / "www").exists()


@pytest.mark.parametrize("app", ["com.Example.App", "com.example.my_app", "io.ionic.Starter"])
def test_real_mixed_case_app_ids_are_accepted_from_init_to_fetch(
    app: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    assert _cli(capsys, "init", "--app", app, "--dir", str(project))[0] == 0
    monkeypatch.chdir(project)
    code, _, err = _cli(capsys, "publish", str(EXAMPLE_WEB), "--channel", "beta")
    assert code == 0, err

    code, out, err = _cli(
        capsys,
        *("fetch", "--store", "store", "--app", app, "--channel", "beta", "--root", "root.json"),
        *("--decryption-key", "keys/app-decryption.pem", "--install-id", "d1"),
        *("--state", str(tmp_path / "state"), "--out", str(tmp_path / "www")),
    )

    assert code == 0, err
    assert out.startswith("installed r1")
    assert (project / "store" / app / "channels" / "beta" / "manifest.json").is_file()


def test_another_case_is_another_app(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(
        capsys,
        *("fetch", "--store", str(project_dir / "store"), "--app", "com.Example.app"),
        *("--channel", "beta", "--root", str(project_dir / "root.json"), "--install-id", "d1"),
        *("--decryption-key", str(project_dir / "keys" / "app-decryption.pem")),
        *("--state", str(project_dir / "state"), "--out", str(project_dir / "www")),
    )

    assert code == 3
    assert "is for app 'com.example.app'" in err


def test_channel_names_stay_lowercase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(
        capsys,
        *("fetch", "--store", str(tmp_path), "--app", "com.Example.App", "--channel", "Beta"),
        *("--decryption-key", "k", "--state", str(tmp_path / "s"), "--install-id", "d1"),
        *("--out", str(tmp_path / "www")),
    )

    assert code == 2
    assert "channel name 'Beta' is not allowed" in err


def test_a_paused_rollout_says_what_devices_do(
    project_dir: Path,
    web: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project_dir)
    assert _cli(capsys, "publish", str(web), "--channel", "beta", "--rollout", "20")[0] == 0

    code, out, _ = _cli(capsys, "rollout", "--channel", "beta", "--pause")
    _, status, _ = _cli(capsys, "status")

    paused = "at 20 % (paused: no device moves to it; devices already on it keep it)"
    assert code == 0
    assert out.startswith("beta: v2 (pause r1): serves r1 (")
    assert paused in out
    assert paused in status


def test_a_false_positive_secret_file_ships_with_allow_in_otaseal_yml(
    project_dir: Path,
    web: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project_dir)
    (web / "demo.key").write_text("a test fixture, not a key\n")
    code, _, err = _cli(capsys, "publish", str(web), "--channel", "beta")
    assert code == 2
    assert "`allow:` in otaseal.yml or pass `--allow-file PATTERN`" in err
    config = project_dir / "otaseal.yml"
    config.write_text(config.read_text() + "allow: ['*.key']\n")

    assert _cli(capsys, "publish", str(web), "--channel", "beta")[0] == 0
