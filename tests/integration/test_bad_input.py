"""Bad input through the CLI: a clear error, a non-zero exit, and nothing changed anywhere.

Every case runs ``otaseal ... --json`` as a user would and checks: the exit code is non-zero,
stdout is exactly one JSON object ``{"error": {"type", "message"}}`` whose message names what was
wrong and what to do, stderr has no Python traceback, and neither the store (folder or bucket) nor
anything else in the test's directory changed.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from helpers import (
    APP,
    bucket_snapshot,
    error_json,
    folder_snapshot,
    make_build,
    ok_json,
    otaseal,
)

from otaseal.operations import publish
from otaseal.project import keygen
from servers import free_port

if TYPE_CHECKING:
    from pathlib import Path

    from otaseal.operations import Project
    from servers import Server

IS_ROOT = os.geteuid() == 0


@dataclass(frozen=True)
class Case:
    """One bad command: its argv (``{build}``, ``{tmp}`` filled in), a config edit, the error."""

    args: tuple[str, ...]
    error: str
    words: tuple[str, ...]
    edit: tuple[str, str] | None = None


BETA_KEY = "beta: file:keys/beta.pem"
RECIPIENT = "  - file:keys/app-decryption.pub.pem"
FETCH = (
    "fetch",
    "--store",
    "{tmp}/project/store",
    "--channel",
    "beta",
    "--root",
    "{tmp}/project/root.json",
    "--decryption-key",
    "{tmp}/project/keys/app-decryption.pem",
    "--state",
    "{tmp}/device",
    "--install-id",
    "d1",
    "--out",
    "{tmp}/www",
)

CASES = {
    # --- release management on the wrong channel state
    "promote-unknown-release": Case(
        ("promote", "--from", "beta", "--to", "production", "--release", "9.9.9"),
        "InputError",
        ("'9.9.9' is not on beta", "1.0.0", "publish it to beta first"),
    ),
    "promote-from-empty-channel": Case(
        ("promote", "--from", "production", "--to", "beta"),
        "InputError",
        ("production has no release yet", "publish to production first"),
    ),
    "revert-with-no-earlier-release": Case(
        ("revert", "--channel", "beta"),
        "InputError",
        ("beta has no earlier release to revert to", "--to builtin"),
    ),
    "revert-to-unknown-release": Case(
        ("revert", "--channel", "beta", "--to", "0.0.1"),
        "InputError",
        ("'0.0.1' was never on beta", "otaseal history --channel beta"),
    ),
    "revert-empty-channel": Case(
        ("revert", "--channel", "production"),
        "InputError",
        ("production has no release to revert", "publish to production first"),
    ),
    "rollout-on-empty-channel": Case(
        ("rollout", "--channel", "production", "--percent", "50"),
        "InputError",
        ("production has no release yet", "publish to production first"),
    ),
    "rollout-150": Case(
        ("rollout", "--channel", "beta", "--percent", "150"),
        "InputError",
        ("rollout 150 is outside 0–100", "between 0 and 100"),
    ),
    "rollout-minus-1": Case(
        ("rollout", "--channel", "beta", "--percent", "-1"),
        "InputError",
        ("rollout -1 is outside 0–100", "between 0 and 100"),
    ),
    "rollout-not-a-number": Case(
        ("rollout", "--channel", "beta", "--percent", "ten"),
        "InputError",
        ("'ten' is not a number", "0 to 100"),
    ),
    "publish-rollout-150": Case(
        ("publish", "{build}", "--channel", "beta", "--rollout", "150"),
        "InputError",
        ("rollout 150 is outside 0–100",),
    ),
    "promote-rollout-minus-1": Case(
        ("promote", "--from", "beta", "--to", "production", "--rollout", "-1"),
        "InputError",
        ("rollout -1 is outside 0–100",),
    ),
    # --- build directory
    "build-dir-missing": Case(
        ("publish", "{tmp}/no-such-dist", "--channel", "beta"),
        "InputError",
        ("no-such-dist does not exist", "Run the web build first"),
    ),
    "build-dir-empty": Case(
        ("publish", "{tmp}/empty", "--channel", "beta"),
        "InputError",
        ("contains no files", "Run the web build"),
    ),
    "build-dir-is-a-file": Case(
        ("publish", "{build}/index.html", "--channel", "beta"),
        "InputError",
        ("index.html is not a directory", "output folder"),
    ),
    # --- names
    "channel-uppercase": Case(
        ("publish", "{build}", "--channel", "Beta"),
        "InputError",
        ("channel name 'Beta' is not allowed", "[a-z0-9][a-z0-9._-]{0,62}", "lowercase"),
    ),
    "channel-with-space": Case(
        ("rollout", "--channel", "be ta", "--percent", "5"),
        "InputError",
        ("channel name 'be ta' is not allowed",),
    ),
    "channel-leading-dot": Case(
        ("history", "--channel", ".beta"), "InputError", ("channel name '.beta' is not allowed",)
    ),
    "channel-64-chars": Case(
        ("publish", "{build}", "--channel", "a" * 64), "InputError", ("is not allowed", "{0,62}")
    ),
    "channel-not-configured": Case(
        ("publish", "{build}", "--channel", "staging"),
        "InputError",
        ("channel 'staging' is not in otaseal.yml", "beta, production", "add it to `channels:`"),
    ),
    "app-id-on-fetch": Case(
        (*FETCH, "--app", "Com Example"),
        "InputError",
        ("app id 'Com Example' is not allowed", "letters, digits, '.', '_' and '-'"),
    ),
    "app-id-in-config": Case(
        ("publish", "{build}", "--channel", "beta"),
        "ConfigError",
        ("otaseal.yml", "app id 'com_example app' is not allowed"),
        edit=(f"app: {APP}", "app: com_example app"),
    ),
    "channel-name-in-config": Case(
        ("status",),
        "ConfigError",
        ("otaseal.yml", "channel name 'Prod' is not allowed"),
        edit=("channels: [beta, production]", "channels: [beta, Prod]"),
    ),
    # --- keys
    "key-file-missing": Case(
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("missing.pem (the signing key for beta) is not readable", "Check the path"),
        edit=(BETA_KEY, "beta: file:keys/missing.pem"),
    ),
    "key-path-is-a-directory": Case(
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("(the signing key for beta) is not readable", "Is a directory"),
        edit=(BETA_KEY, "beta: file:keys"),
    ),
    "key-malformed": Case(
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("garbage.pem (the signing key for beta)", "neither PEM nor base64", "BEGIN/END lines"),
        edit=(BETA_KEY, "beta: file:keys/garbage.pem"),
    ),
    "key-truncated-pem": Case(
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("truncated.pem",),
        edit=(BETA_KEY, "beta: file:keys/truncated.pem"),
    ),
    "encryption-key-as-signing-key": Case(
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("app-decryption.pem", "is not a beta signing key", "the beta channel's key"),
    ),
    "public-key-as-signing-key": Case(
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("beta.pub.pem is not a readable private key", "otaseal keygen"),
        edit=(BETA_KEY, "beta: file:keys/beta.pub.pem"),
    ),
    "ed25519-key-for-ecdsa-role": Case(
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("ed.pem", "is not a beta signing key", "root.json lists for channel:beta"),
        edit=(BETA_KEY, "beta: file:keys/ed.pem"),
    ),
    "production-key-configured-for-beta": Case(
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("production.pem", "is not a beta signing key", "a key of another channel cannot sign it"),
        edit=(BETA_KEY, "beta: file:keys/production.pem"),
    ),
    "beta-key-for-production-promote": Case(
        ("promote", "--from", "beta", "--to", "production"),
        "KeyMaterialError",
        ("beta.pem", "is not a production signing key"),
        edit=("production: file:keys/production.pem", "production: file:keys/beta.pem"),
    ),
    "decryption-key-as-recipient": Case(
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("app-decryption.pem (the recipient key) is a private key", "public recipient key"),
        edit=(RECIPIENT, "  - file:keys/app-decryption.pem"),
    ),
    "ed25519-key-as-recipient": Case(
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("ed.pub.pem is not a P-256 public key", "--kind encryption"),
        edit=(RECIPIENT, "  - file:keys/ed.pub.pem"),
    ),
    # --- store
    "store-under-a-file": Case(
        ("publish", "{build}", "--channel", "beta", "--store", "{tmp}/a-file/store"),
        "StoreError",
        ("a-file/store is not a folder", "Not a directory", "--store PATH"),
    ),
    "store-under-proc": Case(
        ("publish", "{build}", "--channel", "beta", "--store", "/proc/otaseal-store"),
        "StoreError",
        ("/proc/otaseal-store is not writable", "--store PATH"),
    ),
    "store-url-unsupported": Case(
        ("status", "--store", "https://cdn.example.invalid/x"),
        "InputError",
        ("unsupported store", "otaseal fetch --base-url"),
    ),
}


@pytest.fixture
def seeded(tmp_path: Path, project_dir: Path, project: Project) -> Path:
    """A project whose beta serves 1.0.0 (production is empty), plus props the cases use."""
    publish(project, make_build(tmp_path / "v1", "1.0.0"), channel="beta", label="1.0.0")
    make_build(tmp_path / "dist", "1.1.0")
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("not a folder\n")
    keys = project_dir / "keys"
    (keys / "garbage.pem").write_text("this is not a key\n")
    pem = (keys / "beta.pem").read_text().splitlines()
    (keys / "truncated.pem").write_text("\n".join(pem[: len(pem) // 2]) + "\n")
    keygen("signing", keys / "ed.pem", algorithm="ed25519")
    return tmp_path


def _edit_config(project_dir: Path, old: str, new: str) -> None:
    config = project_dir / "otaseal.yml"
    text = config.read_text()
    assert old in text, old
    config.write_text(text.replace(old, new))


def _run_bad(
    tmp: Path,
    args: tuple[str, ...],
    error_type: str,
    words: tuple[str, ...],
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run a failing command; everything under ``tmp`` (store, keys, builds) must be unchanged."""
    before = folder_snapshot(tmp)
    argv = [a.format(build=tmp / "dist", tmp=tmp) for a in args]
    config = [] if argv[0] == "fetch" else ["--config", str(tmp / "project" / "otaseal.yml")]
    error = error_json(otaseal(*argv, *config, "--json", env=env))
    assert error["type"] == error_type, error
    for word in words:
        assert word.lower() in error["message"].lower(), (word, error["message"])
    assert folder_snapshot(tmp) == before, "the command changed files"
    return error


