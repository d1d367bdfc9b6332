"""The sticky comment and job summary, asserted piece by piece as a reviewer would read them."""

from __future__ import annotations

import dataclasses
import re

import pytest

from otaseal.action.report import (
    FILE_LIST_CAP,
    ChannelRow,
    ReleaseReport,
    human_size,
    marker,
    render_comment,
    render_summary,
    size_change,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
KEYID = "fedcba9876543210" * 4
COMMIT = "3f786850e387550fdab836ed7e6dc881de23001b"
RUN_URL = "https://github.com/octo-org/shop-app/actions/runs/42"


def make(**changes: object) -> ReleaseReport:
    base = ReleaseReport(
        app="com.example.shop",
        stage="published",
        channel="beta",
        label="1.4.2",
        digest=DIGEST,
        size=1_258_291,  # 1.2 MiB
        files=143,
        previous_label="1.4.1",
        size_delta=1_229,
        added=("src/new.js",),
        removed=("old.css",),
        changed=("index.html",),
        signer_keyids=(KEYID,),
        channels=(
            ChannelRow("beta", "1.4.2", DIGEST, 100.0, 12, "2026-12-01T00:00:00Z"),
            ChannelRow("production", "1.4.1", "sha256:" + "ab" * 32, 12.5, 7, None),
            ChannelRow("canary", None, None, None, None, None),
        ),
        run_url=RUN_URL,
        commit=COMMIT,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return [re.split(r"(?<!\\)\|", row.strip())[1:-1] for row in rows[2:]]


def details(text: str, summary: str) -> str:
    match = re.search(
        rf"<details><summary>{re.escape(summary)}</summary>\n\n(.*?)\n\n</details>", text, re.DOTALL
    )
    assert match, f"no <details> block {summary!r}"
    return match.group(1)


# --- marker ------------------------------------------------------------------------------------
def test_comment_starts_with_the_hidden_marker_of_its_app():
    text = render_comment(make())
    assert text.startswith("<!-- otaseal:sticky app=com.example.shop -->\n")
    assert marker("com.example.shop") != marker("com.example.shop-admin")
    assert marker("com.example.shop") not in render_comment(make(app="com.example.shop-admin"))


def test_marker_cannot_be_closed_early_by_the_app_name():
    sticky = marker("x --> <img src=x>")
    assert sticky.count("-->") == 1
    assert sticky.endswith(" -->")
    assert "<img" not in sticky


def test_summary_has_no_marker():
    assert "<!--" not in render_summary(make())


# --- headline ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stage", "channel", "headline"),
    [
        ("published", "beta", "**1.4.2** is on **beta** (100 %)"),
        ("status", "beta", "**1.4.2** is on **beta** (100 %)"),
        ("promoted", "production", "**1.4.2** was promoted to **production** (12.5 %)"),
        ("rollout", "production", "**1.4.2** is rolling out on **production** (12.5 %)"),
        ("reverted", "production", "**production** was reverted to **1.4.2** (12.5 %)"),
        ("resigned", "beta", "**beta** was re-signed; **1.4.2** is still current (100 %)"),
        ("published", "nightly", "**1.4.2** is on **nightly**\n"),
    ],
)
def test_headline_says_what_happened_and_the_rollout(stage, channel, headline):
    report = make(stage=stage, channel=channel)
    assert headline in render_comment(report)
    assert headline in render_summary(report)


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown stage"):
        make(stage="deleted")


@pytest.mark.parametrize("field", ["size", "files"])
def test_negative_counts_are_refused(field):
    with pytest.raises(ValueError, match="negative"):
        make(**{field: -1})


def test_empty_label_is_named():
    assert "**(no label)** is on **beta**" in render_comment(make(label=""))


# --- digest, size, signers ---------------------------------------------------------------------
def test_digest_is_short_with_the_full_one_folded_away():
    text = render_comment(make())
    assert "- **Bundle:** `0123456789ab` \u2014 1.2 MiB, 143 files" in text
    assert details(text, "Full digest") == f"`{DIGEST}`"


def test_digest_that_is_not_hex_is_escaped_not_trusted():
    text = render_comment(make(digest="<b>x</b>"))
    assert "<b>" not in text.split("<details>")[0]
    assert "&lt;b&gt;x&lt;/b&gt;" in text


def test_single_file_is_singular():
    assert "1 file\n" in render_comment(make(files=1))


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1_258_291, "1.2 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (5 * 1024**5, "5120.0 TiB"),
    ],
)
def test_human_size(size, text):
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("size", "delta", "text"),
    [
        (41_229, 1_229, "+1.2 KiB / +3.1 %"),
        (97_000, -3_000, "\u22122.9 KiB / \u22123 %"),
        (2_000, 1_000, "+1000 B / +100 %"),
        (10_000_000, 100, "+100 B / +<0.1 %"),
        (1_100, 100, "+100 B / +10 %"),
        (1_000, 1_000, "+1000 B"),  # nothing before: no percentage
        (5_000, 0, "same size"),
    ],
)
def test_size_change_against_the_previous_release(size, delta, text):
    assert size_change(size, delta) == text


