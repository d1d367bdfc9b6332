"""Golden vectors for sealed deltas (SPEC §19): filled in by the delta work."""

from __future__ import annotations

from typing import Any


def generate(ctx: Any) -> dict[str, bytes]:  # noqa: ANN401 - the generator's context
    """Vector files by name (relative to tests/vectors/)."""
    del ctx
    return {}
