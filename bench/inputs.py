"""Benchmark inputs: synthetic web builds from a fixed seed, and monaco-editor's ``min/`` build.

A synthetic build is a mix a bundler would write: minified JavaScript chunks, CSS, HTML, JSON and
SVG (text that deflates 3-6x), already-compressed images, fonts and wasm (random bytes, which do
not deflate at all), and a few large files. Text files are cut from seeded pools of generated
text, so 500 MB takes seconds to write and every byte is the same on every machine. The
generator's version is part of the folder name: change the recipe, bump it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

GENERATOR_VERSION = 1
SEED = 20261123

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
TRASH = CACHE / "trash"  # deleted only when nothing is timed (see run.discard)
NPM_DIR = CACHE / "npm"
CAPGO_VERSION = "8.68.1"
MONACO_VERSION = "0.57.0"

_POOL_SIZE = 4 << 20
_MB = 1_000_000

# kind: (extension, share of the file count, lognormal mu of the size in bytes, sigma, text pool)
_KINDS: dict[str, tuple[str, float, float, float, str | None]] = {
    "js": (".js", 0.40, math.log(9_000), 1.1, "js"),
    "css": (".css", 0.08, math.log(5_000), 1.0, "css"),
    "json": (".json", 0.10, math.log(3_000), 1.0, "json"),
    "svg": (".svg", 0.10, math.log(2_500), 0.9, "svg"),
    "html": (".html", 0.02, math.log(4_000), 0.8, "html"),
    "png": (".png", 0.14, math.log(9_000), 1.2, None),
    "webp": (".webp", 0.10, math.log(10_000), 1.1, None),
    "woff2": (".woff2", 0.06, math.log(20_000), 0.6, None),
}
# A few large files, as a share of the total bytes: vendor bundle, a video, wasm, a big image.
_LARGE: tuple[tuple[str, float, str | None], ...] = (
    ("assets/vendor/vendor-core.js", 0.06, "js"),
    ("assets/vendor/vendor-ui.js", 0.04, "js"),
    ("assets/media/intro.mp4", 0.05, None),
    ("assets/wasm/engine.wasm", 0.04, None),
    ("assets/img/hero@3x.jpg", 0.02, None),
)


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """What a synthetic build should look like."""

    name: str
    files: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class Input:
    """A directory to benchmark, with its file count and total size."""

    name: str
    path: Path
    files: int
    total_bytes: int
    note: str


SMALL = BuildSpec("web-50mb", 5_000, 50 * _MB)
LARGE = BuildSpec("web-500mb", 50_000, 500 * _MB)


# --- text pools --------------------------------------------------------------------------------
_KEYWORDS = (
    "function",
    "return",
    "var",
    "let",
    "const",
    "if",
    "else",
    "for",
    "new",
    "this",
    "typeof",
    "void 0",
    "null",
    "!0",
    "!1",
    "instanceof",
    "throw",
    "case",
    "break",
    "switch",
)
_PUNCT = ("(", ")", "{", "}", ";", ",", ".", "=", "===", "&&", "||", "?", ":", "[", "]", "=>", "+")
_SYLLABLES = (
    "get",
    "set",
    "on",
    "off",
    "add",
    "remove",
    "create",
    "update",
    "render",
    "handle",
    "change",
    "value",
    "state",
    "props",
    "item",
    "list",
    "node",
    "child",
    "parent",
    "index",
    "key",
    "type",
    "name",
    "data",
    "event",
    "target",
    "option",
    "config",
    "error",
    "result",
    "callback",
    "promise",
    "resolve",
    "reject",
    "module",
    "exports",
    "default",
    "element",
    "style",
    "class",
    "view",
    "model",
    "store",
    "action",
    "dispatch",
    "subscribe",
    "observer",
    "effect",
    "memo",
    "ref",
    "context",
    "provider",
    "consumer",
    "layout",
    "size",
    "width",
    "height",
    "offset",
    "scroll",
    "position",
    "range",
    "text",
    "content",
    "editor",
    "cursor",
    "line",
    "column",
    "token",
    "theme",
    "color",
    "font",
    "language",
    "worker",
    "message",
    "buffer",
    "stream",
    "chunk",
)


class _Zipf:
    """Words drawn with Zipf-like frequencies, as identifiers and strings are in real code."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self._cum = list(
            itertools.accumulate(1.0 / (rank + 1) ** 1.1 for rank in range(len(words)))
        )

    def pick(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self._cum, k=count)


