"""Fuzz target: ``HttpFetcher`` against a malicious loopback server scripted by the input.

Every reply the server gives, in order and whatever the path (the object, a retry without Range,
each redirect hop), is built from the input: raw bytes sent verbatim, or a status line, headers
(``Content-Length``, ``Content-Range``, ``Location``, ``Transfer-Encoding``, ... with fuzzed
values) and a body that is length-framed, close-delimited or chunked, possibly gzip/deflate
encoded, possibly dripped (against a deadline of a few milliseconds when a flag says so).
``{origin}`` in any value becomes the server's ``http://127.0.0.1:port`` so redirects can point
back at it. Besides the error contract it checks the fetcher's promise: it never returns more
than ``max_bytes``.

Input: a flag byte (bits 0-1: replies - 1; bits 2-7 mod 3: which key; bit 6: a short deadline;
bit 7: ``stream`` rather than ``fetch``), two bytes of ``max_bytes`` (0xF000 and up: 2^n - 1 up
to 2^53 - 1), then each reply: a kind
byte (mod 4 = 0: raw bytes as one chunk; bit 7: drip, bits 4-6 its interval, bits 0-2 its step),
then for a built reply a status index (or raw status), headers (count, then name index or raw
name, value), a framing byte (bits 0-1: length, chunked, close-delimited; bits 2-3: identity,
gzip, deflate) and the body (a piece and its repeat count). Chunks are two-byte-length prefixed.

The process is fenced to loopback: an audit hook refuses every name lookup and connection that
is not 127.0.0.1, so a fuzzed ``Location`` can never reach another host.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import gzip
import os
import sys
import zlib
from typing import TYPE_CHECKING, Any

import _harness

sys.path.insert(0, str(_harness.ROOT / "tests"))
import hostile_http  # from tests/: the project's scripted hostile server

with _harness.instrumented(fuzzing=__name__ == "__main__", extra=("http.client", "email")):
    import http.client  # noqa: F401 - the fetcher's parser: imported here to be instrumented

    from otaseal.store.http import HttpFetcher

if TYPE_CHECKING:
    import socket
    import threading
    from collections.abc import Iterator

KEYS = (
    "com.example.app/channels/beta.json",
    "com.example.app/root/2.root.json",
    "com.example.app/bundles/" + "ab" * 32 + ".cub",
)
STATUSES = (200, 206, 301, 302, 303, 307, 308, 404, 410, 403, 416, 500, 503, 100, 204, 304)
HEADERS = (
    b"Content-Length",
    b"Content-Range",
    b"Location",
    b"Transfer-Encoding",
    b"Content-Encoding",
    b"Connection",
    b"Content-Type",
    b"Retry-After",
    b"Set-Cookie",
    b"Keep-Alive",
)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_FENCED = [False]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _FENCED[0]:
        return
    host: object = None
    if event in {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"}:
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    else:
        return
    if isinstance(host, bytes):
        host = host.decode("latin-1")
    if host not in _LOOPBACK:
        raise OSError(errno.EHOSTUNREACH, f"fuzz fence: {host!r} is not loopback")


sys.addaudithook(_audit)


@contextlib.contextmanager
def _fenced() -> Iterator[None]:
    """Loopback only, and no proxy from the environment."""
    saved = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "*"
    _FENCED[0] = True
    try:
        yield
    finally:
        _FENCED[0] = False
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Script:
    """The server's replies for one input, handed out in request order; then 404s."""

    def __init__(self) -> None:
        self.replies: collections.deque[hostile_http.Reply] = collections.deque()
        self._fallback = hostile_http.response(404, b"no more scripted replies")

    def __call__(self, sock: socket.socket, stop: threading.Event) -> None:
        try:
            reply = self.replies.popleft()
        except IndexError:
            reply = self._fallback
        reply(sock, stop)


_SERVER: list[tuple[hostile_http.HostileServer, _Script]] = []


def _server() -> tuple[hostile_http.HostileServer, _Script]:
    if not _SERVER:
        script = _Script()
        _SERVER.append((hostile_http.HostileServer(default=script), script))
    return _SERVER[0]


