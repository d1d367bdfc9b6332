"""The sealed-delta format (SPEC §19.2): making a patch, and every refusal of its reader."""

from __future__ import annotations

import hashlib
import io
import json
import struct

import pytest
import zstandard

from otaseal.archive import FileEntry, Index, pack
from otaseal.errors import ArchiveError, DeltaError, InputError
from otaseal.formats import delta

BASE, TARGET = "b" * 64, "c" * 64
CODE = "".join(f"export const v{i} = {i * 7};\n" for i in range(3000)).encode()
OLD = {
    "index.html": b"<!doctype html><p>one</p>\n",
    "assets/index-Ab12Cd34.js": CODE,
    "assets/lib.js": b"lib\n" * 100,
    "img/logo.png": hashlib.shake_256(b"logo").digest(2000),
}
NEW = {
    "index.html": b"<!doctype html><p>two</p>\n",
    "assets/index-Zz98Yy76.js": CODE.replace(b"v1500 = ", b"v1500 = 1 + "),
    "assets/lib.js": OLD["assets/lib.js"],
    "images/logo.png": OLD["img/logo.png"],
    "new.txt": b"new\n",
}


def _write(root, files):
    for name, data in files.items():
        path = root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _index_json(tmp_path, files) -> bytes:
    folder = _write(tmp_path / "packed", files)
    return pack(folder, io.BytesIO(), workers=1).index.to_json()


@pytest.fixture
def base_index(tmp_path) -> bytes:
    return _index_json(tmp_path / "base-pack", OLD)


@pytest.fixture
def made(tmp_path, base_index):
    index_json = _index_json(tmp_path, NEW)
    patch = delta.make_patch(
        _write(tmp_path / "old", OLD),
        _write(tmp_path / "new", NEW),
        index_json,
        base_bundle=BASE,
        target_bundle=TARGET,
        base_index=base_index,
    )
    return patch, index_json, base_index


def _read(data: bytes, base_index: bytes | None = None) -> delta.PatchHeader:
    return delta.read_header(io.BytesIO(data), len(data), base_index=base_index)


def _check(header, index_json, **changes):
    index = Index.from_json(index_json)
    values = {
        "index_digest": hashlib.sha256(index_json).hexdigest(),
        "base": BASE,
        "target": TARGET,
        "files": len(index.files),
        "size": index.total_size,
    } | changes
    return delta.check_header(header, **values)


# --- making ---------------------------------------------------------------------------------------
def test_make_patch_lists_only_what_it_does_not_copy_from_the_same_path(made):
    patch, index_json, base_index = made
    header = _read(patch.plaintext, base_index)
    by_path = {op.path: op for op in header.ops}

    assert "assets/lib.js" not in by_path  # unchanged at its path: implicit copy
    assert by_path["images/logo.png"] == delta.Op("images/logo.png", "copy", "img/logo.png")
    assert by_path["assets/index-Zz98Yy76.js"].source == "assets/index-Ab12Cd34.js"
    assert by_path["index.html"].source == "index.html"
    assert by_path["new.txt"].op == "zstd"
    assert by_path["new.txt"].source is None
    assert [op.path for op in header.ops] == [
        f.path for f in Index.from_json(index_json).files if f.path in by_path
    ]
    assert patch.changed == 3  # the renamed logo is a copy: unchanged content
    assert len(patch.ops) == 5
    assert patch.length == len(patch.plaintext)
    assert patch.sha256 == hashlib.sha256(patch.plaintext).hexdigest()
    assert header.index_json == index_json
    assert (header.base, header.target) == (BASE, TARGET)
    assert by_path["assets/index-Zz98Yy76.js"].length < 200  # the dictionary did the work


def test_the_head_is_small_because_the_base_index_is_its_dictionary(made):
    patch, index_json, _ = made
    head = patch.length - sum(op.length for op in patch.ops) - 76
    assert head < len(index_json) // 2


def test_every_file_gets_a_job_unlisted_ones_copy_their_own_path(made):
    patch, index_json, base_index = made
    header = _read(patch.plaintext, base_index)
    index = _check(header, index_json)
    jobs = header.jobs(index)
    assert [entry.path for entry, _, _ in jobs] == [f.path for f in index.files]
    lib = next(op for entry, op, _ in jobs if entry.path == "assets/lib.js")
    assert lib == delta.Op("assets/lib.js", "copy", "assets/lib.js")
    assert lib.implicit


