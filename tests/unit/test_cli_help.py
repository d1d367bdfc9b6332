"""The command line explains itself: every option has help, every command an example, and a
command offers only the options it reads."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from otaseal.cli import build_parser, main

#: The shared options each command reads, and no more (keygen used to list --store and ignore it).
#: A new command must say here which of them it takes.
PROJECT = {"--json", "--config", "--store", "--s3-endpoint", "--s3-lock-mode"}
SHARED = {
    "init": {"--json"},
    "keygen": {"--json"},
    "stats": {"--json"},
    "fetch": {"--json", "--store", "--s3-endpoint"},
    "serve": {"--config", "--store", "--s3-endpoint"},
    # groups: the shared options are on their subcommands (`otaseal root renew --store ...`)
    "recipients": set(),
    "root": set(),
    **dict.fromkeys(
        (
            "publish",
            "promote",
            "rollout",
            "revert",
            "resign",
            "history",
            "status",
            "audit",
            "guard",
        ),
        PROJECT,
    ),
}
SHARED_NAMES = PROJECT


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices) if found else {}


def _commands() -> dict[str, argparse.ArgumentParser]:
    return _subcommands(build_parser())


def _every_parser() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command and nested subcommand (``root renew``), by its full name."""
    todo, seen = list(_commands().items()), []
    while todo:
        name, parser = todo.pop(0)
        seen.append((name, parser))
        todo += [(f"{name} {sub}", p) for sub, p in _subcommands(parser).items()]
    return seen


COMMANDS = list(_commands())
ALL = [name for name, _ in _every_parser()]


def test_the_first_commands_keep_their_order() -> None:
    # The list a person sees starts with the project's life cycle.
    assert COMMANDS[:9] == [
        "init",
        "keygen",
        "publish",
        "promote",
        "rollout",
        "revert",
        "resign",
        "history",
        "status",
    ]
    assert set(SHARED) <= set(COMMANDS)


@pytest.mark.parametrize("name", ALL)
def test_every_option_has_help(name: str) -> None:
    parser = dict(_every_parser())[name]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue  # each subcommand is checked on its own
        assert action.help, f"otaseal {name} {'/'.join(action.option_strings)} has no help"


@pytest.mark.parametrize("name", ALL)
def test_help_ends_with_an_example_of_the_command(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*name.split(), "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "\nexample:\n" in text, f"otaseal {name} --help ends without an example"
    example = text.rstrip().rsplit("example:\n", 1)[1]
    assert f"otaseal {name.split(maxsplit=1)[0]}" in example
    # RawDescriptionHelpFormatter keeps the example's lines as written.
    assert all(line.startswith("  ") for line in example.splitlines())


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_lists_only_the_shared_options_it_reads(name: str) -> None:
    assert name in SHARED, f"say in SHARED which of {sorted(SHARED_NAMES)} otaseal {name} reads"
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
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
        described = (lines[at].split(maxsplit=1)[1:] or [lines[at + 1]])[0]  # long names wrap
        assert len(described.strip()) > 10, f"{name} has a one-line description"
    assert "otaseal COMMAND --help" in done.stdout


def test_an_unknown_command_is_still_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publsh"]) == 2
    assert "invalid choice" in capsys.readouterr().err
