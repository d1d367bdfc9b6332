"""Write the seed corpora under ``fuzz/corpus/<target>/`` from the golden vectors and the tests.

Seeds only have to be good starting points: each is a valid (or nearly valid) input in the
target's input layout, so mutations start past the first checks. ``make fuzz`` does not need this
rerun; run it after a target's input layout changes and commit the result. Every corpus comes out
byte for byte the same except ``sealed``: HPKE encapsulation is randomized, so it is only
rewritten when asked (``--sealed``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import _harness

from otaseal.archive import pack
from otaseal.crypto import decryption_key_from_scalar
from otaseal.formats.sealed import SealWriter

CORPUS = Path(__file__).resolve().parent / "corpus"
VECTORS = _harness.VECTORS


def _write(target: str, seeds: list[bytes]) -> None:
    folder = CORPUS / target
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for seed in seeds:
        (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)  # noqa: S324 - libFuzzer's naming
    print(f"{folder.relative_to(CORPUS.parent.parent)}: {len(seeds)} seeds")


# --- archive and sealed ---------------------------------------------------------------------
def _web_build() -> dict[str, bytes]:
    """The vectors' web build without its 66 kB photo (seeds stay small), plus a few shapes."""
    return {
        path: entry["utf8"].encode()
        for path, entry in json.loads((VECTORS / "web-build.json").read_text()).items()
        if "utf8" in entry
    }


def _zip(files: dict[str, bytes]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="otaseal-fuzz-corpus-") as tmp:
        root = Path(tmp) / "build"
        for path, data in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
        out = io.BytesIO()
        pack(root, out, workers=1)
        return out.getvalue()


def _zips() -> list[bytes]:
    web = _web_build()
    return [
        _zip(web),
        _zip({"index.html": b"<h1>hi</h1>\n"}),
        _zip({"index.html": b"", "a/b/c/d.js": b"x" * 3000}),  # an empty file; a deflated one
        _zip(
            {"index.html": b"<p>", "app.js": bytes(range(256)) * 8}
        ),  # stored: it does not compress
    ]


def archive_seeds() -> list[bytes]:
    """Flag byte, three bytes of budget, the zip."""
    seeds = []
    for i, data in enumerate(_zips()):
        budget = (1 << 24) - 1 if i % 2 else 1 << 16
        seeds.append(bytes([i % 8]) + budget.to_bytes(3) + data)
    seeds.append(b"\0" + (1 << 16).to_bytes(3) + _zips()[2][:-22])  # no end of central directory
    built = [  # flag bit 3: entries (name, contents, options) that fuzz_archive zips itself
        [
            ("index.html", b"<h1>", 0),
            ("a/b/c.js", b"x" * 600, 1),
            ("\u00dcber/na\u00efve.txt", b"u", 0),
        ],
        [("index.html", b"", 0), ("A.txt", b"1", 0), ("a.txt", b"2", 0)],  # a case collision
        [("index.html", b"<p>", 8), ("x", b"y", 4 | 64)],  # the index lies; a symlink
    ]
    for entries in built:
        encoded = b"".join(_chunk(n.encode()) + _chunk(d) + bytes([o]) for n, d, o in entries)
        seeds.append(b"\x08" + (1 << 16).to_bytes(3) + encoded)
    return seeds


def _seal(plain: bytes, segment_size: int, recipients: int = 1) -> bytes:
    app = decryption_key_from_scalar(_harness.vector_scalar("app-decryption")).public
    others = [
        decryption_key_from_scalar(_harness.vector_scalar(f"fuzz-recipient-{n}")).public
        for n in range(recipients - 1)
    ]
    out = io.BytesIO()
    with SealWriter(
        out,
        [*others, app],
        segment_size=segment_size,
        unsafe_fixed_content_key=bytes(range(32)),  # seeds only: fixed for reproducible files
        unsafe_fixed_salt=bytes(32),
        unsafe_fixed_nonce_prefix=bytes(7),
        unsafe_fixed_bundle_id=bytes(16),
    ) as writer:
        writer.write(plain)
    return out.getvalue()


