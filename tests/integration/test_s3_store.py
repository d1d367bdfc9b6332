"""S3Store against a moto server (bulk) and SeaweedFS (real SigV4 smoke test), over loopback."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
import tracemalloc
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from otaseal.errors import ConflictError, InputError, LengthError, NotFoundError, StoreError
from otaseal.store import bundle_key, manifest_key, pointer_key, root_key
from otaseal.store.s3 import CACHE_IMMUTABLE, CACHE_MUTABLE, S3Store, is_s3_url

if TYPE_CHECKING:
    from pathlib import Path

    from servers import Server

MiB = 1024 * 1024
POINTER = pointer_key("app", "beta")
PREFIX = "otaseal"


@pytest.fixture
def store(moto: Server, moto_bucket: str) -> S3Store:
    return S3Store(f"s3://{moto_bucket}/{PREFIX}", endpoint_url=moto.url)


def recorder(client: Any, event: str) -> list[Any]:
    """Collect the botocore request (or params) of every ``event`` on ``client``."""
    seen: list[Any] = []

    def hook(**kwargs: Any) -> None:
        seen.append(kwargs.get("request") or kwargs.get("params"))

    client.meta.events.register(event, hook)
    return seen


# --- URLs -----------------------------------------------------------------------------------
def test_is_s3_url() -> None:
    assert is_s3_url("s3://bucket")
    assert is_s3_url("s3://bucket/some/prefix")
    assert not is_s3_url("s3://")
    assert not is_s3_url("./store")
    assert not is_s3_url("https://bucket.s3.amazonaws.com/x")


@pytest.mark.parametrize(
    "url", ["./folder", "s3://", "s3://key:secret@bucket/p", "s3://bucket/p?token=x", "s3://b:9000"]
)
def test_malformed_store_url_is_an_input_error_without_secrets(url: str) -> None:
    with pytest.raises(InputError) as caught:
        S3Store(url)
    assert "secret" not in caught.value.diagnostics()
    assert "token=x" not in caught.value.diagnostics()


def test_endpoint_must_be_http() -> None:
    with pytest.raises(InputError):
        S3Store("s3://bucket", endpoint_url="ftp://127.0.0.1:9")


def test_describe_names_bucket_and_prefix_only(moto: Server) -> None:
    assert S3Store("s3://bkt/a/b/", endpoint_url=moto.url).describe() == "s3://bkt/a/b"
    assert S3Store("s3://bkt", endpoint_url=moto.url).describe() == "s3://bkt"


def test_keys_must_be_relative(store: S3Store) -> None:
    with pytest.raises(InputError):
        store.create("/abs/key", b"x")
    with pytest.raises(InputError):
        store.read("")


# --- create-only ----------------------------------------------------------------------------
def test_second_create_returns_false_and_keeps_the_first(
    store: S3Store, moto_s3: Any, moto_bucket: str
) -> None:
    key = manifest_key("app", "beta", 7)
    assert store.create(key, b"first") is True
    assert store.create(key, b"second") is False
    assert store.read(key)[0] == b"first"
    # keys live under the store prefix
    assert moto_s3.get_object(Bucket=moto_bucket, Key=f"{PREFIX}/{key}")["Body"].read() == b"first"


def test_create_sends_if_none_match(moto: Server, moto_bucket: str, moto_s3: Any) -> None:
    seen = recorder(moto_s3, "before-send.s3.PutObject")
    mine = S3Store(f"s3://{moto_bucket}", endpoint_url=moto.url, client=moto_s3)
    mine.create("app/x.json", b"{}")
    assert seen[0].headers["If-None-Match"] == b"*"


def test_conditional_request_conflict_409_counts_as_lost(make_s3_client: Any, moto: Server) -> None:
    client = make_s3_client(moto)
    store = S3Store("s3://bkt", endpoint_url=moto.url, client=client)
    with Stubber(client) as stub:
        stub.add_client_error(
            "put_object", service_error_code="ConditionalRequestConflict", http_status_code=409
        )
        assert store.create("app/x.json", b"{}") is False


@pytest.mark.parametrize(
    ("key", "cache", "ctype"),
    [
        (bundle_key("app", "ab" * 32), CACHE_IMMUTABLE, "application/octet-stream"),
        ("app/bundles/" + "cd" * 32 + ".capgo.zip", CACHE_IMMUTABLE, "application/zip"),
        (root_key("app", 3), CACHE_IMMUTABLE, "application/json"),
        (manifest_key("app", "beta", 12), CACHE_IMMUTABLE, "application/json"),
        ("app/stats/daily.json", CACHE_MUTABLE, "application/json"),
    ],
)
def test_objects_carry_cache_headers_for_cdns(  # noqa: PLR0917
    store: S3Store, moto_s3: Any, moto_bucket: str, key: str, cache: str, ctype: str
) -> None:
    assert store.create(key, b"data")
    head = moto_s3.head_object(Bucket=moto_bucket, Key=f"{PREFIX}/{key}")
    assert head["CacheControl"] == cache
    assert head["ContentType"] == ctype


def test_pointer_is_never_cached_as_immutable(
    store: S3Store, moto_s3: Any, moto_bucket: str
) -> None:
    store.replace(POINTER, b"{}", etag=None)
    head = moto_s3.head_object(Bucket=moto_bucket, Key=f"{PREFIX}/{POINTER}")
    assert head["CacheControl"] == CACHE_MUTABLE
    assert head["ContentType"] == "application/json"


# --- compare-and-swap -----------------------------------------------------------------------
def test_replace_is_compare_and_swap(store: S3Store) -> None:
    first = store.replace(POINTER, b"v1", etag=None)
    data, etag = store.read(POINTER)
    assert (data, etag) == (b"v1", first)
    second = store.replace(POINTER, b"v2", etag=first)
    assert second != first
    assert store.read(POINTER) == (b"v2", second)


def test_replace_with_stale_etag_loses_and_changes_nothing(store: S3Store) -> None:
    stale = store.replace(POINTER, b"v1", etag=None)
    store.replace(POINTER, b"v2", etag=stale)
    with pytest.raises(ConflictError) as caught:
        store.replace(POINTER, b"v3-lost", etag=stale)
    assert "another publisher" in caught.value.diagnostics()
    assert store.read(POINTER)[0] == b"v2"


def test_replace_expecting_absent_loses_when_present(store: S3Store) -> None:
    store.replace(POINTER, b"v1", etag=None)
    with pytest.raises(ConflictError):
        store.replace(POINTER, b"other", etag=None)
    assert store.read(POINTER)[0] == b"v1"


def test_replace_of_a_deleted_pointer_loses(store: S3Store) -> None:
    """AWS and moto answer 404 to If-Match on a missing key: someone else won."""
    with pytest.raises(ConflictError):
        store.replace(POINTER, b"v1", etag='"0123456789abcdef0123456789abcdef"')
    assert not store.exists(POINTER)


def test_concurrent_publishers_exactly_one_wins(store: S3Store) -> None:
    base = store.replace(POINTER, b"v0", etag=None)
    winners: list[int] = []
    losers: list[int] = []

    def publish(n: int) -> None:
        try:
            store.replace(POINTER, f"v1-{n}".encode(), etag=base)
            winners.append(n)
        except ConflictError:
            losers.append(n)

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert len(losers) == 5
    assert store.read(POINTER)[0] == f"v1-{winners[0]}".encode()


# --- big uploads ----------------------------------------------------------------------------
@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.cub"
    with path.open("wb") as out:
        for _ in range(40):
            out.write(os.urandom(MiB))
    return path


def test_large_bundle_is_uploaded_in_parts_with_flat_memory(
    store: S3Store, big_file: Path, moto_s3: Any, moto_bucket: str
) -> None:
    key = bundle_key("app", "ee" * 32)
    assert not store.exists(key)  # loads the client (and its service model) first
    tracemalloc.start()
    try:
        assert store.create_from_file(key, big_file) is True
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * MiB, peak  # one 16 MiB part in flight, never the 40 MiB file

    head = moto_s3.head_object(Bucket=moto_bucket, Key=f"{PREFIX}/{key}")
    assert head["ETag"].strip('"').endswith("-3")  # 16 + 16 + 8 MiB
    assert head["CacheControl"] == CACHE_IMMUTABLE
    assert head["ContentType"] == "application/octet-stream"
    digest = hashlib.sha256()
    for chunk in store.stream(key, max_bytes=40 * MiB):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(big_file.read_bytes()).hexdigest()


def test_reupload_of_existing_bundle_sends_no_parts(
    moto: Server, moto_bucket: str, make_s3_client: Any, tmp_path: Path
) -> None:
    client = make_s3_client(moto)
    store = S3Store(f"s3://{moto_bucket}", endpoint_url=moto.url, client=client, part_size=5 * MiB)
    path = tmp_path / "b.cub"
    path.write_bytes(os.urandom(11 * MiB))
    key = bundle_key("app", "aa" * 32)
    assert store.create_from_file(key, path) is True
    parts = recorder(client, "before-call.s3.UploadPart")
    assert store.create_from_file(key, path) is False
    assert parts == []


def test_multipart_that_loses_the_race_returns_false_and_aborts(
    moto: Server, moto_bucket: str, make_s3_client: Any, moto_s3: Any, tmp_path: Path
) -> None:
    client = make_s3_client(moto)
    store = S3Store(f"s3://{moto_bucket}", endpoint_url=moto.url, client=client, part_size=5 * MiB)
    rival = S3Store(f"s3://{moto_bucket}", endpoint_url=moto.url)
    key = bundle_key("app", "bb" * 32)
    path = tmp_path / "b.cub"
    path.write_bytes(os.urandom(11 * MiB))

    def rival_finishes_first(**_: Any) -> None:
        rival.create(key, b"rival")

    client.meta.events.register_first(
        "before-call.s3.CompleteMultipartUpload", rival_finishes_first
    )
    assert store.create_from_file(key, path) is False
    assert store.read(key)[0] == b"rival"
    assert "Uploads" not in moto_s3.list_multipart_uploads(Bucket=moto_bucket)


def test_failed_multipart_upload_is_aborted(
    moto: Server, moto_bucket: str, make_s3_client: Any, moto_s3: Any, tmp_path: Path
) -> None:
    client = make_s3_client(moto)
    store = S3Store(f"s3://{moto_bucket}", endpoint_url=moto.url, client=client, part_size=5 * MiB)
    path = tmp_path / "b.cub"
    path.write_bytes(os.urandom(11 * MiB))
    calls = recorder(client, "before-call.s3.UploadPart")

    def network_drops_on_part_two(**_: Any) -> None:
        if len(calls) == 2:
            raise EndpointConnectionError(endpoint_url=moto.url)

    client.meta.events.register("before-call.s3.UploadPart", network_drops_on_part_two)
    with pytest.raises(StoreError) as caught:
        store.create_from_file(bundle_key("app", "cc" * 32), path)
    assert "cannot reach" in caught.value.diagnostics()
    assert "Uploads" not in moto_s3.list_multipart_uploads(Bucket=moto_bucket)
    assert store.list("app/") == []


def test_small_file_is_one_put(store: S3Store, tmp_path: Path) -> None:
    path = tmp_path / "small.cub"
    path.write_bytes(b"small")
    key = bundle_key("app", "dd" * 32)
    assert store.create_from_file(key, path) is True
    assert store.create_from_file(key, path) is False
    assert store.fetch(key, max_bytes=5) == b"small"


def test_missing_local_file_is_an_input_error(store: S3Store, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        store.create_from_file("app/bundles/x.cub", tmp_path / "missing.cub")


# --- reads and caps -------------------------------------------------------------------------
def test_read_exists_and_missing(store: S3Store) -> None:
    assert not store.exists("app/x.json")
    with pytest.raises(NotFoundError):
        store.read("app/x.json")
    with pytest.raises(NotFoundError):
        store.fetch("app/x.json", max_bytes=10)
    store.create("app/x.json", b"{}")
    assert store.exists("app/x.json")
    data, etag = store.read("app/x.json")
    assert data == b"{}"
    assert etag.startswith('"')


def test_oversize_object_is_refused_after_one_bounded_range(
    moto: Server, moto_bucket: str, make_s3_client: Any
) -> None:
    client = make_s3_client(moto)
    store = S3Store(f"s3://{moto_bucket}", endpoint_url=moto.url, client=client)
    store.create("app/big.json", b"x" * 100_000)
    requests = recorder(client, "before-send.s3.GetObject")
    lengths: list[int] = []
    client.meta.events.register(
        "after-call.s3.GetObject",
        lambda parsed, **_: lengths.append(parsed["ContentLength"]),
    )
    with pytest.raises(LengthError) as caught:
        store.fetch("app/big.json", max_bytes=1000)
    assert "100000 bytes" in caught.value.diagnostics()
    assert requests[0].headers["Range"] == b"bytes=0-1000"
    assert lengths == [1001]  # never the 100 kB object


def test_fetch_at_exactly_the_cap_succeeds(store: S3Store) -> None:
    store.create("app/m.json", b"y" * 1000)
    assert store.fetch("app/m.json", max_bytes=1000) == b"y" * 1000
    assert b"".join(store.stream("app/m.json", max_bytes=5000)) == b"y" * 1000


def test_empty_object_fetches_as_empty(store: S3Store) -> None:
    store.create("app/empty.json", b"")
    assert store.fetch("app/empty.json", max_bytes=10) == b""


def _stubbed_get(moto: Server, make_s3_client: Any, body: bytes, **response: Any) -> Any:
    client = make_s3_client(moto)
    stub = Stubber(client)
    stub.add_response(
        "get_object", {"Body": StreamingBody(io.BytesIO(body), len(body)), **response}
    )
    stub.activate()
    return client


def test_server_ignoring_range_cannot_push_more_than_the_cap(
    moto: Server, make_s3_client: Any
) -> None:
    # No Content-Range and no length: the cap is enforced while reading.
    client = _stubbed_get(moto, make_s3_client, b"z" * 5000)
    store = S3Store("s3://bkt", endpoint_url=moto.url, client=client)
    with pytest.raises(LengthError) as caught:
        store.fetch("app/x.cub", max_bytes=100)
    assert "more than 100 bytes" in caught.value.diagnostics()


def test_server_ignoring_range_with_length_is_refused_before_reading(
    moto: Server, make_s3_client: Any
) -> None:
    client = _stubbed_get(moto, make_s3_client, b"z" * 5000, ContentLength=5000)
    store = S3Store("s3://bkt", endpoint_url=moto.url, client=client)
    with pytest.raises(LengthError):
        next(store.stream("app/x.cub", max_bytes=100))


def test_unparsable_content_range_falls_back_to_counting(moto: Server, make_s3_client: Any) -> None:
    client = _stubbed_get(moto, make_s3_client, b"z" * 50, ContentRange="bytes 0-49/*")
    store = S3Store("s3://bkt", endpoint_url=moto.url, client=client)
    assert store.fetch("app/x.cub", max_bytes=100) == b"z" * 50


# --- listing --------------------------------------------------------------------------------
def test_list_pages_through_and_returns_sorted_relative_keys(
    moto: Server, moto_bucket: str, make_s3_client: Any
) -> None:
    client = make_s3_client(moto)
    store = S3Store(
        f"s3://{moto_bucket}/{PREFIX}", endpoint_url=moto.url, client=client, page_size=2
    )
    other = S3Store(f"s3://{moto_bucket}/{PREFIX}-other", endpoint_url=moto.url)
    keys = [manifest_key("app", "beta", n) for n in (3, 1, 2, 5, 4)]
    for key in keys:
        store.create(key, b"{}")
    store.replace(POINTER, b"{}", etag=None)
    other.create(manifest_key("app", "beta", 9), b"{}")
    store.create("app2/channels/beta/1.json", b"{}")
    pages = recorder(client, "before-call.s3.ListObjectsV2")

    listed = store.list("app/channels/beta/")
    assert listed == sorted([*keys, POINTER])
    assert len(pages) == 3  # 6 keys, 2 per page
    assert store.list("app/bundles/") == []
    assert store.list("") == sorted([*keys, POINTER, "app2/channels/beta/1.json"])
    assert S3Store(f"s3://{moto_bucket}", endpoint_url=moto.url).list(f"{PREFIX}-other/") == [
        f"{PREFIX}-other/{manifest_key('app', 'beta', 9)}"
    ]


# --- errors people see ----------------------------------------------------------------------
def test_missing_bucket_says_create_it(moto: Server) -> None:
    store = S3Store("s3://no-such-bucket-here/p", endpoint_url=moto.url)
    with pytest.raises(StoreError) as caught:
        store.create("app/x.json", b"{}")
    assert not isinstance(caught.value, NotFoundError)
    text = caught.value.diagnostics()
    assert "bucket no-such-bucket-here does not exist" in text
    assert "Create it or fix --store" in text


def test_unreachable_endpoint_fails_fast_naming_it() -> None:
    from servers import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    store = S3Store("s3://bkt/p", endpoint_url=endpoint)
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        store.read("app/x.json")
    assert time.monotonic() - started < 15
    assert endpoint in caught.value.diagnostics()
    assert "cannot reach" in caught.value.diagnostics()


def test_no_credentials_is_explained(moto: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError) as caught:
        S3Store("s3://bkt", endpoint_url=moto.url).exists("app/x.json")
    assert "no usable AWS credentials" in caught.value.diagnostics()


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDenied", 403, "refused the credentials (AccessDenied)"),
        ("ExpiredToken", 400, "refused the credentials (ExpiredToken)"),
        ("AuthorizationHeaderMalformed", 400, "Set AWS_REGION"),
        ("InvalidArgument", 400, "answered InvalidArgument (HTTP 400)"),
        ("NotImplemented", 501, "enable the store's lock mode"),
    ],
)
def test_refusals_are_translated(
    moto: Server, make_s3_client: Any, code: str, status: int, expected: str
) -> None:
    client = make_s3_client(moto)
    store = S3Store("s3://bkt/p", endpoint_url=moto.url, client=client)
    with Stubber(client) as stub:
        stub.add_client_error("put_object", service_error_code=code, http_status_code=status)
        with pytest.raises(StoreError) as caught:
            store.replace(POINTER, b"{}", etag=None)
    assert not isinstance(caught.value, ConflictError)
    assert expected in caught.value.diagnostics()
    assert "s3://bkt/p/app/channels/beta/manifest.json" in caught.value.diagnostics()


def test_other_client_failures_are_store_errors(moto: Server, make_s3_client: Any) -> None:
    from botocore.exceptions import ParamValidationError

    client = make_s3_client(moto)
    store = S3Store("s3://bkt/p", endpoint_url=moto.url, client=client)

    def invalid(**_: Any) -> None:
        raise ParamValidationError(report="bad")

    client.meta.events.register("before-call.s3.HeadObject", invalid)
    with pytest.raises(StoreError) as caught:
        store.exists("app/x.json")
    assert "ParamValidationError" in caught.value.diagnostics()


def test_the_default_aws_endpoint_is_named_without_contacting_it() -> None:
    store = S3Store("s3://bkt/p")
    error = store._core_error(EndpointConnectionError(endpoint_url="x"), "read", "k")
    assert "cannot reach the S3 endpoint AWS S3" in error.diagnostics()


def test_endpoint_from_the_environment_is_used_and_named(
    moto: Server, moto_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto.url)
    store = S3Store(f"s3://{moto_bucket}")
    assert store.create("app/x.json", b"{}")
    assert store._s3.meta.config.s3 == {"addressing_style": "path"}
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", closed)
    with pytest.raises(StoreError, match=closed):
        S3Store(f"s3://{moto_bucket}").read("app/x.json")


def test_list_errors_are_translated(moto: Server) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        S3Store("s3://no-such-bucket-here", endpoint_url=moto.url).list("app/")


# --- lock mode ------------------------------------------------------------------------------
def _locked_store(moto: Server, bucket: str, client: Any = None, **kw: Any) -> S3Store:
    kw.setdefault("lock_settle", 0.05)
    return S3Store(
        f"s3://{bucket}/{PREFIX}", endpoint_url=moto.url, lock_mode=True, client=client, **kw
    )


def test_lock_mode_keeps_cas_semantics_without_conditional_headers(
    moto: Server, moto_bucket: str, make_s3_client: Any
) -> None:
    client = make_s3_client(moto)
    store = _locked_store(moto, moto_bucket, client)
    sent = recorder(client, "before-send.s3.PutObject")

    first = store.replace(POINTER, b"v1", etag=None)
    with pytest.raises(ConflictError):
        store.replace(POINTER, b"again", etag=None)
    second = store.replace(POINTER, b"v2", etag=first)
    with pytest.raises(ConflictError):
        store.replace(POINTER, b"stale", etag=first)
    with pytest.raises(ConflictError):
        store.replace(pointer_key("app", "other"), b"gone", etag=second)
    assert store.read(POINTER) == (b"v2", second)

    assert store.create(manifest_key("app", "beta", 1), b"m1") is True
    assert store.create(manifest_key("app", "beta", 1), b"m2") is False
    assert store.read(manifest_key("app", "beta", 1))[0] == b"m1"

    assert sent
    assert all("If-Match" not in r.headers and "If-None-Match" not in r.headers for r in sent)
    assert not store.exists("app/.lock")  # released
    assert ".lock" not in " ".join(store.list(""))


def test_lock_mode_concurrent_publishers_exactly_one_wins(moto: Server, moto_bucket: str) -> None:
    base = _locked_store(moto, moto_bucket).replace(POINTER, b"v0", etag=None)
    winners: list[int] = []
    losers: list[int] = []

    def publish(n: int) -> None:
        try:
            _locked_store(moto, moto_bucket).replace(POINTER, f"v1-{n}".encode(), etag=base)
            winners.append(n)
        except ConflictError:
            losers.append(n)

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(winners), len(losers)) == (1, 3)


def test_lock_held_by_a_live_publisher_times_out_naming_it(moto: Server, moto_bucket: str) -> None:
    plain = S3Store(f"s3://{moto_bucket}/{PREFIX}", endpoint_url=moto.url)
    plain.create(
        "app/.lock", json.dumps({"owner": "ci-runner-7", "expires": time.time() + 60}).encode()
    )
    store = _locked_store(moto, moto_bucket, lock_wait=0.3)
    with pytest.raises(StoreError) as caught:
        store.replace(POINTER, b"v1", etag=None)
    assert "held by ci-runner-7" in caught.value.diagnostics()
    assert not store.exists(POINTER)
    assert store.exists("app/.lock")  # someone else's lock is left alone


@pytest.mark.parametrize(
    "lock", [json.dumps({"owner": "crashed", "expires": 1.0}).encode(), b"not json"]
)
def test_expired_or_damaged_lock_is_taken_over(moto: Server, moto_bucket: str, lock: bytes) -> None:
    S3Store(f"s3://{moto_bucket}/{PREFIX}", endpoint_url=moto.url).create("app/.lock", lock)
    store = _locked_store(moto, moto_bucket)
    store.replace(POINTER, b"v1", etag=None)
    assert store.read(POINTER)[0] == b"v1"
    assert not store.exists("app/.lock")


def test_lock_lease_that_runs_out_refuses_to_write(moto: Server, moto_bucket: str) -> None:
    store = _locked_store(moto, moto_bucket, lock_lease=0.01, lock_settle=0.05)
    with pytest.raises(ConflictError, match="lease"):
        store.replace(POINTER, b"v1", etag=None)
    assert not store.exists(POINTER)


def test_lock_taken_over_while_held_is_not_deleted_by_us(
    moto: Server, moto_bucket: str, make_s3_client: Any
) -> None:
    client = make_s3_client(moto)
    store = _locked_store(moto, moto_bucket, client)
    plain = S3Store(f"s3://{moto_bucket}/{PREFIX}", endpoint_url=moto.url)
    usurper = json.dumps({"owner": "usurper", "expires": time.time() + 60}).encode()
    done: list[bool] = []

    def usurp(params: Any, **_: Any) -> None:
        if params["Key"].endswith(POINTER) and not done:
            done.append(True)
            plain._s3.put_object(Bucket=moto_bucket, Key=f"{PREFIX}/app/.lock", Body=usurper)

    client.meta.events.register("before-parameter-build.s3.PutObject", usurp)
    store.replace(POINTER, b"v1", etag=None)
    assert plain.read("app/.lock")[0] == usurper


def test_lock_mode_bundles_need_no_lock(
    moto: Server, moto_bucket: str, make_s3_client: Any, tmp_path: Path
) -> None:
    client = make_s3_client(moto)
    store = _locked_store(moto, moto_bucket, client, part_size=5 * MiB)
    locks = []
    client.meta.events.register(
        "before-parameter-build.s3.PutObject",
        lambda params, **_: (
            locks.append(params["Key"]) if params["Key"].endswith(".lock") else None
        ),
    )
    path = tmp_path / "b.cub"
    path.write_bytes(os.urandom(6 * MiB))
    key = bundle_key("app", "ef" * 32)
    assert store.create_from_file(key, path) is True
    assert store.create_from_file(key, path) is False
    assert store.create(bundle_key("app", "fe" * 32), b"x") is True
    assert locks == []


# --- SeaweedFS: a real S3 implementation with real SigV4 -------------------------------------
@pytest.mark.slow
def test_seaweedfs_conditional_writes_and_reads(
    seaweedfs_env: Server, seaweedfs_bucket: str, tmp_path: Path
) -> None:
    store = S3Store(
        f"s3://{seaweedfs_bucket}/{PREFIX}", endpoint_url=seaweedfs_env.url, part_size=5 * MiB
    )
    key = manifest_key("app", "beta", 1)
    assert store.create(key, b"m1") is True
    assert store.create(key, b"m2") is False
    assert store.read(key)[0] == b"m1"

    first = store.replace(POINTER, b"p1", etag=None)
    with pytest.raises(ConflictError):
        store.replace(POINTER, b"p-again", etag=None)
    second = store.replace(POINTER, b"p2", etag=first)
    with pytest.raises(ConflictError):
        store.replace(POINTER, b"stale", etag=first)
    # SeaweedFS answers 412 (not 404) for If-Match on a missing key: still a lost race.
    with pytest.raises(ConflictError):
        store.replace(pointer_key("app", "gone"), b"x", etag=second)

    store.create("app/big.json", b"x" * 10_000)
    with pytest.raises(LengthError):
        store.fetch("app/big.json", max_bytes=100)
    assert store.fetch(POINTER, max_bytes=100) == b"p2"

    path = tmp_path / "b.cub"
    path.write_bytes(os.urandom(11 * MiB))
    bundle = bundle_key("app", "ab" * 32)
    assert store.create_from_file(bundle, path) is True
    assert (
        hashlib.sha256(store.fetch(bundle, max_bytes=11 * MiB)).digest()
        == hashlib.sha256(path.read_bytes()).digest()
    )
    assert store.list("app/") == sorted(["app/big.json", bundle, key, POINTER])


@pytest.mark.slow
def test_seaweedfs_wrong_secret_is_refused_without_echoing_it(
    seaweedfs: Server, seaweedfs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.extra["access_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    store = S3Store(f"s3://{seaweedfs_bucket}", endpoint_url=seaweedfs.url)
    with pytest.raises(StoreError) as caught:
        store.create("app/x.json", b"{}")
    text = caught.value.diagnostics()
    with pytest.raises(StoreError, match="refused the credentials"):
        store.exists("app/x.json")
    assert "refused the credentials" in text
    assert "AWS_ACCESS_KEY_ID" in text
    assert "wrong-secret-value" not in text
    assert seaweedfs.extra["access_key"] not in text


def test_head_reads_only_the_first_bytes_by_one_ranged_get(store: S3Store) -> None:
    """``status`` and ``audit`` read a bundle's .cub header without its segments."""
    key = bundle_key("com.example.app", "ab" * 32)
    store.create(key, b"H" * 10 + b"S" * 4096)
    requests = recorder(store._s3, "before-send.s3.GetObject")
    assert store.head(key, length=10) == b"H" * 10
    assert [r.headers["Range"] for r in requests] == [b"bytes=0-9"]
    assert store.head(key, length=1 << 20) == b"H" * 10 + b"S" * 4096
    empty = bundle_key("com.example.app", "cd" * 32)
    store.create(empty, b"")
    assert store.head(empty, length=10) == b""
    with pytest.raises(NotFoundError):
        store.head(bundle_key("com.example.app", "ef" * 32), length=10)
