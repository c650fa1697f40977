"""Per-(model, image) score cache, so evaluating again (another target, another split, a rerun after an
interruption) never rescores an image the same model has already scored.

Key: the scorer's identity (:func:`score_cache_key`: the checkpoint's SHA-256 — not its path — plus the
scorer's metadata such as crops, and any overrides) + the image's content key
(:func:`attiqa.io.images.content_key`, the SHA-256 of its bytes): a changed file is a new entry, and a
copied, moved or re-extracted dataset keeps its scores. Storage: one SQLite file; every batch is written in
one transaction (WAL journal), so a killed run keeps every finished batch and never leaves a torn file, and
two processes may share the cache (SQLite locks; writers wait up to a minute) — processes on one machine,
the file on a local disk: WAL's index is shared memory, which a network filesystem (NFS) does not share
between machines, so ranks on several nodes need ``ATTIQA_CACHE`` on a local disk (README).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from attiqa.interface import Scorer
from attiqa.io.atomic import json_ready
from attiqa.io.checkpoints import CheckpointHashes
from attiqa.io.hashes import record_digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS image_scores (
    scorer   TEXT NOT NULL,
    content  TEXT NOT NULL,
    vals     TEXT NOT NULL,
    PRIMARY KEY (scorer, content)
);
CREATE TABLE IF NOT EXISTS scorers (
    scorer   TEXT PRIMARY KEY,
    columns  TEXT NOT NULL,
    identity TEXT NOT NULL
);
"""


def cache_location(cache: bool | str | Path) -> Path | None:
    """The SQLite file a ``cache`` choice means — ``attiqa eval``'s and ``attiqa bench cross``'s ``--cache``
    (True: ``$ATTIQA_CACHE/eval_scores.sqlite``, default ``~/.cache/attiqa``, shared by every output
    folder), a path (that file), ``--no-cache`` (False: None). The one place that says where it is."""
    if not cache:
        return None
    if cache is True:
        from attiqa.io.cache_home import cache_dir

        return cache_dir() / "eval_scores.sqlite"
    return Path(cache)


def score_cache_key(
    scorer: Scorer, overrides: dict[str, Any] | None = None, read: CheckpointHashes | None = None
) -> tuple[str, dict[str, Any]]:
    """(short key, full identity) of a scorer. A checkpoint is identified by its SHA-256, so a copied or
    moved checkpoint keeps its cache and a retrained one at the same path does not reuse stale scores; CLIP
    weights by theirs, whatever spec or path named them (:func:`without_spellings`). Also the identity
    `attiqa score -o` records to resume a score file by. ``read``: the checkpoint's hashes when the caller
    has them (:func:`resume_identity`); else those of the bytes the scorer loaded
    (:func:`~attiqa.scorers.zoo.checkpoint_read`)."""
    from attiqa.scorers.zoo import checkpoint_read
    from attiqa.teachers.clip import without_spellings

    meta = without_spellings(scorer.metadata())
    ident: dict[str, Any] = {"class": type(scorer).__qualname__, "columns": list(scorer.columns)}
    ckpt = _checkpoint_of(scorer)
    meta.pop("checkpoint", None)
    read = read or (checkpoint_read(scorer) if ckpt else None)
    if read is not None:
        ident["checkpoint_sha256"] = read.sha256
        if read.card_sha256:  # a card beside a file whose header has none: edited in place, same file hash
            ident["card_sha256"] = read.card_sha256
        meta.pop("name", None)  # derived from the card or the file name; the content is the identity
    elif ckpt:
        ident["checkpoint"] = str(ckpt)
    ident["metadata"] = meta
    if overrides:
        ident["overrides"] = overrides
    return record_digest(ident, length=32), ident


def _checkpoint_of(scorer: Scorer) -> str | None:
    """The checkpoint file a scorer's scores depend on (an ATTIQA model's, an ExIQA run's), else None."""
    ckpt = scorer.metadata().get("checkpoint") or getattr(scorer, "checkpoint", None)
    return str(ckpt) if ckpt else None


