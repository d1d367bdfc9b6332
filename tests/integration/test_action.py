"""The Action run the way the runner runs it, against a contract-checked GitHub stand-in.

Every run gets an environment built like the runner's: each input declared in action.yml as
``INPUT_<NAME>`` (hyphens kept, defaults applied, possibly empty), ``GITHUB_OUTPUT`` and
``GITHUB_STEP_SUMMARY`` files, ``GITHUB_EVENT_PATH`` pointing at a webhook payload that
validates against ``github-webhooks-subset.json``, and ``GITHUB_API_URL`` pointing at the
loopback stand-in, which checks every request and response against the REST contract. The
subprocess runs use the Dockerfile's own ENTRYPOINT (with /app/src mapped to this checkout);
the in-process runs call the same ``main`` with the same environment, which is faster and lets
coverage see the code.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from github_standin import (
    TOKEN,
    GitHubStandIn,
    contract_path,
    not_found,
    permission_denied,
    server_error,
)
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from otaseal import github as github_module
from otaseal.action import command, entrypoint, github_steps, report_data, run_context
from otaseal.action.report import marker
from otaseal.config import load_config
from otaseal.operations import Project, now_utc, open_store, read_head
from otaseal.project import init_project
from unit.action.runner_parser import Command, parse_file_command, parse_log

ROOT = Path(__file__).resolve().parents[2]
EVENTS = Path(__file__).parent / "events"
APP = "com.example.shop"
REPO = "acme/shop-app"
PR = 42
MAIN_HEAD = "7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b"
EVENT_NAMES = {
    "push": ("push", "webhook-push"),
    "pull_request_closed": ("pull_request", "webhook-pull-request-closed"),
    "workflow_dispatch": ("workflow_dispatch", "webhook-workflow-dispatch"),
}


# --- the runner's side ---------------------------------------------------------------------------
@functools.cache
def declared_inputs() -> dict[str, str]:
    """action.yml's inputs and their defaults, as the runner evaluates them."""
    doc = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    return {name: str(spec.get("default", "")) for name, spec in doc["inputs"].items()}


@functools.cache
def entrypoint_argv() -> tuple[str, ...]:
    """The Dockerfile's exec-form ENTRYPOINT, with the image's paths mapped to this checkout."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    argv = json.loads(re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, re.MULTILINE).group(1))
    python, script = argv
    assert python.startswith("/usr/local/bin/python")
    return (sys.executable, str(ROOT / "src" / Path(script).relative_to("/app/src")))


def webhooks_path() -> Path:
    path = ROOT / "tests" / "contracts" / "github-webhooks-subset.json"
    assert path.is_file(), "the vendored webhook contract is missing from tests/contracts/"
    return path


@functools.cache
def webhook_validator(schema: str) -> OAS30Validator:
    spec = json.loads(webhooks_path().read_text(encoding="utf-8"))
    registry = Registry().with_resource(
        "urn:webhooks", Resource.from_contents(spec, default_specification=DRAFT4)
    )
    return OAS30Validator({"$ref": f"urn:webhooks#/components/schemas/{schema}"}, registry=registry)


def event_payload(name: str, **changes: Any) -> dict[str, Any]:
    """A payload from events/, optionally changed, checked against the webhook contract."""
    doc = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = doc
        for key in parents:
            target = target[key]
        target[last] = value
    errors = [e.message for e in webhook_validator(EVENT_NAMES[name][1]).iter_errors(doc)]
    assert not errors, errors[:3]
    return doc


def event_sha(name: str, doc: dict[str, Any]) -> tuple[str, str]:
    """GITHUB_SHA and GITHUB_REF for the event, as GitHub sets them."""
    if name == "push":
        return doc["after"], doc["ref"]
    if name == "pull_request_closed":
        return doc["pull_request"]["merge_commit_sha"], f"refs/pull/{doc['number']}/merge"
    return MAIN_HEAD, doc["ref"]


@dataclass
class Workspace:
    """The runner's folders and a project whose private keys live only in CI secrets."""

    root: Path
    temp: Path
    home: Path
    keys: dict[str, str]

    @property
    def store(self) -> Path:
        return self.root / "store"

    def project(self) -> Project:
        config = load_config(self.root / "otaseal.yml")
        return Project(config, open_store(config.store))

    def snapshot(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.store)): p.read_bytes()
            for p in sorted(self.store.rglob("*"))
            if p.is_file()
        }


@dataclass
class Run:
    """What one run of the Action left behind."""

    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    @property
    def commands(self) -> list[Command]:
        return [e for e in parse_log(self.stdout) if isinstance(e, Command)]

    def annotations(self, kind: str) -> list[str]:
        return [c.data for c in self.commands if c.name == kind]

    @property
    def printed(self) -> str:
        """What the log shows a person: every line the runner prints, no add-mask commands."""
        shown = []
        for entry in parse_log(self.stdout):
            if isinstance(entry, Command):
                if entry.name != "add-mask":
                    shown.append(f"{entry.name} {entry.properties} {entry.data}")
            else:
                shown.append(entry)
        return "\n".join(shown)


