"""Torch-free checks of a file's bytes: its SHA-256, streamed, and whether a safetensors file is as long as
its header says — so that what checks a file before a model loads (an image's content key, ``isp-tune``'s
byte-identical raws, a named model's file) imports no torch; and :func:`record_digest`, the key of a cache
entry's inputs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_digest(record: object, arrays: Sequence[Any] = (), length: int = 64) -> str:
    """The one rule of "a cache entry answers only for its inputs": the SHA-256 of ``record`` (what the entry
    depends on, as JSON: keys sorted, other objects as their ``str``) and of ``arrays`` (each one's shape and
    float64 bytes), its first ``length`` hex digits. Eval's score cache keys its scorer so (32), the feature
    cache its view (12), isp-tune's caches their entries (16: ``isp_env.teacher.inputs_digest``); how each
    uses the key (an address, or a record compared) is in docs/architecture.md. The bytes hashed are the
    ones each of them hashed before this function: the keys on disk are unchanged."""
    h = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode())
    if arrays:
        import numpy as np  # only with arrays: the other callers stay light

        for a in arrays:
            b = np.ascontiguousarray(a, dtype=np.float64)
            h.update(repr(b.shape).encode() + b.tobytes())
    return h.hexdigest()[:length]


def safetensors_length_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be a whole safetensors file, from its header alone (8 bytes of length, the JSON
    table of tensors and their byte ranges) and its size — a file cut short, with bytes added, or a header
    without a tensor's byte range (it was an IndexError's traceback) — else None.
    A few kilobytes read: a named model's damaged file is refused before torch loads and the file is hashed;
    a whole file of other bytes is found by the hash only."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        n = int.from_bytes(fh.read(8), "little")
        if size < 8 or n > size - 8:
            return f"{size} bytes, shorter than its header says"
        try:
            table = json.loads(fh.read(n))
        except ValueError:
            return "its header is not JSON"
    if not isinstance(table, dict):
        return "its header is not a JSON object"
    ends: list[int] = []
    for key, entry in table.items():
        if key == "__metadata__":
            continue
        r = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r)):
            return "its header gives a tensor no byte range (data_offsets: a start and an end)"
        ends.append(r[1])
    want = 8 + n + max(ends, default=0)
    return None if size == want else f"{size} bytes where its header says {want}"
