"""The sealed-delta vectors (SPEC §19) are right: an SDK that passes them agrees with otaseal.

``tests/vectors/test_vectors.py`` checks that they do not drift; this checks what they say:
the patch opens to its plaintext, its values match the signed release, it builds 1.5.0 from
the installed 1.4.2, and the store layout installs 1.5.0 by the patch alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from otaseal import client, dsse
from otaseal.archive import Index, extract
from otaseal.delta.apply import apply_patch
from otaseal.formats import delta, sealed
from otaseal.model import ChannelManifest
from otaseal.store.folder import FolderStore

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(VECTORS))
    try:
        spec = importlib.util.spec_from_file_location(name, VECTORS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(VECTORS))
    return module


mv = _load("make_vectors")
KEYS = sys.modules["vector_keys"].VectorKeys.make()


def committed(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def committed_json(name: str):
    return json.loads(committed(name))


def _release():
    envelope = dsse.Envelope.from_json(committed("delta-beta.manifest.json"))
    return ChannelManifest.from_payload(envelope.payload).releases[0]


def _second_build() -> dict[str, bytes]:
    return _load("vectors_delta").second_build(dict(mv.WEB_BUILD))


def test_patch_opens_to_its_plaintext_and_the_release_signs_both():
    release = _release()
    (patch,) = release.delta.patches
    cub = committed("delta.patch.cub")
    out = io.BytesIO()
    digest, length = sealed.open_sealed(
        io.BytesIO(cub), KEYS.decryption, out, max_plaintext=patch.plaintext_length
    )
    assert out.getvalue() == committed("delta.patch.bin")
    assert (digest, length) == (patch.plaintext_sha256, patch.plaintext_length)
    assert (hashlib.sha256(cub).hexdigest(), len(cub)) == (patch.sha256, patch.length)
    assert patch.base == hashlib.sha256(committed("bundle.cub")).hexdigest()
    assert release.delta.index == hashlib.sha256(committed("delta-index.json")).hexdigest()
    assert committed_json("delta.json")["delta.patches[0]"] == patch.to_dict()


def _read(plaintext: bytes) -> delta.PatchHeader:
    """The patch's header, its head read with 1.4.2's index as the device keeps it."""
    return delta.read_header(
        io.BytesIO(plaintext), len(plaintext), base_index=committed("index.json")
    )


def test_patch_header_is_what_delta_json_lists():
    plaintext = committed("delta.patch.bin")
    vector = committed_json("delta.json")
    header = _read(plaintext)
    release = _release()
    index = delta.check_header(
        header,
        index_digest=release.delta.index,
        base=release.delta.patches[0].base,
        target=release.sha256,
        files=release.files,
        size=release.unpacked_size,
    )
    assert plaintext.startswith(bytes.fromhex(vector["patch"]["magic_hex"]))
    assert header.index_json == committed("delta-index.json")
    assert index == Index.from_json(committed("delta-index.json"))
    assert [op.to_dict() for _, op, _ in header.jobs(index)] == [
        row["op"] for row in vector["files"]
    ]
    listed = [row["op"] for row in vector["files"] if row["listed"]]
    assert [op.to_dict() for op in header.ops] == listed == vector["patch"]["ops_json"]["files"]
    assert header.payload_offset == vector["patch"]["payload_offset"]
    start, length = vector["patch"]["head_offset"], vector["patch"]["head_length"]
    assert start + length == header.payload_offset
    assert (
        plaintext[start - 68 : start - 4].hex()
        == vector["patch"]["base_hex"] + (vector["patch"]["target_hex"])
    )
    head = delta.decompressor(committed("index.json")).decompress(
        plaintext[start : header.payload_offset]
    )
    assert head == committed("delta.head.bin")
    assert head[4 : 4 + vector["patch"]["index_length"]] == committed("delta-index.json")
    assert json.loads(head[4 + vector["patch"]["index_length"] :]) == vector["patch"]["ops_json"]
    assert {row["op"]["op"] for row in vector["files"]} == {"copy", "zstd"}
    assert None in {row["op"]["from"] for row in vector["files"]}
    renamed = next(r for r in vector["files"] if r["path"] == "img/photo.webp")
    assert renamed["op"] == {"path": "img/photo.webp", "op": "copy", "from": "assets/photo.webp"}
    kept = next(r for r in vector["files"] if r["path"] == "Über/naïve.txt")
    assert not kept["listed"]


def test_patch_builds_the_second_build_from_the_first(tmp_path):
    base = tmp_path / "base"
    extract(VECTORS / "bundle.zip.bin", base, max_total_size=1 << 20)
    plaintext = VECTORS / "delta.patch.bin"
    header = _read(plaintext.read_bytes())
    index = Index.from_json(header.index_json)
    apply_patch(plaintext, header, index, base_dir=base, staging=tmp_path / "new")
    built = {
        p.relative_to(tmp_path / "new").as_posix(): p.read_bytes()
        for p in (tmp_path / "new").rglob("*")
        if p.is_file()
    }
    assert built == _second_build()
    full = tmp_path / "full"
    extract(VECTORS / "delta-bundle.zip.bin", full, max_total_size=1 << 20)
    assert {p.relative_to(full).as_posix() for p in full.rglob("*") if p.is_file()} == set(built)


def _serve(store: FolderStore, layout: str) -> None:
    for key, name in committed_json(layout)["keys"].items():
        target = store.root.joinpath(*key.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(committed(name))


class _Counting:
    def __init__(self, store: FolderStore) -> None:
        self.store, self.keys = store, []

    def fetch(self, key, *, max_bytes):
        self.keys.append(key)
        return self.store.fetch(key, max_bytes=max_bytes)

    def stream(self, key, *, max_bytes):
        self.keys.append(key)
        return self.store.stream(key, max_bytes=max_bytes)


def _vector_device(fetcher, tmp_path):
    """One update check by an in-rollout device of the vectors (root v1, native build 12)."""
    row = next(r for r in committed_json("rollout.json")["devices"] if r["in_rollout"])
    return client.check_for_update(
        fetcher,
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


def test_store_delta_installs_by_the_patch_alone(tmp_path):
    store = FolderStore(tmp_path / "store")

    def check(fetcher):
        return _vector_device(fetcher, tmp_path)

    _serve(store, "store-layout.json")
    assert check(store).status == "installed"
    _serve(store, "store-delta.json")
    counting = _Counting(store)
    result = check(counting)

    assert result.status == "installed"
    assert result.release.label == "1.5.0"
    (patch,) = result.release.delta.patches
    assert result.delta.used
    assert result.downloaded == patch.length == len(committed("delta.patch.cub"))
    assert [k for k in counting.keys if "/bundles/" in k] == [
        f"{mv.APP}/bundles/{patch.sha256}.cub"
    ]
    www = tmp_path / "www"
    installed = {
        p.relative_to(www).as_posix(): p.read_bytes() for p in www.rglob("*") if p.is_file()
    }
    assert installed == _second_build()
    assert (tmp_path / "state/installed/beta.index.json").read_bytes() == committed(
        "delta-index.json"
    )
    web = committed_json("delta-web-build.json")
    assert {k: (v["size"], v["sha256"]) for k, v in web.items()} == {
        k: (len(v), hashlib.sha256(v).hexdigest()) for k, v in installed.items()
    }


def _refusal_cases():
    return committed_json("delta-refusals.json")["cases"]


def _change_installed(www: Path, outside: Path, change: dict) -> None:
    for name, text in change.get("write", {}).items():
        (www / name).write_text(text, encoding="utf-8")
    for name in change.get("remove", []):
        (www / name).unlink()
    for name in change.get("symlink", []):
        outside.mkdir(exist_ok=True)
        (www / name).rename(outside / name)
        (www / name).symlink_to(outside / name)


def _change_stored_index(state: Path, change: dict) -> None:
    kept = state / "installed" / "beta.index.json"
    assert kept.read_bytes() == committed("index.json")  # what the full install of 1.4.2 kept
    if "write" in change:
        kept.write_bytes(committed(change["write"]))
    if change.get("remove"):
        kept.unlink()


def test_refusal_cases_cover_the_named_attacks():
    names = {case["name"] for case in _refusal_cases()}
    assert {"wrong-base", "result-differs", "reordered-payloads", "truncated-patch"} <= names
    assert {"truncated-cub", "index-digest", "other-target", "from-escapes"} <= names
    assert {"installed-file-altered", "installed-file-missing", "installed-file-symlink"} <= names
    assert {"decompression-bomb", "stored-index-tampered", "stored-index-missing"} <= names


@pytest.mark.parametrize("case", _refusal_cases(), ids=lambda case: case["name"])
def test_every_refusal_case_installs_the_full_bundle(tmp_path, case):
    store = FolderStore(tmp_path / "store")

    def check():
        return _vector_device(store, tmp_path)

    _serve(store, "store-layout.json")
    assert check().status == "installed"
    _serve(store, "store-delta.json")
    for key, name in case.get("store", {}).items():
        target = store.root.joinpath(*key.split("/"))
        if name is None:
            target.unlink()
        else:
            target.write_bytes(committed(name))
    _change_installed(tmp_path / "www", tmp_path / "outside", case.get("installed", {}))
    _change_stored_index(tmp_path / "state", case.get("stored_index", {}))

    result = check()

    assert result.status == "installed"
    assert result.release.label == "1.5.0"
    assert not result.delta.used
    assert result.delta.refused.split(":")[0] == case["refused"]
    www = tmp_path / "www"
    installed = {
        p.relative_to(www).as_posix(): p.read_bytes() for p in www.rglob("*") if p.is_file()
    }
    assert installed == _second_build()
    assert not any(p.is_symlink() for p in www.rglob("*"))
    kept = (tmp_path / "state/installed/beta.index.json").read_bytes()
    assert kept == committed("delta-index.json")  # the full install keeps 1.5.0's index
