"""Console-script entry: answers ``--version`` before importing the CLI and its dependencies."""

from __future__ import annotations

import sys


def main() -> int:
    """Run ``otaseal``."""
    if sys.argv[1:] == ["--version"]:
        from otaseal import __version__  # noqa: PLC0415

        print(f"otaseal {__version__}")  # noqa: T201 - the command's output
        return 0
    from otaseal.cli import main as cli_main  # noqa: PLC0415

    return cli_main()
