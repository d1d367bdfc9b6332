"""Plumbing shared by the fuzz targets: the error contract, input slicing and the test keys.

A target's contract: whatever bytes it is given, only :class:`otaseal.errors.Error` may escape.
Any other exception is a finding (atheris writes the input to a ``crash-*`` file), and so is a
hang (libFuzzer's ``-timeout``) or memory over the ``-rss_limit_mb`` cap. Inputs are sliced by
:class:`Input` rather than atheris's data provider, so the crash corpus replays without atheris.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
#: Modules whose code coverage guides every target (more are added per target).
INSTRUMENTED = ("otaseal",)


class Input:
    """A fuzz input read front to back; reads past the end give zeros and empty bytes."""

    __slots__ = ("_at", "_data")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def int(self, size: int) -> int:
        """The next ``size`` bytes as a big-endian unsigned integer."""
        return int.from_bytes(self.bytes(size).ljust(size, b"\0"))

    def bytes(self, size: int) -> bytes:
        """Up to ``size`` bytes."""
        piece = self._data[self._at : self._at + size]
        self._at += len(piece)
        return piece

    def chunk(self) -> bytes:
        """A piece prefixed by its two-byte length."""
        return self.bytes(self.int(2))

    def rest(self) -> bytes:
        """Everything not read yet."""
        piece = self._data[self._at :]
        self._at = len(self._data)
        return piece


_SCRATCH: list[Path] = []


def scratch() -> Path:
    """A folder for the target's files: ``$OTASEAL_FUZZ_SCRATCH``, else a temporary one.

    ``make fuzz`` and the tests make and remove the folder they pass, since libFuzzer exits
    without Python's clean-up.
    """
    if not _SCRATCH:
        given = os.environ.get("OTASEAL_FUZZ_SCRATCH")
        if given:
            _SCRATCH.append(Path(given))
        else:
            _SCRATCH.append(Path(tempfile.mkdtemp(prefix="otaseal-fuzz-")))
            atexit.register(shutil.rmtree, _SCRATCH[0], ignore_errors=True)
    return _SCRATCH[0]


def vector_scalar(label: str) -> int:
    """The golden vectors' TEST private scalar for ``label`` (published in tests/vectors)."""
    return int.from_bytes(hashlib.sha256(b"otaseal test vector key: " + label.encode()).digest())


def checked(target: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """``target`` with otaseal's errors swallowed: everything else escapes as a finding."""

    def one_input(data: bytes) -> None:
        from otaseal.errors import Error

        with contextlib.suppress(Error):
            target(data)

    return one_input


@contextlib.contextmanager
def instrumented(*, fuzzing: bool, extra: Sequence[str] = ()) -> Iterator[None]:
    """Under atheris, instrument the modules imported inside (coverage feedback)."""
    if not fuzzing:
        yield
        return
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install -e '.[dev]' (see fuzz/README.md)")
    with atheris.instrument_imports(include=[*INSTRUMENTED, *extra]):
        yield


def fuzz(target: Callable[[bytes], None]) -> None:
    """Run ``target`` under atheris with libFuzzer's command line (``sys.argv``)."""
    import atheris

    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Setup(sys.argv, checked(target))
    atheris.Fuzz()


def replay(target: Callable[[bytes], None], paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """Run each file once through the contract; return the ones that broke it, with the error."""
    one_input = checked(target)
    broken: list[tuple[Path, str]] = []
    for path in paths:
        try:
            one_input(path.read_bytes())
        except Exception as exc:  # noqa: BLE001 - every other exception is the finding
            broken.append((path, f"{type(exc).__name__}: {exc}"))
    return broken
