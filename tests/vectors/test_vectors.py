"""The golden vectors are what the code makes today, and they are right.

Drift: regenerate into a temporary folder (pinning the committed HPKE-wrapped key, the one random
input) and compare every file byte for byte. Correctness: the committed files verify, decrypt,
extract and install with the real code, so a device SDK that passes them agrees with otaseal.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from otaseal import client, crypto, dsse, trust
from otaseal.archive import Index, extract
from otaseal.errors import UnsignedMetadataError
from otaseal.formats import sealed
from otaseal.formats.capgo import verify_artifact
from otaseal.store import bundle_key, capgo_key, manifest_key, pointer_key, root_key
from otaseal.store.folder import FolderStore

HERE = Path(__file__).resolve().parent
GENERATED = (".json", ".cub", ".bin")
FIX = "If the change is intended, run `make vectors` and commit tests/vectors/."


def _load_script():
    spec = importlib.util.spec_from_file_location("otaseal_make_vectors", HERE / "make_vectors.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


mv = _load_script()
KEYS = mv.VectorKeys.make()


def committed(name):
    return (HERE / name).read_bytes()


def committed_json(name):
    return json.loads(committed(name))


def test_vectors_do_not_drift(tmp_path):
    pinned = mv.generate(tmp_path, pin_from=HERE)

    made = {p.name for p in tmp_path.iterdir()}
    kept = {p.name for p in HERE.iterdir() if p.name.endswith(GENERATED)}
    assert made == kept, f"the set of vector files changed: {sorted(made ^ kept)}. {FIX}"
    drifted = [name for name in sorted(made) if (tmp_path / name).read_bytes() != committed(name)]
    assert pinned, f"the committed bundle.cub's wrapped key no longer opens. {FIX}"
    assert not drifted, f"vectors differ from what the code makes now: {drifted}. {FIX}"


def test_committed_wrapped_key_opens_to_the_fixed_content_key():
    header = sealed.read_header(io.BytesIO(committed("bundle.cub")))
    (entry,) = header.recipients
    assert entry.keyid == KEYS.decryption.public.keyid
    assert header.bundle_id == mv.BUNDLE_ID
    info = sealed.HPKE_INFO_LABEL + mv.BUNDLE_ID
    assert KEYS.decryption.unwrap(entry.wrapped_key, info) == mv.CONTENT_KEY


def test_committed_bundle_decrypts_to_the_committed_zip():
    zip_bytes, seal = committed("bundle.zip.bin"), committed_json("sealed.json")
    out = io.BytesIO()

    digest, length = sealed.open_sealed(
        io.BytesIO(committed("bundle.cub")), KEYS.decryption, out, max_plaintext=len(zip_bytes)
    )

    assert out.getvalue() == zip_bytes
    assert {"sha256": digest, "length": length} == seal["plaintext"]
    assert len(seal["segments"]) == 2
    key = crypto.hkdf_sha256(
        mv.CONTENT_KEY,
        salt=mv.SALT,
        info=sealed.SEGMENT_KEY_LABEL + bytes.fromhex(seal["header_sha256"]),
    )
    assert key.hex() == seal["segment_key_hex"]


def test_committed_zip_extracts_to_the_web_build(tmp_path):
    (tmp_path / "bundle.zip").write_bytes(committed("bundle.zip.bin"))

    index = extract(tmp_path / "bundle.zip", tmp_path / "www", max_total_size=1 << 20)

    assert index == Index.from_json(committed("index.json"))
    for name, data in mv.WEB_BUILD.items():
        assert (tmp_path / "www").joinpath(*name.split("/")).read_bytes() == data


def test_committed_roots_and_manifest_verify():
    root = trust.verify_trusted_root(committed("root.json"), app=mv.APP)
    rotated = trust.verify_root_update(root, committed("root-2.json"))
    manifest = trust.verify_channel_manifest(
        root, committed("beta.manifest.json"), channel="beta", now=mv.NOW, trusted_version=None
    )
    seal = committed_json("sealed.json")

    assert (root.version, rotated.version) == (1, 2)
    assert trust.rotated_roles(root, rotated) == {"root", "channel:beta"}
    (release,) = manifest.releases
    assert (release.sha256, release.length) == (
        seal["ciphertext"]["sha256"],
        seal["ciphertext"]["length"],
    )
    assert release.plaintext_sha256 == seal["plaintext"]["sha256"]
    assert release.files == len(mv.WEB_BUILD)
    with pytest.raises(UnsignedMetadataError):
        trust.verify_channel_manifest(
            rotated,
            committed("beta.manifest.json"),
            channel="beta",
            now=mv.NOW,
            trusted_version=None,
        )


def test_pae_and_signatures():
    vector = committed_json("pae.json")
    payload = base64.b64decode(vector["payload_base64"])
    message = dsse.pae(vector["payloadType"], payload)
    ecdsa = vector["signatures"]["beta (ecdsa-p256-sha256, RFC 6979)"]
    ed = vector["signatures"]["ed25519"]

    assert message.hex() == vector["pae_hex"]
    assert message.decode() == vector["pae_utf8"]
    assert KEYS.beta.public.is_valid_signature(bytes.fromhex(ecdsa["der_hex"]), message)
    assert mv.ecdsa_der_to_raw(bytes.fromhex(ecdsa["der_hex"])).hex() == ecdsa["raw_r_s_hex"]
    assert KEYS.ed25519.public.is_valid_signature(bytes.fromhex(ed["hex"]), message)
    assert ecdsa["keyid"] == KEYS.beta.keyid


def test_rollout_table_matches_the_client():
    vector = committed_json("rollout.json")
    rows = vector["devices"]

    assert len(rows) == 20
    for row in rows:
        bucket = trust.rollout_bucket(
            vector["app"], vector["channel"], vector["salt"], row["install_id"]
        )
        assert row["bucket"] == bucket
        assert row["in_rollout"] == (bucket < vector["basis_points"])
    assert {row["in_rollout"] for row in rows} == {True, False}


def test_readme_lists_every_test_key():
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    keys = committed_json("keys.json")
    secrets = [
        entry.get("private_scalar_hex") or entry["private_seed_hex"]
        for group in ("signing", "decryption")
        for entry in keys[group].values()
    ]
    secrets += [keys["capgo"]["p_hex"], keys["capgo"]["q_hex"]]
    missing = [s for s in secrets if s not in readme]
    assert not missing, "tests/vectors/README.md must list every fixed private key"


def _device_store(tmp_path):
    store = FolderStore(tmp_path / "store")
    layout = committed_json("store-layout.json")["keys"]
    for key, name in layout.items():
        target = store.root.joinpath(*key.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(committed(name))
    return store


def test_store_layout_names_the_protocol_keys():
    layout = committed_json("store-layout.json")["keys"]
    digest = committed_json("sealed.json")["ciphertext"]["sha256"]
    capgo_digest = committed_json("capgo.json")["artifact"]["sha256"]

    assert set(layout) == {
        root_key(mv.APP, 1),
        manifest_key(mv.APP, "beta", 1),
        pointer_key(mv.APP, "beta"),
        bundle_key(mv.APP, digest),
        capgo_key(mv.APP, capgo_digest),
    }


@pytest.mark.parametrize("in_rollout", [True, False])
def test_a_device_installs_the_vectors(tmp_path, in_rollout):
    """End to end: the vectors as a store, a device with root v1, one update check."""
    store = _device_store(tmp_path)
    row = next(
        r for r in committed_json("rollout.json")["devices"] if r["in_rollout"] is in_rollout
    )

    result = client.check_for_update(
        store,
        app=mv.APP,
        channel="beta",
        state_dir=tmp_path / "state",
        decryption_key=KEYS.decryption,
        install_id=row["install_id"],
        out_dir=tmp_path / "www",
        now=mv.NOW,
        native=12,
        initial_root=committed("root.json"),
    )

    if not in_rollout:
        assert (result.status, result.release) == ("up_to_date", None)
        return
    assert result.status == "installed"
    for name, data in mv.WEB_BUILD.items():
        assert (tmp_path / "www").joinpath(*name.split("/")).read_bytes() == data


def test_committed_capgo_artifact_verifies_as_the_plugin_does():
    vector = committed_json("capgo.json")
    public = crypto.load_capgo_public_key(
        committed_json("keys.json")["capgo"]["public_pem"].encode()
    )
    out = io.BytesIO()

    digest = verify_artifact(
        io.BytesIO(committed("capgo.artifact.bin")),
        public_key=public,
        session_key=vector["session_key"],
        checksum=vector["checksum"],
        out=out,
        max_length=vector["artifact"]["length"],
        sha256=vector["artifact"]["sha256"],
    )

    assert out.getvalue() == committed("bundle.zip.bin")
    assert (
        digest == vector["zip_sha256_hex"] == committed_json("sealed.json")["plaintext"]["sha256"]
    )
    assert public.key_id == vector["key_id"]
    assert vector["key_id"].startswith("MIIBCgKCAQEA")
    assert len(committed("capgo.artifact.bin")) % 16 == 0


def test_capgo_blocks_are_textbook_rsa_of_the_type1_encoding():
    """An independent check of the private-key operation: EM^d mod n from the primes."""
    vector = committed_json("capgo.json")
    n = mv.CAPGO_P * mv.CAPGO_Q
    d = pow(65537, -1, (mv.CAPGO_P - 1) * (mv.CAPGO_Q - 1))

    def block(encoded_hex):
        return pow(int(encoded_hex, 16), d, n).to_bytes(256, "big")

    key_em = vector["key_block"]["encoded_message_hex"]
    assert key_em == "0001" + "ff" * 237 + "00" + vector["aes_key_hex"]
    assert block(key_em).hex() == vector["key_block"]["rsa_block_hex"]
    checksum_em = vector["checksum_block"]["encoded_message_hex"]
    assert checksum_em.endswith("00" + vector["zip_sha256_hex"])
    assert block(checksum_em).hex() == vector["checksum"]
    iv, key_block = vector["session_key"].split(":")
    assert base64.b64decode(iv).hex() == vector["iv_hex"]
    assert base64.b64decode(key_block).hex() == vector["key_block"]["rsa_block_hex"]


def test_manifest_release_signs_the_capgo_entry():
    root = trust.verify_trusted_root(committed("root.json"), app=mv.APP)
    manifest = trust.verify_channel_manifest(
        root, committed("beta.manifest.json"), channel="beta", now=mv.NOW, trusted_version=None
    )
    (release,) = manifest.releases
    assert release.capgo is not None
    assert release.capgo.to_dict() == committed_json("capgo.json")["release_entry_capgo"]
