"""``answer_update`` row by row against the reference's tables (capgo-protocol.md §3.3, §6).

Pure: signed-and-verified manifests in, a reply value out; a fixed clock, no server, no database.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from otaseal.serve.answer import (
    AppView,
    Offer,
    Rejected,
    answer_update,
    is_on_builtin,
    native_build,
)
from otaseal.serve.db import DeviceFacts
from otaseal.serve.wire import BuiltinReply, NoUpdate
from tests.attacks.conftest import NOW

from .conftest import (
    APP,
    FULL,
    KEY_ID,
    NATIVE,
    NO_FACTS,
    capgo,
    device_in,
    probe_request,
    release,
    request,
)

OLD = release("1.0.0", 1)
NEW = release("1.0.1", 2)


@pytest.fixture
def view(signed):
    """beta serves 1.0.1 then 1.0.0; production serves 1.0.0; the app's default is production."""
    return AppView(
        APP,
        {"beta": signed("beta", (NEW, OLD)), "production": signed("production", (OLD,))},
        default_channel="production",
    )


def offered(decision) -> str:
    assert isinstance(decision, Offer), decision
    return decision.release.label


def refused(decision, code: str, kind: str) -> NoUpdate:
    assert isinstance(decision, NoUpdate), decision
    assert (decision.code, decision.kind) == (code, kind)
    return decision


# --- channel: device override > request defaultChannel > the app's default ----------------------
def test_device_on_builtin_gets_the_default_channels_release(view):
    assert offered(answer_update(view, request(), NO_FACTS, now=NOW)) == "1.0.0"


def test_request_default_channel_beats_the_apps_default(view):
    decision = answer_update(view, request(default_channel="beta"), NO_FACTS, now=NOW)
    assert offered(decision) == "1.0.1"
    assert decision.channel == "beta"


def test_device_override_beats_the_request_default_channel(view):
    facts = DeviceFacts(channel="beta")
    decision = answer_update(view, request(default_channel="production"), facts, now=NOW)
    assert offered(decision) == "1.0.1"


def test_override_to_a_channel_the_app_no_longer_has_is_ignored(view):
    facts = DeviceFacts(channel="gone")
    assert offered(answer_update(view, request(default_channel="beta"), facts, now=NOW)) == "1.0.1"


def test_unknown_channel_is_no_channel_failed(view):
    decision = answer_update(view, request(default_channel="nightly"), NO_FACTS, now=NOW)
    assert "nightly" in refused(decision, "no_channel", "failed").message


def test_no_channel_at_all_is_no_channel_failed(view):
    no_default = replace(view, default_channel="")
    refused(answer_update(no_default, request(), NO_FACTS, now=NOW), "no_channel", "failed")


# --- the manifest: rejected, missing, expired ---------------------------------------------------
def test_manifest_rejected_by_trust_is_misconfigured_channel(view):
    bad = replace(view, manifests={**view.manifests, "production": Rejected("unsigned")})
    refused(answer_update(bad, request(), NO_FACTS, now=NOW), "misconfigured_channel", "failed")


def test_channel_never_published_is_nothing_new(view):
    empty = replace(view, manifests={**view.manifests, "production": None})
    refused(
        answer_update(empty, request(), NO_FACTS, now=NOW), "no_new_version_available", "up_to_date"
    )


def test_expiry_is_checked_on_every_request(view):
    later = NOW + timedelta(days=31)
    decision = answer_update(view, request(), NO_FACTS, now=later)
    assert "expired" in refused(decision, "misconfigured_channel", "failed").message


def test_empty_channel_is_nothing_new(view, signed):
    empty = replace(view, manifests={"production": signed("production", ())})
    refused(
        answer_update(empty, request(), NO_FACTS, now=NOW), "no_new_version_available", "up_to_date"
    )


# --- platform -----------------------------------------------------------------------------------
@pytest.mark.parametrize("platform", ["ios", "android"])
def test_ios_and_android_are_served(view, platform):
    assert offered(answer_update(view, request(platform=platform), NO_FACTS, now=NOW)) == "1.0.0"


@pytest.mark.parametrize("platform", ["electron", "web", "Android"])
def test_other_platforms_are_blocked(view, platform):
    decision = answer_update(view, request(platform=platform), NO_FACTS, now=NOW)
    refused(decision, "unsupported_platform", "blocked")


