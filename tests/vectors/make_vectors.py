"""Make otaseal's golden test vectors from fixed keys and a fixed clock.

    python tests/vectors/make_vectors.py [--out DIR] [--pin-from DIR] [--fresh-wrap]

Everything is deterministic (ECDSA signatures use RFC 6979) except one thing: HPKE encapsulation
in the ``.cub`` header is randomized by the library. The segment key depends on the whole header,
so a fresh wrap would change every ciphertext byte and the signed bundle digest. The wrapped key
is therefore *pinned*: it is taken from the ``bundle.cub`` already in ``--pin-from`` (default: the
output folder) after checking that it unwraps to the fixed content key with the fixed decryption
key. Only when there is none, or it no longer opens (the fixed inputs changed), or ``--fresh-wrap``
is given, is a new one made. ``tests/vectors/test_vectors.py`` regenerates with the committed pin
and fails on any difference.

The keys here are TEST KEYS whose private halves are published in tests/vectors/README.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otaseal import dsse, trust
from otaseal.archive import pack
from otaseal.crypto import (
    CapgoPrivateKey,
    DecryptionKey,
    SigningKey,
    capgo_key_from_primes,
    decryption_key_from_scalar,
    hkdf_sha256,
    load_signing_key,
    signing_key_from_scalar,
)
from otaseal.errors import DecryptionError
from otaseal.formats import sealed
from otaseal.formats.capgo import CapgoWriter
from otaseal.model import ChannelManifest, Release, channel_role, format_time
from otaseal.project import make_root, sign_root
from otaseal.store import capgo_key

if TYPE_CHECKING:
    from collections.abc import Mapping

HERE = Path(__file__).resolve().parent
APP = "com.example.app"
NOW = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")

# Fixed inputs of the sealed bundle. Reusing a content key with a nonce prefix breaks AES-GCM:
# these values exist only for vectors.
CONTENT_KEY = bytes(range(0x20))
SALT = bytes(range(0x20, 0x40))
NONCE_PREFIX = bytes(range(0xA0, 0xA7))
BUNDLE_ID = bytes(range(0xB0, 0xC0))

# The Capgo format's RSA-2048 TEST key (two fixed primes, e = 65537) and its fixed AES-128 key and
# IV. A repeated key and IV let anyone compare releases block by block: vectors only.
CAPGO_P = int(
    "e43b547a623ae68fb8f35dfd20ce8188f9682253e5df0d8a6f23f4e396a53ee594d5f57627e4c9321ae2c52e939cd7"
    "150166357f4a8480fd90eacc10b5fe49ad9067fe930421ccddb0c98b8ac96557ce9c6240881eae3aff4e71f66ce7ae"
    "7e9e14e5776c9be144e560e1cbeb7e7ec8425bbf9a288f998e815594e14d02091c3b",
    16,
)
CAPGO_Q = int(
    "bd359f1cdf8d778fd9bce724b3490cd44f05b3eff0cb25e718f8ca252411cb3879e6f0a6909c85beb90e1b35d23e94"
    "178c1cada13aae0169af76bfa553463d10fb7aa267e62212ea5cb27008531d6880cffdfcced34c9839bc4d0fcbf67f"
    "898c62f3f56ea90098c1b46a26c21a66e4778a198655c125bc042aa42d048e7adb67",
    16,
)
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


def scalar(label: str) -> int:
    """A fixed private scalar: SHA-256 of a public label (so: a TEST key)."""
    value = int.from_bytes(hashlib.sha256(b"otaseal test vector key: " + label.encode()).digest())
    if not 0 < value < P256_ORDER:  # pragma: no cover - astronomically unlikely
        raise ValueError(label)
    return value


def ed25519_seed(label: str) -> bytes:
    """A fixed Ed25519 seed (TEST key)."""
    return hashlib.sha256(b"otaseal test vector key: " + label.encode()).digest()


@dataclass(frozen=True)
class VectorKeys:
    """Every key the vectors use, made from the labels above."""

    root: SigningKey
    root_2: SigningKey
    beta: SigningKey
    beta_2: SigningKey
    production: SigningKey
    ed25519: SigningKey
    decryption: DecryptionKey
    capgo: CapgoPrivateKey

    @classmethod
    def make(cls) -> VectorKeys:
        ed = load_signing_key(ED25519_PKCS8_PREFIX + ed25519_seed("ed25519"))
        return cls(
            root=signing_key_from_scalar(scalar("root")),
            root_2=signing_key_from_scalar(scalar("root-2")),
            beta=signing_key_from_scalar(scalar("beta")),
            beta_2=signing_key_from_scalar(scalar("beta-2")),
            production=signing_key_from_scalar(scalar("production")),
            ed25519=ed,
            decryption=decryption_key_from_scalar(scalar("app-decryption")),
            capgo=capgo_key_from_primes(CAPGO_P, CAPGO_Q),
        )


# --- helpers ------------------------------------------------------------------------------------
def dump(doc: Any) -> bytes:
    """Stable JSON for the vector files themselves."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def ecdsa_der_to_raw(der: bytes) -> bytes:
    """DER ``SEQUENCE { INTEGER r, INTEGER s }`` to the 64-byte ``r ‖ s`` WebCrypto verifies."""
    if der[0] != 0x30 or der[1] != len(der) - 2:
        raise ValueError("not a short-form DER SEQUENCE")
    out, pos = b"", 2
    for _ in range(2):
        if der[pos] != 0x02:
            raise ValueError("expected an INTEGER")
        size = der[pos + 1]
        value = der[pos + 2 : pos + 2 + size]
        out += int.from_bytes(value).to_bytes(32)
        pos += 2 + size
    return out


