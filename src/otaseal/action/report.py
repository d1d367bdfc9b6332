"""Rendering of a release as the sticky PR comment and the job summary (pure, no I/O).

Labels and file names come from users, so every one is escaped for GitHub-flavoured markdown:
HTML is neutralised, markdown punctuation is backslash-escaped (``|`` cannot break a table),
and ``@``/``#`` get a zero-width space so a label cannot mention people or link issues.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal, get_args
from urllib.parse import quote

Stage = Literal["published", "promoted", "rollout", "reverted", "resigned", "status"]

FILE_LIST_CAP: Final = 50
_LABEL_CAP: Final = 100
_PATH_CAP: Final = 200
_GUARD_CAP: Final = 1000
_SHORT_HEX: Final = 12
_SHORT_COMMIT: Final = 7
_ENTITIES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_ZWSP: Final = "&#8203;"
# Characters that start markdown or GitHub syntax inline (emphasis, links, code, tables,
# strikethrough, math, emoji); "." and "-" only matter at the start of a line, where user text
# never goes.
_MARKDOWN_ACTIVE: Final = frozenset("\\`*_{}[]()!|~$:")
_BIDI: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_HEX_RE: Final = re.compile(r"[0-9a-f]+")
_URL_RE: Final = re.compile(r"https?://[^\s]+")
_MINUS: Final = "\u2212"
_KIB: Final = 1024
_UNITS: Final = ("KiB", "MiB", "GiB", "TiB")
_TINY_PERCENT: Final = 0.1
_WHOLE_PERCENT: Final = 10
_DASH: Final = "\u2014"
PAUSED_MEANING: Final = "no device moves to it; devices already on it keep it"
"""What a paused rollout means for devices (SPEC §8, ``rollout.paused``)."""


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """One channel's current state, as a row of the channels table."""

    channel: str
    label: str | None
    digest: str | None
    rollout_percent: float | None
    manifest_version: int | None
    expires: str | None
    paused: bool = False
    delta_size: int | None = None  # the current release's typical delta patch (SPEC §19)
    delta_changed: int | None = None  # files that patch does not copy unchanged


@dataclass(frozen=True, slots=True)
class ReleaseReport:
    """What a command did to a channel, everything the comment and summary show."""

    app: str
    stage: Stage
    channel: str
    label: str
    digest: str
    size: int
    files: int
    previous_label: str | None
    size_delta: int | None
    added: tuple[str, ...] | None  # None: the file list is not available
    removed: tuple[str, ...] | None
    changed: tuple[str, ...] | None
    signer_keyids: tuple[str, ...]
    channels: tuple[ChannelRow, ...]
    run_url: str | None
    commit: str | None
    formats: tuple[str, ...] = ("sealed",)
    capgo_size: int | None = None  # the Capgo artifact's length, when the release has one
    builtin: bool = False  # the channel serves the app's builtin build (no bundle)
    health: str = ""  # markdown from otaseal.action.health_markdown (escaped by it), or ""
    guard: str = ""  # plain text: what ``guard`` did and on what evidence (escaped here), or ""
    delta_size: int | None = None  # the typical delta patch's length, None without patches
    delta_from: str | None = None  # the label of the release that patch starts from
    delta_changed: int | None = None  # files the patch does not copy unchanged from its base

    @property
    def has_release(self) -> bool:
        """Whether the channel serves a bundle (not nothing, not the builtin build)."""
        return bool(self.digest) and not self.builtin

    def __post_init__(self) -> None:
        if self.stage not in get_args(Stage):
            msg = f"unknown stage {self.stage!r}; expected one of {get_args(Stage)}"
            raise ValueError(msg)
        if self.size < 0 or self.files < 0:
            msg = "size and files cannot be negative"
            raise ValueError(msg)


def marker(app: str) -> str:
    """The hidden HTML comment that finds this app's sticky comment again (one per app)."""
    return f"<!-- otaseal:sticky app={quote(app, safe='._-')} -->"


