"""Torch-free checks of a file's bytes: its SHA-256, streamed, and whether a safetensors file is as long as
its header says — so that what checks a file before a model loads (an image's content key, ``isp-tune``'s
byte-identical raws, a named model's file) imports no torch; a safetensors file's identity
(:func:`safetensors_hashes`: the file's and its tensors' SHA-256, :func:`tensors_digest` the one formula of
the latter), so that "is this a shipped model" (`genbench agree`'s warning) imports no torch either, and the
card a headerless checkpoint is read with (:func:`sidecar_card_sha256`, by the header's :data:`CARD_KEY`), so
that `genbench score` tells a metric scored whole without loading it; and :func:`record_digest`, the key of a
cache entry's inputs."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CARD_KEY = "attiqa_card"  # where an ATTIQA checkpoint's header metadata holds its card (a JSON text)


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


def _span_problem(table: Any, size: int, n: int) -> str | None:
    """Why a file of ``size`` bytes whose ``n``-byte header is ``table`` cannot be a whole safetensors file —
    a header that is no JSON object, a tensor without a byte range (it was an IndexError's traceback), a file
    cut short or with bytes added — else None."""
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


def read_whole(path: str | Path) -> tuple[bytearray, os.stat_result]:
    """A file's bytes and the ``fstat`` of the version read (whatever the path holds by the end), read into
    one buffer (no second copy); a file cut while it was read is as long as what was read."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        data = bytearray(st.st_size)
        got = 0
        with memoryview(data) as view:
            while got < len(data) and (step := fh.readinto(view[got:])):
                got += step
    del data[got:]
    return data, st


def file_version(st: os.stat_result) -> tuple[int, int, int, int]:
    """Which version of a file a cached hash is of: its inode (a file replaced, as every writer here
    replaces one, is another), size, and modification and change times — the times alone are a clock tick
    apart (~4 ms), so a checkpoint saved again within one, of the same size, was taken for the one before."""
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def safetensors_header(data: bytes | bytearray) -> tuple[dict[str, Any], dict[str, str]] | None:
    """(the tensor table, the header's ``__metadata__``: an ATTIQA checkpoint's card) of a safetensors file's
    bytes ``data``; None when its header is not a JSON object (safetensors' own reading says why)."""
    n = int.from_bytes(data[:8], "little")
    try:
        table = json.loads(data[8 : 8 + n]) if 8 + n <= len(data) else None
    except ValueError:
        return None
    if not isinstance(table, dict):
        return None
    meta = table.pop("__metadata__", None)
    return table, meta if isinstance(meta, dict) else {}


def sidecar_card_sha256(path: str | Path) -> str | None:
    """SHA-256 of the ``.json`` card a checkpoint is read with when its header holds none
    (:func:`attiqa.io.checkpoints.load_checkpoint`'s rule), else None: the file's own hash does not cover
    that card, and an edit to it (the test view's size) changes the scores — for `attiqa eval`'s score-cache
    key, `attiqa score -o`'s record and `genbench score`'s proof of a metric scored whole. Torch-free: the
    header alone is read (one that is no JSON object holds no card)."""
    path = Path(path)
    with open(path, "rb") as fh:
        size = fh.read(8)
        head = fh.read(int.from_bytes(size, "little"))
    parsed = safetensors_header(size + head)
    if parsed is not None and CARD_KEY in parsed[1]:
        return None
    side = path.with_suffix(".json")
    return sha256_of(side) if side.is_file() else None


def tensors_digest(table: Mapping[str, Any], buffer: bytes | bytearray | memoryview) -> str:
    """The one formula of a checkpoint's tensors' SHA-256 (:func:`attiqa.io.checkpoints.tensors_sha256`): its
    header's tensor table (names, dtypes, shapes, byte ranges; the card left out) as sorted JSON, then the
    bytes ``buffer`` after the header, as they are stored."""
    h = hashlib.sha256(json.dumps(dict(table), sort_keys=True).encode())
    h.update(buffer)
    return h.hexdigest()


def safetensors_hashes(path: str | Path) -> tuple[str, str]:
    """(the file's SHA-256, :func:`tensors_digest`) of one reading of a safetensors file, torch-free: the
    identity "is this a shipped model" compares (:func:`attiqa.scorers.zoo.shipped_model`), equal to
    :func:`attiqa.io.checkpoints.checkpoint_hashes`'. Cached per version of the file (:func:`file_version`).
    A file that is not a whole safetensors file (cut short, bytes added, a tensor without a byte range) is a
    ValueError."""
    p = Path(path).resolve()
    known = _SAFETENSORS_HASHES.get((str(p), *file_version(p.stat())))
    if known is not None:
        return known
    data, st = read_whole(p)
    parsed = safetensors_header(data)
    n = int.from_bytes(data[:8], "little")
    problem = _span_problem(parsed[0] if parsed else None, len(data), n)
    if parsed is None or problem is not None:
        raise ValueError(f"{path}: not a whole safetensors file ({problem})")
    with memoryview(data) as view:
        hashes = (hashlib.sha256(data).hexdigest(), tensors_digest(parsed[0], view[8 + n :]))
    key = (str(p), *file_version(st))
    _SAFETENSORS_HASHES[key] = hashes
    return hashes


# (resolved path, *file_version) -> safetensors_hashes' answer
_SAFETENSORS_HASHES: dict[tuple[str, int, int, int, int], tuple[str, str]] = {}
