"""otaseal.github against a loopback GitHub stand-in that checks every call against the contract.

The client is pointed at the stand-in with ``api_url`` exactly as the Action points it at
``GITHUB_API_URL``. Sleeps go to a fake clock, so rate-limit waits are asserted, not waited.
"""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING

import pytest
import requests
from github_standin import (
    BOT_LOGIN,
    Fault,
    GitHubStandIn,
    Recorded,
    contract_path,
    not_found,
    permission_denied,
    primary_rate_limit,
    secondary_rate_limit,
    server_error,
    stall,
    too_many_requests,
)

from otaseal.action.report import ChannelRow, ReleaseReport, marker, render_comment
from otaseal.errors import GitHubError, InputError
from otaseal.github import GitHub, is_permission_denied, permission_hint

if TYPE_CHECKING:
    from collections.abc import Iterator

CONTRACT = contract_path()
assert CONTRACT is not None, "the vendored REST contract is missing from tests/contracts/"
REPO = "octo-org/shop-app"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
RUN_URL = "https://github.com/octo-org/shop-app/actions/runs/42"


class FakeClock:
    """Wall clock and sleep in one: sleeping only moves the time forward and is recorded."""

    def __init__(self) -> None:
        self.now = 1_772_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _serve(base_path: str = "") -> Iterator[GitHubStandIn]:
    assert CONTRACT is not None
    with GitHubStandIn(CONTRACT, base_path=base_path) as standin:
        yield standin
    assert not standin.violations, "contract violations:\n" + "\n".join(standin.violations)


@pytest.fixture
def standin() -> Iterator[GitHubStandIn]:
    yield from _serve()


