"""Golden vectors for sealed deltas (SPEC §19): release 1.5.0 and its patch from 1.4.2.

The second web build changes the vector build (``web-build.json``) in each way a patch handles:
``assets/app.js`` changed (zstd with the old file as dictionary), ``assets/new.js`` added (zstd
without a dictionary), ``assets/style.css`` removed, ``assets/photo.webp`` renamed unchanged to
``img/photo.webp`` (a copy from the old path), ``index.html`` changed and the rest kept (copies).
The patch is sealed with the fixed vector inputs like ``bundle.cub``; its zstd frames are what
the pinned ``zstandard`` makes (an SDK only needs to decompress them).
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from otaseal import dsse
from otaseal.formats import delta
from otaseal.model import ChannelManifest, Delta, Patch
from otaseal.store import bundle_key, manifest_key, pointer_key, root_key

LABEL = "1.5.0"


def _dump(doc: object) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def second_build(first: dict[str, bytes]) -> dict[str, bytes]:
    """The vector web build, changed as the module docstring says."""
    build = dict(first)
    build["index.html"] = (
        first["index.html"]
        .replace(b"1.4.2", LABEL.encode())
        .replace(b'  <link rel="stylesheet" href="assets/style.css">\n', b"")
        .replace(b"assets/app.js", b'assets/app.js"></script>\n  <script src="assets/new.js')
    )
    build["assets/app.js"] = first["assets/app.js"] + b"document.title = 'otaseal 1.5.0';\n"
    build["assets/new.js"] = b"console.log('added in 1.5.0');\n"
    del build["assets/style.css"]
    build["img/photo.webp"] = build.pop("assets/photo.webp")
    return build


def _write(folder: Path, build: dict[str, bytes]) -> Path:
    for name, data in build.items():
        target = folder.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def generate(ctx: Any) -> dict[str, bytes]:
    """Vector files by name (relative to tests/vectors/)."""
    from make_vectors import APP, NOW, WEB_BUILD, build_vector, release_of

    keys, vectors = ctx.keys, ctx.vectors
    first = dict(WEB_BUILD)
    build = second_build(first)
    zip_bytes, packed = ctx.pack_build(build)
    index_json = packed.index.to_json()
    cub, sealed_bundle = ctx.sealer.seal(zip_bytes, [keys.decryption])
    base_sha = hashlib.sha256(vectors["bundle.cub"]).hexdigest()
    base_index = vectors["index.json"]  # 1.4.2's, which the device keeps (SPEC §19.3)
    with tempfile.TemporaryDirectory(prefix="otaseal-vectors-delta-") as tmp:
        made = delta.make_patch(
            _write(Path(tmp) / "base", first),
            _write(Path(tmp) / "target", build),
            index_json,
            base_bundle=base_sha,
            target_bundle=sealed_bundle.sha256,
            base_index=base_index,
            workers=1,
        )
    patch_cub, sealed_patch = ctx.sealer.seal(made.plaintext, [keys.decryption])

    envelope = dsse.Envelope.from_json(vectors["beta.manifest.json"])
    old_manifest = ChannelManifest.from_payload(envelope.payload)
    (old,) = old_manifest.releases
    patch = Patch(
        base=base_sha,
        sha256=sealed_patch.sha256,
        length=sealed_patch.length,
        plaintext_sha256=sealed_patch.plaintext_sha256,
        plaintext_length=sealed_patch.plaintext_length,
        base_label=old.label,
        changed=made.changed,
    )
    release = release_of(
        sealed_bundle,
        packed,
        label=LABEL,
        counter=2,
        published=NOW,
        native_min=old.native_min,
        rollout_salt="5e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b",
        delta=Delta(index=hashlib.sha256(index_json).hexdigest(), patches=(patch,)),
    )
    manifest = replace(
        old_manifest,
        version=2,
        releases=(release, old),
        event=f"publish {LABEL}",
        issued=NOW,
        expires=NOW + timedelta(days=30),
    )
    signed = dsse.sign(dsse.PAYLOAD_TYPE_CHANNEL, manifest.to_payload(), [keys.beta]).to_json()

    def serve(plaintext: bytes, index_digest: str | None = None) -> tuple[bytes, bytes, str]:
        """``plaintext`` sealed as 1.5.0's patch: the .cub, the signed manifest, its digest."""
        sealed_cub, result = ctx.sealer.seal(plaintext, [keys.decryption])
        entry = replace(
            patch,
            sha256=result.sha256,
            length=result.length,
            plaintext_sha256=result.plaintext_sha256,
            plaintext_length=result.plaintext_length,
        )
        assert release.delta is not None
        changed = replace(
            release,
            delta=Delta(index=index_digest or release.delta.index, patches=(entry,)),
        )
        body = replace(manifest, releases=(changed, old)).to_payload()
        envelope = dsse.sign(dsse.PAYLOAD_TYPE_CHANNEL, body, [keys.beta]).to_json()
        return sealed_cub, envelope, result.sha256

    refused = refusal_vectors(
        made.plaintext,
        patch_cub,
        serve,
        base_index=base_index,
        app=APP,
        keys={
            "base": bundle_key(APP, base_sha),
            "bundle": bundle_key(APP, sealed_bundle.sha256),
            "patch": bundle_key(APP, sealed_patch.sha256),
            "pointer": pointer_key(APP, "beta"),
            "manifest": manifest_key(APP, "beta", 2),
        },
    )
    header = delta.read_header(io.BytesIO(made.plaintext), made.length, base_index=base_index)
    ops = []
    for entry, op, (offset, length) in header.jobs(packed.index):
        row: dict[str, Any] = {"path": entry.path, "size": entry.size, "sha256": entry.sha256}
        row |= {"op": op.to_dict(), "listed": not op.implicit}
        if op.op == "zstd":
            row |= {"payload_offset": offset, "payload_length": length}
        ops.append(row)
    fixed = len(delta.MAGIC) + 64 + 4
    head_frame = made.plaintext[fixed : header.payload_offset]
    head = delta.decompressor(base_index).decompress(head_frame)
    ops_json = head[4 + len(header.index_json) :]
    return refused | {
        "delta-web-build.json": _dump(
            build_vector(
                build, {"img/photo.webp": {"same_as": "assets/photo.webp of web-build.json"}}
            )
        ),
        "delta-bundle.zip.bin": zip_bytes,
        "delta-index.json": index_json,
        "delta-bundle.cub": cub,
        "delta.patch.bin": made.plaintext,
        "delta.head.bin": head,
        "delta.patch.cub": patch_cub,
        "delta-beta.manifest.json": signed,
        "delta.json": _dump(
            {
                "description": "The sealed patch from release 1.4.2 (bundle.cub) to 1.5.0 "
                "(delta-bundle.cub) (SPEC §19), with every value a device checks.",
                "base": {"label": old.label, "bundle_sha256": base_sha},
                "target": {
                    "label": LABEL,
                    "bundle_sha256": sealed_bundle.sha256,
                    "content.files": len(packed.index.files),
                    "content.size": packed.index.total_size,
                },
                "delta.index": hashlib.sha256(index_json).hexdigest(),
                "delta.patches[0]": patch.to_dict(),
                "patch": {
                    "file": "delta.patch.bin",
                    "sealed_file": "delta.patch.cub",
                    "store_key": bundle_key(APP, sealed_patch.sha256),
                    "magic_hex": delta.MAGIC.hex(),
                    "base_hex": base_sha,
                    "target_hex": sealed_bundle.sha256,
                    "head_offset": fixed,
                    "head_length": len(head_frame),
                    "head_dictionary": "index.json (the index of 1.4.2 that the device kept "
                    "when it installed bundle.cub), as raw content",
                    "head_file": "delta.head.bin (the head decompressed)",
                    "index_length": len(header.index_json),
                    "index_file": "delta-index.json",
                    "ops_json": json.loads(ops_json),
                    "payload_offset": header.payload_offset,
                    "payload_length": made.length - header.payload_offset,
                },
                "files": ops,
                "zstd": {
                    "dictionary": "the base file named by 'from', as raw content "
                    "(ZSTD_dct_rawContent), or none when 'from' is null",
                    "max_window": delta.MAX_WINDOW,
                },
            }
        ),
        "store-delta.json": _dump(
            {
                "app": APP,
                "trusted_root": "root.json",
                "reference_time": "2026-01-01T00:00:00Z",
                "native": 12,
                "before": "store-layout.json: a device with an in_rollout install id has "
                "installed 1.4.2 (bundle.cub) on beta",
                "keys": {
                    root_key(APP, 1): "root.json",
                    manifest_key(APP, "beta", 2): "delta-beta.manifest.json",
                    pointer_key(APP, "beta"): "delta-beta.manifest.json",
                    bundle_key(APP, base_sha): "bundle.cub",
                    bundle_key(APP, sealed_bundle.sha256): "delta-bundle.cub",
                    bundle_key(APP, sealed_patch.sha256): "delta.patch.cub",
                },
                "expect": "the device downloads delta.patch.cub only "
                f"({sealed_patch.length} bytes), applies it to its installed 1.4.2 (with the "
                "index.json it kept as the head's dictionary) and installs 1.5.0: the files of "
                "delta-web-build.json, keeping delta-index.json as its index from then on; "
                "without its installed files or its kept index, or with one of them altered, it "
                "installs delta-bundle.cub in full instead",
            }
        ),
    }


