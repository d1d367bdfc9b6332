"""Attacks on root changes and key rotation, against the publisher's checks and real devices.

Each test names the attack. A publisher-side refusal leaves the store byte for byte as it was; a
device-side refusal leaves the device's state unchanged and installs nothing new. Devices run
``otaseal fetch`` (tests/lifecycle.py); the store is the project's folder store.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from tests.lifecycle import APP, Lifecycle

from otaseal import cli, dsse
from otaseal.crypto import generate_signing_key
from otaseal.errors import InputError, StoreError
from otaseal.model import ChannelManifest, Role
from otaseal.project import keygen
from otaseal.rootkeys import changes, ops
from otaseal.rootkeys import proposal as proposals
from otaseal.store import manifest_key, pointer_key, root_key

if TYPE_CHECKING:
    from pathlib import Path

    from otaseal.crypto import SigningKey


@pytest.fixture
def life(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Lifecycle:
    """A project with 1.0.0 on beta, installed by the device ``field`` (shipped root v1)."""
    lifecycle = Lifecycle.create(tmp_path)
    lifecycle.publish("1.0.0")
    code, _ = lifecycle.fetch(capsys, "field")
    assert code == 0
    return lifecycle


def _root_key(life: Lifecycle) -> SigningKey:
    from otaseal.crypto import load_signing_key

    return load_signing_key((life.dir / "keys" / "root.pem").read_bytes())


def _state(life: Lifecycle, device: str) -> bytes:
    return b"".join(
        p.read_bytes()
        for p in sorted((life.dir.parent / "devices" / device).rglob("*"))
        if p.is_file()
    )


def _device_refuses(
    life: Lifecycle, capsys: pytest.CaptureFixture[str], error: str, device: str = "field"
) -> None:
    before = _state(life, device)
    code, doc = life.fetch(capsys, device)
    assert code == 3, doc
    assert doc["error"]["type"] == error, doc
    assert _state(life, device) == before
    assert life.installed_label(device) == "1.0.0"


def _rotate_root_proposal(life: Lifecycle, new: SigningKey) -> proposals.Proposal:
    """Root v2 whose root role is only ``new`` (the old root key is dropped)."""
    current, data = ops.newest_root(life.project())
    nxt = changes.next_root(
        current,
        changes.AddKey("root", new.public),
        now=life.clock.now,
        expires=life.clock.now + changes.DEFAULT_LIFETIME,
    )
    nxt = replace(
        nxt,
        keys={k: v for k, v in nxt.keys.items() if k not in current.roles["root"].keyids},
        roles={**nxt.roles, "root": Role((new.keyid,), 1)},
    )
    return proposals.propose(current, data, nxt)


def _store_raw(life: Lifecycle, key: str, data: bytes) -> None:
    """What an attacker with write access to the bucket does."""
    path = life.store / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_root_signed_only_by_the_new_keys(
    life: Lifecycle, capsys: pytest.CaptureFixture[str]
) -> None:
    new = generate_signing_key()
    proposal = proposals.add_signature(_rotate_root_proposal(life, new), new)
    before = life.store_files()
    with pytest.raises(InputError, match="old root keys 0 of 1 needed") as caught:
        ops.publish(life.project(), proposal)
    assert caught.value.exit_code == 2
    assert life.store_files() == before
    # Put in the store behind the publisher's back: devices refuse it and stay on root v1.
    _store_raw(life, root_key(APP, 2), proposal.envelope.to_json())
    _device_refuses(life, capsys, "UnsignedMetadataError")


def test_root_signed_only_by_the_old_keys(
    life: Lifecycle, capsys: pytest.CaptureFixture[str]
) -> None:
    proposal = proposals.add_signature(
        _rotate_root_proposal(life, generate_signing_key()), _root_key(life)
    )
    before = life.store_files()
    with pytest.raises(InputError, match="new root keys 0 of 1 needed"):
        ops.publish(life.project(), proposal)
    assert life.store_files() == before
    _store_raw(life, root_key(APP, 2), proposal.envelope.to_json())
    _device_refuses(life, capsys, "UnsignedMetadataError")


def test_one_signature_counted_twice_toward_a_2_of_2_root(
    life: Lifecycle, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    second = generate_signing_key()
    ops.apply(life.project(), changes.AddKey("root", second.public))  # v2: root keys 1 and 2
    proposal = ops.make_proposal(life.project(), changes.SetThreshold("root", 2), expires_in=None)
    signed = proposals.add_signature(proposal, _root_key(life))
    keyid, sig = signed.envelope.signatures[0]
    doubled = signed.with_signature(keyid, sig)
    path = tmp_path / "next.root.json"
    path.write_bytes(doubled.to_json())
    before = life.store_files()
    config = ["--config", str(life.dir / "otaseal.yml")]
    assert cli.main(["root", "publish", str(path), "--json", *config]) == 2
    message = json.loads(capsys.readouterr().out)["error"]["message"]
    assert f"two signatures by key {keyid}" in message
    assert life.store_files() == before
    # A device counts distinct key ids too: the doubled v3 is refused, the device keeps v2.
    _store_raw(life, root_key(APP, 3), doubled.envelope.to_json())
    _device_refuses(life, capsys, "UnsignedMetadataError")


def test_proposal_edited_after_one_signature(
    life: Lifecycle, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    second = keygen("signing", tmp_path / "root-2.pem")
    pub = ops.resolve_public(None, f"file:{second.public_key}", "root")
    ops.apply(life.project(), changes.AddKey("root", pub))
    proposal = ops.make_proposal(life.project(), changes.Renew(), expires_in=None)
    signed = proposals.add_signature(proposal, _root_key(life))
    path = tmp_path / "next.root.json"
    path.write_bytes(signed.to_json())
    # The file travels to the second key holder; on the way someone adds their own beta key.
    doc = json.loads(path.read_text())
    payload = json.loads(base64.b64decode(doc["next"]["payload"]))
    evil = generate_signing_key()
    payload["keys"][evil.keyid] = {
        "algorithm": "ecdsa-p256-sha256",
        "public": base64.b64encode(evil.public.der).decode(),
    }
    payload["roles"]["channel:beta"]["keyids"] = [evil.keyid]
    doc["next"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    path.write_text(json.dumps(doc))
    first = _root_key(life).keyid
    code = cli.main(
        ["root", "sign", str(path), "--app", APP, "--key", f"file:{second.private_key}", "--json"]
    )
    assert code == 2
    message = json.loads(capsys.readouterr().out)["error"]["message"]
    assert f"the signature by key {first} does not verify" in message
    assert "changed after that key signed it" in message
    before = life.store_files()
    assert cli.main(["root", "publish", str(path), "--config", str(life.dir / "otaseal.yml")]) == 2
    assert life.store_files() == before


def test_revoked_channel_key_signs_a_manifest_after_the_rotation(
    life: Lifecycle, capsys: pytest.CaptureFixture[str]
) -> None:
    old_beta = (life.dir / "keys" / "beta.pem").read_bytes()
    new_beta = keygen("signing", life.dir / "keys" / "beta-2.pem")
    public, signer = ops.rotation_key(life.project(), f"file:{new_beta.private_key}", "beta")
    ops.apply(
        life.project(), changes.RotateChannel("beta", public), channel_signers={"beta": signer}
    )
    code, _ = life.fetch(capsys, "field")  # walks to root v2; beta re-signed as manifest v2
    assert code == 0
    # The old key (say it leaked) signs 1.0.0 again as a huge version, straight into the store.
    from otaseal.crypto import load_signing_key

    current = life.project()
    served = ChannelManifest.from_payload(
        dsse.Envelope.from_json((life.store / pointer_key(APP, "beta")).read_bytes()).payload
    )
    forged = replace(served, version=10**9, event="leaked key")
    envelope = dsse.sign(
        dsse.PAYLOAD_TYPE_CHANNEL, forged.to_payload(), [load_signing_key(old_beta)]
    ).to_json()
    _store_raw(life, manifest_key(APP, "beta", 10**9), envelope)
    _store_raw(life, pointer_key(APP, "beta"), envelope)
    _device_refuses(life, capsys, "UnsignedMetadataError")
    code, doc = life.fetch(capsys, "fresh", root=life.dir / "root.json")
    assert (code, doc["error"]["type"]) == (3, "UnsignedMetadataError")
    # Publishing with the revoked key is refused before anything is written.
    life.set_key("beta", f"file:{life.dir / 'keys' / 'beta.pem'}")
    before = life.store_files()
    with pytest.raises(InputError, match="is not a beta signing key"):
        current.signer("beta")
    assert life.store_files() == before


def test_root_version_gap_v3_stored_without_v2(
    life: Lifecycle, capsys: pytest.CaptureFixture[str]
) -> None:
    # v3 that rotates beta to an attacker key and is signed by the real root key (as if a v2
    # had been skipped): devices only ever fetch N+1, so they stay on v1 and refuse its beta.
    attacker = generate_signing_key()
    current, _ = ops.newest_root(life.project())
    v3 = replace(
        changes.next_root(
            current,
            changes.RotateChannel("beta", attacker.public),
            now=life.clock.now,
            expires=life.clock.now + changes.DEFAULT_LIFETIME,
        ),
        version=3,
    )
    _store_raw(
        life,
        root_key(APP, 3),
        dsse.sign(dsse.PAYLOAD_TYPE_ROOT, v3.to_payload(), [_root_key(life)]).to_json(),
    )
    served = ChannelManifest.from_payload(
        dsse.Envelope.from_json((life.store / pointer_key(APP, "beta")).read_bytes()).payload
    )
    envelope = dsse.sign(
        dsse.PAYLOAD_TYPE_CHANNEL, replace(served, version=2).to_payload(), [attacker]
    ).to_json()
    _store_raw(life, pointer_key(APP, "beta"), envelope)
    _device_refuses(life, capsys, "UnsignedMetadataError")
    code, doc = life.fetch(capsys, "fresh")
    assert (code, doc["error"]["type"]) == (3, "UnsignedMetadataError")
    # The publisher will not build v2 under a stray v3 either.
    before = life.store_files()
    with pytest.raises(StoreError, match="holds root v3 but no v2") as caught:
        ops.apply(life.project(), changes.Renew())
    assert caught.value.exit_code == 5
    assert life.store_files() == before