def close_server() -> None:
    """Stop the server (tests call this; a fuzzing process just exits)."""
    while _SERVER:
        _SERVER.pop()[0].close()


def _value(src: _harness.Input, origin: bytes) -> bytes:
    return src.chunk().replace(b"{origin}", origin)


def _body(src: _harness.Input) -> bytes:
    """A piece repeated (to pass the caps with a short input), at most 256 KiB."""
    piece = src.chunk()
    return (piece * (1 + src.int(2) % 4096))[: 256 << 10]


def _encode(body: bytes, how: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    if how == 1:
        return gzip.compress(body, mtime=0), [(b"Content-Encoding", b"gzip")]
    if how == 2:
        return zlib.compress(body), [(b"Content-Encoding", b"deflate")]
    return body, []


def _chunked(src: _harness.Input, body: bytes) -> bytes:
    """Up to eight chunks of fuzzed sizes (or size lines), the rest in one; maybe no last chunk."""
    out, at = [], 0
    for _ in range(src.int(1) % 8):
        size = 1 + src.int(1)
        line = src.chunk() if size == 0x100 else b"%x" % size  # 0xff: a fuzzed size line
        out.append(line + b"\r\n" + body[at : at + size] + b"\r\n")
        at += size
    if at < len(body):
        out.append(b"%x\r\n" % (len(body) - at) + body[at:] + b"\r\n")
    if src.int(1) % 4 != 3:  # sometimes no last chunk: the connection just closes
        out.append(b"0\r\n\r\n")
    return b"".join(out)


def _reply(src: _harness.Input, origin: bytes) -> hostile_http.Reply:
    kind = src.int(1)
    if kind % 4 == 0:
        data = _value(src, origin)
    else:
        pick = src.int(1)
        status: bytes = b"%d" % STATUSES[pick % len(STATUSES)] if pick < 0xF0 else src.chunk()
        headers = [
            (HEADERS[n % len(HEADERS)] if n < 0xF0 else src.chunk(), _value(src, origin))
            for n in (src.int(1) for _ in range(src.int(1) % 8))
        ]
        framing = src.int(1)
        body, encoding = _encode(_body(src), framing >> 2 & 3)
        headers += encoding
        if framing & 3 == 0:
            headers.append((b"Content-Length", b"%d" % len(body)))
        elif framing & 3 == 1:
            headers.append((b"Transfer-Encoding", b"chunked"))
            body = _chunked(src, body)
        data = hostile_http.head(status.decode("latin-1"), headers) + body
    if kind & 0x80:
        return hostile_http.drip(
            data[:64], interval=0.0005 * (1 + (kind >> 4 & 7)), step=1 + kind % 8
        )
    return hostile_http.raw(data)


def target(data: bytes) -> None:
    """Script the server from the input, fetch one object, check the byte cap held."""
    server, script = _server()
    origin = server.url.encode()
    src = _harness.Input(data)
    flags = src.int(1)
    max_bytes = src.int(2)
    if max_bytes >= 0xF000:  # a signed length far past any body: 2^n - 1, up to 2^53 - 1
        max_bytes = (1 << min(max_bytes % 64, 53)) - 1
    replies = [_reply(src, origin) for _ in range(1 + flags % 4)]
    script.replies.clear()
    script.replies.extend(replies)
    # Flag bit 6: a deadline of 10-80 ms, so the watchdog that cuts a slow read fires cheaply.
    deadline, min_rate = (0.01 * (1 + max_bytes % 8), 1e12) if flags & 0x40 else (5.0, 128e3)
    fetcher = HttpFetcher(
        server.url + "/updates", timeout=(2.0, 2.0), deadline=deadline, min_rate=min_rate
    )
    key = KEYS[(flags >> 2) % len(KEYS)]
    with _fenced():
        if flags & 0x80:
            got = sum(len(chunk) for chunk in fetcher.stream(key, max_bytes=max_bytes))
        else:
            got = len(fetcher.fetch(key, max_bytes=max_bytes))
    if got > max_bytes:
        raise AssertionError(f"the fetcher returned {got} bytes for max_bytes={max_bytes}")


if __name__ == "__main__":
    _harness.fuzz(target)
    sys.exit(0)
