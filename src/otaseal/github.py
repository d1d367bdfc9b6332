"""GitHub REST client: the sticky pull request comment, deployments and their statuses.

It talks to ``GITHUB_API_URL`` (so GitHub Enterprise Server works) with explicit timeouts, retries
on 5xx and dropped connections, and follows GitHub's rate-limit rules: wait for the primary limit's
reset, honour ``retry-after`` for secondary limits, space mutations about a second apart. Errors
name the operation, the HTTP status and the permission to add; the token never appears in them.
Callers degrade gracefully on :func:`is_permission_denied`: a read-only token (fork pull
requests) must never fail a publish.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeVar
from urllib.parse import quote, urlsplit

import requests

from otaseal import __version__
from otaseal.errors import GitHubError, InputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

DEFAULT_API_URL: Final = "https://api.github.com"
API_VERSION: Final = "2022-11-28"
BOT_LOGIN: Final = "github-actions[bot]"

DeploymentState = Literal[
    "error", "failure", "inactive", "in_progress", "queued", "pending", "success"
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_PER_PAGE: Final = 100
_MAX_PAGES: Final = 100  # 10,000 items: far beyond any real PR, short of an endless Link loop
_MAX_DESCRIPTION: Final = 140  # GitHub's limit for deployment status descriptions
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_REPO_RE: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_SECONDARY_WAIT: Final = 60.0
_DOCS_STATUS: Final = "https://www.githubstatus.com"


@dataclass(frozen=True, slots=True)
class _Operation:
    doing: str  # completes "GitHub could not ..."
    permission: str  # the workflow ``permissions:`` entry the call needs


_OPERATIONS: Final[Mapping[str, _Operation]] = {
    "repos/list-pull-requests-associated-with-commit": _Operation(
        "find the pull request of the commit", "contents: read` and `pull-requests: read"
    ),
    "issues/list-comments": _Operation("list the pull request's comments", "pull-requests: write"),
    "issues/create-comment": _Operation("post the pull request comment", "pull-requests: write"),
    "issues/update-comment": _Operation("update the pull request comment", "pull-requests: write"),
    "repos/create-deployment": _Operation("create the deployment", "deployments: write"),
    "repos/create-deployment-status": _Operation("set the deployment status", "deployments: write"),
}


class GitHubHTTPError(GitHubError):
    """A GitHub operation failed; carries what callers branch on (status, rate limiting)."""

    def __init__(
        self,
        what: str,
        *,
        operation: str,
        status: int | None,
        rate_limited: bool = False,
        expected: str = "",
        fix: str = "",
    ) -> None:
        super().__init__(what, expected=expected, fix=fix)
        self.operation = operation
        self.status = status
        self.rate_limited = rate_limited


def permission_hint(operation: str) -> str:
    """What to add to the workflow so ``operation`` (a REST operationId) is allowed."""
    op = _OPERATIONS.get(operation)
    permission = op.permission if op else "pull-requests: write` and `deployments: write"
    return (
        f"add `permissions: {permission}` to the job; pull requests from forks only get a "
        "read-only token, so otaseal skips this step there"
    )


def is_permission_denied(error: BaseException, *, from_fork: bool = False) -> bool:
    """Whether ``error`` means "this token may not do that" rather than a real failure.

    401 and 403 count unless GitHub signalled a rate limit. GitHub hides what a token cannot
    see behind 404, so a 404 counts too when the token came from a fork's workflow run.
    """
    if not isinstance(error, GitHubHTTPError) or error.rate_limited:
        return False
    if error.status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
        return True
    return from_fork and error.status == HTTPStatus.NOT_FOUND


class GitHub:
    """A small GitHub REST client for the calls otaseal makes.

    ``sleep`` and ``clock`` are injectable so tests never wait; ``max_wait`` caps any single
    wait (a rate limit that resets later fails with the reset time instead of stalling a job).
    """

    __slots__ = (
        "_api_url",
        "_clock",
        "_headers",
        "_last_mutation",
        "_max_attempts",
        "_max_wait",
        "_mutation_interval",
        "_own_session",
        "_session",
        "_sleep",
        "_timeout",
        "_token",
    )

    def __init__(
        self,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        timeout: float = 15.0,
        max_attempts: int = 4,
        max_wait: float = 300.0,
        mutation_interval: float = 1.0,
    ) -> None:
        if not token or any(ch.isspace() or not ch.isprintable() for ch in token):
            raise InputError(
                "the GitHub token is empty or contains whitespace",
                expected="a token such as the one in `${{ github.token }}`",
                fix="pass `github-token: ${{ github.token }}` (the default) or a valid token",
            )
        self._token = token
        self._api_url = _check_api_url(api_url)
        self._own_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._max_wait = max_wait
        self._mutation_interval = mutation_interval
        self._last_mutation: float | None = None
        self._headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "Authorization": f"Bearer {token}",
            "User-Agent": f"otaseal/{__version__}",
        }

    def __repr__(self) -> str:
        return f"GitHub(api_url={self._api_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._own_session:
            self._session.close()

    # --- operations ----------------------------------------------------------------------------
    def pull_request_for_commit(self, repo: str, sha: str, default_branch: str) -> int | None:
        """The PR a pushed commit came from: merged into ``default_branch``, else open; or None."""
        path = f"/repos/{_repo(repo)}/commits/{_segment(sha)}/pulls"
        pulls = [
            pr
            for pr in self._paginate("repos/list-pull-requests-associated-with-commit", path)
            if isinstance(pr, dict) and isinstance(pr.get("number"), int)
        ]
        for pr in pulls:
            if pr.get("merged_at") and _nested(pr, "base", "ref") == default_branch:
                return int(pr["number"])
        for pr in pulls:
            if pr.get("state") == "open" and _nested(pr, "head", "sha") == sha:
                return int(pr["number"])
        return None

    def upsert_sticky_comment(
        self, repo: str, number: int, body: str, marker: str, *, bot_login: str = BOT_LOGIN
    ) -> str:
        """Edit our comment carrying ``marker`` on PR ``number``, or post one; return its URL.

        Only comments written by ``bot_login`` count: a person quoting the marker is left alone.
        """
        if not marker or marker not in body:
            msg = "the comment body must contain its marker, or the next run cannot find it"
            raise ValueError(msg)
        owner_repo = _repo(repo)
        issue = _number(number)
        comments = self._paginate(
            "issues/list-comments", f"/repos/{owner_repo}/issues/{issue}/comments"
        )
        for comment in comments:
            if (
                isinstance(comment, dict)
                and marker in str(comment.get("body") or "")
                and _nested(comment, "user", "login") == bot_login
                and isinstance(comment.get("id"), int)
            ):
                updated = self._json(
                    "issues/update-comment",
                    "PATCH",
                    f"/repos/{owner_repo}/issues/comments/{comment['id']}",
                    body={"body": body},
                    ok=(200,),
                )
                return _field(updated, "html_url", str, "issues/update-comment")
        created = self._json(
            "issues/create-comment",
            "POST",
            f"/repos/{owner_repo}/issues/{issue}/comments",
            body={"body": body},
            ok=(201,),
        )
        return _field(created, "html_url", str, "issues/create-comment")

    def create_deployment(
        self,
        repo: str,
        ref: str,
        environment: str,
        *,
        description: str,
        payload: Mapping[str, object],
        production: bool | None = None,
    ) -> int:
        """Create a deployment of ``ref`` to ``environment`` and return its id."""
        operation = "repos/create-deployment"
        if not environment:
            raise InputError(
                "the deployment environment name is empty",
                expected="a GitHub environment name such as `beta` or `production`",
                fix="pass the channel name as the environment",
            )
        response = self._request(
            operation,
            "POST",
            f"/repos/{_repo(repo)}/deployments",
            body={
                "ref": ref,
                "environment": environment,
                "task": "deploy",
                "description": description[:_MAX_DESCRIPTION],
                "payload": dict(payload),
                "auto_merge": False,
                "required_contexts": [],
                "transient_environment": False,
                "production_environment": (
                    environment == "production" if production is None else production
                ),
            },
            ok=(201, 202),
        )
        if response.status_code == HTTPStatus.ACCEPTED:  # GitHub merged instead of deploying
            raise GitHubHTTPError(
                f"GitHub merged the default branch into {ref!r} instead of creating a "
                f"deployment to {environment!r} (HTTP 202)",
                operation=operation,
                status=202,
                expected="HTTP 201 with a new deployment",
                fix="re-run the job; otaseal asks for `auto_merge: false`, so check whether a "
                "proxy or GitHub Enterprise version ignores it",
            )
        return _field(self._decode(operation, response), "id", int, operation)

    def create_deployment_status(
        self,
        repo: str,
        deployment_id: int,
        state: DeploymentState,
        *,
        environment_url: str | None,
        log_url: str | None,
        description: str,
        auto_inactive: bool = True,
    ) -> int:
        """Record ``state`` on a deployment (older ones go inactive by default); return its id."""
        body: dict[str, object] = {
            "state": state,
            "description": description[:_MAX_DESCRIPTION],
            "auto_inactive": auto_inactive,
        }
        if environment_url:
            body["environment_url"] = environment_url
        if log_url:
            body["log_url"] = log_url
        operation = "repos/create-deployment-status"
        created = self._json(
            operation,
            "POST",
            f"/repos/{_repo(repo)}/deployments/{_number(deployment_id)}/statuses",
            body=body,
            ok=(201,),
        )
        return _field(created, "id", int, operation)

    # --- transport -----------------------------------------------------------------------------
    def _paginate(self, operation: str, path: str) -> Iterator[object]:
        """Yield every item of a list endpoint, following ``Link: rel="next"``."""
        url = self._api_url + path
        params: dict[str, int] | None = {"per_page": _PER_PAGE}
        for _ in range(_MAX_PAGES):
            response = self._request(operation, "GET", url, params=params)
            items = self._decode(operation, response)
            if not isinstance(items, list):
                raise self._malformed(operation, "a JSON array")
            yield from items
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return
            self._check_same_api(operation, next_url)
            url, params = next_url, None
        raise GitHubHTTPError(
            f"GitHub kept sending more pages for {operation} after {_MAX_PAGES} pages",
            operation=operation,
            status=None,
            expected='the last page to have no `Link: rel="next"`',
            fix="check what `GITHUB_API_URL` points at",
        )

    def _json(
        self, operation: str, method: str, path: str, *, body: object, ok: tuple[int, ...]
    ) -> object:
        return self._decode(operation, self._request(operation, method, path, body=body, ok=ok))

    def _request(
        self,
        operation: str,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, int] | None = None,
        body: object = None,
        ok: tuple[int, ...] = (200,),
    ) -> requests.Response:
        """Send one call with retries; return the response when its status is in ``ok``."""
        url = path_or_url if "://" in path_or_url else self._api_url + path_or_url
        mutation = method != "GET"
        attempt = 0
        while True:
            attempt += 1
            if mutation:
                self._space_mutation()
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers=self._headers,
                    timeout=self._timeout,
                    # GETs may follow a redirect (requests drops the token on another host);
                    # a redirected write would silently turn into a GET.
                    allow_redirects=not mutation,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if mutation:
                    self._last_mutation = self._clock()
                if attempt >= self._max_attempts:
                    raise GitHubHTTPError(
                        self._redact(
                            f"could not reach GitHub at {self._api_url} to "
                            f"{_doing(operation)} ({operation}) after {attempt} attempts: "
                            f"{type(exc).__name__}"
                        ),
                        operation=operation,
                        status=None,
                        expected="an HTTP answer within the timeout",
                        fix="check `GITHUB_API_URL` and the runner's network, then re-run the job",
                    ) from exc
                delay = _backoff(attempt)
                _log.warning("%s: %s; retrying in %.0f s", operation, type(exc).__name__, delay)
                self._sleep(delay)
                continue
            if mutation:
                self._last_mutation = self._clock()
            if response.status_code in ok:
                return response
            wait = self._retry_delay(response, attempt)
            if wait is None or attempt >= self._max_attempts:
                raise self._error(operation, response, attempt)
            _log.warning("%s: HTTP %s; retrying in %.0f s", operation, response.status_code, wait)
            self._sleep(wait)

    def _space_mutation(self) -> None:
        """Keep writes about a second apart, as GitHub asks, to stay clear of secondary limits."""
        if self._last_mutation is None:
            return
        wait = self._mutation_interval - (self._clock() - self._last_mutation)
        if wait > 0:
            self._sleep(min(wait, self._mutation_interval))

    def _retry_delay(self, response: requests.Response, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when retrying cannot help."""
        headers = response.headers
        retry_after = _int_header(headers, "retry-after")
        if response.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
            wait = _backoff(attempt) if retry_after is None else float(max(retry_after, 1))
            return min(wait, self._max_wait)
        if not _is_rate_limited(response):
            return None
        reset = _int_header(headers, "x-ratelimit-reset")
        if retry_after is not None:
            wait = float(max(retry_after, 1))
        elif headers.get("x-ratelimit-remaining") == "0" and reset is not None:
            wait = max(0.0, reset - self._clock()) + 1.0  # a second of slack for clock skew
        else:  # secondary limit without a hint: at least a minute, then exponentially longer
            wait = min(_SECONDARY_WAIT * 2 ** (attempt - 1), self._max_wait)
        return wait if wait <= self._max_wait else None

    def _error(self, operation: str, response: requests.Response, attempts: int) -> GitHubError:
        status = response.status_code
        message = _github_message(response)
        what = f"GitHub could not {_doing(operation)} ({operation}): HTTP {status}"
        if message:
            what += f" {message!r}"
        rate_limited = _is_rate_limited(response)
        if rate_limited:
            what += f", rate limited after {attempts} attempt{'s' if attempts > 1 else ''}"
            fix = self._rate_limit_fix(response)
        elif status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            what += f" after {attempts} attempts"
            fix = f"GitHub is having trouble; re-run the job later (see {_DOCS_STATUS})"
        else:
            fix = _status_fix(operation, status)
        return GitHubHTTPError(
            self._redact(what),
            operation=operation,
            status=status,
            rate_limited=rate_limited,
            expected="a successful answer",
            fix=self._redact(fix),
        )

    def _rate_limit_fix(self, response: requests.Response) -> str:
        reset = _int_header(response.headers, "x-ratelimit-reset")
        when = (
            datetime.fromtimestamp(reset, UTC).strftime("%H:%M UTC")
            if reset is not None and response.headers.get("x-ratelimit-remaining") == "0"
            else "in a few minutes"
        )
        return (
            f"GitHub's rate limit for this token clears {when}; re-run the job then, and run one "
            "otaseal job per repository at a time (`concurrency:`)"
        )

    def _decode(self, operation: str, response: requests.Response) -> object:
        try:
            data: object = response.json()
        except ValueError:
            raise self._malformed(operation, "JSON") from None
        return data

    def _malformed(self, operation: str, expected: str) -> GitHubError:
        return GitHubHTTPError(
            f"GitHub's answer to {operation} is not {expected}",
            operation=operation,
            status=None,
            expected=expected,
            fix="check that `GITHUB_API_URL` points at the GitHub REST API (…/api/v3 on GHES)",
        )

    def _check_same_api(self, operation: str, url: str) -> None:
        """Refuse to follow a pagination link elsewhere: it would carry our token there."""
        if not (url == self._api_url or url.startswith(self._api_url + "/")):
            raise GitHubHTTPError(
                f"GitHub's next-page link for {operation} leaves {self._api_url}; not following "
                "it so the token is not sent elsewhere",
                operation=operation,
                status=None,
                expected=f"a link under {self._api_url}",
                fix="set `GITHUB_API_URL` to the API address GitHub itself uses in its links",
            )

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***")