def key_entry(key: SigningKey, private: dict[str, str]) -> dict[str, str]:
    return {
        "algorithm": key.algorithm,
        **private,
        "public_spki_der_hex": key.public.der.hex(),
        "public_pem": key.public.to_pem().decode(),
        "keyid": key.keyid,
    }


class PinnedRecipient:
    """A recipient that returns a known-good wrapped key instead of a fresh (random) one."""

    def __init__(self, key: DecryptionKey, wrapped: bytes | None) -> None:
        self.key = key
        self.wrapped = wrapped
        self.pinned = False

    @property
    def keyid(self) -> str:
        return self.key.public.keyid

    def wrap(self, content_key: bytes, info: bytes) -> bytes:
        if self.wrapped is not None:
            try:
                if self.key.unwrap(self.wrapped, info) == content_key:
                    self.pinned = True
                    return self.wrapped
            except DecryptionError:
                pass
        return self.key.public.wrap(content_key, info)


def committed_wrapped_key(folder: Path | None, keyid: str) -> bytes | None:
    """The wrapped content key for ``keyid`` in ``folder/bundle.cub``, if there is one."""
    if folder is None or not (folder / "bundle.cub").is_file():
        return None
    try:
        with (folder / "bundle.cub").open("rb") as src:
            header = sealed.read_header(src)
    except DecryptionError:
        return None
    return next((e.wrapped_key for e in header.recipients if e.keyid == keyid), None)


# --- the vectors --------------------------------------------------------------------------------
def keys_vector(keys: VectorKeys) -> dict[str, Any]:
    def ecdsa(label: str, key: SigningKey) -> dict[str, str]:
        return key_entry(key, {"private_scalar_hex": f"{scalar(label):064x}"})

    return {
        "WARNING": "TEST KEYS. The private halves are public. Never trust them anywhere.",
        "derivation": "ECDSA P-256 scalar / Ed25519 seed = SHA-256('otaseal test vector key: ' "
        "+ label), big-endian",
        "signing": {
            "root": ecdsa("root", keys.root),
            "root-2": ecdsa("root-2", keys.root_2),
            "beta": ecdsa("beta", keys.beta),
            "beta-2": ecdsa("beta-2", keys.beta_2),
            "production": ecdsa("production", keys.production),
            "ed25519": key_entry(keys.ed25519, {"private_seed_hex": ed25519_seed("ed25519").hex()}),
        },
        "decryption": {
            "app-decryption": {
                "algorithm": "hpke-p256 (DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM)",
                "private_scalar_hex": f"{scalar('app-decryption'):064x}",
                "public_spki_der_hex": keys.decryption.public.der.hex(),
                "public_pem": keys.decryption.public.to_pem().decode(),
                "keyid": keys.decryption.public.keyid,
            },
        },
        "capgo": {
            "algorithm": "rsa-2048-pkcs1 (the Capgo format: session key and V3 checksum)",
            "p_hex": f"{CAPGO_P:x}",
            "q_hex": f"{CAPGO_Q:x}",
            "e": 65537,
            "private_pem": keys.capgo.to_pem().decode(),
            "public_pem": keys.capgo.public.pem.decode(),
            "key_id": keys.capgo.public.key_id,
        },
    }


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


