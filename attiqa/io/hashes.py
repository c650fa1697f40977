"""Torch-free checks of a file's bytes: its SHA-256, streamed, and whether a safetensors file is as long as
its header says — so that what checks a file before a model loads (an image's content key, ``isp-tune``'s
byte-identical raws, a named model's file) imports no torch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
