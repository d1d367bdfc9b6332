"""Shared fixtures: a fixed clock and a fresh project with a folder store.

Also the end of the session's temp-dir hygiene (`make test` fails when the suite leaves anything
in its own TMPDIR): a passing run drops its ``tmp_path`` folders (``tmp_path_retention_policy``
in pyproject.toml), and the hook below removes the ``pytest-of-USER`` folder they lived in.
"""

from __future__ import annotations

import contextlib
import getpass
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from otaseal.config import load_config
from otaseal.operations import Project, open_store
from otaseal.project import init_project

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
APP = "com.example.app"
EXAMPLE_WEB = Path(__file__).resolve().parents[1] / "examples" / "web"


@pytest.hookimpl(trylast=True)  # after pytest's tmpdir plugin removed this session's tmp_path
def pytest_sessionfinish() -> None:
    """Remove ``$TMPDIR/pytest-of-USER`` when no session (ours or another) still uses it."""
    with contextlib.suppress(OSError):  # not empty: another session's, or a kept failure
        (Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}").rmdir()


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    init_project(APP, directory, now=NOW)
    return directory


@pytest.fixture
def project(project_dir: Path) -> Project:
    config = load_config(project_dir / "otaseal.yml")
    return Project(config, open_store(config.store), clock=lambda: NOW)


@pytest.fixture
def web(tmp_path: Path) -> Path:
    """A small web build the test may modify."""
    import shutil

    target = tmp_path / "web"
    shutil.copytree(EXAMPLE_WEB, target)
    return target
