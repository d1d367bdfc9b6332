"""What the workflow run is about: repository, event, commit, and the pull request it concerns.

GitHub's event payloads differ by event (pull_request, push, workflow_run); this reads the few
facts the Action needs from any of them, tolerating missing keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from otaseal.action.runner import Runner


@dataclass(frozen=True, slots=True)
class Context:
    """The repository, event and commit of the workflow run."""

    repository: str
    event_name: str
    event: Mapping[str, Any]
    sha: str
    ref: str

    @property
    def is_pull_request(self) -> bool:
        """``pull_request`` or ``pull_request_target``."""
        return self.event_name.startswith("pull_request")

    @property
    def pull_request(self) -> int | None:
        """The PR a pull_request event names, or a workflow_run's PR from the same repository."""
        if self.is_pull_request:
            number = self.event.get("number")
        else:
            pulls = _path(self.event, "workflow_run", "pull_requests")
            first = pulls[0] if isinstance(pulls, list) and pulls else None
            number = first.get("number") if isinstance(first, dict) else None
        ok = isinstance(number, int) and not isinstance(number, bool) and number > 0
        return number if ok else None

    @property
    def from_fork(self) -> bool:
        """A PR from a fork only ever gets a read-only token (and 404s for what it cannot see)."""
        if not self.is_pull_request:
            return False
        head = _path(self.event, "pull_request", "head", "repo", "full_name")
        return head != _path(self.event, "repository", "full_name")

    @property
    def commit(self) -> str | None:
        """The commit a release is built from: a merged PR's merge commit, else GITHUB_SHA."""
        merged = _path(self.event, "pull_request", "merge_commit_sha")
        if self.is_pull_request and _path(self.event, "pull_request", "merged") and merged:
            return str(merged)
        built = _path(self.event, "workflow_run", "head_sha")  # a preview built by another run
        if self.event_name == "workflow_run" and isinstance(built, str) and built:
            return built
        return self.sha or None

    @property
    def default_branch(self) -> str:
        """The branch a push's PR was merged into."""
        branch = _path(self.event, "repository", "default_branch")
        return str(branch) if branch else self.ref.removeprefix("refs/heads/") or "main"


def _path(doc: Mapping[str, Any], *keys: str) -> object:
    value: object = doc
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def read_context(runner: Runner) -> Context:
    """The run's context from the runner's environment and event payload."""
    return Context(runner.repository, runner.event_name, runner.event(), runner.sha, runner.ref)
