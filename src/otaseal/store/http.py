"""Read-only ``Fetcher`` over plain HTTP(S): a bucket website or CDN, no cloud credentials.

Devices trust signatures, not the transport, so all this module must guarantee is that a hostile
or broken server cannot crash the client, hang it, or make it hold more than the caps (SPEC §3.1):
every read has an overall deadline, the few headers it relies on are parsed strictly, redirect
bodies are never read and redirects stay on the base URL's origin, and compressed bodies are
inflated in bounded steps and counted after decoding.

It speaks ``http.client`` directly rather than through requests: it must own the socket (to cut
it at the deadline) and decide itself about redirects, encodings and every length it trusts.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import re
import socket
import ssl
import threading
import time
import urllib.request
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from otaseal import __version__
from otaseal.errors import InputError, LengthError, NotFoundError, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from urllib.parse import SplitResult

#: Bytes asked from the network (and, for a compressed body, produced by the decoder) per step.
CHUNK_SIZE = 64 * 1024
#: (connect, read) timeouts in seconds; the read timeout applies between bytes.
DEFAULT_TIMEOUT = (5.0, 30.0)
#: Seconds every read may take in total, redirects and retries included, before the allowance
#: for its size (``max_bytes / MIN_RATE``) is added: 64 s for metadata.
DEFAULT_DEADLINE = 60.0
#: Slowest transfer, in bytes per second, a read of a large object is allowed.
MIN_RATE = 128 * 1024
#: Redirects followed per read, each only to the base URL's scheme, host and port.
MAX_REDIRECTS = 3
#: Longest ``Location`` header followed, in characters.
MAX_LOCATION = 2048
#: Largest response head (status lines and header lines, 1xx heads included) read, in bytes.
MAX_HEAD = 64 * 1024

_NOT_FOUND = frozenset({404, 410})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTTP_OK = 200
_HTTP_PARTIAL = 206
_HTTP_FORBIDDEN = 403
_HTTP_RANGE_NOT_SATISFIABLE = 416
_DEFAULT_PORTS = {"http": 80, "https": 443}
# ASCII digits only: str.isdigit() accepts "²" and int() accepts "١٢" and "1_0".
_LENGTH = re.compile(r"[0-9]{1,64}")
_CONTENT_RANGE = re.compile(r"bytes 0-([0-9]{1,64})/([0-9]{1,64}|\*)", re.IGNORECASE)
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_MAX_CHUNK_LINE = 4096  # a chunk size with its extensions
#: zlib ``wbits`` per accepted Content-Encoding (gzip framing, zlib framing).
_DECODERS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
_SHOWN_TEXT = 100  # characters of a server-chosen value quoted in a message


class _DeadlineExceededError(Exception):
    """The read's overall deadline passed (internal; surfaces as a ``StoreError``)."""


class _HeadTooLargeError(http.client.HTTPException):
    """The response head passed ``MAX_HEAD`` (internal; surfaces as a ``StoreError``)."""


class _HeadReader:
    """The socket's reader, counting header lines (the head, then any trailer) against ``MAX_HEAD``.

    ``http.client`` allows 100 header lines of 64 KiB each and copies them several times while
    parsing (about 50 MB at its limits); this keeps a head, and so its parsing, small.
    """

    def __init__(self, fp: object) -> None:
        self._fp = fp
        self._left = MAX_HEAD
        self.counting = True

    def arm(self) -> None:
        """Count the lines read from now on against a fresh ``MAX_HEAD``."""
        self._left, self.counting = MAX_HEAD, True

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._fp.readline(limit)  # type: ignore[attr-defined]
        if self.counting:
            self._left -= len(line)
            if self._left < 0:
                raise _HeadTooLargeError
        return line

    def __getattr__(self, name: str) -> object:
        return getattr(self._fp, name)