# --- same version / nothing new -----------------------------------------------------------------
def test_device_on_the_newest_release_is_up_to_date(view):
    decision = answer_update(view, request(version_name="1.0.0"), NO_FACTS, now=NOW)
    assert refused(decision, "no_new_version_available", "up_to_date").message == (
        "No new version available"
    )


def test_device_on_an_older_release_gets_the_newest(view):
    decision = answer_update(
        view, request(version_name="1.0.0", default_channel="beta"), NO_FACTS, now=NOW
    )
    assert offered(decision) == "1.0.1"


# --- builtin target ------------------------------------------------------------------------------
def test_channel_reverted_to_builtin_sends_devices_back(view, signed):
    builtin = replace(view, manifests={"production": signed("production", (OLD,), builtin=True)})
    decision = answer_update(builtin, request(version_name="1.0.0"), NO_FACTS, now=NOW)
    assert isinstance(decision, BuiltinReply)


@pytest.mark.parametrize("version_name", [NATIVE, "builtin"])
def test_device_already_on_builtin_is_not_sent_builtin_again(view, signed, version_name):
    builtin = replace(view, manifests={"production": signed("production", (OLD,), builtin=True)})
    decision = answer_update(builtin, request(version_name=version_name), NO_FACTS, now=NOW)
    refused(decision, "already_on_builtin", "up_to_date")


def test_builtin_is_detected_as_version_name_equal_to_version_build():
    assert is_on_builtin(request(version_name="2.3.4", version_build="2.3.4"))
    assert is_on_builtin(request(version_name="builtin"))
    assert not is_on_builtin(request(version_name="1.0.0", version_build="2.3.4"))


# --- failed versions ------------------------------------------------------------------------------
def test_a_version_the_device_reported_failed_is_not_offered_again(view):
    facts = DeviceFacts(failed=frozenset({"1.0.1"}))
    decision = answer_update(
        view, request(version_name="1.0.0", default_channel="beta"), facts, now=NOW
    )
    refused(decision, "no_new_version_available", "up_to_date")


def test_after_a_failure_an_older_eligible_release_is_still_offered(view):
    facts = DeviceFacts(failed=frozenset({"1.0.1"}))
    decision = answer_update(view, request(default_channel="beta"), facts, now=NOW)
    assert offered(decision) == "1.0.0"


# --- rollout bucket from device_id -------------------------------------------------------------
def test_rollout_bucket_decides_from_the_device_id(view, signed):
    staged = replace(NEW, rollout_bp=1000)
    v = replace(view, manifests={"production": signed("production", (staged, OLD))})
    inside = device_in(staged.rollout_salt, inside=True, basis_points=1000)
    outside = device_in(staged.rollout_salt, inside=False, basis_points=1000)
    on_old = {"version_name": "1.0.0"}
    assert offered(answer_update(v, request(device_id=inside, **on_old), NO_FACTS, now=NOW)) == (
        "1.0.1"
    )
    decision = answer_update(v, request(device_id=outside, **on_old), NO_FACTS, now=NOW)
    refused(decision, "no_new_version_available", "up_to_date")


def test_device_on_a_release_outside_its_cohort_keeps_it(view, signed):
    staged = replace(NEW, rollout_bp=1000)
    v = replace(view, manifests={"production": signed("production", (staged, OLD))})
    outside = device_in(staged.rollout_salt, inside=False, basis_points=1000)
    decision = answer_update(v, request(device_id=outside, version_name="1.0.1"), NO_FACTS, now=NOW)
    refused(decision, "no_new_version_available", "up_to_date")


def test_paused_release_is_skipped_for_devices_not_on_it(view, signed):
    paused = replace(NEW, paused=True)
    v = replace(view, manifests={"production": signed("production", (paused, OLD))})
    assert offered(answer_update(v, request(), NO_FACTS, now=NOW)) == "1.0.0"


def test_release_below_the_security_floor_is_never_offered(view, signed):
    v = replace(view, manifests={"production": signed("production", (OLD,), security_floor=2)})
    refused(
        answer_update(v, request(), NO_FACTS, now=NOW), "no_new_version_available", "up_to_date"
    )


def test_revert_offers_the_older_release_to_a_device_on_the_newer(view, signed):
    reverted = replace(view, manifests={"production": signed("production", (OLD, NEW))})
    decision = answer_update(reverted, request(version_name="1.0.1"), NO_FACTS, now=NOW)
    assert offered(decision) == "1.0.0"