def test_make_patch_refuses_a_build_that_changed_since_it_was_packed(tmp_path):
    index_json = _index_json(tmp_path, NEW)
    target = _write(tmp_path / "new", {**NEW, "new.txt": b"changed after packing\n"})
    with pytest.raises(InputError, match="differs from the bundle's index"):
        delta.make_patch(
            _write(tmp_path / "old", OLD),
            target,
            index_json,
            base_bundle=BASE,
            target_bundle=TARGET,
            base_index=b"{}",
        )


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("assets/index-DiwrgTda.js", "assets/index\0.js"),
        ("assets/app.3f9a1c2b.js", "assets/app\0.js"),
        ("assets/vendor-react-Ab12Cd34.js", "assets/vendor\0.js"),
        ("assets/my-component-page.js", "assets/my-component-page.js"),
        ("index.html", "/index.html"),
        ("LICENSE", "/LICENSE."),
    ],
)
def test_name_key_strips_a_bundlers_hash_part(path, key):
    assert delta._name_key(path) == key


def test_similar_names_pick_the_longest_common_prefix_then_the_closest_size():
    base = {
        p: delta.BaseFile(p, size, "0" * 64)
        for p, size in (
            ("assets/vendor-lodash-Ab12Cd34.js", 100),
            ("assets/vendor-react-Qq11Ww22.js", 5000),
            ("assets/vendor-react-dom-Ee33Rr44.js", 9000),
        )
    }
    entry = FileEntry("assets/vendor-react-Zz98Yy76.js", 5100, "1" * 64)
    assert delta.plan_ops([entry], base) == [
        delta.Op(entry.path, "zstd", "assets/vendor-react-Qq11Ww22.js")
    ]


def test_a_dictionary_that_would_not_fit_one_window_is_not_used(monkeypatch):
    monkeypatch.setattr(delta, "MAX_WINDOW", 1000)
    base = {"a.js": delta.BaseFile("a.js", 600, "0" * 64)}
    assert delta.plan_ops([FileEntry("a.js", 500, "1" * 64)], base) == [
        delta.Op("a.js", "zstd", None)
    ]
    assert delta.plan_ops([FileEntry("a.js", 400, "1" * 64)], base) == [
        delta.Op("a.js", "zstd", "a.js")
    ]


def test_window_covers_dictionary_and_file_within_the_cap():
    assert delta.compression_parameters(0, 10).window_log == 17
    assert delta.compression_parameters(3 << 20, 1 << 20).window_log == 23
    assert delta.compression_parameters(1 << 30, 1 << 30).window_log == 27


def test_level_19_while_small_and_a_fast_level_for_large_inputs():
    assert delta.level_for(1 << 20, 1 << 20) == delta.LEVEL == 19
    assert delta.level_for(delta.LEVEL_MAX_INPUT, 1) == delta.LARGE_LEVEL < 19
    assert delta.compression_parameters(8 << 20, 8 << 20).strategy < (
        delta.compression_parameters(1 << 20, 1 << 20).strategy
    )


def test_extract_release_returns_the_index_and_its_exact_bytes(tmp_path):
    folder = _write(tmp_path / "build", NEW)
    zip_path = tmp_path / "bundle.zip"
    with zip_path.open("wb") as out:
        packed = pack(folder, out, workers=1)
    index, raw = delta.extract_release(zip_path, tmp_path / "x", max_total_size=1 << 20)
    assert index == packed.index
    assert raw == packed.index.to_json()
    assert (tmp_path / "x" / "new.txt").read_bytes() == NEW["new.txt"]


# --- reading: the framing (D4) --------------------------------------------------------------------
def _raw_head(index_json: bytes, ops: object) -> bytes:
    ops_json = ops if isinstance(ops, bytes) else json.dumps(ops).encode()
    return struct.pack(">I", len(index_json)) + index_json + ops_json


