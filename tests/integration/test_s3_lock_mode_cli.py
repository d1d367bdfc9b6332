"""The opt-in lock mode, reached the way a user reaches it: a CLI flag or a config field."""

from __future__ import annotations

from pathlib import Path

from helpers import make_build, ok_json, otaseal

from servers import Server


def test_publish_and_promote_with_s3_lock_mode(
    tmp_path: Path, project_dir: Path, moto: Server, moto_bucket: str, moto_s3: object
) -> None:
    store = f"s3://{moto_bucket}/updates"
    common = ["--store", store, "--s3-endpoint", moto.url, "--json"]
    build = make_build(tmp_path / "v1", "1.0.0")
    published = ok_json(
        otaseal(
            "publish", str(build), "--channel", "beta", "--s3-lock-mode", *common, cwd=project_dir
        )
    )
    assert published["manifest_version"] == 1
    config = project_dir / "otaseal.yml"
    config.write_text(config.read_text() + "s3_lock_mode: true\n")
    promoted = ok_json(
        otaseal("promote", "--from", "beta", "--to", "production", *common, cwd=project_dir)
    )
    assert promoted["release"]["bundle_sha256"] == published["bundle_sha256"]
    keys = {o["Key"] for o in moto_s3.list_objects_v2(Bucket=moto_bucket)["Contents"]}  # type: ignore[attr-defined]
    assert "updates/com.example.app/channels/production/1.json" in keys
    assert not any(k.endswith(".lock") for k in keys if "channels" in k)