@pytest.mark.parametrize("name", CASES)
def test_bad_input_fails_cleanly_and_changes_nothing(
    name: str, seeded: Path, project_dir: Path
) -> None:
    case = CASES[name]
    if name == "encryption-key-as-signing-key":
        _edit_config(project_dir, BETA_KEY, "beta: file:keys/app-decryption.pem")
    elif case.edit:
        _edit_config(project_dir, *case.edit)
    _run_bad(seeded, case.args, case.error, case.words)


@pytest.mark.skipif(IS_ROOT, reason="root reads and writes through file modes")
def test_unreadable_key_file(seeded: Path, project_dir: Path) -> None:
    (project_dir / "keys" / "beta.pem").chmod(0)
    _run_bad(
        seeded,
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("beta.pem (the signing key for beta) is not readable", "Permission denied"),
    )


@pytest.mark.skipif(IS_ROOT, reason="root writes through file modes; see store-under-a-file")
def test_read_only_store_folder(seeded: Path, project_dir: Path) -> None:
    store = project_dir / "store"
    for path in [store, *store.rglob("*")]:
        if path.is_dir():
            path.chmod(0o500)
    try:
        _run_bad(
            seeded,
            ("publish", "{build}", "--channel", "beta"),
            "StoreError",
            ("is not writable", "Permission denied", "fix the permissions"),
        )
    finally:
        for path in [store, *store.rglob("*")]:
            if path.is_dir():
                path.chmod(0o700)


