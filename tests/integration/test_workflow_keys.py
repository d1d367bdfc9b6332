"""The example workflows agree on key names, and only the production environment signs production.

Three names for one production key meant people set one secret and wondered why another job
failed; a repository-level production key let `resign` sign production past the production
environment's reviewers (issue 10).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from otaseal.action.entrypoint import secret_name

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted(ROOT.glob("docs/workflows/*.yml"))
SECRET = re.compile(r"secrets\.(OTASEAL_[A-Z0-9_]+_KEY)")


def _otaseal_steps() -> list[tuple[str, dict[str, object], dict[str, str]]]:
    """(workflow:job, job, the otaseal step's `with:`) for every otaseal step."""
    out = []
    for workflow in WORKFLOWS:
        doc = yaml.safe_load(workflow.read_text(encoding="utf-8"))
        for name, job in doc["jobs"].items():
            out.extend(
                (f"{workflow.name}:{name}", job, step.get("with", {}))
                for step in job.get("steps", [])
                if "/otaseal@" in step.get("uses", "")
            )
    return out


def test_every_channel_key_has_one_name_the_action_also_names() -> None:
    names = {
        found
        for _, _, given in _otaseal_steps()
        for found in SECRET.findall(str(given.get("signing-key", "")))
    }

    assert names == {secret_name(c) for c in ("beta", "production", "preview")}
    assert secret_name("production") == "OTASEAL_PRODUCTION_KEY"


def test_only_jobs_in_the_production_environment_read_the_production_key() -> None:
    readers = []
    for where, job, given in _otaseal_steps():
        if "OTASEAL_PRODUCTION_KEY" in str(given.get("signing-key", "")):
            readers.append(where)
            environment = str(job.get("environment", ""))
            assert environment in {"production", "${{ inputs.channel }}"}, where

    assert sorted(readers) == [
        "emergency-revert.yml:revert",
        "guard.yml:guard-production",
        "promote.yml:promote",
        "scheduled-status.yml:resign-production",
    ]


def test_resign_of_production_waits_for_the_production_environment() -> None:
    for where, job, given in _otaseal_steps():
        if given.get("command") == "resign" and "production" in str(given.get("channel")):
            assert job.get("environment") == "production", where
            assert given["channel"] == "production", where


def test_publish_labels_are_unique_per_commit() -> None:
    [(where, _, given)] = [s for s in _otaseal_steps() if s[0] == "publish-beta.yml:publish"]
    text = (ROOT / "docs" / "workflows" / "publish-beta.yml").read_text(encoding="utf-8")

    assert given["label"] == "${{ steps.version.outputs.label }}", where
    assert '.version\')+${GITHUB_SHA::7}" >> "$GITHUB_OUTPUT"' in text