# --- helpers -------------------------------------------------------------------------------------
def _check_api_url(api_url: str) -> str:
    url = api_url.strip().rstrip("/")
    parts = urlsplit(url)
    local = parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS
    if (
        not (parts.scheme == "https" or local)
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        raise InputError(
            f"GitHub API URL {api_url!r} is not usable",
            expected="an https:// URL without credentials, e.g. https://api.github.com or "
            "https://ghe.example/api/v3",
            fix="leave `GITHUB_API_URL` as the runner sets it",
        )
    return url


def _repo(repo: str) -> str:
    if not _REPO_RE.fullmatch(repo):
        raise InputError(
            f"repository {repo!r} is not owner/name",
            expected="owner/name, as in `GITHUB_REPOSITORY`",
            fix="pass the repository as owner/name",
        )
    return repo


def _segment(value: str) -> str:
    return quote(value, safe="")


def _number(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        msg = f"expected a positive integer, got {value!r}"
        raise ValueError(msg)
    return value


def _doing(operation: str) -> str:
    op = _OPERATIONS.get(operation)
    return op.doing if op else f"complete {operation}"


def _backoff(attempt: int) -> float:
    return float(min(2 ** (attempt - 1), 30))


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _github_message(response: requests.Response) -> str:
    """GitHub's own ``message`` (and validation ``errors``), short and single-line."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts = [str(data.get("message") or "")]
    errors = data.get("errors")
    if isinstance(errors, list):
        for item in errors[:3]:
            if isinstance(item, dict):
                parts.append(str(item.get("message") or item.get("code") or ""))
            else:
                parts.append(str(item))
    text = "; ".join(p for p in parts if p)
    text = " ".join(text.split())
    return text[:200]


def _is_rate_limited(response: requests.Response) -> bool:
    if response.status_code not in {HTTPStatus.FORBIDDEN, HTTPStatus.TOO_MANY_REQUESTS}:
        return False
    headers = response.headers
    if response.status_code == HTTPStatus.TOO_MANY_REQUESTS or "retry-after" in headers:
        return True
    if headers.get("x-ratelimit-remaining") == "0":
        return True
    return "rate limit" in _github_message(response).lower()


def _status_fix(operation: str, status: int) -> str:
    if status == HTTPStatus.UNAUTHORIZED:
        return (
            "the token was rejected; pass a valid token in the `github-token` input "
            "(default `${{ github.token }}`)"
        )
    if status == HTTPStatus.FORBIDDEN:
        return permission_hint(operation)
    if status == HTTPStatus.NOT_FOUND:
        return (
            "check the repository, pull request or deployment id; GitHub also answers 404 when "
            f"the token may not see it: {permission_hint(operation)}"
        )
    if status == HTTPStatus.CONFLICT and operation == "repos/create-deployment":
        return (
            "GitHub reported a merge conflict or failing required status checks for the ref; "
            "otaseal sends `required_contexts: []`, so check the environment's protection rules"
        )
    if status == HTTPStatus.UNPROCESSABLE_ENTITY and operation == "repos/create-deployment":
        return (
            "check that the ref exists in the repository and that the environment's deployment "
            "branch rules allow it"
        )
    return "re-run the job if it was a transient problem; otherwise check `GITHUB_API_URL`"


def _nested(data: Mapping[str, Any], *keys: str) -> object:
    value: object = data
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _field(data: object, name: str, kind: type[_T], operation: str) -> _T:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise GitHubHTTPError(
            f"GitHub's answer to {operation} has no usable {name!r}",
            operation=operation,
            status=None,
            expected=f"a {kind.__name__} {name!r} field",
            fix="check that `GITHUB_API_URL` points at the GitHub REST API (…/api/v3 on GHES)",
        )
    return value
