"""Row by row: which counter each plugin action feeds, and folding grouped rows."""

from __future__ import annotations

import pytest

from otaseal.serve.db import ReleaseCounts
from otaseal.serve.rollup import Counter, counter_of, fold, install_failures

APP = "com.example.app"


@pytest.mark.parametrize(
    ("action", "counter"),
    [
        ("check", Counter.CHECKS),
        ("download_complete", Counter.DOWNLOADS),
        # the worker's transfer events precede download_complete for the same download
        ("download_zip_complete", Counter.NONE),
        ("download_manifest_complete", Counter.NONE),
        ("download_zip_start", Counter.NONE),
        ("download_50", Counter.NONE),
        ("set", Counter.INSTALLS),
        ("set_next", Counter.NONE),
        ("reset", Counter.NONE),
        ("delete", Counter.NONE),
        ("update_fail", Counter.ROLLBACKS),
        ("download_fail", Counter.FAILURES),
        ("finish_download_fail", Counter.FAILURES),
        ("checksum_fail", Counter.FAILURES),
        ("checksum_required", Counter.FAILURES),
        ("session_key_required", Counter.FAILURES),
        ("decrypt_fail", Counter.FAILURES),
        ("unzip_fail", Counter.FAILURES),
        ("windows_path_fail", Counter.FAILURES),
        ("canonical_path_fail", Counter.FAILURES),
        ("directory_path_fail", Counter.FAILURES),
        ("manifest_path_fail", Counter.FAILURES),
        ("download_manifest_file_fail", Counter.FAILURES),
        ("download_manifest_checksum_fail", Counter.FAILURES),
        ("download_manifest_brotli_fail", Counter.FAILURES),
        ("low_mem_fail", Counter.FAILURES),
        ("insufficient_disk_space", Counter.FAILURES),
        ("set_fail", Counter.FAILURES),
        ("app_launch_timeout", Counter.NONE),
        ("app_crash", Counter.NONE),
        ("webview_javascript_error", Counter.NONE),
        ("rate_limit_reached", Counter.NONE),
        ("blocked_by_server_url", Counter.NONE),
        ("some_future_action", Counter.NONE),
        ("", Counter.NONE),
    ],
)
def test_counter_of_each_plugin_action(action: str, counter: Counter) -> None:
    assert counter_of(action) is counter


def test_fold_sums_each_counter_per_release() -> None:
    counts = fold(
        [
            (APP, "production", "1.1", "check", 7),
            (APP, "production", "1.1", "download_complete", 3),
            (APP, "production", "1.1", "download_zip_complete", 3),
            (APP, "production", "1.1", "set", 2),
            (APP, "production", "1.1", "update_fail", 1),
            (APP, "production", "1.1", "checksum_fail", 1),
            (APP, "production", "1.1", "set_fail", 2),
            (APP, "production", "1.1", "app_crash", 5),
        ],
        [(APP, "production", "1.1", 9)],
    )
    assert counts == [
        ReleaseCounts(
            app=APP,
            channel="production",
            version="1.1",
            checks=7,
            downloads=3,
            installs=2,
            failures={"checksum_fail": 1, "set_fail": 2},
            rollbacks=1,
            devices=9,
        )
    ]


def test_fold_keeps_download_fail_under_its_own_name_at_the_running_release() -> None:
    (running,) = fold([(APP, "production", "1.0", "download_fail", 4)], [])
    assert running.version == "1.0"
    assert running.failures == {"download_fail": 4}
    assert (running.installs, running.rollbacks) == (0, 0)
    assert install_failures(running) == 0


def test_install_failures_counts_only_actions_that_name_their_target() -> None:
    counts = ReleaseCounts(
        APP,
        "production",
        "1.1",
        failures={
            "set_fail": 1,
            "decrypt_fail": 2,
            "download_manifest_checksum_fail": 3,
            "download_fail": 10,
            "unzip_fail": 10,
            "checksum_fail": 10,
        },
    )
    assert install_failures(counts) == 6


def test_fold_sorts_and_separates_apps_channels_and_releases() -> None:
    counts = fold(
        [
            ("org.other.app", "production", "1.0", "set", 1),
            (APP, "production", "1.1", "set", 1),
            (APP, "beta", "1.1", "set", 1),
            (APP, "beta", "1.1", "set", 2),  # the same group twice adds up
        ],
        [(APP, "beta", "1.1", 2)],
    )
    assert [(c.app, c.channel, c.version, c.installs, c.devices) for c in counts] == [
        (APP, "beta", "1.1", 3, 2),
        (APP, "production", "1.1", 1, 0),
        ("org.other.app", "production", "1.0", 1, 0),
    ]


def test_fold_shows_a_release_seen_only_through_opaque_actions() -> None:
    (only,) = fold([(APP, "", "1.2", "app_moved_to_foreground", 2)], [(APP, "", "1.2", 1)])
    assert only == ReleaseCounts(APP, "", "1.2", devices=1)


def test_fold_of_nothing_is_empty() -> None:
    assert fold([], []) == []
