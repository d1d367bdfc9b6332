from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from otaseal.action.runner import SUMMARY_LIMIT, Runner, RunnerError
from otaseal.errors import InputError

from .runner_parser import (
    Command,
    FileCommandError,
    masks_from_log,
    parse_command,
    parse_file_command,
    parse_log,
)

PEM = (  # shaped like a PEM key, but not one: secret scanners stay quiet
    "-----BEGIN TEST SECRET-----\n"
    "c2VhbGVkLXRlc3Qtc2VjcmV0LWxpbmUtb25lLW5vdC1hLXJlYWwta2V5LWF0LWFsbA\n"
    "OF/2NxApJCzGCEDdfSp6VQO30hyhRANCAAQRWz+jn65BtOMvdyHKcvjBeBSDZH2r\n"
    "-----END TEST SECRET-----\n"
)
SECRET_LINE = PEM.splitlines()[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    output = tmp_path / "set_output_x"
    output.touch()
    return {
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary_x"),
    }


def make(env: dict[str, str], **kwargs) -> tuple[Runner, io.StringIO]:
    out = io.StringIO()
    return Runner(env, out, **kwargs), out


def outputs(env: dict[str, str]) -> dict[str, str]:
    return parse_file_command(Path(env["GITHUB_OUTPUT"]).read_bytes().decode("utf-8"))


def commands(out: io.StringIO) -> list[Command]:
    return [entry for entry in parse_log(out.getvalue()) if isinstance(entry, Command)]


# --- inputs ------------------------------------------------------------------------------------
def test_hyphenated_input_is_read_from_the_variable_the_runner_sets(env):
    env |= {"INPUT_BUILD-DIR": "  web/dist \n", "INPUT_BUILD_DIR": "wrong", "INPUT_MY_INPUT": "s"}
    runner, _ = make(env)
    assert runner.input("build-dir") == "web/dist"
    assert runner.input("my input") == "s"


def test_empty_or_missing_input_gives_the_default(env):
    env["INPUT_CHANNEL"] = "   "
    runner, _ = make(env)
    assert runner.input("channel", default="beta") == "beta"
    assert runner.input("publish-target", default="local:./x") == "local:./x"


def test_required_input_that_is_empty_is_an_input_error(env):
    env["INPUT_SIGNING-KEY"] = ""
    runner, _ = make(env)
    with pytest.raises(InputError, match="signing-key") as info:
        runner.input("signing-key", required=True)
    assert "with:" in info.value.diagnostics()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False),
     ("FALSE", False), (" true\n", True)],
)  # fmt: skip
def test_bool_input_accepts_yaml_core_booleans(env, raw, expected):
    env["INPUT_DRY-RUN"] = raw
    runner, _ = make(env)
    assert runner.bool_input("dry-run", default=not expected) is expected


@pytest.mark.parametrize("raw", ["yes", "1", "tRuE", "on", "n"])
def test_bool_input_rejects_anything_else_naming_the_input_and_the_choices(env, raw):
    env["INPUT_DRY-RUN"] = raw
    runner, _ = make(env)
    with pytest.raises(InputError) as info:
        runner.bool_input("dry-run")
    text = info.value.diagnostics()
    assert "dry-run" in text
    assert "true, True, TRUE, false, False, FALSE" in text


def test_bool_input_defaults_when_not_given(env):
    runner, _ = make(env)
    assert runner.bool_input("dry-run") is False
    assert runner.bool_input("dry-run", default=True) is True


# --- outputs -----------------------------------------------------------------------------------
ODD_VALUES = {
    "plain": "1.4.2",
    "multi-line": "first\nsecond\n\nfourth",
    "trailing-newline": "value\n",
    "only-newline": "\n",
    "equals": "a=b==c",
    "heredoc-like": "x<<EOF",
    "unicode": "ünïcødé ✓ 🚀 日本",
    "empty": "",
    "crlf": "windows\r\nline\r",
    "looks-like-delimiter": "ghadelimiter_00000000-0000-4000-8000-000000000000",
    "eof": "EOF\nEOF",
}


def test_outputs_round_trip_through_the_runner_parser(env):
    runner, out = make(env)
    for name, value in ODD_VALUES.items():
        runner.set_output(name, value)
    assert outputs(env) == ODD_VALUES
    assert out.getvalue() == ""


def test_each_output_gets_a_fresh_delimiter(env):
    runner, _ = make(env)
    runner.set_output("a", "1")
    runner.set_output("b", "2")
    text = Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8")
    headers = [line for line in text.splitlines() if "<<" in line]
    delimiters = {line.split("<<", 1)[1] for line in headers}
    assert len(delimiters) == 2
    assert all(d.startswith("ghadelimiter_") for d in delimiters)


def test_output_injection_through_the_delimiter_is_rejected(env):
    runner, _ = make(env, new_token=lambda: "fixed")
    value = "1.0\nghadelimiter_fixed\nversion=attacker"
    with pytest.raises(RunnerError, match="delimiter"):
        runner.set_output("version", value)
    with pytest.raises(RunnerError):
        runner.set_output("ghadelimiter_fixed", "1")
    assert outputs(env) == {}


