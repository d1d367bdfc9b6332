"""The one JSON reader for what a device reads: envelopes, signed payloads, the index, its state.

Python's ``json`` accepts what an SDK in another language may read differently or not at all:
duplicate keys (JavaScript keeps the last one), a byte-order mark, unpaired surrogates, integers a
JavaScript number cannot hold, and nesting deep enough to end in ``RecursionError``. Every
document a device reads goes through :func:`loads`, so the rules of SPEC §1 hold in one place
and every failure is a :class:`JsonError` that the caller turns into its own error family.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

#: Deepest nesting of arrays and objects a document may have (the top level counts as 1).
MAX_DEPTH = 32
#: Largest integer a reader accepts: JavaScript's ``Number.MAX_SAFE_INTEGER``.
MAX_SAFE_INTEGER = 2**53 - 1

_BOM = b"\xef\xbb\xbf"
# A string token, or an unterminated one to the end; possessive, so the scan stays linear.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONGEST_EXACT_LITERAL = 20  # digits (and sign) beyond which an integer is read as a double


class JsonError(ValueError):
    """A document that breaks SPEC §1's JSON rules; ``detail`` says which rule, for people."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def loads(data: bytes) -> object:
    """Parse UTF-8 JSON by the spec's rules; raise :class:`JsonError` for anything else."""
    if data.startswith(_BOM):
        raise JsonError("it starts with a byte-order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonError("it is not UTF-8") from None
    check_depth(data)
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except JsonError:
        raise
    except (ValueError, RecursionError):  # RecursionError: unreachable after check_depth
        raise JsonError("it is not JSON") from None
    if _SURROGATE_ESCAPE.search(text):
        _check_strings(doc)
    return doc


def check_depth(data: bytes) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` without recursing, in linear time.

    Strings are removed first (brackets inside them do not count); then each pass deletes every
    empty ``[]`` or ``{}``, which lowers the depth of balanced brackets by exactly one.
    """
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return
        brackets, removed = _EMPTY_PAIR.subn(b"", brackets)
        if not removed:
            raise JsonError("it is not JSON (its brackets do not balance)")
    if brackets:
        if _EMPTY_PAIR.search(brackets):
            raise JsonError(f"it nests arrays and objects deeper than {MAX_DEPTH} levels")
        raise JsonError("it is not JSON (its brackets do not balance)")


def integer(value: object) -> int | None:
    """``value`` as a spec integer (a whole number in 0..2^53−1), else None.

    The value is what a JavaScript ``JSON.parse`` sees, so ``7.0`` is 7 and ``-0`` is 0, while
    ``true``, ``"7"``, ``7.5``, ``-1`` and ``2**53`` are not integers.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_SAFE_INTEGER else None
    if isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_SAFE_INTEGER:
        return int(value)
    return None


def decode_base64(text: object) -> bytes | None:
    """Strict standard base64 with padding (RFC 4648 §4), or None for anything else."""
    if not isinstance(text, str) or not text.isascii():
        return None
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonError(f"the key {key[:40]!r} appears twice in one object")
            seen.add(key)
    return doc


def _reject_constant(name: str) -> object:
    raise JsonError(f"{name} is not a JSON number")


def _parse_int(literal: str) -> int | float:
    # Beyond 20 characters a literal is far above 2**53: read it as a double (as JavaScript
    # does) instead of running into Python's int conversion limit.
    return int(literal) if len(literal) <= _LONGEST_EXACT_LITERAL else float(literal)


def _check_strings(doc: object) -> None:
    """Refuse escaped unpaired surrogates: such a string has no UTF-8 form (depth is bounded)."""
    items: list[object] = [doc]
    while items:
        item = items.pop()
        texts: list[object] = []
        if isinstance(item, dict):
            texts.extend(item)
            items.extend(item.values())
        elif isinstance(item, list):
            items.extend(item)
        else:
            texts.append(item)
        for text in texts:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise JsonError(
                        "a string holds an unpaired surrogate (\\ud800–\\udfff)"
                    ) from None
