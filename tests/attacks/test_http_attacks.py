"""Attacks by a malicious HTTP server on the device's fetcher (SPEC §3.1), one test per attack.

Every byte comes from :mod:`hostile_http`, a raw-socket server on 127.0.0.1. Each attack must
end in an otaseal error of the documented family (a store error, exit 5; an object over its cap,
a ``LengthError``, exit 4, which the client reports for metadata as ``OversizeMetadataError``,
exit 3), within the deadline and in bounded memory, and never as another exception.
"""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from otaseal import client
from otaseal.errors import Error, LengthError, OversizeMetadataError, StoreError
from otaseal.store import bundle_key, pointer_key
from otaseal.store.http import HttpFetcher

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # tests/, for hostile_http
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hostile_http import (
    HostileServer,
    drip,
    endless,
    endless_chunked,
    gzip_bomb,
    head,
    raw,
    response,
    self_signed_tls,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .conftest import Repository

#: Short, so the suite stays fast; the default (60 s + cap / 128 KiB/s) is pinned below.
DEADLINE = 2.0
#: Time a refused read may take past its deadline (thread wake-up, a loaded 2-core machine).
SLACK = 1.5
OBJECT = b'{"an": "object"}'


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


def fetcher_for(server: HostileServer, **options: float) -> HttpFetcher:
    """A fetcher on ``<server>/s`` with short timeouts and a deadline that ignores the cap."""
    options = {"deadline": DEADLINE, "min_rate": 1e12, **options}
    return HttpFetcher(f"{server.url}/s", timeout=(DEADLINE, DEADLINE), **options)


def refused(
    server: HostileServer,
    reply: Callable[..., None],
    error: type[Error] = StoreError,
    *,
    max_bytes: int = 1000,
    says: str = "",
) -> Error:
    """Serve ``reply`` at ``app/x``; the fetch must fail with exactly ``error``, saying ``says``."""
    server.route("/s/app/x", reply)
    started = time.monotonic()
    with pytest.raises(Error) as caught:
        fetcher_for(server).fetch("app/x", max_bytes=max_bytes)
    assert time.monotonic() - started < DEADLINE + SLACK
    assert type(caught.value) is error, caught.value.diagnostics()
    assert says in caught.value.diagnostics()
    return caught.value


def ok(body: bytes = OBJECT) -> Callable[..., None]:
    return response(200, body)


# --- headers Python parses badly -----------------------------------------------------------------
def test_superscript_digit_in_content_length(server: HostileServer) -> None:
    # "²".isdigit() is True and int("²") raises ValueError: this escaped as a traceback.
    refused(server, raw(head(200, [("Content-Length", "²")]) + b"ab"), says="Content-Length")


@pytest.mark.parametrize("digits", ["١٢", "１２", "१२", "12\u0663"])
def test_non_ascii_digits_in_content_length(server: HostileServer, digits: str) -> None:
    refused(server, raw(head(200, [("Content-Length", digits)]) + b"ab"), says="ASCII digits")


@pytest.mark.parametrize("value", ["1_0", "+10", "-1", "0x10", "1e3", "10 10", ""])
def test_loose_integer_syntax_in_content_length(server: HostileServer, value: str) -> None:
    refused(server, raw(head(200, [("Content-Length", value)]) + b"0123456789"))


def test_thousands_of_digits_in_content_length(server: HostileServer) -> None:
    # int() refuses strings over 4300 digits with a ValueError of its own.
    refused(server, raw(head(200, [("Content-Length", "9" * 5000)])), says="ASCII digits only")


def test_conflicting_content_lengths(server: HostileServer) -> None:
    reply = raw(head(200, [("Content-Length", "2"), ("Content-Length", "3")]) + b"abc")
    refused(server, reply, says="2 different Content-Length headers")


def test_content_length_far_above_the_cap_is_refused_before_the_body(
    server: HostileServer,
) -> None:
    reply = endless(head(200, [("Content-Length", "9" * 40)]), b"A" * 65536)
    refused(server, reply, LengthError, says=f"is {'9' * 40} bytes")


def test_superscript_digit_in_content_range(server: HostileServer) -> None:
    reply = raw(head(206, [("Content-Range", "bytes 0-1/²"), ("Content-Length", "2")]) + b"ab")
    refused(server, reply, says="Content-Range")


@pytest.mark.parametrize("value", ["bytes 0-1/١٢", "bytes 0-١/2", "bytes ０-1/2"])
def test_non_ascii_digits_in_content_range(server: HostileServer, value: str) -> None:
    reply = raw(head(206, [("Content-Range", value), ("Content-Length", "2")]) + b"ab")
    refused(server, reply, says="ASCII digits")


@pytest.mark.parametrize("value", ["bytes 5-9/10", "bytes */10", "items 0-1/2", ""])
def test_content_range_other_than_from_byte_zero(server: HostileServer, value: str) -> None:
    reply = raw(head(206, [("Content-Range", value), ("Content-Length", "5")]) + b"56789")
    refused(server, reply, says="answered 206 with Content-Range")


def test_content_range_total_above_the_cap(server: HostileServer) -> None:
    reply = raw(head(206, [("Content-Range", "bytes 0-999/5000000")]) + b"A" * 1000)
    refused(server, reply, LengthError, says="is 5000000 bytes")


def test_content_range_past_the_range_asked_for(server: HostileServer) -> None:
    reply = endless(head(206, [("Content-Range", "bytes 0-99999/*")]), b"A" * 65536)
    refused(server, reply, LengthError, says="is more than 1000 bytes")


def test_partial_content_of_an_object_that_fits_the_range(server: HostileServer) -> None:
    reply = raw(head(206, [("Content-Range", "bytes 0-4/10")]) + b"01234")
    refused(server, reply, says="sent bytes 0-4 of an object of 10 bytes")


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x01\x02\r\n\r\n", b"HTTP/1.1 abc X\r\n\r\n", b"SSH-2.0-OpenSSH\r\n", b"ok"],
)
def test_garbage_instead_of_an_http_answer(server: HostileServer, data: bytes) -> None:
    refused(server, raw(data))


