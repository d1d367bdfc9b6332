"""The command line explains itself: every option has help, every command an example, and a
command offers only the options it reads."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from otaseal.cli import build_parser, main

COMMANDS = [
    "init",
    "keygen",
    "publish",
    "promote",
    "rollout",
    "revert",
    "resign",
    "history",
    "status",
    "fetch",
    "stats",
    "serve",
]
#: The options each command reads besides its own, and no more (keygen ignored --store before).
SHARED = {
    "init": {"--json"},
    "keygen": {"--json"},
    "stats": {"--json"},
    "fetch": {"--json", "--store", "--s3-endpoint"},
    "serve": {"--config", "--store", "--s3-endpoint"},
    **{
        name: {"--json", "--config", "--store", "--s3-endpoint", "--s3-lock-mode"}
        for name in ("publish", "promote", "rollout", "revert", "resign", "history", "status")
    },
}
SHARED_NAMES = {"--json", "--config", "--store", "--s3-endpoint", "--s3-lock-mode"}


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_is_listed() -> None:
    assert list(_commands()) == COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help(name: str) -> None:
    for action in _commands()[name]._actions:
        assert action.help, f"otaseal {name} {'/'.join(action.option_strings)} has no help"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_ends_with_an_example_of_the_command(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    example = text.rstrip().rsplit("example:\n", 1)[1]
    assert f"otaseal {name}" in example
    # RawDescriptionHelpFormatter keeps the example's lines as written.
    assert all(line.startswith("  ") for line in example.splitlines())


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_lists_only_the_shared_options_it_reads(name: str) -> None:
    options = {o for a in _commands()[name]._actions for o in a.option_strings}
    assert options & SHARED_NAMES == SHARED[name]


def test_keygen_refuses_a_store_it_would_ignore(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--kind", "signing", "--out", "k.pem", "--store", "s3://b/p"]) == 2
    assert "unrecognized arguments: --store" in capsys.readouterr().err


def test_plain_otaseal_prints_the_command_list_and_succeeds() -> None:
    # Decision: no arguments is a request for the command list, not a usage error: exit 0.
    done = subprocess.run(
        [sys.executable, "-m", "otaseal"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    for name in COMMANDS:
        row = next(line for line in lines if line.strip().startswith(name + " "))
        assert len(row.split(maxsplit=1)[1]) > 10, f"{name} has a one-line description"
    assert "otaseal COMMAND --help" in done.stdout


def test_an_unknown_command_is_still_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publsh"]) == 2
    assert "invalid choice" in capsys.readouterr().err