# --- native compatibility -------------------------------------------------------------------------
def test_native_build_is_the_integer_version_code():
    assert native_build(request(version_code="7")) == 7
    assert native_build(request(version_code="")) is None
    assert native_build(request(version_code="1.0.3")) is None
    assert native_build(request(version_code="٣")) is None  # a non-ASCII digit


def test_release_needing_a_newer_native_build_is_a_breaking_store_update(view, signed):
    needs_8 = replace(NEW, native_min=8)
    v = replace(view, manifests={"production": signed("production", (needs_8,))})
    decision = answer_update(v, request(version_code="7"), NO_FACTS, now=NOW)
    no = refused(decision, "disable_auto_update_under_native", "blocked")
    assert no.breaking
    assert no.version == "1.0.1"


def test_device_kept_on_an_older_release_hears_about_the_store_update(view, signed):
    needs_8 = replace(NEW, native_min=8)
    v = replace(view, manifests={"production": signed("production", (needs_8, OLD))})
    decision = answer_update(v, request(version_name="1.0.0"), NO_FACTS, now=NOW)
    assert refused(decision, "disable_auto_update_under_native", "blocked").breaking


def test_older_compatible_release_is_offered_below_the_native_range(view, signed):
    needs_8 = replace(NEW, native_min=8)
    v = replace(view, manifests={"production": signed("production", (needs_8, OLD))})
    assert offered(answer_update(v, request(), NO_FACTS, now=NOW)) == "1.0.0"


def test_device_with_the_native_build_in_range_gets_it(view, signed):
    ranged = replace(NEW, native_min=7, native_max=9)
    v = replace(view, manifests={"production": signed("production", (ranged,))})
    assert offered(answer_update(v, request(version_code="9"), NO_FACTS, now=NOW)) == "1.0.1"


def test_device_above_the_native_max_gets_nothing_new(view, signed):
    ranged = replace(NEW, native_max=6)
    v = replace(view, manifests={"production": signed("production", (ranged,))})
    decision = answer_update(v, request(version_code="7"), NO_FACTS, now=NOW)
    assert not refused(decision, "no_new_version_available", "up_to_date").breaking


def test_non_integer_version_code_cannot_take_a_ranged_release(view, signed):
    ranged = replace(NEW, native_min=1)
    v = replace(view, manifests={"production": signed("production", (ranged,))})
    decision = answer_update(v, request(version_code="1.0.3"), NO_FACTS, now=NOW)
    refused(decision, "unknown_version_build", "blocked")


def test_without_version_code_the_native_range_is_not_checked(view, signed):
    ranged = replace(NEW, native_min=8)
    v = replace(view, manifests={"production": signed("production", (ranged,))})
    assert offered(answer_update(v, probe_request(), NO_FACTS, now=NOW)) == "1.0.1"


# --- the Capgo artifact and key_id ----------------------------------------------------------------
def test_release_without_a_capgo_artifact_is_not_served(view, signed):
    sealed_only = replace(NEW, capgo=None)
    v = replace(view, manifests={"production": signed("production", (sealed_only,))})
    decision = answer_update(v, request(), NO_FACTS, now=NOW)
    assert "1.0.1" in refused(decision, "no_bundle", "failed").message


def test_key_id_mismatch_is_blocked(view, signed):
    other_key = replace(NEW, capgo=capgo("1.0.1", key_id="MIIBCgKCAQEAzzzzzzzz"))
    v = replace(view, manifests={"production": signed("production", (other_key,))})
    refused(answer_update(v, request(), NO_FACTS, now=NOW), "key_id_mismatch", "blocked")


def test_plugin_without_a_public_key_is_blocked(view):
    # The real plugin always sends version_os; key_id only when it has a publicKey.
    decision = answer_update(view, request(key_id=""), NO_FACTS, now=NOW)
    refused(decision, "key_id_mismatch", "blocked")


def test_capgo_probe_without_key_id_is_offered_the_release(view):
    decision = answer_update(view, probe_request(default_channel="beta"), NO_FACTS, now=NOW)
    assert offered(decision) == "1.0.1"
    assert decision.release.capgo is not None
    assert decision.release.capgo.key_id == KEY_ID


def test_full_rollout_constant_matches_the_model():
    assert FULL == 10_000
