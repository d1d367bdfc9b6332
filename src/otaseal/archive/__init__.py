"""The plaintext bundle: a deterministic zip of a web build, its file index, hygiene, extraction.

Same files in, same bytes out, whatever the mtimes, modes, listing order or worker count: that is
what makes a no-op release detectable and a build reproducible. Extraction treats the zip as
hostile even after its digest was verified. This package is the reference implementation of
SPEC §14; its modules are one concept each:

- :mod:`~otaseal.archive.paths`: the name rules pack, extract and deltas share;
- :mod:`~otaseal.archive.index`: the file index stored as the zip's first entry;
- :mod:`~otaseal.archive.hygiene`: what pack refuses or warns about;
- :mod:`~otaseal.archive.packing`: the deterministic zip writer;
- :mod:`~otaseal.archive.extraction`: reading the central directory and safe extraction;
- :mod:`~otaseal.archive.zipfmt`: the zip container's fixed values;
- :mod:`~otaseal.archive.workers`: thread count and in-order work for both sides.
"""

from __future__ import annotations

from otaseal.archive.extraction import extract
from otaseal.archive.index import (
    INDEX_PATH,
    INDEX_VERSION,
    MAX_INDEX_SIZE,
    FileEntry,
    Index,
    IndexDiff,
)
from otaseal.archive.packing import CHUNK_SIZE, COMPRESSION_LEVEL, PackResult, pack
from otaseal.archive.paths import path_problem

__all__ = [
    "CHUNK_SIZE",
    "COMPRESSION_LEVEL",
    "INDEX_PATH",
    "INDEX_VERSION",
    "MAX_INDEX_SIZE",
    "FileEntry",
    "Index",
    "IndexDiff",
    "PackResult",
    "extract",
    "pack",
    "path_problem",
]
