"""GitHub, best effort: the pull request comment and the deployment of the channel's new state.

After the command, nothing GitHub says may fail the step: a token that may not comment or deploy
(pull requests from forks, read-only tokens) becomes a warning and a summary line that says
which permission to add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

import requests

from otaseal.action.command import describe
from otaseal.action.report import marker, render_comment
from otaseal.errors import Error, GitHubError, InputError
from otaseal.github import GitHub, is_permission_denied, permission_hint

if TYPE_CHECKING:
    from collections.abc import Callable

    from otaseal.action.command import Outcome
    from otaseal.action.inputs import Inputs
    from otaseal.action.report import ReleaseReport
    from otaseal.action.run_context import Context
    from otaseal.action.runner import Runner


T = TypeVar("T")

ENVIRONMENT_PREFIX: Final = "otaseal-"
"""Deployments go to ``otaseal-<channel>``, apart from the job's own ``environment:``."""

_DEPLOYED_STAGES: Final = frozenset({"published", "promoted", "rollout", "reverted"})


@dataclass
class GitHubSteps:
    """GitHub calls that must not fail the run; what happened is kept for the summary."""

    runner: Runner
    context: Context
    client: GitHub | None
    done: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def connect(cls, runner: Runner, inputs: Inputs, context: Context) -> GitHubSteps:
        """A client when the run wants GitHub and can reach it; otherwise say why not."""
        steps = cls(runner, context, None)
        if not (inputs.comment or inputs.deployments or inputs.command == "publish"):
            return steps
        if not inputs.github_token:
            steps.problems.append(
                "GitHub steps skipped: the input 'github-token' is empty; "
                "leave it at its default `${{ github.token }}`"
            )
        elif not context.repository:
            steps.done.append(
                "GitHub steps skipped: not running in GitHub Actions (GITHUB_REPOSITORY is not set)"
            )
        else:
            try:
                steps.client = GitHub(inputs.github_token, api_url=runner.api_url)
            except InputError as exc:
                steps.problems.append(f"GitHub steps skipped: {exc.diagnostics()}")
        return steps

    def attempt(self, doing: str, call: Callable[[GitHub], T]) -> T | None:
        """``call`` with the client; a GitHub failure becomes a warning and a summary line."""
        if self.client is None:
            return None
        try:
            return call(self.client)
        except GitHubError as exc:
            if is_permission_denied(exc, from_fork=self.context.from_fork):
                hint = _capital(permission_hint(str(getattr(exc, "operation", ""))))
                self._problem(f"could not {doing}: the token may not do that. {hint}.")
            else:
                self._problem(f"could not {doing}: {exc.diagnostics()}")
        except Error as exc:  # e.g. GITHUB_REPOSITORY is not owner/name
            self._problem(f"could not {doing}: {exc.diagnostics()}")
        except requests.RequestException as exc:  # what the client does not retry
            self._problem(f"could not {doing}: {type(exc).__name__} while talking to GitHub")
        return None

    def _problem(self, text: str) -> None:
        self.runner.warning(text, title="otaseal: GitHub step skipped")
        self.problems.append(text)

    def close(self) -> None:
        """Release the HTTP session."""
        if self.client is not None:
            self.client.close()


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def find_pull_request(github: GitHubSteps, explicit: int | None) -> int | None:
    """The ``pull-request`` input, the event's PR, or for a push the PR that merged the commit."""
    context = github.context
    if explicit is not None:
        return explicit
    if context.pull_request is not None:
        return context.pull_request
    if context.event_name != "push" or not context.sha:
        return None
    return github.attempt(
        "find the pull request of the pushed commit",
        lambda gh: gh.pull_request_for_commit(
            context.repository, context.sha, context.default_branch
        ),
    )


def comment_target(event_pr: int | None, outcome: Outcome) -> int | None:
    """The run's own PR, else the PR recorded with the release (the one reverted away from)."""
    if event_pr is not None:
        return event_pr
    if outcome.stage == "reverted" and outcome.previous is not None and outcome.previous.pr:
        return outcome.previous.pr
    current = outcome.current
    return current.pr if current is not None else None


def post_comment(github: GitHubSteps, report: ReleaseReport, number: int | None) -> str | None:
    """Create or update this app's sticky comment on PR ``number``."""
    if number is None:
        github.done.append("Pull request comment: no pull request is linked to this run")
        return None
    url = github.attempt(
        "post the pull request comment",
        lambda gh: gh.upsert_sticky_comment(
            github.context.repository, number, render_comment(report), marker(report.app)
        ),
    )
    if url is not None:
        github.done.append(f"Pull request comment on #{number}: {url}")
    return url


def record_deployment(github: GitHubSteps, outcome: Outcome, log_url: str | None) -> int | None:
    """A deployment of the channel's new state to ``otaseal-<channel>``, marked successful."""
    if not outcome.changed or outcome.stage not in _DEPLOYED_STAGES:
        return None
    current = outcome.current
    ref = (current.commit if current is not None else None) or github.context.sha
    if not ref:
        github.done.append("Deployment: skipped, the run has no commit (GITHUB_SHA)")
        return None
    environment = ENVIRONMENT_PREFIX + outcome.channel
    description = outcome.guard.short if outcome.guard else describe(outcome)
    payload = {
        "app": outcome.app,
        "channel": outcome.channel,
        "label": outcome.label,
        "bundle_sha256": current.sha256 if current else None,
        "manifest_version": outcome.manifest.version if outcome.manifest else None,
        "rollout": outcome.rollout,
    }
    repository = github.context.repository
    deployment_id = github.attempt(
        "create the deployment",
        lambda gh: gh.create_deployment(
            repository,
            ref,
            environment,
            description=description,
            payload=payload,
            production=outcome.channel == "production",
        ),
    )
    if deployment_id is None:
        return None
    state = github.attempt(
        "set the deployment status",
        lambda gh: gh.create_deployment_status(
            repository,
            deployment_id,
            "success",
            environment_url=None,
            log_url=log_url,
            description=description,
        ),
    )
    result = "success" if state is not None else "status not set"
    github.done.append(f"Deployment to `{environment}`: id {deployment_id}, {result}")
    return deployment_id


def github_section(github: GitHubSteps) -> str:
    """The summary lines about the PR comment and deployments."""
    if not (github.done or github.problems):
        return ""
    lines = ["", "#### GitHub"]
    lines += [f"- {escape_html(text)}" for text in github.done]
    lines += [f"- **Not done:** {escape_html(text)}" for text in github.problems]
    return "\n".join(lines) + "\n"


def escape_html(text: str) -> str:
    """Keep messages from GitHub or the store from opening HTML in the summary."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