# --- refusals: the patch is dropped and the full bundle installed ---------------------------------
REFUSALS = "delta-refusals"


def _swap_payloads(plaintext: bytes, edit: Any, base_index: bytes) -> bytes:
    """The patch with its listed ops and payloads as ``edit(ops, payloads)`` leaves them."""
    head = delta.read_header(io.BytesIO(plaintext), len(plaintext), base_index=base_index)
    ops = list(head.ops)
    payloads = [plaintext[at : at + n] for at, n in head.payloads()]
    edit(ops, payloads)
    ops = [
        replace(op, length=len(p)) if op.op == "zstd" else op
        for op, p in zip(ops, payloads, strict=True)
    ]
    header = delta.encode_header(
        head.index_json, ops, base=head.base, target=head.target, base_index=base_index
    )
    return header + b"".join(payloads)


def _with_header(plaintext: bytes, base_index: bytes, **values: str) -> bytes:
    head = delta.read_header(io.BytesIO(plaintext), len(plaintext), base_index=base_index)
    header = delta.encode_header(
        head.index_json,
        head.ops,
        base=values.get("base", head.base),
        target=values.get("target", head.target),
        base_index=base_index,
    )
    return header + plaintext[head.payload_offset :]


def refusal_vectors(
    plaintext: bytes,
    patch_cub: bytes,
    serve: Any,
    *,
    base_index: bytes,
    app: str,
    keys: dict[str, str],
) -> dict[str, bytes]:
    """Hostile patches and altered installed trees: each check installs 1.5.0 in full.

    Indexes into the listed ops follow delta.json's "ops_json": 0 assets/app.js (zstd from
    itself), 1 assets/new.js (zstd, no dictionary), 2 img/photo.webp (copy), 3 index.html
    (zstd); Über/naïve.txt is not listed (a copy from its own path).
    """
    import zstandard

    def new_js(ops: list[delta.Op], payloads: list[bytes]) -> None:
        payloads[1] = zstandard.ZstdCompressor(level=3).compress(b"console.log('1.5.1');\n")

    def reorder(ops: list[delta.Op], payloads: list[bytes]) -> None:
        payloads[0], payloads[3] = payloads[3], payloads[0]

    def escape(ops: list[delta.Op], payloads: list[bytes]) -> None:
        ops.append(delta.Op("Über/naïve.txt", "copy", "../state/state.json"))
        payloads.append(b"")

    def bomb(ops: list[delta.Op], payloads: list[bytes]) -> None:
        payloads[1] = zstandard.ZstdCompressor(level=3).compress(b"\0" * (16 << 20))

    patches: dict[str, tuple[str, bytes, str | None]] = {
        "wrong-base": (
            "the ops name another base bundle",
            _with_header(plaintext, base_index, base="e" * 64),
            None,
        ),
        "other-target": (
            "the ops name another target bundle",
            _with_header(plaintext, base_index, target="a" * 64),
            None,
        ),
        "index-digest": (
            "the release signs another delta.index than the patch's index",
            plaintext,
            "0" * 64,
        ),
        "result-differs": (
            "assets/new.js decompresses to other bytes than the index says",
            _swap_payloads(plaintext, new_js, base_index),
            None,
        ),
        "reordered-payloads": (
            "the payloads of assets/app.js and index.html swapped (lengths kept consistent)",
            _swap_payloads(plaintext, reorder, base_index),
            None,
        ),
        "from-escapes": (
            "a copy from ../state/state.json, outside the install folder",
            _swap_payloads(plaintext, escape, base_index),
            None,
        ),
        "decompression-bomb": (
            "assets/new.js (31 bytes) as a frame of 16 MiB of zeros",
            _swap_payloads(plaintext, bomb, base_index),
            None,
        ),
        "truncated-patch": ("the patch without its last byte, sealed", plaintext[:-1], None),
    }
    files: dict[str, bytes] = {}
    cases: list[dict[str, Any]] = []
    for name, (what, data, digest) in patches.items():
        cub, envelope, sha = serve(data, digest)
        files[f"{REFUSALS}/{name}.patch.cub"] = cub
        files[f"{REFUSALS}/{name}.manifest.json"] = envelope
        cases.append(
            {
                "name": name,
                "what": what,
                "store": {
                    keys["manifest"]: f"{REFUSALS}/{name}.manifest.json",
                    keys["pointer"]: f"{REFUSALS}/{name}.manifest.json",
                    bundle_key(app, sha): f"{REFUSALS}/{name}.patch.cub",
                },
                "refused": "DeltaError",
            }
        )
    files[f"{REFUSALS}/truncated.patch.cub"] = patch_cub[:-1]
    cases += [
        {
            "name": "truncated-cub",
            "what": "the store serves the sealed patch without its last byte",
            "store": {keys["patch"]: f"{REFUSALS}/truncated.patch.cub"},
            "refused": "LengthError",
        },
        {
            "name": "patch-missing",
            "what": "the store has no sealed patch",
            "store": {keys["patch"]: None},
            "refused": "NotFoundError",
        },
        {
            "name": "installed-file-altered",
            "what": "the device's installed Über/naïve.txt was changed (same size)",
            "installed": {
                "write": {"Über/naïve.txt": "NON-ASCII paths are UTF-8 in the zip and the index\n"}
            },
            "refused": "DeltaError",
        },
        {
            "name": "installed-file-missing",
            "what": "the device's installed assets/photo.webp was removed",
            "installed": {"remove": ["assets/photo.webp"]},
            "refused": "DeltaError",
        },
        {
            "name": "installed-file-symlink",
            "what": "the device's installed index.html is a symbolic link to a copy of itself "
            "outside the install folder",
            "installed": {"symlink": ["index.html"]},
            "refused": "DeltaError",
        },
        {
            "name": "stored-index-tampered",
            "what": "the index of 1.4.2 the device kept was altered (the SHA-256 of "
            "Über/naïve.txt, which 1.5.0 keeps): the head decompresses to an index whose "
            "digest is not the signed delta.index",
            "stored_index": {"write": f"{REFUSALS}/stored-index-tampered.index.json"},
            "refused": "DeltaError",
        },
        {
            "name": "stored-index-missing",
            "what": "the device kept no index of 1.4.2 (installed before it kept them, or the "
            "file was removed): it does not download the patch",
            "stored_index": {"remove": True},
            "refused": "DeltaError",
        },
    ]
    # A digest that 1.5.0's index repeats, so the head's frame copies it from the dictionary (a
    # change where the frame takes nothing from the dictionary changes nothing).
    kept = next(
        f["sha256"] for f in json.loads(base_index)["files"] if f["path"] == "Über/naïve.txt"
    )
    files[f"{REFUSALS}/stored-index-tampered.index.json"] = base_index.replace(
        kept.encode(), (("0" if kept[0] != "0" else "1") + kept[1:]).encode()
    )
    files[f"{REFUSALS}.json"] = _dump(
        {
            "description": "Each case starts from store-delta.json (after store-layout.json "
            "installed 1.4.2), changes the store keys in 'store' (null: the key is absent), the "
            "installed tree as 'installed' says, or the index of 1.4.2 the device kept "
            "('stored_index': replaced by 'write', or removed), and runs one check. Every case "
            "MUST end 'installed' with the files of delta-web-build.json, downloading the full "
            "delta-bundle.cub, and SHOULD report the patch refused with the error class "
            "'refused' (SPEC §19.3 fallback, §19.4).",
            "cases": cases,
        }
    )
    return files
