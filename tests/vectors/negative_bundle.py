"""Negative vectors for bundles: the signed digest and length, the ``.cub`` reader (a manifest
that signs a hostile ``.cub``) and the zip extractor (a hostile zip in a valid seal): SPEC §10,
§13, §14.
"""

from __future__ import annotations

import unicodedata
import zlib
from typing import TYPE_CHECKING, Any

from hostile import Entry, bundle_zip, deflate, entries_of, flip, index_of, put, raw_zip, segments
from negative_world import SEGMENT, SMALL_BUILD, Case, World

from otaseal.archive import INDEX_PATH

if TYPE_CHECKING:
    from collections.abc import Iterator


def cases(w: World) -> Iterator[Case]:
    """The bundle, .cub and zip cases."""
    keys, case = w.keys, w.case

    # the bundle against the signed manifest (§10)
    yield case(
        "bundle-hash-mismatch",
        "one ciphertext byte flipped; the manifest is the honest one",
        "§10",
        "bundle",
        w.store(cub=flip(w.cub, len(w.cub) - 1)),
    )
    yield case(
        "bundle-longer-than-signed",
        "a byte appended to the stored bundle",
        "§10",
        "bundle",
        w.store(cub=w.cub + b"\0"),
    )
    yield case(
        "bundle-truncated",
        "the stored bundle lost its last byte",
        "§10",
        "bundle",
        w.store(cub=w.cub[:-1]),
    )
    other_cub = w.seal(w.zip, [keys.decryption, keys.decryption_2])[0]
    yield case(
        "bundle-swapped",
        "another valid bundle of the same app at this bundle's key",
        "§10",
        "bundle",
        w.store(cub=other_cub),
    )
    yield case(
        "plaintext-hash-mismatch",
        "the manifest's plaintext digest is another zip's",
        "§10",
        "bundle",
        w.hostile_cub(w.cub, plaintext_sha256="0" * 64),
    )
    yield case(
        "plaintext-longer-than-signed",
        "the zip is one byte longer than the signed plaintext length",
        "§10, §13",
        "bundle",
        w.hostile_cub(w.cub, plaintext_length=len(w.zip) - 1),
    )
    yield case(
        "bundle-file-count-mismatch",
        "the manifest says 3 files, the zip holds 2",
        "§10",
        "bundle",
        w.hostile_cub(w.cub, files=3),
    )
    yield case(
        "bundle-unpacked-size-over-budget",
        "the manifest's content.size is below the files' total",
        "§10, §14",
        "bundle",
        w.hostile_cub(w.cub, unpacked_size=4000),
    )

    # the .cub reader: a manifest that signs a hostile .cub (§13)
    header, segs = segments(w.cub, SEGMENT)
    assert len(segs) >= 4, "the small bundle must span several segments"

    def cub_case(name: str, attack: str, data: bytes) -> Case:
        return case(f"cub-{name}", attack, "§13", "bundle", w.hostile_cub(data))

    yield cub_case(
        "segments-reordered",
        "segments 0 and 1 swapped",
        header + segs[1] + segs[0] + b"".join(segs[2:]),
    )
    yield cub_case(
        "final-segment-dropped", "cut at the last segment boundary", header + b"".join(segs[:-1])
    )
    yield cub_case(
        "middle-segment-dropped", "segment 1 removed", header + segs[0] + b"".join(segs[2:])
    )
    yield cub_case(
        "cut-inside-segment", "cut 100 bytes into segment 1", header + segs[0] + segs[1][:100]
    )
    yield cub_case("bytes-appended", "one byte after the final segment", w.cub + b"\0")
    yield cub_case(
        "segment-tampered",
        "one byte of segment 2 flipped",
        flip(w.cub, len(header) + 2 * (SEGMENT + 16) + 7),
    )
    yield cub_case("header-salt-tampered", "one salt byte flipped", flip(w.cub, 20))
    yield cub_case("bad-magic", "the magic is a zip's", b"PK\x03\x04" + w.cub[4:])
    yield cub_case("unknown-version", "format version 2", put(w.cub, 8, ">H", 2))
    yield cub_case("zero-recipients", "recipient count 0", put(w.cub, 10, ">H", 0))
    yield cub_case(
        "seventeen-recipients",
        "recipient count 17 (at most 16)",
        put(put(w.cub, 10, ">H", 17), 12, ">I", 75 + 145 * 17),
    )
    yield cub_case(
        "header-length-mismatch", "header_length 221 for one recipient", put(w.cub, 12, ">I", 221)
    )
    yield cub_case("segment-size-too-small", "segment size 1023", put(w.cub, 16, ">I", 1023))
    yield cub_case(
        "segment-size-too-large", "segment size 1048577", put(w.cub, 16, ">I", 1 << 20 | 1)
    )
    yield cub_case(
        "segment-size-changed",
        "segment size 2048 in the header of a 1024 bundle",
        put(w.cub, 16, ">I", 2048),
    )
    yield cub_case(
        "wrong-recipient", "sealed to app-decryption-2 only", w.seal(w.zip, [keys.decryption_2])[0]
    )
    yield cub_case(
        "wrapped-key-tampered",
        "one byte of the wrapped content key flipped",
        flip(w.cub, 75 + 32 + 70),
    )
    two = w.seal(w.zip, [keys.decryption, keys.decryption_2])[0]
    dup = two[: 75 + 145] + two[75 : 75 + 32] + two[75 + 145 + 32 :]
    yield cub_case("duplicate-recipient-key-id", "both entries carry this device's key id", dup)
    yield cub_case("truncated-header", "the file ends inside the recipient entry", w.cub[:150])

    # the zip extractor: a hostile zip in a valid .cub, signed (§14)
    html, app_js = SMALL_BUILD["index.html"], SMALL_BUILD["assets/app.js"]

    def zip_case(name: str, attack: str, data: bytes, **release: Any) -> Case:
        return case(f"zip-{name}", attack, "§14", "bundle", w.hostile_zip(data, **release))

    def evil(path: str) -> bytes:
        return bundle_zip({"index.html": html, path: b"pwned\n"})

    yield zip_case("path-traversal", "an entry named ../../evil.js", evil("../../evil.js"))
    yield zip_case("absolute-path", "an entry named /tmp/evil.js", evil("/tmp/evil.js"))
    yield zip_case("drive-letter", "an entry named C:/evil.js", evil("C:/evil.js"))
    yield zip_case("backslash", "an entry named assets\\evil.js", evil("assets\\evil.js"))
    yield zip_case("dot-segment", "an entry named assets/./evil.js", evil("assets/./evil.js"))
    yield zip_case("empty-segment", "an entry named assets//evil.js", evil("assets//evil.js"))
    yield zip_case("control-character", "an entry name with U+001B", evil("assets/\x1bevil.js"))
    yield zip_case("reserved-otaseal", "an entry under .OTASEAL/", evil(".OTASEAL/evil.js"))
    nul = {"index.html": html, "evil.js": b"pwned\n"}
    yield zip_case(
        "nul-in-name",
        "a NUL inside an entry name",
        bundle_zip(
            nul, entries=[*entries_of({"index.html": html}), Entry(b"evil.js\0.png", b"pwned\n")]
        ),
    )
    dup_files = {"index.html": html, "assets/app.js": app_js}
    yield zip_case(
        "duplicate-entry",
        "assets/app.js twice",
        bundle_zip(
            dup_files, entries=[*entries_of(dup_files), Entry(b"assets/app.js", b"pwned\n")]
        ),
    )
    yield zip_case(
        "case-collision",
        "assets/app.js and assets/App.js",
        bundle_zip({**dup_files, "assets/App.js": b"pwned\n"}),
    )
    nfd = unicodedata.normalize("NFD", "café.js")
    yield zip_case(
        "normalization-collision",
        "café.js in NFC and in NFD",
        bundle_zip({"index.html": html, "café.js": b"1", nfd: b"2"}),
    )
    yield zip_case(
        "file-directory-collision",
        "a file Assets and a file assets/app.js",
        bundle_zip({**dup_files, "Assets": b"pwned\n"}),
    )
    link = Entry(b"assets/app.js", b"/etc/passwd", external=0xA1FF0000)
    yield zip_case(
        "symlink-entry",
        "assets/app.js is a symlink to /etc/passwd",
        bundle_zip(
            {**dup_files, "assets/app.js": b"/etc/passwd"},
            entries=[*entries_of({"index.html": html}), link],
        ),
    )
    directory = Entry(b"assets/app.js", b"", external=0x41ED0010)
    yield zip_case(
        "directory-entry",
        "assets/app.js is a directory entry",
        bundle_zip(
            {**dup_files, "assets/app.js": b""},
            entries=[*entries_of({"index.html": html}), directory],
        ),
    )
    yield zip_case("index-missing", "no .otaseal/index.json", raw_zip(entries_of(dup_files)))
    yield zip_case(
        "index-not-first",
        "the index is the last entry",
        raw_zip([*entries_of(dup_files), Entry(INDEX_PATH.encode(), index_of(dup_files))]),
    )
    yield zip_case(
        "data-before-zip",
        "16 bytes before the first local header",
        bundle_zip(dup_files, prefix=b"\0" * 16),
    )
    yield zip_case(
        "file-not-in-index",
        "an extra entry the index does not list",
        bundle_zip({**dup_files, "extra.js": b"pwned\n"}, listed=dup_files),
    )
    yield zip_case(
        "indexed-file-missing",
        "the index lists a file the zip lacks",
        bundle_zip(dup_files, listed={**dup_files, "extra.js": b"x"}),
        files=3,
    )
    yield zip_case(
        "file-hash-mismatch",
        "assets/app.js differs from its index digest",
        bundle_zip(
            dup_files,
            entries=[
                *entries_of({"index.html": html}),
                Entry(b"assets/app.js", bytes(len(app_js))),
            ],
        ),
    )
    bomb = bytes(8 << 20)
    yield zip_case(
        "deflate-bomb",
        "assets/app.js inflates to 8 MiB; index and headers say 4000",
        bundle_zip(
            dup_files,
            entries=[
                *entries_of({"index.html": html}),
                Entry(b"assets/app.js", bomb, size=len(app_js), crc=zlib.crc32(app_js)),
            ],
        ),
    )
    yield zip_case(
        "crc-mismatch",
        "assets/app.js has a wrong CRC-32",
        bundle_zip(
            dup_files,
            entries=[
                *entries_of({"index.html": html}),
                Entry(b"assets/app.js", app_js, crc=zlib.crc32(app_js) ^ 1),
            ],
        ),
    )
    yield zip_case(
        "encrypted-flag",
        "assets/app.js has the encryption flag",
        bundle_zip(
            dup_files,
            entries=[
                *entries_of({"index.html": html}),
                Entry(b"assets/app.js", app_js, flags=0x0801),
            ],
        ),
    )
    yield zip_case(
        "unsupported-method",
        "assets/app.js uses method 12 (bzip2)",
        bundle_zip(
            dup_files,
            entries=[
                *entries_of({"index.html": html}),
                Entry(b"assets/app.js", app_js, method=12, raw=app_js),
            ],
        ),
    )
    yield zip_case(
        "local-name-differs",
        "the local header names assets/APP.js",
        bundle_zip(
            dup_files,
            entries=[
                *entries_of({"index.html": html}),
                Entry(b"assets/app.js", app_js, local_name=b"assets/APP.js"),
            ],
        ),
    )
    index = index_of(dup_files)
    yield zip_case(
        "index-duplicate-key",
        'the index has "version" twice',
        bundle_zip(dup_files, index=index[:-1] + b',"version":1}'),
    )
    yield zip_case(
        "index-bom",
        "the index starts with a UTF-8 byte-order mark",
        bundle_zip(dup_files, index=b"\xef\xbb\xbf" + index),
    )
    deep = b'{"x":' * 40 + b"0" + b"}" * 40
    yield zip_case(
        "index-too-deep",
        "an unknown member of the index nested 41 levels deep (at most 32)",
        bundle_zip(dup_files, index=index[:-1] + b',"nested":' + deep + b"}"),
    )
    big = str(2**53).encode()
    assert index.count(b'"size":4000') == 1
    yield zip_case(
        "index-size-above-2-53",
        "a file's indexed size is 2^53 (at most 2^53 - 1)",
        bundle_zip(dup_files, index=index.replace(b'"size":4000', b'"size":' + big)),
        unpacked_size=2**53 - 1,
    )
    yield zip_case(
        "index-version-2",
        "the index's version is 2",
        bundle_zip(dup_files, index=index.replace(b'"version":1', b'"version":2')),
    )
    yield zip_case(
        "deflate-cut-short",
        "assets/app.js's deflate stream ends early",
        bundle_zip(
            dup_files,
            entries=[
                *entries_of({"index.html": html}),
                Entry(b"assets/app.js", app_js, raw=deflate(app_js)[:-40]),
            ],
        ),
    )
