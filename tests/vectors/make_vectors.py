"""Make otaseal's golden test vectors from fixed keys and a fixed clock.

    python tests/vectors/make_vectors.py [--out DIR] [--pin-from DIR] [--fresh-wrap]

Everything is deterministic (ECDSA signatures use RFC 6979) except one thing: HPKE encapsulation
in the ``.cub`` header is randomized by the library. The segment key depends on the whole header,
so a fresh wrap would change every ciphertext byte and the signed bundle digest. Wrapped keys are
therefore *pinned*: each is taken from a ``.cub`` already in ``--pin-from`` (default: the output
folder, every ``.cub`` under it) after checking that it unwraps to the fixed content key with the
fixed decryption key. Only when there is none, or it no longer opens (the fixed inputs changed),
or ``--fresh-wrap`` is given, is a new one made. ``tests/vectors/test_vectors.py`` regenerates
with the committed pins and fails on any difference.

The negative cases (``negative/``) are made by ``negative_cases.py``: their expected errors come
from running the reference client (``otaseal fetch``) on each one.

The keys here are TEST KEYS whose private halves are published in tests/vectors/README.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import shutil
import struct
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import negative_cases  # siblings: this folder is on sys.path as a script and under pytest
import vectors_capgo_files
import vectors_delta
from vector_keys import (
    VectorKeys,
    ecdsa_der_to_raw,
    keys_vector,
    scalar,
)

from otaseal import dsse, trust
from otaseal.archive import CHUNK_SIZE, COMPRESSION_LEVEL, pack
from otaseal.crypto import (
    DecryptionKey,
    hkdf_sha256,
)
from otaseal.errors import DecryptionError
from otaseal.formats import sealed
from otaseal.formats.capgo import CapgoWriter
from otaseal.model import ChannelManifest, Release, channel_role, format_time
from otaseal.project import make_root, sign_root
from otaseal.store import capgo_key, manifest_key, pointer_key, root_key

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from otaseal.archive import PackResult

HERE = Path(__file__).resolve().parent
APP = "com.example.app"
NOW = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)

# Fixed inputs of the sealed bundle. Reusing a content key with a nonce prefix breaks AES-GCM:
# these values exist only for vectors.
CONTENT_KEY = bytes(range(0x20))
SALT = bytes(range(0x20, 0x40))
NONCE_PREFIX = bytes(range(0xA0, 0xA7))
BUNDLE_ID = bytes(range(0xB0, 0xC0))

# The Capgo format's fixed AES-128 key and IV (its RSA test key is in vector_keys.py). A repeated
# key and IV let anyone compare releases block by block: vectors only.
CAPGO_AES_KEY = bytes(range(0x40, 0x50))
CAPGO_IV = bytes(range(0x50, 0x60))

ROLLOUT_SALT = "9c1d4e2a7b3f50617283948a5b6c7d8e"
ROLLOUT_BP = 2500
INSTALL_IDS = (
    *(f"00000000-0000-4000-8000-{n:012d}" for n in range(16)),
    "device-a",
    "device-b",
    "Gerät-ü",  # non-ASCII: the length prefix counts UTF-8 bytes, not characters
    "x" * 64,
)

WEB_BUILD: Mapping[str, bytes] = {
    "index.html": (
        b'<!doctype html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n'
        b'  <title>otaseal vector</title>\n  <link rel="stylesheet" href="assets/style.css">\n'
        b'</head>\n<body>\n  <h1>web build 1.4.2</h1>\n  <script src="assets/app.js"></script>\n'
        b"</body>\n</html>\n"
    ),
    "assets/app.js": b"document.querySelector('h1').dataset.sealed = 'yes';\n",
    "assets/style.css": b"body { font-family: system-ui, sans-serif; margin: 2rem; }\n",
    # Incompressible, so the plaintext spans a full 64 KiB segment and a final one.
    "assets/photo.webp": hashlib.shake_256(b"otaseal vector photo").digest(66_000),
    "Über/naïve.txt": b"non-ASCII paths are UTF-8 in the zip and the index\n",
}

# A plaintext of exactly one segment: its .cub ends with an empty final segment (16 bytes, a tag).
EMPTY_FINAL_RECIPE = "otaseal vector empty final segment"

# A build whose large, compressible file spans three 1 MiB DEFLATE pieces (archive.CHUNK_SIZE).
MULTIPIECE_FILE = "assets/vendor.js"
MULTIPIECE_RECIPE = (
    "the 100 lines export const wNNNN = '<first 24 hex digits of SHA-256(str(NNNN))>';\\n for "
    "NNNN = 0000..0099, repeated, cut at 2 MiB + 1000 bytes"
)


def _multipiece_text() -> bytes:
    block = "".join(
        f"export const w{i:04d} = '{hashlib.sha256(str(i).encode()).hexdigest()[:24]}';\n"
        for i in range(100)
    ).encode()
    size = 2 * (1 << 20) + 1000
    return (block * (size // len(block) + 1))[:size]


MULTIPIECE_BUILD: Mapping[str, bytes] = {
    "index.html": b'<!doctype html>\n<script src="assets/vendor.js"></script>\n',
    MULTIPIECE_FILE: _multipiece_text(),
}


# --- helpers ------------------------------------------------------------------------------------
def dump(doc: Any) -> bytes:
    """Stable JSON for the vector files themselves."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


