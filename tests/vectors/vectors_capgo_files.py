"""Golden vectors for Capgo manifest mode (SPEC §17.1): filled in by the capgo-files work."""

from __future__ import annotations

from typing import Any


def generate(ctx: Any) -> dict[str, bytes]:  # noqa: ANN401 - the generator's context
    """Vector files by name (relative to tests/vectors/)."""
    del ctx
    return {}
