"""``otaseal fetch`` with sealed deltas as a user runs it: the patch, the fallback, the report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from helpers import APP, installed_text, make_build, ok_json, otaseal

if TYPE_CHECKING:
    from pathlib import Path


def _project(tmp_path: Path) -> Path:
    ok_json(otaseal("init", "--app", APP, "--dir", str(tmp_path / "project"), "--json"))
    return tmp_path / "project"


def _publish(project: Path, build: Path, label: str) -> dict[str, object]:
    args = ("publish", str(build), "--channel", "beta", "--label", label, "--json")
    return ok_json(otaseal(*args, cwd=project))


def _fetch(tmp_path: Path, project: Path, *more: str):
    return otaseal(
        "fetch",
        *("--store", str(project / "store"), "--app", APP, "--channel", "beta"),
        *("--root", str(project / "root.json")),
        *("--decryption-key", str(project / "keys" / "app-decryption.pem")),
        *("--state", str(tmp_path / "device"), "--install-id", "d1"),
        *("--out", str(tmp_path / "www"), *more),
    )


def _two_releases(tmp_path: Path) -> tuple[Path, dict[str, object], dict[str, object]]:
    """1.0.0 installed on the device, 1.0.1 published with its patch from 1.0.0."""
    project = _project(tmp_path)
    build = make_build(tmp_path / "dist", "one")
    (build / "assets" / "lib.js").write_text("export const lib = 1;\n" * 500)
    first = _publish(project, build, "1.0.0")
    assert ok_json(_fetch(tmp_path, project, "--json"))["delta"] is None
    (build / "index.html").write_text("<!doctype html><title>two</title><p>two</p>\n")
    second = _publish(project, build, "1.0.1")
    assert len(second["patches"]) == 1  # type: ignore[arg-type]
    return project, first, second


def test_fetch_says_it_installed_by_the_patch(tmp_path: Path) -> None:
    project, _, second = _two_releases(tmp_path)
    [patch] = second["patches"]  # type: ignore[misc]

    result = _fetch(tmp_path, project)

    assert result.returncode == 0, result.stderr
    assert f"by its patch from 1.0.0: {patch['bytes']} bytes downloaded" in result.stdout
    assert installed_text(tmp_path / "www") == "two"


def test_an_altered_installed_file_makes_fetch_install_the_full_bundle(tmp_path: Path) -> None:
    project, first, second = _two_releases(tmp_path)
    [patch] = second["patches"]  # type: ignore[misc]
    (tmp_path / "www" / "assets" / "lib.js").write_text("tampered\n")

    result = _fetch(tmp_path, project, "--json")

    fetched = ok_json(result)
    delta = fetched["delta"]
    assert isinstance(delta, dict)
    assert (delta["used"], delta["base"], delta["bytes"]) == (
        False,
        first["bundle_sha256"],
        patch["bytes"],
    )
    assert delta["refused"].startswith("DeltaError: the installed assets/lib.js is ")
    assert fetched["downloaded"] == patch["bytes"] + second["bundle_size"]
    assert installed_text(tmp_path / "www") == "two"
    assert (tmp_path / "www" / "assets" / "lib.js").read_text() == "export const lib = 1;\n" * 500
    state = json.loads((tmp_path / "device" / "state.json").read_text())
    assert state["installed"]["beta"]["label"] == "1.0.1"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith((".otaseal", "www."))]
    assert leftovers == []


def test_fetch_text_names_the_refusal(tmp_path: Path) -> None:
    project, _, _ = _two_releases(tmp_path)
    (tmp_path / "www" / "index.html").unlink()

    result = _fetch(tmp_path, project)

    assert result.returncode == 0, result.stderr
    assert "the full bundle after the patch from 1.0.0 was refused (DeltaError: " in result.stdout
    assert installed_text(tmp_path / "www") == "two"


def test_without_the_install_folder_there_is_no_patch_to_try(tmp_path: Path) -> None:
    project, _, second = _two_releases(tmp_path)
    (tmp_path / "www").rename(tmp_path / "elsewhere")

    fetched = ok_json(_fetch(tmp_path, project, "--json"))

    assert fetched["delta"] is None
    assert fetched["downloaded"] == second["bundle_size"]
    assert installed_text(tmp_path / "www") == "two"