def test_signing_public_key_as_recipient_is_refused(seeded: Path, project_dir: Path) -> None:
    _edit_config(project_dir, RECIPIENT, "  - file:keys/beta.pub.pem")
    _run_bad(
        seeded,
        ("publish", "{build}", "--channel", "beta"),
        "KeyMaterialError",
        ("beta.pub.pem", "signing key"),
    )


# --- S3 stores ---------------------------------------------------------------------------------
def _s3(store: str, endpoint: str) -> tuple[str, ...]:
    return ("--store", store, "--s3-endpoint", endpoint)


@pytest.mark.parametrize("command", ["publish", "status"])
def test_unreachable_s3_endpoint(seeded: Path, command: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # bound once, now closed: connection refused
    args = ("publish", "{build}", "--channel", "beta") if command == "publish" else ("status",)
    error = _run_bad(
        seeded,
        (*args, *_s3("s3://releases/app", endpoint)),
        "StoreError",
        (f"cannot reach the S3 endpoint {endpoint}", "Check --s3-endpoint"),
    )
    assert "Traceback" not in error["message"]


@pytest.fixture
def seaweed_store(seeded: Path, seaweedfs_env: Server, seaweedfs_bucket: str) -> tuple[str, str]:
    """A SeaweedFS bucket that already serves 1.0.0 on beta (published with good credentials)."""
    store = f"s3://{seaweedfs_bucket}/releases"
    ok_json(
        otaseal(
            "publish",
            str(seeded / "v1"),
            "--channel",
            "beta",
            "--label",
            "1.0.0",
            "--config",
            str(seeded / "project" / "otaseal.yml"),
            *_s3(store, seaweedfs_env.url),
            "--json",
        )
    )
    return store, seaweedfs_env.url


@pytest.mark.parametrize(
    ("variable", "value", "code"),
    [
        ("AWS_SECRET_ACCESS_KEY", "wrong-secret-3f9a", "SignatureDoesNotMatch"),
        ("AWS_ACCESS_KEY_ID", "AKIDUNKNOWN3F9A", "InvalidAccessKeyId"),
    ],
    ids=["wrong-secret", "unknown-access-key"],
)
def test_wrong_credentials_are_refused_and_the_bucket_is_unchanged(  # noqa: PLR0917
    seeded: Path,
    seaweed_store: tuple[str, str],
    seaweedfs_s3: Any,
    seaweedfs_bucket: str,
    variable: str,
    value: str,
    code: str,
) -> None:
    before = bucket_snapshot(seaweedfs_s3, seaweedfs_bucket)
    env = dict(os.environ, **{variable: value})
    for args in [
        ("publish", "{build}", "--channel", "beta"),
        ("promote", "--from", "beta", "--to", "production"),
        ("rollout", "--channel", "beta", "--percent", "50"),
        ("status",),
    ]:
        error = _run_bad(
            seeded,
            (*args, *_s3(*seaweed_store)),
            "StoreError",
            ("refused the credentials", code, "AWS_ACCESS_KEY_ID"),
            env=env,
        )
        assert value not in error["message"]
    assert bucket_snapshot(seaweedfs_s3, seaweedfs_bucket) == before


# SeaweedFS creates a missing bucket on the first PUT, so only reads can meet a missing bucket
# there; moto answers NoSuchBucket to writes too, like AWS.
@pytest.mark.parametrize(
    ("server", "commands"),
    [("moto", ("publish", "status")), ("seaweedfs", ("status",))],
    ids=["moto", "seaweedfs"],
)
def test_bucket_that_does_not_exist(
    request: pytest.FixtureRequest,
    seeded: Path,
    server: str,
    commands: tuple[str, ...],
    make_s3_client: Any,
) -> None:
    if server == "seaweedfs":
        request.getfixturevalue("seaweedfs_env")
    running: Server = request.getfixturevalue(server)
    admin = make_s3_client(running)
    buckets = sorted(b["Name"] for b in admin.list_buckets()["Buckets"])
    missing = f"otaseal-missing-{uuid.uuid4().hex[:12]}"
    for command in commands:
        args = ("publish", "{build}", "--channel", "beta") if command == "publish" else ("status",)
        _run_bad(
            seeded,
            (*args, *_s3(f"s3://{missing}/releases", running.url)),
            "StoreError",
            (f"bucket {missing} does not exist", "Create it or fix --store"),
        )
    assert sorted(b["Name"] for b in admin.list_buckets()["Buckets"]) == buckets
