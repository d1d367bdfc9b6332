"""Progress: the terminal line a person sees during a long publish or fetch, and the reports
the packer, extractor and device client send it (per batch, never per byte, never printed)."""

from __future__ import annotations

import io
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from otaseal import cli
from otaseal.archive import extract, pack
from otaseal.client import check_for_update
from otaseal.crypto import load_decryption_key
from otaseal.operations import publish
from otaseal.progress import NO_PROGRESS, TerminalProgress, human_size
from tests.conftest import APP, EXAMPLE_WEB, NOW

if TYPE_CHECKING:
    from pathlib import Path
    from typing import TextIO

    from otaseal.operations import Project

ANSI = re.compile(r"\x1b\[")


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """A Progress that keeps every call, for the hook tests."""

    steps: list[tuple[str, int, int]] = field(default_factory=list)
    calls: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, step: str, *, files: int = 0, size: int = 0) -> None:
        self.steps.append((step, files, size))
        self.calls[step] = []

    def advance(self, files: int, size: int) -> None:
        with self.lock:
            self.calls[self.steps[-1][0]].append((files, size))

    def totals(self, step: str) -> tuple[int, int]:
        done = self.calls[step]
        return sum(f for f, _ in done), sum(s for _, s in done)


def make_build(root: Path, count: int, size: int) -> Path:
    root.mkdir()
    (root / "index.html").write_bytes(b"<!doctype html><title>app</title>")
    for i in range(count):
        (root / "assets").mkdir(exist_ok=True)
        (root / "assets" / f"chunk-{i:04}.js").write_bytes(bytes([i % 251]) * size)
    return root


# --- the terminal line ---------------------------------------------------------------------------
def test_nothing_shows_before_half_a_second_so_quick_commands_stay_quiet() -> None:
    clock, err = Clock(), io.StringIO()
    line = TerminalProgress(err, clock=clock)
    line.start("packing", files=10, size=10_000)
    clock.now += 0.49
    line.advance(10, 10_000)
    line.close()
    assert err.getvalue() == ""


def test_one_line_rewritten_at_most_four_times_a_second_then_blanked() -> None:
    clock, err = Clock(), io.StringIO()
    line = TerminalProgress(err, clock=clock)
    line.start("packing", files=4000, size=4_000_000_000)
    for _ in range(400):  # 10 s of reports, 40 a second
        clock.now += 0.025
        line.advance(10, 10_000_000)
    text = err.getvalue()
    draws = text.count("\r")
    assert 30 <= draws <= 4 * 10 + 1  # the first after 0.5 s, then at most one per 0.25 s
    assert "\n" not in text
    assert not ANSI.search(text), "plain text only: no colour or cursor codes"
    last = text.rsplit("\r", 1)[1]
    assert "packing" in last
    assert "4,000/4,000 files" in last
    assert "4.0 GB of 4.0 GB" in last
    assert "400.0 MB/s" in last  # 4 GB in 10 s
    line.close()
    end = err.getvalue()[len(text) :]
    assert end == "\r" + " " * len(last) + "\r"


def test_a_new_step_shows_at_once_and_counts_from_zero() -> None:
    clock, err = Clock(), io.StringIO()
    line = TerminalProgress(err, clock=clock)
    line.start("downloading", size=2_000_000)
    clock.now += 1
    line.advance(0, 2_000_000)
    line.start("unpacking", files=3, size=5_000)
    shown = err.getvalue().rsplit("\r", 1)[1]
    assert shown.startswith("unpacking…")
    assert "0/3 files" in shown
    assert "0 B of 5.0 KB" in shown


def test_a_long_step_without_reports_still_shows_what_runs() -> None:
    clock, err = Clock(), io.StringIO()
    line = TerminalProgress(err, clock=clock)
    line.start("packing", files=1, size=1)
    clock.now += 2
    line.start("uploading")
    assert err.getvalue().rsplit("\r", 1)[1].strip() == "uploading…"


def test_close_without_drawing_writes_nothing() -> None:
    err = io.StringIO()
    TerminalProgress(err, clock=Clock()).close()
    assert err.getvalue() == ""


def test_reports_from_several_threads_all_count() -> None:
    clock, err = Clock(), io.StringIO()
    line = TerminalProgress(err, clock=clock)
    line.start("unpacking", files=8000, size=8000)

    def work() -> None:
        for _ in range(1000):
            line.advance(1, 1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock.now += 1
    line.advance(0, 0)
    assert "8,000/8,000 files" in err.getvalue().rsplit("\r", 1)[1]


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 KB"), (1_500_000_000, "1.5 GB"), (2e15, "2000.0 TB")],
)
def test_human_size(size: float, text: str) -> None:
    assert human_size(size) == text


def test_the_silent_default_accepts_everything() -> None:
    NO_PROGRESS.start("packing", files=1, size=1)
    NO_PROGRESS.advance(1, 1)


