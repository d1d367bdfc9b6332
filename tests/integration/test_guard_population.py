"""Simulated devices through ``otaseal serve``, and the Action's guard between rollout steps.

Thousands of install ids check ``/updates`` on a real uvicorn on 127.0.0.1 (in a thread, with the
simulated clock), get offered a release only inside its rollout cohort, and report the outcome
through ``POST /stats`` in batches, as the plugin's queue does: ``set`` on success,
``decrypt_fail`` on a failed install, ``set`` then ``update_fail`` on a rollback. Each release has
its own probabilities (a seeded RNG, so every run is the same). Between steps the Action runs
``command: guard`` against the GitHub stand-in; the sticky PR comment and the deployment status
must say what was done and on what evidence, at every step.
"""

from __future__ import annotations

import functools
import io
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from github_standin import GitHubStandIn, contract_path
from serve_support import Client, serve_in_thread
from test_action import PR, REPO, Workspace, event_payload, finish, runner_env

from otaseal import github as github_module
from otaseal import operations, publishing
from otaseal.action import entrypoint, github_steps
from otaseal.config import load_config
from otaseal.operations import Project, history, open_store, promote, publish, read_head
from otaseal.project import init_project
from otaseal.serve.app import create_app
from otaseal.serve.db import open_stats
from otaseal.serve.service import AppTrust, ServedUrls, Service

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

APP = "com.example.shop"
NATIVE = "1.2.0"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DEVICES = 2000
BATCH = 100  # serve takes a body of at most 64 KiB
PLAN = """
rollout_plans:
  production:
    steps: [10, 25, 50, 100]
    min_hours_per_step: 24
    min_installs: 150
    max_failure_rate: 5%
    on_breach: {breach}
    max_stats_age: 6h
"""


@dataclass(frozen=True, slots=True)
class Odds:
    """How an install of a release ends: the rest of 1.0 is success."""

    failure: float = 0.0
    rollback: float = 0.0


