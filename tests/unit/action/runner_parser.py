"""What the GitHub Actions runner does with our output, ported from actions/runner for tests.

- ``parse_file_command``: ``FileCommandManager.EnvFileKeyValuePairs`` (GITHUB_OUTPUT, GITHUB_ENV,
  GITHUB_STATE), Linux line endings.
- ``parse_command`` / ``parse_log``: ``ActionCommand.TryParseV2`` and the stop-commands handling of
  ``ActionCommandManager``, with the runner's (sequential) unescaping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_DATA_ESCAPES = (("\r", "%0D"), ("\n", "%0A"), ("%", "%25"))
_PROPERTY_ESCAPES = (("\r", "%0D"), ("\n", "%0A"), (":", "%3A"), (",", "%2C"), ("%", "%25"))


class FileCommandError(Exception):
    """The runner fails the step with this message."""


def _read_line(text: str, index: int) -> tuple[str | None, str | None, int]:
    """(line, newline, next index); line is None at end of text, newline None on a last line."""
    if index >= len(text):
        return None, None, index
    lf = text.find("\n", index)
    if lf < 0:
        return text[index:], None, len(text)
    return text[index:lf], "\n", lf + 1


def parse_file_command(text: str) -> dict[str, str]:
    """Parse a file-command file exactly as the runner does (later names win)."""
    result: dict[str, str] = {}
    line, _, index = _read_line(text, 0)
    while line is not None:
        if line:
            equals, heredoc = line.find("="), line.find("<<")
            if equals >= 0 and (heredoc < 0 or equals < heredoc):
                key, value = line.split("=", 1)
                if not key:
                    raise FileCommandError(f"Invalid format '{line}'. Name must not be empty")
                result[key] = value
            elif heredoc >= 0 and (equals < 0 or heredoc < equals):
                key, delimiter = line.split("<<", 1)
                if not key or not delimiter:
                    raise FileCommandError(
                        f"Invalid format '{line}'. Name must not be empty and delimiter must "
                        "not be empty"
                    )
                start = end = index
                temp, newline, index = _read_line(text, index)
                while temp != delimiter:
                    if temp is None:
                        raise FileCommandError(
                            f"Invalid value. Matching delimiter not found '{delimiter}'"
                        )
                    if newline is None:
                        raise FileCommandError("Invalid value. EOF marker missing new line.")
                    end = index - len(newline)
                    temp, newline, index = _read_line(text, index)
                result[key] = text[start:end] if end > start else ""
            else:
                raise FileCommandError(f"Invalid format '{line}'")
        line, _, index = _read_line(text, index)
    return result


def _unescape(text: str, mappings: tuple[tuple[str, str], ...]) -> str:
    for token, replacement in mappings:
        text = text.replace(replacement, token)
    return text


@dataclass(frozen=True)
class Command:
    """One workflow command as the runner sees it."""

    name: str
    data: str
    properties: dict[str, str] = field(default_factory=dict)


def parse_command(line: str) -> Command | None:
    """``::name k=v,k=v::data`` → Command, or None when the runner would print the line as is."""
    message = line.lstrip()
    if not message.startswith("::"):
        return None
    end = message.find("::", 2)
    if end < 0:
        return None
    info = message[2:end]
    name, _, props = info.partition(" ")
    properties: dict[str, str] = {}
    for prop in filter(None, props.strip().split(",")):
        pair = [part for part in prop.split("=", 1) if part]
        if len(pair) == 2:
            properties[pair[0]] = _unescape(pair[1], _PROPERTY_ESCAPES)
    return Command(name, _unescape(message[end + 2 :], _DATA_ESCAPES), properties)


def parse_log(text: str) -> list[Command | str]:
    """Commands the runner would process and lines it would print, honouring stop-commands."""
    result: list[Command | str] = []
    stop_token: str | None = None
    for line in text.splitlines():
        command = parse_command(line)
        if stop_token is not None:
            if command is not None and command.name.lower() == stop_token.lower():
                stop_token = None
            else:
                result.append(line)
            continue
        if command is None:
            result.append(line)
            continue
        if command.name == "stop-commands":
            stop_token = command.data
        result.append(command)
    return result


def masks_from_log(text: str) -> set[str]:
    """Every value the runner's secret masker would know after reading this log."""
    masks: set[str] = set()
    for entry in parse_log(text):
        if isinstance(entry, Command) and entry.name == "add-mask" and entry.data.strip():
            masks.add(entry.data)
            masks.update(line for line in entry.data.splitlines() if line.strip())
    return masks