# --- the hooks -----------------------------------------------------------------------------------
def test_pack_reports_every_file_and_byte_in_batches_not_per_file(tmp_path: Path) -> None:
    build = make_build(tmp_path / "dist", 300, 2000)
    seen = Recorder()
    result = pack(build, io.BytesIO(), progress=seen, workers=2)
    assert [s for s, _, _ in seen.steps] == ["packing", "writing the bundle"]
    files = len(result.index.files)
    assert seen.steps[0][1:] == (files, result.index.total_size)
    assert seen.totals("packing") == (files, result.index.total_size)
    assert len(seen.calls["packing"]) <= files // 64 + 2, "one report per batch of files"
    assert seen.totals("writing the bundle")[1] == result.length
    assert len(seen.calls["writing the bundle"]) <= result.length // (1 << 20) + 2


def test_pack_reports_a_large_file_piece_by_piece(tmp_path: Path) -> None:
    build = tmp_path / "dist"
    build.mkdir()
    (build / "index.html").write_bytes(b"<html></html>")
    (build / "movie.bin").write_bytes(bytes(range(256)) * (5 * 4096))  # 5 MiB: five pieces
    seen = Recorder()
    pack(build, io.BytesIO(), progress=seen, workers=1)
    assert seen.totals("packing") == (2, 13 + 5 * 1024 * 1024)
    assert len(seen.calls["packing"]) >= 5  # one per 1 MiB piece


def test_extract_reports_every_file_and_byte(tmp_path: Path) -> None:
    build = make_build(tmp_path / "dist", 200, 30_000)
    bundle = tmp_path / "bundle.zip"
    with bundle.open("wb") as out:
        packed = pack(build, out)
    seen = Recorder()
    index = extract(bundle, tmp_path / "www", max_total_size=10**9, progress=seen, workers=2)
    assert seen.steps == [("unpacking", len(index.files), index.total_size)]
    assert seen.totals("unpacking") == (len(index.files), packed.index.total_size)
    assert len(seen.calls["unpacking"]) < len(index.files) // 4, "reports per MiB or batch"


def test_publish_then_fetch_report_each_step_with_their_totals(
    tmp_path: Path, project: Project, project_dir: Path, web: Path
) -> None:
    published = Recorder()
    release = publish(project, web, channel="beta", progress=published).release
    assert [s for s, _, _ in published.steps] == ["packing", "writing the bundle", "uploading"]
    assert published.totals("packing") == (release.files, release.unpacked_size)
    fetched = Recorder()
    result = check_for_update(
        project.store,
        app=APP,
        channel="beta",
        state_dir=tmp_path / "state",
        decryption_key=load_decryption_key(
            (project_dir / "keys" / "app-decryption.pem").read_bytes()
        ),
        install_id="device-1",
        out_dir=tmp_path / "www",
        now=NOW,
        initial_root=(project_dir / "root.json").read_bytes(),
        progress=fetched,
    )
    assert result.status == "installed"
    assert fetched.steps == [
        ("downloading", 0, release.length),
        ("decrypting", 0, release.plaintext_length),
        ("unpacking", release.files, release.unpacked_size),
    ]
    assert fetched.totals("downloading") == (0, release.length)
    assert fetched.totals("decrypting") == (0, release.plaintext_length)
    assert fetched.totals("unpacking") == (release.files, release.unpacked_size)


class Terminal(io.StringIO):
    """stderr as a terminal."""

    def isatty(self) -> bool:
        return True


def _instant(stream: TextIO) -> TerminalProgress:
    return TerminalProgress(stream, delay=0, interval=0)


@pytest.mark.parametrize("json_mode", [False, True])
def test_cli_shows_progress_on_a_terminal_only_and_never_under_json(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, *, json_mode: bool
) -> None:
    monkeypatch.chdir(project_dir)
    (project_dir / "package.json").write_text("{}")  # no notice about a missing package.json
    monkeypatch.setattr(cli, "TerminalProgress", _instant)
    out, err = io.StringIO(), Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    args = ["publish", str(EXAMPLE_WEB), "--channel", "beta"]
    assert cli.main([*args, "--json"] if json_mode else args) == 0
    assert "\r" not in out.getvalue()
    if json_mode:
        assert err.getvalue() == ""
        return
    shown = err.getvalue()
    assert "packing…" in shown
    assert "uploading…" in shown
    assert shown.endswith("\r"), "the line is blanked before the result prints"
    assert not ANSI.search(shown)


def test_cli_is_quiet_when_stderr_is_not_a_terminal(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project_dir)
    monkeypatch.setattr(cli, "TerminalProgress", _instant)
    assert cli.main(["publish", str(EXAMPLE_WEB), "--channel", "beta"]) == 0
    assert capsys.readouterr().err == ""


def test_a_notice_blanks_the_line_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "TerminalProgress", _instant)
    out, err = io.StringIO(), Terminal()
    output = cli.Output(json_mode=False, out=out, err=err)
    with output.progress() as progress:
        progress.start("packing", files=2, size=2)
        progress.advance(1, 1)
        drawn = err.getvalue()
        output.notice("warning: a source map")
        blanked = err.getvalue()[len(drawn) :]
        assert blanked.replace(" ", "") == "\r\r"
        assert len(blanked) - 2 == len(drawn.rsplit("\r", 1)[1].rstrip())
    assert out.getvalue() == "warning: a source map\n"
