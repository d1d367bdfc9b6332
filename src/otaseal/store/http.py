"""Read-only ``Fetcher`` over plain HTTP(S): a bucket website or CDN, no cloud credentials.

Devices trust signatures, not the transport, so all this module must guarantee is that a hostile
or broken server cannot make a client read more than it asked for or hang forever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from otaseal.errors import InputError, LengthError, NotFoundError, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import requests

#: Bytes asked from the network per read while streaming.
CHUNK_SIZE = 64 * 1024
#: (connect, read) timeouts in seconds; the read timeout applies between bytes, not in total.
DEFAULT_TIMEOUT = (5.0, 30.0)

_NOT_FOUND = frozenset({404, 410})
_HTTP_OK = 200
_HTTP_PARTIAL = 206
_HTTP_FORBIDDEN = 403
_HTTP_RANGE_NOT_SATISFIABLE = 416


class HttpFetcher:
    """Fetch store objects as ``<base_url>/<key>`` with a byte cap on every read."""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise InputError(
                "the update URL is not an http(s) URL",
                expected="a base URL such as https://cdn.example.com/updates",
                fix="Fix the base URL of the store",
            )
        self._base = parts
        self._session = session
        self._timeout = timeout

    def describe(self) -> str:
        """The base URL without user info, query or fragment (they may carry tokens)."""
        return self._public_url(self._base.path.rstrip("/"))

    def _public_url(self, path: str) -> str:
        host = self._base.hostname or ""
        netloc = f"{host}:{self._base.port}" if self._base.port else host
        return urlunsplit((self._base.scheme, netloc, path, "", ""))

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise InputError(f"store key {key!r} is not a relative path", expected="app/...")
        return self._base.path.rstrip("/") + "/" + quote(key)

    def _http(self) -> requests.Session:
        if self._session is None:
            import requests  # noqa: PLC0415 - keep CLI start-up fast when HTTP is not used

            self._session = requests.Session()
        return self._session

    def fetch(self, key: str, *, max_bytes: int) -> bytes:
        """Return the whole object; ``LengthError`` past ``max_bytes``, ``NotFoundError``."""
        return b"".join(self.stream(key, max_bytes=max_bytes))

    def stream(self, key: str, *, max_bytes: int) -> Iterator[bytes]:
        """Yield the object in chunks; never reads more than ``max_bytes + 1`` bytes of it."""
        import requests  # noqa: PLC0415
        import urllib3.exceptions  # noqa: PLC0415

        path = self._path(key)
        shown = self._public_url(path)
        url = urlunsplit((*self._base[:2], path, self._base.query, ""))
        try:
            response = self._get(url, shown, max_bytes)
            try:
                yield from _capped(response, shown, max_bytes)
            finally:
                response.close()
        except (requests.Timeout, urllib3.exceptions.ReadTimeoutError) as exc:
            raise _unreachable(f"reading {shown} timed out") from exc
        except requests.ConnectionError as exc:
            raise _unreachable(f"could not connect to {shown}") from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise StoreError(
                f"reading {shown} failed ({type(exc).__name__})",
                fix="Retry; if it persists, check the server",
            ) from exc

    def _get(self, url: str, shown: str, max_bytes: int) -> requests.Response:
        # Range stops a cooperating server at the cap; identity keeps the count in stored bytes
        # (bundles are encrypted and do not compress anyway).
        headers = {"Range": f"bytes=0-{max_bytes}", "Accept-Encoding": "identity"}
        session = self._http()
        response = session.get(url, headers=headers, stream=True, timeout=self._timeout)
        if response.status_code == _HTTP_RANGE_NOT_SATISFIABLE:
            # Servers answer 416 for any range on an empty object.
            response.close()
            response = session.get(
                url, headers={"Accept-Encoding": "identity"}, stream=True, timeout=self._timeout
            )
        if response.status_code in {_HTTP_OK, _HTTP_PARTIAL}:
            return response
        response.close()
        if response.status_code in _NOT_FOUND:
            raise NotFoundError(f"{shown} does not exist (HTTP {response.status_code})")
        hint = (
            "; a bucket answers 403 for a missing object when listing is not public"
            if response.status_code == _HTTP_FORBIDDEN
            else ""
        )
        raise StoreError(
            f"{shown} answered HTTP {response.status_code}",
            expected="HTTP 200 or 206",
            fix=f"Check the update URL and that the objects are publicly readable{hint}",
        )


def _capped(response: requests.Response, shown: str, max_bytes: int) -> Iterator[bytes]:
    total = _total_size(response)
    if total is not None and total > max_bytes:
        raise _too_long(shown, max_bytes, f"{total} bytes")
    received = 0
    while True:
        chunk = response.raw.read(min(CHUNK_SIZE, max_bytes + 1 - received), decode_content=True)
        if not chunk:
            return
        received += len(chunk)
        if received > max_bytes:
            raise _too_long(shown, max_bytes, f"more than {max_bytes} bytes")
        yield chunk


def _total_size(response: requests.Response) -> int | None:
    """Full size from ``Content-Range`` (206) or ``Content-Length`` (200), when the server says."""
    if response.status_code == _HTTP_PARTIAL:
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
    elif response.headers.get("Content-Encoding", "identity") == "identity":
        total = response.headers.get("Content-Length", "")
    else:
        return None  # a length of compressed bytes says nothing about what we will read
    return int(total) if total.isdigit() else None


def _too_long(shown: str, max_bytes: int, size: str) -> LengthError:
    return LengthError(
        f"{shown} is {size}",
        expected=f"at most {max_bytes} bytes",
        fix="The server holds something other than what was published; republish it",
    )


def _unreachable(what: str) -> StoreError:
    return StoreError(
        what,
        expected="a server that answers within the timeout",
        fix="Check the update URL and the network",
    )