def test_more_than_a_hundred_header_lines(server: HostileServer) -> None:
    reply = raw(head(200, [(f"X-{i}", "a") for i in range(101)]) + b"x")
    refused(server, reply, says="did not answer with valid HTTP")


def test_long_chunked_body_is_not_counted_as_head(server: HostileServer) -> None:
    body = b"".join(b"1\r\n" + bytes([65 + i % 26]) + b"\r\n" for i in range(30_000))
    server.route(
        "/s/app/x", raw(head(200, [("Transfer-Encoding", "chunked")]) + body + b"0\r\n\r\n")
    )
    assert len(fetcher_for(server).fetch("app/x", max_bytes=30_000)) == 30_000


def test_header_line_over_64_kib(server: HostileServer) -> None:
    refused(server, raw(head(200, [("X-Big", "a" * 70_000)])), says="over 65536 bytes")


@pytest.mark.parametrize("value", ["gzip", "gzip, chunked", "identity", "chunked, chunked"])
def test_transfer_encoding_other_than_chunked(server: HostileServer, value: str) -> None:
    refused(server, raw(head(200, [("Transfer-Encoding", value)]) + b"x"), says="Transfer-Encoding")


@pytest.mark.parametrize("value", ["br", "zstd", "gzip, gzip", "compress", "ééé"])
def test_content_encoding_other_than_gzip_or_deflate(server: HostileServer, value: str) -> None:
    refused(server, response(200, b"x", [("Content-Encoding", value)]), says="Content-Encoding")


@pytest.mark.parametrize(
    "body", [b"zz\r\nxx\r\n0\r\n\r\n", "١\r\nx\r\n0\r\n\r\n".encode(), b"5\r\nab", b"ffff\r\nab"]
)
def test_broken_chunked_framing(server: HostileServer, body: bytes) -> None:
    refused(server, raw(head(200, [("Transfer-Encoding", "chunked")]) + body))


@pytest.mark.parametrize("size", [b"-1", b"-10000", b"1_0", b"+10", b"0x10", b" ", b"\xd9\xa1"])
def test_loose_chunk_size_syntax(server: HostileServer, size: bytes) -> None:
    # int("-1", 16) is -1, and http.client then reads the rest of the stream into memory: an
    # endless stream after it took 2 GB in 4 s.
    reply = endless(head(200, [("Transfer-Encoding", "chunked")]) + size + b"\r\n", b"A" * 65536)
    tracemalloc.start()
    try:
        refused(server, reply, says="chunked framing is broken")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20


def test_chunk_size_line_over_4_kib(server: HostileServer) -> None:
    reply = raw(head(200, [("Transfer-Encoding", "chunked")]) + b"1;" + b"x" * 5000 + b"\r\n")
    refused(server, reply, says="did not answer with valid HTTP (LineTooLong)")


