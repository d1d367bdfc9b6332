"""A loopback stand-in for the GitHub REST API that checks every exchange against the contract.

It serves the calls otaseal makes (commit -> pull requests, issue comments, deployments and their
statuses) from in-memory state, on 127.0.0.1 and a random port, optionally under a GHES-style
base path (``/api/v3``). Every request is validated, as if sent to https://api.github.com, and
every response, against ``github-rest-subset.json`` with openapi-core; anything that does not fit
is recorded in :attr:`GitHubStandIn.violations`, which the test fixture turns into a failure.

Responses are built from the contract's schemas (see :func:`instance`), not from its examples:
some examples do not match their own schema (the contracts README warns about it). Failures can
be injected per operation: 500, secondary and primary rate limits, permission denied, 404, and
stalls. GitHub answers those statuses on any endpoint, while the contract documents them only
on some; an injected status the contract does not document is checked against GitHub's generic
``basic-error`` schema instead, and any other undocumented status is a violation.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from openapi_schema_validator import OAS30Validator, oas30_format_checker

GITHUB = "https://api.github.com"
API_VERSION = "2022-11-28"
BOT_LOGIN = "github-actions[bot]"
_BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_DOCS = "https://docs.github.com/rest"
_MAX_DEPTH = 12
_INVALID = {"message": "Invalid request.", "documentation_url": _DOCS}
TOKEN = "ghs_standinTOKEN0123456789abcdefABCDEF"


def contract_path() -> Path | None:
    """The contract: ``$OTASEAL_GITHUB_CONTRACT``, else the copy in tests/contracts."""
    repo = Path(__file__).resolve().parents[2]
    candidates = [
        os.environ.get("OTASEAL_GITHUB_CONTRACT", ""),
        repo / "tests" / "contracts" / "github-rest-subset.json",
        repo.parent / "shared" / "contracts" / "github-rest-subset.json",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _drop_discriminators(node: Any) -> Any:
    """openapi-core resolves ``discriminator`` values as schema names and fails on GitHub's."""
    if isinstance(node, dict):
        return {k: _drop_discriminators(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_drop_discriminators(v) for v in node]
    return node


@dataclass(frozen=True)
class Contract:
    spec: dict[str, Any]
    openapi: OpenAPI
    # "METHOD /template" -> operationId, and operationId -> (method, template)
    operations: dict[str, tuple[str, str]]

    def documented(self, operation: str, status: int) -> bool:
        method, template = self.operations[operation]
        responses = self.spec["paths"][template][method.lower()]["responses"]
        return (
            str(status) in responses
            or f"{str(status)[0]}XX" in responses
            or ("default" in responses)
        )

    def schema_errors(self, name: str, value: Any) -> list[str]:
        validator = OAS30Validator(
            {"$ref": f"#/components/schemas/{name}", "components": self.spec["components"]},
            format_checker=oas30_format_checker,
        )
        return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]


@functools.cache
def load_contract(path: Path) -> Contract:
    spec = _drop_discriminators(json.loads(path.read_text(encoding="utf-8")))
    operations = {}
    for operation, route in spec["x-subset-operations"].items():
        method, template = route.split(" ", 1)
        operations[operation] = (method, template)
    return Contract(spec=spec, openapi=OpenAPI.from_dict(spec), operations=operations)


