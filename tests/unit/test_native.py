"""The native-layer fingerprint: a pure function of package.json and the Capacitor config."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from otaseal.errors import InputError
from otaseal.model import Release
from otaseal.native import (
    DEFAULT_NATIVE_PACKAGES,
    NativeLayer,
    compare,
    config_digest,
    fingerprint,
    is_native_package,
    native_layer,
    native_packages,
    project_dir_for,
    read_native_layer,
)

PACKAGE = {
    "name": "shop",
    "dependencies": {
        "@capacitor/core": "6.1.0",
        "@capacitor/android": "6.1.0",
        "@capgo/capacitor-updater": "6.2.0",
        "react": "18.3.1",
    },
    "devDependencies": {"@capacitor/cli": "6.1.0", "cordova-plugin-x": "1.0.0", "vite": "5.0.0"},
}


@pytest.mark.parametrize(
    ("name", "native"),
    [
        ("@capacitor/android", True),
        ("@capacitor/core", True),
        ("@capacitor/camera", True),
        ("@capacitor/cli", False),
        ("@capacitor/assets", False),
        ("@capacitor-community/sqlite", True),
        ("@capawesome/capacitor-app-update", True),
        ("@capgo/capacitor-updater", True),
        ("@capgo/cli", False),
        ("capacitor-native-biometric", True),
        ("@revenuecat/purchases-capacitor", True),
        ("@sentry/capacitor", True),
        ("cordova-plugin-inappbrowser", True),
        ("@awesome/cordova-plugin-x", True),
        ("react", False),
        ("capacitor", False),
        ("@ionic/react", False),
        ("vite", False),
    ],
)
def test_which_packages_are_native_plugins(name: str, *, native: bool) -> None:
    assert is_native_package(name) is native


def test_native_packages_reads_both_dependency_sections_sorted() -> None:
    assert native_packages(PACKAGE) == {
        "@capacitor/android": "6.1.0",
        "@capacitor/core": "6.1.0",
        "@capgo/capacitor-updater": "6.2.0",
        "cordova-plugin-x": "1.0.0",
    }
    assert list(native_packages(PACKAGE)) == sorted(native_packages(PACKAGE))
    assert native_packages({"dependencies": ["not", "a", "map"]}) == {}


def test_override_patterns_replace_the_list_and_exclude_with_a_bang() -> None:
    patterns = ["@capacitor/*", "!@capacitor/core", "react"]
    assert native_packages(PACKAGE, patterns) == {
        "@capacitor/android": "6.1.0",
        "@capacitor/cli": "6.1.0",
        "react": "18.3.1",
    }
    assert native_packages(PACKAGE, []) == {}
    assert "@capacitor/*" in DEFAULT_NATIVE_PACKAGES


def test_fingerprint_is_sha256_of_the_spec_document() -> None:
    doc = (
        '{"config":{"file":"capacitor.config.json","sha256":"'
        + "ab" * 32
        + '"},"packages":{"@capacitor/android":"6.1.0"},"v":1}'
    )
    expected = hashlib.sha256(doc.encode()).hexdigest()
    assert fingerprint({"@capacitor/android": "6.1.0"}, "capacitor.config.json", "ab" * 32) == (
        expected
    )
    no_config = hashlib.sha256(b'{"config":null,"packages":{},"v":1}').hexdigest()
    assert fingerprint({}, None, None) == no_config


def test_json_config_ignores_formatting_and_the_cli_only_members() -> None:
    base = {"appId": "com.example.shop", "webDir": "dist", "plugins": {"SplashScreen": {"x": 1}}}
    digest = config_digest("capacitor.config.json", json.dumps(base).encode())
    reformatted = json.dumps(base, indent=4, sort_keys=True).encode()
    assert config_digest("capacitor.config.json", reformatted) == digest
    moved_web = json.dumps({**base, "webDir": "www", "bundledWebRuntime": False}).encode()
    assert config_digest("capacitor.config.json", moved_web) == digest
    plugin = json.dumps({**base, "plugins": {"SplashScreen": {"x": 2}}}).encode()
    assert config_digest("capacitor.config.json", plugin) != digest
    server = json.dumps({**base, "server": {"androidScheme": "http"}}).encode()
    assert config_digest("capacitor.config.json", server) != digest


def test_ts_config_and_broken_json_are_hashed_as_bytes() -> None:
    source = b"export default { appId: 'com.example.shop' };\n"
    assert config_digest("capacitor.config.ts", source) == hashlib.sha256(source).hexdigest()
    assert config_digest("capacitor.config.ts", source + b"// note\n") != config_digest(
        "capacitor.config.ts", source
    )
    broken = b"{not json"
    assert config_digest("capacitor.config.json", broken) == hashlib.sha256(broken).hexdigest()


def test_compare_names_added_removed_and_changed_packages() -> None:
    config = ("capacitor.config.json", b'{"appId": "a"}')
    old = native_layer(PACKAGE, config)
    assert compare(old.fingerprint, old.packages, old) is None
    deps = dict(PACKAGE["dependencies"])
    deps["@capacitor/android"] = "7.0.0"
    deps["@capacitor/camera"] = "7.0.1"
    del deps["@capgo/capacitor-updater"]
    new = native_layer({**PACKAGE, "dependencies": deps}, config)
    change = compare(old.fingerprint, old.packages, new)
    assert change is not None
    assert change.added == {"@capacitor/camera": "7.0.1"}
    assert change.removed == {"@capgo/capacitor-updater": "6.2.0"}
    assert change.changed == {"@capacitor/android": ("6.1.0", "7.0.0")}
    assert not change.config_changed
    assert change.describe("capacitor.config.json") == (
        "added @capacitor/camera 7.0.1; removed @capgo/capacitor-updater 6.2.0; "
        "@capacitor/android 6.1.0 → 7.0.0"
    )


def test_compare_tells_a_config_change_from_the_recorded_packages() -> None:
    old = native_layer(PACKAGE, ("capacitor.config.json", b'{"appId": "a"}'))
    new = native_layer(PACKAGE, ("capacitor.config.json", b'{"appId": "b"}'))
    change = compare(old.fingerprint, old.packages, new)
    assert change is not None
    assert (change.added, change.removed, change.changed) == ({}, {}, {})
    assert change.config_changed
    assert change.describe("capacitor.config.json") == "capacitor.config.json changed"
    none = NativeLayer({}, None, None)
    gone = compare(old.fingerprint, old.packages, none)
    assert gone is not None
    assert gone.config_changed
    assert gone.describe(None).endswith("the Capacitor config changed")


def test_reading_a_project(tmp_path: Path) -> None:
    assert read_native_layer(tmp_path) is None
    (tmp_path / "package.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(PACKAGE).encode())
    plain = read_native_layer(tmp_path)
    assert plain == native_layer(PACKAGE, None)
    (tmp_path / "capacitor.config.json").write_text('{"appId": "a"}')
    (tmp_path / "capacitor.config.ts").write_text("export default {};\n")
    layer = read_native_layer(tmp_path)
    assert layer is not None
    assert layer.config_file == "capacitor.config.ts"  # Capacitor's CLI prefers .ts
    assert (
        layer.fingerprint
        == native_layer(PACKAGE, ("capacitor.config.ts", b"export default {};\n")).fingerprint
    )


@pytest.mark.parametrize("text", ["{broken", "[1, 2]"])
def test_a_broken_package_json_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "package.json").write_text(text)
    with pytest.raises(InputError, match="package.json") as caught:
        read_native_layer(tmp_path)
    assert "--project-dir" in caught.value.diagnostics()


def test_a_folder_named_package_json_is_no_package_json(tmp_path: Path) -> None:
    (tmp_path / "package.json").mkdir()
    (tmp_path / "package.json" / "x").write_text("")
    assert read_native_layer(tmp_path) is None  # a folder named package.json is not one


def test_project_dir_defaults(tmp_path: Path) -> None:
    app, cwd = tmp_path / "app", tmp_path / "elsewhere"
    (app / "dist").mkdir(parents=True)
    cwd.mkdir()
    assert project_dir_for(app / "dist", None, cwd) == cwd
    (app / "package.json").write_text("{}")
    assert project_dir_for(app / "dist", None, cwd) == app.resolve()
    assert project_dir_for(app / "dist", tmp_path, cwd) == tmp_path


def _release_doc(**members: object) -> dict[str, object]:
    return {
        "label": "1.4.2",
        "counter": 1,
        "bundle": {"sha256": "a" * 64, "length": 10},
        "plaintext": {"sha256": "b" * 64, "length": 9},
        "content": {"files": 1, "size": 5},
        "native": {"min": None, "max": None},
        "rollout": {"basis_points": 10000, "salt": "s", "paused": False},
        "source": {"commit": None, "pr": None},
        "published": "2026-01-01T00:00:00Z",
        **members,
    }


def test_a_release_round_trips_its_native_layer() -> None:
    doc = _release_doc(native_fingerprint="c" * 64, native_packages={"@capacitor/ios": "6.0.0"})
    release = Release.from_dict(doc, "releases[0]")
    assert release.native_fingerprint == "c" * 64
    assert release.native_packages == (("@capacitor/ios", "6.0.0"),)
    assert release.to_dict() == doc
    bare = Release.from_dict(_release_doc(), "releases[0]")
    assert "native_fingerprint" not in bare.to_dict()


@pytest.mark.parametrize(
    "members",
    [
        {"native_fingerprint": "C" * 64, "native_packages": {}},
        {"native_fingerprint": 7, "native_packages": {}},
        {"native_fingerprint": "c" * 64, "native_packages": ["@capacitor/ios"]},
        {"native_fingerprint": "c" * 64, "native_packages": {"@capacitor/ios": 6}},
        {"native_fingerprint": "c" * 64},
        {"native_packages": {"@capacitor/ios": "6.0.0"}},
    ],
)
def test_devices_ignore_a_malformed_native_layer(members: dict[str, object]) -> None:
    release = Release.from_dict(_release_doc(**members), "releases[0]")
    assert (release.native_fingerprint, release.native_packages) == (None, None)
