"""``otaseal serve``'s options, trust pins and start-up, without starting a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otaseal import cli
from otaseal.errors import InputError
from otaseal.serve import run
from otaseal.serve.service import PresignedUrls, PublicUrls, ServedUrls
from tests.attacks.conftest import Repository

APP = "com.example.app"


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "repo")


@pytest.fixture
def root_file(repo: Repository, tmp_path: Path) -> Path:
    path = tmp_path / "root.json"
    path.write_bytes(repo.root_bytes)
    return path


def options(repo: Repository, root_file: Path, tmp_path: Path, **changes) -> run.ServeOptions:
    doc = {
        "store": str(repo.store.root),
        "roots": (("", str(root_file)),),
        "stats": f"sqlite:///{tmp_path / 'stats.sqlite'}",
    }
    doc.update(changes)
    return run.ServeOptions(**doc)


def test_options_travel_to_workers_as_json(repo, root_file, tmp_path):
    before = options(
        repo,
        root_file,
        tmp_path,
        self_assignable=("beta",),
        project_self_assignable=((APP, ("beta",)),),
        workers=2,
    )
    assert run.ServeOptions.from_json(before.to_json()) == before


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("com.example.app=keys/root.json", ("com.example.app", "keys/root.json")),
        ("root.json", ("", "root.json")),
        ("./a=b/root.json", ("", "./a=b/root.json")),
    ],
)
def test_root_option_is_app_equals_path_or_a_path(text, parsed):
    assert run.parse_root_option(text) == parsed


def test_root_names_its_app(repo, root_file):
    assert run.load_root("", str(root_file)) == (APP, repo.root_bytes)


def test_missing_root_file_is_a_one_paragraph_error(tmp_path):
    with pytest.raises(InputError) as caught:
        run.load_root(APP, str(tmp_path / "nope.json"))
    assert "cannot read --root" in caught.value.diagnostics()


def test_root_of_another_app_is_refused(root_file):
    with pytest.raises(InputError) as caught:
        run.load_root("com.example.other", str(root_file))
    assert "not a valid root.json" in caught.value.diagnostics()


def test_default_channel_choice(repo):
    root = repo.root  # beta and production
    assert run.default_channel(root, None) == "production"
    assert run.default_channel(root, "beta") == "beta"
    assert run.default_channel(root, "nightly") == ""
    only_beta = repo.make_root(version=2, channel_keys={"beta": repo.channel_signers["beta"]})
    assert run.default_channel(only_beta, None) == "beta"
    two = repo.make_root(
        version=2,
        channel_keys={"beta": repo.channel_signers["beta"], "alpha": repo.channel_signers["beta"]},
    )
    assert run.default_channel(two, None) == ""


def test_build_service_reads_pins_and_picks_the_url_scheme(repo, root_file, tmp_path):
    service = run.build_service(
        options(repo, root_file, tmp_path, self_assignable=("beta", "nightly"))
    )
    pinned = service.apps[APP]
    assert (pinned.default_channel, pinned.self_assignable) == ("production", frozenset({"beta"}))
    assert isinstance(service.urls, ServedUrls)
    service.stats.close()
    public = run.build_service(
        options(repo, root_file, tmp_path, public_url="https://cdn.example.com/u")
    )
    assert isinstance(public.urls, PublicUrls)
    public.stats.close()


def test_s3_store_without_public_url_gets_presigned_urls(repo, root_file, tmp_path):
    service = run.build_service(
        options(
            repo,
            root_file,
            tmp_path,
            store="s3://bucket/prefix",
            s3_endpoint="http://127.0.0.1:9",
            project_self_assignable=((APP, ("beta",)),),
        )
    )
    assert isinstance(service.urls, PresignedUrls)
    assert service.apps[APP].self_assignable == frozenset({"beta"})
    service.stats.close()


def test_no_root_is_a_one_paragraph_error(repo, tmp_path):
    with pytest.raises(InputError) as caught:
        run.build_service(
            run.ServeOptions(str(repo.store.root), (), f"sqlite:///{tmp_path / 's.sqlite'}")
        )
    assert "--root" in caught.value.diagnostics()


def test_default_stats_url_is_under_the_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert run.default_stats_url() == f"sqlite:///{tmp_path}/otaseal/stats.sqlite"


def test_workers_rebuild_the_app_from_the_environment(repo, root_file, tmp_path, monkeypatch):
    monkeypatch.setenv(run.ENV_OPTIONS, options(repo, root_file, tmp_path).to_json())
    app = run.app_from_env()
    assert {route.path for route in app.routes} >= {"/updates", "/stats", "/channel_self"}


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_migrates_once_then_runs_uvicorn(repo, root_file, tmp_path, monkeypatch, workers):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.delenv(run.ENV_OPTIONS, raising=False)
    run.serve(options(repo, root_file, tmp_path, workers=workers, port=9999))
    ((app, kw),) = calls
    assert (kw["host"], kw["port"], kw["access_log"]) == ("127.0.0.1", 9999, False)
    assert (tmp_path / "stats.sqlite").is_file()
    if workers == 1:
        assert not isinstance(app, str)
    else:
        assert (app, kw["factory"], kw["workers"]) == ("otaseal.serve.run:app_from_env", True, 2)
        assert json.loads(__import__("os").environ[run.ENV_OPTIONS])["workers"] == 2


# --- the CLI --------------------------------------------------------------------------------------
def test_cli_serve_passes_every_option(repo, root_file, tmp_path, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(run, "serve", seen.append)
    monkeypatch.chdir(tmp_path)
    code = cli.main(
        [
            "serve",
            "--store",
            str(repo.store.root),
            "--root",
            f"{APP}={root_file}",
            "--public-url",
            "https://cdn.example.com",
            "--stats",
            "sqlite:///x.sqlite",
            "--port",
            "9000",
            "--workers",
            "2",
            "--stats-retention-days",
            "30",
            "--default-channel",
            "beta",
            "--self-assignable",
            "beta",
            "--cache-ttl",
            "1.5",
        ]
    )
    assert code == 0
    (opts,) = seen
    assert opts.roots == ((APP, str(root_file)),)
    assert (opts.public_url, opts.stats, opts.port, opts.workers) == (
        "https://cdn.example.com",
        "sqlite:///x.sqlite",
        9000,
        2,
    )
    assert (opts.retention_days, opts.default_channel, opts.self_assignable, opts.cache_ttl) == (
        30,
        "beta",
        ("beta",),
        1.5,
    )


def test_cli_serve_in_a_project_uses_its_store_root_and_self_assignable(tmp_path, monkeypatch):
    from otaseal.project import init_project
    from tests.conftest import NOW

    init_project(APP, tmp_path / "p", now=NOW)
    config = tmp_path / "p" / "otaseal.yml"
    config.write_text(config.read_text() + "self_assignable: [beta]\n")
    seen = []
    monkeypatch.setattr(run, "serve", seen.append)
    monkeypatch.chdir(tmp_path / "p")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert cli.main(["serve"]) == 0
    (opts,) = seen
    assert opts.roots == ((APP, str(tmp_path / "p" / "root.json")),)
    assert opts.project_self_assignable == ((APP, ("beta",)),)
    assert opts.stats.endswith("/otaseal/stats.sqlite")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["serve"], "serve needs a store"),
        (["serve", "--store", "/tmp/x", "--root", "r.json", "--workers", "0"], "at least 1"),
        (["serve", "--store", "/tmp/x", "--stats-retention-days", "0"], "at least 1"),
        (["serve", "--store", "/tmp/x", "--port", "70000"], "from 1 to 65535"),
        (["serve", "--store", "/tmp/x", "--cache-ttl", "-1"], "0 or more seconds"),
    ],
)
def test_cli_serve_mistakes_are_one_paragraph_errors(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_a_port_in_use_is_a_one_paragraph_error_before_start_up(repo, root_file, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}"):
            run.serve(options(repo, root_file, tmp_path, port=port))