def test_change_line_names_the_previous_release_and_counts():
    text = render_comment(make(size=41_229, size_delta=1_229))
    assert "- **Change since 1.4.1:** +1.2 KiB / +3.1 %; 1 added, 1 removed, 1 changed" in text


def test_first_release_on_a_channel_says_so():
    text = render_comment(make(previous_label=None, size_delta=None))
    assert "- **Previous release:** none on this channel" in text
    assert "Change since" not in text


def test_unknown_size_change_and_file_list():
    text = render_comment(make(size_delta=None, added=None, removed=None, changed=None))
    assert "- **Change since 1.4.1:** size change unknown; file list not available" in text
    assert "Files changed" not in text


def test_identical_content_says_no_files_changed():
    text = render_comment(make(size_delta=0, added=(), removed=(), changed=()))
    assert "same size; no files changed" in text
    assert "Files changed" not in text


def test_signers_are_short_key_ids():
    text = render_comment(make(signer_keyids=(KEYID, "sha256:" + "1" * 64)))
    assert "- **Signed by:** `fedcba987654`, `111111111111`" in text
    assert KEYID not in text


def test_no_signers_is_said_plainly():
    assert "no signatures recorded" in render_comment(make(signer_keyids=()))


# --- changed files -----------------------------------------------------------------------------
def test_changed_files_are_listed_in_a_folded_block():
    body = details(render_comment(make()), "Files changed (3)")
    assert body.splitlines() == [
        "- added `src/new.js`",
        "- removed `old.css`",
        "- changed `index.html`",
    ]


def test_file_list_is_capped_and_says_how_many_more():
    changed = tuple(f"assets/chunk-{i:03}.js" for i in range(FILE_LIST_CAP + 20))
    body = details(render_comment(make(changed=changed)), f"Files changed ({len(changed) + 2})")
    lines = body.splitlines()
    assert len(lines) == FILE_LIST_CAP + 1
    assert lines[-1] == "- \u2026 and 22 more"
    assert "- added `src/new.js`" in lines  # added and removed come first


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("<img src=x onerror=alert(1)>.js", "`<img src=x onerror=alert(1)>.js`"),  # literal
        ("a`b.js", "``a`b.js``"),
        ("`tick", "`` `tick ``"),
        (" spaced ", "`  spaced  `"),
        ("line\nbreak.js", "`line\ufffdbreak.js`"),
        ("evil\u202egnp.js", "`evil\ufffdgnp.js`"),  # right-to-left override spoofing
        ("@octocat #1.js", "`@octocat #1.js`"),  # code spans neither mention nor link
        ("", "(empty)"),
    ],
)
def test_hostile_file_names_are_shown_literally(name, shown):
    body = details(render_comment(make(added=(name,), removed=(), changed=())), "Files changed (1)")
    assert body == f"- added {shown}"


def test_whitespace_only_file_name_is_escaped_text():
    body = details(
        render_comment(make(added=("   ",), removed=(), changed=())), "Files changed (1)"
    )
    assert body == "- added    "


def test_long_file_names_are_shortened():
    body = details(
        render_comment(make(added=("a" * 5000,), removed=(), changed=())), "Files changed (1)"
    )
    assert len(body) < 250
    assert body.endswith("\u2026`")


