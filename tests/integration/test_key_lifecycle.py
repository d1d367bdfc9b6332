"""Years of key changes on a simulated clock, and devices that keep updating through all of them.

After every step three devices fetch beta with ``otaseal fetch``: one that has been in the field
since the start (its app ships root v1 and it keeps its state), a fresh install of that same app
(root v1, no state), and a fresh install of a new native build (the project's current root.json).
Each must install the newest release.
"""

from __future__ import annotations

import base64
import json
import shutil
from typing import TYPE_CHECKING

import pytest
from tests.lifecycle import APP, Lifecycle

from otaseal import cli
from otaseal.errors import InputError, StoreError
from otaseal.project import keygen
from otaseal.rootkeys import changes, ops
from otaseal.rootkeys import proposal as proposals
from otaseal.store import root_key

if TYPE_CHECKING:
    from pathlib import Path


def _every_device_installs(life: Lifecycle, capsys: pytest.CaptureFixture[str], step: str) -> None:
    newest = life.labels[-1]
    for device, root in (
        ("in-the-field", None),
        (f"fresh-{step}", None),
        (f"new-build-{step}", life.dir / "root.json"),
    ):
        code, doc = life.fetch(capsys, device, root=root)
        assert code == 0, (step, device, doc)
        assert life.installed_label(device) == newest, (step, device, doc)


def _root_version(life: Lifecycle) -> int:
    envelope = json.loads((life.dir / "root.json").read_text())
    return int(json.loads(base64.b64decode(envelope["payload"]))["version"])


def _sign_offline(tmp_path: Path, proposal_file: Path, key: Path, who: str) -> None:
    """`otaseal root sign` on another machine: a folder with only the proposal and one key."""
    machine = tmp_path / who
    machine.mkdir()
    shutil.copyfile(proposal_file, machine / "next.root.json")
    shutil.copyfile(key, machine / "root.pem")
    code = cli.main(
        [
            "root",
            "sign",
            str(machine / "next.root.json"),
            "--app",
            APP,
            "--key",
            f"file:{machine / 'root.pem'}",
        ]
    )
    assert code == 0
    shutil.copyfile(machine / "next.root.json", proposal_file)


def test_devices_follow_renewals_a_channel_rotation_and_a_2_of_3_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    life = Lifecycle.create(tmp_path)
    config = ["--config", str(life.dir / "otaseal.yml")]
    life.publish("1.0.0")
    _every_device_installs(life, capsys, "start")

    # Year 1 and 2: renew the root before it expires; devices walk v1 -> v2 -> v3 (v1 and v2
    # have expired by then: only the newest root must be current).
    for step, label in (("renew-1", "1.1.0"), ("renew-2", "1.2.0")):
        life.clock.advance(330)
        ops.apply(life.project(), changes.Renew())
        life.publish(label)
        _every_device_installs(life, capsys, step)
    assert _root_version(life) == 3

    # Rotate the beta key: root v4 revokes the old key and the same command re-signs beta's
    # current manifest with the new key, so beta works before anything new is published.
    life.clock.advance(20)
    new_beta = keygen("signing", life.dir / "keys" / "beta-2.pem")
    notices: list[str] = []
    public, signer = ops.rotation_key(life.project(), f"file:{new_beta.private_key}", "beta")
    assert signer is not None
    ops.apply(
        life.project(),
        changes.RotateChannel("beta", public),
        channel_signers={"beta": signer},
        notice=notices.append,
    )
    assert any("beta: re-signed manifest" in n for n in notices), notices
    _every_device_installs(life, capsys, "rotated-beta")
    life.set_key("beta", f"file:{new_beta.private_key}")
    life.publish("1.3.0")
    _every_device_installs(life, capsys, "after-rotation")

    # Two more root keys (v5, v6, signed by the first root key alone), then 2-of-3 with offline
    # signatures (v7): the proposal goes to two key holders, each signs with only their key.
    life.clock.advance(30)
    root_2 = keygen("signing", life.dir / "keys" / "root-2.pem")
    root_3 = keygen("signing", life.dir / "keys" / "root-3.pem")
    for key in (root_2, root_3):
        pub = ops.resolve_public(life.project(), f"file:{key.public_key}", "root")
        ops.apply(life.project(), changes.AddKey("root", pub))
    proposal_file = tmp_path / "next.root.json"
    proposal = ops.make_proposal(life.project(), changes.SetThreshold("root", 2), expires_in=None)
    proposal_file.write_bytes(proposal.to_json())
    _sign_offline(tmp_path, proposal_file, life.dir / "keys" / "root.pem", "holder-1")
    assert cli.main(["root", "publish", str(proposal_file), *config]) == 2  # 1 of 2: refused
    assert not (life.store / root_key(APP, 7)).exists()
    _sign_offline(tmp_path, proposal_file, root_3.private_key, "holder-3")
    assert cli.main(["root", "publish", str(proposal_file), *config]) == 0
    assert _root_version(life) == 7
    life.publish("1.4.0")
    _every_device_installs(life, capsys, "two-of-three")

    # Year 3: one key can no longer renew alone; two holders sign the renewal offline.
    life.clock.advance(280)
    with pytest.raises(InputError, match="root propose"):
        ops.apply(life.project(), changes.Renew())
    renewal = tmp_path / "renew.root.json"
    renewal.write_bytes(
        ops.make_proposal(life.project(), changes.Renew(), expires_in="400d").to_json()
    )
    _sign_offline(tmp_path, renewal, root_2.private_key, "holder-2b")
    _sign_offline(tmp_path, renewal, root_3.private_key, "holder-3b")
    loaded = proposals.load(renewal.read_bytes(), app=APP, source="renew.root.json")
    assert proposals.tally(loaded).ready
    assert cli.main(["root", "publish", str(renewal), *config]) == 0
    assert _root_version(life) == 8
    life.publish("1.5.0")
    _every_device_installs(life, capsys, "renew-2-of-3")


class _CrashBeforeManifests:
    """A store that dies when the rotation's re-signed manifest is written (after the root)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def create(self, key: str, data: bytes) -> bool:
        if "/channels/" in key:
            raise StoreError("simulated crash")
        return bool(self.inner.create(key, data))  # type: ignore[attr-defined]


def test_a_rotation_interrupted_after_the_root_is_finished_by_resign_channels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    life = Lifecycle.create(tmp_path)
    life.publish("1.0.0")
    new_beta = keygen("signing", life.dir / "keys" / "beta-2.pem")
    project = life.project()
    project.store = _CrashBeforeManifests(project.store)  # type: ignore[assignment]
    public, signer = ops.rotation_key(project, f"file:{new_beta.private_key}", "beta")
    with pytest.raises(StoreError, match="simulated crash"):
        ops.apply(project, changes.RotateChannel("beta", public), channel_signers={"beta": signer})
    assert (life.store / root_key(APP, 2)).exists()
    assert _root_version(life) == 1  # root.json is written last
    code, doc = life.fetch(capsys, "fresh-during-crash")
    assert (code, doc["error"]["type"]) == (3, "UnsignedMetadataError")

    config = ["--config", str(life.dir / "otaseal.yml")]
    capsys.readouterr()
    key = f"beta=file:{new_beta.private_key}"
    assert cli.main(["root", "resign-channels", "--channel-key", key, *config]) == 0
    assert "beta: re-signed manifest v1 as v2" in capsys.readouterr().out
    assert _root_version(life) == 2
    _every_device_installs(life, capsys, "finished")
    capsys.readouterr()
    assert cli.main(["root", "resign-channels", *config]) == 0  # nothing left to do
    assert "signed by the keys of the newest root" in capsys.readouterr().out