def sealed_seeds() -> list[bytes]:
    """Three bytes of max_plaintext, one of read size, the .cub."""
    zip_bytes = _zips()[0]
    cases = [
        (zip_bytes, 1024, 1),  # several segments
        (b"", 1024, 1),  # only an empty final segment
        (b"z" * 2048, 1024, 1),  # a whole number of segments: an empty final one
        (b"two recipients", 1024, 2),
        (b"y" * 5000, 4096, 1),
    ]
    seeds = [
        len(p).to_bytes(3) + bytes([i * 50]) + _seal(p, s, n) for i, (p, s, n) in enumerate(cases)
    ]
    seeds.append((100).to_bytes(3) + b"\0" + _seal(zip_bytes, 1024))  # over the plaintext cap
    seeds.append(b"\xff\xff\xff\0" + (VECTORS / "bundle.cub").read_bytes()[:400])  # truncated
    return seeds


# --- metadata -------------------------------------------------------------------------------
def _payload(name: str) -> bytes:
    return base64.b64decode(json.loads((VECTORS / name).read_bytes())["payload"])


def metadata_seeds() -> list[bytes]:
    """Mode byte, then each mode's input (see fuzz_metadata.py)."""
    root, root2, beta = (
        (VECTORS / n).read_bytes() for n in ("root.json", "root-2.json", "beta.manifest.json")
    )
    device = struct.pack(">IB", 12, 0) + b"\0\x04inst"
    params = struct.pack(">HI", 0, (1 << 31) // 10) + device
    state = json.dumps(
        {"root": base64.b64encode(root).decode(), "versions": {"beta": 1}, "installed": {}}
    ).encode()
    return [
        b"\0" + root,
        b"\0" + beta,
        b"\1\1" + _payload("root.json"),
        b"\2" + device + _payload("beta.manifest.json"),
        b"\3" + root,
        b"\3" + root2,
        b"\4" + root2,
        b"\5" + params + beta,
        b"\6" + _payload("root.json"),
        b"\7" + _payload("root-2.json"),
        b"\x08" + params + _payload("beta.manifest.json"),
        b"\x09" + state,
    ]


# --- http -----------------------------------------------------------------------------------
def _chunk(data: bytes) -> bytes:
    return len(data).to_bytes(2) + data


def _reply(
    status: int, headers: list[tuple[int, bytes]], body: bytes, framing: int, kind: int = 1
) -> bytes:
    """Encode one structured reply (see fuzz_http._reply); status and headers by table index."""
    from fuzz_http import HEADERS, STATUSES  # the layout lives with the target

    del HEADERS
    out = bytes([kind, STATUSES.index(status), len(headers)])
    for name, value in headers:
        out += bytes([name]) + _chunk(value)
    return out + bytes([framing]) + _chunk(body) + b"\0\0"


def _raw(data: bytes) -> bytes:
    return b"\0" + _chunk(data)


def http_seeds() -> list[bytes]:
    """Flag byte (replies - 1, key, stream), two bytes of max_bytes, then the replies."""
    body = (VECTORS / "root.json").read_bytes()[:200]
    cap = len(body).to_bytes(2)
    location, content_range, length = 2, 1, 0
    return [
        b"\0" + cap + _reply(200, [], body, 0),
        b"\x80" + cap + _reply(206, [(content_range, b"bytes 0-199/200")], body, 0),
        b"\0" + b"\0\x10" + _reply(206, [(content_range, b"bytes 0-16/9999")], body[:17], 0),
        b"\1" + cap + _reply(416, [], b"", 0) + _reply(200, [], b"", 0),
        b"\1"
        + cap
        + _reply(302, [(location, b"{origin}/moved")], b"", 0)
        + _reply(200, [], body, 0),
        b"\2" + cap + _reply(301, [(location, b"/r/1")], b"gone", 0) * 2 + _reply(200, [], body, 1),
        b"\0" + cap + _reply(200, [], body, 1),  # chunked
        b"\0" + cap + _reply(200, [], body, 1)[:-2] + b"\0\0\1\xff" + _chunk(b"-1") + b"\0",
        b"\0" + cap + _reply(200, [], body, 4),  # gzip
        b"\0" + cap + _reply(200, [], body, 8 | 2),  # deflate, close-delimited
        b"\0" + cap + _reply(200, [(length, "١٢".encode())], body, 2),
        b"\0" + cap + _reply(404, [], b"not here", 0),
        b"\x40" + cap + _reply(200, [], body, 0, kind=0xF1),  # dripped past a 10 ms deadline
        b"\x41" + cap + _reply(302, [(location, b"{origin}/a")], b"", 0, kind=0x95) * 2,
        b"\0" + cap + _raw(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        b"\0" + cap + _raw(b"HTTP/1.0 200 OK\r\n\r\n" + body),
        b"\0" + cap + _raw(b"HTTP/1.1 302 Found\r\nLocation: http://[::1\r\n\r\n"),
    ]


# --- delta and capgo_list ---------------------------------------------------------------------
def delta_seeds() -> list[bytes]:
    """Flag byte, release byte, the patch plaintext or its raw head (see fuzz_delta.py)."""
    from fuzz_delta import BASE, BASE_INDEX, NEWS, OLD, TARGET, index_of, raw_head, write_tree

    from otaseal.formats.delta import compress, make_patch

    seeds = []
    with tempfile.TemporaryDirectory(prefix="otaseal-fuzz-corpus-") as tmp:
        base = write_tree(Path(tmp) / "base", OLD)
        for n, files in enumerate(NEWS):
            build = write_tree(Path(tmp) / f"new-{n}", files)
            for flags, dictionary in ((1, BASE_INDEX), (0, b""), (3, BASE_INDEX)):
                made = make_patch(
                    base,
                    build,
                    index_of(files),
                    base_bundle=BASE,
                    target_bundle=TARGET,
                    base_index=dictionary,
                    workers=1,
                )
                seeds.append(bytes([flags, n]) + made.plaintext)
                if flags == 1:  # the same patch with its head uncompressed (flag bit 2)
                    head, payloads = raw_head(made.plaintext, BASE_INDEX)
                    seeds.append(bytes([flags | 4, n]) + _chunk(head) + payloads)
    # Self-signed raw heads whose ops read what a device must not follow or read: links to a
    # file and through a folder, a FIFO, a folder (flags 7: dictionary, carried index, raw head).
    lib = OLD["assets/lib.js"]
    index = index_of({"x.js": lib})
    frame = compress(lib, None, level=1)
    for source in ("assets/link.js", "linked/lib.js", "pipe", "assets"):
        for op in (
            {"from": source, "op": "copy", "path": "x.js"},
            {"from": source, "length": len(frame), "op": "zstd", "path": "x.js"},
        ):
            ops = json.dumps({"files": [op], "version": 2}, separators=(",", ":")).encode()
            head = len(index).to_bytes(4, "big") + index + ops
            seeds.append(b"\7\0" + _chunk(head) + (frame if op["op"] == "zstd" else b""))
    return seeds


def capgo_list_seeds() -> list[bytes]:
    """Mode byte, then a count and a list object, or a name, hash, session key and body."""
    from fuzz_capgo_list import APP, KEY, SESSION_KEY

    from otaseal.formats import capgo_files

    listed = (VECTORS / "capgo-files.json").read_bytes()
    count = len(json.loads(listed)["files"])
    seeds = [b"\0" + bytes([count]) + listed, b"\2" + bytes([count - 1]) + listed]
    files = [
        ("a/b.js", b"console.log('hi');\n" * 40),  # Brotli pays
        ("empty.txt", b""),  # the empty Brotli stream
        ("img/x.bin", bytes(range(7))),  # Brotli does not pay
    ]
    built = capgo_files.build(files, KEY, APP)
    seeds.append(b"\0" + bytes([len(files)]) + built.list_object)
    for n, entry in enumerate(capgo_files.parse_list(built.list_object, count=3).files):
        head = _chunk(entry.file_name.encode()) + _chunk(entry.file_hash.encode())
        body = built.bodies[entry.body_sha256]
        seeds.append(b"\1" + head + _chunk(SESSION_KEY.encode()) + body)
        if n == 0:
            seeds.append(b"\3" + head + _chunk(b"") + body)
    return seeds


def main() -> None:
    """Rewrite the seed corpora named on the command line, else all (``sealed`` only by name).

    ``sealed`` is rewritten when named, given ``--sealed``, or missing.
    """
    names = [a for a in sys.argv[1:] if not a.startswith("-")]
    makers = {
        "archive": archive_seeds,
        "metadata": metadata_seeds,
        "http": http_seeds,
        "delta": delta_seeds,
        "capgo_list": capgo_list_seeds,
    }
    unknown = sorted(set(names) - {"sealed", *makers})
    if unknown:
        sys.exit(
            f"make_corpus: no target {', '.join(unknown)}; "
            f"expected some of sealed, {', '.join(makers)}"
        )
    if "sealed" in names or "--sealed" in sys.argv[1:] or not (CORPUS / "sealed").is_dir():
        _write("sealed", sealed_seeds())
    for name, make in makers.items():
        if not names or name in names:
            _write(name, make())


if __name__ == "__main__":
    main()
    sys.exit(0)
