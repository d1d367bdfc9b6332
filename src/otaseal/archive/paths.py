"""Entry names: one set of rules binds pack, extract and the delta format (SPEC §14).

A name that one filesystem would read differently from another (a drive letter, a backslash,
two names that fold to one on a case-insensitive device) would let a bundle install other bytes
than the ones its index lists, so every reader and writer asks the same functions here.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from otaseal.archive.zipfmt import MAX_NAME

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

_SHOWN = 10  # paths listed in one message

_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_FOLDED_RESERVED = ".otaseal"


def _not_utf8(path: str) -> bool:
    try:
        path.encode()
    except UnicodeEncodeError:
        return True
    return False


_NAME_RULES: tuple[tuple[Callable[[str], object], str], ...] = (
    (lambda p: not p, "is empty"),
    (lambda p: "\x00" in p, "contains a NUL byte"),
    (lambda p: "\\" in p, "contains a backslash"),
    (_CONTROL.search, "contains a control character"),
    (lambda p: p.startswith("/"), "is an absolute path"),
    (_DRIVE.match, "starts with a drive letter"),
    (lambda p: "" in p.split("/"), "has an empty segment"),
    (lambda p: not {".", ".."}.isdisjoint(p.split("/")), "has a '.' or '..' segment"),
    (_not_utf8, "is not valid UTF-8"),
    (lambda p: len(p.encode()) > MAX_NAME, "is longer than 65535 bytes"),
)


# Names that pass every rule above, matched at once: segments of characters that are neither
# "/", "\\", ":", a control character nor a lone surrogate, none of them "." or "..". Every
# name is checked on pack and twice on extract; the rules run only for what this does not match.
_PLAIN_NAME = re.compile(
    r"(?:(?!\.\.?/)[^/\\:\x00-\x1f\x7f\ud800-\udfff]+/)*"
    r"(?!\.\.?\Z)[^/\\:\x00-\x1f\x7f\ud800-\udfff]+\Z"
)
_PLAIN_MAX = MAX_NAME // 4  # characters; UTF-8 takes at most 4 bytes for each


def name_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file in a bundle, or None; rules apply in order."""
    if len(path) <= _PLAIN_MAX and _PLAIN_NAME.match(path):
        return None
    return next((problem for test, problem in _NAME_RULES if test(path)), None)


def fold(path: str) -> str:
    """Canonical caseless form: how case- and normalization-insensitive filesystems compare."""
    if path.isascii():  # NFD leaves ASCII alone and casefold() is lower() there: 10x faster
        return path.lower()
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", path).casefold())


def is_reserved(path: str) -> bool:
    """Whether ``path`` is under .otaseal/ in any case or form: the bundle keeps its index there."""
    return fold(path.split("/", 1)[0]) == _FOLDED_RESERVED


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file of a bundle (SPEC §14, reserved folder included), or None."""
    return name_problem(path) or ("is reserved" if is_reserved(path) else None)


def collision(paths: Iterable[str]) -> tuple[str, str] | None:
    """First pair of paths that would land on the same file or directory on a device, or None."""
    files: dict[str, str] = {}
    dirs: dict[str, str] = {}
    for path in paths:
        key = fold(path)
        other = files.get(key, dirs.get(key))
        if other is not None:
            return other, path
        parent = ""
        for segment in key.split("/")[:-1]:
            parent = f"{parent}/{segment}" if parent else segment
            if parent in files:
                return files[parent], path
            dirs.setdefault(parent, path)
        files[key] = path
    return None


def listing(paths: Sequence[str]) -> str:
    """The first paths for a message, and how many more: an error stays readable for 10 000."""
    shown = ", ".join(paths[:_SHOWN])
    more = len(paths) - _SHOWN
    return f"{shown} and {more} more" if more > 0 else shown