# --- instances built from the schemas -----------------------------------------------------------
def instance(contract: Contract, name: str) -> dict[str, Any]:
    """A minimal valid value of ``components.schemas[name]``: required fields only."""
    value = _generate(contract.spec, {"$ref": f"#/components/schemas/{name}"}, name, 0)
    errors = contract.schema_errors(name, value)
    if errors:  # the generator is part of the test harness: fail loudly if it drifts
        msg = f"generated {name} does not validate: {errors[:3]}"
        raise AssertionError(msg)
    assert isinstance(value, dict)
    return value


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _generate(spec: dict[str, Any], schema: dict[str, Any], name: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        msg = f"schema {name} nests too deeply to generate"
        raise AssertionError(msg)
    schema = _resolve(spec, schema)
    if schema.get("nullable"):
        return None
    branches = schema.get("oneOf") or schema.get("anyOf")
    if branches:
        return _generate(spec, branches[0], name, depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(_generate(spec, part, name, depth + 1))
        return merged
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type", "object") == "object":
        properties = schema.get("properties", {})
        return {
            key: _generate(spec, properties.get(key, {"type": "string"}), key, depth + 1)
            for key in schema.get("required", [])
        }
    return _scalar(schema, name)


def _scalar(schema: dict[str, Any], name: str) -> Any:
    fixed = {"array": [], "integer": 1, "number": 1.0, "boolean": False}
    kind = schema.get("type")
    if kind in fixed:
        return fixed[kind]
    by_format = {
        "uri": f"{GITHUB}/{name}",
        "date-time": _BASE_TIME.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return by_format.get(schema.get("format", ""), name)


# --- injected failures ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """An answer to give instead of the real one (``status=0``: answer normally after ``stall``)."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0


def server_error() -> Fault:
    return Fault(500, {"message": "Server Error", "documentation_url": _DOCS})


def secondary_rate_limit(retry_after: int | None = 7) -> Fault:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    message = (
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
        "again. If you reach out to GitHub Support for help, please include the request ID."
    )
    return Fault(403, {"message": message, "documentation_url": _DOCS}, headers)


def primary_rate_limit(reset: int) -> Fault:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    body = {"message": "API rate limit exceeded for installation ID 1.", "documentation_url": _DOCS}
    return Fault(403, body, headers)


def too_many_requests() -> Fault:
    return Fault(429, {"message": "Too Many Requests", "documentation_url": _DOCS})


def permission_denied() -> Fault:
    body = {
        "message": "Resource not accessible by integration",
        "documentation_url": _DOCS,
        "status": "403",
    }
    return Fault(403, body)


def bad_credentials() -> Fault:
    return Fault(401, {"message": "Bad credentials", "documentation_url": _DOCS, "status": "401"})


def not_found() -> Fault:
    return Fault(404, {"message": "Not Found", "documentation_url": _DOCS, "status": "404"})


def stall(seconds: float) -> Fault:
    return Fault(0, stall=seconds)


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in saw it (the Authorization header is left out)."""

    method: str
    path: str  # as on api.github.com, base path removed
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]
    status: int = 0


# --- the server -----------------------------------------------------------------------------------
_SEG = r"[^/]+"
_REPO = rf"/repos/(?P<owner>{_SEG})/(?P<repo>{_SEG})"
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(_REPO + pattern), operation)
    for method, pattern, operation in (
        (
            "GET",
            r"/commits/(?P<sha>[^/]+)/pulls",
            "repos/list-pull-requests-associated-with-commit",
        ),
        ("GET", r"/issues/(?P<number>\d+)/comments", "issues/list-comments"),
        ("POST", r"/issues/(?P<number>\d+)/comments", "issues/create-comment"),
        ("GET", r"/issues/comments/(?P<comment_id>\d+)", "issues/get-comment"),
        ("PATCH", r"/issues/comments/(?P<comment_id>\d+)", "issues/update-comment"),
        ("GET", r"/deployments", "repos/list-deployments"),
        ("POST", r"/deployments", "repos/create-deployment"),
        ("POST", r"/deployments/(?P<deployment_id>\d+)/statuses", "repos/create-deployment-status"),
    )
)


class GitHubStandIn:
    """The fake GitHub: state, fault injection, contract checks. Use as a context manager."""

    def __init__(
        self,
        contract: Path,
        *,
        token: str = TOKEN,
        base_path: str = "",
        bot_login: str = BOT_LOGIN,
    ) -> None:
        self.contract = load_contract(contract)
        self.token = token
        self.base_path = base_path.rstrip("/")
        self.bot_login = bot_login
        self.violations: list[str] = []
        self.requests: list[Recorded] = []
        self.link_base: str | None = None  # override the origin used in Link headers
        self.comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.pulls: dict[str, dict[int, dict[str, Any]]] = {}
        self.commit_pulls: dict[tuple[str, str], list[int]] = {}
        self.deployments: dict[str, list[dict[str, Any]]] = {}
        self.statuses: dict[int, list[dict[str, Any]]] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._ids = itertools.count(1001)
        self._ticks = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                standin._serve(self)

            def do_POST(self) -> None:
                standin._serve(self)

            def do_PATCH(self) -> None:
                standin._serve(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                error = sys.exc_info()[1]
                if not isinstance(error, (BrokenPipeError, ConnectionResetError)):
                    standin._violation(f"the stand-in itself failed: {error!r}")

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def origin(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """What to pass as ``api_url`` (``GITHUB_API_URL``)."""
        return self.origin + self.base_path

    # --- arranging state ----------------------------------------------------------------------
    def inject(self, operation: str, fault: Fault, *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``operation`` (an operationId) with ``fault``."""
        assert operation in self.contract.operations, operation
        with self._lock:
            self._faults.setdefault(operation, []).extend([fault] * times)

    def add_pull_request(
        self,
        repo: str,
        number: int,
        *,
        head_sha: str,
        base_ref: str = "main",
        head_ref: str = "feature",
        merged: bool = False,
        state: str | None = None,
        merge_commit_sha: str | None = None,
        commits: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """A PR; the commits endpoint lists it for its head, merge commit and ``commits``."""
        pr = instance(self.contract, "pull-request-simple")
        state = state or ("closed" if merged else "open")
        owner, name = repo.split("/")
        pr.update(
            id=number * 10,
            number=number,
            state=state,
            title=f"PR {number}",
            merged_at=self._timestamp() if merged else None,
            closed_at=self._timestamp() if state == "closed" else None,
            merge_commit_sha=merge_commit_sha,
            url=f"{GITHUB}/repos/{repo}/pulls/{number}",
            html_url=f"https://github.com/{repo}/pull/{number}",
            user=self._user("octocat", "User"),
        )
        for side, ref, sha in (("head", head_ref, head_sha), ("base", base_ref, "0" * 40)):
            pr[side].update(ref=ref, sha=sha, label=f"{owner}:{ref}", user=self._user(owner))
            pr[side]["repo"].update(name=name, full_name=repo)
        with self._lock:
            self.pulls.setdefault(repo, {})[number] = pr
            for sha in {head_sha, merge_commit_sha, *commits} - {None}:
                assert sha is not None
                self.commit_pulls.setdefault((repo, sha), []).append(number)
        return pr

    def add_comment(
        self, repo: str, number: int, body: str, *, login: str = "octocat", kind: str = "User"
    ) -> dict[str, Any]:
        """A comment by someone else (a person by default)."""
        with self._lock:
            return self._new_comment(repo, number, body, self._user(login, kind))

    def comments_on(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.comments.get((repo, number), []))

    # --- serving ------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        method = handler.command
        headers = dict(handler.headers.items())
        if not (parts.path == self.base_path or parts.path.startswith(self.base_path + "/")):
            self._violation(f"{method} {parts.path}: outside the API base path {self.base_path}")
            self._send(handler, 404, not_found().body, {})
            return
        path = parts.path[len(self.base_path) :]
        url = GITHUB + path + (f"?{parts.query}" if parts.query else "")
        oreq = RequestsOpenAPIRequest(
            requests.Request(method, url, headers=headers, data=raw or None)
        )
        where = f"{method} {path}"
        valid = True
        with self._lock:
            try:
                self.contract.openapi.validate_request(oreq)
            except OpenAPIError as exc:
                valid = False
                self._violation(f"{where}: request breaks the contract: {_explain(exc)}")
        body = _json_or_raw(raw)
        self._check_protocol(where, headers)
        operation, params = self._route(method, path)
        if operation is None:
            self._violation(f"{where}: no such operation in the contract subset")
            self._send(handler, 404, not_found().body, {})
            return
        if valid:
            status, payload, extra, generic = self._answer(
                operation, params, parts.query, body, headers
            )
        else:  # answer like GitHub does, so the client sees it too
            status, payload, extra, generic = 422, _INVALID, {}, True
        safe_headers = {k.lower(): v for k, v in headers.items() if k.lower() != "authorization"}
        with self._lock:
            self.requests.append(
                Recorded(method, path, parse_qs(parts.query), body, safe_headers, status)
            )
        self._check_response(  # before sending: the client must not see it first
            operation=operation,
            where=where,
            oreq=oreq,
            status=status,
            payload=payload,
            headers=self._headers(payload, extra),
            generic=generic,
        )
        self._send(handler, status, payload, extra)

    def _answer(
        self,
        operation: str,
        params: dict[str, str],
        query: str,
        body: Any,
        headers: dict[str, str],
    ) -> tuple[int, Any, dict[str, str], bool]:
        """(status, JSON body, extra headers, generic error?) for one call."""
        if headers.get("Authorization") != f"Bearer {self.token}":
            fault = bad_credentials()
            return fault.status, fault.body, {}, True
        with self._lock:
            queue = self._faults.get(operation)
            fault = queue.pop(0) if queue else None
        if fault is not None and fault.stall:
            time.sleep(fault.stall)
        if fault is not None and fault.status:
            return fault.status, fault.body, dict(fault.headers), True
        with self._lock:
            status, payload, extra = getattr(
                self, "_op_" + operation.split("/")[1].replace("-", "_")
            )(params, parse_qs(query), body)
        return status, payload, extra, False

    # --- operations -----------------------------------------------------------------------------
    def _op_list_pull_requests_associated_with_commit(
        self, params: dict[str, str], query: dict[str, list[str]], _body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        repo = f"{params['owner']}/{params['repo']}"
        numbers = self.commit_pulls.get((repo, params["sha"]), [])
        items = [self.pulls[repo][n] for n in numbers]
        return self._page(f"/repos/{repo}/commits/{params['sha']}/pulls", items, query)

    def _op_list_comments(
        self, params: dict[str, str], query: dict[str, list[str]], _body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        repo, number = f"{params['owner']}/{params['repo']}", int(params["number"])
        items = sorted(self.comments.get((repo, number), []), key=lambda c: c["id"])
        return self._page(f"/repos/{repo}/issues/{number}/comments", items, query)

    def _op_create_comment(
        self, params: dict[str, str], _query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        repo, number = f"{params['owner']}/{params['repo']}", int(params["number"])
        comment = self._new_comment(repo, number, body["body"], self._user(self.bot_login, "Bot"))
        return 201, comment, {"Location": comment["url"]}

    def _op_get_comment(
        self, params: dict[str, str], _query: dict[str, list[str]], _body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        comment = self._find_comment(int(params["comment_id"]))
        return (200, comment, {}) if comment else (404, not_found().body, {})

    def _op_update_comment(
        self, params: dict[str, str], _query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        comment = self._find_comment(int(params["comment_id"]))
        if comment is None:
            return 404, not_found().body, {}  # undocumented for update: reported as generic
        comment.update(body=body["body"], updated_at=self._timestamp())
        return 200, comment, {}

    def _op_list_deployments(
        self, params: dict[str, str], query: dict[str, list[str]], _body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        repo = f"{params['owner']}/{params['repo']}"
        items = list(reversed(self.deployments.get(repo, [])))
        if "environment" in query:
            items = [d for d in items if d["environment"] == query["environment"][0]]
        return self._page(f"/repos/{repo}/deployments", items, query)

    def _op_create_deployment(
        self, params: dict[str, str], _query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        repo = f"{params['owner']}/{params['repo']}"
        deployment_id = next(self._ids)
        environment = body.get("environment", "production")
        deployment = instance(self.contract, "deployment")
        now = self._timestamp()
        deployment.update(
            id=deployment_id,
            node_id=f"DE_{deployment_id}",
            sha=body["ref"] if re.fullmatch(r"[0-9a-f]{40}", body["ref"]) else "f" * 40,
            ref=body["ref"],
            task=body.get("task", "deploy"),
            payload=body.get("payload", {}),
            environment=environment,
            original_environment=environment,
            description=body.get("description"),
            creator=self._user(self.bot_login, "Bot"),
            created_at=now,
            updated_at=now,
            url=f"{GITHUB}/repos/{repo}/deployments/{deployment_id}",
            statuses_url=f"{GITHUB}/repos/{repo}/deployments/{deployment_id}/statuses",
            repository_url=f"{GITHUB}/repos/{repo}",
            transient_environment=body.get("transient_environment", False),
            production_environment=body.get("production_environment", environment == "production"),
        )
        self.deployments.setdefault(repo, []).append(deployment)
        self.statuses[deployment_id] = []
        return 201, deployment, {}

    def _op_create_deployment_status(
        self, params: dict[str, str], _query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        repo = f"{params['owner']}/{params['repo']}"
        deployment_id = int(params["deployment_id"])
        deployment = next(
            (d for d in self.deployments.get(repo, []) if d["id"] == deployment_id), None
        )
        if deployment is None:
            return 404, not_found().body, {}
        status = self._new_status(repo, deployment, body)
        if body.get("auto_inactive", True) and body["state"] == "success":
            for older in self.deployments[repo]:
                if (
                    older["id"] != deployment_id
                    and older["environment"] == deployment["environment"]
                    and not older["production_environment"]
                    and not older["transient_environment"]
                    and any(s["state"] == "success" for s in self.statuses[older["id"]])
                    and self.statuses[older["id"]][-1]["state"] != "inactive"
                ):
                    self._new_status(repo, older, {"state": "inactive"})
        return 201, status, {"Location": status["url"]}

    # --- helpers ------------------------------------------------------------------------------
    def _new_comment(
        self, repo: str, number: int, text: str, user: dict[str, Any]
    ) -> dict[str, Any]:
        comment = instance(self.contract, "issue-comment")
        comment_id = next(self._ids)
        now = self._timestamp()
        comment.update(
            id=comment_id,
            node_id=f"IC_{comment_id}",
            url=f"{GITHUB}/repos/{repo}/issues/comments/{comment_id}",
            html_url=f"https://github.com/{repo}/pull/{number}#issuecomment-{comment_id}",
            issue_url=f"{GITHUB}/repos/{repo}/issues/{number}",
            body=text,
            user=user,
            created_at=now,
            updated_at=now,
            author_association="NONE" if user["type"] == "Bot" else "MEMBER",
        )
        self.comments.setdefault((repo, number), []).append(comment)
        return comment

    def _find_comment(self, comment_id: int) -> dict[str, Any] | None:
        for comments in self.comments.values():
            for comment in comments:
                if comment["id"] == comment_id:
                    return comment
        return None

    def _new_status(
        self, repo: str, deployment: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        status = instance(self.contract, "deployment-status")
        status_id = next(self._ids)
        now = self._timestamp()
        log_url = body.get("log_url") or body.get("target_url") or ""
        status.update(
            id=status_id,
            node_id=f"DES_{status_id}",
            state=body["state"],
            creator=self._user(self.bot_login, "Bot"),
            description=body.get("description", ""),
            environment=body.get("environment", deployment["environment"]),
            target_url=log_url,
            log_url=log_url,
            environment_url=body.get("environment_url", ""),
            created_at=now,
            updated_at=now,
            url=f"{deployment['url']}/statuses/{status_id}",
            deployment_url=deployment["url"],
            repository_url=f"{GITHUB}/repos/{repo}",
        )
        self.statuses[deployment["id"]].append(status)
        return status

    def _page(
        self, path: str, items: list[dict[str, Any]], query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        base = (self.link_base or self.origin) + self.base_path + path
        if page < last:
            links.append(f'<{base}?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(f'<{base}?per_page={per_page}&page={last}>; rel="last"')
        return 200, chunk, ({"Link": ", ".join(links)} if links else {})

    def _user(self, login: str, kind: str = "User") -> dict[str, Any]:
        user = instance(self.contract, "simple-user")
        user_id = sum(map(ord, login))
        user.update(
            login=login,
            id=user_id,
            node_id=f"U_{user_id}",
            type=kind,
            url=f"{GITHUB}/users/{login}",
            html_url=f"https://github.com/{login}",
        )
        return user

    def _timestamp(self) -> str:
        return (_BASE_TIME + timedelta(seconds=next(self._ticks))).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _route(self, method: str, path: str) -> tuple[str | None, dict[str, str]]:
        for route_method, pattern, operation in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return operation, match.groupdict()
        return None, {}

    def _check_protocol(self, where: str, headers: dict[str, str]) -> None:
        """What GitHub asks of every client, beyond the contract's schemas."""
        expected = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        for name, value in expected.items():
            if headers.get(name) != value:
                self._violation(f"{where}: header {name} is {headers.get(name)!r}, not {value!r}")
        if not headers.get("User-Agent"):
            self._violation(f"{where}: GitHub rejects requests without a User-Agent")

    def _headers(self, payload: Any, extra: dict[str, str]) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": str(len(_encode(payload))),
            "X-GitHub-Media-Type": "github.v3; format=json",
            "x-ratelimit-limit": "1000",
            "x-ratelimit-remaining": "999",
            "x-ratelimit-reset": str(int(_BASE_TIME.timestamp()) + 3600),
            "x-ratelimit-used": "1",
            "x-ratelimit-resource": "core",
            **extra,
        }

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, payload: Any, extra: dict[str, str]
    ) -> None:
        handler.send_response(status)
        for name, value in self._headers(payload, extra).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(_encode(payload))

    def _check_response(
        self,
        *,
        operation: str,
        where: str,
        oreq: RequestsOpenAPIRequest,
        status: int,
        payload: Any,
        headers: dict[str, str],
        generic: bool,
    ) -> None:
        if self.contract.documented(operation, status):
            response = requests.Response()
            response.status_code = status
            response.headers.update(headers)
            response._content = _encode(payload)
            with self._lock:
                try:
                    self.contract.openapi.validate_response(oreq, RequestsOpenAPIResponse(response))
                except OpenAPIError as exc:
                    self._violation(f"{where}: HTTP {status} breaks the contract: {_explain(exc)}")
        elif generic or status == 404:
            errors = self.contract.schema_errors("basic-error", payload)
            if errors:
                self._violation(f"{where}: HTTP {status} is not a basic-error: {errors}")
        else:
            self._violation(f"{where}: HTTP {status} is not documented for {operation}")

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)


def _encode(payload: Any) -> bytes:
    return json.dumps(payload).encode() if payload is not None else b""


def _json_or_raw(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _explain(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        parts.append(_explain(cause))
    for attribute in ("schema_errors", "errors"):
        details = getattr(exc, attribute, None)
        if details:
            parts.extend(str(getattr(e, "message", e)) for e in details)
    return " | ".join(parts)
