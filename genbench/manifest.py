"""The run folder's manifest: one record per image pair, as JSON Lines (``manifest.jsonl``) and CSV.

Every command reads pairs from here: ``genbench run`` and ``genbench import-imagereward`` write it;
``score``, ``vote`` and ``agree`` read it. A record has at least ``pair_id``, ``image_a`` and ``image_b``
(paths relative to the run folder, or absolute); the rest (prompt, seeds, model, settings) is kept as is.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from attiqa.errors import AttiqaError
from attiqa.io.atomic import write_text_atomic

MANIFEST = "manifest.jsonl"
MANIFEST_CSV = "manifest.csv"
SIDES = ("a", "b")


@dataclass(frozen=True)
class Pair:
    pair_id: str
    image_a: str
    image_b: str
    record: dict = field(default_factory=dict, compare=False, repr=False)

    def image(self, side: str) -> str:
        return self.image_a if side == "a" else self.image_b


def resolve(run_dir: Path, image: str) -> Path:
    p = Path(image)
    return p if p.is_absolute() else Path(run_dir) / p


def _csv_text(records: list[dict]) -> str:
    cols: list[str] = []
    for r in records:
        cols.extend(k for k in r if k not in cols)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in records:
        w.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()})
    return buf.getvalue()


def write_manifest(run_dir: Path, records: list[dict]) -> None:
    """Write both forms atomically (a killed run leaves the previous complete manifest)."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    write_text_atomic(Path(run_dir) / MANIFEST, text)
    write_text_atomic(Path(run_dir) / MANIFEST_CSV, _csv_text(records))


def read_records(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            raise AttiqaError(f"{path}:{i}: not valid JSON — restore the file or rerun the command") from None
    return out


def load_pairs(run_dir: Path) -> list[Pair]:
    """The run's pairs; a clear error when the folder holds no manifest."""
    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST).exists():
        raise AttiqaError(
            f"{run_dir}: no {MANIFEST} — make a run with `genbench run --out {run_dir}` "
            "(or `genbench import-imagereward`)"
        )
    pairs, seen = [], set()
    for r in read_records(run_dir):
        if not all(isinstance(r.get(k), str) and r.get(k) for k in ("pair_id", "image_a", "image_b")):
            raise AttiqaError(f"{run_dir / MANIFEST}: a record lacks pair_id/image_a/image_b: {r}")
        if r["pair_id"] in seen:
            raise AttiqaError(f"{run_dir / MANIFEST}: pair_id {r['pair_id']!r} appears twice")
        seen.add(r["pair_id"])
        pairs.append(Pair(r["pair_id"], r["image_a"], r["image_b"], r))
    return pairs