def render_comment(report: ReleaseReport) -> str:
    """The sticky PR comment: headline, bundle facts, changed files, channels, run link."""
    parts = [marker(report.app), _title(report), _headline(report), *_guard(report)]
    parts.append(_facts(report))
    parts.append(_details("Full digest", _code(report.digest, limit=_PATH_CAP)))
    files = _file_list(report)
    if files:
        parts.append(files)
    parts.append(_channels_table(report))
    if report.health:
        parts.append(report.health)
    footer = _footer(report)
    if footer:
        parts.append(footer)
    return "\n\n".join(parts) + "\n"


def render_summary(report: ReleaseReport) -> str:
    """The job summary: the same headline, facts and channels table, without the marker."""
    parts = [_title(report), _headline(report), *_guard(report), _facts(report)]
    parts.append(_channels_table(report))
    if report.health:
        parts.append(report.health)
    footer = _footer(report)
    if footer:
        parts.append(footer)
    return "\n\n".join(parts) + "\n"


# --- pieces ----------------------------------------------------------------------------------
def _title(report: ReleaseReport) -> str:
    return f"### otaseal {_DASH} {_text(report.app)}"


def _headline(report: ReleaseReport) -> str:
    channel = f"**{_text(report.channel)}**"
    if not report.has_release:
        return _headline_without_release(report, channel)
    label = f"**{_text(report.label) or '(no label)'}**"
    row = _current_row(report)
    percent = row.rollout_percent if row is not None else None
    paused = row is not None and row.paused
    rollout = f" ({_percent_text(percent)})" if percent is not None else ""
    if paused:
        at = f" at {_percent_text(percent)}" if percent is not None else ""
        sentences: dict[Stage, str] = {
            "published": f"{label} is on {channel}{at}, paused",
            "status": f"{label} is paused on {channel}{at}",
            "promoted": f"{label} was promoted to {channel}{at}, paused",
            "rollout": f"{label} is paused on {channel}{at}",
            "reverted": f"{channel} was reverted to {label}{at}, paused",
            "resigned": f"{channel} was re-signed; {label} is still current and paused{at}",
        }
        return f"{sentences[report.stage]}: {PAUSED_MEANING}"
    sentences = {
        "published": f"{label} is on {channel}{rollout}",
        "status": f"{label} is on {channel}{rollout}",
        "promoted": f"{label} was promoted to {channel}{rollout}",
        "rollout": f"{label} is rolling out on {channel}{rollout}",
        "reverted": f"{channel} was reverted to {label}{rollout}",
        "resigned": f"{channel} was re-signed; {label} is still current{rollout}",
    }
    return sentences[report.stage]


def _guard(report: ReleaseReport) -> list[str]:
    """``otaseal guard``'s decision and evidence, as one paragraph."""
    return [f"**Guard:** {_text(report.guard, limit=_GUARD_CAP)}"] if report.guard else []


def _headline_without_release(report: ReleaseReport, channel: str) -> str:
    if report.builtin:
        if report.stage == "reverted":
            return f"{channel} was reverted to the app's builtin build"
        if report.stage == "resigned":
            return f"{channel} was re-signed; it still serves the app's builtin build"
        return f"{channel} serves the app's builtin build"
    return f"{channel} has no release yet"


def _current_row(report: ReleaseReport) -> ChannelRow | None:
    for row in report.channels:
        if row.channel == report.channel:
            return row
    return None


