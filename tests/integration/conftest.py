"""Shared fixtures for tests against real servers on 127.0.0.1.

``moto`` and ``seaweedfs`` are session-wide servers (started on first use, stopped by PID);
``moto_bucket`` / ``seaweedfs_bucket`` give each test a fresh bucket. Every test here runs with a
sandboxed AWS environment: fake credentials, no config files and no instance metadata lookups, so
nothing ever reaches a real cloud endpoint.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from servers import Server, start_moto, start_seaweedfs  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

REGION = "us-east-1"
MOTO_ACCESS_KEY = "testing"
MOTO_SECRET_KEY = "testing-secret"


@pytest.fixture(autouse=True)
def _aws_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No real credentials, profiles, or metadata endpoints: only what the test sets."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    missing = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def _s3_client(server: Server, **config: Any) -> Any:
    """A boto3 S3 client for ``server`` with the server's own credentials (path-style)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=server.extra.get("access_key", MOTO_ACCESS_KEY),
        aws_secret_access_key=server.extra.get("secret_key", MOTO_SECRET_KEY),
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            **config,
        ),
    )


def _fresh_bucket(client: Any) -> str:
    name = f"otaseal-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def make_s3_client() -> Any:
    """``make_s3_client(server, **botocore_config)``: a fresh admin client (e.g. to hook events)."""
    return _s3_client


@pytest.fixture(scope="session")
def moto() -> Iterator[Server]:
    """A moto server (S3, KMS, Secrets Manager) shared by the session."""
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[Server]:
    """A SeaweedFS server (real SigV4 and storage) shared by the session; ~5 s to start."""
    server = start_seaweedfs()
    yield server
    server.stop()


@pytest.fixture
def moto_s3(moto: Server) -> Any:
    """An admin S3 client on the moto server."""
    return _s3_client(moto)


@pytest.fixture
def moto_bucket(moto_s3: Any) -> str:
    """A new, empty bucket on the moto server."""
    return _fresh_bucket(moto_s3)


@pytest.fixture
def seaweedfs_s3(seaweedfs: Server) -> Any:
    """An admin S3 client on the SeaweedFS server."""
    return _s3_client(seaweedfs)


@pytest.fixture
def seaweedfs_bucket(seaweedfs_s3: Any) -> str:
    """A new, empty bucket on the SeaweedFS server."""
    return _fresh_bucket(seaweedfs_s3)


@pytest.fixture
def seaweedfs_env(seaweedfs: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """Put the SeaweedFS credentials in the environment, as a CI job would."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.extra["access_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.extra["secret_key"])
    return seaweedfs


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A throwaway PostgreSQL on 127.0.0.1 (tests/pg.py): skips without pg_ctl, fails on CI."""
    import os

    from pg import PACKAGE, find_bin, start_postgres

    if find_bin() is None:
        why = f"no pg_ctl on PATH or in /usr/lib/postgresql/*/bin: install Debian's {PACKAGE}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why + " (make sysdeps does it as root)")
    server = start_postgres()
    yield server
    server.stop()