def runner_env(
    ws: Workspace,
    standin: GitHubStandIn,
    event: str,
    inputs: dict[str, str],
    *,
    payload: dict[str, Any] | None = None,
) -> dict[str, str]:
    doc = payload if payload is not None else event_payload(event)
    commands = ws.temp / "_runner_file_commands"
    commands.mkdir(exist_ok=True)
    output = commands / f"set_output_{uuid.uuid4()}"
    summary = commands / f"step_summary_{uuid.uuid4()}"
    output.touch()
    summary.touch()
    event_path = ws.temp / "_github_workflow" / "event.json"
    event_path.parent.mkdir(exist_ok=True)
    event_path.write_text(json.dumps(doc), encoding="utf-8")
    sha, ref = event_sha(event, doc)
    unknown = set(inputs) - set(declared_inputs())
    assert not unknown, f"not declared in action.yml: {unknown}"
    values = {
        name: inputs.get(name, TOKEN if default == "${{ github.token }}" else default)
        for name, default in declared_inputs().items()
    }
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(ws.home),
        "TMPDIR": str(ws.temp),
        "LANG": "C.UTF-8",
        "PYTHONSAFEPATH": "1",
        "PYTHONPATH": str(ROOT / "src"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_WORKSPACE": str(ws.root),
        "RUNNER_TEMP": str(ws.temp),
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_RUN_ID": "7001",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": standin.url,
        "GITHUB_EVENT_NAME": EVENT_NAMES[event][0],
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_SHA": sha,
        "GITHUB_REF": ref,
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        **{"INPUT_" + name.replace(" ", "_").upper(): value for name, value in values.items()},
    }


def finish(env: dict[str, str], returncode: int, stdout: str, stderr: str) -> Run:
    output = env["GITHUB_OUTPUT"]
    outputs = parse_file_command(Path(output).read_text(encoding="utf-8")) if output else {}
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    return Run(returncode, stdout, stderr, outputs, summary)


