"""Fail-closed publishing: a staged rollout and a changed native layer are never replaced silently.

Each refusal is exit 2 with nothing uploaded, claimed or signed (the store is compared byte for
byte); each override says in a notice and in the result what it let through.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from otaseal import operations as ops
from otaseal.config import load_config
from otaseal.errors import InputError
from otaseal.project import init_project
from tests.conftest import APP, NOW

PACKAGE = {
    "name": "shop",
    "dependencies": {"@capacitor/core": "6.1.0", "@capacitor/android": "6.1.0", "react": "18"},
    "devDependencies": {"@capacitor/cli": "6.1.0"},
}


def _store_files(project: ops.Project) -> dict[str, bytes]:
    root = Path(project.store.describe())
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _variant(web: Path, text: str) -> Path:
    target = web.parent / f"web-{text}"
    if not target.exists():
        shutil.copytree(web, target)
    (target / "index.html").write_text(f"<!doctype html><p>{text}</p>")
    return target


def _package(folder: Path, **dependencies: str) -> None:
    deps = {**PACKAGE["dependencies"], **dependencies}
    doc = {**PACKAGE, "dependencies": {k: v for k, v in deps.items() if v}}
    (folder / "package.json").write_text(json.dumps(doc))


def _refused(project: ops.Project, build: Path, match: str, **options: object) -> InputError:
    before = _store_files(project)
    with pytest.raises(InputError, match=match) as caught:
        ops.publish(project, build, channel="beta", **options)  # type: ignore[arg-type]
    assert caught.value.exit_code == 2
    assert _store_files(project) == before, "a refused publish wrote to the store"
    return caught.value


# --- a staged rollout ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("percent", "pause"), [(10, False), (0.01, False), (99.99, False), (10, True)]
)
def test_publish_onto_a_staged_rollout_is_refused(
    project: ops.Project, web: Path, percent: float, *, pause: bool
) -> None:
    ops.publish(project, web, channel="beta", label="1.0.0", rollout=percent)
    if pause:
        ops.set_rollout(project, channel="beta", pause=True)
    error = _refused(project, _variant(web, "two"), "staged rollout")
    text = error.diagnostics()
    assert "1.0.0 (" in text
    assert f"{percent:g} % of devices" in text
    assert ("paused" in error.what) is pause
    assert "--replace-rollout" in text
    assert "nothing was uploaded or signed" in text
    assert "\n" not in text


@pytest.mark.parametrize(("percent", "pause"), [(100, False), (100, True), (0, False)])
def test_full_paused_or_zero_rollouts_are_not_staged(
    project: ops.Project, web: Path, percent: float, *, pause: bool
) -> None:
    ops.publish(project, web, channel="beta", label="1.0.0", rollout=percent)
    if pause:
        ops.set_rollout(project, channel="beta", pause=True)
    result = ops.publish(project, _variant(web, "two"), channel="beta", label="1.1.0")
    assert not result.noop
    assert result.replaced_rollout is None


def test_replace_rollout_publishes_and_says_what_it_replaced(
    project: ops.Project, web: Path
) -> None:
    first = ops.publish(project, web, channel="beta", label="1.0.0", rollout=25)
    ops.set_rollout(project, channel="beta", pause=True)
    notices: list[str] = []
    result = ops.publish(
        project,
        _variant(web, "two"),
        channel="beta",
        label="1.1.0",
        replace_rollout=True,
        notice=notices.append,
    )
    assert not result.noop
    assert result.replaced_rollout is not None
    assert result.replaced_rollout.sha256 == first.release.sha256
    assert result.replaced_rollout.rollout_bp == 2500
    assert result.replaced_rollout.paused
    assert result.release.rollout_bp == 10_000
    assert any(
        n.startswith("replaced the staged rollout of 1.0.0") and "25 %, paused" in n
        for n in notices
    ), notices


def test_the_same_build_on_a_staged_rollout_stays_a_noop(project: ops.Project, web: Path) -> None:
    ops.publish(project, web, channel="beta", label="1.0.0", rollout=10)
    before = _store_files(project)
    notices: list[str] = []
    again = ops.publish(project, web, channel="beta", notice=notices.append)
    assert again.noop
    assert again.replaced_rollout is None
    assert "nothing published" in notices[-1]
    assert _store_files(project) == before


def test_promote_onto_a_staged_rollout_is_not_a_publish(project: ops.Project, web: Path) -> None:
    ops.publish(project, web, channel="beta", label="1.0.0")
    ops.promote(project, source="beta", target="production", rollout=10)
    ops.publish(project, _variant(web, "two"), channel="beta", label="1.1.0")
    moved = ops.promote(project, source="beta", target="production", rollout=10)
    assert moved.manifest.current and moved.manifest.current.label == "1.1.0"


# --- the native layer ---------------------------------------------------------------------------
def test_release_records_the_native_fingerprint(project: ops.Project, web: Path) -> None:
    _package(web.parent)
    (web.parent / "capacitor.config.json").write_text('{"appId": "com.example.app"}')
    result = ops.publish(project, web, channel="beta", label="1.0.0")
    release = result.release
    assert release.native_fingerprint is not None
    assert result.native_fingerprint == release.native_fingerprint
    assert dict(release.native_packages or ()) == {
        "@capacitor/android": "6.1.0",
        "@capacitor/core": "6.1.0",
    }
    stored = ops.read_head(project, "beta").manifest
    assert stored is not None
    assert stored.current == release
    payload = json.loads(stored.to_payload())
    assert payload["releases"][0]["native_fingerprint"] == release.native_fingerprint


def test_changed_native_plugins_are_refused_and_named(project: ops.Project, web: Path) -> None:
    _package(web.parent)
    ops.publish(project, web, channel="beta", label="1.0.0", native_min=40)
    _package(
        web.parent,
        **{"@capacitor/android": "7.0.0", "@capacitor/camera": "7.0.1", "@capacitor/core": ""},
    )
    error = _refused(project, _variant(web, "two"), "native layer changed")
    text = error.diagnostics()
    assert "added @capacitor/camera 7.0.1" in text
    assert "removed @capacitor/core 6.1.0" in text
    assert "@capacitor/android 6.1.0 → 7.0.0" in text
    assert "`--native-min N` above the current release's (40)" in text
    assert "--accept-incompatible" in text
    assert "nothing was uploaded or signed" in text
    _refused(project, _variant(web, "three"), "native layer changed", native_min=40)
    _refused(project, _variant(web, "four"), "native layer changed", native_min=39)


def test_a_changed_config_is_refused(project: ops.Project, web: Path) -> None:
    _package(web.parent)
    config = web.parent / "capacitor.config.json"
    config.write_text('{"appId": "com.example.app", "webDir": "dist"}')
    ops.publish(project, web, channel="beta", label="1.0.0")
    config.write_text('{"appId": "com.example.app", "webDir": "www"}')  # CLI-only member
    ops.publish(project, _variant(web, "two"), channel="beta", label="1.1.0")
    config.write_text('{"appId": "com.example.app", "plugins": {"X": {"on": true}}}')
    error = _refused(project, _variant(web, "three"), "native layer changed")
    assert "capacitor.config.json changed" in error.what


def test_a_higher_native_min_lets_a_native_change_through(project: ops.Project, web: Path) -> None:
    _package(web.parent)
    ops.publish(project, web, channel="beta", label="1.0.0", native_min=40)
    _package(web.parent, **{"@capacitor/camera": "7.0.1"})
    notices: list[str] = []
    result = ops.publish(
        project, _variant(web, "two"), channel="beta", native_min=41, notice=notices.append
    )
    assert result.release.native_min == 41
    assert any("added @capacitor/camera 7.0.1): for native builds from 41 on" in n for n in notices)


def test_any_native_min_is_new_when_the_current_release_has_none(
    project: ops.Project, web: Path
) -> None:
    _package(web.parent)
    ops.publish(project, web, channel="beta", label="1.0.0")
    _package(web.parent, **{"@capacitor/camera": "7.0.1"})
    assert not ops.publish(project, _variant(web, "two"), channel="beta", native_min=1).noop


def test_accept_incompatible_overrides_and_says_so(project: ops.Project, web: Path) -> None:
    _package(web.parent)
    ops.publish(project, web, channel="beta", label="1.0.0")
    _package(web.parent, **{"@capacitor/android": "6.2.0"})
    notices: list[str] = []
    result = ops.publish(
        project,
        _variant(web, "two"),
        channel="beta",
        accept_incompatible=True,
        notice=notices.append,
    )
    assert not result.noop
    assert any("accepted with --accept-incompatible" in n for n in notices), notices
    # the new layer is what the next publish compares with
    assert ops.publish(project, _variant(web, "three"), channel="beta").release.label


def test_same_build_after_a_native_change_stays_a_noop(project: ops.Project, web: Path) -> None:
    _package(web.parent)
    ops.publish(project, web, channel="beta", label="1.0.0", rollout=10)
    _package(web.parent, **{"@capacitor/android": "7.0.0"})
    notices: list[str] = []
    assert ops.publish(project, web, channel="beta", notice=notices.append).noop
    assert "nothing published" in notices[-1]


def test_both_rules_refuse_the_rollout_first(project: ops.Project, web: Path) -> None:
    _package(web.parent)
    ops.publish(project, web, channel="beta", label="1.0.0", rollout=10)
    _package(web.parent, **{"@capacitor/android": "7.0.0"})
    _refused(project, _variant(web, "two"), "staged rollout")
    _refused(project, _variant(web, "two"), "native layer changed", replace_rollout=True)
    both = ops.publish(
        project, _variant(web, "two"), channel="beta", replace_rollout=True, native_min=2
    )
    assert both.replaced_rollout is not None


def test_without_package_json_nothing_is_compared_and_a_notice_says_so(
    project: ops.Project, web: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(web.parent)
    notices: list[str] = []
    first = ops.publish(project, web, channel="beta", label="1.0.0", notice=notices.append)
    assert first.release.native_fingerprint is None
    assert any(n.startswith("no package.json in") and "--project-dir" in n for n in notices)
    _package(web.parent)  # a release without a fingerprint is not compared
    second = ops.publish(project, _variant(web, "two"), channel="beta", label="1.1.0")
    assert second.release.native_fingerprint is not None


def test_project_dir_and_the_working_directory(
    project: ops.Project, web: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    _package(app)
    monkeypatch.chdir(app)  # web's parent has no package.json: the working directory counts
    ops.publish(project, web, channel="beta", label="1.0.0")
    _package(app, **{"@capacitor/android": "7.0.0"})
    _refused(project, _variant(web, "two"), "native layer changed")
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _package(other)
    assert not ops.publish(project, _variant(web, "two"), channel="beta", project_dir=other).noop


def test_native_packages_in_the_config_replace_the_rule(tmp_path: Path, web: Path) -> None:
    directory = tmp_path / "custom"
    init_project(APP, directory, now=NOW)
    config_path = directory / "otaseal.yml"
    config_path.write_text(
        config_path.read_text() + "native_packages: ['@capacitor/android', 'my-bridge']\n"
    )
    config = load_config(config_path)
    assert config.native_packages == ("@capacitor/android", "my-bridge")
    project = ops.Project(config, ops.open_store(config.store), clock=lambda: NOW)
    _package(web.parent, **{"my-bridge": "1.0.0"})
    first = ops.publish(project, web, channel="beta", label="1.0.0")
    assert dict(first.release.native_packages or ()) == {
        "@capacitor/android": "6.1.0",
        "my-bridge": "1.0.0",
    }
    _package(web.parent, **{"my-bridge": "1.0.0", "@capacitor/core": "7.0.0"})  # not listed
    ops.publish(project, _variant(web, "two"), channel="beta", label="1.1.0")
    _package(web.parent, **{"my-bridge": "2.0.0", "@capacitor/core": "7.0.0"})
    _refused(project, _variant(web, "three"), "my-bridge 1.0.0 → 2.0.0")


def test_capgo_same_build_on_a_staged_rollout_stays_a_noop(tmp_path: Path, web: Path) -> None:
    directory = tmp_path / "capgo-project"
    init_project(APP, directory, now=NOW, formats=("sealed", "capgo"))
    config = load_config(directory / "otaseal.yml")
    project = ops.Project(config, ops.open_store(config.store), clock=lambda: NOW)
    _package(web.parent)
    first = ops.publish(project, web, channel="beta", label="1.0.0", rollout=10)
    assert first.release.capgo is not None
    _package(web.parent, **{"@capacitor/android": "7.0.0"})
    before = _store_files(project)
    notices: list[str] = []
    again = ops.publish(project, web, channel="beta", notice=notices.append)
    assert again.noop
    assert "nothing published" in notices[-1]
    assert _store_files(project) == before  # the Capgo artifact is not made again either
    _refused(project, _variant(web, "two"), "staged rollout")
