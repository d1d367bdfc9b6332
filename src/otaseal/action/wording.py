"""Errors in the Action's own words: CLI flags in a message become the step's ``with:`` inputs.

Operations raise one error for both interfaces and name options as the CLI spells them, in code
spans (```--rollout 10```, ```otaseal publish DIST --channel beta```). Shown by the Action, such a
hint would name a flag nobody can pass there, so :func:`for_action` rewrites each one to the
input that sets the same thing (``revert --to`` is the ``release`` input, ``rollout --percent``
the ``rollout`` input). Commands people run on their own machine (``otaseal keygen``,
``otaseal history``) stay as they are.
"""

from __future__ import annotations

import re
from typing import Final

# CLI flag -> Action input, for every command; per-command differences below.
_INPUTS: Final = {
    "--channel": "channel",
    "--from": "from",
    "--to": "to",
    "--release": "release",
    "--rollout": "rollout",
    "--percent": "rollout",
    "--label": "label",
    "--allow-file": "allow-file",
    "--native-min": "native-min",
    "--project-dir": "project-dir",
    "--store": "store",
    "--s3-endpoint": "s3-endpoint",
    "--config": "config",
    "--delta-from": "delta-from",
}
_PER_COMMAND: Final = {"revert": {"--to": "release"}}
_SWITCHES: Final = {
    "--pause": "rollout: pause",
    "--resume": "rollout: resume",
    "--replace-rollout": "replace-rollout: 'true'",
    "--accept-incompatible": "accept-incompatible: 'true'",
    "--no-delta": "delta-from: none",
}
_ACTION_COMMANDS: Final = frozenset({"publish", "promote", "rollout", "revert", "resign", "status"})
_POSITIONAL: Final = {"publish": "build-dir"}

_SPAN: Final = re.compile(r"`([^`\n]+)`")
_BARE_FLAG: Final = re.compile(r"(?<![\w`-])(--[a-z][a-z0-9-]*)(?![\w-])")
_PASS: Final = re.compile(r"\b([Pp])ass (?=`[a-z0-9-]+:)")


def _input(flag: str, command: str | None) -> str | None:
    """The Action input for a CLI flag of ``command``, or None when the Action has none."""
    return _PER_COMMAND.get(command or "", {}).get(flag) or _INPUTS.get(flag)


def _with(words: list[str], command: str | None, positional: str | None) -> list[str] | None:
    """``--flag VALUE`` pairs as ``input: VALUE`` code spans; None if one has no input."""
    out: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in _SWITCHES:
            out.append(f"`{_SWITCHES[word]}`")
            index += 1
            continue
        if not word.startswith("--"):
            if positional is None:
                return None
            out.append(f"`{positional}: {word}`")
            positional = None
            index += 1
            continue
        name = _input(word, command)
        if name is None:
            return None
        value = words[index + 1] if index + 1 < len(words) else ""
        if value.startswith("--"):
            value = ""
        out.append(f"`{name}: {value}`" if value else f"`{name}:`")
        index += 2 if value else 1
    return out


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _span(match: re.Match[str], command: str | None) -> str:
    words = match.group(1).split()
    if words[0] == "otaseal" and len(words) > 1 and words[1] in _ACTION_COMMANDS:
        verb = words[1]
        pairs = _with(words[2:], verb, _POSITIONAL.get(verb))
        if pairs is None:
            return match.group(0)
        return " with ".join(
            [f"`command: {verb}`", " and ".join(pairs)] if pairs else [f"`command: {verb}`"]
        )
    if words[0].startswith("--"):
        pairs = _with(words, command, None)
        if pairs is not None:
            return _listing(pairs)
    return match.group(0)


def _bare(match: re.Match[str], command: str | None) -> str:
    flag = match.group(1)
    if flag in _SWITCHES:
        return f"`{_SWITCHES[flag]}`"
    name = _input(flag, command)
    return f"`{name}:`" if name is not None else flag


def for_action(text: str, command: str | None) -> str:
    """``text`` with every CLI flag the Action has an input for written as that input."""
    parts: list[str] = []
    last = 0
    for match in _SPAN.finditer(text):
        parts.append(_BARE_FLAG.sub(lambda m: _bare(m, command), text[last : match.start()]))
        parts.append(_span(match, command))
        last = match.end()
    parts.append(_BARE_FLAG.sub(lambda m: _bare(m, command), text[last:]))
    return _PASS.sub(lambda m: "Set " if m.group(1) == "P" else "set ", "".join(parts))
