"""The GitHub Actions runner protocol: inputs, outputs, masks, annotations and the step summary.

Our own small module rather than actions-toolkit (docs/adr/0002-own-runner-protocol.md). It uses
only the file commands and the workflow commands the runner still accepts, and it redacts every
masked value from whatever it prints or puts in the summary, so a derived secret stays out of the
log even before the runner's own masker sees it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from otaseal.errors import Error, InputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import TextIO

SUMMARY_LIMIT = 1024 * 1024
"""The runner refuses a step summary above 1 MiB instead of cutting it."""

_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TRUNCATED = "\n\n> **summary truncated**: GitHub accepts at most 1 MiB of step summary.\n"
_PROPERTIES = (
    ("title", "title"),
    ("file", "file"),
    ("line", "line"),
    ("end_line", "endLine"),
    ("col", "col"),
    ("end_column", "endColumn"),
)


class RunnerError(Error):
    """The runner environment lacks what the action needs, or a command would corrupt it."""


class Where(TypedDict, total=False):
    """Where an annotation points; ``None`` leaves a property out."""

    title: str | None
    file: str | None
    line: int | None
    end_line: int | None
    col: int | None
    end_column: int | None


def escape_data(text: str) -> str:
    """Escape the data part of a workflow command so it stays on one line."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value, which also may not contain the ``:`` and ``,`` separators."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _random_token() -> str:
    return str(uuid.uuid4())