def write_build(folder: Path) -> None:
    for name, data in WEB_BUILD.items():
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


def seal_vector(cub: bytes, result: sealed.SealResult, keys: VectorKeys) -> dict[str, Any]:
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
    return {
        "note": "unsafe_fixed_* inputs, for vectors only. HPKE encapsulation is randomized; the "
        "committed wrapped_key is one valid wrap and is pinned when vectors are regenerated.",
        "format_version": header.version,
        "segment_size": header.segment_size,
        "content_key_hex": CONTENT_KEY.hex(),
        "salt_hex": SALT.hex(),
        "nonce_prefix_hex": NONCE_PREFIX.hex(),
        "bundle_id_hex": BUNDLE_ID.hex(),
        "recipient_keyid": entry.keyid,
        "recipient_private_scalar_hex": f"{scalar('app-decryption'):064x}",
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


def generate(out: Path, *, pin_from: Path | None = None, fresh_wrap: bool = False) -> bool:
    """Write every vector into ``out``; return whether the wrapped key was pinned."""
    keys = VectorKeys.make()
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}

    files["keys.json"] = dump(keys_vector(keys))
    files["pae.json"] = dump(pae_vector(keys))

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
    with tempfile.TemporaryDirectory(prefix="otaseal-vectors-") as tmp:
        build = Path(tmp) / "build"
        write_build(build)
        plain = io.BytesIO()
        packed = pack(build, plain, workers=1)
    zip_bytes = plain.getvalue()
    files["bundle.zip.bin"] = zip_bytes
    files["index.json"] = packed.index.to_json()
    files["web-build.json"] = dump(
        {
            name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            | (
                {"utf8": data.decode()}
                if name.endswith((".html", ".js", ".css", ".txt"))
                else {"shake_256_of": "otaseal vector photo", "note": "SHAKE-256 output bytes"}
            )
            for name, data in sorted(WEB_BUILD.items(), key=lambda item: item[0].encode())
        }
    )

    pin = (
        None if fresh_wrap else committed_wrapped_key(pin_from or out, keys.decryption.public.keyid)
    )
    recipient = PinnedRecipient(keys.decryption, pin)
    cub = io.BytesIO()
    writer = sealed.SealWriter(
        cub,
        [recipient],
        unsafe_fixed_content_key=CONTENT_KEY,
        unsafe_fixed_salt=SALT,
        unsafe_fixed_nonce_prefix=NONCE_PREFIX,
        unsafe_fixed_bundle_id=BUNDLE_ID,
    )
    writer.write(zip_bytes)
    result = writer.close()
    files["bundle.cub"] = cub.getvalue()
    files["sealed.json"] = dump(seal_vector(cub.getvalue(), result, keys))

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
    release = Release(
        label="1.4.2",
        counter=1,
        sha256=result.sha256,
        length=result.length,
        plaintext_sha256=result.plaintext_sha256,
        plaintext_length=result.plaintext_length,
        files=len(packed.index.files),
        unpacked_size=packed.index.total_size,
        published=NOW,
        native_min=10,
        native_max=None,
        rollout_bp=ROLLOUT_BP,
        rollout_salt=ROLLOUT_SALT,
        commit="4f2a9c1e0b7d3a5f6e8c9b0a1d2e3f4a5b6c7d8e",
        pr=42,
        capgo=capgo.artifact(),
    )
    manifest = ChannelManifest(
        app=APP,
        channel="beta",
        version=1,
        issued=NOW,
        expires=NOW + timedelta(days=30),
        releases=(release,),
        security_floor=0,
        event="publish 1.4.2",
    )
    files["beta.manifest.json"] = dsse.sign(
        dsse.PAYLOAD_TYPE_CHANNEL, manifest.to_payload(), [keys.beta]
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

    for name, data in files.items():
        (out / name).write_bytes(data)
    return recipient.pinned


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