def _frame(
    index_json: bytes,
    ops: object,
    payload: bytes = b"",
    *,
    head: bytes | None = None,
    dictionary: bytes | None = None,
) -> bytes:
    """A patch made by hand: the reader is tested apart from the writer."""
    if head is None:
        raw = _raw_head(index_json, ops)
        zdict = (
            zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            if dictionary
            else None
        )
        head = zstandard.ZstdCompressor(dict_data=zdict).compress(raw)
    return (
        delta.MAGIC
        + bytes.fromhex(BASE)
        + bytes.fromhex(TARGET)
        + struct.pack(">I", len(head))
        + head
        + payload
    )


def _ops(*files: object, **top: object) -> dict[str, object]:
    return {"version": 2, "files": list(files)} | top


def _copy(source: str = "a", path: str = "b") -> dict[str, object]:
    return {"path": path, "op": "copy", "from": source}


def _zstd(length: object = 1, source: str | None = None, path: str = "b") -> dict[str, object]:
    return {"path": path, "op": "zstd", "from": source, "length": length}


_PREFIX = delta.MAGIC + bytes.fromhex(BASE) + bytes.fromhex(TARGET)
_BOMB = zstandard.ZstdCompressor().compress(b"\0" * (delta.MAX_HEAD_SIZE + 10))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x89OTD\r\n\x1a\x0b" + b"\0" * 80, "does not start with the delta magic"),
        (delta.MAGIC[:5], "ends inside its magic"),
        (delta.MAGIC + b"\0" * 20, "ends inside its base digest"),
        (delta.MAGIC + b"\0" * 40, "ends inside its target digest"),
        (_PREFIX + b"\0\0", "ends inside its head length"),
        (_PREFIX + b"\xff\xff\xff\xff", "declares a head of 4294967295 bytes"),
        (_PREFIX + b"\0\0\0\x05abcde", "head does not decompress"),
        (_frame(b"", b"", head=zstandard.ZstdCompressor().compress(b"ab")), "inside its index"),
        (_frame(b"", b"", head=zstandard.ZstdCompressor().compress(b"\0\0\0\x09{}")), "index of 9"),
        (_frame(b"", b"", head=_BOMB), "head decompresses past its cap"),
        (_frame(b"{}", b'{"version": 2, "version": 2}'), "ops are not JSON of SPEC §1"),
        (_frame(b"{}", b"\xef\xbb\xbf{}"), "ops are not JSON of SPEC §1"),
        (_frame(b"{}", _ops(version=1)), "not a version 2 document"),
        (_frame(b"{}", _ops(version=True)), "not a version 2 document"),
        (_frame(b"{}", _ops(files={})), 'ops have no "files" list'),
        (_frame(b"{}", _ops([])), "op 0 is not an object"),
        (_frame(b"{}", _ops({"op": "copy", "from": "a"})), 'op 0\'s "path" is not a string'),
        (_frame(b"{}", _ops(_copy(path="../x"))), "has a '.' or '..' segment"),
        (_frame(b"{}", _ops({"path": "b", "op": "bsdiff"})), "op 0 is 'bsdiff'"),
        (_frame(b"{}", _ops({"path": "b", "op": "copy"})), 'op 0\'s "from" is not a string'),
        (_frame(b"{}", _ops(_copy("../x"))), "has a '.' or '..' segment"),
        (_frame(b"{}", _ops(_copy("/etc/passwd"))), "is an absolute path"),
        (_frame(b"{}", _ops(_copy("a\\b"))), "contains a backslash"),
        (_frame(b"{}", _ops(_copy(".otaseal/index.json"))), "is reserved"),
        (_frame(b"{}", _ops(_zstd(None))), '"length" is not a positive'),
        (_frame(b"{}", _ops(_zstd(-1))), "not a positive"),
        (_frame(b"{}", _ops(_zstd(0))), "not a positive"),
        (_frame(b"{}", _ops(_zstd(4)), b"abc"), "3 bytes of"),
        (_frame(b"{}", _ops(_zstd(2)), b"abc"), "3 bytes of"),
        (_frame(b"{}", _ops(_copy()), b"x"), "has 1 bytes of payloads"),
    ],
)
def test_reader_refuses_a_malformed_patch(data, words):
    with pytest.raises(DeltaError) as caught:
        _read(data)
    assert words in caught.value.diagnostics()
    assert "full bundle" in caught.value.diagnostics()