def _vocabulary(rng: random.Random, size: int) -> _Zipf:
    words: set[str] = set()
    while len(words) < size:
        parts = rng.randint(1, 3)
        first = rng.choice(_SYLLABLES)
        rest = "".join(rng.choice(_SYLLABLES).capitalize() for _ in range(parts - 1))
        words.add(first + rest)
    ordered = sorted(words)
    rng.shuffle(ordered)
    return _Zipf(ordered)


def _js_pool(rng: random.Random, size: int) -> bytes:
    """Minified-looking JavaScript: short locals, Zipf-distributed property names, literals."""
    vocab = _vocabulary(rng, 3000)
    locals_ = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [
        a + b for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnopqrstuvwxyz0123456789"
    ]
    out: list[str] = []
    length = 0
    while length < size:
        props = iter(vocab.pick(rng, 256))
        for _ in range(64):
            roll = rng.random()
            if roll < 0.30:
                piece = rng.choice(locals_[:40] if rng.random() < 0.7 else locals_)
            elif roll < 0.52:
                piece = "." + next(props, "value")
            elif roll < 0.62:
                piece = rng.choice(_KEYWORDS) + " "
            elif roll < 0.88:
                piece = rng.choice(_PUNCT)
            elif roll < 0.95:
                piece = '"' + next(props, "x") + (f"-{rng.randint(0, 999)}" if roll < 0.92 else "")
                piece += '"'
            else:
                piece = str(rng.choice((0, 1, 2, rng.randint(0, 65535), rng.random())))[:8]
            out.append(piece)
            length += len(piece)
    return "".join(out).encode()[:size]


def _css_pool(rng: random.Random, size: int) -> bytes:
    props = (
        "display:flex",
        "display:none",
        "position:absolute",
        "margin:0",
        "padding:0 8px",
        "color:#{c}",
        "background:#{c}",
        "border:1px solid #{c}",
        "font-size:{n}px",
        "line-height:{n}px",
        "width:{n}%",
        "height:{n}px",
        "z-index:{n}",
        "opacity:.{n}",
        "transform:translate({n}px,{n}px)",
        "transition:opacity .{n}s ease",
    )
    vocab = _vocabulary(rng, 1500)
    out: list[str] = []
    length = 0
    while length < size:
        selector = ".monaco-" + "-".join(vocab.pick(rng, rng.randint(1, 3)))
        if rng.random() < 0.3:
            selector += (
                " ." + rng.choice(vocab.words) + rng.choice((":hover", ">span", "::before", ""))
            )
        decls = ";".join(
            rng.choice(props)
            .replace("{c}", f"{rng.randint(0, 0xFFFFFF):06x}")
            .replace("{n}", str(rng.randint(0, 99)))
            for _ in range(rng.randint(1, 6))
        )
        rule = selector + "{" + decls + "}"
        out.append(rule)
        length += len(rule)
    return "".join(out).encode()[:size]


def _json_pool(rng: random.Random, size: int) -> bytes:
    vocab = _vocabulary(rng, 2000)
    out: list[str] = ["{"]
    length = 1
    while length < size:
        key = ".".join(vocab.pick(rng, rng.randint(2, 4)))
        text = " ".join(vocab.pick(rng, rng.randint(2, 12))).capitalize()
        item = json.dumps(key) + ":" + json.dumps(text) + ","
        out.append(item)
        length += len(item)
    return "".join(out).encode()[:size]


def _svg_pool(rng: random.Random, size: int) -> bytes:
    out: list[str] = []
    length = 0
    while length < size:
        points = " ".join(
            f"{rng.choice('MLCQ')}{rng.uniform(0, 24):.2f} {rng.uniform(0, 24):.2f}"
            for _ in range(rng.randint(3, 14))
        )
        item = f'<path fill="#{rng.randint(0, 0xFFFFFF):06x}" d="{points}Z"/>'
        if rng.random() < 0.1:
            item = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">' + item
        out.append(item)
        length += len(item)
    return "".join(out).encode()[:size]


