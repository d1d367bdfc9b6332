"""The plugin's JSON: real request shapes parse, junk is refused with a code, replies are exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otaseal.serve import wire

REQUESTS = Path(__file__).parent / "requests"


def load(name: str) -> bytes:
    return (REQUESTS / name).read_bytes()


def code_of(body: bytes, parse=wire.parse_update) -> str:
    with pytest.raises(wire.RequestError) as caught:
        parse(body)
    return caught.value.code


# --- requests: real shapes ---------------------------------------------------------------------
def test_android_plugin_request_parses_with_every_field():
    req = wire.parse_update(load("plugin-android.json"))
    assert (req.app_id, req.platform, req.version_code, req.key_id) == (
        "com.example.app",
        "android",
        "7",
        "MIIBCgKCAQEAqJikYizo",
    )
    assert req.default_channel == ""
    assert req.is_prod is True


def test_ios_plugin_request_reads_default_channel_in_camel_case():
    req = wire.parse_update(load("plugin-ios.json"))
    assert req.default_channel == "beta"
    assert req.version_os == "18.1"


def test_capgo_probe_request_gets_defaults_for_what_it_omits():
    req = wire.parse_update(load("capgo-probe.json"))
    assert (req.version_code, req.version_os, req.custom_id, req.key_id) == ("", "", "", "")
    assert req.version_name == "builtin"


def test_unknown_keys_are_ignored():
    doc = json.loads(load("plugin-android.json"))
    doc |= {"future_field": {"nested": [1, 2]}, "another": None}
    assert wire.parse_update(json.dumps(doc).encode()).app_id == "com.example.app"


# --- requests: junk ----------------------------------------------------------------------------
@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe", b"[1,2"])
def test_malformed_json_is_invalid_request(body):
    assert code_of(body) == "invalid_request"


@pytest.mark.parametrize(
    "change",
    [{"version_code": 7}, {"is_prod": "true"}, {"device_id": None}, {"defaultChannel": 1}],
)
def test_wrong_json_types_are_invalid_request(change):
    doc = json.loads(load("plugin-android.json")) | change
    assert code_of(json.dumps(doc).encode()) == "invalid_request"


@pytest.mark.parametrize("body", [b"[]", b"1", b'"x"', b"null"])
def test_a_body_that_is_not_an_object_is_invalid_request(body):
    assert code_of(body) == "invalid_request"


@pytest.mark.parametrize(
    "field", ["app_id", "device_id", "platform", "version_name", "version_build"]
)
def test_missing_required_fields_are_invalid_request(field):
    doc = json.loads(load("plugin-android.json"))
    del doc[field]
    with pytest.raises(wire.RequestError) as caught:
        wire.parse_update(json.dumps(doc).encode())
    assert caught.value.code == "invalid_request"
    assert field in caught.value.message


@pytest.mark.parametrize(
    "device_id",
    ["abc", "6f1c2d3e4a5b4c6d8e9f0a1b2c3d4e5f", "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5fxx"],
)
def test_device_id_must_be_a_uuid(device_id):
    doc = json.loads(load("plugin-android.json")) | {"device_id": device_id}
    assert code_of(json.dumps(doc).encode()) == "invalid_device_id"


def test_body_over_64_kib_is_refused_before_parsing():
    body = b"{" + b" " * wire.MAX_BODY + b"}"
    assert code_of(body) == "payload_too_large"
    assert code_of(b"x" * (wire.MAX_BODY + 1)) == "payload_too_large"


# --- stats -------------------------------------------------------------------------------------
def test_stats_queue_array_parses():
    events = wire.parse_stats(load("stats-queue.json"))
    assert [e.action for e in events] == ["set", "app_launch_ready"]
    assert events[0].timestamp == 1795000000000


def test_stats_single_worker_object_parses_without_timestamp():
    (event,) = wire.parse_stats(load("stats-worker.json"))
    assert event.action == "download_zip_start"
    assert event.timestamp is None


def test_empty_stats_array_is_fine():
    assert wire.parse_stats(b"[]") == []


def test_stats_batch_mixing_apps_is_refused():
    events = json.loads(load("stats-queue.json"))
    events[1]["app_id"] = "com.example.other"
    assert code_of(json.dumps(events).encode(), wire.parse_stats) == "mixed_apps"


def test_stats_event_without_action_is_invalid():
    event = json.loads(load("stats-worker.json"))
    del event["action"]
    assert code_of(json.dumps(event).encode(), wire.parse_stats) == "invalid_request"


# --- channel requests --------------------------------------------------------------------------
def test_channel_set_reads_the_channel():
    doc = json.loads(load("plugin-android.json")) | {"channel": "beta"}
    assert wire.parse_channel(json.dumps(doc).encode()).channel == "beta"


def test_channel_list_query_reads_booleans_and_ignores_unknown_params():
    req = wire.parse_channel_query(
        {
            "app_id": "com.example.app",
            "device_id": "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
            "is_prod": "true",
            "is_emulator": "false",
            "defaultChannel": "beta",
            "whatever": "x",
        }
    )
    assert (req.is_prod, req.is_emulator, req.default_channel) == (True, False, "beta")


def test_channel_list_query_needs_a_uuid_device():
    with pytest.raises(wire.RequestError) as caught:
        wire.parse_channel_query({"app_id": "com.example.app", "device_id": "nope"})
    assert caught.value.code == "invalid_device_id"


# --- replies: strict out -------------------------------------------------------------------------
def test_update_reply_has_exact_fields_and_no_message():
    reply = wire.UpdateReply("1.0.1", "https://cdn.example/x.zip", "ab" * 256, "iv:key")
    doc = json.loads(reply.to_json())
    assert doc == {
        "version": "1.0.1",
        "url": "https://cdn.example/x.zip",
        "checksum": "ab" * 256,
        "session_key": "iv:key",
    }


def test_builtin_reply():
    assert json.loads(wire.BuiltinReply().to_json()) == {"version": "builtin"}


def test_nothing_new_is_the_canonical_form():
    doc = json.loads(wire.NoUpdate("no_new_version_available").to_json())
    assert doc == {
        "error": "no_new_version_available",
        "message": "No new version available",
        "kind": "up_to_date",
    }


def test_breaking_reply_carries_breaking_and_the_version():
    doc = json.loads(
        wire.NoUpdate("disable_auto_update_under_native", breaking=True, version="2.0.0").to_json()
    )
    assert doc["breaking"] is True
    assert doc["version"] == "2.0.0"
    assert doc["kind"] == "blocked"


@pytest.mark.parametrize("code", sorted(wire.ERRORS))
def test_every_error_code_has_a_kind_the_plugin_knows_and_a_message(code):
    doc = json.loads(wire.error_body(code))
    assert doc["error"] == code
    assert doc["kind"] in {"up_to_date", "blocked", "failed"}
    assert doc["message"]
    assert None not in doc.values()
    row = wire.ERRORS[code]
    assert row.status in {200, 400, 404, 405, 413, 429, 500, 503}
    if row.status != 200:
        assert row.kind == "failed"


def test_channel_replies():
    assert json.loads(wire.channel_reply("beta", status="override", allow_set=True)) == {
        "channel": "beta",
        "status": "override",
        "allowSet": True,
    }
    assert json.loads(wire.set_channel_reply("beta")) == {"status": "ok", "channel": "beta"}
    assert json.loads(wire.channel_list([(1, "beta", False)])) == [
        {"id": 1, "name": "beta", "public": False, "allow_self_set": True}
    ]