class PinnedRecipient:
    """A recipient that returns a known-good wrapped key instead of a fresh (random) one."""

    def __init__(self, key: DecryptionKey, candidates: Sequence[bytes]) -> None:
        self.key = key
        self.candidates = tuple(candidates)
        self.pinned = False

    @property
    def keyid(self) -> str:
        return self.key.public.keyid

    def wrap(self, content_key: bytes, info: bytes) -> bytes:
        for wrapped in self.candidates:
            try:
                if self.key.unwrap(wrapped, info) == content_key:
                    self.pinned = True
                    return wrapped
            except DecryptionError:
                continue
        return self.key.public.wrap(content_key, info)


def committed_wrapped_keys(folder: Path | None) -> dict[str, list[bytes]]:
    """Every wrapped content key in the ``.cub`` files under ``folder``, by recipient key id."""
    found: dict[str, list[bytes]] = {}
    if folder is None or not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*.cub")):
        try:
            with path.open("rb") as src:
                header = sealed.read_header(src)
        except DecryptionError:
            continue  # the negative cases hold broken headers on purpose
        for entry in header.recipients:
            if entry.wrapped_key not in found.setdefault(entry.keyid, []):
                found[entry.keyid].append(entry.wrapped_key)
    return found


class Sealer:
    """Seals with the fixed vector inputs, reusing committed wrapped keys where they still open."""

    def __init__(self, pins: Mapping[str, Sequence[bytes]]) -> None:
        self.pins = pins
        self.all_pinned = True

    def seal(
        self,
        plaintext: bytes,
        recipients: Sequence[DecryptionKey],
        *,
        segment_size: int = sealed.SEGMENT_SIZE,
    ) -> tuple[bytes, sealed.SealResult]:
        """``plaintext`` sealed to ``recipients`` with the fixed content key, salt, ids."""
        pinned = [PinnedRecipient(k, self.pins.get(k.public.keyid, ())) for k in recipients]
        out = io.BytesIO()
        writer = sealed.SealWriter(
            out,
            pinned,
            segment_size=segment_size,
            unsafe_fixed_content_key=CONTENT_KEY,
            unsafe_fixed_salt=SALT,
            unsafe_fixed_nonce_prefix=NONCE_PREFIX,
            unsafe_fixed_bundle_id=BUNDLE_ID,
        )
        writer.write(plaintext)
        result = writer.close()
        self.all_pinned = self.all_pinned and all(r.pinned for r in pinned)
        return out.getvalue(), result