class _Response(http.client.HTTPResponse):
    """An ``HTTPResponse`` whose head is read under ``MAX_HEAD``."""

    def __init__(self, sock: socket.socket, *args: object, **kwargs: object) -> None:
        super().__init__(sock, *args, **kwargs)  # type: ignore[arg-type]
        self._head = _HeadReader(self.fp)
        self.fp = self._head  # type: ignore[assignment]

    def begin(self) -> None:
        super().begin()
        self._head.counting = False  # chunk-size lines of the body are not part of the head

    def _read_next_chunk_size(self) -> int:
        """A chunk size in hex digits only; ``ValueError`` becomes ``IncompleteRead``.

        ``int(line, 16)`` takes ``-1`` (after which http.client reads the rest of the stream into
        memory) and ``1_0``. The trailer after the last chunk is bounded like a head.
        """
        line = self.fp.readline(_MAX_CHUNK_LINE + 1)
        if len(line) > _MAX_CHUNK_LINE:
            raise http.client.LineTooLong("chunk size")
        size = line.split(b";", 1)[0].strip(b" \t\r\n")
        if not _CHUNK_SIZE.fullmatch(size):
            self.close()
            raise ValueError("chunk size")
        chunk = int(size, 16)
        if chunk == 0:
            self._head.arm()
        return chunk


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _origin(parts: SplitResult) -> _Origin:
    """Scheme, host and port of a URL; ``ValueError`` when the host or port is malformed."""
    host = parts.hostname
    if parts.scheme not in _DEFAULT_PORTS or not host:
        raise ValueError("not an http(s) URL with a host")
    return _Origin(parts.scheme, host, parts.port or _DEFAULT_PORTS[parts.scheme])


