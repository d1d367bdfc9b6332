"""Shared fixtures: a fixed clock and a fresh project with a folder store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from otaseal.config import load_config
from otaseal.operations import Project, open_store
from otaseal.project import init_project

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
APP = "com.example.app"
EXAMPLE_WEB = Path(__file__).resolve().parents[1] / "examples" / "web"


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