# --- the vectors --------------------------------------------------------------------------------
def pae_vector(keys: VectorKeys) -> dict[str, Any]:
    payload = b'{"hello":"world"}'
    message = dsse.pae(dsse.PAYLOAD_TYPE_CHANNEL, payload)
    ecdsa_sig = keys.beta.sign(message)
    return {
        "payloadType": dsse.PAYLOAD_TYPE_CHANNEL,
        "payload_utf8": payload.decode(),
        "payload_base64": base64.b64encode(payload).decode(),
        "pae_utf8": message.decode(),
        "pae_hex": message.hex(),
        "signatures": {
            "beta (ecdsa-p256-sha256, RFC 6979)": {
                "keyid": keys.beta.keyid,
                "der_hex": ecdsa_sig.hex(),
                "raw_r_s_hex": ecdsa_der_to_raw(ecdsa_sig).hex(),
            },
            "ed25519": {"keyid": keys.ed25519.keyid, "hex": keys.ed25519.sign(message).hex()},
        },
        "payload_types": {"root": dsse.PAYLOAD_TYPE_ROOT, "channel": dsse.PAYLOAD_TYPE_CHANNEL},
    }


def write_build(folder: Path, build: Mapping[str, bytes] = WEB_BUILD) -> None:
    for name, data in build.items():
        target = folder.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def rollout_vector() -> dict[str, Any]:
    def field(text: str) -> bytes:
        raw = text.encode()
        return len(raw).to_bytes(4) + raw

    rows = []
    for install_id in INSTALL_IDS:
        bucket = trust.rollout_bucket(APP, "beta", ROLLOUT_SALT, install_id)
        rows.append({"install_id": install_id, "bucket": bucket, "in_rollout": bucket < ROLLOUT_BP})
    first = INSTALL_IDS[0]
    preimage = b"rollout-v1" + field(APP) + field("beta") + field(ROLLOUT_SALT) + field(first)
    digest = hashlib.sha256(preimage).digest()
    return {
        "formula": "uint64_be(SHA-256('rollout-v1' || u32_be(len(app)) || app || "
        "u32_be(len(channel)) || channel || u32_be(len(salt)) || salt || "
        "u32_be(len(install_id)) || install_id)[0:8]) mod 10000; lengths in UTF-8 bytes",
        "app": APP,
        "channel": "beta",
        "salt": ROLLOUT_SALT,
        "basis_points": ROLLOUT_BP,
        "worked_example": {
            "install_id": first,
            "preimage_hex": preimage.hex(),
            "sha256_hex": digest.hex(),
            "first_8_bytes_hex": digest[:8].hex(),
            "uint64": int.from_bytes(digest[:8]),
            "bucket": int.from_bytes(digest[:8]) % 10_000,
        },
        "devices": rows,
    }