@pytest.fixture
def ghes() -> Iterator[GitHubStandIn]:
    yield from _serve("/api/v3")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client(standin: GitHubStandIn, clock: FakeClock, **kwargs: object) -> GitHub:
    options: dict[str, object] = {"timeout": 5.0, **kwargs}
    return GitHub(
        str(options.pop("token", standin.token)),
        api_url=str(options.pop("api_url", standin.url)),
        sleep=clock.sleep,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def github(standin: GitHubStandIn, clock: FakeClock) -> GitHub:
    return client(standin, clock)


def report(stage: str = "published", *, channel: str = "beta", percent: float = 100.0):
    return ReleaseReport(
        app="com.example.shop",
        stage=stage,  # type: ignore[arg-type]
        channel=channel,
        label="1.4.2",
        digest="sha256:" + "ab" * 32,
        size=1_234_567,
        files=143,
        previous_label="1.4.1",
        size_delta=1_229,
        added=("src/new.js",),
        removed=(),
        changed=("index.html",),
        signer_keyids=("0123456789abcdef" * 4,),
        channels=(ChannelRow(channel, "1.4.2", "ab" * 32, percent, 12, None),),
        run_url=RUN_URL,
        commit=SHA,
    )


def mutations(standin: GitHubStandIn) -> list[Recorded]:
    return [r for r in standin.requests if r.method != "GET"]


# --- sticky comment ----------------------------------------------------------------------------
def test_sticky_comment_is_created_then_updated_in_place(standin, github):
    sticky = marker("com.example.shop")
    human = standin.add_comment(REPO, 7, f"Quoting the bot:\n> {sticky}\n> 1.4.1 is on beta")

    first = github.upsert_sticky_comment(REPO, 7, render_comment(report()), sticky)
    promoted = render_comment(report("promoted", channel="production", percent=10))
    second = github.upsert_sticky_comment(REPO, 7, promoted, sticky)

    assert first == second
    comments = standin.comments_on(REPO, 7)
    ours = [c for c in comments if c["user"]["login"] == BOT_LOGIN]
    assert len(ours) == 1
    assert ours[0]["body"] == promoted
    assert "was promoted to **production** (10 %)" in ours[0]["body"]
    assert ours[0]["html_url"] == first
    untouched = next(c for c in comments if c["id"] == human["id"])
    assert untouched["body"] == human["body"]
    assert [(r.method, r.status) for r in mutations(standin)] == [("POST", 201), ("PATCH", 200)]
    assert mutations(standin)[1].path == f"/repos/{REPO}/issues/comments/{ours[0]['id']}"


def test_sticky_comment_of_another_app_is_a_separate_comment(standin, github):
    github.upsert_sticky_comment(REPO, 7, "shop " + marker("shop"), marker("shop"))
    github.upsert_sticky_comment(
        REPO, 7, "shop-admin " + marker("shop-admin"), marker("shop-admin")
    )
    github.upsert_sticky_comment(REPO, 7, "shop again " + marker("shop"), marker("shop"))

    bodies = [c["body"] for c in standin.comments_on(REPO, 7)]
    assert bodies == ["shop again " + marker("shop"), "shop-admin " + marker("shop-admin")]


def test_sticky_comment_is_found_beyond_the_first_page(standin, github):
    sticky = marker("com.example.shop")
    for i in range(230):
        standin.add_comment(REPO, 7, f"review remark {i}")
    ours = standin.add_comment(REPO, 7, f"old status {sticky}", login=BOT_LOGIN, kind="Bot")
    for i in range(20):
        standin.add_comment(REPO, 7, f"later remark {i}")

    url = github.upsert_sticky_comment(REPO, 7, f"new status {sticky}", sticky)

    assert url == ours["html_url"]
    pages = [r for r in standin.requests if r.method == "GET"]
    assert [r.query for r in pages] == [
        {"per_page": ["100"]},
        {"per_page": ["100"], "page": ["2"]},
        {"per_page": ["100"], "page": ["3"]},
    ]
    assert [r.method for r in mutations(standin)] == ["PATCH"]
    assert len(standin.comments_on(REPO, 7)) == 251


def test_sticky_comment_is_posted_after_reading_every_page(standin, github):
    for i in range(201):
        standin.add_comment(REPO, 7, f"remark {i}")

    github.upsert_sticky_comment(REPO, 7, "status " + marker("a"), marker("a"))

    assert len([r for r in standin.requests if r.method == "GET"]) == 3
    assert [r.method for r in mutations(standin)] == ["POST"]


def test_sticky_comment_body_must_carry_its_marker(github):
    with pytest.raises(ValueError, match="marker"):
        github.upsert_sticky_comment(REPO, 7, "no marker here", marker("a"))


# --- pull request of a push ----------------------------------------------------------------
def test_pull_request_of_a_push_is_the_one_merged_into_the_default_branch(standin, github):
    standin.add_pull_request(
        REPO, 5, head_sha="1" * 40, base_ref="release", merged=True, commits=(SHA,)
    )
    standin.add_pull_request(REPO, 9, head_sha=SHA, head_ref="hotfix", base_ref="main")
    standin.add_pull_request(REPO, 7, head_sha="2" * 40, merged=True, merge_commit_sha=SHA)

    assert github.pull_request_for_commit(REPO, SHA, "main") == 7


def test_pull_request_of_a_commit_not_yet_merged_is_the_open_one(standin, github):
    standin.add_pull_request(REPO, 3, head_sha=SHA, state="closed", commits=(SHA,))
    standin.add_pull_request(REPO, 11, head_sha=SHA, base_ref="main")

    assert github.pull_request_for_commit(REPO, SHA, "main") == 11


def test_direct_push_has_no_pull_request(standin, github):
    assert github.pull_request_for_commit(REPO, SHA, "main") is None
    assert standin.requests[0].path == f"/repos/{REPO}/commits/{SHA}/pulls"


# --- deployments ------------------------------------------------------------------------------
def test_deployments_and_statuses_per_channel(standin, github, clock):
    ids = {}
    for channel in ("beta", "production"):
        ids[channel] = github.create_deployment(
            REPO,
            SHA,
            channel,
            description=f"1.4.2 on {channel}",
            payload={"app": "com.example.shop", "digest": "ab" * 32},
        )
        github.create_deployment_status(
            REPO,
            ids[channel],
            "in_progress",
            environment_url=None,
            log_url=RUN_URL,
            description="publishing",
        )
        github.create_deployment_status(
            REPO,
            ids[channel],
            "success",
            environment_url="https://updates.example/beta",
            log_url=RUN_URL,
            description="x" * 300,
        )

    deployments = {d["environment"]: d for d in standin.deployments[REPO]}
    assert deployments["beta"]["production_environment"] is False
    assert deployments["production"]["production_environment"] is True
    bodies = [r.body for r in standin.requests if r.path.endswith("/deployments")]
    assert all(b["auto_merge"] is False and b["required_contexts"] == [] for b in bodies)
    assert all(b["transient_environment"] is False for b in bodies)
    assert bodies[0]["payload"] == {"app": "com.example.shop", "digest": "ab" * 32}
    for channel in ("beta", "production"):
        states = [s["state"] for s in standin.statuses[ids[channel]]]
        assert states == ["in_progress", "success"]
        final = standin.statuses[ids[channel]][-1]
        assert final["log_url"] == RUN_URL
        assert len(final["description"]) == 140
    # mutations are spaced about a second apart, on the injected clock
    assert clock.sleeps == [1.0] * 5


def test_new_beta_deployment_marks_the_previous_one_inactive(standin, github):
    first = github.create_deployment(REPO, SHA, "beta", description="1.4.1", payload={})
    github.create_deployment_status(
        REPO, first, "success", environment_url=None, log_url=None, description="live"
    )
    second = github.create_deployment(REPO, SHA, "beta", description="1.4.2", payload={})
    github.create_deployment_status(
        REPO, second, "success", environment_url=None, log_url=None, description="live"
    )

    assert [s["state"] for s in standin.statuses[first]] == ["success", "inactive"]
    assert [s["state"] for s in standin.statuses[second]] == ["success"]
    assert standin.requests[-1].body["auto_inactive"] is True


@pytest.mark.parametrize(
    ("fault", "status", "says"),
    [
        (
            Fault(409, {"message": "Conflict: Commit status checks failed for main."}),
            409,
            "required status checks",
        ),
        (
            Fault(422, {"message": "No ref found for: nope", "documentation_url": "https://docs"}),
            422,
            "ref exists",
        ),
        (
            Fault(202, {"message": "Auto-merged main into nope on deployment."}),
            202,
            "auto_merge: false",
        ),
    ],
    ids=["conflict", "validation-failed", "auto-merged-instead"],
)
def test_deployment_refusals_explain_what_to_do(standin, github, fault, status, says):
    standin.inject("repos/create-deployment", fault)

    with pytest.raises(GitHubError) as caught:
        github.create_deployment(REPO, "nope", "production", description="x", payload={})

    assert caught.value.status == status  # type: ignore[attr-defined]
    assert says in caught.value.diagnostics()
    assert not is_permission_denied(caught.value)
    assert REPO not in standin.deployments


def test_deployment_status_on_unknown_deployment_is_not_found(standin, github):
    with pytest.raises(GitHubError, match="HTTP 404"):
        github.create_deployment_status(
            REPO, 999, "success", environment_url=None, log_url=None, description="x"
        )


def test_deployment_needs_an_environment(github):
    with pytest.raises(InputError, match="environment"):
        github.create_deployment(REPO, SHA, "", description="x", payload={})


# --- retries and rate limits ------------------------------------------------------------------
def test_server_error_is_retried_with_backoff(standin, github, clock):
    standin.inject("issues/create-comment", server_error())

    github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    assert clock.sleeps == [1.0]
    assert [r.status for r in mutations(standin)] == [500, 201]
    assert len(standin.comments_on(REPO, 7)) == 1


def test_server_error_that_persists_gives_up_after_a_few_tries(standin, github, clock):
    standin.inject("issues/list-comments", server_error(), times=4)

    with pytest.raises(GitHubError) as caught:
        github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    assert clock.sleeps == [1.0, 2.0, 4.0]
    text = caught.value.diagnostics()
    assert "list the pull request's comments" in text
    assert "HTTP 500" in text
    assert "after 4 attempts" in text
    assert "githubstatus.com" in text


def test_unavailable_with_retry_after_waits_that_long(standin, github, clock):
    busy = Fault(503, {"message": "Service Unavailable"}, {"retry-after": "5"})
    standin.inject("issues/list-comments", busy)

    github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    assert clock.sleeps == [5.0]


def test_secondary_rate_limit_waits_as_long_as_retry_after_says(standin, github, clock):
    standin.inject("issues/create-comment", secondary_rate_limit(retry_after=7))

    github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    assert clock.sleeps == [7.0]
    assert [r.status for r in mutations(standin)] == [403, 201]


def test_secondary_rate_limit_without_retry_after_waits_a_minute_then_longer(
    standin, github, clock
):
    standin.inject("repos/create-deployment", secondary_rate_limit(retry_after=None), times=2)

    github.create_deployment(REPO, SHA, "beta", description="x", payload={})

    assert clock.sleeps == [60.0, 120.0]


def test_too_many_requests_is_a_secondary_rate_limit(standin, github, clock):
    standin.inject("repos/list-pull-requests-associated-with-commit", too_many_requests())

    assert github.pull_request_for_commit(REPO, SHA, "main") is None
    assert clock.sleeps == [60.0]


def test_secondary_rate_limit_that_persists_gives_up(standin, github, clock):
    standin.inject("issues/create-comment", secondary_rate_limit(retry_after=30), times=4)

    with pytest.raises(GitHubError) as caught:
        github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    assert clock.sleeps == [30.0, 30.0, 30.0]
    assert caught.value.rate_limited  # type: ignore[attr-defined]
    assert not is_permission_denied(caught.value)
    assert "rate limit" in caught.value.diagnostics()


def test_primary_rate_limit_waits_until_the_reset(standin, github, clock):
    standin.inject("issues/list-comments", primary_rate_limit(reset=int(clock.now) + 30))

    github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    assert clock.sleeps == [31.0]
    assert [r.status for r in standin.requests] == [403, 200, 201]


def test_primary_rate_limit_far_away_fails_with_the_reset_time(standin, github, clock):
    reset = int(clock.now) + 3600
    standin.inject("issues/list-comments", primary_rate_limit(reset=reset))

    with pytest.raises(GitHubError) as caught:
        github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    assert clock.sleeps == []
    assert caught.value.rate_limited  # type: ignore[attr-defined]
    assert not is_permission_denied(caught.value, from_fork=True)
    assert "rate limit for this token clears" in caught.value.diagnostics()
    assert "UTC" in caught.value.diagnostics()


def test_slow_answer_times_out_and_is_retried(standin, clock):
    github = client(standin, clock, timeout=0.3)
    standin.inject("issues/list-comments", stall(1.0))

    github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    assert clock.sleeps == [1.0]
    assert len(standin.comments_on(REPO, 7)) == 1


def test_unreachable_api_gives_up_after_a_few_tries(clock):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    github = GitHub(
        "t0ken", api_url=f"http://127.0.0.1:{port}", sleep=clock.sleep, clock=clock, timeout=2
    )

    with pytest.raises(GitHubError) as caught:
        github.pull_request_for_commit(REPO, SHA, "main")

    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert "could not reach github at http://127.0.0.1" in caught.value.diagnostics().lower()
    assert caught.value.status is None  # type: ignore[attr-defined]


# --- permissions --------------------------------------------------------------------------------
def test_permission_denied_on_comment_is_classified_with_the_hint(standin, github, clock):
    standin.inject("issues/create-comment", permission_denied())

    with pytest.raises(GitHubError) as caught:
        github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    error = caught.value
    assert is_permission_denied(error)
    assert error.fix == permission_hint("issues/create-comment")
    assert "add `permissions: pull-requests: write`" in error.diagnostics().lower()
    assert "HTTP 403" in error.diagnostics()
    assert "Resource not accessible by integration" in error.diagnostics()
    assert clock.sleeps == []  # a permission problem is not retried


def test_permission_denied_on_deployment_names_deployments_write(standin, github):
    standin.inject("repos/create-deployment", permission_denied())

    with pytest.raises(GitHubError) as caught:
        github.create_deployment(REPO, SHA, "beta", description="x", payload={})

    assert is_permission_denied(caught.value)
    assert "deployments: write" in caught.value.diagnostics()


def test_not_found_counts_as_no_permission_only_for_a_fork(standin, github):
    standin.inject("issues/list-comments", not_found())

    with pytest.raises(GitHubError) as caught:
        github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    assert is_permission_denied(caught.value, from_fork=True)
    assert not is_permission_denied(caught.value)
    assert "HTTP 404" in caught.value.diagnostics()


def test_rejected_token_is_no_permission_and_asks_for_a_valid_token(standin, clock):
    github = client(standin, clock, token="ghp_wrongWRONGwrong")

    with pytest.raises(GitHubError) as caught:
        github.pull_request_for_commit(REPO, SHA, "main")

    assert is_permission_denied(caught.value)
    assert "github-token" in caught.value.diagnostics()
    assert "ghp_wrongWRONGwrong" not in caught.value.diagnostics()


def test_permission_hint_for_an_unknown_operation_names_both_permissions():
    hint = permission_hint("repos/create-commit-status")
    assert "pull-requests: write" in hint
    assert "deployments: write" in hint


def test_only_github_errors_are_classified():
    assert not is_permission_denied(RuntimeError("403"))


# --- GitHub Enterprise Server ---------------------------------------------------------------
def test_enterprise_server_base_path_is_honoured(ghes, clock):
    github = client(ghes, clock)
    assert ghes.url.endswith("/api/v3")
    ghes.add_pull_request(REPO, 7, head_sha="2" * 40, merged=True, merge_commit_sha=SHA)
    for i in range(120):
        ghes.add_comment(REPO, 7, f"remark {i}")

    number = github.pull_request_for_commit(REPO, SHA, "main")
    assert number == 7
    github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))
    github.upsert_sticky_comment(REPO, 7, "hello " + marker("a"), marker("a"))
    deployment = github.create_deployment(REPO, SHA, "beta", description="x", payload={})
    github.create_deployment_status(
        REPO, deployment, "success", environment_url=None, log_url=RUN_URL, description="live"
    )

    assert [c["body"] for c in ghes.comments_on(REPO, 7)][-1] == "hello " + marker("a")
    # pages 2 came from the Link header, under /api/v3 too (else the stand-in reports it)
    assert sum(1 for r in ghes.requests if r.query.get("page") == ["2"]) == 2


