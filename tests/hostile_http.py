"""A malicious HTTP server on 127.0.0.1 whose every byte is scripted, for attacks and fuzzing.

``http.server`` fixes the status line, header syntax and framing for us; an attacker does not.
Here a test maps a path to a :data:`Reply`, a function that writes whatever it wants to the raw
socket (a drip, an endless stream, headers no RFC allows), and the server closes the connection
after each reply. It serves many connections at once (a thread each) and stops every thread it
started when closed::

    with HostileServer({"/app/x.json": drip(b"HTTP/1.1 200 OK\\r\\n", interval=1.0)}) as server:
        HttpFetcher(server.url).fetch("app/x.json", max_bytes=10)

A fuzz target can keep one server and swap a route's reply per input with :meth:`route`.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path
    from types import TracebackType

#: Writes one reply to the socket; returns soon after the event is set (the server closes).
Reply = Callable[[socket.socket, threading.Event], None]

_HEAD_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    """What the client sent: method, target (path and query) and headers (lower-case names)."""

    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.target.split("?", 1)[0]


def head(
    status: int | str, headers: Iterable[tuple[str | bytes, str | bytes]] = (), reason: str = "X"
) -> bytes:
    """A status line and headers exactly as given (str as latin-1 where it can be, else UTF-8)."""
    lines = [_bytes(f"HTTP/1.1 {status} {reason}")]
    lines.extend(_bytes(name) + b": " + _bytes(value) for name, value in headers)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _bytes(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode()


def raw(data: bytes) -> Reply:
    """Send ``data`` as is, then close."""

    def reply(sock: socket.socket, _stop: threading.Event) -> None:
        sock.sendall(data)

    return reply


def response(
    status: int, body: bytes = b"", headers: Iterable[tuple[str, str | bytes]] = ()
) -> Reply:
    """A well-framed reply with ``Content-Length`` (plus any extra headers)."""
    return raw(head(status, [("Content-Length", str(len(body))), *headers]) + body)


def drip(data: bytes, *, interval: float, step: int = 1) -> Reply:
    """Send ``data`` ``step`` bytes at a time, one step per ``interval`` seconds (slowloris)."""

    def reply(sock: socket.socket, stop: threading.Event) -> None:
        for i in range(0, len(data), step):
            sock.sendall(data[i : i + step])
            if stop.wait(interval):
                return

    return reply


def endless(prefix: bytes, chunk: bytes, *, pause: float = 0.0) -> Reply:
    """Send ``prefix``, then ``chunk`` again and again until the client goes away."""

    def reply(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(prefix)
        while not stop.is_set():
            sock.sendall(chunk)
            if pause:
                stop.wait(pause)

    return reply


def endless_chunked(size: int = 64 * 1024) -> Reply:
    """``Transfer-Encoding: chunked`` with no length and no last chunk."""
    chunk = f"{size:x}\r\n".encode() + b"A" * size + b"\r\n"
    return endless(head(200, [("Transfer-Encoding", "chunked")]), chunk)


def gzip_bomb(
    inflated: int,
    *,
    status: int = 200,
    encoding: str = "gzip",
    headers: Iterable[tuple[str, str | bytes]] = (),
) -> Reply:
    """A small ``Content-Encoding`` body that decodes to ``inflated`` zero bytes.

    Built a mebibyte at a time, so making a gigabyte bomb costs the test no memory.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(inflated >> 20)]
    parts += [packer.compress(bytes(inflated % (1 << 20))), packer.flush()]
    return response(status, b"".join(parts), [("Content-Encoding", encoding), *headers])


def self_signed_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the certificate a client must trust (openssl CLI)."""
    cert, key = folder / "hostile-cert.pem", folder / "hostile-key.pem"
    args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    args += ["-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        ["openssl", *args, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert


class HostileServer:
    """Answers each connection on 127.0.0.1 with the scripted reply of the request's path."""

    def __init__(
        self,
        routes: Mapping[str, Reply] | None = None,
        *,
        default: Reply | None = None,
        on_connect: Reply | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``on_connect``: send it at once, without reading a request; ``tls``: serve HTTPS."""
        self._routes = dict(routes or {})
        self._default = default or response(404, b"not found")
        self._on_connect = on_connect
        self._tls = tls
        self.requests: list[Request] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True, name="hostile-http")
        self._acceptor.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https`` when serving TLS)."""
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def route(self, path: str, reply: Reply) -> None:
        """Answer ``path`` (without query) with ``reply`` from now on."""
        with self._lock:
            self._routes[path] = reply

    def close(self) -> None:
        """Stop accepting, cut every open connection and join every thread this server started."""
        self._stop.set()
        self._acceptor.join(5)
        self._listener.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._conns.add(conn)
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            if self._on_connect is not None:
                self._on_connect(conn, self._stop)
                return
            if self._tls is not None:
                plain = conn
                conn = self._tls.wrap_socket(plain, server_side=True)
                with self._lock:
                    self._conns.discard(plain)
                    self._conns.add(conn)
            request = _read_request(conn)
            if request is None:
                return
            with self._lock:
                self.requests.append(request)
                reply = self._routes.get(request.path, self._default)
            reply(conn, self._stop)
            conn.shutdown(socket.SHUT_WR)
            _drain(conn, self._stop)
        except OSError:
            pass  # the client hung up: what a fetcher refusing a reply does
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < _HEAD_LIMIT:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.rpartition(" ")[0] or rest
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(method, target, headers)


def _drain(conn: socket.socket, stop: threading.Event) -> None:
    """Wait (briefly) for the client to close, so it reads our last bytes before a reset."""
    conn.settimeout(0.5)
    deadline = time.monotonic() + 2
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if not conn.recv(4096):
                return
        except TimeoutError:
            continue
