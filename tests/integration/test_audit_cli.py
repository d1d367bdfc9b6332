"""`otaseal audit` as a CI job runs it: the CLI on a folder store and on S3 (moto over loopback).

A clean store exits 0 with one JSON object; a damaged Capgo artifact exits 4; a store that
cannot be reached exits 5 without a traceback.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import pytest
from helpers import error_json, make_build, ok_json, one_json, otaseal

if TYPE_CHECKING:
    from pathlib import Path

    from servers import Server

APP = "com.example.app"


@pytest.fixture(params=["folder", "s3", "s3-lock-mode"])
def store_args(request: pytest.FixtureRequest, project_dir: Path) -> list[str]:
    if request.param == "folder":
        return []
    moto: Server = request.getfixturevalue("moto")
    bucket: str = request.getfixturevalue("moto_bucket")
    args = ["--store", f"s3://{bucket}/updates", "--s3-endpoint", moto.url]
    return [*args, "--s3-lock-mode"] if request.param == "s3-lock-mode" else args


def _publish_and_promote(tmp_path: Path, project_dir: Path, store_args: list[str]) -> None:
    for label in ("1.0.0", "1.1.0"):
        build = make_build(tmp_path / label, label)
        ok_json(
            otaseal(
                "publish", str(build), "--channel", "beta", "--label", label, "--json",
                *store_args, cwd=project_dir,
            )
        )  # fmt: skip
    ok_json(
        otaseal(
            "promote", "--from", "beta", "--to", "production", "--json", *store_args,
            cwd=project_dir,
        )
    )  # fmt: skip


def test_audit_of_a_clean_store_exits_0_with_one_json_object(
    tmp_path: Path, project_dir: Path, store_args: list[str]
) -> None:
    _publish_and_promote(tmp_path, project_dir, store_args)
    doc = ok_json(otaseal("audit", "--json", *store_args, cwd=project_dir))
    assert doc["ok"] is True
    assert doc["findings"] == []
    assert doc["roots"]["versions"] == [1]
    assert doc["channels"]["beta"] == {"versions": 2, "newest": 2, "pointer": 2}
    assert doc["bundles_checked"] == 3  # two bundles and the second's sealed patch (SPEC §19)
    text = otaseal("audit", *store_args, cwd=project_dir)
    assert text.returncode == 0
    assert "OK: nothing a device would refuse" in text.stdout


def test_audit_catches_a_tampered_capgo_artifact(
    tmp_path: Path, moto: Server, moto_s3: Any
) -> None:
    """The Capgo artifact is checked like the .cub: length and SHA-256 as the manifest signs."""
    from tests.conftest import NOW

    from otaseal.project import init_project

    project_dir = tmp_path / "capgo-project"
    init_project(APP, project_dir, now=NOW, formats=["sealed", "capgo"])
    bucket = "audit-capgo"
    moto_s3.create_bucket(Bucket=bucket)
    store_args = ["--store", f"s3://{bucket}/u", "--s3-endpoint", moto.url]
    build = make_build(tmp_path / "b", "one")
    published = ok_json(
        otaseal("publish", str(build), "--channel", "beta", "--json", *store_args, cwd=project_dir)
    )
    key = f"u/{APP}/bundles/{published['release']['capgo']['sha256']}.capgo.zip"
    body = bytearray(moto_s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[0] ^= 1
    moto_s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    result = otaseal("audit", "--json", *store_args, cwd=project_dir)
    assert result.returncode == 4, result.stderr
    doc = one_json(result.stdout)
    assert [(f["code"], f["key"]) for f in doc["findings"]] == [
        ("capgo-hash", key.removeprefix("u/"))
    ]
    assert "Traceback" not in result.stderr


def test_audit_catches_a_missing_and_a_tampered_capgo_file_body(
    tmp_path: Path, moto: Server, moto_s3: Any
) -> None:
    """Manifest mode's bodies are named by a signed list: audit finds one gone or altered."""
    from tests.conftest import NOW

    from otaseal.project import init_project

    project_dir = tmp_path / "capgo-project"
    init_project(APP, project_dir, now=NOW, formats=["sealed", "capgo"])
    bucket = "audit-capgo-files"
    moto_s3.create_bucket(Bucket=bucket)
    store_args = ["--store", f"s3://{bucket}/u", "--s3-endpoint", moto.url]
    build = make_build(tmp_path / "b", "one")
    ok_json(
        otaseal("publish", str(build), "--channel", "beta", "--json", *store_args, cwd=project_dir)
    )
    listed = moto_s3.list_objects_v2(Bucket=bucket, Prefix=f"u/{APP}/capgo-files/")
    first, second = sorted(o["Key"] for o in listed["Contents"])[:2]
    moto_s3.delete_object(Bucket=bucket, Key=first)
    body = bytearray(moto_s3.get_object(Bucket=bucket, Key=second)["Body"].read())
    body[-1] ^= 1
    moto_s3.put_object(Bucket=bucket, Key=second, Body=bytes(body))

    result = otaseal("audit", "--json", *store_args, cwd=project_dir)

    assert result.returncode == 4, result.stderr
    doc = one_json(result.stdout)
    assert sorted((f["code"], f["key"]) for f in doc["findings"]) == [
        ("capgo-hash", second.removeprefix("u/")),
        ("capgo-missing", first.removeprefix("u/")),
    ]
    assert any("Capgo file body" in f["message"] for f in doc["findings"])


def test_audit_of_a_store_it_cannot_reach_exits_5(project_dir: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = otaseal(
        "audit", "--json", "--store", "s3://nowhere/u", "--s3-endpoint",
        f"http://127.0.0.1:{port}", cwd=project_dir, timeout=180,
    )  # fmt: skip
    assert result.returncode == 5
    assert error_json(result)["type"] == "StoreError"


def test_audit_stays_clean_through_root_renewal_and_a_channel_key_rotation(
    tmp_path: Path, project_dir: Path
) -> None:
    """What `otaseal root` writes is what audit accepts: a renewal and a rotated beta key."""
    from otaseal.project import keygen

    _publish_and_promote(tmp_path, project_dir, [])
    ok_json(otaseal("root", "renew", "--json", cwd=project_dir))
    keygen("signing", project_dir / "keys" / "beta-2.pem")
    ok_json(
        otaseal("root", "rotate-channel", "beta", "file:keys/beta-2.pem", "--json", cwd=project_dir)
    )
    config = project_dir / "otaseal.yml"
    config.write_text(config.read_text().replace("file:keys/beta.pem", "file:keys/beta-2.pem"))
    ok_json(
        otaseal(
            "publish", str(make_build(tmp_path / "2.0.0", "2.0.0")), "--channel", "beta",
            "--label", "2.0.0", "--json", cwd=project_dir,
        )
    )  # fmt: skip
    doc = ok_json(otaseal("audit", "--json", cwd=project_dir))
    assert doc["findings"] == []
    assert doc["roots"]["versions"] == [1, 2, 3]
    assert doc["channels"]["beta"] == {"versions": 4, "newest": 4, "pointer": 4}
