"""The release pairs the delta benchmark compares: (base tree, target tree) for each update.

* ``monaco``: monaco-editor's ``min/`` folder at 0.56.0 and at 0.57.0, fetched with ``npm pack``
  (the only step that needs the network; the tarballs are kept in the cache).
* ``one-line``: a generated app of hashed chunks, as a bundler writes it, where one chunk
  changes by one line. Its hashed name changes, so the entry chunk that imports it changes,
  so the entry's name changes, so ``index.html`` changes.
* ``index-only``: the same app where only ``index.html`` changes.

Everything generated comes from a fixed seed, so every machine benchmarks the same bytes. The
generator's version is part of the folder name: change the recipe, bump it.
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

GENERATOR_VERSION = 1
SEED = 20261128
MONACO_BASE = "0.56.0"
MONACO_TARGET = "0.57.0"
# otaseal and the Capgo updater both need index.html at the root; min/ has none.
MONACO_INDEX = (
    b'<!doctype html><html><head><meta charset="utf-8"><title>monaco</title></head>'
    b'<body><div id="editor"></div><script src="vs/loader.js"></script></body></html>\n'
)


class TreeUnavailableError(Exception):
    """A case's trees cannot be made here (e.g. no tarball and no network): skip it, say why."""


@dataclass(frozen=True, slots=True)
class AppShape:
    """How many chunks the generated app has and how big they are (bytes, clipped lognormal)."""

    chunks: int = 300
    min_size: int = 5_000
    max_size: int = 50_000
    entry_size: int = 30_000

    @property
    def name(self) -> str:
        return f"app-{self.chunks}x{self.min_size}-{self.max_size}-g{GENERATOR_VERSION}"


@dataclass(frozen=True, slots=True)
class Case:
    """One update to measure: the device runs ``base`` and moves to ``target``."""

    name: str
    base: Path
    target: Path
    note: str


# --- minified JavaScript ---------------------------------------------------------------------
def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_SYLLABLES = _words(
    "get set on off add remove create update render handle change value state props item list "
    "node child parent index key type name data event target option config error result "
    "callback promise resolve reject module exports default element style view model store "
    "action dispatch subscribe observer effect memo ref context provider layout size width "
    "height offset scroll position range text content editor cursor line column token theme "
    "color font language worker message buffer stream chunk route query cache fetch user"
)
_KEYWORDS = (
    "function ",
    "return ",
    "var ",
    "let ",
    "const ",
    "if",
    "else ",
    "for",
    "new ",
    "this",
    "typeof ",
    "void 0",
    "null",
    "!0",
    "!1",
    "throw ",
    "case ",
    "break;",
)
_PUNCT = ("(", ")", "{", "}", ";", ",", "=", "===", "&&", "||", "?", ":", "[", "]", "=>", "+")
_LOCALS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


def _vocabulary(rng: random.Random, size: int) -> tuple[list[str], list[float]]:
    """Identifiers with Zipf-like weights (cumulative), as property names are in real code."""
    words: set[str] = set()
    while len(words) < size:
        parts = [rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3))]
        words.add(parts[0] + "".join(p.capitalize() for p in parts[1:]))
    ordered = sorted(words)
    rng.shuffle(ordered)
    cum: list[float] = []
    total = 0.0
    for rank in range(len(ordered)):
        total += 1.0 / (rank + 1) ** 1.1
        cum.append(total)
    return ordered, cum


def _js(rng: random.Random, vocab: tuple[list[str], list[float]], size: int) -> str:
    """Minified-looking JavaScript of about ``size`` bytes, in lines of 100-1,500 characters.

    Each chunk draws its own token stream from a shared vocabulary: chunks share words, as
    real ones do, but no long runs of bytes (which would flatter any cross-file compression).
    """
    words, cum = vocab
    lines: list[str] = []
    length = 0
    while length < size:
        want = rng.randint(100, 1_500)
        props = rng.choices(words, cum_weights=cum, k=want // 4)
        pieces: list[str] = []
        got = 0
        for prop in props:
            roll = rng.random()
            if roll < 0.30:
                piece = rng.choice(_LOCALS) + rng.choice(("", "", "e", "t", "n", "r"))
            elif roll < 0.52:
                piece = "." + prop
            elif roll < 0.62:
                piece = rng.choice(_KEYWORDS)
            elif roll < 0.88:
                piece = rng.choice(_PUNCT)
            elif roll < 0.95:
                piece = f'"{prop}"'
            else:
                piece = str(rng.choice((0, 1, 2, rng.randint(0, 65_535))))
            pieces.append(piece)
            got += len(piece)
            if got >= want:
                break
        line = "".join(pieces)
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines) + "\n"


def _content_hash(data: bytes) -> str:
    """An 8-character name hash, as Vite/Rollup put in chunk names."""
    return hashlib.sha256(data).hexdigest()[:8]


def _entry(chunks: list[str], code: str) -> bytes:
    """The entry chunk: app code and a route table that imports every chunk by its hashed name."""
    routes = ",".join(f'"/{name.split("-")[0]}":()=>import("./{name}")' for name in chunks)
    head = f'import{{notifyAppReady as nR}}from"./capgo.js";const R={{{routes}}};\n'
    return (head + code + "nR();\n").encode()


def _index_html(entry: str, build: str) -> bytes:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="build" content="{build}"><title>Bench app</title>'
        f'<script type="module" crossorigin src="/assets/{entry}"></script>'
        '</head><body><div id="app"></div></body></html>\n'
    ).encode()


