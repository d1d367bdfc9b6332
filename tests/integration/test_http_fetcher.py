"""HttpFetcher against a loopback HTTP server (some of it hostile) and moto's public objects."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from otaseal.errors import InputError, LengthError, NotFoundError, StoreError
from otaseal.store.http import HttpFetcher

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from servers import Server

SECRET_TOKEN = "tok-3f9a1c"  # a fake token that must never appear in messages


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder (with Range support unless told not to) plus a few misbehaving paths."""

    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []
    honour_range: ClassVar[bool] = True

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:
        Handler.seen.append((self.path, dict(self.headers.items())))
        special = getattr(self, "_special_" + self.path.split("?")[0].rsplit("/", 1)[-1], None)
        if special is not None:
            special()
            return
        path = self.translate_path(self.path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            self.send_error(404)
            return
        ranged = self.headers.get("Range", "")
        if self.honour_range and ranged.startswith("bytes=0-"):
            if not data:
                self.send_error(416)
                return
            end = min(int(ranged.removeprefix("bytes=0-")), len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-{end}/{len(data)}")
            data = data[: end + 1]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _special_endless(self) -> None:
        """No length, and the body never ends: a client must cut it off itself."""
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"A" * 65536)
        except OSError:
            pass

    def _special_bomb(self) -> None:
        """A small gzip body that inflates to 20 MB, sent despite Accept-Encoding: identity."""
        body = gzip.compress(b"\0" * 20_000_000)
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _special_gzipped(self) -> None:
        body = gzip.compress(b"hello")
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _special_truncated(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.wfile.flush()
        self.close_connection = True

    def _special_slow(self) -> None:
        time.sleep(1.5)
        try:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass  # the client gave up first, as it should

    def _special_broken(self) -> None:
        self.send_error(500)

    def _special_forbidden(self) -> None:
        self.send_error(403)

    def _special_gone(self) -> None:
        self.send_error(410)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "site"
    (root / "app" / "channels" / "beta").mkdir(parents=True)
    Handler.seen = []
    Handler.honour_range = True
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=partial(server.serve_forever, poll_interval=0.05), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fetcher(site: tuple[str, Path]) -> HttpFetcher:
    return HttpFetcher(site[0] + "/updates/")


@pytest.fixture
def files(site: tuple[str, Path]) -> Path:
    updates = site[1] / "updates" / "app" / "channels" / "beta"
    updates.mkdir(parents=True)
    return updates


def test_fetch_sends_a_bounded_range_and_returns_the_object(
    fetcher: HttpFetcher, files: Path
) -> None:
    (files / "manifest.json").write_bytes(b"m" * 500)
    assert fetcher.fetch("app/channels/beta/manifest.json", max_bytes=500) == b"m" * 500
    path, headers = Handler.seen[-1]
    assert path == "/updates/app/channels/beta/manifest.json"
    assert headers["Range"] == "bytes=0-500"
    assert headers["Accept-Encoding"] == "identity"


def test_oversize_object_is_refused_from_content_range(fetcher: HttpFetcher, files: Path) -> None:
    (files / "manifest.json").write_bytes(b"m" * 5000)
    with pytest.raises(LengthError) as caught:
        fetcher.fetch("app/channels/beta/manifest.json", max_bytes=100)
    assert "5000 bytes" in caught.value.diagnostics()


def test_server_ignoring_range_is_refused_from_content_length(
    fetcher: HttpFetcher, files: Path
) -> None:
    Handler.honour_range = False
    (files / "manifest.json").write_bytes(b"m" * 5000)
    with pytest.raises(LengthError):
        fetcher.fetch("app/channels/beta/manifest.json", max_bytes=100)
    assert fetcher.fetch("app/channels/beta/manifest.json", max_bytes=5000) == b"m" * 5000


def test_endless_response_is_cut_at_the_cap(fetcher: HttpFetcher) -> None:
    started = time.monotonic()
    chunks: list[bytes] = []
    with pytest.raises(LengthError) as caught:
        chunks.extend(fetcher.stream("app/endless", max_bytes=200_000))
    assert sum(map(len, chunks)) <= 200_000
    assert "more than 200000 bytes" in caught.value.diagnostics()
    assert time.monotonic() - started < 5


def test_gzip_bomb_is_cut_at_the_cap(fetcher: HttpFetcher) -> None:
    with pytest.raises(LengthError):
        fetcher.fetch("app/bomb", max_bytes=1_000_000)


def test_compressed_response_is_counted_in_decoded_bytes(fetcher: HttpFetcher) -> None:
    assert fetcher.fetch("app/gzipped", max_bytes=5) == b"hello"


def test_stream_yields_chunks_of_a_large_object(fetcher: HttpFetcher, files: Path) -> None:
    (files / "big.cub").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    chunks = list(fetcher.stream("app/channels/beta/big.cub", max_bytes=1 << 20))
    assert len(chunks) > 1
    assert b"".join(chunks) == bytes(range(256)) * 4096


def test_empty_object_is_fetched_despite_416(fetcher: HttpFetcher, files: Path) -> None:
    (files / "empty.json").write_bytes(b"")
    assert fetcher.fetch("app/channels/beta/empty.json", max_bytes=10) == b""
    assert "Range" not in Handler.seen[-1][1]


@pytest.mark.parametrize("name", ["missing.json", "gone"])
def test_missing_object_is_not_found(fetcher: HttpFetcher, name: str) -> None:
    with pytest.raises(NotFoundError):
        fetcher.fetch(f"app/{name}", max_bytes=10)


def test_server_error_names_the_url_without_tokens(site: tuple[str, Path]) -> None:
    fetcher = HttpFetcher(
        f"http://user:pw@{site[0].removeprefix('http://')}/u?token={SECRET_TOKEN}"
    )
    with pytest.raises(StoreError) as caught:
        fetcher.fetch("app/broken", max_bytes=10)
    text = caught.value.diagnostics()
    assert f"{site[0]}/u/app/broken answered HTTP 500" in text
    assert SECRET_TOKEN not in text
    assert "pw" not in text
    assert Handler.seen[-1][0] == f"/u/app/broken?token={SECRET_TOKEN}"  # token still sent
    assert fetcher.describe() == f"{site[0]}/u"


def test_forbidden_hints_at_bucket_listing(fetcher: HttpFetcher) -> None:
    with pytest.raises(StoreError) as caught:
        fetcher.fetch("app/forbidden", max_bytes=10)
    assert not isinstance(caught.value, NotFoundError)
    assert "answers 403 for a missing object" in caught.value.diagnostics()


def test_truncated_body_is_a_store_error(fetcher: HttpFetcher) -> None:
    with pytest.raises(StoreError) as caught:
        fetcher.fetch("app/truncated", max_bytes=10_000)
    assert "ended after 10 of the 1000 bytes it announced" in caught.value.diagnostics()


def test_slow_server_times_out(site: tuple[str, Path]) -> None:
    fetcher = HttpFetcher(site[0], timeout=(2.0, 0.3))
    with pytest.raises(StoreError) as caught:
        fetcher.fetch("app/slow", max_bytes=10)
    assert "timed out" in caught.value.diagnostics()


def test_port_zero_is_shown() -> None:
    assert HttpFetcher("http://127.0.0.1:0/u").describe() == "http://127.0.0.1:0/u"


def test_closed_port_cannot_connect() -> None:
    from servers import free_port

    url = f"http://127.0.0.1:{free_port()}/x"
    with pytest.raises(StoreError) as caught:
        HttpFetcher(url, timeout=2).fetch("app/m.json", max_bytes=10)
    assert f"could not connect to {url}/app/m.json" in caught.value.diagnostics()


@pytest.mark.parametrize("url", ["ftp://example.org/x", "updates/", "http://"])
def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(InputError):
        HttpFetcher(url)


@pytest.mark.parametrize("key", ["", "/etc/passwd", "app/../../secret"])
def test_keys_must_stay_under_the_base(fetcher: HttpFetcher, key: str) -> None:
    with pytest.raises(InputError):
        fetcher.fetch(key, max_bytes=10)


def test_given_headers_are_sent(site: tuple[str, Path], files: Path) -> None:
    (files / "m.json").write_bytes(b"{}")
    fetcher = HttpFetcher(site[0] + "/updates", headers={"User-Agent": "otaseal-device-test"})
    assert fetcher.fetch("app/channels/beta/m.json", max_bytes=2) == b"{}"
    assert Handler.seen[-1][1]["User-Agent"] == "otaseal-device-test"


def test_user_info_becomes_basic_auth_and_is_never_shown(
    site: tuple[str, Path], files: Path
) -> None:
    (files / "m.json").write_bytes(b"{}")
    fetcher = HttpFetcher(f"http://us%40er:p%3Aw@{site[0].removeprefix('http://')}/updates")
    assert fetcher.fetch("app/channels/beta/m.json", max_bytes=2) == b"{}"
    assert Handler.seen[-1][1]["Authorization"] == "Basic dXNAZXI6cDp3"  # us@er:p:w
    assert "us" not in fetcher.describe()


def test_public_objects_in_a_bucket_are_fetched_over_plain_http(
    moto: Server, moto_bucket: str, moto_s3: Any
) -> None:
    for key, body in [("app/m.json", b"m" * 1000), ("app/empty.json", b"")]:
        moto_s3.put_object(Bucket=moto_bucket, Key=f"pub/{key}", Body=body, ACL="public-read")
    fetcher = HttpFetcher(f"{moto.url}/{moto_bucket}/pub")
    assert fetcher.fetch("app/m.json", max_bytes=1000) == b"m" * 1000
    assert fetcher.fetch("app/empty.json", max_bytes=1000) == b""
    with pytest.raises(LengthError):
        fetcher.fetch("app/m.json", max_bytes=999)
    with pytest.raises(NotFoundError):
        fetcher.fetch("app/missing.json", max_bytes=10)


# --- proxies from the environment, as requests honoured them ---------------------------------
@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_http_proxy_gets_the_absolute_url_and_its_credentials(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    from hostile_http import HostileServer, response

    with HostileServer(default=response(200, b"{}")) as proxy:
        no_proxy_env.setenv("http_proxy", f"http://u:p@127.0.0.1:{proxy.port}")
        fetcher = HttpFetcher("http://updates.example.invalid/base")
        assert fetcher.fetch("app/m.json", max_bytes=2) == b"{}"
    (request,) = proxy.requests
    assert request.target == "http://updates.example.invalid/base/app/m.json"
    assert request.headers["proxy-authorization"] == "Basic dTpw"  # u:p
    assert request.headers["host"] == "updates.example.invalid"


def test_https_goes_through_a_connect_tunnel(no_proxy_env: pytest.MonkeyPatch) -> None:
    from hostile_http import HostileServer, response

    with HostileServer(default=response(407, b"no")) as proxy:
        no_proxy_env.setenv("https_proxy", f"127.0.0.1:{proxy.port}")
        with pytest.raises(StoreError) as caught:
            HttpFetcher("https://updates.example.invalid/base").fetch("app/m.json", max_bytes=2)
    assert [(r.method, r.target) for r in proxy.requests] == [
        ("CONNECT", "updates.example.invalid:443")
    ]
    assert "could not connect to https://updates.example.invalid/base/app/m.json" in str(
        caught.value
    )


def test_no_proxy_bypasses_the_proxy(
    no_proxy_env: pytest.MonkeyPatch, fetcher: HttpFetcher, files: Path
) -> None:
    from servers import free_port

    (files / "m.json").write_bytes(b"{}")
    no_proxy_env.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    no_proxy_env.setenv("no_proxy", "127.0.0.1")
    assert fetcher.fetch("app/channels/beta/m.json", max_bytes=2) == b"{}"


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "http://127.0.0.1:99999"])
def test_proxy_that_is_not_http_is_an_input_error(
    no_proxy_env: pytest.MonkeyPatch, proxy: str
) -> None:
    no_proxy_env.setenv("http_proxy", proxy)
    with pytest.raises(InputError) as caught:
        HttpFetcher("http://updates.example.invalid/").fetch("app/m.json", max_bytes=2)
    assert "http_proxy" in caught.value.diagnostics()


def test_tls_certificate_not_trusted_is_a_store_error(
    tmp_path: Path, no_proxy_env: pytest.MonkeyPatch
) -> None:
    from hostile_http import HostileServer, response, self_signed_tls

    context, _ = self_signed_tls(tmp_path)
    no_proxy_env.delenv("REQUESTS_CA_BUNDLE", raising=False)
    no_proxy_env.delenv("SSL_CERT_FILE", raising=False)
    with (
        HostileServer(default=response(200, b"{}"), tls=context) as server,
        pytest.raises(StoreError) as caught,
    ):
        HttpFetcher(server.url).fetch("app/m.json", max_bytes=2)
    assert "(TLS: " in caught.value.diagnostics()
    assert "certificate verify failed" in caught.value.diagnostics()


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example.com/a b",
        "http://bücher.example/x",
        "http://h:99999/",
        "http://[::1/",
        "http://a..b/",
        "http://.example/",
        f"http://{'a' * 64}.example/",
    ],
)
def test_base_url_must_be_printable_ascii_with_a_valid_host(url: str) -> None:
    with pytest.raises(InputError):
        HttpFetcher(url)


def test_deadline_and_rate_must_be_positive() -> None:
    with pytest.raises(InputError):
        HttpFetcher("http://127.0.0.1/", deadline=0)
    with pytest.raises(InputError):
        HttpFetcher("http://127.0.0.1/", min_rate=-1)
