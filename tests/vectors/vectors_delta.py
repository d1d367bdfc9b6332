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
    with tempfile.TemporaryDirectory(prefix="otaseal-vectors-delta-") as tmp:
        made = delta.make_patch(
            _write(Path(tmp) / "base", first),
            _write(Path(tmp) / "target", build),
            index_json,
            base_bundle=base_sha,
            target_bundle=sealed_bundle.sha256,
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
    header = delta.read_header(io.BytesIO(made.plaintext), made.length)
    ops = []
    for entry, op, (offset, length) in zip(
        packed.index.files, header.ops, header.payloads(), strict=True
    ):
        row: dict[str, Any] = {"path": entry.path, "size": entry.size, "sha256": entry.sha256}
        row |= {"op": op.to_dict()}
        if op.op == "zstd":
            row |= {"payload_offset": offset, "payload_length": length}
        ops.append(row)
    return {
        "delta-web-build.json": _dump(
            build_vector(
                build, {"img/photo.webp": {"same_as": "assets/photo.webp of web-build.json"}}
            )
        ),
        "delta-bundle.zip.bin": zip_bytes,
        "delta-index.json": index_json,
        "delta-bundle.cub": cub,
        "delta.patch.bin": made.plaintext,
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
                    "index_length": len(header.index_json),
                    "index_file": "delta-index.json",
                    "ops_offset": len(delta.MAGIC) + 4 + len(header.index_json) + 4,
                    "ops_length": header.payload_offset
                    - (len(delta.MAGIC) + 8 + len(header.index_json)),
                    "ops_json": json.loads(
                        made.plaintext[
                            len(delta.MAGIC) + 8 + len(header.index_json) : header.payload_offset
                        ]
                    ),
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
                f"({sealed_patch.length} bytes), applies it to its installed 1.4.2 and installs "
                f"1.5.0: the files of delta-web-build.json; without its installed files, or "
                "with one of them altered, it installs delta-bundle.cub in full instead",
            }
        ),
    }
