"""S3 and S3-compatible stores: create-only and compare-and-swap through conditional writes.

``If-None-Match: *`` makes every immutable object create-only and ``If-Match: <etag>`` turns the
pointer update into a compare-and-swap, so two publishers can never overwrite each other. A
service without conditional writes can opt into ``lock_mode``: a leased lock object per app that
is weaker (see ``docs/adr/0004-s3-conditional-writes.md``). boto3 is imported on first use only,
because the CLI should start fast when the store is a folder.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import socket
import time
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from otaseal.errors import ConflictError, InputError, LengthError, NotFoundError, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

#: Multipart part size: memory use of an upload stays near one part.
PART_SIZE = 16 * 1024 * 1024
#: S3 allows at most this many parts; bigger files get bigger parts.
MAX_PARTS = 10_000
#: Bytes asked from the network per read while streaming.
CHUNK_SIZE = 256 * 1024

#: Objects whose name never gets new content: cache them forever at the CDN and on devices.
CACHE_IMMUTABLE = "public, max-age=31536000, immutable"
#: The pointer and anything else that changes: revalidate on every request.
CACHE_MUTABLE = "no-cache, max-age=0"

_IMMUTABLE_KEY = re.compile(
    r"^[^/]+/(?:root/\d+\.root\.json|bundles/[^/]+|channels/[^/]+/\d+\.json)$"
)
_BUNDLE_KEY = re.compile(r"^[^/]+/bundles/[^/]+$")
_LOCK_NAME = ".lock"

_CONDITION_FAILED = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_MISSING_KEY = frozenset({"NoSuchKey", "NotFound", "404"})
_REFUSED_CREDENTIALS = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "403",
    }
)
_WRONG_REGION = frozenset({"AuthorizationHeaderMalformed", "PermanentRedirect", "301"})
_CREDENTIALS_FIX = (
    "Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (or AWS_PROFILE, or the "
    "CI's OIDC role) and that the policy allows s3:GetObject, s3:PutObject and s3:ListBucket "
    "on the bucket; never print the keys to check them"
)


def is_s3_url(value: str) -> bool:
    """Whether ``value`` names an S3 store (``s3://bucket[/prefix]``)."""
    parts = urlsplit(value)
    return parts.scheme == "s3" and bool(parts.netloc)


def _parse_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into bucket and prefix (no slashes at either end)."""
    if not is_s3_url(url):
        raise InputError(
            f"{url!r} is not an S3 store URL",
            expected="s3://bucket or s3://bucket/prefix",
            fix="Pass --store s3://<bucket>/<prefix>",
        )
    parts = urlsplit(url)
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise InputError(
            f"the S3 store URL s3://{parts.hostname or ''}/... has extra parts",
            expected="s3://bucket/prefix without credentials, port, query or fragment",
            fix="Give the endpoint with --s3-endpoint and credentials through the environment",
        )
    return parts.netloc, parts.path.strip("/")


def _content_type(key: str) -> str:
    if key.endswith((".json", _LOCK_NAME)):
        return "application/json"
    if key.endswith(".zip"):
        return "application/zip"
    return "application/octet-stream"


def _cache_control(key: str) -> str:
    return CACHE_IMMUTABLE if _IMMUTABLE_KEY.match(key) else CACHE_MUTABLE


def _error_code(exc: Any) -> tuple[str, int]:  # noqa: ANN401 - botocore's ClientError is untyped
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _is_condition_failed(exc: Any) -> bool:  # noqa: ANN401 - botocore's ClientError is untyped
    code, status = _error_code(exc)
    return code in _CONDITION_FAILED or status == 412  # noqa: PLR2004 - HTTP status


def _is_missing(exc: Any) -> bool:  # noqa: ANN401 - botocore's ClientError is untyped
    code, _ = _error_code(exc)
    return code in _MISSING_KEY


@dataclass(frozen=True, slots=True)
class _Lease:
    """A lock this process holds: who we are and until when (wall clock, seconds)."""

    key: str
    owner: str
    expires: float


class S3Store:
    """A ``Storage`` on an S3 bucket (AWS, or any S3-compatible service via ``endpoint_url``).

    Credentials and region come from the usual AWS environment; ``client`` injects a configured
    boto3 client instead. ``part_size``, ``page_size`` and the ``lock_*`` timings (seconds) are
    tuning knobs with production defaults.
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        lock_mode: bool = False,
        client: object | None = None,
        part_size: int = PART_SIZE,
        page_size: int = 1000,
        lock_lease: float = 60.0,
        lock_wait: float = 90.0,
        lock_settle: float = 0.5,
    ) -> None:
        self._bucket, self._prefix = _parse_url(url)
        if endpoint_url is not None and urlsplit(endpoint_url).scheme not in {"http", "https"}:
            raise InputError(
                "the S3 endpoint is not an http(s) URL",
                expected="an endpoint such as https://s3.example.com",
                fix="Fix --s3-endpoint",
            )
        self._endpoint_url = endpoint_url
        self._lock_mode = lock_mode
        self._client: Any = client
        self._part_size = part_size
        self._page_size = page_size
        self._lock_lease = lock_lease
        self._lock_wait = lock_wait
        self._lock_settle = lock_settle

    # --- plumbing ------------------------------------------------------------------------------
    @property
    def _s3(self) -> Any:  # noqa: ANN401 - boto3 clients are untyped
        if self._client is None:
            import boto3  # noqa: PLC0415 - boto3 costs ~0.3 s to import; only S3 users pay it
            from botocore.config import Config  # noqa: PLC0415

            config = Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"mode": "standard", "total_max_attempts": 3},
                # Some S3-compatible services reject the default CRC trailers; integrity of what
                # we store is guaranteed by signed digests anyway.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"} if self._custom_endpoint() else None,
            )
            with self._translate("connect to", None):
                self._client = boto3.session.Session().client(
                    "s3", endpoint_url=self._endpoint_url, config=config
                )
        return self._client

    def _custom_endpoint(self) -> bool:
        """S3-compatible services (also via boto3's endpoint variables) need path-style URLs."""
        return bool(
            self._endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )

    def _full_key(self, key: str) -> str:
        if not key or key.startswith("/"):
            raise InputError(f"store key {key!r} is not a relative path", expected="app/...")
        return f"{self._prefix}/{key}" if self._prefix else key

    def _where(self, key: str | None) -> str:
        return self.describe() if key is None else f"{self.describe()}/{key}"

    def _endpoint_name(self) -> str:
        url = self._endpoint_url or getattr(getattr(self._client, "meta", None), "endpoint_url", "")
        if not url:
            return "AWS S3"
        parts = urlsplit(str(url))  # without user info or path
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")

    @contextmanager
    def _translate(self, action: str, key: str | None) -> Iterator[None]:
        """Turn botocore failures into otaseal errors that say what to do."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, action, key) from exc
        except BotoCoreError as exc:
            raise self._core_error(exc, action, key) from exc

    def _client_error(self, exc: Any, action: str, key: str | None) -> StoreError:  # noqa: ANN401
        code, status = _error_code(exc)
        where = self._where(key)
        if code == "NoSuchBucket":
            return StoreError(
                f"bucket {self._bucket} does not exist (at {self._endpoint_name()})",
                expected="an existing bucket",
                fix="Create it or fix --store",
            )
        if _is_missing(exc):
            return NotFoundError(f"{where} does not exist", expected="an object at that key")
        if code in _REFUSED_CREDENTIALS:
            return StoreError(
                f"the store refused the credentials ({code}) when trying to {action} {where}",
                expected="credentials allowed to read and write the bucket",
                fix=_CREDENTIALS_FIX,
            )
        if code in _WRONG_REGION:
            return StoreError(
                f"bucket {self._bucket} is in another region than the client uses ({code}) "
                f"when trying to {action} {where}",
                expected="the bucket's region",
                fix="Set AWS_REGION to the bucket's region",
            )
        if code == "NotImplemented" or status == 501:  # noqa: PLR2004 - HTTP status
            return StoreError(
                f"the store cannot {action} {where}: it answered {code or 'HTTP 501'}",
                expected="an S3 service with conditional writes (If-None-Match / If-Match)",
                fix="Use a service that supports them, or enable the store's lock mode and "
                "accept its weaker guarantees (docs/adr/0004-s3-conditional-writes.md)",
            )
        return StoreError(
            f"could not {action} {where}: the store answered {code or 'an error'} (HTTP {status})",
            fix="Retry; if it persists, check the store service and --store",
        )

    def _core_error(self, exc: Exception, action: str, key: str | None) -> StoreError:
        from botocore.exceptions import (  # noqa: PLC0415
            ConnectionError as BotoConnectionError,
        )
        from botocore.exceptions import (  # noqa: PLC0415
            NoCredentialsError,
            PartialCredentialsError,
        )

        if isinstance(exc, BotoConnectionError):
            return StoreError(
                f"cannot reach the S3 endpoint {self._endpoint_name()} "
                f"({type(exc).__name__}) to {action} {self._where(key)}",
                expected="an endpoint that answers within a few seconds",
                fix="Check --s3-endpoint, the network and that the service is running",
            )
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return StoreError(
                f"no usable AWS credentials were found to {action} {self._where(key)}",
                expected="credentials from the environment, a profile or a role",
                fix=_CREDENTIALS_FIX,
            )
        return StoreError(
            f"could not {action} {self._where(key)}: {type(exc).__name__}",
            fix="Check --store, --s3-endpoint and the AWS configuration (region, profile)",
        )

    # --- Storage -------------------------------------------------------------------------------
    def describe(self) -> str:
        """``s3://bucket/prefix``; never credentials or the endpoint's user info."""
        return f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"

    def read(self, key: str) -> tuple[bytes, str]:
        """Return ``(data, etag)``; raise ``NotFoundError``."""
        with self._translate("read", key):
            response = self._s3.get_object(Bucket=self._bucket, Key=self._full_key(key))
            try:
                data = bytes(response["Body"].read())
            finally:
                response["Body"].close()
        return data, str(response["ETag"])

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists (a HEAD request)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        with self._translate("look up", key):
            try:
                self._s3.head_object(Bucket=self._bucket, Key=self._full_key(key))
            except ClientError as exc:
                if _is_missing(exc):
                    return False
                raise
        return True

    def head(self, key: str, *, length: int) -> bytes:
        """The first ``length`` bytes, by one ranged GET."""
        response = self._get_capped(key, length - 1)
        body = response["Body"]
        try:
            with self._translate("read", key):
                return bytes(body.read(length))
        finally:
            body.close()

    def fetch(self, key: str, *, max_bytes: int) -> bytes:
        """Return the whole object; ``LengthError`` past ``max_bytes``."""
        return b"".join(self.stream(key, max_bytes=max_bytes))

    def stream(self, key: str, *, max_bytes: int) -> Iterator[bytes]:
        """Yield the object in chunks; never transfers more than ``max_bytes + 1`` bytes."""
        response = self._get_capped(key, max_bytes)
        body = response["Body"]
        try:
            total = _total_size(response)
            if total is not None and total > max_bytes:
                raise self._too_long(key, max_bytes, total)
            received = 0
            while True:
                with self._translate("read", key):
                    chunk = bytes(body.read(min(CHUNK_SIZE, max_bytes + 1 - received)))
                if not chunk:
                    return
                received += len(chunk)
                if received > max_bytes:
                    raise self._too_long(key, max_bytes, None)
                yield chunk
        finally:
            body.close()

    def _get_capped(self, key: str, max_bytes: int) -> Any:  # noqa: ANN401 - boto3 response
        from botocore.exceptions import ClientError  # noqa: PLC0415

        full = self._full_key(key)
        with self._translate("read", key):
            try:
                # A range ending one byte past the cap: an oversize object is detected without
                # downloading it.
                return self._s3.get_object(
                    Bucket=self._bucket, Key=full, Range=f"bytes=0-{max_bytes}"
                )
            except ClientError as exc:
                if _error_code(exc)[0] != "InvalidRange":
                    raise
            # S3 answers 416 for any range on an empty object.
            return self._s3.get_object(Bucket=self._bucket, Key=full)

    def _too_long(self, key: str, max_bytes: int, total: int | None) -> LengthError:
        size = f"{total} bytes" if total is not None else f"more than {max_bytes} bytes"
        return LengthError(
            f"{self._where(key)} is {size}",
            expected=f"at most {max_bytes} bytes",
            fix="The store holds something other than what was published; republish it",
        )

    def presign(self, key: str, expires: int) -> str:
        """A GET URL for ``key`` valid ``expires`` seconds (``serve`` without a public URL).

        Signed locally with the store's credentials; no request is sent.
        """
        with self._translate("presign", key):
            return str(
                self._s3.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self._bucket, "Key": self._full_key(key)},
                    ExpiresIn=expires,
                )
            )

    def create(self, key: str, data: bytes) -> bool:
        """Create-only write; False (and nothing written) when ``key`` already exists."""
        with self._locked(key) as lease:
            if self._lock_mode and self.exists(key):
                return False
            return self._put_new(key, data, lease)

    def create_from_file(self, key: str, path: Path) -> bool:
        """Create-only streaming upload; multipart above one part, so memory stays flat."""
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        with self._locked(key) as lease:
            # Cheap check first so a re-run does not upload a big bundle for nothing; the
            # conditional write below is what guarantees create-only.
            if self.exists(key):
                return False
            if size <= self._part_size:
                with path.open("rb") as body:
                    return self._put_new(key, body, lease)
            return self._multipart_new(key, path, size, lease)

    def replace(self, key: str, data: bytes, *, etag: str | None) -> str:
        """Compare-and-swap on ``etag`` (None: must not exist); ``ConflictError`` if we lost."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        if self._lock_mode:
            return self._replace_locked(key, data, etag)
        condition = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
        with self._translate("replace", key):
            try:
                response = self._put(key, data, condition)
            except ClientError as exc:
                # SeaweedFS answers 412 and AWS 404 for If-Match on a missing key: both mean
                # someone else changed the pointer since we read it.
                if _is_condition_failed(exc) or _is_missing(exc):
                    raise self._conflict(key) from exc
                raise
        return str(response["ETag"])

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (plain string prefix), relative to the store, sorted."""
        full = f"{self._prefix}/{prefix}" if self._prefix else prefix
        strip = len(self._prefix) + 1 if self._prefix else 0
        keys: list[str] = []
        request: dict[str, Any] = {
            "Bucket": self._bucket,
            "Prefix": full,
            "MaxKeys": self._page_size,
        }
        with self._translate("list", prefix or None):
            while True:
                response = self._s3.list_objects_v2(**request)
                keys.extend(str(item["Key"])[strip:] for item in response.get("Contents", []))
                if not response.get("IsTruncated"):
                    break
                request["ContinuationToken"] = response["NextContinuationToken"]
        return sorted(k for k in keys if not _is_lock_key(k))

    # --- writes --------------------------------------------------------------------------------
    def _put(self, key: str, body: bytes | BinaryIO, condition: dict[str, str]) -> Any:  # noqa: ANN401
        return self._s3.put_object(
            Bucket=self._bucket,
            Key=self._full_key(key),
            Body=body,
            CacheControl=_cache_control(key),
            ContentType=_content_type(key),
            **condition,
        )

    def _put_new(self, key: str, body: bytes | BinaryIO, lease: _Lease | None) -> bool:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        condition = {} if self._lock_mode else {"IfNoneMatch": "*"}
        with self._translate("create", key):
            self._check_lease(lease, key)
            try:
                self._put(key, body, condition)
            except ClientError as exc:
                if _is_condition_failed(exc):
                    return False
                raise
        return True

    def _multipart_new(self, key: str, path: Path, size: int, lease: _Lease | None) -> bool:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        full = self._full_key(key)
        part_size = max(self._part_size, math.ceil(size / MAX_PARTS))
        with self._translate("start uploading", key):
            upload_id = self._s3.create_multipart_upload(
                Bucket=self._bucket,
                Key=full,
                CacheControl=_cache_control(key),
                ContentType=_content_type(key),
            )["UploadId"]
        ids = {"Bucket": self._bucket, "Key": full, "UploadId": upload_id}
        try:
            with self._translate("upload", key):
                parts: list[dict[str, Any]] = []
                with path.open("rb") as source:
                    for number in range(1, math.ceil(size / part_size) + 1):
                        # One part in memory at a time: the loop drops it before reading the next.
                        response = self._s3.upload_part(
                            PartNumber=number, Body=source.read(part_size), **ids
                        )
                        parts.append({"ETag": response["ETag"], "PartNumber": number})
                condition = {} if self._lock_mode else {"IfNoneMatch": "*"}
                self._check_lease(lease, key)
                try:
                    self._s3.complete_multipart_upload(
                        MultipartUpload={"Parts": parts}, **ids, **condition
                    )
                except ClientError as exc:
                    if _is_condition_failed(exc):
                        self._abort(ids)
                        return False
                    raise
        except BaseException:
            self._abort(ids)
            raise
        return True

    def _abort(self, ids: dict[str, str]) -> None:
        """Drop an unfinished upload so its parts are not billed forever (best effort)."""
        with suppress(Exception):
            self._s3.abort_multipart_upload(**ids)

    def _conflict(self, key: str) -> ConflictError:
        return ConflictError(
            f"{self._where(key)} changed since it was read: another publisher won",
            expected="the version that was read",
            fix="Re-read the channel and retry",
        )

    # --- lock mode -----------------------------------------------------------------------------
    def _replace_locked(self, key: str, data: bytes, etag: str | None) -> str:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        with self._locked(key) as lease, self._translate("replace", key):
            try:
                head = self._s3.head_object(Bucket=self._bucket, Key=self._full_key(key))
                current: str | None = str(head["ETag"])
            except ClientError as exc:
                if not _is_missing(exc):
                    raise
                current = None
            if _bare_etag(current) != _bare_etag(etag):
                raise self._conflict(key)
            self._check_lease(lease, key)
            return str(self._put(key, data, {})["ETag"])

    @contextmanager
    def _locked(self, key: str) -> Iterator[_Lease | None]:
        """Hold the app's lock in lock mode; bundles need none (their name is their digest)."""
        if not self._lock_mode or _BUNDLE_KEY.match(key):
            yield None
            return
        lease = self._acquire(key.split("/", 1)[0] + "/" + _LOCK_NAME)
        try:
            yield lease
        finally:
            self._release(lease)

    def _acquire(self, lock_key: str) -> _Lease:
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + self._lock_wait
        while True:
            holder = self._lock_holder(lock_key)
            if holder is None or holder[1] <= time.time():
                lease = _Lease(lock_key, owner, time.time() + self._lock_lease)
                record = {"owner": owner, "expires": lease.expires}
                with self._translate("lock", lock_key):
                    self._put(lock_key, json.dumps(record).encode(), {})
                # Without conditional writes the last writer wins; wait for a racing writer's
                # PUT to land, then see whose record survived.
                time.sleep(self._lock_settle)
                holder = self._lock_holder(lock_key)
                if holder is not None and holder[0] == owner:
                    return lease
            if time.monotonic() >= deadline:
                who, until = holder or ("another publisher", time.time())
                raise StoreError(
                    f"{self._where(lock_key)} is held by {who} until "
                    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(until))}",
                    expected=f"the lock to be free within {self._lock_wait:.0f} s",
                    fix="Wait for the other publish to finish; if none is running, delete the "
                    "lock object",
                )
            time.sleep(random.uniform(0.1, 0.5))  # noqa: S311 - jitter, not security

    def _lock_holder(self, lock_key: str) -> tuple[str, float] | None:
        try:
            data, _ = self.read(lock_key)
        except NotFoundError:
            return None
        try:
            record = json.loads(data)
            return str(record["owner"]), float(record["expires"])
        except (ValueError, TypeError, KeyError):
            return None  # a damaged lock protects nothing: take it over

    def _check_lease(self, lease: _Lease | None, key: str) -> None:
        """Refuse to write when our lease is nearly over: someone else may take the lock."""
        if lease is not None and time.time() > lease.expires - self._lock_lease / 4:
            raise ConflictError(
                f"the lock lease on {self._where(lease.key)} ran out before writing {key}",
                expected=f"the write to finish within {self._lock_lease:.0f} s",
                fix="Retry; if the store is slow, use a longer lock lease",
            )

    def _release(self, lease: _Lease) -> None:
        # Best effort: a lock we fail to delete expires with its lease.
        with suppress(StoreError):
            holder = self._lock_holder(lease.key)
            if holder is not None and holder[0] == lease.owner:
                with self._translate("unlock", lease.key):
                    self._s3.delete_object(Bucket=self._bucket, Key=self._full_key(lease.key))


def _is_lock_key(key: str) -> bool:
    return key.count("/") == 1 and key.endswith("/" + _LOCK_NAME)


def _bare_etag(etag: str | None) -> str | None:
    return None if etag is None else etag.removeprefix("W/").strip('"')


def _total_size(response: Any) -> int | None:  # noqa: ANN401 - boto3 response
    """Full object size from ``Content-Range: bytes 0-N/TOTAL`` (or the length without a range)."""
    content_range = response.get("ContentRange")
    if content_range:
        total = str(content_range).rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = response.get("ContentLength")
    return int(length) if length is not None else None
