"""The fuzz targets in ``make test``: a short smoke run of each, and a replay of every finding.

``make fuzz`` is the campaign (fuzz/REPORT.md); here each target runs for a few seconds from its
seed corpus, which catches a target that no longer starts or a regression a seed still reaches,
and every input ever kept in ``fuzz/crashes/`` must now end in an otaseal error or success. The
replay needs no atheris; the smoke runs skip, saying so, when it is not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
TARGETS = ("sealed", "archive", "metadata", "http", "delta", "capgo_list")
SMOKE_SECONDS = 2
CRASHES = sorted(p for p in (FUZZ / "crashes").glob("*/*") if p.is_file())

needs_atheris = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (pip install -e '.[dev]'): fuzz smoke runs skipped",
)


def _module(name: str) -> ModuleType:
    """A module from fuzz/ (the targets import their siblings by plain name)."""
    if str(FUZZ) not in sys.path:
        sys.path.insert(0, str(FUZZ))
    return importlib.import_module(name)


@pytest.fixture(scope="module", autouse=True)
def _scratch(tmp_path_factory: pytest.TempPathFactory) -> object:
    scratch = tmp_path_factory.mktemp("fuzz-scratch")
    saved = os.environ.get("OTASEAL_FUZZ_SCRATCH")
    os.environ["OTASEAL_FUZZ_SCRATCH"] = str(scratch)
    yield
    if saved is None:
        os.environ.pop("OTASEAL_FUZZ_SCRATCH", None)
    else:
        os.environ["OTASEAL_FUZZ_SCRATCH"] = saved
    if "fuzz_http" in sys.modules:
        sys.modules["fuzz_http"].close_server()  # the hostile server's threads
    shutil.rmtree(scratch, ignore_errors=True)  # not a test's tmp_path: pytest would keep it


@needs_atheris
@pytest.mark.parametrize("name", TARGETS)
def test_target_survives_a_smoke_run_from_its_seeds(name: str, tmp_path: Path) -> None:
    campaign = _module("run")  # the same command line and environment as make fuzz

    artifacts, corpus, scratch = tmp_path / "artifacts", tmp_path / "corpus", tmp_path / "scratch"
    for folder in (artifacts, corpus, scratch):
        folder.mkdir()
    argv = campaign.command(name, SMOKE_SECONDS, corpus, artifacts)
    proc = subprocess.run(
        argv,
        env=campaign.child_env(scratch),
        capture_output=True,
        cwd=tmp_path,
        check=False,
        timeout=SMOKE_SECONDS + 120,
    )
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    found = sorted(p.name for p in artifacts.iterdir())
    assert proc.returncode == 0, f"fuzz_{name} found {found}:\n{out[-4000:]}"
    assert not found, out[-4000:]
    assert "Done " in out, out[-4000:]


@pytest.mark.skipif(not CRASHES, reason="fuzz/crashes/ holds no input yet")
@pytest.mark.parametrize("path", CRASHES, ids=lambda p: f"{p.parent.name}/{p.name[:20]}")
def test_every_input_that_ever_crashed_a_target_now_ends_in_an_otaseal_error(path: Path) -> None:
    target = _module(f"fuzz_{path.parent.name}").target
    assert _module("_harness").replay(target, [path]) == []


def test_the_replay_reports_what_escapes(tmp_path: Path) -> None:
    """The contract check itself: an otaseal error passes, anything else is reported."""
    from otaseal.errors import ArchiveError

    def target(data: bytes) -> None:
        if data == b"otaseal":
            raise ArchiveError("refused")
        if data:
            raise ValueError("escaped")

    files = []
    for i, data in enumerate((b"", b"otaseal", b"other")):
        files.append(tmp_path / str(i))
        files[-1].write_bytes(data)
    broken = _module("_harness").replay(target, files)
    assert [(p.name, why) for p, why in broken] == [("2", "ValueError: escaped")]


def _built_zip_input(options: int) -> bytes:
    """A fuzz_archive input (built mode): index.html, then a.txt with ``options``."""

    def chunk(data: bytes) -> bytes:
        return len(data).to_bytes(2, "big") + data

    entries = chunk(b"index.html") + chunk(b"<h1>") + b"\0"
    entries += chunk(b"sub/a.txt") + chunk(b"x") + bytes([options])
    return b"\x08" + (1 << 16).to_bytes(3, "big") + entries


def test_the_archive_target_catches_a_refused_bundle_that_leaves_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The target's own check works: with extract's clean-up switched off, leftovers are found."""
    from otaseal.archive import extraction
    from otaseal.errors import ArchiveError

    target = _module("fuzz_archive").target
    target(_built_zip_input(0))  # accepted: exactly its index, inside the destination
    with pytest.raises(ArchiveError, match="SHA-256"):
        target(_built_zip_input(16))  # a.txt fails its hash; nothing is left
    monkeypatch.setattr(extraction, "_undo", lambda _dest, _created: None)
    with pytest.raises(AssertionError, match="a refused bundle left"):
        target(_built_zip_input(16))


def test_the_http_target_cannot_reach_past_loopback() -> None:
    """A fuzzed redirect must never leave 127.0.0.1: the target's fence refuses it."""
    import socket

    fuzz_http = _module("fuzz_http")
    with fuzz_http._fenced():
        with pytest.raises(OSError, match="not loopback"):
            socket.getaddrinfo("example.com", 80)
        with socket.socket() as sock, pytest.raises(OSError, match="not loopback"):
            sock.connect(("192.0.2.1", 80))  # TEST-NET-1: refused before any packet is sent
        assert socket.getaddrinfo("127.0.0.1", 80)
