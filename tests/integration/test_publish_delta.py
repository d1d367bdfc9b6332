"""``otaseal publish`` with delta patches as a user runs it: the patches, status, bad input."""

from __future__ import annotations

import base64
import random
from typing import TYPE_CHECKING

from helpers import (
    APP,
    error_json,
    folder_snapshot,
    installed_text,
    make_build,
    ok_json,
    otaseal,
)

if TYPE_CHECKING:
    from pathlib import Path


def _project(tmp_path: Path) -> Path:
    ok_json(otaseal("init", "--app", APP, "--dir", str(tmp_path / "project"), "--json"))
    return tmp_path / "project"


def _publish(project: Path, build: Path, label: str, *more: str) -> dict[str, object]:
    args = ("publish", str(build), "--channel", "beta", "--label", label, *more, "--json")
    return ok_json(otaseal(*args, cwd=project))


def test_publish_lists_its_patch_and_status_shows_full_and_delta_size(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert "  report: file:keys/report.pem" in (project / "otaseal.yml").read_text()
    build = make_build(tmp_path / "dist", "one")
    first = _publish(project, build, "1.0.0")
    assert first["patches"] == []
    (build / "index.html").write_text("<!doctype html><p>two</p>\n")
    second = _publish(project, build, "1.0.1")
    [patch] = second["patches"]  # type: ignore[misc]
    assert (patch["base_label"], patch["base_sha256"], patch["changed"]) == (
        "1.0.0",
        first["bundle_sha256"],
        1,
    )
    assert 0 < patch["bytes"] < second["bundle_size"]  # type: ignore[operator]

    status = ok_json(otaseal("status", "--json", cwd=project))
    beta = status["channels"]["beta"]  # type: ignore[index]
    assert beta["sealed_to_report_key"] is True
    newest, oldest = beta["releases"]
    assert newest["update"] == {
        "full_bytes": second["bundle_size"],
        "delta_bytes": patch["bytes"],
        "delta_from": "1.0.0",
        "files_changed": 1,
        "patches": 1,
    }
    assert oldest["update"]["delta_bytes"] is None
    text = otaseal("status", cwd=project).stdout
    assert "1.0.1: full " in text
    assert "; delta from 1.0.0 " in text
    assert "1 file changed" in text
    assert "(+ the CI report key)" in text


def test_a_bad_delta_from_is_exit_2_with_the_reason_and_nothing_changes(tmp_path: Path) -> None:
    project = _project(tmp_path)
    build = make_build(tmp_path / "dist", "one")
    _publish(project, build, "1.0.0")
    (build / "index.html").write_text("<!doctype html><p>two</p>\n")
    before = folder_snapshot(project)
    for args, words in (
        (("--delta-from", "9.9.9"), "no release of that label, digest or counter was ever on beta"),
        (("--delta-from", "1.0.0", "--no-delta"), "not allowed with argument"),
    ):
        result = otaseal("publish", str(build), "--channel", "beta", *args, "--json", cwd=project)
        assert result.returncode == 2, result.stdout
        assert words in error_json(result)["message"]
        assert folder_snapshot(project) == before


def _fetch(tmp_path: Path, project: Path) -> dict[str, object]:
    return ok_json(
        otaseal(
            "fetch",
            *("--store", str(project / "store"), "--app", APP, "--channel", "beta"),
            *("--root", str(project / "root.json")),
            *("--decryption-key", str(project / "keys" / "app-decryption.pem")),
            *("--state", str(tmp_path / "device"), "--install-id", "d1"),
            *("--out", str(tmp_path / "www"), "--json"),
        )
    )


def test_a_device_on_the_previous_release_downloads_only_the_patch(tmp_path: Path) -> None:
    project = _project(tmp_path)
    build = make_build(tmp_path / "dist", "one")
    for n in range(40):  # chunks that do not change: a patch copies them
        body = base64.b64encode(random.Random(n).randbytes(3000)).decode()  # noqa: S311 - test data
        (build / "assets" / f"chunk-{n}.js").write_text(f"export const c{n} = {body!r};\n")
    first = _publish(project, build, "1.0.0")
    assert _fetch(tmp_path, project)["downloaded"] == first["bundle_size"]
    (build / "index.html").write_text("<!doctype html><title>two</title><p>two</p>\n")
    second = _publish(project, build, "1.0.1")
    [patch] = second["patches"]  # type: ignore[misc]

    fetched = _fetch(tmp_path, project)

    assert fetched["delta"] == {
        "used": True,
        "base": first["bundle_sha256"],
        "base_label": "1.0.0",
        "bytes": patch["bytes"],
        "refused": None,
    }
    assert fetched["downloaded"] == patch["bytes"]
    assert patch["bytes"] * 10 < second["bundle_size"]  # type: ignore[operator]
    assert installed_text(tmp_path / "www") == "two"
