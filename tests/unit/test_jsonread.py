"""The JSON rules of SPEC §1, as every device-side document is read (``otaseal.jsonread``).

Each rule is pinned with the spec's literal numbers (32 levels, 2^53 − 1) and checked through the
readers that use it: signed payloads (``model``), envelopes (``dsse``) and the bundle index.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from otaseal import dsse, jsonread
from otaseal.archive import Index
from otaseal.crypto import generate_signing_key
from otaseal.errors import ArchiveError, MalformedMetadataError, WrongTargetError
from otaseal.model import ChannelManifest, Release, Root, parse_time
from otaseal.project import make_root
from tests.conftest import APP, NOW

SHA = "ab" * 32


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_limits_are_the_spec_numbers() -> None:
    assert jsonread.MAX_DEPTH == 32
    assert jsonread.MAX_SAFE_INTEGER == 9_007_199_254_740_991 == 2**53 - 1


def test_nesting_of_32_levels_is_read_and_33_refused() -> None:
    assert jsonread.loads(nested(32)) == eval("[" * 31 + "[]" + "]" * 31)  # noqa: S307
    assert jsonread.loads(b'{"a":' * 31 + b"{}" + b"}" * 31)
    with pytest.raises(jsonread.JsonError, match="deeper than 32 levels"):
        jsonread.loads(nested(33))
    with pytest.raises(jsonread.JsonError, match="deeper than 32"):
        jsonread.loads(b'{"a":' * 32 + b"{}" + b"}" * 32)


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000,  # unclosed: json.loads would hit RecursionError
        nested(100_000),
        b'{"a":' * 100_000,
        b"[{" * 50_000 + b"}]" * 50_000,
    ],
)
def test_deep_nesting_is_refused_without_recursion(data: bytes) -> None:
    with pytest.raises(jsonread.JsonError):
        jsonread.loads(data)


def test_brackets_inside_strings_do_not_count() -> None:
    text = '"[[[[{{{{\\"]]]]"'
    assert jsonread.loads(json.dumps({"a": text * 100}).encode()) == {"a": text * 100}


def test_pathological_strings_scan_in_linear_time() -> None:
    # An unterminated string of escaped quotes would make a naive regex quadratic.
    for data in (b'"\\"' * 200_000, b'"\\' * 200_000, b'"' * 400_001):
        with pytest.raises(jsonread.JsonError):
            jsonread.loads(data)


def test_duplicate_keys_refused_at_any_depth() -> None:
    with pytest.raises(jsonread.JsonError, match="'version' appears twice"):
        jsonread.loads(b'{"version": 1, "version": 2}')
    with pytest.raises(jsonread.JsonError, match="twice"):
        jsonread.loads(b'{"a": [{"b": 1, "c": 2, "b": 1}]}')


def test_byte_order_mark_refused() -> None:
    with pytest.raises(jsonread.JsonError, match="byte-order mark"):
        jsonread.loads(b"\xef\xbb\xbf{}")
    with pytest.raises(jsonread.JsonError, match="UTF-8"):
        jsonread.loads("{}".encode("utf-16"))


@pytest.mark.parametrize("data", [b"\xff{}", b'{"a": "\xc3"}', b'{"a": "\xed\xa0\x80"}'])
def test_invalid_utf8_refused(data: bytes) -> None:
    with pytest.raises(jsonread.JsonError, match="not UTF-8"):
        jsonread.loads(data)


@pytest.mark.parametrize("data", [b'{"a": "\\ud800"}', b'{"\\udfff": 1}', b'["x\\udc00y"]'])
def test_unpaired_surrogate_escape_refused(data: bytes) -> None:
    with pytest.raises(jsonread.JsonError, match="unpaired surrogate"):
        jsonread.loads(data)


def test_paired_surrogate_escape_is_a_character() -> None:
    assert jsonread.loads(b'{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}') == {
        "a": "\U0001f600",
        "b": "\\ud800",
    }


@pytest.mark.parametrize("data", [b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"", b"{", b"}{"])
def test_not_json_refused(data: bytes) -> None:
    with pytest.raises(jsonread.JsonError):
        jsonread.loads(data)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("0", 0),
        ("7", 7),
        ("7.0", 7),
        ("7e0", 7),
        ("-0", 0),
        ("9007199254740991", 9_007_199_254_740_991),
        ("9007199254740991.0", 9_007_199_254_740_991),
    ],
)
def test_integers_are_whole_numbers_up_to_2_53_minus_1(literal: str, value: int) -> None:
    assert jsonread.integer(jsonread.loads(literal.encode())) == value


@pytest.mark.parametrize(
    "literal",
    [
        "9007199254740992",
        "9007199254740993",
        "1" + "0" * 30,
        "1" + "0" * 5000,  # beyond Python's int-parsing limit: a double, as in JavaScript
        "1e400",
        "-1",
        "7.5",
        "true",
        "false",
        "null",
        '"7"',
        "[7]",
    ],
)
def test_other_numbers_and_types_are_not_integers(literal: str) -> None:
    assert jsonread.integer(jsonread.loads(literal.encode())) is None


@pytest.mark.parametrize(
    ("text", "decoded"),
    [("", b""), ("YQ==", b"a"), ("YWI=", b"ab"), ("YWJj", b"abc"), ("YR==", b"a")],
)
def test_base64_strict_with_padding(text: str, decoded: bytes) -> None:
    assert jsonread.decode_base64(text) == decoded


@pytest.mark.parametrize(
    "text", ["YQ", "YWI", "YQ=", "Y Q==", "YQ==\n", "-_8=", "YQé=", "ＹＱ==", None, 5, b"YQ=="]
)
def test_base64_without_padding_or_outside_the_alphabet_refused(text: object) -> None:
    assert jsonread.decode_base64(text) is None


# --- times (SPEC §1) -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T14:00:00+02:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T00:00:00-14:00", datetime(2026, 1, 31, 14, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("0001-01-01T14:00:00+14:00", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_times_read(text: str, moment: datetime) -> None:
    assert parse_time(text) == moment


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
        "0000-01-01T00:00:00Z",
        "2026-01-31T12:00:00",
        "2026-01-31T12:00:00.5Z",
        "2026-01-31 12:00:00Z",
        "2026-01-31t12:00:00z",
        "2026-01-31T12:00Z",
        "2026-01-31",
        "20260131T120000Z",
        "2026-W05-6T12:00:00Z",
        "2026-01-31T23:59:60Z",
        "2026-02-30T12:00:00Z",
        "2026-01-31T12:00:00+24:00",
        "2026-01-31T12:00:00+01:60",
        "2026-01-31T12:00:00+0100",
        "２０２６-01-31T12:00:00Z",
        "",
    ],
)
def test_other_time_forms_refused_with_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


# --- through the readers -----------------------------------------------------------------------
def manifest_doc() -> dict[str, object]:
    release = Release(
        label="1.0.0",
        counter=1,
        sha256=SHA,
        length=10,
        plaintext_sha256=SHA,
        plaintext_length=9,
        files=1,
        unpacked_size=5,
        published=NOW,
        rollout_salt="s",
    )
    manifest = ChannelManifest(
        app=APP,
        channel="beta",
        version=1,
        issued=NOW,
        expires=NOW + timedelta(days=30),
        releases=(release,),
    )
    doc: dict[str, object] = json.loads(manifest.to_payload())
    return doc


def refused(payload: bytes) -> MalformedMetadataError:
    with pytest.raises(MalformedMetadataError) as caught:
        ChannelManifest.from_payload(payload)
    return caught.value


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("version",), 2**53),
        (("version",), -1),
        (("version",), 1.5),
        (("version",), True),
        (("security_floor",), 2**53),
        (("releases", 0, "counter"), 2**53),
        (("releases", 0, "bundle", "length"), 2**64),
        (("releases", 0, "plaintext", "length"), 1e300),
        (("releases", 0, "content", "size"), "5"),
        (("releases", 0, "native", "min"), -3),
        (("releases", 0, "source", "pr"), 2**53),
        (("expires",), "9999-12-31T23:59:59-14:00"),
        (("issued",), "0001-01-01T00:00:00+14:00"),
        (("releases", 0, "published"), "2026-01-31T12:00:00.000Z"),
        (("spec_version",), "1"),
        (("spec_version",), "1.1.0"),
        (("spec_version",), "01.1"),
        (("spec_version",), " 1.1"),
    ],
)
def test_manifest_field_outside_the_rules_is_malformed(
    path: tuple[str | int, ...], value: object
) -> None:
    doc = manifest_doc()
    target: object = doc
    for step in path[:-1]:
        target = target[step]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]

    refused(json.dumps(doc).encode())


def test_largest_integers_and_whole_doubles_are_read() -> None:
    doc = manifest_doc()
    doc["version"] = 2**53 - 1
    doc["security_floor"] = 0.0
    manifest = ChannelManifest.from_payload(json.dumps(doc).encode())
    assert (manifest.version, manifest.security_floor) == (9_007_199_254_740_991, 0)
    assert type(manifest.security_floor) is int


def test_manifest_with_duplicate_key_bom_or_deep_nesting_is_malformed() -> None:
    payload = json.dumps(manifest_doc()).encode()
    duplicated = payload.replace(b'"version": 1', b'"version": 1, "version": 2')
    assert duplicated != payload
    assert "twice" in refused(duplicated).what
    assert "byte-order mark" in refused(b"\xef\xbb\xbf" + payload).what
    deep = manifest_doc() | {"future": json.loads(nested(32))}
    assert "deeper than 32" in refused(json.dumps(deep).encode()).what
    shallow = manifest_doc() | {"future": json.loads(nested(31))}
    assert ChannelManifest.from_payload(json.dumps(shallow).encode()).version == 1


def test_spec_version_format_is_checked_before_the_major() -> None:
    doc = manifest_doc()
    doc["spec_version"] = "2"
    refused(json.dumps(doc).encode())
    doc["spec_version"] = "2.0"
    with pytest.raises(WrongTargetError):
        ChannelManifest.from_payload(json.dumps(doc).encode())
    doc["spec_version"] = "1.12345678901234567890"
    assert ChannelManifest.from_payload(json.dumps(doc).encode()).version == 1


def root_doc() -> dict[str, object]:
    key = generate_signing_key()
    root = make_root(APP, 1, now=NOW, root_keys=[key], channel_keys={"beta": [key]})
    doc: dict[str, object] = json.loads(root.to_payload())
    return doc


@pytest.mark.parametrize("public", ["MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE", "MFkw\u00e9", "MFkw\n"])
def test_root_key_that_is_not_strict_base64_is_malformed(public: str) -> None:
    doc = root_doc()
    keys = doc["keys"]
    assert isinstance(keys, dict)
    entry = next(iter(keys.values()))
    entry["public"] = entry["public"].rstrip("=") if public.endswith("AE") else public
    with pytest.raises(MalformedMetadataError, match="public"):
        Root.from_payload(json.dumps(doc).encode())


def test_root_threshold_above_2_53_is_malformed() -> None:
    doc = root_doc()
    roles = doc["roles"]
    assert isinstance(roles, dict)
    roles["root"]["threshold"] = 2**53
    with pytest.raises(MalformedMetadataError):
        Root.from_payload(json.dumps(doc).encode())


@pytest.mark.parametrize(
    "envelope",
    [
        b'{"payloadType": 5, "payload": "e30=", "signatures": []}',
        b'{"payloadType": "t", "payload": "e30", "signatures": []}',
        b'{"payloadType": "t", "payload": "e30=", "signatures": {}}',
        b'{"payloadType": "t", "payload": "e30=", "signatures": [{"keyid": 5, "sig": ""}]}',
        b'{"payloadType": "t", "payload": "e30=", '
        b'"signatures": [{"keyid": "k", "sig": "\xc3\xa9"}]}',
        b'{"payloadType": "t", "payload": "e30=", "signatures": ["x"]}',
        b'{"payloadType": "t", "payload": "e30=", "payload": "W10=", "signatures": []}',
        b'\xef\xbb\xbf{"payloadType": "t", "payload": "e30=", "signatures": []}',
        b'{"payloadType": "t", "payload": "e30=", "signatures": [], "x": ' + nested(40) + b"}",
        b"[]",
    ],
)
def test_envelope_outside_the_rules_is_malformed(envelope: bytes) -> None:
    with pytest.raises(MalformedMetadataError, match="not a DSSE envelope"):
        dsse.Envelope.from_json(envelope)


def test_envelope_keeps_unknown_members_out() -> None:
    data = (
        b'{"payloadType": "t", "payload": "e30=", "signatures": [{"keyid": "k", "sig": ""}], '
        b'"x": 1}'
    )
    assert dsse.Envelope.from_json(data) == dsse.Envelope("t", b"{}", (("k", b""),))
    assert base64.b64encode(b"{}") == b"e30="


@pytest.mark.parametrize(
    "data",
    [
        b'{"version": 1, "files": [], "version": 1}',
        b'\xef\xbb\xbf{"version": 1, "files": []}',
        b'{"version": 1, "files": [], "x": ' + nested(40) + b"}",
        b'{"version": 1, "files": [{"path": "a", "size": 9007199254740992, "sha256": "'
        + SHA.encode()
        + b'"}]}',
    ],
)
def test_index_outside_the_rules_is_malformed(data: bytes) -> None:
    with pytest.raises(ArchiveError, match="index"):
        Index.from_json(data)


def test_index_size_as_whole_double_is_read() -> None:
    data = (
        b'{"version": 1.0, "files": [{"path": "a", "size": 5.0, "sha256": "'
        + SHA.encode()
        + b'"}]}'
    )
    assert Index.from_json(data).files[0].size == 5
