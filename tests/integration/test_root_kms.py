"""The root key in AWS KMS (a moto server on 127.0.0.1): add it, drop the file key, renew with
KMS alone, sign a proposal with it; devices that ship root v1 follow every step."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from tests.lifecycle import Lifecycle

from otaseal import cli
from otaseal.operations import now_utc

if TYPE_CHECKING:
    from pathlib import Path

    from servers import Server

REGION = "us-east-1"


@pytest.fixture
def kms_key(moto: Server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    import boto3

    kms = boto3.session.Session(region_name=REGION).client("kms")
    meta: dict[str, Any] = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")[
        "KeyMetadata"
    ]
    return f"kms://{meta['KeyId']}"


def _root(life: Lifecycle, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    code = cli.main(["root", *argv, "--json", "--config", str(life.dir / "otaseal.yml")])
    out = capsys.readouterr()
    assert code == 0, out
    return json.loads(out.out)


def test_the_root_key_moves_into_kms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kms_key: str
) -> None:
    life = Lifecycle.create(tmp_path)
    life.clock.now = now_utc()  # the CLI signs roots by the wall clock
    file_key = f"file:{life.dir / 'keys' / 'root.pem'}"
    file_id = _root(life, capsys, "show")["roles"]["root"]["keyids"][0]
    added = _root(life, capsys, "add-key", "--role", "root", kms_key)
    assert len(added["roles"]["root"]["keyids"]) == 2
    kms_id = next(k for k in added["roles"]["root"]["keyids"] if k != file_id)
    # v3 drops the file key: the old root (file or KMS) and the new root (KMS) must both sign.
    dropped = _root(life, capsys, "remove-key", "--role", "root", file_id, "--key", kms_key)
    assert dropped["roles"]["root"]["keyids"] == [kms_id]
    life.set_key("root", kms_key)
    assert _root(life, capsys, "renew")["root_version"] == 4
    proposal = tmp_path / "next.root.json"
    _root(life, capsys, "propose", "renew", "--out", str(proposal))
    signed = _root(life, capsys, "sign", str(proposal), "--key", kms_key)
    assert signed["signed_by"] == [kms_id]
    assert signed["ready"]
    assert _root(life, capsys, "publish", str(proposal))["root_version"] == 5
    with pytest.raises(AssertionError):  # the file key is no root key any more
        _root(life, capsys, "renew", "--key", file_key)
    life.publish("1.0.0")
    code, doc = life.fetch(capsys, "field")
    assert code == 0, doc
    assert life.installed_label("field") == "1.0.0"