def test_next_page_link_to_another_host_is_not_followed(standin, github):
    standin.link_base = "https://collector.example"
    for i in range(101):
        standin.add_comment(REPO, 7, f"remark {i}")

    with pytest.raises(GitHubError, match="not following it"):
        github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a"))

    assert len(standin.requests) == 1


# --- the token stays secret -------------------------------------------------------------------
def test_token_never_appears_in_error_text(standin, github, clock):
    echo = Fault(403, {"message": f"Resource not accessible by token {standin.token}"})
    standin.inject("issues/create-comment", echo)
    standin.inject("repos/create-deployment", server_error(), times=4)
    standin.inject("repos/create-deployment-status", permission_denied())

    texts = [repr(github)]
    calls = [
        lambda: github.upsert_sticky_comment(REPO, 7, "hi " + marker("a"), marker("a")),
        lambda: github.create_deployment(REPO, SHA, "beta", description="x", payload={}),
        lambda: github.create_deployment_status(
            REPO, 1, "success", environment_url=None, log_url=None, description="x"
        ),
    ]
    for call in calls:
        with pytest.raises(GitHubError) as caught:
            call()
        texts += [str(caught.value), caught.value.diagnostics(), repr(caught.value)]

    assert all(standin.token not in text for text in texts)
    assert "***" in texts[2]


