"""Fuzz target: Capgo manifest mode's readers (SPEC §17.1) on attacker-chosen bytes.

``serve`` reads a release's list object from the store and checks its digest against the
signed ``capgo.files`` first, so a malformed list only reaches ``parse_list`` when the publisher's
key signed it; this target assumes the worst. ``open_body`` opens one manifest entry's body as
the plugin does (session key, AES-128-CBC, ``.br``, the signed ``file_hash``), here with the
vectors' TEST Capgo key and bodies the store or a proxy may have replaced.

Input: a mode byte. Mode even: one byte of signed ``count``, then the list object's bytes to
``parse_list``. Mode odd: ``file_name``, ``file_hash`` and ``session_key`` (each a two-byte
length and UTF-8, undecodable bytes replaced), then the body to ``open_body``; bit 1 of the mode
takes the session key of the app's content key instead of the input's, so mutated bodies reach
decryption, Brotli and the hash check. The seeds are the vectors' list object and bodies made by
``capgo_files.build``.

Besides the error contract it checks that an accepted list has ``count`` entries writing distinct
paths with whole-block body lengths, and that an opened body has the SHA-256 its signed
``file_hash`` carries.
"""

from __future__ import annotations

import hashlib
import sys

import _harness

sys.path.insert(0, str(_harness.VECTORS))  # the vectors' TEST keys
from vector_keys import CAPGO_P, CAPGO_Q

with _harness.instrumented(fuzzing=__name__ == "__main__"):
    from otaseal.crypto import capgo_key_from_primes
    from otaseal.formats import capgo_files
    from otaseal.formats.capgo import recover_checksum, session_key_of

APP = "com.example.app"
KEY = capgo_key_from_primes(CAPGO_P, CAPGO_Q)  # TEST key, published in tests/vectors
PUBLIC = KEY.public
AES_KEY, IV = KEY.content_key(APP)
SESSION_KEY = session_key_of(KEY, AES_KEY, IV)
_AES_BLOCK = 16


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def target(data: bytes) -> None:
    """Parse a list object or open a body, by the mode byte; check what was accepted."""
    src = _harness.Input(data)
    mode = src.int(1)
    if mode % 2 == 0:
        count = src.int(1)
        listed = capgo_files.parse_list(src.rest(), count=count)
        paths = {entry.path for entry in listed.files}
        if len(listed.files) != count or len(paths) != count:
            raise AssertionError(f"{len(listed.files)} entries, {len(paths)} paths, not {count}")
        if any(entry.length <= 0 or entry.length % _AES_BLOCK for entry in listed.files):
            raise AssertionError("an accepted list has a body that is not whole AES blocks")
        return
    file_name, file_hash, session_key = _text(src.chunk()), _text(src.chunk()), _text(src.chunk())
    if mode & 2:
        session_key = SESSION_KEY
    plain = capgo_files.open_body(
        file_name, src.rest(), file_hash=file_hash, session_key=session_key, public_key=PUBLIC
    )
    if hashlib.sha256(plain).hexdigest() != recover_checksum(file_hash, PUBLIC):
        raise AssertionError("an opened body does not have its signed SHA-256")


if __name__ == "__main__":
    _harness.fuzz(target)
    sys.exit(0)
