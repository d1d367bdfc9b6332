"""The whole release story through the CLI on real S3 servers over loopback.

SeaweedFS checks real SigV4: publish → promote at 10 % → rollout 100 → revert, with devices
fetching both through ``--store s3://`` (credentials) and through ``--base-url`` (anonymous plain
HTTP against the public-read bucket, as a bucket website or CDN serves it). A shorter run against
moto adds revert to the builtin build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from helpers import (
    APP,
    allow_public_read,
    installed_text,
    make_build,
    ok_json,
    otaseal,
)

from otaseal.store.s3 import CACHE_IMMUTABLE, CACHE_MUTABLE
from otaseal.trust import rollout_bucket

if TYPE_CHECKING:
    from pathlib import Path

    from servers import Server

PREFIX = "releases"


class Cli:
    """The ``otaseal`` CLI pointed at one project and one S3 store."""

    def __init__(self, project_dir: Path, store: str, endpoint: str, tmp: Path) -> None:
        self.project_dir, self.store, self.endpoint, self.tmp = project_dir, store, endpoint, tmp
        self.target = ["--store", store, "--s3-endpoint", endpoint, "--json"]

    def run(self, *args: str) -> dict[str, Any]:
        return ok_json(
            otaseal(*args, "--config", str(self.project_dir / "otaseal.yml"), *self.target)
        )

    def fetch(self, device: str, *, base_url: str | None = None) -> dict[str, Any]:
        """One update check of ``device`` (its own state and install dir) on production."""
        where = ["--base-url", base_url] if base_url else self.target[:4]
        home = self.tmp / "devices" / device
        return ok_json(
            otaseal(
                "fetch",
                *where,
                "--json",
                "--app",
                APP,
                "--channel",
                "production",
                "--root",
                str(self.project_dir / "root.json"),
                "--decryption-key",
                str(self.project_dir / "keys" / "app-decryption.pem"),
                "--state",
                str(home / "state"),
                "--install-id",
                device,
                "--out",
                str(home / "www"),
            )
        )

    def running(self, device: str) -> str:
        return installed_text(self.tmp / "devices" / device / "www")


def _device_ids(salt: str, basis_points: int, prefix: str) -> tuple[str, str]:
    """Two install ids for production: one inside a ``basis_points`` cohort, one outside."""
    ids = [f"{prefix}-{i}" for i in range(1000)]
    inside = next(i for i in ids if rollout_bucket(APP, "production", salt, i) < basis_points)
    outside = next(i for i in ids if rollout_bucket(APP, "production", salt, i) >= basis_points)
    return inside, outside


def _assert_release(doc: dict[str, Any], label: str, counter: int, rollout: float) -> None:
    release = doc["release"]
    assert (release["label"], release["release_counter"], release["rollout"]) == (
        label,
        counter,
        rollout,
    )
    assert release["paused"] is False


def _publish_two(cli: Cli) -> tuple[dict[str, Any], dict[str, Any]]:
    first = cli.run(
        "publish",
        str(make_build(cli.tmp / "b1", "1.0.0")),
        "--channel",
        "beta",
        "--label",
        "1.0.0",
        "--commit",
        "a" * 40,
        "--pr",
        "7",
    )
    assert (first["channel"], first["manifest_version"], first["event"], first["noop"]) == (
        "beta",
        1,
        "publish 1.0.0",
        False,
    )
    assert first["store"] == cli.store
    _assert_release(first, "1.0.0", 1, 100.0)
    assert (first["release"]["commit"], first["release"]["pr"]) == ("a" * 40, 7)
    second = cli.run(
        "publish",
        str(make_build(cli.tmp / "b2", "1.1.0")),
        "--channel",
        "beta",
        "--label",
        "1.1.0",
        "--commit",
        "b" * 40,
        "--pr",
        "8",
    )
    assert (second["manifest_version"], second["event"]) == (2, "publish 1.1.0")
    _assert_release(second, "1.1.0", 2, 100.0)
    assert second["previous"]["label"] == "1.0.0"
    return first, second


def test_seaweedfs_publish_promote_rollout_revert_fetch(
    tmp_path: Path,
    project_dir: Path,
    seaweedfs_env: Server,
    seaweedfs_bucket: str,
    seaweedfs_s3: Any,
) -> None:
    allow_public_read(seaweedfs_s3, seaweedfs_bucket)
    cli = Cli(project_dir, f"s3://{seaweedfs_bucket}/{PREFIX}", seaweedfs_env.url, tmp_path)
    base_url = f"{seaweedfs_env.url}/{seaweedfs_bucket}/{PREFIX}"
    first, second = _publish_two(cli)

    # 1.0.0 goes to production for everyone, then 1.1.0 for 10 %: the same bytes as on beta.
    promoted = cli.run("promote", "--from", "beta", "--to", "production", "--release", "1.0.0")
    assert (promoted["channel"], promoted["manifest_version"], promoted["event"]) == (
        "production",
        1,
        "promote 1.0.0 from beta",
    )
    _assert_release(promoted, "1.0.0", 1, 100.0)
    staged = cli.run("promote", "--from", "beta", "--to", "production", "--rollout", "10")
    assert (staged["manifest_version"], staged["event"]) == (2, "promote 1.1.0 from beta")
    _assert_release(staged, "1.1.0", 2, 10.0)
    assert staged["release"]["bundle_sha256"] == second["bundle_sha256"]
    assert (staged["release"]["commit"], staged["release"]["pr"]) == ("b" * 40, 8)
    assert staged["previous"]["label"] == "1.0.0"
    bundles = [
        k["Key"]
        for k in seaweedfs_s3.list_objects_v2(
            Bucket=seaweedfs_bucket, Prefix=f"{PREFIX}/{APP}/bundles/"
        )["Contents"]
    ]
    patches = len(second.get("patches", []))  # 1.1.0's sealed patch from 1.0.0 (SPEC §19)
    assert len(bundles) == 2 + patches, "promote uploads nothing"

    salt = staged["release"]["rollout_salt"]
    inside, outside = _device_ids(salt, 1000, "phone")
    web_inside, web_outside = _device_ids(salt, 1000, "web")
    for device, url in [
        (inside, None),
        (outside, None),
        (web_inside, base_url),
        (web_outside, base_url),
    ]:
        expected = "1.1.0" if device in {inside, web_inside} else "1.0.0"
        doc = cli.fetch(device, base_url=url)
        assert (doc["status"], doc["label"], doc["manifest_version"]) == ("installed", expected, 2)
        assert cli.running(device) == expected

    # Raising to 100 %: the device outside the 10 % cohort gets 1.1.0; the inside one keeps it.
    full = cli.run("rollout", "--channel", "production", "--percent", "100")
    assert (full["manifest_version"], full["event"]) == (3, "rollout 1.1.0 to 100 %")
    _assert_release(full, "1.1.0", 2, 100.0)
    assert full["release"]["rollout_salt"] == staged["release"]["rollout_salt"]
    for device, url in [(outside, None), (web_outside, base_url)]:
        doc = cli.fetch(device, base_url=url)
        assert (doc["status"], doc["label"], doc["manifest_version"]) == ("installed", "1.1.0", 3)
        assert cli.running(device) == "1.1.0"
    kept = cli.fetch(inside)
    assert (kept["status"], kept["manifest_version"]) == ("up_to_date", 3)
    assert cli.running(inside) == "1.1.0"

    # Revert: production serves 1.0.0 again; every device goes back, over S3 and over HTTP.
    reverted = cli.run("revert", "--channel", "production")
    assert (reverted["manifest_version"], reverted["event"]) == (4, "revert to 1.0.0")
    _assert_release(reverted, "1.0.0", 1, 100.0)
    assert reverted["previous"]["label"] == "1.1.0"
    assert reverted["release"]["bundle_sha256"] == first["bundle_sha256"]
    for device in (inside, outside):
        doc = cli.fetch(device)
        assert (doc["status"], doc["label"], doc["manifest_version"]) == ("installed", "1.0.0", 4)
        assert cli.running(device) == "1.0.0"
    for device in (web_inside, web_outside, "web-new"):
        doc = cli.fetch(device, base_url=base_url)
        assert (doc["status"], doc["label"], doc["manifest_version"]) == ("installed", "1.0.0", 4)
        assert cli.running(device) == "1.0.0"

    # What people read afterwards.
    state = cli.run("status")
    assert state["store"] == cli.store
    assert state["channels"]["production"]["current"]["label"] == "1.0.0"
    assert state["channels"]["production"]["manifest_version"] == 4
    assert state["channels"]["beta"]["current"]["label"] == "1.1.0"
    events = [e["event"] for e in cli.run("history", "--channel", "production")["history"]]
    assert events == [
        "promote 1.0.0 from beta",
        "promote 1.1.0 from beta",
        "rollout 1.1.0 to 100 %",
        "revert to 1.0.0",
    ]
    # Bundles are cached forever, the pointer revalidated on every request.
    head = seaweedfs_s3.head_object(Bucket=seaweedfs_bucket, Key=bundles[0])
    assert head["CacheControl"] == CACHE_IMMUTABLE
    head = seaweedfs_s3.head_object(
        Bucket=seaweedfs_bucket, Key=f"{PREFIX}/{APP}/channels/production/manifest.json"
    )
    assert head["CacheControl"] == CACHE_MUTABLE


def test_moto_release_flow_down_to_the_builtin_build(
    tmp_path: Path, project_dir: Path, moto: Server, moto_bucket: str
) -> None:
    cli = Cli(project_dir, f"s3://{moto_bucket}/{PREFIX}", moto.url, tmp_path)
    _publish_two(cli)
    cli.run("promote", "--from", "beta", "--to", "production", "--release", "1.0.0")
    staged = cli.run("promote", "--from", "beta", "--to", "production", "--rollout", "10")
    _assert_release(staged, "1.1.0", 2, 10.0)
    full = cli.run("rollout", "--channel", "production", "--percent", "100")
    _assert_release(full, "1.1.0", 2, 100.0)
    doc = cli.fetch("phone")
    assert (doc["status"], doc["label"]) == ("installed", "1.1.0")

    reverted = cli.run("revert", "--channel", "production")
    _assert_release(reverted, "1.0.0", 1, 100.0)
    doc = cli.fetch("phone")
    assert (doc["status"], doc["label"], doc["manifest_version"]) == ("installed", "1.0.0", 4)
    assert cli.running("phone") == "1.0.0"

    builtin = cli.run("revert", "--channel", "production", "--to", "builtin")
    assert (builtin["manifest_version"], builtin["event"], builtin["builtin"]) == (
        5,
        "revert to builtin",
        True,
    )
    doc = cli.fetch("phone")
    assert (doc["status"], doc["out"]) == ("builtin", None)
    assert not (tmp_path / "devices" / "phone" / "www").exists()
