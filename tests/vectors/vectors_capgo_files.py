"""Golden vectors for Capgo manifest mode (SPEC §17.1): the list object and one file body.

Made from the vector web build with the fixed vector Capgo key (its private half is published in
README.md), so the app's content key and IV (HKDF-SHA256 of the private exponent) are fixed too.
Nothing here is random: RSA type-1 blocks are deterministic, and Brotli (quality 11, window 22)
is deterministic for a given library version (pinned).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from otaseal.crypto import CAPGO_BLOCK_SIZE
from otaseal.formats import capgo_files

APP = "com.example.app"
BODY_OF = "index.html"


def _dump(doc: object) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def generate(ctx: Any) -> dict[str, bytes]:
    """Vector files by name (relative to tests/vectors/)."""
    from make_vectors import WEB_BUILD

    key = ctx.keys.capgo
    files = sorted(WEB_BUILD.items(), key=lambda item: item[0].encode())  # the index's order
    built = capgo_files.build(files, key, APP)
    listed = capgo_files.parse_list(built.list_object, count=built.count)
    entry = next(f for f in listed.files if f.path == BODY_OF)
    aes_key, iv = key.content_key(APP)
    pointer = built.pointer
    return {
        "capgo-files.json": built.list_object,
        "capgo-file.bin": built.bodies[entry.body_sha256],
        "capgo-files.vector.json": _dump(
            {
                "description": "Capgo manifest mode (SPEC §17.1): the list object of the vector "
                "web build (web-build.json) and the stored body of one file, made with the "
                "vector Capgo key (keys.json) under the app's content key.",
                "app": APP,
                "content_key": {
                    "hkdf": "HKDF-SHA256, salt empty, IKM = the Capgo private exponent d as "
                    f"{CAPGO_BLOCK_SIZE} big-endian bytes, info = "
                    "'otaseal/capgo-content-key/v1' || 0x00 || app id, 32 bytes",
                    "aes_key": aes_key.hex(),
                    "iv": iv.hex(),
                },
                "list": {
                    "file": "capgo-files.json",
                    "store_key": capgo_files.list_key(APP, pointer.sha256),
                    "capgo.files": pointer.to_dict(),
                },
                "body": {
                    "file": "capgo-file.bin",
                    "path": BODY_OF,
                    "file_name": entry.file_name,
                    "store_key": capgo_files.file_key(APP, entry.body_sha256),
                    "length": entry.length,
                    "plaintext_sha256": hashlib.sha256(WEB_BUILD[BODY_OF]).hexdigest(),
                    "recipe": "Brotli (quality 11, window 22; it saves AES blocks, so file_name "
                    "ends in .br), then AES-128-CBC + PKCS#7 with content_key.aes_key and "
                    "content_key.iv"
                    if entry.is_brotli
                    else "AES-128-CBC + PKCS#7 of the file with content_key.aes_key and "
                    "content_key.iv",
                },
            }
        ),
    }
