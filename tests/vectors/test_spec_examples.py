"""SPEC.md's examples (§§13-15) are the vectors; its platform hints compute its formulas.

An SDK author copies from the spec; a worked example that differs from the committed vector, or a
hint whose code does something other than the formula above it, sends them down a wrong path.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from pathlib import Path

from otaseal.archive import paths

HERE = Path(__file__).resolve().parent
SPEC = (HERE.parent.parent / "docs" / "SPEC.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the ``###`` section whose heading starts with ``title``."""
    start = SPEC.index(f"### {title}")
    end = SPEC.find("\n#", start + 4)
    return SPEC[start : end if end != -1 else len(SPEC)]


def test_spec_index_example_is_the_vector_index():
    text = section("The index: `.otaseal/index.json`")
    block = re.search(r"```json\n(.*?)```", text, re.DOTALL)
    assert block is not None, "§14 lost its fenced JSON example"
    committed = (HERE / "index.json").read_bytes()

    assert json.loads(block.group(1)) == json.loads(committed)
    one_line = re.search(r"on one line:\s*`([^`]+)`", text)
    assert one_line is not None
    head, *_, tail = one_line.group(1).split("…")
    assert committed.decode().startswith(head)
    assert committed.decode().endswith(tail)


def test_spec_index_example_is_sorted_by_utf8_bytes():
    block = re.search(r"```json\n(.*?)```", section("The index"), re.DOTALL)
    assert block is not None
    paths = [f["path"] for f in json.loads(block.group(1))["files"]]
    assert paths == sorted(paths, key=str.encode)
    assert paths[-1].encode()[0] == 0xC3  # "Über": after every ASCII path


# --- the coarse collision key (§14 "Paths") -------------------------------------------------------
STEPS = {
    'normalize("NFD")': lambda s: unicodedata.normalize("NFD", s),
    "toLowerCase()": str.lower,
    "toUpperCase()": str.upper,
}


def typescript_hint():
    """The TypeScript expression §14 gives for the coarse key, as a list of Python steps."""
    match = re.search(r"In TypeScript that is\s*`path((?:\.[A-Za-z]+\([^)]*\))+)`", SPEC)
    assert match is not None, "§14 lost its TypeScript hint for the coarse key"
    calls = re.findall(r"\.([A-Za-z]+\([^)]*\))", match.group(1))
    return calls, [STEPS[call] for call in calls]


def test_typescript_hint_spells_the_formula():
    formula = re.search(r"coarser key, because refusing more is safe: `([^`]+)`", SPEC)
    assert formula is not None
    calls, _ = typescript_hint()

    assert formula.group(1) == "NFD(lower(upper(lower(NFD(path)))))"
    named = {'normalize("NFD")': "NFD", "toLowerCase()": "lower", "toUpperCase()": "upper"}
    nested = "path"
    for call in calls:
        nested = f"{named[call]}({nested})"
    assert nested == formula.group(1)
    kotlin = re.search(r"in Kotlin,\s*`([^`]+)`", SPEC)
    assert kotlin is not None
    order = re.findall(r"(lowercase|uppercase)\(Locale\.ROOT\)", kotlin.group(1))
    assert order == ["lowercase", "uppercase", "lowercase"]


def test_coarse_key_never_separates_what_the_caseless_key_joins():
    """Refusing by the coarse key refuses at least every collision the reference key finds."""
    _, steps = typescript_hint()

    def coarse(text: str) -> str:
        for step in steps:
            text = step(text)
        return text

    classes: dict[str, set[str]] = {}
    for point in range(sys.maxunicode + 1):
        if unicodedata.category(chr(point)) in {"Cn", "Co", "Cs"}:
            continue
        char = chr(point)
        classes.setdefault(paths.fold(char), set()).add(coarse(char))
    split = {key: keys for key, keys in classes.items() if len(keys) > 1}
    assert not split
    assert coarse("\N{LATIN CAPITAL LETTER SHARP S}") == coarse("ss") == coarse("SS")
    assert coarse("Assets/App.JS") == coarse("assets/app.js")