def seal_vector(
    cub: bytes,
    result: sealed.SealResult,
    keys: VectorKeys,
    *,
    labels: Sequence[str] = ("app-decryption",),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every intermediate value of one sealing; ``labels`` name the recipients' test keys."""
    header = sealed.read_header(io.BytesIO(cub))
    raw = cub[: header.length]
    segment_key = hkdf_sha256(
        CONTENT_KEY, salt=SALT, info=sealed.SEGMENT_KEY_LABEL + hashlib.sha256(raw).digest()
    )
    full = header.segment_size + sealed.TAG_SIZE
    body = cub[header.length :]
    segments = [body[i : i + full] for i in range(0, len(body), full)]
    if len(segments[-1]) == full:  # pragma: no cover - the final segment is always shorter
        segments.append(b"")
    entry = header.recipients[0]
    many = (
        {
            "recipients": [
                {
                    "keyid": e.keyid,
                    "private_scalar_hex": f"{scalar(label):064x}",
                    "wrapped_key_hex": e.wrapped_key.hex(),
                }
                for e, label in zip(header.recipients, labels, strict=True)
            ]
        }
        if len(labels) > 1
        else {}
    )
    return {
        **(extra or {}),
        **many,
        "note": "unsafe_fixed_* inputs, for vectors only. HPKE encapsulation is randomized; the "
        "committed wrapped_key is one valid wrap and is pinned when vectors are regenerated.",
        "format_version": header.version,
        "segment_size": header.segment_size,
        "content_key_hex": CONTENT_KEY.hex(),
        "salt_hex": SALT.hex(),
        "nonce_prefix_hex": NONCE_PREFIX.hex(),
        "bundle_id_hex": BUNDLE_ID.hex(),
        "recipient_keyid": entry.keyid,
        "recipient_private_scalar_hex": f"{scalar(labels[0]):064x}",
        "hpke_info_hex": (sealed.HPKE_INFO_LABEL + BUNDLE_ID).hex(),
        "wrapped_key_hex": entry.wrapped_key.hex(),
        "header_length": header.length,
        "header_hex": raw.hex(),
        "header_sha256": hashlib.sha256(raw).hexdigest(),
        "segment_key_hex": segment_key.hex(),
        "segments": [
            {
                "index": i,
                "last": i == len(segments) - 1,
                "nonce_hex": (NONCE_PREFIX + i.to_bytes(4) + bytes([i == len(segments) - 1])).hex(),
                "sealed_length": len(segment),
                "plaintext_length": len(segment) - sealed.TAG_SIZE,
                "sealed_sha256": hashlib.sha256(segment).hexdigest(),
            }
            for i, segment in enumerate(segments)
        ],
        "ciphertext": {"sha256": result.sha256, "length": result.length},
        "plaintext": {"sha256": result.plaintext_sha256, "length": result.plaintext_length},
        "decryption_key_keyid": keys.decryption.public.keyid,
    }


def type1_encoding(message: bytes) -> bytes:
    """``00 01 FF.. 00 || message``, 256 bytes: what the RSA private-key operation raises to d."""
    return b"\x00\x01" + b"\xff" * (256 - 3 - len(message)) + b"\x00" + message


def capgo_vector(
    zip_bytes: bytes, artifact: bytes, keys: VectorKeys, entry: dict[str, Any]
) -> dict[str, Any]:
    digest = hashlib.sha256(zip_bytes).digest()
    key_block = keys.capgo.type1(CAPGO_AES_KEY)
    checksum_block = keys.capgo.type1(digest)
    return {
        "note": "unsafe fixed AES key and IV, for vectors only: publish makes fresh ones each time",
        "plaintext": "bundle.zip.bin (the very zip the sealed bundle holds)",
        "aes_key_hex": CAPGO_AES_KEY.hex(),
        "iv_hex": CAPGO_IV.hex(),
        "cipher": "AES-128-CBC, PKCS#7 padding, no header, no MAC",
        "key_block": {
            "encoded_message_hex": type1_encoding(CAPGO_AES_KEY).hex(),
            "rsa_block_hex": key_block.hex(),
            "rsa_block_base64": base64.b64encode(key_block).decode(),
        },
        "session_key": base64.b64encode(CAPGO_IV).decode()
        + ":"
        + base64.b64encode(key_block).decode(),
        "zip_sha256_hex": digest.hex(),
        "checksum_block": {"encoded_message_hex": type1_encoding(digest).hex()},
        "checksum": checksum_block.hex(),
        "artifact": {
            "file": "capgo.artifact.bin",
            "sha256": hashlib.sha256(artifact).hexdigest(),
            "length": len(artifact),
        },
        "key_id": keys.capgo.public.key_id,
        "release_entry_capgo": entry,
    }


def pack_build(build: Mapping[str, bytes]) -> tuple[bytes, PackResult]:
    """The deterministic zip of ``build`` (path -> bytes) and what ``pack`` reports."""
    with tempfile.TemporaryDirectory(prefix="otaseal-vectors-") as tmp:
        folder = Path(tmp) / "build"
        write_build(folder, build)
        plain = io.BytesIO()
        packed = pack(folder, plain, workers=1)
    return plain.getvalue(), packed


def build_vector(
    build: Mapping[str, bytes], recipes: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """Each file's size and SHA-256, with its text or how to make its bytes."""
    return {
        name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        | (
            {"utf8": data.decode()}
            if name.endswith((".html", ".js", ".css", ".txt")) and name not in recipes
            else dict(recipes[name])
        )
        for name, data in sorted(build.items(), key=lambda item: item[0].encode())
    }


def release_of(result: sealed.SealResult, packed: PackResult, **fields: Any) -> Release:
    """The release entry that signs ``result`` (the .cub) and ``packed`` (its zip)."""
    base: dict[str, Any] = {
        "label": "1.4.2",
        "counter": 1,
        "sha256": result.sha256,
        "length": result.length,
        "plaintext_sha256": result.plaintext_sha256,
        "plaintext_length": result.plaintext_length,
        "files": len(packed.index.files),
        "unpacked_size": packed.index.total_size,
        "published": NOW,
    }
    return Release(**(base | fields))


def beta_manifest(release: Release, *, version: int = 1) -> ChannelManifest:
    """The beta channel serving ``release``, valid for 30 days from the reference time."""
    return ChannelManifest(
        app=APP,
        channel="beta",
        version=version,
        issued=NOW,
        expires=NOW + timedelta(days=30),
        releases=(release,),
        security_floor=0,
        event="publish 1.4.2",
    )


def layout(trusted_root: str, keys: Mapping[str, str], expect: str) -> bytes:
    """A store layout: which vector file sits at which store key, and what a device does."""
    return dump(
        {
            "app": APP,
            "trusted_root": trusted_root,
            "keys": dict(keys),
            "reference_time": format_time(NOW),
            "native": 12,
            "expect": expect,
        }
    )


def rotation_vectors(keys: VectorKeys, release: Release) -> dict[str, bytes]:
    """Root v3 (a second hop: new root and beta keys again) and a manifest its beta key signed."""
    root_3 = make_root(
        APP,
        3,
        now=NOW + timedelta(days=2),
        root_keys=[keys.root_3],
        channel_keys={"beta": [keys.beta_3], "production": [keys.production]},
    )
    manifest = beta_manifest(release, version=2)
    bundle = f"{APP}/bundles/{release.sha256}.cub"
    return {
        "root-3.json": sign_root(root_3, [keys.root_2, keys.root_3]),
        "beta-3.manifest.json": dsse.sign(
            dsse.PAYLOAD_TYPE_CHANNEL, manifest.to_payload(), [keys.beta_3]
        ).to_json(),
        "store-rotation.json": layout(
            "root.json",
            {
                root_key(APP, 1): "root.json",
                root_key(APP, 2): "root-2.json",
                root_key(APP, 3): "root-3.json",
                manifest_key(APP, "beta", 2): "beta-3.manifest.json",
                pointer_key(APP, "beta"): "beta-3.manifest.json",
                bundle: "bundle.cub",
            },
            "a device trusting root.json walks v1 -> v2 -> v3 (each signed by the previous and "
            "the new root key), trusts beta-3, and installs 1.4.2 if its install id is in_rollout",
        ),
    }


def ed25519_vectors(keys: VectorKeys, release: Release) -> dict[str, bytes]:
    """A root whose root role is an Ed25519 key, and a beta manifest signed with Ed25519."""
    root = make_root(
        APP,
        1,
        now=NOW,
        root_keys=[keys.ed25519_root],
        channel_keys={"beta": [keys.ed25519], "production": [keys.production]},
    )
    manifest = beta_manifest(release)
    return {
        "root-ed25519.json": sign_root(root, [keys.ed25519_root]),
        "beta-ed25519.manifest.json": dsse.sign(
            dsse.PAYLOAD_TYPE_CHANNEL, manifest.to_payload(), [keys.ed25519]
        ).to_json(),
        "store-ed25519.json": layout(
            "root-ed25519.json",
            {
                root_key(APP, 1): "root-ed25519.json",
                manifest_key(APP, "beta", 1): "beta-ed25519.manifest.json",
                pointer_key(APP, "beta"): "beta-ed25519.manifest.json",
                f"{APP}/bundles/{release.sha256}.cub": "bundle.cub",
            },
            "a device trusting root-ed25519.json verifies Ed25519 signatures (raw 64 bytes, "
            "RFC 8032) and installs 1.4.2 if its install id is in_rollout",
        ),
    }


def multipiece_vector(zip_bytes: bytes, build: Mapping[str, bytes]) -> dict[str, Any]:
    """Where the large file's DEFLATE pieces start and end inside its zip entry."""
    big = MULTIPIECE_FILE
    data = build[big]
    pieces, offset = [], 0
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        at = zf.getinfo(big).header_offset
    name_length, extra_length = struct.unpack_from("<HH", zip_bytes, at + 26)
    data_at = at + 30 + name_length + extra_length
    for start in range(0, len(data), CHUNK_SIZE):
        piece = data[start : start + CHUNK_SIZE]
        last = start + len(piece) == len(data)
        zdict = data[max(0, start - 32 * 1024) : start]
        comp = (
            zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, -15, zdict=zdict)
            if zdict
            else zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, -15)
        )
        body = comp.compress(piece) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
        pieces.append(
            {
                "uncompressed_offset": start,
                "uncompressed_length": len(piece),
                "compressed_offset_in_zip": data_at + offset,
                "compressed_length": len(body),
                "compressed_sha256": hashlib.sha256(body).hexdigest(),
                "ends_with": "final block (BFINAL = 1)"
                if last
                else "sync flush: empty stored block 00 00 ff ff",
            }
        )
        offset += len(body)
    return {
        "note": "the large file is deflated in 1 MiB pieces (archive.CHUNK_SIZE), each primed "
        "with the 32 KiB before it and ended by a sync flush; to a reader the entry is one "
        "ordinary raw DEFLATE stream",
        "zip": "multipiece.zip.bin",
        "zip_sha256": hashlib.sha256(zip_bytes).hexdigest(),
        "zip_length": len(zip_bytes),
        "large_file": big,
        "piece_size": CHUNK_SIZE,
        "compression_level": COMPRESSION_LEVEL,
        "pieces": pieces,
        "build": build_vector(build, {big: {"recipe": MULTIPIECE_RECIPE}}),
    }


