"""How long work tells a person it is moving: a callback seam and one terminal line.

The packer and the device client report to a :class:`Progress` they are given and never print;
only the CLI decides whether a person is watching (a terminal, no ``--json``) and passes a
:class:`TerminalProgress`. Everyone else gets :data:`NO_PROGRESS`. Callers report per batch of
files or per chunk (about a MiB), never per byte, so the hot loops stay as fast without it.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO


class Progress(Protocol):
    """Told what step runs and how much of it is done; may be called from several threads."""

    def start(self, step: str, *, files: int = 0, size: int = 0) -> None:
        """A step begins (``packing``, ``downloading``…) with its totals, 0 when unknown."""
        ...

    def advance(self, files: int, size: int) -> None:
        """``files`` more files and ``size`` more bytes of the current step are done."""
        ...


class _Silent:
    """The default: nobody is watching."""

    __slots__ = ()

    def start(self, step: str, *, files: int = 0, size: int = 0) -> None:
        """Ignore the step."""

    def advance(self, files: int, size: int) -> None:
        """Ignore the amount."""


NO_PROGRESS: Final[Progress] = _Silent()

_UNITS: Final = ("B", "KB", "MB", "GB", "TB")


def human_size(size: float) -> str:
    """Bytes for people in decimal units, e.g. ``1.5 GB``."""
    for unit in _UNITS[:-1]:
        if abs(size) < 1000:  # noqa: PLR2004 - decimal units
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} {_UNITS[-1]}"


class TerminalProgress:
    """One line on a terminal, rewritten in place (carriage return) at most 4 times a second.

    Nothing shows before ``delay`` seconds, so quick commands print no progress at all;
    :meth:`close` blanks the line so the command's result starts on a clean one. Plain text
    only: no colour or cursor codes.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.25,
        delay: float = 0.5,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        self._began = clock()
        self._next = self._began + delay
        self._step = ""
        self._totals = (0, 0)
        self._files = 0
        self._size = 0
        self._step_began = self._began
        self._width = 0

    def start(self, step: str, *, files: int = 0, size: int = 0) -> None:
        """Switch the line to ``step``; its counts start at zero."""
        with self._lock:
            self._step, self._totals = step, (files, size)
            self._files = self._size = 0
            now = self._step_began = self._clock()
            if self._width or now >= self._next:  # a step may run long without advancing
                self._draw(now)

    def advance(self, files: int, size: int) -> None:
        """Count, and redraw when the last drawing is old enough."""
        with self._lock:
            self._files += files
            self._size += size
            now = self._clock()
            if now >= self._next:
                self._draw(now)

    def close(self) -> None:
        """Blank the line if anything was drawn."""
        with self._lock:
            if self._width:
                self._stream.write("\r" + " " * self._width + "\r")
                self._stream.flush()
                self._width = 0

    def line(self, now: float) -> str:
        """The text shown at ``now``: step, files, bytes and rate."""
        total_files, total_size = self._totals
        parts = [f"{self._step}…"]
        if self._files or total_files:
            parts.append(
                f"{self._files:,}" + (f"/{total_files:,}" if total_files else "") + " files"
            )
        if self._size or total_size:
            shown = human_size(self._size) + (f" of {human_size(total_size)}" if total_size else "")
            elapsed = now - self._step_began
            rate = f", {human_size(self._size / elapsed)}/s" if elapsed > 0 else ""
            parts.append(shown + rate)
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        text = self.line(now)
        pad = max(0, self._width - len(text))
        self._stream.write("\r" + text + " " * pad)
        self._stream.flush()
        self._width = len(text)
        self._next = now + self._interval
