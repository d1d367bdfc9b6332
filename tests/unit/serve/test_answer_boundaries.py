"""Edges of serve's update decision and stats fold, pinned after `make mutation` (docs/TESTING.md).

Each test is a case where a flipped comparison or a dropped argument in ``answer.py`` or
``rollup.py`` would change what a device is told or what ``otaseal stats`` counts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from otaseal.serve.answer import AppView, Offer, answer_update
from otaseal.serve.db import ReleaseCounts
from otaseal.serve.rollup import fold
from otaseal.serve.wire import ERRORS, NoUpdate
from tests.attacks.conftest import NOW

from .conftest import APP, NO_FACTS, release, request

OLD = release("1.0.0", 1)
NEW = release("1.0.1", 2)


def view_of(signed, *releases, **changes) -> AppView:
    return AppView(APP, {"production": signed("production", releases, **changes)}, "production")


def no_update(decision, code: str) -> NoUpdate:
    assert isinstance(decision, NoUpdate), decision
    assert decision.code == code, decision
    return decision


# --- what a device without a channel is told -----------------------------------------------------
def test_a_device_naming_no_channel_gets_the_tables_message(signed):
    nameless = replace(view_of(signed, NEW), default_channel="")

    decision = no_update(answer_update(nameless, request(), NO_FACTS, now=NOW), "no_channel")

    assert decision.message == ERRORS["no_channel"].message == "The app has no such channel"


def test_a_device_naming_an_unknown_channel_hears_its_name(signed):
    decision = answer_update(
        view_of(signed, NEW), request(default_channel="nightly"), NO_FACTS, now=NOW
    )

    assert no_update(decision, "no_channel").message == "The app has no channel 'nightly'"


def test_an_expired_manifest_is_reported_to_the_device_as_expired(signed):
    # Verified while fresh, served after its expiry (a second counts): the check is per request.
    v = view_of(signed, NEW, expires=NOW + timedelta(seconds=1))

    later = NOW + timedelta(seconds=1)
    message = no_update(answer_update(v, request(), NO_FACTS, now=later), "misconfigured_channel")

    assert message.message == "The channel's signed manifest has expired"
    assert isinstance(answer_update(v, request(), NO_FACTS, now=NOW), Offer)


# --- the native range and a version_code that is not a number -------------------------------------
def test_a_release_without_a_native_range_is_served_whatever_the_version_code(signed):
    v = view_of(signed, NEW)

    decision = answer_update(v, request(version_code="1.0.3"), NO_FACTS, now=NOW)

    assert isinstance(decision, Offer), decision
    assert decision.release.label == "1.0.1"


def test_a_release_with_only_a_native_max_needs_a_numeric_version_code(signed):
    v = view_of(signed, replace(NEW, native_max=9))

    decision = answer_update(v, request(version_code="1.0.3"), NO_FACTS, now=NOW)

    no_update(decision, "unknown_version_build")


# --- "store update required" only when a higher native build would get the release ----------------
def test_a_device_kept_on_its_release_is_not_sent_to_the_store_for_an_older_one(signed):
    # The device runs 1.0.1 (its cohort was since closed). 2.0.0 is not for it either way; the
    # older 0.9.0 needs build 9. Nothing here is a store update for this device: it keeps 1.0.1.
    newest = release("2.0.0", 3, native_min=9, rollout_bp=0)
    running = replace(NEW, rollout_bp=0)
    older = release("0.9.0", 1, native_min=9)
    v = view_of(signed, newest, running, older)

    decision = answer_update(v, request(version_name="1.0.1", version_code="7"), NO_FACTS, now=NOW)

    assert no_update(decision, "no_new_version_available").breaking is False


def test_a_build_that_meets_the_native_min_is_never_told_to_update_from_the_store(signed):
    # A range no build can meet (min 7, max 6): build 7 meets the minimum, so a store update
    # would not help; the device hears "nothing new", not "breaking".
    impossible = replace(NEW, native_min=7, native_max=6)
    v = view_of(signed, impossible)

    decision = answer_update(v, request(version_code="7"), NO_FACTS, now=NOW)

    assert no_update(decision, "no_new_version_available").breaking is False
    needs_8 = view_of(signed, replace(NEW, native_min=8))
    assert no_update(
        answer_update(needs_8, request(version_code="7"), NO_FACTS, now=NOW),
        "disable_auto_update_under_native",
    ).breaking


# --- the stats fold is total: any rows in, counts out --------------------------------------------
def test_a_release_seen_only_in_device_rows_is_listed_with_zero_counts():
    counts = fold([], [(APP, "beta", "1.0.0", 3)])

    assert counts == [ReleaseCounts(APP, "beta", "1.0.0", devices=3)]


def test_rows_repeated_for_one_release_and_action_add_up():
    # e.g. the rows of two windows or two databases folded together
    rows = [
        (APP, "beta", "1.0.0", "download_fail", 2),
        (APP, "beta", "1.0.0", "download_fail", 3),
        (APP, "beta", "1.0.0", "set", 4),
        (APP, "beta", "1.0.0", "set", 1),
    ]
    devices = [(APP, "beta", "1.0.0", 5), (APP, "beta", "1.0.0", 2)]

    (counts,) = fold(rows, devices)

    assert counts.failures == {"download_fail": 5}
    assert counts.installs == 5
    assert counts.devices == 7