# --- inputs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["", "two words", "line\nbreak"])
def test_unusable_token_is_an_input_error(token):
    with pytest.raises(InputError, match="token"):
        GitHub(token)


@pytest.mark.parametrize(
    "api_url",
    [
        "http://ghe.example/api/v3",  # the token would cross the network in clear text
        "https://user:pass@ghe.example/api/v3",
        "https://ghe.example/api/v3?x=1",
        "ftp://ghe.example",
        "https://",
    ],
)
def test_unsafe_api_url_is_an_input_error(api_url):
    with pytest.raises(InputError, match="API URL"):
        GitHub("t0ken", api_url=api_url)


@pytest.mark.parametrize("repo", ["shop-app", "a/b/c", "../x", "owner/"])
def test_repository_must_be_owner_slash_name(github, repo):
    with pytest.raises(InputError, match="owner/name"):
        github.pull_request_for_commit(repo, SHA, "main")


@pytest.mark.parametrize("number", [0, -1, True])
def test_pull_request_number_must_be_positive(github, number):
    with pytest.raises(ValueError, match="positive"):
        github.upsert_sticky_comment(REPO, number, "x " + marker("a"), marker("a"))


# --- answers that are not GitHub's ----------------------------------------------------------
class Canned(requests.adapters.BaseAdapter):
    """A transport that answers every call with the same response (a proxy, a captive portal)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.status, self.body, self.headers = status, body, headers or {}
        self.calls = 0

    def send(self, request, **kwargs):
        self.calls += 1
        response = requests.Response()
        response.status_code = self.status
        response._content = self.body
        response.headers.update(self.headers)
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def canned_client(clock: FakeClock, adapter: Canned) -> GitHub:
    session = requests.Session()
    session.mount("https://", adapter)
    return GitHub(
        "t0ken",
        api_url="https://ghe.example/api/v3",
        session=session,
        sleep=clock.sleep,
        clock=clock,
    )


def test_html_instead_of_json_is_reported(clock):
    github = canned_client(clock, Canned(200, b"<html>Sign in to the proxy</html>"))
    with pytest.raises(GitHubError, match="is not JSON"):
        github.pull_request_for_commit(REPO, SHA, "main")


def test_object_instead_of_list_is_reported(clock):
    github = canned_client(clock, Canned(200, b'{"message": "hi"}'))
    with pytest.raises(GitHubError, match="JSON array"):
        github.pull_request_for_commit(REPO, SHA, "main")


def test_answer_without_the_expected_field_is_reported(clock):
    github = canned_client(clock, Canned(201, b'{"id": "not a number"}'))
    with pytest.raises(GitHubError, match="no usable 'id'"):
        github.create_deployment(REPO, SHA, "beta", description="x", payload={})


def test_endless_pagination_is_cut_off(clock):
    link = '<https://ghe.example/api/v3/repos/o/r/commits/x/pulls?page=2>; rel="next"'
    adapter = Canned(200, b"[]", {"Link": link})
    github = canned_client(clock, adapter)
    with pytest.raises(GitHubError, match="more pages"):
        github.pull_request_for_commit(REPO, SHA, "main")
    assert adapter.calls == 100


def test_unexpected_status_without_message_still_explains(clock):
    github = canned_client(clock, Canned(418, b"[1, 2]"))
    with pytest.raises(GitHubError) as caught:
        github.pull_request_for_commit(REPO, SHA, "main")
    assert "HTTP 418" in caught.value.diagnostics()
    assert "re-run the job" in caught.value.diagnostics().lower()


def test_validation_errors_are_summarised(clock):
    body = {
        "message": "Validation Failed",
        "errors": [{"code": "custom", "message": "too long"}, {"code": "invalid"}, "odd"],
    }
    github = canned_client(clock, Canned(422, json.dumps(body).encode()))
    with pytest.raises(GitHubError) as caught:
        github.create_deployment(REPO, "nope", "beta", description="x", payload={})
    assert "Validation Failed; too long; invalid; odd" in caught.value.diagnostics()


def test_unparseable_rate_limit_headers_fall_back_to_minutes(clock):
    adapter = Canned(
        403,
        b"{}",
        {"retry-after": "soon", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "later"},
    )
    github = canned_client(clock, adapter)
    with pytest.raises(GitHubError) as caught:
        github.pull_request_for_commit(REPO, SHA, "main")
    assert clock.sleeps == [60.0, 120.0, 240.0]
    assert "in a few minutes" in caught.value.diagnostics()


class TrackedSession(requests.Session):
    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def test_client_closes_only_the_session_it_created():
    session = TrackedSession()
    session.mount("https://", Canned(200, b"[]"))
    with GitHub("t0ken", api_url="https://ghe.example/api/v3", session=session) as github:
        assert github.pull_request_for_commit(REPO, SHA, "main") is None
    assert not session.closed  # it belongs to the caller
    with GitHub("t0ken") as own:
        assert repr(own) == "GitHub(api_url='https://api.github.com')"


# --- the stand-in itself ----------------------------------------------------------------------
def test_standin_reports_requests_and_responses_that_break_the_contract(standin):
    headers = {"Authorization": f"Bearer {standin.token}", "Accept": "application/json"}
    requests.post(
        f"{standin.url}/repos/{REPO}/issues/7/comments",
        json={"text": 1},
        headers=headers,
        timeout=5,
    )
    requests.get(
        f"{standin.url}/repos/{REPO}/issues/7/comments?per_page=lots", headers=headers, timeout=5
    )
    requests.get(f"{standin.url}/repos/{REPO}/pulls", headers=headers, timeout=5)
    broken = standin.add_comment(REPO, 8, "x")
    broken["created_at"] = "yesterday"
    requests.get(f"{standin.url}/repos/{REPO}/issues/8/comments", headers=headers, timeout=5)

    found = "\n".join(standin.violations)
    assert "POST /repos/octo-org/shop-app/issues/7/comments: request breaks the contract" in found
    assert "per_page" in found
    assert "X-GitHub-Api-Version" in found
    assert "no such operation" in found
    assert "HTTP 200 breaks the contract" in found
    standin.violations.clear()  # seen; the fixture must not fail this test for them


def test_html_error_page_from_github_is_retried_then_reported(clock):
    github = canned_client(clock, Canned(502, b"<html>Unicorn! Server Error</html>"))
    with pytest.raises(GitHubError) as caught:
        github.pull_request_for_commit(REPO, SHA, "main")
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert "HTTP 502 after 4 attempts" in caught.value.diagnostics()


def test_pull_request_list_with_odd_entries_is_read_defensively(clock):
    odd = [{"number": 4, "merged_at": "2026-01-01T00:00:00Z", "base": None}, "junk", {"x": 1}]
    github = canned_client(clock, Canned(200, json.dumps(odd).encode()))
    assert github.pull_request_for_commit(REPO, SHA, "main") is None