def _facts(report: ReleaseReport) -> str:
    if not report.has_release:
        what = (
            "none: devices run the web build shipped inside the app"
            if report.builtin
            else "none yet: devices on this channel run the web build shipped inside the app"
        )
        return f"- **Bundle:** {what}"
    files = f"{report.files} file{'' if report.files == 1 else 's'}"
    lines = [
        f"- **Bundle:** {_short_digest(report.digest)} {_DASH} {human_size(report.size)}, {files}"
    ]
    if report.previous_label is None:
        lines.append("- **Previous release:** none on this channel")
    else:
        change = f"- **Change since {_text(report.previous_label)}:** "
        if report.size_delta is None:
            change += "size change unknown"
        else:
            change += size_change(report.size, report.size_delta)
        lines.append(f"{change}; {_file_counts(report)}")
    if report.delta_size is not None:
        lines.append(f"- **Update size:** {_update_text(report)}")
    if report.formats:
        formats = ", ".join(_text(f) for f in report.formats)
        if report.capgo_size is not None:
            formats += f" (Capgo artifact {human_size(report.capgo_size)})"
        lines.append(f"- **Formats:** {formats}")
    if report.signer_keyids:
        keyids = ", ".join(_short_digest(k) for k in report.signer_keyids)
        lines.append(f"- **Signed by:** {keyids}")
    else:
        lines.append("- **Signed by:** no signatures recorded")
    return "\n".join(lines)


def _update_text(report: ReleaseReport) -> str:
    """Full bundle, and the delta most devices download instead (SPEC §19)."""
    full = f"full {human_size(report.size)}"
    if report.delta_size is None:
        return f"{full}; no delta patch"
    share = f" ({_change_percent(report.delta_size / report.size * 100)} %)" if report.size else ""
    base = f" from {_text(report.delta_from)}" if report.delta_from else ""
    changed = _files_changed(report.delta_changed)
    return f"{full}; delta{base} {human_size(report.delta_size)}{share}, {changed}"


def _files_changed(count: int | None) -> str:
    if count is None:
        return "files changed unknown"
    return f"{count} file{'' if count == 1 else 's'} changed"


def _file_counts(report: ReleaseReport) -> str:
    if report.added is None or report.removed is None or report.changed is None:
        return "file list not available"
    if not (report.added or report.removed or report.changed):
        return "no files changed"
    return (
        f"{len(report.added)} added, {len(report.removed)} removed, {len(report.changed)} changed"
    )


def _file_list(report: ReleaseReport) -> str | None:
    if report.added is None or report.removed is None or report.changed is None:
        return None
    entries = [
        (verb, name)
        for verb, names in (
            ("added", report.added),
            ("removed", report.removed),
            ("changed", report.changed),
        )
        for name in sorted(names)
    ]
    if not entries:
        return None
    lines = [f"- {verb} {_code(name, limit=_PATH_CAP)}" for verb, name in entries[:FILE_LIST_CAP]]
    hidden = len(entries) - FILE_LIST_CAP
    if hidden > 0:
        lines.append(f"- \u2026 and {hidden} more")
    return _details(f"Files changed ({len(entries)})", "\n".join(lines))


