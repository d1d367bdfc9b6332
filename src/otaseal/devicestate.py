"""The device's own record of what it trusts (SPEC §11), read strictly and written atomically.

The state is the device's, not the store's: a damaged one is an :class:`InputError` (exit 2)
naming the file, and the check stops before contacting the store. Nothing in it is trusted
blindly: the root it holds is checked against itself again on every load (§6.2).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otaseal import jsonread
from otaseal.errors import InputError
from otaseal.model import NAME_RE, SHA256_RE

STATE_FILE = "state.json"
#: Largest state file read: a 512 KiB root in base64 plus the channels' records, with room.
STATE_MAX_BYTES = 4 * 1024 * 1024


_UNSET = object()


@dataclass
class DeviceState:
    """Root envelope bytes, per channel: accepted manifest version, install, and native build.

    ``installed`` maps a channel to ``{"sha256", "label", "counter"}`` of the release it runs.
    ``natives`` records the native build each channel's release was last selected for: when the
    app store ships another native build, the channel is evaluated again (SPEC §10 step 11).
    """

    root: bytes
    versions: dict[str, int] = field(default_factory=dict)
    installed: dict[str, dict[str, Any]] = field(default_factory=dict)
    natives: dict[str, int | None] = field(default_factory=dict)

    def selected_for(self, channel: str, native: int | None) -> bool:
        """Whether ``channel`` was last evaluated for this very native build."""
        return self.natives.get(channel, _UNSET) == native

    @classmethod
    def load(cls, state_dir: Path, initial_root: bytes | None) -> DeviceState:
        """State from ``state_dir``, or a fresh one anchored at ``initial_root``."""
        path = state_dir / STATE_FILE
        try:
            info = path.stat()
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise _damaged(path, f"it cannot be read ({exc.strerror})") from None
        if info is None:
            if initial_root is None:
                raise InputError(
                    f"no trusted root in {state_dir}",
                    fix="pass --root ROOT_JSON (the root.json shipped with the app) on the first "
                    "fetch",
                )
            return cls(initial_root)
        if not stat.S_ISREG(info.st_mode):
            raise _damaged(path, "it is not a regular file")
        try:
            with path.open("rb") as handle:
                data = handle.read(STATE_MAX_BYTES + 1)
        except OSError as exc:
            raise _damaged(path, f"it cannot be read ({exc.strerror})") from None
        if len(data) > STATE_MAX_BYTES:
            raise _damaged(path, f"it is larger than {STATE_MAX_BYTES} bytes")
        try:
            doc = jsonread.loads(data)
        except jsonread.JsonError as exc:
            raise _damaged(path, exc.detail) from None
        return _parse(doc, path)

    def save(self, state_dir: Path) -> None:
        """Write atomically: temp file in the same folder, fsync, rename over the old one."""
        doc = {
            "root": base64.b64encode(self.root).decode(),
            "versions": self.versions,
            "installed": self.installed,
            "native": self.natives,
        }
        temp: str | None = None
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=state_dir, prefix=".state-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(doc, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            Path(temp).replace(state_dir / STATE_FILE)
        except OSError as exc:
            if temp is not None:
                Path(temp).unlink(missing_ok=True)
            raise InputError(
                f"cannot write the device state in {state_dir} ({exc.strerror})",
                expected="a writable state directory",
                fix="check --state, its permissions and free space; the old state is unchanged",
            ) from None


def _parse(doc: object, path: Path) -> DeviceState:
    if not isinstance(doc, dict):
        raise _damaged(path, "it is not a JSON object")
    root = jsonread.decode_base64(doc.get("root"))
    if not root:
        raise _damaged(path, '"root" is not a base64 root envelope')
    versions = _channel_map(doc.get("versions"), path, "versions")
    installed = _channel_map(doc.get("installed"), path, "installed")
    natives = _channel_map(doc.get("native", {}), path, "native")
    state = DeviceState(root)
    for channel, value in versions.items():
        number = jsonread.integer(value)
        if number is None:
            raise _damaged(path, f'"versions.{channel}" is not an integer from 0 to 2^53−1')
        state.versions[channel] = number
    for channel, value in installed.items():
        state.installed[channel] = _installed(value, path, channel)
    for channel, value in natives.items():
        number = None if value is None else jsonread.integer(value)
        if value is not None and number is None:
            raise _damaged(path, f'"native.{channel}" is not null or an integer from 0 to 2^53−1')
        state.natives[channel] = number
    return state


def _channel_map(value: object, path: Path, name: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _damaged(path, f'"{name}" is not an object')
    for channel in value:
        if not NAME_RE.fullmatch(channel):
            raise _damaged(path, f'"{name}" has a key {channel[:64]!r} that is no channel name')
    return value


def _installed(value: object, path: Path, channel: str) -> dict[str, Any]:
    if isinstance(value, dict):
        sha, label, counter = value.get("sha256"), value.get("label"), value.get("counter")
        number = jsonread.integer(counter)
        if (
            isinstance(sha, str)
            and SHA256_RE.fullmatch(sha)
            and isinstance(label, str)
            and number is not None
        ):
            return {"sha256": sha, "label": label, "counter": number}
    raise _damaged(
        path,
        f'"installed.{channel}" is not {{"sha256": 64 hex digits, "label": a string, '
        '"counter": an integer}',
    )


def _damaged(path: Path, detail: str) -> InputError:
    return InputError(
        f"the device state {path} is damaged: {detail}",
        expected="the state.json this client wrote (SPEC §11)",
        fix="remove the state directory and fetch again with --root; the device then trusts "
        "the root shipped with the app and installs the channel's release again",
    )
