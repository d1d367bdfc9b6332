"""Build hygiene: what pack refuses (symlinks, bad names, collisions, secrets) and warns about.

Anyone who has the app can read every file of a bundle, and a device installs exactly what the
bundle holds: a key, a symlink or a name that extracts differently must be stopped before the
first byte is written, with the paths named and the fix said.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from otaseal.archive.paths import collision, is_reserved, listing, name_problem
from otaseal.archive.zipfmt import MAX_ENTRIES
from otaseal.errors import HygieneError, InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

_SNIFF_SIZE = 4096

_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_SECRET_NAMES = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_ed25519*",
    "*.jks",
    "*.keystore",
    ".npmrc",
)
_SECRET_NAME = re.compile("|".join(fnmatch.translate(pattern) for pattern in _SECRET_NAMES))


@dataclass(frozen=True, slots=True)
class _Hygiene:
    label: str
    expected: str
    fix: str


_HYGIENE = {
    "symlink": _Hygiene(
        "symlink(s)",
        "regular files only: a symlink can point outside the build, and devices install only "
        "the bytes inside the bundle",
        "replace each symlink with the file it points to (copy with `cp -L`) or make the build "
        "write plain files",
    ),
    "special": _Hygiene(
        "special file(s) (fifo, socket or device)",
        "regular files only",
        "remove them from the build directory",
    ),
    "reserved": _Hygiene(
        "path(s) under the reserved .otaseal/ folder",
        ".otaseal/ to be absent: the bundle keeps its own index there",
        "rename or remove the .otaseal folder in the build",
    ),
    "name": _Hygiene(
        "file name(s) that devices cannot extract safely",
        "UTF-8 names without backslashes, control characters or drive letters",
        "rename these files in the build",
    ),
    "collision": _Hygiene(
        "file names that collide on case-insensitive filesystems (iOS, macOS, some Android)",
        "paths that stay distinct when case and Unicode normalization are ignored",
        "rename one file of each pair",
    ),
    "secret": _Hygiene(
        "file(s) that look like secrets",
        "no credentials in a web bundle: anyone who has the app can read every file in it",
        "remove them from the build output and rotate any key that shipped before; if a file is "
        "a false positive, add a pattern matching its path to `allow:` in otaseal.yml or "
        "pass `--allow-file PATTERN`",
    ),
}


def scan(root: Path, allow: Sequence[str]) -> list[str]:
    """Regular files under ``root`` sorted by UTF-8 path; raise on anything that must not ship."""
    problems: dict[str, list[str]] = {kind: [] for kind in _HYGIENE}
    files = _walk(root, problems)
    files.sort(key=lambda p: p.encode("utf-8", "surrogateescape"))
    for path in files:
        problem = name_problem(path)
        if problem is not None:
            problems["name"].append(f"{path.encode('utf-8', 'surrogateescape')!r} ({problem})")
        elif is_reserved(path):
            problems["reserved"].append(path)
        elif _is_secret_name(path) and not _allowed(path, allow):
            problems["secret"].append(f"{path} (its name)")
    if not problems["name"]:
        clash = collision(files)
        if clash is not None:
            problems["collision"].append(f"{clash[0]} and {clash[1]}")
    _raise_hygiene(root, problems)
    _check_shape(root, files)
    return files


def _walk(root: Path, problems: dict[str, list[str]]) -> list[str]:
    files: list[str] = []
    stack = [("", root)]
    try:
        while stack:
            prefix, folder = stack.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    path = prefix + entry.name
                    if entry.is_symlink():
                        problems["symlink"].append(path)
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append((path + "/", Path(entry.path)))
                    elif entry.is_file(follow_symlinks=False):
                        files.append(path)
                    else:
                        problems["special"].append(path)
    except OSError as exc:
        raise InputError(
            f"cannot list {exc.filename}: {exc.strerror}",
            expected="a build directory readable by the user running otaseal",
            fix="fix the permissions of the build output",
        ) from None
    return files


def _raise_hygiene(root: Path, problems: dict[str, list[str]]) -> None:
    for kind, paths in problems.items():
        if paths:
            rule = _HYGIENE[kind]
            paths.sort()
            raise HygieneError(
                f"the build directory {root} contains {len(paths)} {rule.label}: " + listing(paths),
                expected=rule.expected,
                fix=rule.fix,
            )


def _check_shape(root: Path, files: list[str]) -> None:
    if not files:
        raise InputError(
            f"the build directory {root} contains no files",
            expected="the output of your web build",
            fix="run the web build before packing, and check the directory it writes to",
        )
    if "index.html" not in files:
        raise HygieneError(
            f"the build directory {root} has no index.html at its root",
            expected="index.html at the top of the build: the app loads it first",
            fix="point otaseal at the folder that holds index.html (for example dist/ or www/)",
        )
    if len(files) >= MAX_ENTRIES:
        raise InputError(
            f"the build directory {root} holds {len(files)} files",
            expected=f"fewer than {MAX_ENTRIES} files in one bundle",
            fix="leave out files the app does not load (source maps, unused assets)",
        )


def _is_secret_name(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return _SECRET_NAME.match(name) is not None


def _allowed(path: str, allow: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in allow)


def has_private_key(head: bytes) -> bool:
    """Whether the first 4 KiB of a file hold a PEM private key header."""
    return _PRIVATE_KEY.search(head, 0, _SNIFF_SIZE) is not None


def check_contents(
    root: Path, paths: Sequence[str], private_keys: Sequence[bool], allow: Sequence[str]
) -> None:
    """Refuse the files whose contents hold a private key, unless ``allow`` lets them ship."""
    secrets = [
        f"{p} (contains a PEM private key)"
        for p, has_key in zip(paths, private_keys, strict=True)
        if has_key and not _allowed(p, allow)
    ]
    _raise_hygiene(root, {"secret": secrets})


def pack_warnings(paths: Sequence[str], allow: Sequence[str]) -> tuple[str, ...]:
    """What ships but should make the user think: source maps that reveal the source."""
    maps = [p for p in paths if p.lower().endswith(".map") and not _allowed(p, allow)]
    if not maps:
        return ()
    return (
        (
            f"{len(maps)} source map(s) will ship and reveal your original source code: "
            f"{listing(maps)}. Turn source maps off for production builds, or add them to "
            "`allow` to silence this warning."
        ),
    )
