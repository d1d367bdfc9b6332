"""The Capgo per-file list and bodies (formats/capgo_files): what a device would get from them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import brotli  # type: ignore[import-untyped]
import pytest

from otaseal import crypto
from otaseal.errors import DecryptionError, HashMismatchError, MalformedMetadataError
from otaseal.formats import capgo_files
from otaseal.formats.capgo import recover_checksum, session_key_of

APP = "com.example.app"
BIG = b"const answer = 42;\n" * 2000  # compresses well, over 8 KiB
FILES = [
    ("assets/app.js", BIG),
    ("assets/empty.txt", b""),
    ("assets/pre.js.br", b"not really brotli"),
    ("index.html", b"<!doctype html><title>t</title>"),
    ("assets/small.css", b"body { margin: 0; }\n" * 40),  # 800 bytes that compress well
]


@pytest.fixture(scope="module")
def key() -> crypto.CapgoPrivateKey:
    return crypto.generate_capgo_key()


def _open(body: bytes, aes_key: bytes, iv: bytes, brotli_name: bool) -> bytes:
    decryptor = crypto.CbcDecryptor(aes_key, iv)
    plain = decryptor.update(body) + decryptor.finalize()
    if brotli_name:
        return b"" if plain == capgo_files.EMPTY_BROTLI else brotli.decompress(plain)
    return plain


def test_every_file_decodes_to_itself_under_the_app_content_key(
    key: crypto.CapgoPrivateKey,
) -> None:
    built = capgo_files.build(FILES, key, APP)
    listed = capgo_files.parse_list(built.list_object, count=len(FILES))
    aes_key, iv = key.content_key(APP)
    assert [f.path for f in listed.files] == [p for p, _ in FILES]
    for entry, (_, data) in zip(listed.files, FILES, strict=True):
        body = built.bodies[entry.body_sha256]
        assert len(body) == entry.length
        assert _open(body, aes_key, iv, entry.is_brotli) == data
        assert recover_checksum(entry.file_hash, key.public) == hashlib.sha256(data).hexdigest()
    names = {f.path: f.file_name for f in listed.files}
    assert names == {
        "assets/app.js": "assets/app.js.br",  # 38 KB of text: Brotli pays
        "assets/empty.txt": "assets/empty.txt.br",  # the empty Brotli stream, never an empty body
        "assets/pre.js.br": "assets/pre.js.br.br",  # else the plugin would strip its .br
        "assets/small.css": "assets/small.css.br",  # small, but Brotli saves AES blocks
        "index.html": "index.html",  # Brotli would not save an AES block: as is
    }
    assert built.pointer.count == len(FILES)
    assert built.pointer.sha256 == hashlib.sha256(built.list_object).hexdigest()


def test_open_body_is_what_the_plugin_gets_and_refuses_a_changed_body(
    key: crypto.CapgoPrivateKey,
) -> None:
    built = capgo_files.build(FILES, key, APP)
    listed = capgo_files.parse_list(built.list_object, count=len(FILES))
    session_key = session_key_of(key, *key.content_key(APP))
    for entry, (_, data) in zip(listed.files, FILES, strict=True):
        body = built.bodies[entry.body_sha256]
        opened = capgo_files.open_body(
            entry.file_name,
            body,
            file_hash=entry.file_hash,
            session_key=session_key,
            public_key=key.public,
        )
        assert opened == data
    app_js = listed.files[0]
    tampered = bytearray(built.bodies[app_js.body_sha256])
    tampered[-17] ^= 1  # the last block but one: the padding still checks, the bytes do not
    with pytest.raises((HashMismatchError, DecryptionError)):
        capgo_files.open_body(
            app_js.file_name,
            bytes(tampered),
            file_hash=app_js.file_hash,
            session_key=session_key,
            public_key=key.public,
        )
    index = next(f for f in listed.files if f.path == "index.html")
    with pytest.raises(HashMismatchError, match="the signed file_hash"):
        capgo_files.open_body(
            index.file_name,
            built.bodies[index.body_sha256],
            file_hash=app_js.file_hash,  # another file's signed hash
            session_key=session_key,
            public_key=key.public,
        )


def test_unchanged_files_make_the_same_objects_in_the_next_release(
    key: crypto.CapgoPrivateKey,
) -> None:
    first = capgo_files.build(FILES, key, APP)
    second = capgo_files.build([*FILES[:3], ("index.html", b"<!doctype html>v2")], key, APP)
    assert len(set(second.bodies) - set(first.bodies)) == 1
    other_app = capgo_files.build(FILES, key, "com.example.other")
    assert not set(other_app.bodies) & set(first.bodies)


def test_the_content_key_is_the_session_key_of_the_zip(key: crypto.CapgoPrivateKey) -> None:
    assert key.content_key(APP) == key.content_key(APP)
    assert key.content_key(APP) != crypto.generate_capgo_key().content_key(APP)


def test_a_list_with_two_names_for_one_target_is_refused(key: crypto.CapgoPrivateKey) -> None:
    built = capgo_files.build([("a.js", BIG), ("a.js.br", b"x")], key, APP)
    listed = capgo_files.parse_list(built.list_object, count=2)
    clash = capgo_files.FileList((listed.files[0], listed.files[0])).to_json()
    with pytest.raises(MalformedMetadataError, match="two entries write"):
        capgo_files.parse_list(clash, count=2)
    with pytest.raises(MalformedMetadataError, match="3 files"):
        capgo_files.parse_list(built.list_object, count=3)


@pytest.mark.parametrize("name", ["../x", "/abs", "a\\b", "a//b", "./a", "a/\x00"])
def test_a_list_with_an_unsafe_path_is_refused(key: crypto.CapgoPrivateKey, name: str) -> None:
    built = capgo_files.build([("ok", b"1")], key, APP)
    bad = built.list_object.replace(b'"file_name":"ok"', f'"file_name":"{name}"'.encode())
    bad = bad.replace(b"\x00", b"\\u0000")
    with pytest.raises(MalformedMetadataError, match="file_name"):
        capgo_files.parse_list(bad, count=1)


VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def test_committed_vectors_decrypt_and_recover_as_a_device_does() -> None:
    vector = json.loads((VECTORS / "capgo-files.vector.json").read_text())
    keys = json.loads((VECTORS / "keys.json").read_text())["capgo"]
    public = crypto.load_capgo_public_key(keys["public_pem"].encode())
    private = crypto.capgo_key_from_primes(int(keys["p_hex"], 16), int(keys["q_hex"], 16))
    aes_key, iv = private.content_key(vector["app"])
    assert (aes_key.hex(), iv.hex()) == (
        vector["content_key"]["aes_key"],
        vector["content_key"]["iv"],
    )
    data = (VECTORS / "capgo-files.json").read_bytes()
    pointer = vector["list"]["capgo.files"]
    assert hashlib.sha256(data).hexdigest() == pointer["sha256"]
    listed = capgo_files.parse_list(data, count=pointer["count"])
    for entry in listed.files:
        assert recover_checksum(entry.file_hash, public) == entry.sha256
    body = (VECTORS / "capgo-file.bin").read_bytes()
    plain = _open(body, aes_key, iv, brotli_name=vector["body"]["file_name"].endswith(".br"))
    assert hashlib.sha256(plain).hexdigest() == vector["body"]["plaintext_sha256"]


def test_a_brotli_stream_the_plugin_would_copy_as_a_wrapper_is_not_used() -> None:
    data = b"payload"
    lookalike = capgo_files.EMPTY_BROTLI + b"other" + b"\x03"
    assert not capgo_files._plugin_reads(lookalike, data)
    genuine = b"\x0b\x02\x80" + data + b"\x03"  # an uncompressed meta-block: copied, correct
    assert capgo_files._plugin_reads(genuine, data)


def test_files_of_an_earlier_list_are_reused_not_encoded_or_signed_again(
    key: crypto.CapgoPrivateKey,
) -> None:
    first = capgo_files.build(FILES, key, APP)
    earlier = capgo_files.parse_list(first.list_object, count=first.count)
    known = {f.sha256: f for f in earlier.files}
    changed = [*FILES[:-1], ("index.html", b"<!doctype html>v2")]
    second = capgo_files.build(changed, key, APP, known=known)
    assert len(second.bodies) == 1  # only the changed file is encoded
    fresh = capgo_files.build(changed, key, APP)
    assert second.list_object == fresh.list_object  # and the list is what a full build makes
    moved = capgo_files.build([("assets/moved.js", BIG)], key, APP, known=known)
    assert not moved.bodies  # a renamed file keeps its body
    listed = capgo_files.parse_list(moved.list_object, count=1)
    assert listed.files[0].file_name == "assets/moved.js.br"


def test_a_known_plain_body_is_not_reused_under_a_br_name(key: crypto.CapgoPrivateKey) -> None:
    first = capgo_files.build([("notes.txt", b"tiny")], key, APP)
    known = {f.sha256: f for f in capgo_files.parse_list(first.list_object, count=1).files}
    second = capgo_files.build([("notes.txt.br", b"tiny")], key, APP, known=known)
    assert len(second.bodies) == 1  # the plugin would strip .br and decode a plain body
