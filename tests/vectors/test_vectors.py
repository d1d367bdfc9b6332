"""The golden vectors are what the code makes today, and they are right.

Drift: regenerate into a temporary folder (pinning the committed HPKE-wrapped key, the one random
input) and compare every file byte for byte. Correctness: the committed files verify, decrypt,
extract and install with the real code, so a device SDK that passes them agrees with otaseal.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from otaseal import archive, client, crypto, dsse, errors, trust
from otaseal.archive import Index, extract
from otaseal.errors import UnsignedMetadataError
from otaseal.formats import sealed
from otaseal.formats.capgo import verify_artifact
from otaseal.model import parse_time
from otaseal.store import bundle_key, capgo_key, manifest_key, pointer_key, root_key
from otaseal.store.folder import FolderStore

HERE = Path(__file__).resolve().parent
GENERATED = (".json", ".cub", ".bin", ".pem")
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
vk = sys.modules["vector_keys"]  # imported by make_vectors.py
KEYS = vk.VectorKeys.make()
negative_cases = sys.modules["negative_cases"]  # imported by make_vectors.py, from this folder


def committed(name):
    return (HERE / name).read_bytes()


def committed_json(name):
    return json.loads(committed(name))


def generated_files(folder):
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name.endswith(GENERATED) and "__pycache__" not in p.parts
    }


def test_vectors_do_not_drift(tmp_path):
    pinned = mv.generate(tmp_path, pin_from=HERE)

    made, kept = generated_files(tmp_path), generated_files(HERE)
    assert made == kept, f"the set of vector files changed: {sorted(made ^ kept)}. {FIX}"
    drifted = [name for name in sorted(made) if (tmp_path / name).read_bytes() != committed(name)]
    assert pinned, f"a committed .cub's wrapped key no longer opens. {FIX}"
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
    assert vk.ecdsa_der_to_raw(bytes.fromhex(ecdsa["der_hex"])).hex() == ecdsa["raw_r_s_hex"]
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
    n = vk.CAPGO_P * vk.CAPGO_Q
    d = pow(65537, -1, (vk.CAPGO_P - 1) * (vk.CAPGO_Q - 1))

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


# --- the decryption key as PKCS#8, Ed25519, a multi-hop rotation ---------------------------------
def test_decryption_key_pem_is_pkcs8_of_the_test_key():
    pem = committed("decryption-key.pem")
    entry = committed_json("keys.json")["decryption"]["app-decryption"]

    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, not SEC1 "EC PRIVATE KEY"
    assert pem.decode() == entry["private_pkcs8_pem"]
    key = crypto.load_decryption_key(pem)
    assert key.public.keyid == entry["keyid"] == KEYS.decryption.public.keyid
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    assert int.from_bytes(der[-0x80:], "big") != 0  # a full PrivateKeyInfo, not a bare scalar
    assert f"{vk.scalar('app-decryption'):064x}" in der.hex()


def _install(tmp_path, layout_name, *, install_id=None):
    layout = committed_json(layout_name)
    store = FolderStore(tmp_path / "store")
    for key, name in layout["keys"].items():
        target = store.root.joinpath(*key.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(committed(name))
    row = next(r for r in committed_json("rollout.json")["devices"] if r["in_rollout"])
    result = client.check_for_update(
        store,
        app=layout["app"],
        channel="beta",
        state_dir=tmp_path / "state",
        decryption_key=KEYS.decryption,
        install_id=install_id or row["install_id"],
        out_dir=tmp_path / "www",
        now=mv.NOW,
        native=layout["native"],
        initial_root=committed(layout["trusted_root"]),
    )
    state = json.loads((tmp_path / "state" / client.STATE_FILE).read_text(encoding="utf-8"))
    return result, state


def test_ed25519_root_and_manifest_install(tmp_path):
    root = trust.verify_trusted_root(committed("root-ed25519.json"), app=mv.APP)
    envelope = json.loads(committed("beta-ed25519.manifest.json"))

    assert {k.algorithm for k in root.keys.values()} == {"ed25519", "ecdsa-p256-sha256"}
    assert root.role("root").keyids == (KEYS.ed25519_root.keyid,)
    assert root.role("channel:beta").keyids == (KEYS.ed25519.keyid,)
    assert [len(base64.b64decode(s["sig"])) for s in envelope["signatures"]] == [64]
    result, _ = _install(tmp_path, "store-ed25519.json")
    assert result.status == "installed"
    assert result.release.sha256 == committed_json("sealed.json")["ciphertext"]["sha256"]


def test_rotation_walks_three_roots_with_new_keys_at_each_hop(tmp_path):
    v1 = trust.verify_trusted_root(committed("root.json"), app=mv.APP)
    v2 = trust.verify_root_update(v1, committed("root-2.json"))
    v3 = trust.verify_root_update(v2, committed("root-3.json"))

    roots = [v1.role("root").keyids, v2.role("root").keyids, v3.role("root").keyids]
    betas = [r.role("channel:beta").keyids for r in (v1, v2, v3)]
    assert len({*roots}) == 3
    assert len({*betas}) == 3
    assert trust.rotated_roles(v2, v3) == {"root", "channel:beta"}
    with pytest.raises(UnsignedMetadataError):  # v3 is not signed by v1's root key
        trust.verify_root_update(v1, committed("root-3.json").replace(b'"version": 3', b""))
    result, state = _install(tmp_path, "store-rotation.json")
    assert result.status == "installed"
    assert base64.b64decode(state["root"]) == committed("root-3.json")
    assert state["versions"] == {"beta": 2}


# --- .cub variants ------------------------------------------------------------------------------
def test_two_recipient_bundle_opens_with_either_key():
    cub = committed("bundle-2-recipients.cub")
    vector = committed_json("sealed-2-recipients.json")
    header = sealed.read_header(io.BytesIO(cub))

    assert header.length == 75 + 145 * 2 == vector["header_length"]
    assert [r.keyid for r in header.recipients] == [r["keyid"] for r in vector["recipients"]]
    assert [r.keyid for r in header.recipients] == [
        KEYS.decryption.public.keyid,
        KEYS.decryption_2.public.keyid,
    ]
    for key in (KEYS.decryption, KEYS.decryption_2):
        out = io.BytesIO()
        sealed.open_sealed(io.BytesIO(cub), key, out, max_plaintext=1 << 20)
        assert out.getvalue() == committed("bundle.zip.bin")
    assert {"sha256": hashlib.sha256(cub).hexdigest(), "length": len(cub)} == vector["ciphertext"]


def test_bundle_with_an_empty_final_segment():
    cub = committed("bundle-empty-final.cub")
    vector = committed_json("sealed-empty-final.json")
    out = io.BytesIO()

    digest, length = sealed.open_sealed(io.BytesIO(cub), KEYS.decryption, out, max_plaintext=65536)

    assert length == 65536 == vector["plaintext"]["length"]
    assert out.getvalue() == hashlib.shake_256(mv.EMPTY_FINAL_RECIPE.encode()).digest(65536)
    assert [(s["sealed_length"], s["plaintext_length"], s["last"]) for s in vector["segments"]] == [
        (65536 + 16, 65536, False),
        (16, 0, True),
    ]
    assert len(cub) == 220 + 65552 + 16
    assert vector["segments"][1]["nonce_hex"].endswith("0000000101")
    assert digest == vector["plaintext"]["sha256"]


# --- a zip whose large file is deflated in pieces ------------------------------------------------
def test_multipiece_zip_extracts_and_its_pieces_join_into_one_stream(tmp_path):
    vector = committed_json("multipiece.json")
    data = committed("multipiece.zip.bin")
    (tmp_path / "m.zip").write_bytes(data)

    extract(tmp_path / "m.zip", tmp_path / "www", max_total_size=4 << 20)

    for name, data_ in mv.MULTIPIECE_BUILD.items():
        assert (tmp_path / "www").joinpath(*name.split("/")).read_bytes() == data_
    pieces = vector["pieces"]
    assert [p["uncompressed_length"] for p in pieces] == [1048576, 1048576, 1000]
    assert vector["piece_size"] == 1 << 20 == archive.CHUNK_SIZE
    with zipfile.ZipFile(tmp_path / "m.zip") as zf:
        info = zf.getinfo(vector["large_file"])
    assert info.compress_type == zipfile.ZIP_DEFLATED
    assert sum(p["compressed_length"] for p in pieces) == info.compress_size
    stream = b""
    for piece in pieces:
        at = piece["compressed_offset_in_zip"]
        chunk = data[at : at + piece["compressed_length"]]
        assert hashlib.sha256(chunk).hexdigest() == piece["compressed_sha256"]
        stream += chunk
    for piece in pieces[:-1]:
        end = piece["compressed_offset_in_zip"] + piece["compressed_length"]
        assert data[end - 4 : end] == b"\x00\x00\xff\xff"  # each piece ends in a sync flush
    inflated = zlib.decompressobj(-15)
    assert inflated.decompress(stream) == mv.MULTIPIECE_BUILD[vector["large_file"]]
    assert inflated.eof


# --- negative vectors ----------------------------------------------------------------------------
NEGATIVE = sorted(p.parent.name for p in (HERE / "negative").glob("*/case.json"))
EXIT_CODES = {"metadata": 3, "bundle": 4, "store": 5}  # SPEC §12


def _read(name):
    return (HERE / name).read_bytes()


@pytest.mark.parametrize("name", NEGATIVE)
def test_negative_case_fails_as_recorded(name):
    """The reference client, run again on the committed case, reports the recorded error and
    changes neither the device state nor the installed build."""
    case = committed_json(f"negative/{name}/case.json")

    verdict = negative_cases.run_case(case, _read)

    assert (verdict["error"], verdict["exit_code"]) == (
        case["expected"]["error"],
        case["expected"]["exit_code"],
    ), f"the reference client now says {verdict}. {FIX}"
    assert case["expected"]["exit_code"] == EXIT_CODES[case["family"]]
    assert verdict["state_unchanged"]
    assert not verdict["out_written"]


def test_negative_baseline_installs():
    case = committed_json("negative/common/baseline.json")

    verdict = negative_cases.run_case(case, _read)

    assert (verdict["exit_code"], verdict["error"], verdict["out_written"]) == (0, None, True)


def test_negative_cases_cover_every_attack_class():
    classes = {
        "unsigned": "manifest-unsigned",
        "wrong key": "manifest-signed-by-unknown-key",
        "another role's key": "manifest-signed-by-another-channel-key",
        "threshold not met": "manifest-threshold-not-met",
        "one key twice": "manifest-one-key-counted-twice",
        "rollback": "manifest-rollback",
        "freeze": "manifest-expired",
        "expired root": "root-expired",
        "wrong app": "manifest-wrong-app",
        "wrong channel": "manifest-wrong-channel",
        "oversize": "manifest-oversize",
        "malformed field": "field-version-string",
        "root rotation without the old key": "root-update-without-old-key",
        "too many root hops": "root-too-many-hops",
        "bundle hash": "bundle-hash-mismatch",
        "bundle length": "bundle-longer-than-signed",
        "truncated .cub": "cub-final-segment-dropped",
        "reordered segments": "cub-segments-reordered",
        "wrong recipient": "cub-wrong-recipient",
        "path traversal": "zip-path-traversal",
        "duplicate entries": "zip-duplicate-entry",
        "case collision": "zip-case-collision",
        "zip bomb": "zip-deflate-bomb",
    }
    missing = {k: v for k, v in classes.items() if v not in NEGATIVE}
    assert not missing
    assert len(NEGATIVE) >= 100


def test_negative_case_files_are_self_contained():
    """Every file a case names exists under tests/vectors/, so an SDK needs nothing else."""
    for name in NEGATIVE:
        inputs = committed_json(f"negative/{name}/case.json")["inputs"]
        named = [*inputs["store"].values(), inputs["decryption_key"]]
        named += [inputs["trusted_root"]] if inputs["trusted_root"] else []
        named += [inputs["state"]["root"]] if inputs["state"] else []
        assert all((HERE / n).is_file() for n in named), name
        assert inputs["trusted_root"] or inputs["state"], name


class _Recording:
    """A fetcher that notes every key the device asks for."""

    def __init__(self, inner):
        self.inner, self.keys = inner, []

    def fetch(self, key, *, max_bytes):
        self.keys.append(key)
        return self.inner.fetch(key, max_bytes=max_bytes)

    def stream(self, key, *, max_bytes):
        self.keys.append(key)
        return self.inner.stream(key, max_bytes=max_bytes)


METADATA_CASES = [
    n for n in NEGATIVE if committed_json(f"negative/{n}/case.json")["family"] == "metadata"
]


@pytest.mark.parametrize("name", METADATA_CASES)
def test_metadata_negative_case_never_asks_for_the_bundle(tmp_path, name):
    """Metadata is refused before any bundle is requested (SPEC §10), through the client API."""
    case = committed_json(f"negative/{name}/case.json")
    inputs = case["inputs"]
    store = FolderStore(tmp_path / "store")
    for key, file in inputs["store"].items():
        target = store.root.joinpath(*key.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_read(file))
    if inputs["state"]:
        state = inputs["state"]
        client.DeviceState(
            _read(state["root"]), dict(state["versions"]), dict(state["installed"])
        ).save(tmp_path / "state")
    fetcher = _Recording(store)

    with pytest.raises(errors.MetadataError) as caught:
        client.check_for_update(
            fetcher,
            app=inputs["app"],
            channel=inputs["channel"],
            state_dir=tmp_path / "state",
            decryption_key=crypto.load_decryption_key(_read(inputs["decryption_key"])),
            install_id=inputs["install_id"],
            out_dir=tmp_path / "www",
            now=parse_time(inputs["now"]),
            native=inputs["native"],
            initial_root=_read(inputs["trusted_root"]) if inputs["trusted_root"] else None,
        )

    assert type(caught.value).__name__ == case["expected"]["error"]
    assert not [key for key in fetcher.keys if "/bundles/" in key]
