"""``otaseal status --html``: the page renders in a real browser (Debian's headless Chromium).

From the screenshot (a PNG decoded here with zlib and struct): the adoption line's colour is
drawn in the chart area, and the table's header background is drawn below it. From the DOM
(``--dump-dom``): the inline ``<svg>`` with its ``<polyline>``, and one table row per release.
Without ``chromium`` the test skips and names the package; with ``CI=true`` it fails.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.unit.test_health_status import report

from otaseal.health import page

if TYPE_CHECKING:
    from collections.abc import Iterator

PACKAGE = "chromium"
LINE = (0x1F, 0x6F, 0xEB)  # chart.py's _LINE_COLOR
TABLE_HEAD = (0xF6, 0xF8, 0xFA)  # page.py's th background
WIDTH, HEIGHT = 1280, 1800


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = f"no chromium on PATH (Debian package {PACKAGE}; `make sysdeps` installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path: Chromium's singleton socket path must fit in 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="chr-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _run(browser: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(home),  # nothing left in the suite's temp dir
        "XDG_CONFIG_HOME": str(home),
        "XDG_CACHE_HOME": str(home),
    }
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
    ]
    return subprocess.run(
        [browser, *flags, *args], capture_output=True, env=env, timeout=120, check=False
    )


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8
    assert colour in {2, 6}  # RGB, RGBA
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        previous = line
        rgb = bytes(b for i, b in enumerate(line) if i % channels < 3)
        rows.append(rgb)
    return width, height, rows


def _where(
    rows: list[bytes], colour: tuple[int, int, int], tolerance: int = 12
) -> list[tuple[int, int]]:
    found = []
    for y, row in enumerate(rows):
        for x in range(0, len(row), 3):
            r, g, b = row[x], row[x + 1], row[x + 2]
            if (
                abs(r - colour[0]) <= tolerance
                and abs(g - colour[1]) <= tolerance
                and abs(b - colour[2]) <= tolerance
            ):
                found.append((x // 3, y))
    return found


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.polylines_in_svg = 0
        self.body_rows = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "polyline" and "svg" in self.stack:
            self.polylines_in_svg += 1
        if tag == "tr" and "tbody" in self.stack:
            self.body_rows += 1
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag) :]


def test_the_status_page_renders_its_chart_and_table_in_chromium(short_tmp: Path) -> None:
    browser = _chromium()
    tmp_path = short_tmp
    html = tmp_path / "report.html"
    html.write_text(page.render(report()), encoding="utf-8")
    shot = tmp_path / "shot.png"

    done = _run(browser, tmp_path, f"--screenshot={shot}", html.as_uri())
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    width, height, rows = decode_png(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    line = _where(rows, LINE)
    assert len(line) > 200, "the adoption line is not drawn"
    xs, ys = [x for x, _ in line], [y for _, y in line]
    assert max(xs) - min(xs) > 100
    head = [y for _, y in _where(rows, TABLE_HEAD, tolerance=2) if y > max(ys)]
    assert head, "no table header below the chart"

    dom = _run(browser, tmp_path, "--dump-dom", html.as_uri())
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    parsed = _Dom()
    parsed.feed(dom.stdout.decode())
    assert parsed.polylines_in_svg == 1
    assert parsed.body_rows == 2
    assert "1.1 (current)" in dom.stdout.decode()
