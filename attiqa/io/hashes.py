"""A file's SHA-256, streamed: torch-free, so that what hashes a file before a model loads (an image's
content key, ``isp-tune``'s byte-identical raws) imports no torch (:mod:`attiqa.io.checkpoints` re-exports
it)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