def test_chunk_extensions_are_ignored(server: HostileServer) -> None:
    body = b"5;name=value\r\nhello\r\n0\r\n\r\n"
    server.route("/s/app/x", raw(head(200, [("Transfer-Encoding", "chunked")]) + body))
    assert fetcher_for(server).fetch("app/x", max_bytes=5) == b"hello"


def test_endless_trailer_after_the_last_chunk(server: HostileServer) -> None:
    reply = endless(head(200, [("Transfer-Encoding", "chunked")]) + b"1\r\na\r\n0\r\n", b"X: y\r\n")
    refused(server, reply, says="over 65536 bytes")


def test_body_shorter_than_its_content_length(server: HostileServer) -> None:
    reply = raw(head(200, [("Content-Length", "100")]) + b"x" * 10)
    refused(server, reply, says="ended after 10 of the 100 bytes it announced")


@pytest.mark.parametrize(
    "body",
    [b"this is not gzip at all", b"\x1f\x8b\x08\x00" + b"\xff" * 20],
    ids=["not-gzip", "corrupt"],
)
def test_corrupt_gzip_body(server: HostileServer, body: bytes) -> None:
    reply = response(200, body, [("Content-Encoding", "gzip")])
    refused(server, reply, says="compressed body that does not decode")


def test_truncated_or_padded_gzip_body(server: HostileServer) -> None:
    whole = gzip.compress(OBJECT)
    for body in (whole[:-6], whole + b"trailing"):
        reply = response(200, body, [("Content-Encoding", "gzip")])
        refused(server, reply, says="truncated or has trailing bytes")


# --- redirects --------------------------------------------------------------------------------
def redirect(location: str | bytes, *extra: tuple[str, str | bytes]) -> Callable[..., None]:
    return raw(head(302, [("Location", location), ("Content-Length", "0"), *extra]))


@pytest.mark.parametrize(
    "location",
    [b"/s/app/\xff\xfe", b"/s/app/\x00y", b"/s/app/a b", b"/s/\x7fx", "/s/é".encode(), b"/s/\x1bz"],
)
def test_bad_bytes_in_location(server: HostileServer, location: bytes) -> None:
    refused(server, redirect(location), says="unreadable Location")


@pytest.mark.parametrize(
    "location",
    [
        "http://[::1/x",
        "http://[zz]/x",
        "http://[::1]:99999/x",
        "http://[127.0.0.1]/x",
        "http://a]/x",
        "http://127.0.0.1:80:80/x",
        "http://:80/x",
        "http://127.0.0.1:-1/x",
    ],
)
def test_malformed_ipv6_host_or_port_in_location(server: HostileServer, location: str) -> None:
    refused(server, redirect(location), says="not a valid URL")


def test_huge_location(server: HostileServer) -> None:
    refused(server, redirect("/s/" + "a" * 60_000), says="unreadable Location (60003 characters)")


def test_redirect_without_location(server: HostileServer) -> None:
    refused(server, response(301), says="0 different Location headers")


def test_redirect_with_conflicting_locations(server: HostileServer) -> None:
    refused(server, redirect("/s/a", ("Location", "/s/b")), says="2 different Location headers")


def test_redirect_to_another_port_is_never_followed(server: HostileServer) -> None:
    with HostileServer(default=ok()) as elsewhere:
        error = refused(server, redirect(f"{elsewhere.url}/s/app/x"), says="another origin")
        assert elsewhere.requests == []
    assert f"redirects only within {server.url}" in error.diagnostics()


@pytest.mark.parametrize(
    "target", ["http://localhost:{port}/s/app/y", "https://127.0.0.1:{port}/s/app/y"]
)
def test_redirect_to_another_host_or_scheme(server: HostileServer, target: str) -> None:
    server.route("/s/app/y", ok())
    refused(server, redirect(target.format(port=server.port)), says="another origin")
    assert [r.path for r in server.requests] == ["/s/app/x"]