@dataclass(frozen=True)
class VectorContext:
    """What the spec-1.2 vector modules get: the fixed keys, the pinned sealer, the files so far."""

    keys: VectorKeys
    sealer: Any
    vectors: dict[str, bytes]
    pack_build: Any


def generate(out: Path, *, pin_from: Path | None = None, fresh_wrap: bool = False) -> bool:
    """Write every vector into ``out``; return whether every wrapped key was pinned."""
    keys = VectorKeys.make()
    out.mkdir(parents=True, exist_ok=True)
    sealer = Sealer({} if fresh_wrap else committed_wrapped_keys(pin_from or out))
    files: dict[str, bytes] = {}

    files["keys.json"] = dump(keys_vector(keys))
    files["pae.json"] = dump(pae_vector(keys))
    files["decryption-key.pem"] = keys.decryption.to_pem()

    # Roots: v1 as `otaseal init` makes it; v2 rotates the root and the beta key.
    root_1 = make_root(
        APP,
        1,
        now=NOW,
        root_keys=[keys.root],
        channel_keys={"beta": [keys.beta], "production": [keys.production]},
    )
    files["root.json"] = sign_root(root_1, [keys.root])
    root_2 = make_root(
        APP,
        2,
        now=NOW + timedelta(days=1),
        root_keys=[keys.root_2],
        channel_keys={"beta": [keys.beta_2], "production": [keys.production]},
    )
    files["root-2.json"] = sign_root(root_2, [keys.root, keys.root_2])

    # The web build, packed deterministically, and sealed with fixed values.
    zip_bytes, packed = pack_build(WEB_BUILD)
    files["bundle.zip.bin"] = zip_bytes
    files["index.json"] = packed.index.to_json()
    files["web-build.json"] = dump(
        build_vector(
            WEB_BUILD,
            {
                "assets/photo.webp": {
                    "shake_256_of": "otaseal vector photo",
                    "note": "SHAKE-256 output bytes",
                }
            },
        )
    )
    cub, result = sealer.seal(zip_bytes, [keys.decryption])
    files["bundle.cub"] = cub
    files["sealed.json"] = dump(seal_vector(cub, result, keys))

    # The same zip sealed to two recipients; and a plaintext that fills its segments exactly.
    two, two_result = sealer.seal(zip_bytes, [keys.decryption, keys.decryption_2])
    files["bundle-2-recipients.cub"] = two
    files["sealed-2-recipients.json"] = dump(
        seal_vector(
            two,
            two_result,
            keys,
            labels=("app-decryption", "app-decryption-2"),
            extra={"plaintext_file": "bundle.zip.bin"},
        )
    )
    exact = hashlib.shake_256(EMPTY_FINAL_RECIPE.encode()).digest(sealed.SEGMENT_SIZE)
    empty_final, empty_result = sealer.seal(exact, [keys.decryption])
    files["bundle-empty-final.cub"] = empty_final
    files["sealed-empty-final.json"] = dump(
        seal_vector(
            empty_final,
            empty_result,
            keys,
            extra={"plaintext_recipe": f"SHAKE-256('{EMPTY_FINAL_RECIPE}'), 65536 bytes"},
        )
    )

    # A zip whose large file is deflated in several 1 MiB pieces.
    multi_zip, _ = pack_build(MULTIPIECE_BUILD)
    files["multipiece.zip.bin"] = multi_zip
    files["multipiece.json"] = dump(multipiece_vector(multi_zip, MULTIPIECE_BUILD))

    # The same zip in the Capgo format, with a fixed AES key and IV.
    capgo_out = io.BytesIO()
    capgo_writer = CapgoWriter(
        capgo_out, keys.capgo, unsafe_fixed_aes_key=CAPGO_AES_KEY, unsafe_fixed_iv=CAPGO_IV
    )
    capgo_writer.write(zip_bytes)
    capgo = capgo_writer.close()
    files["capgo.artifact.bin"] = capgo_out.getvalue()
    files["capgo.json"] = dump(
        capgo_vector(zip_bytes, capgo_out.getvalue(), keys, capgo.artifact().to_dict())
    )

    # The beta channel manifest that serves it to 25 % of devices.
    release = release_of(
        result,
        packed,
        native_min=10,
        native_max=None,
        rollout_bp=ROLLOUT_BP,
        rollout_salt=ROLLOUT_SALT,
        commit="4f2a9c1e0b7d3a5f6e8c9b0a1d2e3f4a5b6c7d8e",
        pr=42,
        capgo=capgo.artifact(),
    )
    files["beta.manifest.json"] = dsse.sign(
        dsse.PAYLOAD_TYPE_CHANNEL, beta_manifest(release).to_payload(), [keys.beta]
    ).to_json()
    files["rollout.json"] = dump(rollout_vector())
    files["store-layout.json"] = dump(
        {
            "app": APP,
            "keys": {
                f"{APP}/root/1.root.json": "root.json",
                f"{APP}/channels/beta/1.json": "beta.manifest.json",
                f"{APP}/channels/beta/manifest.json": "beta.manifest.json",
                f"{APP}/bundles/{result.sha256}.cub": "bundle.cub",
                capgo_key(APP, capgo.sha256): "capgo.artifact.bin",
            },
            "reference_time": format_time(NOW),
            "not_in_layout": {
                "root-2.json": f"{APP}/root/2.root.json once published; it rotates the beta key, "
                "so beta.manifest.json (signed by the old beta key) would then be refused",
            },
            "beta_role": channel_role("beta"),
        }
    )
    files |= rotation_vectors(keys, release)
    files |= ed25519_vectors(keys, release)

    # Negative cases: hostile stores, each with the error the reference client reports.
    files |= negative_cases.generate(
        negative_cases.Context(
            keys=keys,
            app=APP,
            now=NOW,
            sealer=sealer,
            vectors=files,
            root=root_1,
            pack_build=pack_build,
        )
    )

    # Spec 1.2: sealed deltas (§19) and the Capgo per-file list (§17.1), each in its own module.
    more = VectorContext(keys=keys, sealer=sealer, vectors=files, pack_build=pack_build)
    files |= vectors_delta.generate(more)
    files |= vectors_capgo_files.generate(more)

    shutil.rmtree(out / negative_cases.FOLDER, ignore_errors=True)  # cases may be renamed
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    return sealer.all_pinned


def main(argv: list[str] | None = None) -> int:
    """Regenerate the vectors (by default in place)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "--pin-from",
        type=Path,
        default=None,
        help="folder holding the bundle.cub whose wrapped key to keep",
    )
    parser.add_argument(
        "--fresh-wrap",
        action="store_true",
        help="wrap the content key anew (changes every .cub and digest)",
    )
    args = parser.parse_args(argv)
    pinned = generate(args.out, pin_from=args.pin_from, fresh_wrap=args.fresh_wrap)
    how = "kept the committed wrapped key" if pinned else "made a NEW wrapped key"
    print(f"wrote vectors to {args.out} ({how})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