# --- escaping user labels ----------------------------------------------------------------------
def test_hostile_label_cannot_inject_html_markdown_or_mentions():
    label = "<img src=x> | **bold** [link](https://evil.example) @octocat #12 `code` $x$ :tada:"
    text = render_comment(
        make(label=label, channels=(ChannelRow("beta", label, DIGEST, 100.0, 12, None),))
    )
    assert "<img" not in text
    assert "&lt;img src=x&gt;" in text
    assert "**bold**" not in text
    assert "\\*\\*bold\\*\\*" in text
    assert "\\[link\\]\\(https\\://evil.example\\)" in text
    assert "@octocat" not in text
    assert "@&#8203;octocat" in text
    assert "\\#&#8203;12" in text
    assert "\\`code\\`" in text
    assert "\\$x\\$" in text
    assert "\\:tada\\:" in text


def test_pipe_in_a_label_does_not_break_the_table():
    rows = table_rows(
        render_comment(make(channels=(ChannelRow("beta", "1.0 | x | y", DIGEST, 100.0, 1, None),)))
    )
    assert len(rows) == 1
    assert len(rows[0]) == 7
    assert rows[0][1].strip() == "1.0 \\| x \\| y"


def test_backslash_before_a_pipe_cannot_unescape_it():
    rows = table_rows(
        render_comment(make(channels=(ChannelRow("beta", "a\\|b", DIGEST, 100.0, 1, None),)))
    )
    assert len(rows[0]) == 7
    assert rows[0][1].strip() == "a\\\\\\|b"


def test_label_with_line_breaks_stays_on_its_line():
    text = render_comment(make(label="1.0\n## Approved\r\n- [x] ship"))
    assert "## Approved" not in text
    assert "**1.0\ufffd\\#&#8203;\\#&#8203; Approved\ufffd\ufffd- \\[x\\] ship** is on" in text


def test_long_label_is_cut():
    text = render_comment(make(label="9" * 500))
    assert "9" * 99 + "\u2026" in text
    assert "9" * 100 not in text


# --- channels table ----------------------------------------------------------------------------
def test_channels_table_has_one_row_per_channel():
    text = render_comment(make())
    assert "| Channel | Release | Rollout | Delta | Digest | Manifest | Expires |" in text
    assert [[cell.strip() for cell in row] for row in table_rows(text)] == [
        [
            "**beta**",
            "1.4.2",
            "100 %",
            "\u2014",
            "`0123456789ab`",
            "v12",
            "2026-12-01T00\\:00\\:00Z",
        ],
        ["production", "1.4.1", "12.5 %", "\u2014", "`abababababab`", "v7", "\u2014"],
        ["canary", "\u2014", "\u2014", "\u2014", "\u2014", "\u2014", "\u2014"],
    ]


def test_summary_has_the_same_table_and_headline():
    report = make(stage="promoted", channel="production")
    comment, summary = render_comment(report), render_summary(report)
    assert table_rows(summary) == table_rows(comment)
    assert "**1.4.2** was promoted to **production** (12.5 %)" in summary
    assert "<details>" not in summary


def test_empty_channel_list_still_renders_a_table():
    rows = table_rows(render_comment(make(channels=())))
    assert rows == [[" \u2014 "] * 7]


@pytest.mark.parametrize(("percent", "shown"), [(0.01, "0.01 %"), (33.33, "33.33 %"), (0, "0 %")])
def test_rollout_percent_is_shown_as_set(percent, shown):
    channels = (ChannelRow("beta", "1.4.2", DIGEST, percent, 1, None),)
    assert f"({shown})" in render_comment(make(channels=channels))


# --- footer ------------------------------------------------------------------------------------
def test_footer_links_the_run_and_the_commit():
    text = render_comment(make())
    assert text.endswith(f"[Workflow run]({RUN_URL}) \u00b7 commit 3f78685\n")


def test_run_url_that_is_not_http_is_dropped():
    text = render_comment(make(run_url="javascript:alert(1)"))
    assert "javascript" not in text
    assert "[Workflow run]" not in text


def test_run_url_cannot_break_out_of_the_link():
    text = render_comment(make(run_url='https://github.com/o/r/actions/runs/1)<b>"x'))
    assert "[Workflow run](https://github.com/o/r/actions/runs/1%29%3Cb%3E%22x)" in text


def test_commit_that_is_not_hex_is_escaped():
    text = render_comment(make(commit="HEAD~1 @you"))
    assert "commit HEAD\\~1 @&#8203;you" in text


def test_no_run_and_no_commit_means_no_footer():
    report = make(run_url=None, commit=None)
    assert render_comment(report).endswith("|\n")
    assert render_summary(report).endswith("|\n")
