"""Fuzz target: the ``.cub`` reader (``read_header``, ``open_sealed``) on attacker-chosen bytes.

Input: three bytes of ``max_plaintext`` (the signed plaintext length), one byte of read size (a
stream that returns at most that many bytes per read, as sockets and pipes do; 0: whole reads),
then the ``.cub`` bytes. The
seeds are small bundles sealed to the golden vectors' app decryption key, so mutations after the
header still unwrap the content key and reach segment authentication, the segment count, the
final-segment rule and the plaintext cap.
"""

from __future__ import annotations

import io
import sys

import _harness

with _harness.instrumented(fuzzing=__name__ == "__main__"):
    from otaseal.crypto import decryption_key_from_scalar
    from otaseal.formats import sealed

KEY = decryption_key_from_scalar(_harness.vector_scalar("app-decryption"))


class _Trickle(io.BytesIO):
    """A stream whose reads return at most ``step`` bytes (short reads are legal)."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self._step = step

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0 or size > self._step:
            size = self._step
        return super().read(size)


def _stream(data: bytes, step: int) -> io.BytesIO:
    return _Trickle(data, step) if step else io.BytesIO(data)


class _Counter:
    """A sink that keeps only the count, so a long bundle costs no memory."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return len(data)


def target(data: bytes) -> None:
    """Parse the header, then open the whole bundle; check the plaintext cap held."""
    src = _harness.Input(data)
    max_plaintext = src.int(3)
    step = src.int(1)
    cub = src.rest()
    sealed.read_header(_stream(cub, step))
    sink = _Counter()
    _, length = sealed.open_sealed(_stream(cub, step), KEY, sink, max_plaintext=max_plaintext)
    if not length == sink.written <= max_plaintext:
        raise AssertionError(f"{sink.written} bytes out, {length} reported, cap {max_plaintext}")


if __name__ == "__main__":
    _harness.fuzz(target)
    sys.exit(0)
