"""`make demo` as a log or a pipe sees it: the whole story runs, in plain text, and tidies up."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_demo_piped_prints_no_ansi_codes_and_leaves_no_temp_files(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("NO_COLOR", None)
    done = subprocess.run(
        [sys.executable, str(DEMO)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo finished" in done.stdout
    assert "\x1b" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_demo_headings_are_bold_on_a_terminal_unless_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = importlib.util.spec_from_file_location("otaseal_demo", DEMO)
    assert spec is not None
    assert spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.delenv("NO_COLOR", raising=False)
    demo.step("publish")
    assert screen.getvalue() == "\n\x1b[1m== publish\x1b[0m\n"
    monkeypatch.setenv("NO_COLOR", "1")
    demo.step("fetch")
    assert screen.getvalue().endswith("\n== fetch\n")
