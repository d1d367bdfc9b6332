"""The README's "By hand" steps, run exactly as written: they work, and only in a scratch folder."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

CLONE = Path(__file__).resolve().parents[2]


def by_hand_steps() -> str:
    readme = (CLONE / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^By hand\b.*?\n```sh\n(.*?)\n```", readme, re.DOTALL | re.MULTILINE)
    assert found, "README.md has a By hand block"
    return found.group(1)


def test_readme_by_hand_steps_install_a_build_without_writing_in_the_clone(
    tmp_path: Path,
) -> None:
    if not (CLONE / ".venv" / "bin" / "activate").is_file():
        pytest.skip("the steps use the clone's .venv, which `make test` creates")
    made = ("myapp", "www", "device-state")  # what the steps create, relative to where they run
    assert not any((CLONE / name).exists() for name in made), "clean the clone first"
    done = subprocess.run(
        ["sh", "-e", "-c", by_hand_steps()],
        cwd=CLONE,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installed 1.0.0" in done.stdout
    assert done.stdout.split()[-2:] == ["assets", "index.html"]
    (scratch,) = tmp_path.iterdir()
    assert sorted(p.name for p in scratch.iterdir()) == sorted(made)
    assert (scratch / "www" / "index.html").is_file()
    # Only by name: under `make test` coverage writes .coverage.* files of its own into the clone.
    assert not any((CLONE / name).exists() for name in made), "nothing written in the clone"