def resume_identity(model: str | None, scorer: Scorer, overrides: dict[str, Any]) -> dict[str, object]:
    """What `score -o` records of its scorer beside the file (:class:`~attiqa.scoring.ScoreWriter`): the
    name as given, the crops, the SHA-256 of its weights (a checkpoint's or named model's file, a CLIP
    scorer's weights), and ``key``, eval's score-cache key — every file the scores depend on by its hash (an
    ExIQA run's checkpoint and regressor too) and the scorer's settings, not the spelling of a path (``model``
    as given, None = the default model; ``overrides`` as :func:`score_cache_key` takes them) — with
    ``hashes``, those files by name, to say which one changed (``tensors``: a checkpoint's values without its
    card, to tell a card changed from weights changed). All of them are the hashes of the bytes the scorer
    loaded (:func:`~attiqa.scorers.zoo.checkpoint_read`): a file saved again since is not taken for the
    weights that scored, nor mixed with them."""
    from attiqa.scorers import scorer_identity
    from attiqa.scorers.zoo import checkpoint_read

    read = checkpoint_read(scorer)
    identity: dict[str, object] = {**scorer_identity(model, read), "crops": overrides.get("crops")}
    meta = scorer.metadata()
    # a CLIP scorer's weights by their hash (no file of its own for scorer_identity to hash)
    identity["sha256"] = identity["sha256"] or meta.get("weights_sha256")
    key, ident = score_cache_key(scorer, overrides, read)
    hashes = {"weights": identity["sha256"]}
    if ident.get("checkpoint_sha256") not in (None, identity["sha256"]):  # ExIQA's own, beside CLIP's
        hashes["checkpoint"] = ident["checkpoint_sha256"]
    elif read is not None:  # the tensors' values without the card: "the card changed" is said
        hashes["tensors"] = read.values
    if ident.get("card_sha256"):
        hashes["card"] = ident["card_sha256"]
    if "regressor_sha256" in meta:
        hashes["regressor"] = meta["regressor_sha256"]
    return {**identity, "key": key, "hashes": hashes}


def _dump(values: Sequence[float]) -> str:
    return json.dumps(json_ready([float(v) for v in values]), allow_nan=False)  # NaN: null, read back as NaN


def _load(text: str) -> list[float]:
    return [float("nan") if v is None else float(v) for v in json.loads(text)]


class ScoreCache:
    """SQLite-backed cache (module docstring). Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=60.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(SCHEMA)
        self.conn.commit()

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def register(self, scorer_key: str, columns: Sequence[str], identity: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO scorers (scorer, columns, identity) VALUES (?, ?, ?)",
                (scorer_key, json.dumps(list(columns)), json.dumps(identity, default=str)),
            )

    def lookup(self, scorer_key: str, keys: dict[str, str]) -> dict[str, list[float]]:
        """Cached values, by path, for ``keys`` (path -> content key)."""
        by_content: dict[str, list[str]] = {}
        for path, key in keys.items():
            by_content.setdefault(key, []).append(path)
        found: dict[str, list[float]] = {}
        contents = list(by_content)
        for i in range(0, len(contents), 500):
            chunk = contents[i : i + 500]
            q = ",".join("?" * len(chunk))
            cur = self.conn.execute(
                f"SELECT content, vals FROM image_scores WHERE scorer = ? AND content IN ({q})",
                (scorer_key, *chunk),
            )
            for content, vals in cur:
                for path in by_content[content]:
                    found[path] = _load(vals)
        return found

    def store(self, scorer_key: str, rows: Iterable[tuple[str, Sequence[float]]]) -> None:
        """Write ``(content key, values)`` rows in ONE transaction."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO image_scores (scorer, content, vals) VALUES (?, ?, ?)",
                [(scorer_key, k, _dump(v)) for k, v in rows],
            )

    def count(self, scorer_key: str | None = None) -> int:
        if scorer_key is None:
            return int(self.conn.execute("SELECT COUNT(*) FROM image_scores").fetchone()[0])
        q = "SELECT COUNT(*) FROM image_scores WHERE scorer = ?"
        return int(self.conn.execute(q, (scorer_key,)).fetchone()[0])