def test_redirect_from_https_to_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    context, cert = self_signed_tls(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with HostileServer(tls=context) as secure:
        plain_url = secure.url.replace("https://", "http://")
        secure.route("/s/app/x", redirect(f"{plain_url}/s/app/y"))
        secure.route("/s/app/z", ok())
        fetcher = fetcher_for(secure)
        assert fetcher.fetch("app/z", max_bytes=100) == OBJECT  # TLS itself works
        with pytest.raises(StoreError) as caught:
            fetcher.fetch("app/x", max_bytes=100)
    assert f"redirected to {plain_url}, another origin" in caught.value.diagnostics()


def test_redirect_loop_stops_after_three_hops(server: HostileServer) -> None:
    refused(server, redirect("/s/app/x"), says="redirected more than 3 times")
    assert len(server.requests) == 1 + 3


def test_three_same_origin_redirects_are_followed(server: HostileServer) -> None:
    server.route("/s/app/x", redirect("/s/app/1"))  # absolute path
    server.route("/s/app/1", redirect("2"))  # relative
    server.route("/s/app/2", redirect(f"{server.url}/s/app/3?token=t"))  # absolute URL
    server.route("/s/app/3", ok())
    assert fetcher_for(server).fetch("app/x", max_bytes=100) == OBJECT
    assert [r.target for r in server.requests] == [
        "/s/app/x",
        "/s/app/1",
        "/s/app/2",
        "/s/app/3?token=t",
    ]
    assert all(r.headers["range"] == "bytes=0-100" for r in server.requests)


@pytest.mark.parametrize(
    "body",
    [
        endless(head(302, [("Location", "/s/app/y"), ("Content-Length", "9" * 30)]), b"A" * 65536),
        raw(head(302, [("Location", "/s/app/y"), ("Content-Length", "²")])),
        raw(
            head(302, [("Location", "/s/app/y"), ("Content-Encoding", "gzip")])
            + b"\x1f\x8b broken gzip"
        ),
        raw(head(302, [("Location", "/s/app/y"), ("Transfer-Encoding", "chunked")]) + b"zz\r\n"),
        gzip_bomb(64 << 20, status=302, headers=[("Location", "/s/app/y")]),
        drip(head(302, [("Location", "/s/app/y")]) + b"x" * 100, interval=0.5, step=50),
    ],
    ids=["huge-length", "bad-length", "broken-gzip", "broken-chunked", "gzip-bomb", "drip"],
)
def test_redirect_body_is_never_read(server: HostileServer, body: Callable[..., None]) -> None:
    server.route("/s/app/x", body)
    server.route("/s/app/y", ok())
    started = time.monotonic()
    assert fetcher_for(server).fetch("app/x", max_bytes=100) == OBJECT
    assert time.monotonic() - started < 1


# --- time ---------------------------------------------------------------------------------------
def test_dripping_body_fails_within_the_deadline(server: HostileServer) -> None:
    reply = drip(head(200, [("Content-Length", "500")]) + b"x" * 500, interval=0.2)
    refused(server, reply, says=f"did not finish within {DEADLINE:.0f} s")


def test_dripping_headers_fail_within_the_deadline(server: HostileServer) -> None:
    refused(server, drip(head(200, [("X-Slow", "s" * 500)]), interval=0.2), says="did not finish")


def test_dripping_body_without_length_fails_instead_of_ending_short(
    server: HostileServer,
) -> None:
    # The deadline closes the socket; a reader that took that end-of-stream for the end of the
    # body would return a truncated object as if it were whole.
    refused(server, drip(head(200, []) + b"x" * 500, interval=0.2), says="did not finish")


def test_endless_100_continue_fails_within_the_deadline(server: HostileServer) -> None:
    reply = endless(b"", b"HTTP/1.1 100 Continue\r\n\r\n", pause=0.01)
    refused(server, reply, says="did not finish")


def test_dripping_tls_handshake_fails_within_the_deadline(server: HostileServer) -> None:
    # A TLS record header announcing a long handshake message, then a byte every 0.2 s.
    with HostileServer(on_connect=drip(b"\x16\x03\x03\x40\x00" + bytes(400), interval=0.2)) as tls:
        started = time.monotonic()
        fetcher = fetcher_for(tls)
        https = HttpFetcher(
            fetcher.describe().replace("http://", "https://"),
            timeout=(DEADLINE, DEADLINE),
            deadline=DEADLINE,
            min_rate=1e12,
        )
        with pytest.raises(StoreError) as caught:
            https.fetch("app/x", max_bytes=100)
        assert time.monotonic() - started < DEADLINE + SLACK
    assert "did not finish within 2 s" in caught.value.diagnostics()
    assert server.requests == []


def test_deadline_covers_the_whole_redirect_chain(server: HostileServer) -> None:
    # Each hop answers well within a per-read timeout; together they outlast the deadline.
    for hop in range(3):
        slow = drip(head(302, [("Location", f"/s/app/{hop + 1}")]), interval=0.1, step=8)
        server.route("/s/app/x" if hop == 0 else f"/s/app/{hop}", slow)
    last = head(200, [("Content-Length", "100")]) + b"x" * 100
    server.route("/s/app/3", drip(last, interval=0.1, step=8))
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        fetcher_for(server).fetch("app/x", max_bytes=100)
    assert DEADLINE - 0.1 < time.monotonic() - started < DEADLINE + SLACK
    assert "did not finish within 2 s" in caught.value.diagnostics()


def test_deadline_grows_with_the_cap_even_past_the_timer_limit(server: HostileServer) -> None:
    # 2^53 - 1 bytes at 128 KiB/s is past threading.TIMEOUT_MAX: the timer must still run.
    reply = drip(head(200, [("Content-Length", "10")]) + b"x" * 10, interval=0.3, step=8)
    server.route("/s/app/x", reply)
    fetcher = HttpFetcher(f"{server.url}/s", timeout=(1.0, 1.0), deadline=1.0, min_rate=1.0)
    started = time.monotonic()
    assert fetcher.fetch("app/x", max_bytes=10) == b"x" * 10  # 1 s + 10 s for 10 bytes
    assert time.monotonic() - started > 1.0
    huge = HttpFetcher(f"{server.url}/s", timeout=(1.0, 1.0))
    assert huge.time_limit(2**53 - 1) > threading.TIMEOUT_MAX
    server.route("/s/app/y", response(200, OBJECT))
    assert huge.fetch("app/y", max_bytes=2**53 - 1) == OBJECT


def test_default_deadline_is_sixty_seconds_plus_the_cap_at_128_kib_per_second() -> None:
    fetcher = HttpFetcher("http://127.0.0.1:9/s")
    assert fetcher.time_limit(0) == 60.0
    assert fetcher.time_limit(512 * 1024) == 64.0  # metadata, SPEC §3.1
    assert fetcher.time_limit(128 * 1024 * 600) == 660.0  # a 75 MiB bundle


# --- memory -------------------------------------------------------------------------------------
def test_endless_body_without_length_is_cut_at_the_cap(server: HostileServer) -> None:
    refused(server, endless(head(200, []), b"A" * 65536), LengthError, max_bytes=200_000)


def test_endless_chunked_stream_is_cut_at_the_cap(server: HostileServer) -> None:
    refused(server, endless_chunked(), LengthError, max_bytes=200_000, says="more than 200000")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_bomb_is_cut_at_the_cap_in_bounded_memory(
    server: HostileServer, encoding: str
) -> None:
    cap = 64 << 20
    server.route("/s/app/x", gzip_bomb(256 << 20, encoding=encoding))  # 256 KiB on the wire
    fetcher = fetcher_for(server, deadline=30.0)
    sizes: list[int] = []

    def drain() -> None:
        sizes.extend(len(chunk) for chunk in fetcher.stream("app/x", max_bytes=cap))

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    try:
        with pytest.raises(LengthError):
            drain()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert rss_growth < 64 * 1024, f"the process's peak RSS grew by {rss_growth} KiB"
    largest = max(sizes)
    assert sum(sizes) == cap
    assert largest <= 64 * 1024
    assert peak < 4 << 20, f"peak {peak} bytes while inflating a bomb under a 64 MiB cap"


def test_huge_and_many_headers_stay_in_bounded_memory(server: HostileServer) -> None:
    # 90 lines of 60 KB pass http.client's own limits (100 lines of 64 KiB) and its parser
    # copies them about eight times over (~45 MB); the fetcher stops the head at 64 KiB.
    headers = [(f"X-{i}", "h" * 60_000) for i in range(90)]
    server.route("/s/app/x", raw(head(200, [*headers, ("Content-Length", "16")]) + OBJECT))
    tracemalloc.start()
    try:
        with pytest.raises(StoreError) as caught:
            fetcher_for(server).fetch("app/x", max_bytes=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (
        "status and header lines (head or trailer) over 65536 bytes" in caught.value.diagnostics()
    )
    assert peak < 2 << 20


def test_head_just_under_64_kib_is_read(server: HostileServer) -> None:
    headers = [(f"X-{i}", "h" * 1000) for i in range(60)]  # ~60 KB
    server.route("/s/app/x", raw(head(200, [*headers, ("Content-Length", "16")]) + OBJECT))
    assert fetcher_for(server).fetch("app/x", max_bytes=100) == OBJECT


def test_flood_of_interim_100_heads_is_cut_at_64_kib(server: HostileServer) -> None:
    reply = endless(b"", b"HTTP/1.1 100 Continue\r\n\r\n")
    refused(server, reply, says="over 65536 bytes")


# --- through the device and the CLI -------------------------------------------------------------
def store_routes(repo: Repository, server: HostileServer) -> None:
    """Serve every object of ``repo``'s folder store honestly, under ``/s``."""
    for path in repo.store.root.rglob("*"):
        if path.is_file():
            key = path.relative_to(repo.store.root).as_posix()
            server.route(f"/s/{key}", ok(path.read_bytes()))


def test_hostile_bundle_server_leaves_the_device_untouched(
    repo: Repository, server: HostileServer, tmp_path: Path
) -> None:
    release = repo.publish(label="1.0.0")
    store_routes(repo, server)
    server.route(f"/s/{bundle_key(repo.app, release.sha256)}", endless_chunked())
    home = tmp_path / "device"
    with pytest.raises(LengthError):
        client.check_for_update(
            fetcher_for(server),
            app=repo.app,
            channel="beta",
            state_dir=home / "state",
            decryption_key=repo.keys.decryption,
            install_id="install-0",
            out_dir=home / "www",
            now=repo.now,
            initial_root=repo.root_bytes,
        )
    assert sorted(p.name for p in home.rglob("*")) in ([], ["state"])
    assert not (home / "state" / client.STATE_FILE).exists()


def test_oversize_manifest_from_a_hostile_server_is_a_metadata_error(
    repo: Repository, server: HostileServer, tmp_path: Path
) -> None:
    repo.publish(label="1.0.0")
    store_routes(repo, server)
    big = raw(head(200, [("Content-Length", str(512 * 1024 + 1))]) + b"{" * 1000)
    server.route(f"/s/{pointer_key(repo.app, 'beta')}", big)
    with pytest.raises(OversizeMetadataError):
        client.check_for_update(
            fetcher_for(server),
            app=repo.app,
            channel="beta",
            state_dir=tmp_path / "state",
            decryption_key=repo.keys.decryption,
            install_id="install-0",
            out_dir=tmp_path / "www",
            now=repo.now,
            initial_root=repo.root_bytes,
        )


@pytest.mark.parametrize(
    ("attack", "code", "error"),
    [
        ("superscript-content-length", 5, "StoreError"),
        ("ipv6-location", 5, "StoreError"),
        ("oversize-manifest", 3, "OversizeMetadataError"),
        ("endless-bundle", 4, "LengthError"),
        ("gzip-bomb-bundle", 4, "LengthError"),
        ("missing-manifest", 5, "NotFoundError"),
    ],
)
def test_otaseal_fetch_exits_with_the_documented_code(  # noqa: PLR0917
    repo: Repository, server: HostileServer, tmp_path: Path, attack: str, code: int, error: str
) -> None:
    release = repo.publish(label="1.0.0")
    store_routes(repo, server)
    manifest = f"/s/{pointer_key(repo.app, 'beta')}"
    bundle = f"/s/{bundle_key(repo.app, release.sha256)}"
    replies = {
        "superscript-content-length": (manifest, raw(head(200, [("Content-Length", "²")]))),
        "ipv6-location": (manifest, redirect("http://[::1/x")),
        "oversize-manifest": (manifest, raw(head(200, [("Content-Length", "9" * 30)]))),
        "endless-bundle": (bundle, endless_chunked()),
        "gzip-bomb-bundle": (bundle, gzip_bomb(64 << 20)),
        "missing-manifest": (manifest, response(404)),
    }
    path, reply = replies[attack]
    server.route(path, reply)
    (tmp_path / "root.json").write_bytes(repo.root_bytes)
    (tmp_path / "app.pem").write_bytes(repo.keys.decryption.to_pem())
    out = tmp_path / "www"
    result = otaseal(
        "fetch",
        "--json",
        "--base-url",
        f"{server.url}/s",
        "--app",
        repo.app,
        "--channel",
        "beta",
        "--root",
        str(tmp_path / "root.json"),
        "--decryption-key",
        str(tmp_path / "app.pem"),
        "--state",
        str(tmp_path / "state"),
        "--out",
        str(out),
        "--install-id",
        "install-0",
        "--now",
        repo.now.isoformat(),
    )
    assert result.returncode == code, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    assert doc["error"]["type"] == error, doc
    assert not out.exists()
    assert not (tmp_path / "state" / client.STATE_FILE).exists()


def otaseal(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m otaseal ARGS``, as a device's operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "otaseal", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