class Runner:
    """The runner as seen from inside the action: an environment and a log stream."""

    __slots__ = ("_env", "_masks", "_new_token", "_out", "_pattern", "_stopped")

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        out: TextIO | None = None,
        *,
        new_token: Callable[[], str] = _random_token,
    ) -> None:
        self._env = os.environ if env is None else env
        self._out = sys.stdout if out is None else out
        self._new_token = new_token
        self._masks: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._stopped = False

    # --- inputs ---------------------------------------------------------------------------------
    def input(self, name: str, *, default: str = "", required: bool = False) -> str:
        """An input as the runner exports it (``build-dir`` → ``INPUT_BUILD-DIR``), trimmed.

        The runner exports every declared input, possibly empty, so empty means "not given"; it
        never enforces ``required``, so we do.
        """
        value = self._env.get("INPUT_" + name.replace(" ", "_").upper(), "").strip()
        if value:
            return value
        if required:
            raise InputError(
                f"the input '{name}' is empty",
                expected="a value",
                fix=f"set `{name}:` under `with:` in the workflow step",
            )
        return default

    def bool_input(self, name: str, *, default: bool = False) -> bool:
        """A boolean input, spelled as YAML 1.2 core spells booleans."""
        value = self.input(name)
        if not value:
            return default
        if value in _TRUE or value in _FALSE:
            return value in _TRUE
        raise InputError(
            f"the input '{name}' is {value!r}, which is not a boolean",
            expected="one of true, True, TRUE, false, False, FALSE",
            fix=f"write `{name}: 'true'` or `{name}: 'false'`",
        )

    # --- outputs --------------------------------------------------------------------------------
    def set_output(self, name: str, value: str) -> None:
        """Append an output to ``$GITHUB_OUTPUT`` as a heredoc with a fresh random delimiter."""
        delimiter = "ghadelimiter_" + self._new_token()
        if not _OUTPUT_NAME.fullmatch(name) or delimiter in name:
            raise RunnerError(
                f"the output name {name!r} is not valid",
                expected="letters, digits, '_' and '-', starting with a letter or '_'",
            )
        if delimiter in value:
            raise RunnerError(
                f"the value of output '{name}' contains the heredoc delimiter {delimiter}",
                expected="a value that cannot end the heredoc early",
            )
        path = self._env.get("GITHUB_OUTPUT", "")
        if not path:
            raise RunnerError(
                f"GITHUB_OUTPUT is not set, so the output '{name}' cannot be written",
                expected="the path of the runner's output file in GITHUB_OUTPUT",
                fix="run inside GitHub Actions, or set GITHUB_OUTPUT to a file when testing",
            )
        with Path(path).open("a", encoding="utf-8", newline="") as file:
            file.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")

    # --- masking --------------------------------------------------------------------------------
    def add_mask(self, value: str) -> None:
        """Mask a derived secret in the log, whole and line by line (a PEM spans many lines)."""
        lines = [line.strip() for line in value.splitlines()]
        for piece in dict.fromkeys([value, value.strip(), *lines]):
            if piece.strip() and piece not in self._masks:
                self._command("add-mask", piece, raw=True)
                self._masks.add(piece)
        if self._masks:
            longest_first = sorted(self._masks, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, longest_first)))

    def redact(self, text: str) -> str:
        """Replace every masked value, and each line of one, with ``***``."""
        return text if self._pattern is None else self._pattern.sub("***", text)

    # --- log ------------------------------------------------------------------------------------
    def info(self, message: str) -> None:
        """Print a plain log line; untrusted text belongs inside :meth:`stop_commands`."""
        self._out.write(self.redact(message) + "\n")
        self._out.flush()

    def debug(self, message: str) -> None:
        """A line shown only when step debug logging is on."""
        self._command("debug", message)

    def notice(self, message: str, **where: Unpack[Where]) -> None:
        """A notice annotation."""
        self._command("notice", message, where)

    def warning(self, message: str, **where: Unpack[Where]) -> None:
        """A warning annotation."""
        self._command("warning", message, where)

    def error(self, message: str, **where: Unpack[Where]) -> None:
        """An error annotation; it does not fail the step by itself."""
        self._command("error", message, where)

    @contextlib.contextmanager
    def group(self, title: str) -> Iterator[None]:
        """Fold the lines printed inside the block under ``title``."""
        self._command("group", title)
        try:
            yield
        finally:
            self._command("endgroup", "")

    @contextlib.contextmanager
    def stop_commands(self) -> Iterator[None]:
        """Echo untrusted text inside the block: the runner ignores commands until it ends.

        Our own commands raise inside the block, because the runner would silently drop them
        (a dropped ``add-mask`` leaks a secret).
        """
        token = self._new_token()
        self._command("stop-commands", token, raw=True)
        self._stopped = True
        try:
            yield
        finally:
            self._stopped = False
            self._command(token, "")

    def _command(
        self,
        command: str,
        data: str,
        where: Mapping[str, object] | None = None,
        *,
        raw: bool = False,
    ) -> None:
        if self._stopped:
            raise RunnerError(
                f"the workflow command '{command}' was issued inside stop_commands()",
                expected="commands only outside the block, where the runner processes them",
            )
        scrub = (lambda text: text) if raw else self.redact
        given = where or {}
        props = ",".join(
            f"{wire}={escape_property(scrub(str(given.get(key))))}"
            for key, wire in _PROPERTIES
            if given.get(key) not in (None, "")
        )
        self._out.write(f"::{command}{' ' + props if props else ''}::{escape_data(scrub(data))}\n")
        self._out.flush()

    # --- step summary ---------------------------------------------------------------------------
    def append_summary(self, markdown: str) -> bool:
        """Append redacted markdown to the step summary, cut to fit 1 MiB; False if not written."""
        path = self._env.get("GITHUB_STEP_SUMMARY", "")
        if not path:
            return False
        target = Path(path)
        text = self.redact(markdown)
        text += "" if text.endswith("\n") else "\n"
        used = target.stat().st_size if target.exists() else 0
        data = text.encode()
        if used + len(data) > SUMMARY_LIMIT:
            room = SUMMARY_LIMIT - used - len(_TRUNCATED.encode())
            if room < 0:
                return False
            text = data[:room].decode(errors="ignore") + _TRUNCATED
        with target.open("a", encoding="utf-8", newline="") as file:
            file.write(text)
        return True

    def summary_text(self) -> str:
        """The step summary written so far (empty outside Actions)."""
        path = self._env.get("GITHUB_STEP_SUMMARY", "")
        return Path(path).read_text(encoding="utf-8") if path and Path(path).exists() else ""

    # --- context --------------------------------------------------------------------------------
    def event(self) -> dict[str, Any]:
        """The webhook payload that triggered the run, or ``{}`` outside Actions."""
        path = self._env.get("GITHUB_EVENT_PATH", "")
        if not path:
            return {}
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunnerError(
                f"the event payload {path} cannot be read ({type(exc).__name__})",
                expected="the JSON file the runner names in GITHUB_EVENT_PATH",
            ) from exc
        if not isinstance(doc, dict):
            raise RunnerError(
                f"the event payload {path} is a JSON {type(doc).__name__}",
                expected="a JSON object",
            )
        return doc

    @property
    def event_name(self) -> str:
        """``push``, ``pull_request``, ``workflow_dispatch``, ..."""
        return self._env.get("GITHUB_EVENT_NAME", "")

    @property
    def sha(self) -> str:
        """The commit the run is for."""
        return self._env.get("GITHUB_SHA", "")

    @property
    def ref(self) -> str:
        """The branch or tag ref the run is for."""
        return self._env.get("GITHUB_REF", "")

    @property
    def repository(self) -> str:
        """``owner/name``."""
        return self._env.get("GITHUB_REPOSITORY", "")

    @property
    def run_id(self) -> str:
        """The workflow run's id."""
        return self._env.get("GITHUB_RUN_ID", "")

    @property
    def server_url(self) -> str:
        """The web base URL (GHES aware)."""
        return (self._env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")

    @property
    def api_url(self) -> str:
        """The REST base URL; use it rather than a hard-coded one so GHES works."""
        return (self._env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")

    @property
    def run_url(self) -> str | None:
        """The link to this run's log, or None outside Actions."""
        if not (self.repository and self.run_id):
            return None
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"