def run_subprocess(env: dict[str, str], cwd: Path) -> Run:
    """As the runner does: `docker run --workdir /github/workspace -e ... image`."""
    done = subprocess.run(
        entrypoint_argv(),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return finish(env, done.returncode, done.stdout, done.stderr)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root, temp, home = tmp_path / "workspace", tmp_path / "runner_temp", tmp_path / "home"
    for folder in (root, temp, home):
        folder.mkdir()
    init_project(APP, root, now=now_utc())
    keys = {}
    for pem in sorted((root / "keys").glob("*.pem")):
        if not pem.name.endswith(".pub.pem"):  # CI holds private keys as secrets, not files
            keys[pem.name.removesuffix(".pem")] = pem.read_text(encoding="ascii")
            pem.unlink()
    build = root / "web" / "dist"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text("<!doctype html><title>Shop</title><script src=app.js>")
    (build / "app.js").write_text("console.log('checkout v1');\n")
    (build / "assets" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return Workspace(root, temp, home, keys)


@pytest.fixture
def gh() -> Any:
    path = contract_path()
    assert path is not None, "the vendored REST contract is missing from tests/contracts/"
    with GitHubStandIn(path) as standin:
        head = "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
        merge = event_payload("push")["after"]
        standin.add_pull_request(
            REPO, PR, head_sha=head, merged=True, merge_commit_sha=merge, head_ref="checkout-copy"
        )
        yield standin
    assert standin.violations == []


@pytest.fixture
def action(ws: Workspace, gh: GitHubStandIn, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``action(event, *, subprocess=False, env=..., payload=..., **inputs)`` → Run."""
    monkeypatch.chdir(ws.root)
    quick = functools.partial(github_module.GitHub, mutation_interval=0.0, sleep=lambda _: None)
    monkeypatch.setattr(github_steps, "GitHub", quick)

    def run(
        event: str = "push",
        *,
        in_subprocess: bool = False,
        env: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
        **inputs: str,
    ) -> Run:
        named = {k.replace("_", "-"): v for k, v in inputs.items()}
        environment = runner_env(ws, gh, event, named, payload=payload) | (env or {})
        if in_subprocess:
            return run_subprocess(environment, ws.root)
        out = io.StringIO()
        code = entrypoint.main(environment, out)
        return finish(environment, code, out.getvalue(), "")

    return run


def publish_inputs(ws: Workspace, **more: str) -> dict[str, str]:
    return {
        "command": "publish",
        "build_dir": "web/dist",
        "channel": "beta",
        "signing_key": ws.keys["beta"],
        **more,
    }


def bot_comments(gh: GitHubStandIn, number: int = PR) -> list[dict[str, Any]]:
    return [c for c in gh.comments_on(REPO, number) if c["user"]["login"] == "github-actions[bot]"]


def deployments(gh: GitHubStandIn) -> list[dict[str, Any]]:
    return list(gh.deployments.get(REPO, []))


def mutations(gh: GitHubStandIn) -> list[str]:
    return [f"{r.method} {r.path}" for r in gh.requests if r.method != "GET"]


# --- the contract of the fixtures themselves ---------------------------------------------------
@pytest.mark.parametrize("name", sorted(EVENT_NAMES))
def test_event_payloads_follow_the_webhook_contract(name: str) -> None:
    doc = event_payload(name)
    assert doc["repository"]["full_name"] == REPO


def test_runner_environment_has_every_declared_input(ws: Workspace, gh: GitHubStandIn) -> None:
    env = runner_env(ws, gh, "push", {"command": "status"})
    assert env["INPUT_BUILD-DIR"] == ""  # hyphen kept, declared but not given
    assert env["INPUT_GITHUB-TOKEN"] == TOKEN  # the `${{ github.token }}` default
    assert env["INPUT_COMMENT"] == "true"
    assert {k for k in env if k.startswith("INPUT_")} == {
        "INPUT_" + name.upper() for name in declared_inputs()
    }


# --- the stages people see -----------------------------------------------------------------------
def test_publish_on_push_comments_on_the_merged_pr_and_deploys(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    run = action("push", in_subprocess=True, **publish_inputs(ws, label="1.4.2"))

    assert run.returncode == 0, run.stdout + run.stderr
    merge = event_payload("push")["after"]
    assert run.outputs["release-label"] == "1.4.2"
    assert re.fullmatch(r"[0-9a-f]{64}", run.outputs["bundle-sha256"])
    assert run.outputs["manifest-version"] == "1"
    assert run.outputs["channel"] == "beta"
    assert run.outputs["rollout"] == "100"
    [comment] = bot_comments(gh)
    assert marker(APP) in comment["body"]
    assert "**1.4.2** is on **beta** (100 %)" in comment["body"]
    assert run.outputs["comment-url"] == comment["html_url"]
    [deployment] = deployments(gh)
    assert deployment["environment"] == "otaseal-beta"
    assert deployment["ref"] == merge
    assert run.outputs["deployment-id"] == str(deployment["id"])
    [state] = gh.statuses[deployment["id"]]
    assert state["state"] == "success"
    assert state["log_url"] == f"https://github.com/{REPO}/actions/runs/7001"
    current = read_head(ws.project(), "beta").manifest.current
    assert (current.commit, current.pr, current.sha256) == (merge, PR, run.outputs["bundle-sha256"])
    assert "**1.4.2** is on **beta**" in run.summary
    assert "| **beta** | 1.4.2 | 100 % |" in run.summary


def test_promote_by_dispatch_updates_the_same_comment(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    first = action("push", **publish_inputs(ws, label="1.4.2"))
    assert first.returncode == 0, first.stdout

    run = action(
        "workflow_dispatch",
        in_subprocess=True,
        command="promote",
        **{
            "from": "beta",
            "to": "production",
            "rollout": "10",
            "signing_key": ws.keys["production"],
        },
    )

    assert run.returncode == 0, run.stdout + run.stderr
    [comment] = bot_comments(gh)
    assert run.outputs["comment-url"] == first.outputs["comment-url"] == comment["html_url"]
    assert "**1.4.2** was promoted to **production** (10 %)" in comment["body"]
    assert run.outputs["bundle-sha256"] == first.outputs["bundle-sha256"]  # the same bytes
    assert (run.outputs["channel"], run.outputs["rollout"]) == ("production", "10")
    environments = [d["environment"] for d in deployments(gh)]
    assert environments == ["otaseal-beta", "otaseal-production"]


def test_rollout_raises_the_percentage(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    action("push", **publish_inputs(ws, label="1.4.2"))
    action(
        "workflow_dispatch",
        command="promote",
        **{
            "from": "beta",
            "to": "production",
            "rollout": "10",
            "signing_key": ws.keys["production"],
        },
    )

    run = action(
        "workflow_dispatch",
        command="rollout",
        channel="production",
        rollout="50",
        signing_key=ws.keys["production"],
    )

    assert run.returncode == 0, run.stdout
    assert run.outputs["rollout"] == "50"
    assert read_head(ws.project(), "production").manifest.current.rollout_bp == 5000
    [comment] = bot_comments(gh)
    assert "**1.4.2** is rolling out on **production** (50 %)" in comment["body"]


def test_rollout_pause_keeps_the_percentage(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    action("push", **publish_inputs(ws, rollout="20"))

    run = action(
        "workflow_dispatch",
        command="rollout",
        channel="beta",
        rollout="pause",
        signing_key=ws.keys["beta"],
    )

    assert run.returncode == 0, run.stdout
    current = read_head(ws.project(), "beta").manifest.current
    assert (current.paused, current.rollout_bp) == (True, 2000)


def test_revert_goes_back_and_lists_changed_files(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    report = ws.keys["report"]
    action("push", **publish_inputs(ws, label="1.4.1", report_key=report))
    (ws.root / "web/dist/app.js").write_text("console.log('checkout v2');\n")
    (ws.root / "web/dist/assets/logo.svg").unlink()
    (ws.root / "web/dist/offline.html").write_text("offline")
    second = action("push", **publish_inputs(ws, label="1.4.2", report_key=report))
    body = bot_comments(gh)[0]["body"]
    assert "1 added, 1 removed, 1 changed" in body
    assert "- added `offline.html`" in body
    assert "- removed `assets/logo.svg`" in body
    assert "- changed `app.js`" in body

    run = action(
        "workflow_dispatch",
        command="revert",
        channel="beta",
        signing_key=ws.keys["beta"],
        report_key=report,
    )

    assert run.returncode == 0, run.stdout
    assert run.outputs["release-label"] == "1.4.1"
    assert run.outputs["manifest-version"] == "3"
    assert run.outputs["bundle-sha256"] != second.outputs["bundle-sha256"]
    [comment] = bot_comments(gh)
    assert "**beta** was reverted to **1.4.1**" in comment["body"]
    assert [d["environment"] for d in deployments(gh)] == ["otaseal-beta"] * 3


def test_revert_to_builtin(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    action("push", **publish_inputs(ws))

    run = action(
        "workflow_dispatch",
        command="revert",
        channel="beta",
        release="builtin",
        signing_key=ws.keys["beta"],
    )

    assert run.returncode == 0, run.stdout
    assert (run.outputs["release-label"], run.outputs["bundle-sha256"]) == ("builtin", "")
    assert read_head(ws.project(), "beta").manifest.builtin
    assert deployments(gh)[-1]["description"] == "beta serves the app's builtin build"


def test_without_report_key_the_comment_says_the_file_list_is_unavailable(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.1"))
    (ws.root / "web/dist/app.js").write_text("console.log('checkout v2, longer');\n")

    run = action("push", **publish_inputs(ws, label="1.4.2"))

    assert run.returncode == 0
    body = bot_comments(gh)[0]["body"]
    assert "Change since 1.4.1:** +" in body
    assert "file list not available" in body


def test_resign_and_status_change_no_deployment(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws, label="1.4.2"))

    resigned = action(
        "workflow_dispatch", command="resign", channel="beta", signing_key=ws.keys["beta"]
    )
    status = action("workflow_dispatch", command="status")

    assert (resigned.returncode, status.returncode) == (0, 0)
    assert resigned.outputs["manifest-version"] == "2"
    assert status.outputs["manifest-version"] == "2"
    assert status.outputs["deployment-id"] == ""
    assert len(deployments(gh)) == 1
    assert "| **beta** | 1.4.2 | 100 % |" in status.summary
    assert "| production | — |" in status.summary
    [comment] = bot_comments(gh)  # status updates the release's PR comment
    assert "**1.4.2** is on **beta**" in comment["body"]


def test_status_of_an_empty_channel(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    run = action("workflow_dispatch", command="status", channel="production")

    assert run.returncode == 0, run.stdout
    assert run.outputs["channel"] == "production"
    assert run.outputs["release-label"] == ""
    assert "no pull request is linked" in run.summary


def test_status_fails_when_a_channel_is_unreadable(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    action("push", **publish_inputs(ws))
    pointer = ws.store / APP / "channels" / "production" / "manifest.json"
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_bytes(json.dumps({"payloadType": "x", "payload": "", "signatures": []}).encode())

    run = action("workflow_dispatch", command="status", channel="beta")

    assert run.returncode == 3
    [error] = run.annotations("error")
    assert error.startswith("production:")
    assert "| production | unreadable |" in run.summary


def test_pull_request_closed_event_records_the_merge_commit(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    run = action("pull_request_closed", **publish_inputs(ws))

    assert run.returncode == 0, run.stdout
    current = read_head(ws.project(), "beta").manifest.current
    merge = event_payload("pull_request_closed")["pull_request"]["merge_commit_sha"]
    assert (current.pr, current.commit) == (PR, merge)
    assert not any(r.path.endswith("/pulls") for r in gh.requests)  # the event names the PR
    assert len(bot_comments(gh)) == 1


def test_direct_push_without_pr_publishes_without_comment(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    payload = event_payload("push", after="ab" * 20)

    run = action("push", payload=payload, **publish_inputs(ws))

    assert run.returncode == 0, run.stdout
    assert read_head(ws.project(), "beta").manifest.current.pr is None
    assert run.outputs["comment-url"] == ""
    assert "no pull request is linked to this run" in run.summary
    assert len(deployments(gh)) == 1


def test_pull_request_input_names_the_pr_for_other_events(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    run = action("workflow_dispatch", pull_request="#42", **publish_inputs(ws))

    assert run.returncode == 0, run.stdout
    assert read_head(ws.project(), "beta").manifest.current.pr == PR
    assert run.outputs["comment-url"] == bot_comments(gh)[0]["html_url"]


def test_workflow_run_context_names_the_built_commit_and_pr() -> None:
    event = {
        "workflow_run": {
            "head_sha": "c0ffee" * 6 + "c0ff",
            "pull_requests": [{"number": 7, "head": {}, "base": {}}],
        }
    }
    context = run_context.Context(REPO, "workflow_run", event, MAIN_HEAD, "refs/heads/main")

    assert context.commit == "c0ffee" * 6 + "c0ff"
    assert context.pull_request == 7
    assert context.from_fork is False
    assert run_context.Context(REPO, "workflow_run", {}, MAIN_HEAD, "").pull_request is None


def test_comment_and_deployments_can_be_turned_off(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    run = action("push", comment="false", deployments="false", **publish_inputs(ws))

    assert run.returncode == 0, run.stdout
    assert mutations(gh) == []
    assert "comment-url" not in run.outputs
    assert "deployment-id" not in run.outputs


def test_same_build_twice_changes_nothing(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    first = action("push", **publish_inputs(ws, label="1.4.2"))
    again = action("push", **publish_inputs(ws, label="1.4.2"))

    assert again.returncode == 0
    assert again.outputs["manifest-version"] == first.outputs["manifest-version"] == "1"
    assert "nothing published" in again.printed
    assert len(deployments(gh)) == 1
    assert again.outputs["deployment-id"] == ""


# --- GitHub problems never fail a publish ------------------------------------------------------
def test_read_only_token_still_publishes_and_names_the_permissions(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    gh.inject("issues/create-comment", permission_denied())
    gh.inject("repos/create-deployment", permission_denied())

    run = action("push", in_subprocess=True, **publish_inputs(ws, label="1.4.2"))

    assert run.returncode == 0, run.stdout + run.stderr
    assert read_head(ws.project(), "beta").manifest.current.label == "1.4.2"
    assert "pull-requests: write" in run.summary
    assert "deployments: write" in run.summary
    assert len(run.annotations("warning")) == 2
    assert run.annotations("error") == []
    assert (run.outputs["comment-url"], run.outputs["deployment-id"]) == ("", "")


def test_fork_pull_request_token_is_treated_as_read_only(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    payload = event_payload(
        "pull_request_closed", pull_request__head__repo__full_name="mona/shop-app"
    )
    gh.inject("issues/list-comments", not_found())  # what GitHub answers a fork's token

    run = action("pull_request_closed", payload=payload, deployments="false", **publish_inputs(ws))

    assert run.returncode == 0, run.stdout
    assert "pull-requests: write" in run.summary
    assert "forks only get a read-only token" in run.summary


def test_github_outage_is_a_warning(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    gh.inject("repos/list-pull-requests-associated-with-commit", server_error(), times=10)

    run = action("push", **publish_inputs(ws))

    assert run.returncode == 0, run.stdout
    [warning] = run.annotations("warning")
    assert "could not find the pull request of the pushed commit" in warning
    assert "HTTP 500" in run.summary


def test_deployment_status_failure_is_reported(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    gh.inject("repos/create-deployment-status", permission_denied())

    run = action("push", comment="false", **publish_inputs(ws))

    assert run.returncode == 0
    assert run.outputs["deployment-id"] == str(deployments(gh)[0]["id"])
    assert "status not set" in run.summary


def test_malformed_repository_is_a_warning(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    run = action("push", env={"GITHUB_REPOSITORY": "not a repository"}, **publish_inputs(ws))

    assert run.returncode == 0, run.stdout
    assert gh.requests == []
    assert len(run.annotations("warning")) == 2  # the PR lookup and the deployment
    assert "is not owner/name" in run.summary


def test_transport_failure_the_client_does_not_wrap_is_a_warning(
    ws: Workspace, gh: GitHubStandIn, action: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    class Flaky(github_module.GitHub):
        def upsert_sticky_comment(self, *_args: object, **_kwargs: object) -> str:
            raise requests.exceptions.ChunkedEncodingError

    monkeypatch.setattr(github_steps, "GitHub", functools.partial(Flaky, mutation_interval=0.0))

    run = action("push", deployments="false", **publish_inputs(ws))

    assert run.returncode == 0
    assert "ChunkedEncodingError while talking to GitHub" in run.summary


def test_failure_while_reporting_never_claims_nothing_changed(
    ws: Workspace, gh: GitHubStandIn, action: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otaseal.errors import StoreError

    def broken(*_args: object, **_kwargs: object) -> None:
        raise StoreError("the store went away")

    monkeypatch.setattr(entrypoint, "github_section", broken)

    run = action("push", **publish_inputs(ws))

    assert run.returncode == 0
    assert "succeeded, but reporting it failed" in run.summary
    assert "stopped before moving" not in run.summary
    assert read_head(ws.project(), "beta").manifest is not None


def test_empty_token_skips_github_with_a_note(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    run = action("push", github_token="", **publish_inputs(ws))

    assert run.returncode == 0
    assert gh.requests == []
    assert "the input 'github-token' is empty" in run.summary


def test_bad_api_url_skips_github_with_a_note(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    run = action("push", env={"GITHUB_API_URL": "http://api.example.test"}, **publish_inputs(ws))

    assert run.returncode == 0
    assert "GitHub API URL" in run.summary


def test_outside_github_actions(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    run = action("push", env={"GITHUB_REPOSITORY": "", "GITHUB_OUTPUT": ""}, **publish_inputs(ws))

    assert run.returncode == 0, run.stdout
    assert gh.requests == []
    assert "not running in GitHub Actions" in run.summary
    assert "GITHUB_OUTPUT is not set" in " ".join(run.annotations("warning"))


# --- bad input: fail closed ----------------------------------------------------------------------
BAD_INPUTS = {
    "missing build dir": ({"build_dir": "web/missing"}, "the input 'build-dir' is 'web/missing'"),
    "build dir not given": ({"build_dir": ""}, "`publish` needs the input 'build-dir'"),
    "unknown command": ({"command": "deploy"}, "the input 'command' is 'deploy'"),
    "unresolvable key reference": (
        {"signing_key": "env:NOPE"},
        "env:NOPE (the signing key for beta) is not set",
    ),
    "invalid rollout": ({"rollout": "150"}, "the input 'rollout' is '150', which is outside"),
    "rollout not a number": ({"rollout": "ten"}, "the input 'rollout' is 'ten', which is not"),
    "rollout too precise": ({"rollout": "12.345"}, "more than two decimals"),
    "bad channel": ({"channel": "Beta!"}, "the input 'channel' is 'Beta!'"),
    "unknown channel": ({"channel": "staging"}, "channel 'staging' is not in otaseal.yml"),
    "no channel": ({"channel": ""}, "`publish` needs the input 'channel'"),
    "wrong app": ({"app_id": "com.example.other"}, "the input 'app-id' is 'com.example.other'"),
    "bad app id": ({"app_id": "Not An App"}, "which is not an app id"),
    "bad label": ({"label": "1.4.2 beta"}, "label '1.4.2 beta' is not allowed"),
    "boolean": ({"comment": "yes"}, "the input 'comment' is 'yes'"),
    "no config": ({"config": "nowhere/otaseal.yml"}, "no otaseal project at"),
    "other channel's key": ({"signing_key": "production"}, "is not a beta signing key"),
    "key that is no key": ({"signing_key": "bm90IGEga2V5"}, "neither PEM nor base64 of a key"),
    "report key missing": ({"report_key": "env:NOPE"}, "env:NOPE (the report key) is not set"),
    "bad pull request": ({"pull_request": "42; rm -rf /"}, "the input 'pull-request' is"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_closed(case: str, ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    change, text = BAD_INPUTS[case]
    inputs = publish_inputs(ws) | change
    if inputs["signing_key"] == "production":
        inputs["signing_key"] = ws.keys["production"]
    before = ws.snapshot()

    run = action("push", **inputs)

    assert run.returncode == 2, run.stdout
    [error] = run.annotations("error")
    assert text in error
    assert text in run.summary
    assert "failed" in run.summary
    assert ws.snapshot() == before
    assert mutations(gh) == []
    assert run.outputs == {}


def test_bad_input_fails_closed_in_the_container_entrypoint(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    before = ws.snapshot()

    run = action("push", in_subprocess=True, **publish_inputs(ws, rollout="150"))

    assert run.returncode == 2
    [error] = run.annotations("error")
    assert "the input 'rollout' is '150'" in error
    assert error in run.summary
    assert ws.snapshot() == before


REFUSALS = {
    "promote without from": (
        {"command": "promote", "to": "production"},
        "`promote` needs the input 'from'",
    ),
    "promote from an empty channel": (
        {"command": "promote", "from": "beta", "to": "production"},
        "channel beta has no release yet",
    ),
    "rollout without percentage": (
        {"command": "rollout", "channel": "beta"},
        "`rollout` needs the input 'rollout'",
    ),
    "revert an empty channel": (
        {"command": "revert", "channel": "beta"},
        "channel beta has no release to revert",
    ),
    "resign an empty channel": (
        {"command": "resign", "channel": "beta"},
        "channel beta has nothing to re-sign yet",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_commands_refuse_what_they_cannot_do(
    case: str, ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    inputs, text = REFUSALS[case]
    key = ws.keys["production" if inputs["command"] == "promote" else "beta"]

    run = action("workflow_dispatch", signing_key=key, **inputs)

    assert run.returncode == 2
    assert any(text in e for e in run.annotations("error"))
    assert text in run.summary


def test_unused_inputs_are_named(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    run = action("push", **publish_inputs(ws, to="production", release="1.0"))

    assert run.returncode == 0
    warnings = run.annotations("warning")
    assert "the input 'release' is not used by `publish`; ignoring it" in warnings
    assert "the input 'to' is not used by `publish`; ignoring it" in warnings


def test_unexpected_failure_is_reported_as_a_bug(
    ws: Workspace, gh: GitHubStandIn, action: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(command, "publish", broken)

    run = action("push", **publish_inputs(ws))

    assert run.returncode == 1
    [error] = run.annotations("error")
    assert "unexpected RuntimeError" in error
    assert "RuntimeError: boom" in run.printed  # the traceback, inside stop-commands
    assert "this is a bug in otaseal" in run.summary


def test_report_failure_after_publish_is_a_warning(
    ws: Workspace, gh: GitHubStandIn, action: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otaseal.errors import StoreError

    def unreadable(*_args: object, **_kwargs: object) -> None:
        raise StoreError("the store went away")

    monkeypatch.setattr(report_data, "channel_rows", unreadable)

    run = action("push", **publish_inputs(ws))

    assert run.returncode == 0
    assert run.outputs["release-label"] == "r1"
    assert "its report could not be built" in run.summary
    assert deployments(gh)


def test_unreadable_report_index_is_a_warning(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    report = ws.keys["report"]
    action("push", **publish_inputs(ws, report_key=report))
    (ws.root / "web/dist/app.js").write_text("console.log('v2');\n")
    for index in (ws.store / APP / "indexes").iterdir():
        index.write_bytes(b"not a sealed index")

    run = action("push", **publish_inputs(ws, report_key=report))

    assert run.returncode == 0
    assert any("the file list is not available" in w for w in run.annotations("warning"))


# --- keys --------------------------------------------------------------------------------------
def key_material(pem: str) -> list[str]:
    """Every form of a private key that must never show: PEM lines, base64 DER, the scalar."""
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    der = base64.b64decode("".join(body))
    start = der.index(b"\x02\x01\x01\x04\x20") + 5  # ECPrivateKey: version 1, OCTET STRING(32)
    scalar = der[start : start + 32]
    return [
        *body,
        base64.b64encode(der).decode(),
        scalar.hex(),
        scalar.hex().upper(),
        base64.b64encode(pem.encode()).decode(),
    ]


def test_no_key_material_leaks_anywhere(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    signing, report = ws.keys["beta"], ws.keys["report"]
    secrets = key_material(signing) + key_material(report)

    first = action("push", in_subprocess=True, **publish_inputs(ws, report_key=report))
    (ws.root / "web/dist/app.js").write_text("console.log('v2');\n")
    bad = action("push", in_subprocess=True, **publish_inputs(ws, report_key=report, rollout="150"))
    second = action("push", in_subprocess=True, **publish_inputs(ws, report_key=report))

    assert (first.returncode, bad.returncode, second.returncode) == (0, 2, 0)
    places = {}
    for n, run in enumerate((first, bad, second)):
        places[f"log {n}"] = run.printed
        places[f"stderr {n}"] = run.stderr
        places[f"outputs {n}"] = json.dumps(run.outputs)
        places[f"summary {n}"] = run.summary
    for folder in (ws.root, ws.temp, ws.home):
        for path in folder.rglob("*"):
            if path.is_file():
                places[str(path)] = path.read_bytes().decode("latin-1")
    places["comments"] = json.dumps(list(gh.comments.values()))
    places["deployments"] = json.dumps(gh.deployments)
    assert any("step_summary_" in where for where in places)  # the raw runner files too
    assert any(where.endswith(".cub") for where in places)  # and the store
    for n, run in enumerate((first, bad, second)):  # not even in the add-mask commands
        places[f"raw stdout {n}, scalar only"] = run.stdout
    hits = [
        (where, secret[:8])
        for where, text in places.items()
        for secret in secrets
        if secret in text and (not where.startswith("raw stdout") or _is_scalar(secret))
    ]
    assert hits == []
    masked = {m for run in (first, second) for m in _masks(run)}
    assert all(line in masked for line in key_material(signing)[:3])


def _is_scalar(secret: str) -> bool:
    return re.fullmatch(r"[0-9a-fA-F]{64}", secret) is not None


def _masks(run: Run) -> set[str]:
    return {c.data for c in run.commands if c.name == "add-mask"} | {
        line for c in run.commands if c.name == "add-mask" for line in c.data.splitlines()
    }


def test_key_references_from_the_environment(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    secrets = {"OTASEAL_BETA_KEY": ws.keys["beta"], "OTASEAL_REPORT_KEY": ws.keys["report"]}

    run = action(
        "push",
        in_subprocess=True,
        env=secrets,
        **publish_inputs(
            ws, signing_key="env:OTASEAL_BETA_KEY", report_key="env:OTASEAL_REPORT_KEY"
        ),
    )

    assert run.returncode == 0, run.stdout + run.stderr
    masked = _masks(run)
    assert all(line in masked for line in key_material(ws.keys["beta"])[:2])
    assert not any(s in run.printed for s in key_material(ws.keys["beta"]))


def test_key_reference_by_file_in_the_workspace(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    secret_dir = ws.temp / "secrets"
    secret_dir.mkdir(mode=0o700)
    (secret_dir / "beta.pem").write_text(ws.keys["beta"])

    run = action("push", **publish_inputs(ws, signing_key=f"file:{secret_dir / 'beta.pem'}"))

    assert run.returncode == 0, run.stdout
    assert f"file:{secret_dir / 'beta.pem'}" not in _masks(run)  # a reference is not a secret


def test_base64_key_value(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    encoded = base64.b64encode(ws.keys["beta"].encode()).decode()

    run = action("push", **publish_inputs(ws, signing_key=encoded))

    assert run.returncode == 0, run.stdout
    assert encoded in _masks(run)
    assert encoded not in run.printed


def test_dockerfile_entrypoint_runs_from_any_directory(ws: Workspace, gh: GitHubStandIn) -> None:
    """The image must not rely on WORKDIR: run the script from an unrelated folder."""
    env = runner_env(
        ws, gh, "workflow_dispatch", {"command": "status", "config": str(ws.root / "otaseal.yml")}
    )
    elsewhere = ws.temp / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(ws.root / "otaseal.yml", elsewhere / "decoy.yml")

    run = run_subprocess(env, elsewhere)

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.outputs["channel"] == "beta"


# --- the Capgo format ----------------------------------------------------------------------------
def _capgo_workspace(ws: Workspace) -> str:
    """Turn the capgo format on; its private key becomes a CI secret like the others."""
    from otaseal import crypto

    key = crypto.generate_capgo_key()
    (ws.root / "keys" / "capgo.pub.pem").write_bytes(key.public.pem)
    config = ws.root / "otaseal.yml"
    text = config.read_text(encoding="utf-8").replace(
        "formats: [sealed]", "formats: [sealed, capgo]"
    )
    config.write_text(text, encoding="utf-8")
    return key.to_pem().decode()


def test_publish_with_the_capgo_key_input(ws: Workspace, gh: GitHubStandIn, action: Any) -> None:
    capgo_pem = _capgo_workspace(ws)

    run = action("push", **publish_inputs(ws, capgo_key=capgo_pem))

    assert run.returncode == 0, run.stdout + run.stderr
    current = read_head(ws.project(), "beta").manifest.current
    assert current is not None
    assert current.capgo is not None
    assert run.outputs["formats"] == "sealed,capgo"
    assert run.outputs["capgo-session-key"] == current.capgo.session_key
    assert run.outputs["capgo-checksum"] == current.capgo.checksum
    assert "**Formats:** sealed, capgo (Capgo artifact" in run.summary
    (comment,) = bot_comments(gh)
    assert "**Formats:** sealed, capgo" in comment["body"]
    assert capgo_pem.strip() in _masks(run)
    body = [line for line in capgo_pem.splitlines() if not line.startswith("-----")]
    assert not any(line in run.printed for line in body)


def test_publish_without_capgo_names_one_format(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    run = action("push", **publish_inputs(ws))

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.outputs["formats"] == "sealed"
    assert run.outputs["capgo-session-key"] == run.outputs["capgo-checksum"] == ""
    assert "**Formats:** sealed" in run.summary


@pytest.mark.parametrize(
    ("capgo_key", "message"),
    [
        ("", "the input 'capgo-key' is empty"),
        ("kms://alias/otaseal-capgo", "remote signer cannot make Capgo"),
        ("production", "not a PKCS#1 RSA private key"),
    ],
)
def test_publish_with_a_bad_capgo_key_fails_and_writes_nothing(
    ws: Workspace, gh: GitHubStandIn, action: Any, capgo_key: str, message: str
) -> None:
    _capgo_workspace(ws)
    if capgo_key == "production":
        capgo_key = ws.keys["production"]
    before = ws.snapshot()

    run = action("push", **publish_inputs(ws, capgo_key=capgo_key))

    assert run.returncode == 2, run.stdout
    assert any(message in text for text in run.annotations("error"))
    assert ws.snapshot() == before
    assert not bot_comments(gh)


def test_an_unset_capgo_secret_names_the_secret_not_the_key_file(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    _capgo_workspace(ws)
    config = ws.root / "otaseal.yml"
    text = config.read_text(encoding="utf-8").replace(
        "  root: file:keys/root.pem\n", "  root: file:keys/root.pem\n  capgo: file:keys/capgo.pem\n"
    )
    config.write_text(text, encoding="utf-8")
    before = ws.snapshot()

    run = action("push", **publish_inputs(ws, capgo_key=""))

    assert run.returncode == 2, run.stdout
    (error,) = run.annotations("error")
    assert "the input 'capgo-key' is empty" in error
    assert "keys/capgo.pem, which does not exist here" in error
    assert "OTASEAL_CAPGO_KEY" in error
    assert ws.snapshot() == before


# --- expiry warnings of status (issue 11) ---------------------------------------------------------
def _age_root(ws: Workspace, days_left: int) -> None:
    """Root v2 signed as if a year ago, so it now has ``days_left`` days to live."""
    from otaseal.rootkeys import changes, ops

    config = load_config(ws.root / "otaseal.yml")
    then = now_utc() - timedelta(days=365 - days_left)
    project = Project(config, open_store(config.store), clock=lambda: then)
    ops.apply(project, changes.Renew(), key_refs=[ws.keys["root"]])


def test_action_status_warns_45_days_before_the_root_expires(ws: Workspace, action: Any) -> None:
    action("push", **publish_inputs(ws))
    _age_root(ws, 45)
    run = action("workflow_dispatch", command="status", channel="beta")
    assert run.returncode == 0
    [warning] = [w for w in run.annotations("warning") if "root v2" in w]
    assert "expires at" in warning
    assert "in 44 day(s)" in warning or "in 45 day(s)" in warning
    assert "#### Expiry" in run.summary


def test_action_status_fails_13_days_before_the_root_expires(ws: Workspace, action: Any) -> None:
    action("push", **publish_inputs(ws))
    _age_root(ws, 13)
    run = action("workflow_dispatch", command="status", channel="beta")
    assert run.returncode == 3
    assert any("root v2" in e and "otaseal root renew" in e for e in run.annotations("error"))


# --- command: audit ------------------------------------------------------------------------------
def test_audit_reads_the_store_only_and_passes_on_an_honest_store(
    ws: Workspace, gh: GitHubStandIn, action: Any
) -> None:
    assert action(**publish_inputs(ws)).returncode == 0
    before, writes = ws.snapshot(), mutations(gh)
    run = action(command="audit")
    assert run.returncode == 0, run.stdout
    assert "### otaseal audit: OK, nothing a device would refuse" in run.summary
    assert run.annotations("error") == []
    assert ws.snapshot() == before
    assert mutations(gh) == writes, "audit posts no comment and no deployment"


def test_audit_fails_the_step_on_a_tampered_bundle_with_one_annotation_per_finding(
    ws: Workspace, action: Any
) -> None:
    assert action(**publish_inputs(ws)).returncode == 0
    (bundle,) = (ws.store / APP / "bundles").glob("*.cub")
    data = bytearray(bundle.read_bytes())
    data[-1] ^= 1
    bundle.write_bytes(bytes(data))
    orphan = ws.store / APP / "bundles" / ("ab" * 32 + ".cub")
    orphan.write_bytes(b"left over")
    run = action(command="audit", in_subprocess=True)
    assert run.returncode == 4, run.stdout + run.stderr
    errors, warnings = run.annotations("error"), run.annotations("warning")
    assert len(errors) == 1
    assert "altered" in errors[0]
    assert [w for w in warnings if orphan.name in w]
    assert "### otaseal audit: 1 error(s) (exit 4)" in run.summary
    assert "`bundle-hash`" in run.summary
    assert "stopped before moving any channel pointer" not in run.summary
    assert "Traceback" not in run.stdout + run.stderr