def _sizes(rng: random.Random, shape: AppShape) -> list[int]:
    mu = math.log(math.sqrt(shape.min_size * shape.max_size))
    sigma = math.log(shape.max_size / shape.min_size) / 4
    return [
        min(shape.max_size, max(shape.min_size, int(rng.lognormvariate(mu, sigma))))
        for _ in range(shape.chunks)
    ]


def _change_one_line(rng: random.Random, source: bytes) -> bytes:
    """A one-line fix: one line in the middle of the chunk gets a changed constant in it."""
    lines = source.split(b"\n")
    at = len(lines) // 2
    line = lines[at]
    cut = rng.randrange(len(line) // 3, 2 * len(line) // 3 + 1) if line else 0
    lines[at] = line[:cut] + b'("fixed-' + str(rng.randint(0, 999)).encode() + b'")' + line[cut:]
    return b"\n".join(lines)


def _write_app(dest: Path, files: dict[str, bytes]) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "assets").mkdir(parents=True)
    for rel, data in files.items():
        (tmp / rel).write_bytes(data)
    tmp.rename(dest)


_CAPGO_JS = (
    b"export function notifyAppReady(){return window.Capacitor?.Plugins?.CapacitorUpdater"
    b"?.notifyAppReady()}\n"
)


def _build(
    routes: list[str], sources: list[bytes], entry_code: str, build: str
) -> dict[str, bytes]:
    """The files a bundler writes for these chunk sources: hashed names all the way up."""
    names = [f"{r}-{_content_hash(s)}.js" for r, s in zip(routes, sources, strict=True)]
    entry = _entry(names, entry_code)
    entry_name = f"index-{_content_hash(entry)}.js"
    files = {f"assets/{n}": s for n, s in zip(names, sources, strict=True)}
    files[f"assets/{entry_name}"] = entry
    files["assets/capgo.js"] = _CAPGO_JS
    files["index.html"] = _index_html(entry_name, build)
    return files


def app_files(shape: AppShape) -> tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes]]:
    """(base, one-line change, index.html-only change): path -> bytes for each."""
    rng = random.Random(f"{SEED}/{shape.name}")
    vocab = _vocabulary(rng, 2_500)
    routes = [
        f"{rng.choice(_SYLLABLES)}{rng.choice(_SYLLABLES).capitalize()}{n}"
        for n in range(shape.chunks)
    ]
    sources = [_js(rng, vocab, size).encode() for size in _sizes(rng, shape)]
    entry_code = _js(rng, vocab, shape.entry_size)
    base = _build(routes, sources, entry_code, "2026.11.1")
    changed = list(sources)
    which = rng.randrange(len(changed))
    changed[which] = _change_one_line(rng, changed[which])
    one_line = _build(routes, changed, entry_code, "2026.11.1")
    index_only = _build(routes, sources, entry_code, "2026.11.2")
    return base, one_line, index_only


def app_cases(cache: Path, shape: AppShape) -> list[Case]:
    """The one-line and index-only cases on the generated app, written on first use."""
    root = cache / "trees" / shape.name
    names = ("base", "one-line", "index-only")
    if not all((root / n).is_dir() for n in names):
        print(f"generating {shape.name} ({shape.chunks} chunks) ...", flush=True)
        root.mkdir(parents=True, exist_ok=True)
        for name, files in zip(names, app_files(shape), strict=True):
            shutil.rmtree(root / name, ignore_errors=True)
            _write_app(root / name, files)
    return [
        Case(
            "one-line",
            root / "base",
            root / "one-line",
            f"{shape.chunks} hashed chunks, one changes by one line (+ entry chunk, index.html)",
        ),
        Case("index-only", root / "base", root / "index-only", "only index.html changes"),
    ]


# --- monaco ----------------------------------------------------------------------------------
def _tarball(npm_dir: Path, version: str) -> Path:
    """``monaco-editor-<version>.tgz`` in ``npm_dir``, fetched with ``npm pack`` if missing."""
    path = npm_dir / f"monaco-editor-{version}.tgz"
    if path.is_file():
        return path
    npm_dir.mkdir(parents=True, exist_ok=True)
    print(f"npm pack monaco-editor@{version} ...", flush=True)
    try:
        run = subprocess.run(
            ["npm", "pack", f"monaco-editor@{version}", "--loglevel=error"],
            cwd=npm_dir,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TreeUnavailableError(f"npm pack monaco-editor@{version} did not run: {exc}") from None
    if run.returncode != 0 or not path.is_file():
        last = (run.stderr.strip().splitlines() or ["no message"])[-1]
        raise TreeUnavailableError(
            f"npm pack monaco-editor@{version} failed ({last}); the tarball is not in {npm_dir} "
            "and the registry cannot be reached: put it there or run with the network up"
        )
    return path


def _unpack_min(tarball: Path, dest: Path) -> None:
    """``package/min/`` of the tarball into ``dest``, plus the fixed index.html."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    prefix = "package/min/"
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(prefix)]
        for member in members:
            member.name = member.name[len(prefix) :]
        tar.extractall(tmp, members=members, filter="data")
    (tmp / "index.html").write_bytes(MONACO_INDEX)
    tmp.rename(dest)


def monaco_case(cache: Path) -> Case:
    """monaco-editor ``min/`` 0.56.0 -> 0.57.0 (raises :class:`TreeUnavailableError`)."""
    trees = {}
    for version in (MONACO_BASE, MONACO_TARGET):
        dest = cache / "trees" / f"monaco-{version}-min"
        if not dest.is_dir():
            _unpack_min(_tarball(cache / "npm", version), dest)
        trees[version] = dest
    return Case(
        "monaco",
        trees[MONACO_BASE],
        trees[MONACO_TARGET],
        f"monaco-editor {MONACO_BASE} -> {MONACO_TARGET}, min/ + a fixed index.html",
    )