def _html_pool(rng: random.Random, size: int) -> bytes:
    vocab = _vocabulary(rng, 1500)
    tags = ("div", "span", "p", "a", "li", "button", "section", "h2", "label")
    out: list[str] = []
    length = 0
    while length < size:
        tag = rng.choice(tags)
        cls = " ".join(vocab.pick(rng, rng.randint(1, 3)))
        text = " ".join(vocab.pick(rng, rng.randint(1, 10)))
        item = f'<{tag} class="{cls}">{text}</{tag}>\n'
        out.append(item)
        length += len(item)
    return "".join(out).encode()[:size]


_POOLS = {
    "js": _js_pool,
    "css": _css_pool,
    "json": _json_pool,
    "svg": _svg_pool,
    "html": _html_pool,
}


class _Content:
    """Seeded bytes for files: slices of the text pools, or random bytes for media."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._pools = {kind: make(rng, _POOL_SIZE) for kind, make in _POOLS.items()}

    def make(self, pool: str | None, size: int, label: str) -> bytes:
        if pool is None:
            return self._rng.randbytes(size)
        header = {
            "js": f"/*! {label} */",
            "css": f"/*! {label} */",
            "json": "",
            "svg": "",
            "html": f"<!-- {label} -->\n",
        }[pool].encode()
        body = bytearray(header)
        source = self._pools[pool]
        while len(body) < size:
            start = self._rng.randrange(len(source) - 1024)
            take = min(size - len(body), len(source) - start, self._rng.randint(16_384, 262_144))
            body += source[start : start + take]
        return bytes(body[:size])


# --- synthetic builds --------------------------------------------------------------------------
def _layout(rng: random.Random, spec: BuildSpec) -> list[tuple[str, str | None, float]]:
    """(path, pool, weight) for every small file; weights are scaled to sizes later."""
    kinds = list(_KINDS)
    shares = [_KINDS[k][1] for k in kinds]
    groups = max(4, round(math.sqrt(spec.files) / 2))
    folders = {
        "js": [f"assets/js/g{g:03d}" for g in range(groups)],
        "css": [f"assets/css/g{g:03d}" for g in range(max(1, groups // 4))],
        "json": [f"assets/i18n/{lang}" for lang in ("de", "en", "es", "fr", "ja", "pt", "zh")],
        "svg": [f"assets/icons/set{g:02d}" for g in range(max(1, groups // 4))],
        "html": ["pages", "pages/help", "pages/legal"],
        "png": [f"assets/img/g{g:03d}" for g in range(max(1, groups // 2))],
        "webp": [f"assets/img/webp/g{g:03d}" for g in range(max(1, groups // 2))],
        "woff2": ["assets/fonts"],
    }
    rows: list[tuple[str, str | None, float]] = []
    for number, kind in enumerate(rng.choices(kinds, weights=shares, k=spec.files)):
        ext, _, mu, sigma, pool = _KINDS[kind]
        digest = hashlib.sha256(f"{spec.name}/{number}".encode()).hexdigest()[:8]
        path = f"{rng.choice(folders[kind])}/{kind}-{number:05d}-{digest}{ext}"
        rows.append((path, pool, rng.lognormvariate(mu, sigma)))
    return rows


def generate(spec: BuildSpec, dest: Path) -> None:
    """Write the synthetic build ``spec`` into ``dest`` (which must not exist)."""
    rng = random.Random(f"{SEED}/{spec.name}/{GENERATOR_VERSION}")
    content = _Content(rng)
    fixed = {
        "index.html": b'<!doctype html><html><head><meta charset="utf-8"><title>bench</title>'
        b'<script type="module" src="/assets/vendor/vendor-core.js"></script></head>'
        b'<body><div id="app"></div></body></html>\n',
        "manifest.webmanifest": b'{"name":"bench","display":"standalone"}\n',
    }
    large_bytes = [round(share * spec.total_bytes) for _, share, _ in _LARGE]
    small_count = spec.files - len(fixed) - len(_LARGE)
    budget = spec.total_bytes - sum(len(v) for v in fixed.values()) - sum(large_bytes)
    rows = _layout(rng, BuildSpec(spec.name, small_count, budget))
    scale = budget / sum(weight for _, _, weight in rows)
    sizes = [max(64, int(weight * scale)) for _, _, weight in rows]
    sizes[-1] += budget - sum(sizes)  # exact total
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    made: set[Path] = set()

    def write(rel: str, data: bytes) -> None:
        path = tmp / rel
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(data)

    for rel, data in fixed.items():
        write(rel, data)
    for (rel, _, pool), size in zip(_LARGE, large_bytes, strict=True):
        write(rel, content.make(pool, size, rel))
    for (rel, pool, _), size in zip(rows, sizes, strict=True):
        write(rel, content.make(pool, size, rel))
    tmp.rename(dest)


def synthetic(spec: BuildSpec) -> Input:
    """The synthetic build ``spec``, generated on first use and reused after."""
    dest = CACHE / "inputs" / f"{spec.name}-g{GENERATOR_VERSION}"
    if not dest.is_dir():
        print(f"generating {spec.name} ({spec.files} files, {spec.total_bytes / _MB:.0f} MB) ...")
        dest.parent.mkdir(parents=True, exist_ok=True)
        generate(spec, dest)
    files, total = measure(dest)
    return Input(spec.name, dest, files, total, f"synthetic, seed {SEED}")


def measure(folder: Path) -> tuple[int, int]:
    """Number of regular files under ``folder`` and their total size."""
    files = total = 0
    for path in folder.rglob("*"):
        if path.is_file():
            files += 1
            total += path.stat().st_size
    return files, total


# --- third-party tools and the real build ------------------------------------------------------
def npm_install() -> Path:
    """Install the pinned npm packages of bench/package.json into bench/.cache/npm."""
    marker = NPM_DIR / ".installed"
    lock = (HERE / "package-lock.json").read_bytes()
    if marker.is_file() and marker.read_bytes() == hashlib.sha256(lock).hexdigest().encode():
        return NPM_DIR
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(HERE / name, NPM_DIR / name)
    # `npm ci` refuses this lock: @capgo/cli lists darwin-only optional helpers that the
    # registry does not serve to Linux, so it is never "in sync". `npm install` with the lock
    # present installs the locked versions (integrity-checked) all the same.
    print("installing pinned npm packages into bench/.cache/npm ...")
    subprocess.run(
        ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NPM_DIR,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    for package, version in (("@capgo/cli", CAPGO_VERSION), ("monaco-editor", MONACO_VERSION)):
        meta = json.loads((NPM_DIR / "node_modules" / package / "package.json").read_text())
        if meta["version"] != version:
            raise SystemExit(f"npm installed {package} {meta['version']}, expected {version}")
    marker.write_bytes(hashlib.sha256(lock).hexdigest().encode())
    return NPM_DIR


def capgo_cli() -> Path:
    """Path of Capgo's CLI (installed on first use)."""
    return npm_install() / "node_modules" / ".bin" / "capgo"


def monaco() -> Input:
    """monaco-editor's ``min/`` folder, copied, with a one-line index.html added at its root."""
    source = npm_install() / "node_modules" / "monaco-editor" / "min"
    dest = CACHE / "inputs" / f"monaco-{MONACO_VERSION}-min"
    if not dest.is_dir():
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
        index = tmp / "index.html"
        if not index.exists():
            # otaseal (and the Capgo updater) need index.html at the root; min/ has none.
            index.write_bytes(
                b'<!doctype html><html><head><meta charset="utf-8"><title>monaco</title></head>'
                b'<body><div id="editor"></div><script src="vs/loader.js"></script></body></html>\n'
            )
        tmp.rename(dest)
    files, total = measure(dest)
    return Input("monaco", dest, files, total, f"monaco-editor {MONACO_VERSION} min/ + index.html")
