"""Smoke test of the delta benchmark (bench/delta.py) on a tiny generated app, without network.

The benchmark itself is run by hand (`make bench-delta`); this only keeps the harness working:
the trees change as a bundler's would, Capgo's CLI rules are applied as the reference says, and
one whole run writes its report with every column and the targets.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import capgo_select  # noqa: E402
import delta  # noqa: E402
import delta_trees  # noqa: E402

TINY = delta_trees.AppShape(chunks=6, min_size=1_000, max_size=2_000, entry_size=1_000)


def test_one_line_change_renames_the_chunk_and_changes_entry_and_index_html():
    base, one_line, index_only = delta_trees.app_files(TINY)
    assert len(base) == TINY.chunks + 3  # chunks, entry, capgo.js, index.html
    gone, new = sorted(set(base) - set(one_line)), sorted(set(one_line) - set(base))
    assert len(gone) == len(new) == 2  # the changed chunk and the entry, both renamed
    assert [p.startswith("assets/index-") for p in new].count(True) == 1
    changed = [p for p in base if p in one_line and base[p] != one_line[p]]
    assert changed == ["index.html"]
    chunk_old = next(p for p in gone if not p.startswith("assets/index-"))
    chunk_new = next(p for p in new if not p.startswith("assets/index-"))
    old_lines, new_lines = base[chunk_old].split(b"\n"), one_line[chunk_new].split(b"\n")
    assert len(old_lines) == len(new_lines)
    assert sum(a != b for a, b in zip(old_lines, new_lines, strict=True)) == 1
    entry = next(p for p in new if p.startswith("assets/index-"))
    assert chunk_new.removeprefix("assets/").encode() in one_line[entry]
    assert entry.encode() in one_line["index.html"]
    # Names are content hashes, and the same shape gives the same bytes on every machine.
    assert chunk_new.endswith(f"-{hashlib.sha256(one_line[chunk_new]).hexdigest()[:8]}.js")
    assert delta_trees.app_files(TINY)[1] == one_line
    assert [p for p in base if base[p] != index_only.get(p)] == ["index.html"]


def _noise(size: int) -> bytes:
    return b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(size // 32))


def test_capgo_cli_selection_follows_the_reference(tmp_path):
    base, target = tmp_path / "base", tmp_path / "target"
    for root in (base, target):
        (root / "assets").mkdir(parents=True)
        (root / "node_modules").mkdir()
        (root / "index.html").write_bytes(b"<html></html>")
        (root / "assets" / "kept.js").write_bytes(b"a" * 9_000)
        (root / "node_modules" / "x.js").write_bytes(b"skipped")
        (root / "empty.txt").write_bytes(b"")
    (target / "assets" / "new.js").write_bytes(_noise(10_240))  # does not compress
    (target / "assets" / "copy").mkdir()
    (target / "assets" / "copy" / "kept.js").write_bytes(b"a" * 9_000)  # same hash, same name
    (target / "other.js").write_bytes(b"a" * 9_000)  # same hash, other base name

    listed = capgo_select.listed(target)
    assert [f.path for f in listed] == [
        "assets/copy/kept.js",
        "assets/kept.js",
        "assets/new.js",
        "index.html",
        "other.js",
    ]
    taken = capgo_select.downloads(capgo_select.listed(base), listed)
    assert [f.path for f in taken] == ["assets/new.js", "other.js"]
    bodies = {b.path: b for b in capgo_select.download_bytes(target, taken)}
    assert bodies["assets/new.js"].length == 10_240 + 16  # aligned: a whole padding block more
    assert not bodies["assets/new.js"].brotli
    assert bodies["other.js.br"].brotli  # >= 8,192 bytes and much smaller once compressed
    assert capgo_select.body("small.js", b"a" * 8_191) == capgo_select.Body(
        "small.js", 8_192, False
    )
    assert capgo_select.padded(0) == 16
    assert capgo_select.padded(17) == 32

    (target / "bad name.js").write_bytes(b"x")
    with pytest.raises(capgo_select.CapgoRefusalError, match="spaces"):
        capgo_select.listed(target)


def test_monaco_without_tarball_or_npm_is_skipped_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(delta_trees.TreeUnavailableError, match="npm pack monaco-editor@0.56.0"):
        delta_trees.monaco_case(tmp_path / "cache")


def test_a_tiny_run_reports_every_column_and_the_targets(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # monaco must skip, not download
    out = tmp_path / "out"
    argv = ["--chunks", "6", "--chunk-kb", "1-2", "--repeat", "2"]
    argv += ["--cache", str(tmp_path / "cache"), "--out", str(out)]
    assert delta.main(argv) == 0

    doc = json.loads((out / "delta.json").read_text())
    assert [c["case"] for c in doc["cases"]] == ["one-line", "index-only"]
    assert len(doc["skipped"]) == 1
    assert doc["skipped"][0].startswith("monaco: ")
    one_line, index_only = doc["cases"]
    for case in doc["cases"]:
        sizes = case["bytes"]
        assert 0 < sizes["sealed_delta"] < sizes["full_sealed"]
        assert sizes["capgo_cli_delta"] > 0
        assert len(case["seconds_all"]["apply_delta"]) == 2
        assert len(case["seconds_all"]["install_full"]) == 2
    assert one_line["files_downloaded"]["capgo_cli_delta"] == 3  # chunk, entry, index.html
    assert index_only["files_downloaded"]["capgo_cli_delta"] == 1
    assert index_only["files_downloaded"]["capgo_manifest_ours"] == 1
    report = (out / "delta.md").read_text()
    assert "| one-line | 9 |" in report
    assert "SKIPPED: monaco" in report
    assert report.count("PASS: ") + report.count("FAIL: ") == 4
    assert "Targets (issue 13)" in capsys.readouterr().out
    assert not (tmp_path / "cache" / "work").exists()