class HttpFetcher:
    """Fetch store objects as ``<base_url>/<key>`` with a byte cap and a deadline on every read."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        min_rate: float = MIN_RATE,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """``deadline`` seconds plus one per ``min_rate`` bytes of the cap bound each read."""
        try:
            parts = urlsplit(base_url)
            origin: _Origin | None = _origin(parts)
            parts.netloc.encode("idna")  # empty or over-long labels: UnicodeError, a ValueError
        except ValueError:
            origin = None
        if origin is None or not _PRINTABLE.fullmatch(base_url):  # IDN hosts: use punycode
            raise InputError(
                "the update URL is not an http(s) URL of printable ASCII",
                expected="a base URL such as https://cdn.example.com/updates",
                fix="Fix the base URL of the store",
            )
        if deadline <= 0 or min_rate <= 0:
            raise InputError("the HTTP deadline and minimum rate must be positive")
        self._base = parts
        self._origin = origin
        self._connect_timeout, self._read_timeout = (
            timeout if isinstance(timeout, tuple) else (timeout, timeout)
        )
        self._deadline = deadline
        self._min_rate = min_rate
        self._headers = {"User-Agent": f"otaseal/{__version__}", **(headers or {})}
        if parts.username is not None:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(userinfo.encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._tls: ssl.SSLContext | None = None

    def describe(self) -> str:
        """The base URL without user info, query or fragment (they may carry tokens)."""
        return self._public_url(self._base.path.rstrip("/"))

    def _public_url(self, path: str) -> str:
        host = self._base.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = host if self._base.port is None else f"{host}:{self._base.port}"
        return urlunsplit((self._base.scheme, netloc, path, "", ""))

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise InputError(f"store key {key!r} is not a relative path", expected="app/...")
        return self._base.path.rstrip("/") + "/" + quote(key)

    def time_limit(self, max_bytes: int) -> float:
        """Seconds a read capped at ``max_bytes`` may take in total."""
        return self._deadline + max_bytes / self._min_rate

    def fetch(self, key: str, *, max_bytes: int) -> bytes:
        """Return the whole object; ``LengthError`` past ``max_bytes``, ``NotFoundError``."""
        return b"".join(self.stream(key, max_bytes=max_bytes))

    def stream(self, key: str, *, max_bytes: int) -> Iterator[bytes]:
        """Yield the object in chunks; never holds more than ``max_bytes + 1`` bytes of it."""
        path = self._path(key)
        shown = self._public_url(path)
        url = urlunsplit((self._base.scheme, self._base.netloc, path, self._base.query, ""))
        watchdog = _Watchdog(self.time_limit(max_bytes))
        try:
            with self._open(url, shown, max_bytes, watchdog) as response:
                yield from _body(response, shown, max_bytes, watchdog)
        except _DeadlineExceededError:
            raise _too_slow(shown, watchdog.seconds) from None
        except (OSError, http.client.HTTPException) as exc:
            if watchdog.fired:
                raise _too_slow(shown, watchdog.seconds) from None
            raise _transport_error(shown, exc) from None
        finally:
            watchdog.stop()

    @contextlib.contextmanager
    def _open(
        self, url: str, shown: str, max_bytes: int, watchdog: _Watchdog
    ) -> Iterator[http.client.HTTPResponse]:
        """The 200 or 206 response for ``url``, after same-origin redirects; closed on exit."""
        ranged, hops = True, 0
        while True:
            conn, response = self._request(url, watchdog, max_bytes if ranged else None)
            status = response.status
            if status in {_HTTP_OK, _HTTP_PARTIAL}:
                try:
                    yield response
                finally:
                    watchdog.close(conn)
                return
            location = response.msg.get_all("Location") or []
            watchdog.close(conn)  # never read the body of anything but the object
            if status == _HTTP_RANGE_NOT_SATISFIABLE and ranged:
                ranged = False  # servers answer 416 for any range on an empty object
            elif status in _REDIRECTS:
                hops += 1
                if hops > MAX_REDIRECTS:
                    raise _bad_server(
                        f"{shown} redirected more than {MAX_REDIRECTS} times",
                        expected=f"at most {MAX_REDIRECTS} redirects",
                    )
                url = self._follow(url, location, shown)
            else:
                raise _bad_status(shown, status)

    def _follow(self, url: str, location: list[str], shown: str) -> str:
        """The URL a redirect points to, if it stays on the base URL's scheme, host and port."""
        values = {str(value).strip() for value in location}
        if len(values) != 1:
            raise _bad_server(
                f"{shown} redirected with {len(values)} different Location headers",
                expected="one Location header on a redirect",
            )
        value = values.pop()
        if len(value) > MAX_LOCATION or not _PRINTABLE.fullmatch(value):
            raise _bad_server(
                f"{shown} redirected to an unreadable Location ({len(value)} characters)",
                expected=f"a URL of printable ASCII, at most {MAX_LOCATION} characters",
            )
        try:
            target = urlsplit(urljoin(url, value))
            origin = _origin(target)
        except ValueError:
            raise _bad_server(
                f"{shown} redirected to {value[:_SHOWN_TEXT]!a}, which is not a valid URL",
                expected="an http(s) URL in Location",
            ) from None
        if origin != self._origin:
            raise StoreError(
                f"{shown} redirected to {str(origin)[:_SHOWN_TEXT]}, another origin",
                expected=f"redirects only within {self._origin} (SPEC §3.1)",
                fix="Set the update URL to where the objects are served",
            )
        return urlunsplit((target.scheme, target.netloc, target.path or "/", target.query, ""))

    def _request(
        self, url: str, watchdog: _Watchdog, cap: int | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one GET (through a proxy if the environment names one) and read its head."""
        parts = urlsplit(url)
        origin = _origin(parts)
        target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        headers = {**self._headers, "Accept-Encoding": "identity", "Connection": "close"}
        if cap is not None:
            # Range stops a cooperating server at the cap; identity keeps the count in stored
            # bytes (bundles are encrypted and do not compress anyway).
            headers["Range"] = f"bytes=0-{cap}"
        connect_timeout = min(self._connect_timeout, watchdog.remaining())
        conn: http.client.HTTPConnection
        proxy = _proxy_for(origin)
        if proxy is None and origin.scheme == "http":
            conn = http.client.HTTPConnection(origin.host, origin.port, timeout=connect_timeout)
        elif proxy is None:
            conn = http.client.HTTPSConnection(
                origin.host, origin.port, timeout=connect_timeout, context=self._tls_context()
            )
        elif origin.scheme == "http":
            conn = http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=connect_timeout)
            target = url  # absolute form through a proxy
            headers.update(_proxy_auth(proxy))
        else:
            conn = http.client.HTTPSConnection(
                proxy.hostname, proxy.port, timeout=connect_timeout, context=self._tls_context()
            )
            conn.set_tunnel(origin.host, origin.port, headers=_proxy_auth(proxy))
        conn.response_class = _Response
        watchdog.guard(conn)
        try:
            conn.connect()
        except (OSError, UnicodeError) as exc:  # UnicodeError: a host name idna refuses
            watchdog.close(conn)
            if watchdog.fired:
                raise _DeadlineExceededError from None
            raise _ConnectError(str(exc)) from exc
        try:
            if conn.sock is not None:
                conn.sock.settimeout(self._read_timeout)
            conn.request("GET", target, headers=headers)
            return conn, conn.getresponse()
        except BaseException:
            watchdog.close(conn)
            raise

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=_ca_file())
        return self._tls


class _ConnectError(OSError):
    """The TCP (or TLS, or proxy) connection could not be made."""


@dataclass(frozen=True, slots=True)
class _Proxy:
    hostname: str
    port: int
    userinfo: str | None


def _proxy_for(origin: _Origin) -> _Proxy | None:
    """The proxy ``http_proxy`` / ``https_proxy`` name for ``origin``, unless ``no_proxy`` says."""
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(origin.scheme)
    if not url or urllib.request.proxy_bypass(origin.host):
        return None
    parts = urlsplit(url if "://" in url else "http://" + url)
    try:
        port = parts.port or 80
    except ValueError:
        port = -1
    if parts.scheme != "http" or not parts.hostname or port < 0:
        raise InputError(
            f"the {origin.scheme}_proxy environment variable is not an http:// proxy URL",
            expected="e.g. http://proxy.example.com:3128",
            fix="Fix or unset the proxy variable",
        )
    userinfo = None
    if parts.username is not None:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return _Proxy(parts.hostname, port, userinfo)


def _proxy_auth(proxy: _Proxy) -> dict[str, str]:
    if proxy.userinfo is None:
        return {}
    return {"Proxy-Authorization": "Basic " + base64.b64encode(proxy.userinfo.encode()).decode()}


def _ca_file() -> str | None:
    """The CA bundle requests would use, so moving off requests changes no trust decision."""
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import certifi  # noqa: PLC0415 - requests' dependency; the system store otherwise
    except ImportError:  # pragma: no cover - certifi comes with requests
        return None
    return certifi.where()


class _Watchdog:
    """Cuts the connection in use when the read's overall deadline passes.

    Socket timeouts bound each ``recv``, not their sum: a server dripping a byte every few
    seconds never trips them. A timer thread shuts the socket down at the deadline, which wakes
    a blocked read (plain or TLS) at once; the reader then sees ``fired`` and reports the
    deadline. The lock keeps the shutdown off a socket that is being closed.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._thread: threading.Thread | None = None

    def remaining(self) -> float:
        """Seconds left; ``_DeadlineExceededError`` when none are."""
        left = self._end - time.monotonic()
        if left <= 0 or self.fired:
            raise _DeadlineExceededError
        return left

    def guard(self, conn: http.client.HTTPConnection) -> None:
        """Watch ``conn`` (the read's current connection) from now on."""
        with self._lock:
            self._conn = conn
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="otaseal-deadline")
            self._thread.start()

    def close(self, conn: http.client.HTTPConnection) -> None:
        """Close ``conn`` where the timer cannot touch it half-closed."""
        with self._lock:
            if self._conn is conn:
                self._conn = None
            conn.close()

    def stop(self) -> None:
        """End the timer thread (the read is over)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        # In steps: Event.wait() overflows past threading.TIMEOUT_MAX (a bundle of 2^53 bytes).
        while (left := self._end - time.monotonic()) > 0:
            if self._stopped.wait(min(left, 3600.0)):
                return
        self.fired = True
        # A connect under way has no socket yet, but its timeout ends at the deadline too: try
        # again for a second at most.
        for _ in range(20):
            with self._lock:
                sock = self._conn.sock if self._conn is not None else None
                if sock is not None:
                    with contextlib.suppress(OSError):
                        # socket.socket's own shutdown: SSLSocket's would drop its state under
                        # the reading thread.
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
            if self._stopped.wait(0.05):
                return


def _body(
    response: http.client.HTTPResponse, shown: str, max_bytes: int, watchdog: _Watchdog
) -> Iterator[bytes]:
    """The body, decoded, in chunks, refusing it once it passes ``max_bytes``."""
    framing = _framing(response, shown, max_bytes)
    inflater = zlib.decompressobj(framing.wbits) if framing.wbits else None
    raw_seen = received = 0
    while True:
        data = response.read(CHUNK_SIZE)
        if watchdog.fired:
            raise _DeadlineExceededError
        if not data:
            break
        raw_seen += len(data)
        pieces = [data] if inflater is None else _inflate(inflater, data, shown)
        for piece in pieces:
            received += len(piece)
            if received > max_bytes:
                raise _too_long(shown, max_bytes, f"more than {max_bytes} bytes")
            if piece:
                yield piece
    if framing.length is not None and raw_seen < framing.length:
        raise _bad_server(
            f"{shown} ended after {raw_seen} of the {framing.length} bytes it announced",
            expected="the whole body",
            fix="Retry; if it persists, check the server",
        )
    if inflater is not None and (not inflater.eof or inflater.unused_data):
        raise _bad_server(
            f"{shown} sent a {framing.encoding} body that is truncated or has trailing bytes",
            expected="one complete compressed stream",
        )


def _inflate(inflater: zlib._Decompress, data: bytes, shown: str) -> Iterator[bytes]:
    """Decoded output of ``data`` in pieces of at most ``CHUNK_SIZE``: a bomb cannot balloon."""
    try:
        yield inflater.decompress(data, CHUNK_SIZE)
        while inflater.unconsumed_tail:
            yield inflater.decompress(inflater.unconsumed_tail, CHUNK_SIZE)
    except zlib.error:
        raise _bad_server(
            f"{shown} sent a compressed body that does not decode",
            expected="a valid gzip or deflate stream, or (as asked) none",
        ) from None


@dataclass(frozen=True, slots=True)
class _Framing:
    """What the response head says about its body, once checked."""

    length: int | None  # bytes on the wire per Content-Length, when not chunked
    encoding: str
    wbits: int  # 0: identity


def _framing(response: http.client.HTTPResponse, shown: str, max_bytes: int) -> _Framing:
    """Check the headers the body is read by; refuse an oversize object before its body."""
    transfer = _one_header(response, "Transfer-Encoding", shown)
    if transfer is not None and transfer.lower() != "chunked":
        raise _bad_server(
            f"{shown} sent Transfer-Encoding {transfer[:_SHOWN_TEXT]!a}",
            expected="no Transfer-Encoding or chunked",
        )
    encoding = (_one_header(response, "Content-Encoding", shown) or "identity").lower()
    if encoding != "identity" and encoding not in _DECODERS:
        raise _bad_server(
            f"{shown} sent Content-Encoding {encoding[:_SHOWN_TEXT]!a}",
            expected="identity (as asked), gzip or deflate",
        )
    length = None if transfer is not None else _number(response, "Content-Length", shown)
    total = length if encoding == "identity" else None  # compressed size says nothing
    if response.status == _HTTP_PARTIAL:
        total = _range_total(response, shown, max_bytes)
    if total is not None and total > max_bytes:
        raise _too_long(shown, max_bytes, f"{total} bytes")
    return _Framing(length, encoding, _DECODERS.get(encoding, 0))


def _one_header(response: http.client.HTTPResponse, name: str, shown: str) -> str | None:
    """The value of a header the fetcher relies on; two different values are refused."""
    values = {str(value).strip() for value in response.msg.get_all(name) or []}
    if len(values) > 1:
        raise _bad_server(
            f"{shown} sent {len(values)} different {name} headers", expected=f"one {name}"
        )
    return values.pop() if values else None


def _number(response: http.client.HTTPResponse, name: str, shown: str) -> int | None:
    value = _one_header(response, name, shown)
    if value is None:
        return None
    if not _LENGTH.fullmatch(value):
        raise _bad_server(
            f"{shown} sent {name} {value[:_SHOWN_TEXT]!a}", expected="ASCII digits only"
        )
    return int(value)


def _range_total(response: http.client.HTTPResponse, shown: str, max_bytes: int) -> int | None:
    """Full size from a 206's ``Content-Range`` (None for ``*``), which must start at byte 0."""
    value = _one_header(response, "Content-Range", shown) or ""
    match = _CONTENT_RANGE.fullmatch(value)
    if match is None:
        raise _bad_server(
            f"{shown} answered 206 with Content-Range {value[:_SHOWN_TEXT]!a}",
            expected=f"bytes 0-<last>/<size> in ASCII digits (Range was bytes=0-{max_bytes})",
        )
    last = int(match[1])
    total = None if match[2] == "*" else int(match[2])
    if last > max_bytes:
        raise _too_long(shown, max_bytes, f"more than {max_bytes} bytes")
    if total is not None and total <= max_bytes and last + 1 != total:
        raise _bad_server(
            f"{shown} sent bytes 0-{last} of an object of {total} bytes",
            expected="the whole object when it fits the range asked for",
        )
    return total