def test_reader_ignores_unknown_members_and_finds_each_payload():
    ops = _ops(
        {"path": "a", "op": "copy", "from": "x", "hint": 1},
        _zstd(2, path="b"),
        _zstd(3, "a", path="c"),
        extra={"x": 1},
    )
    header = _read(_frame(b"{}", ops, b"12345"))
    start = header.payload_offset
    assert header.payloads() == ((start, 0), (start, 2), (start + 2, 3))
    assert header.ops[0] == delta.Op("a", "copy", "x")


def test_the_head_is_read_with_the_stored_index_as_its_dictionary():
    stored = b'{"files": [{"path": "assets/app.js"}], "version": 1}' * 4
    data = _frame(b"{}", _ops(_copy("assets/app.js", "assets/app.js")), dictionary=stored)
    assert _read(data, stored).ops[0].source == "assets/app.js"
    with pytest.raises(DeltaError):  # with another dictionary the head is not that
        _read(data, stored[::-1])


# --- reading: against the signed release (D5, D6) -----------------------------------------------
def test_check_header_accepts_the_patch_of_the_signed_release(made):
    patch, index_json, base_index = made
    assert _check(_read(patch.plaintext, base_index), index_json) == Index.from_json(index_json)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"index_digest": "0" * 64}, "carries an index whose SHA-256"),
        ({"base": "d" * 64}, f"applies to bundle {BASE[:16]}"),
        ({"target": "d" * 64}, f"makes bundle {TARGET[:16]}"),
        ({"files": 4}, "lists 5 files"),
        ({"size": 10}, "unpacks to"),
    ],
)
def test_check_header_refuses_a_patch_for_another_release_or_base(made, changes, words):
    patch, index_json, base_index = made
    with pytest.raises(DeltaError, match=words):
        _check(_read(patch.plaintext, base_index), index_json, **changes)


def test_a_wrong_stored_index_fails_the_signed_index_digest_or_the_head(made, tmp_path):
    patch, index_json, base_index = made
    tampered = base_index.replace(b'"assets/lib.js"', b'"assets/lob.js"')
    with pytest.raises(DeltaError, match="carries an index whose SHA-256|head does not"):
        _check(_read(patch.plaintext, tampered), index_json)


def test_the_index_digest_is_checked_before_the_index_is_parsed():
    index_json = b'{"files": "no", "version": 1}'
    header = _read(_frame(index_json, _ops()))
    with pytest.raises(DeltaError, match="carries an index"):
        delta.check_header(header, index_digest="0" * 64, base=BASE, target=TARGET, files=0, size=0)
    with pytest.raises(ArchiveError, match="malformed"):
        delta.check_header(
            header,
            index_digest=hashlib.sha256(index_json).hexdigest(),
            base=BASE,
            target=TARGET,
            files=0,
            size=0,
        )


@pytest.mark.parametrize(
    ("paths", "words"),
    [
        (["new.txt", "nothing.js"], "has an op for nothing.js"),
        (["new.txt", "index.html"], "lists index.html out of order or twice"),
        (["index.html", "index.html"], "lists index.html out of order or twice"),
    ],
)
def test_check_header_wants_listed_files_of_the_index_once_in_its_order(made, paths, words):
    _, index_json, _ = made
    ops = [_copy("assets/lib.js", path) for path in paths]
    with pytest.raises(DeltaError, match=words):
        _check(_read(_frame(index_json, _ops(*ops))), index_json)


def test_a_base_file_that_looks_like_a_zstd_dictionary_is_not_used_as_one(tmp_path):
    old = {"index.html": b"\x37\xa4\x30\xec" + b"<p>one</p>\n" * 20}
    new = {"index.html": b"\x37\xa4\x30\xec" + b"<p>two</p>\n" * 20}
    index_json = _index_json(tmp_path, new)
    made = delta.make_patch(
        _write(tmp_path / "old", old),
        _write(tmp_path / "new", new),
        index_json,
        base_bundle=BASE,
        target_bundle=TARGET,
        base_index=b"",
    )
    assert _read(made.plaintext).ops[0].source is None