@pytest.mark.parametrize("name", ["", "a=b", "a<<b", "a\nb", "1abc", "a b"])
def test_output_names_that_would_corrupt_the_file_are_rejected(env, name):
    runner, _ = make(env)
    with pytest.raises(RunnerError, match="output name"):
        runner.set_output(name, "x")
    assert outputs(env) == {}


def test_missing_github_output_is_an_error(env):
    del env["GITHUB_OUTPUT"]
    runner, _ = make(env)
    with pytest.raises(RunnerError, match="GITHUB_OUTPUT") as info:
        runner.set_output("version", "1.4.2")
    assert "1.4.2" not in info.value.diagnostics()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just a line\n", "Invalid format"),
        ("=value\n", "Name must not be empty"),
        ("<<EOF\nx\nEOF\n", "delimiter must not be empty"),
        ("v<<EOF\nx\n", "Matching delimiter not found"),
        ("v<<EOF\nx", "EOF marker missing new line"),
    ],
)
def test_parser_rejects_what_the_runner_rejects(text, message):
    with pytest.raises(FileCommandError, match=message):
        parse_file_command(text)


def test_parser_reads_both_file_command_forms():
    text = "a=1\n\nb<<EOF\nx\ny\nEOF\nc<<EOF\nEOF"
    assert parse_file_command(text) == {"a": "1", "b": "x\ny", "c": ""}


# --- masking -----------------------------------------------------------------------------------
def test_multi_line_secret_is_masked_whole_and_line_by_line(env):
    runner, out = make(env)
    runner.add_mask(PEM)
    masked = [c.data for c in commands(out) if c.name == "add-mask"]
    assert PEM in masked
    assert all(line in masked for line in PEM.splitlines())
    assert "" not in masked
    assert all(m.strip() for m in masked)


@pytest.mark.parametrize("value", ["", "   ", "\n\n", "\r\n \n"])
def test_empty_values_are_never_masked(env, value):
    runner, out = make(env)
    runner.add_mask(value)
    assert out.getvalue() == ""
    assert runner.redact("a b\n") == "a b\n"


def test_masking_twice_emits_once(env):
    runner, out = make(env)
    runner.add_mask("token-123")
    runner.add_mask("token-123")
    assert out.getvalue() == "::add-mask::token-123\n"


def test_redact_covers_the_whole_secret_and_each_line(env):
    runner, _ = make(env)
    runner.add_mask(PEM)
    assert PEM.splitlines()[1] not in runner.redact(f"key was {PEM}")
    assert runner.redact(f"bad line: {SECRET_LINE}!") == "bad line: ***!"


def test_masked_values_never_reach_the_log_or_summary(env):
    runner, out = make(env)
    runner.add_mask(PEM)
    runner.add_mask("s3cr3t-token")
    leak = f"token s3cr3t-token, key {SECRET_LINE}"
    runner.error(leak, title=leak, file=f"/{SECRET_LINE}.pem", line=3)
    runner.warning(leak)
    runner.notice(leak)
    runner.debug(leak)
    runner.info(leak)
    with runner.group(leak):
        pass
    assert runner.append_summary(f"## Failure\n{leak}\n```\n{PEM}```")
    after_masks = out.getvalue().split("::add-mask::s3cr3t-token\n", 1)[1]
    for secret in ("s3cr3t-token", SECRET_LINE, "OF/2NxApJCz"):
        assert secret not in after_masks
        assert secret not in runner.summary_text()
    error = next(c for c in commands(out) if c.name == "error")
    assert error.data == "token ***, key ***"
    assert error.properties["file"] == "/***.pem"


def test_the_runner_learns_every_mask_we_redact(env):
    runner, out = make(env)
    runner.add_mask(PEM)
    assert masks_from_log(out.getvalue()) >= set(filter(None, PEM.splitlines()))


# --- workflow commands -------------------------------------------------------------------------
TRICKY = "100% done\r\nnext: a,b %0A literal %25 and ::error::fake"


def test_annotation_text_and_properties_round_trip(env):
    runner, out = make(env)
    runner.error(TRICKY, title=TRICKY, file="web/a,b:c.js", line=3, end_line=4, col=1, end_column=9)
    [line] = out.getvalue().splitlines()
    command = parse_command(line)
    assert command == Command(
        "error",
        TRICKY,
        {
            "title": TRICKY,
            "file": "web/a,b:c.js",
            "line": "3",
            "endLine": "4",
            "col": "1",
            "endColumn": "9",
        },
    )


def test_properties_that_are_none_are_left_out(env):
    runner, out = make(env)
    runner.warning("careful", title=None, file="app.js", line=None)
    runner.notice("hello")
    runner.error("bad", title="")
    assert out.getvalue().splitlines() == [
        "::warning file=app.js::careful",
        "::notice::hello",
        "::error::bad",
    ]


