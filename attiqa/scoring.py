"""``attiqa score``: batched scoring of many images with any scorer, with tables others can read.

Bad files are skipped and reported, never fatal; results are written atomically (CSV or JSON chosen
by the output's extension), and an interrupted run (Ctrl-C) still writes every finished row.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attiqa.errors import AttiqaError, ImageLoadError
from attiqa.io.atomic import write_text_atomic
from attiqa.io.batching import default_num_workers, iter_image_batches
from attiqa.scorers.base import Scorer


@dataclass
class ScoreRun:
    columns: tuple[str, ...]
    rows: list[dict] = field(default_factory=list)  # {"image": str, col: float, ...}
    failed: list[ImageLoadError] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False


def score_paths(
    paths: Sequence[Path],
    scorer: Scorer,
    batch_size: int = 16,
    num_workers: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> ScoreRun:
    """Score ``paths`` in input order; failures are collected in ``ScoreRun.failed``."""
    run = ScoreRun(columns=tuple(scorer.columns))
    start = time.perf_counter()
    workers = default_num_workers() if num_workers is None else num_workers
    try:
        hint = getattr(scorer, "min_shorter", None)
        batch_size = min(batch_size, getattr(scorer, "max_batch", None) or batch_size)
        for batch in iter_image_batches(paths, scorer.transform, batch_size, workers, min_shorter=hint):
            run.failed.extend(batch.errors)
            if batch.tensor is not None:
                scores = scorer.score_tensors(batch.tensor).float().cpu().numpy()
                for row_i, idx in enumerate(batch.indices):
                    row = {"image": str(paths[idx])}
                    row.update({c: float(scores[row_i, j]) for j, c in enumerate(run.columns)})
                    run.rows.append(row)
            if on_batch:
                on_batch(len(batch.indices), len(batch.errors))
    except KeyboardInterrupt:
        run.interrupted = True
    run.seconds = time.perf_counter() - start
    return run


def _fmt(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def write_scores(run: ScoreRun, out: str | Path, scorer_meta: dict | None = None) -> Path:
    """Write rows to ``out``: ``.csv`` (columns image + scorer columns) or ``.json`` (records + metadata)."""
    out = Path(out)
    cols = ["image", *run.columns]
    if out.suffix.lower() == ".json":
        doc = {
            "scorer": scorer_meta or {},
            "columns": cols,
            "results": [
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in run.rows
            ],
            "failed": [{"image": e.path, "error": e.reason} for e in run.failed],
        }
        write_text_atomic(out, json.dumps(doc, indent=2) + "\n")
    elif out.suffix.lower() in (".csv", ".tsv"):
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="\t" if out.suffix.lower() == ".tsv" else ",")
        w.writerow(cols)
        for r in run.rows:
            w.writerow([r["image"], *(_fmt(r[c]) for c in run.columns)])
        write_text_atomic(out, buf.getvalue())
    else:
        raise AttiqaError(f"{out}: unsupported output type — use a .csv, .tsv or .json file name")
    return out