def _bad_status(shown: str, status: int) -> StoreError:
    if status in _NOT_FOUND:
        return NotFoundError(f"{shown} does not exist (HTTP {status})")
    hint = (
        "; a bucket answers 403 for a missing object when listing is not public"
        if status == _HTTP_FORBIDDEN
        else ""
    )
    return StoreError(
        f"{shown} answered HTTP {status}",
        expected="HTTP 200 or 206",
        fix=f"Check the update URL and that the objects are publicly readable{hint}",
    )


def _bad_server(what: str, *, expected: str, fix: str = "") -> StoreError:
    return StoreError(
        what,
        expected=expected,
        fix=fix or "The server or something in between is broken or hostile; check it",
    )


def _transport_error(shown: str, exc: OSError | http.client.HTTPException) -> StoreError:
    if isinstance(exc, _ConnectError):
        tls = f" (TLS: {exc.__cause__})" if isinstance(exc.__cause__, ssl.SSLError) else ""
        return _unreachable(f"could not connect to {shown}{tls}")
    if isinstance(exc, TimeoutError):
        return _unreachable(f"reading {shown} timed out")
    if isinstance(exc, http.client.IncompleteRead):
        return _bad_server(
            f"reading {shown} failed: the body ended early or its chunked framing is broken",
            expected="the whole body",
            fix="Retry; if it persists, check the server",
        )
    if isinstance(exc, _HeadTooLargeError):
        return _bad_server(
            f"{shown} sent status and header lines (head or trailer) over {MAX_HEAD} bytes",
            expected=f"at most {MAX_HEAD} bytes of them",
        )
    if isinstance(exc, http.client.HTTPException):
        return _bad_server(
            f"{shown} did not answer with valid HTTP ({type(exc).__name__})",
            expected="an HTTP/1.x status line and at most 100 header lines of at most 64 KiB",
        )
    return StoreError(
        f"reading {shown} failed ({type(exc).__name__})",
        fix="Retry; if it persists, check the server",
    )


def _too_long(shown: str, max_bytes: int, size: str) -> LengthError:
    return LengthError(
        f"{shown} is {size}",
        expected=f"at most {max_bytes} bytes",
        fix="The server holds something other than what was published; republish it",
    )


def _too_slow(shown: str, seconds: float) -> StoreError:
    return StoreError(
        f"reading {shown} did not finish within {seconds:.0f} s",
        expected="a server that sends the object within the deadline (SPEC §3.1)",
        fix="Check the update URL and the network; a server this slow is overloaded or hostile",
    )


def _unreachable(what: str) -> StoreError:
    return StoreError(
        what,
        expected="a server that answers within the timeout",
        fix="Check the update URL and the network",
    )