def test_group_wraps_lines_and_closes_on_error(env):
    runner, out = make(env)

    def publish() -> None:
        with runner.group("Publishing"):
            runner.info("inside")
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        publish()
    assert parse_log(out.getvalue()) == [
        Command("group", "Publishing"),
        "inside",
        Command("endgroup", ""),
    ]


def test_untrusted_text_inside_stop_commands_is_not_processed(env):
    runner, out = make(env)
    untrusted = "PR title ::add-mask::x\n::error::injected\n::set-env name=X::y"
    with runner.stop_commands():
        runner.info(untrusted)
    runner.warning("after")
    log = parse_log(out.getvalue())
    processed = [e.name for e in log if isinstance(e, Command)]
    assert processed == ["stop-commands", "warning"]
    assert untrusted.splitlines() == [e for e in log if isinstance(e, str)]


def test_a_mask_cannot_garble_the_resume_token(env):
    runner, out = make(env, new_token=lambda: "resume-token-1")
    runner.add_mask("token")
    with runner.stop_commands():
        runner.info("::error::injected")
    runner.warning("after")
    processed = [e.name for e in parse_log(out.getvalue()) if isinstance(e, Command)]
    assert processed == ["add-mask", "stop-commands", "warning"]


def test_our_commands_inside_stop_commands_fail_instead_of_being_dropped(env):
    runner, out = make(env)
    with runner.stop_commands(), pytest.raises(RunnerError, match="stop_commands"):
        runner.add_mask("secret-value")
    assert "secret-value" not in out.getvalue()
    runner.add_mask("secret-value")
    assert "::add-mask::secret-value" in out.getvalue()


def test_no_deprecated_or_disabled_commands_are_ever_written(env):
    runner, out = make(env)
    runner.set_output("version", "1")
    runner.add_mask("x-secret")
    runner.error("e", title="t")
    with runner.group("g"), runner.stop_commands():
        runner.info("text")
    runner.append_summary("# hi")
    for command in ("::set-output", "::save-state", "::set-env", "::add-path"):
        assert command not in out.getvalue()


# --- step summary ------------------------------------------------------------------------------
def test_summary_is_appended(env):
    runner, _ = make(env)
    assert runner.append_summary("# Published 1.4.2")
    assert runner.append_summary("| a | b |\n")
    assert runner.summary_text() == "# Published 1.4.2\n| a | b |\n"


def test_summary_never_exceeds_the_runner_limit(env):
    runner, _ = make(env)
    assert runner.append_summary("x" * (SUMMARY_LIMIT - 1000))
    assert runner.append_summary("é" * 5000)
    data = Path(env["GITHUB_STEP_SUMMARY"]).read_bytes()
    assert len(data) <= SUMMARY_LIMIT
    text = data.decode("utf-8")
    assert "summary truncated" in text
    assert not runner.append_summary("more")
    assert len(Path(env["GITHUB_STEP_SUMMARY"]).read_bytes()) <= SUMMARY_LIMIT


def test_summary_that_fits_exactly_is_not_truncated(env):
    runner, _ = make(env)
    assert runner.append_summary("y" * (SUMMARY_LIMIT - 1))
    assert "truncated" not in runner.summary_text()


def test_summary_outside_actions_is_skipped(env):
    del env["GITHUB_STEP_SUMMARY"]
    runner, _ = make(env)
    assert not runner.append_summary("# hi")
    assert runner.summary_text() == ""


# --- context -----------------------------------------------------------------------------------
def test_event_payload_and_context(env, tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "closed", "number": 7}), encoding="utf-8")
    env |= {
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_SHA": "a" * 40,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REPOSITORY": "org/app",
        "GITHUB_RUN_ID": "42",
        "GITHUB_SERVER_URL": "https://ghe.example/",
        "GITHUB_API_URL": "https://ghe.example/api/v3",
    }
    runner, _ = make(env)
    assert runner.event() == {"action": "closed", "number": 7}
    assert (runner.event_name, runner.sha, runner.ref) == (
        "pull_request",
        "a" * 40,
        env["GITHUB_REF"],
    )
    assert (runner.repository, runner.run_id) == ("org/app", "42")
    assert runner.api_url == "https://ghe.example/api/v3"
    assert runner.run_url == "https://ghe.example/org/app/actions/runs/42"


def test_context_defaults_outside_actions():
    runner, _ = make({})
    assert runner.event() == {}
    assert runner.api_url == "https://api.github.com"
    assert runner.server_url == "https://github.com"
    assert runner.run_url is None


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", None])
def test_unreadable_event_payload_is_an_error(tmp_path, content):
    event = tmp_path / "event.json"
    if content is not None:
        event.write_text(content, encoding="utf-8")
    runner, _ = make({"GITHUB_EVENT_PATH": str(event)})
    with pytest.raises(RunnerError, match="event payload"):
        runner.event()


def test_defaults_are_the_process_environment_and_stdout(monkeypatch, capsys):
    monkeypatch.setenv("INPUT_CHANNEL", "production")
    runner = Runner()
    assert runner.input("channel") == "production"
    runner.notice("hi")
    assert capsys.readouterr().out == "::notice::hi\n"