def _channels_table(report: ReleaseReport) -> str:
    lines = [
        "| Channel | Release | Rollout | Delta | Digest | Manifest | Expires |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report.channels:
        channel = _text(row.channel)
        if row.channel == report.channel:
            channel = f"**{channel}**"
        cells = [
            channel,
            _text(row.label) if row.label else _DASH,
            _rollout_cell(row),
            _delta_cell(row),
            _short_digest(row.digest) if row.digest else _DASH,
            f"v{row.manifest_version}" if row.manifest_version is not None else _DASH,
            _text(row.expires) if row.expires else _DASH,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if not report.channels:
        lines.append("| " + " | ".join([_DASH] * 7) + " |")
    return "\n".join(lines)


def _delta_cell(row: ChannelRow) -> str:
    """The current release's typical delta: its size and the files it changes."""
    if row.delta_size is None:
        return _DASH
    return f"{human_size(row.delta_size)}, {_files_changed(row.delta_changed)}"


def _rollout_cell(row: ChannelRow) -> str:
    if row.rollout_percent is None:
        return _DASH
    return _percent_text(row.rollout_percent) + (" (paused)" if row.paused else "")


def _footer(report: ReleaseReport) -> str:
    parts: list[str] = []
    url = _safe_url(report.run_url) if report.run_url else None
    if url:
        parts.append(f"[Workflow run]({url})")
    if report.commit:
        commit = report.commit.lower()
        shown = commit[:_SHORT_COMMIT] if _HEX_RE.fullmatch(commit) else _text(report.commit)
        parts.append(f"commit {shown}")
    return " \u00b7 ".join(parts)


def _details(summary: str, body: str) -> str:
    """A collapsed block; ``summary`` must be fixed text (HTML context, no markdown)."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


# --- formatting ------------------------------------------------------------------------------
def human_size(size: int) -> str:
    """Bytes in binary units with one decimal: ``512 B``, ``1.5 KiB``, ``2.0 MiB``."""
    if size < _KIB:
        return f"{size} B"
    value, unit = size / _KIB, 0
    while value >= _KIB and unit < len(_UNITS) - 1:
        value, unit = value / _KIB, unit + 1
    return f"{value:.1f} {_UNITS[unit]}"


def size_change(size: int, delta: int) -> str:
    """``+1.2 KiB / +3 %`` against the previous release (``size - delta`` bytes)."""
    if delta == 0:
        return "same size"
    sign = "+" if delta > 0 else _MINUS
    text = f"{sign}{human_size(abs(delta))}"
    previous = size - delta
    if previous > 0:
        text += f" / {sign}{_change_percent(abs(delta) / previous * 100)} %"
    return text


def _change_percent(percent: float) -> str:
    """One decimal below 10 %, whole numbers above; tiny changes are not rounded to zero."""
    if percent < _TINY_PERCENT:
        return f"<{_TINY_PERCENT:g}"
    if percent < _WHOLE_PERCENT:
        return f"{percent:.1f}".removesuffix(".0")
    return f"{percent:.0f}"


def _percent_text(percent: float) -> str:
    """A rollout share as set (basis points give at most two decimals): ``12.5 %``."""
    return f"{round(percent, 2):g} %"


def _short_digest(digest: str) -> str:
    """First 12 hex digits of ``[algo:]hex`` in a code span; anything else escaped as text."""
    hex_part = digest.rpartition(":")[2].lower()
    if _HEX_RE.fullmatch(hex_part):
        return f"`{hex_part[:_SHORT_HEX]}`"
    return _text(digest, limit=_SHORT_HEX * 2)


def _safe_url(url: str) -> str | None:
    """An http(s) URL made safe as a markdown link target, or None."""
    if not _URL_RE.fullmatch(url):
        return None
    return quote(url, safe=":/?#[]@!$+,;=%-._~")


# --- escaping --------------------------------------------------------------------------------
def _clean(value: str, limit: int) -> str:
    """Replace control and bidi characters (line breaks, spoofing) and cap the length."""
    cleaned = "".join(
        "\ufffd" if ch in _BIDI or unicodedata.category(ch) in {"Cc", "Cs", "Zl", "Zp"} else ch
        for ch in value
    )
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "\u2026"
    return cleaned


def escape(value: str, *, limit: int = _LABEL_CAP) -> str:
    """User text made inert in GitHub markdown (for the other renderers of the comment)."""
    return _text(value, limit=limit)


def _text(value: str, *, limit: int = _LABEL_CAP) -> str:
    """Escape user text for inline markdown, table cells included."""
    out: list[str] = []
    for ch in _clean(value, limit):
        if ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch == "@":
            out.append("@" + _ZWSP)
        elif ch == "#":
            out.append("\\#" + _ZWSP)
        elif ch in _MARKDOWN_ACTIVE:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _code(value: str, *, limit: int) -> str:
    """A code span (literal text, no mentions or HTML) for use outside tables."""
    text = _clean(value, limit)
    if not text.strip():
        return "(empty)" if not text else _text(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"