@dataclass
class Fleet:
    """The devices, what each runs, and the simulated clock they share with serve and guard."""

    client: Client
    key_id: str
    odds: dict[str, Odds]
    rng: random.Random = field(default_factory=lambda: random.Random(1212))  # noqa: S311
    now: datetime = START
    ids: list[str] = field(default_factory=list)
    running: dict[str, str] = field(default_factory=dict)
    checks: int = 0

    def __post_init__(self) -> None:
        made = random.Random(12)  # noqa: S311 - install ids, not secrets
        self.ids = [str(uuid.UUID(int=made.getrandbits(128), version=4)) for _ in range(DEVICES)]
        self.running = dict.fromkeys(self.ids, "1.0.0")  # the fleet runs 1.0.0 already

    def info(self, device: str) -> dict[str, Any]:
        return {
            "platform": "android",
            "device_id": device,
            "app_id": APP,
            "custom_id": "",
            "version_build": NATIVE,
            "version_code": "7",
            "version_os": "14",
            "version_name": self.running[device],
            "plugin_version": "8.51.23",
            "is_emulator": False,
            "is_prod": True,
            "install_source": "google_play",
            "defaultChannel": "",
            "key_id": self.key_id,
        }

    def round(self, *, skip: str = "") -> dict[str, int]:
        """Every device not on ``skip`` checks once; each offer is installed; stats in batches."""
        outcomes = {"set": 0, "decrypt_fail": 0, "update_fail": 0}
        events: list[dict[str, Any]] = []
        stamp = int(self.now.timestamp() * 1000)
        for device in self.ids:
            if self.running[device] == skip:
                continue
            doc = self.check(device)
            offered = doc.get("version") if "url" in doc else None
            if offered is None:
                continue
            assert offered in self.odds, (device, self.running[device], doc)
            odds, roll = self.odds[offered], self.rng.random()
            before = self.info(device)
            if roll < odds.failure:
                actions = ["decrypt_fail"]
            elif roll < odds.failure + odds.rollback:
                actions = ["set", "update_fail"]
            else:
                actions = ["set"]
                self.running[device] = offered
            for action in actions:
                outcomes[action] += 1
                events.append(
                    before
                    | {
                        "action": action,
                        "version_name": offered,
                        "old_version_name": before["version_name"],
                        "timestamp": stamp + len(events),
                    }
                )
        for start in range(0, len(events), BATCH):
            assert self.client.stats(events[start : start + BATCH]).status == 200
        return outcomes

    def check(self, device: str) -> dict[str, Any]:
        """One update check; every 20th reply is also checked against the contract (speed)."""
        self.checks += 1
        if self.checks % 20 == 0:
            reply = self.client.check(**self.info(device))
            assert reply.status == 200, reply.doc
            return dict(reply.doc)
        response = self.client.session.post(
            self.client.base + "/updates", json=self.info(device), timeout=20
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def on(self, label: str) -> int:
        return sum(1 for v in self.running.values() if v == label)


@dataclass
class World:
    """The project, serve, the fleet and the Action, sharing one simulated clock."""

    ws: Workspace
    project: Project
    service: Service
    fleet: Fleet
    gh: GitHubStandIn
    stats_url: str
    monkeypatch: pytest.MonkeyPatch

    def at(self, when: datetime) -> None:
        self.fleet.now = when

    def guard(self, **inputs: str) -> Any:
        """The Action's ``command: guard`` as the runner calls it, at the simulated time."""
        self.service.flush()
        clock = lambda: self.fleet.now  # noqa: E731
        self.monkeypatch.setattr(entrypoint, "Project", functools.partial(Project, clock=clock))
        named = {"command": "guard", "channel": "production", "stats": self.stats_url}
        named |= {k.replace("_", "-"): v for k, v in inputs.items()}
        env = runner_env(self.ws, self.gh, "workflow_dispatch", named)
        out = io.StringIO()
        code = entrypoint.main(env, out)
        return finish(env, code, out.getvalue(), "")

    def comment(self) -> str:
        bots = [
            c for c in self.gh.comments_on(REPO, PR) if c["user"]["login"] == "github-actions[bot]"
        ]
        assert len(bots) == 1, "one sticky comment, updated in place"
        return str(bots[0]["body"]).replace("\\", "")  # markdown escapes out: the words

    def statuses(self) -> list[str]:
        found = []
        for deployment in self.gh.deployments.get(REPO, []):
            found += [s["description"] for s in self.gh.statuses[deployment["id"]]]
        return found

    def rollout(self) -> tuple[str, int, bool]:
        current = read_head(self.project, "production").manifest
        assert current is not None
        assert current.current is not None
        return current.current.label, current.current.rollout_bp, current.current.paused

    def versions(self) -> int:
        return len(history(self.project, "production"))


@pytest.fixture
def gh() -> Iterator[GitHubStandIn]:
    path = contract_path()
    assert path is not None
    with GitHubStandIn(path) as standin:
        merge = event_payload("push")["after"]
        standin.add_pull_request(
            REPO, PR, head_sha="1b" * 20, merged=True, merge_commit_sha=merge, head_ref="shop"
        )
        yield standin
    assert standin.violations == []


def make_world(
    tmp_path: Path,
    gh: GitHubStandIn,
    monkeypatch: pytest.MonkeyPatch,
    odds: dict[str, Odds],
    *,
    breach: str = "pause",
) -> Iterator[World]:
    root, temp, home = tmp_path / "workspace", tmp_path / "runner_temp", tmp_path / "home"
    for folder in (temp, home):
        folder.mkdir()
    init_project(APP, root, now=START - timedelta(days=3), formats=["sealed", "capgo"])
    # a fixed rollout salt, so the cohorts (and every count below) are the same on every run
    monkeypatch.setattr(operations, "_new_salt", lambda: "5a17" * 8)
    monkeypatch.setattr(publishing, "_new_salt", lambda: "5a17" * 8)
    config_path = root / "otaseal.yml"
    config_path.write_text(config_path.read_text() + PLAN.format(breach=breach))
    config = load_config(config_path)
    project = Project(config, open_store(config.store), clock=lambda: START - timedelta(days=2))
    web = root / "dist"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>Shop</title>")
    publish(project, web, channel="beta", label="1.0.0", pr=PR)
    promote(project, source="beta", target="production")
    (web / "index.html").write_text("<!doctype html><title>Shop 1.1</title>")
    publish(project, web, channel="beta", label="1.1.0", pr=PR)
    stats_url = f"sqlite:///{tmp_path / 'stats.db'}"
    db = open_stats(stats_url)
    db.migrate()
    root_bytes = config.root.read_bytes()
    fleet_box: list[Fleet] = []
    service = Service(
        store=open_store(config.store),
        apps={APP: AppTrust(APP, root_bytes, "production")},
        stats=db,
        clock=lambda: fleet_box[0].now if fleet_box else START,
        urls=ServedUrls(),
        # the manifests are re-read once the simulated clock moved a minute: once per round
        monotonic=lambda: (fleet_box[0].now if fleet_box else START).timestamp(),  # noqa: PLW0108
        cache_ttl=60.0,
    )
    quick = functools.partial(github_module.GitHub, mutation_interval=0.0, sleep=lambda _: None)
    monkeypatch.setattr(github_steps, "GitHub", quick)
    monkeypatch.chdir(root)
    beta = read_head(project, "beta").manifest
    assert beta is not None
    assert beta.current is not None
    assert beta.current.capgo is not None
    with serve_in_thread(create_app(service)) as base:
        fleet = Fleet(Client(base), beta.current.capgo.key_id, odds)
        fleet_box.append(fleet)
        ws = Workspace(root, temp, home, {})
        yield World(ws, project, service, fleet, gh, stats_url, monkeypatch)


@pytest.fixture
def world_factory(
    tmp_path: Path, gh: GitHubStandIn, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    made: list[Iterator[World]] = []

    def make(odds: dict[str, Odds], breach: str = "pause") -> World:
        gen = make_world(tmp_path, gh, monkeypatch, odds, breach=breach)
        made.append(gen)
        return next(gen)

    yield make
    for gen in made:
        with pytest.raises(StopIteration):
            next(gen)


def start_rollout(world: World, percent: float) -> None:
    """A person promotes 1.1.0 to production at ``percent`` at the simulated START."""
    world.project.clock = lambda: world.fleet.now
    promote(world.project, source="beta", target="production", rollout=percent)


# --- the scenarios -----------------------------------------------------------------------------
def test_guard_takes_a_good_release_step_by_step_to_100(world_factory: Any) -> None:
    world: World = world_factory({"1.1.0": Odds(failure=0.002, rollback=0.002)})
    start_rollout(world, 10)
    world.at(START + timedelta(hours=2))
    first = world.fleet.round()
    assert first["set"] > 150
    early = world.guard()
    assert early.returncode == 0, early.summary
    assert "guard held production" in world.comment()
    assert "for 2.0 h of 24 h" in world.comment()
    assert world.rollout() == ("1.1.0", 1000, False)

    seen = [1000]
    for step in range(1, 4):
        world.at(START + timedelta(hours=24 * step - 1))
        world.fleet.round()
        world.at(START + timedelta(hours=24 * step))
        run = world.guard()
        assert run.returncode == 0, run.summary
        label, bp, paused = world.rollout()
        seen.append(bp)
        assert (label, paused) == ("1.1.0", False)
        comment = world.comment()
        assert f"advanced 1.1.0 on production from {seen[-2] // 100} % to {bp // 100} %" in comment
        assert "installs" in comment
        assert "Wilson upper bound" in comment
        assert f"rolling out on **production** ({bp // 100} %)" in comment.replace(
            "is on **production** (100 %)", "rolling out on **production** (100 %)"
        )
        assert world.statuses()[-1].startswith("guard advance 1.1.0: ")
        assert "**Guard:**" in run.summary
        # each step is a real new cohort: the devices that took it are now on it
        world.fleet.round()
        assert world.fleet.on("1.1.0") == pytest.approx(DEVICES * bp / 10_000, rel=0.15)
    assert seen == [1000, 2500, 5000, 10000]
    done = world.guard()
    assert done.returncode == 0
    assert "the plan is done" in world.comment()


def test_guard_pauses_a_bad_release(world_factory: Any) -> None:
    world: World = world_factory({"1.1.0": Odds(failure=0.15, rollback=0.10)})
    start_rollout(world, 5)
    world.at(START + timedelta(hours=3))
    outcome = world.fleet.round()
    assert outcome["decrypt_fail"] + outcome["update_fail"] > 10
    versions = world.versions()
    run = world.guard()
    assert run.returncode == 0, run.summary
    assert world.rollout() == ("1.1.0", 500, True)
    assert world.versions() == versions + 1
    comment = world.comment()
    assert "paused 1.1.0 on production at 5 %" in comment
    assert "failures" in comment
    assert "rollbacks" in comment
    assert world.statuses()[-1].startswith("guard pause 1.1.0: ")
    # paused: no new device takes it, and the next guard run leaves it alone
    before = world.fleet.on("1.1.0")
    world.at(START + timedelta(hours=4))
    assert world.fleet.round()["set"] == 0
    assert world.fleet.on("1.1.0") == before
    again = world.guard()
    assert again.returncode == 0
    assert "is paused at 5 %" in world.comment()
    assert world.versions() == versions + 1


def test_guard_reverts_a_release_past_the_threshold(world_factory: Any) -> None:
    world: World = world_factory({"1.1.0": Odds(rollback=0.3), "1.0.0": Odds()}, "revert")
    start_rollout(world, 25)
    world.at(START + timedelta(hours=1))
    world.fleet.round()
    run = world.guard()
    assert run.returncode == 0, run.summary
    label, bp, paused = world.rollout()
    assert (label, bp, paused) == ("1.0.0", 10000, False)
    comment = world.comment()
    assert "reverted production from 1.1.0 to 1.0.0" in comment
    assert "was reverted to **1.0.0**" in comment
    assert world.statuses()[-1].startswith("guard revert 1.1.0: ")
    # devices that took 1.1.0 are offered 1.0.0 again on their next check
    world.at(START + timedelta(hours=2))
    world.fleet.round(skip="1.0.0")
    assert world.fleet.on("1.1.0") == 0


def test_guard_refuses_to_advance_on_missing_or_stale_stats(
    world_factory: Any, tmp_path: Path
) -> None:
    world: World = world_factory({"1.1.0": Odds()})
    start_rollout(world, 25)
    world.at(START + timedelta(hours=1))
    world.fleet.round()
    versions = world.versions()

    world.at(START + timedelta(hours=30))  # time and installs are met, but nobody reported for 29 h
    stale = world.guard()
    assert stale.returncode == 2
    assert "older than max_stats_age" in world.comment()
    assert "older than max_stats_age" in " ".join(stale.annotations("error"))
    assert world.versions() == versions

    missing = world.guard(stats=f"sqlite:///{tmp_path / 'no-such.db'}")
    assert missing.returncode == 2
    assert "no stats database to judge by" in world.comment()
    assert world.versions() == versions

    world.fleet.round()  # fresh reports again: now it advances
    healthy = world.guard()
    assert healthy.returncode == 0, healthy.summary
    assert world.rollout() == ("1.1.0", 5000, False)
    assert world.versions() == versions + 1


def test_dry_run_prints_the_decision_and_signs_nothing(world_factory: Any) -> None:
    world: World = world_factory({"1.1.0": Odds(failure=0.5)})
    start_rollout(world, 5)
    world.at(START + timedelta(hours=1))
    world.fleet.round()
    versions = world.versions()
    run = world.guard(dry_run="true")
    assert run.returncode == 0, run.summary
    assert "would pause 1.1.0" in run.summary
    assert world.versions() == versions
    assert world.rollout() == ("1.1.0", 500, False)
