"""Supplement Table 9 analogue ("impact of dataset scale"): a label file cut to a share of the source photos.

The pretraining set of the default recipe is every source photo plus its graded variants (``<stem>.png``,
``<stem>__<distortion>_<level>.png``); the share is drawn over source photos, so a photo and its variants are
kept or dropped together. Image paths are written absolute, so the frozen-backbone feature cache
(keyed by absolute path) serves the subset without recomputing anything.

    python experiments/paper_ablations/subset_labels.py runs/default_model/labels.parquet --fraction 0.2 \
        -o runs/t9_20/labels.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def source_of(image: str) -> str:
    """The source photo a graded image was made from (its stem before ``__``)."""
    return Path(image).stem.split("__", 1)[0]


def subset_labels(src: Path, dst: Path, fraction: float, seed: int = 0) -> tuple[int, int]:
    """Write the rows of a seeded ``fraction`` of ``src``'s source photos to ``dst``; (sources, rows) kept."""
    if not 0.0 < fraction <= 1.0:
        raise SystemExit(f"--fraction must be in (0, 1], got {fraction}")
    table = pq.read_table(src)
    base = src.resolve().parent
    rel = table.column("image").to_pylist()
    # relative paths: next to the label file first, then the working directory (as PseudoLabelDataset reads)
    images = [str((base / p).resolve() if (base / p).exists() else Path(p).resolve()) for p in rel]
    sources = sorted({source_of(p) for p in images})
    rng = np.random.default_rng(seed)
    keep_n = max(1, int(round(fraction * len(sources))))
    keep = {sources[i] for i in rng.permutation(len(sources))[:keep_n]}
    mask = np.array([source_of(p) in keep for p in images])
    out = table.set_column(table.column_names.index("image"), "image", pa.array(images, pa.string()))
    out = out.filter(pa.array(mask)).replace_schema_metadata(table.schema.metadata)
    dst.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(out, dst)
    return keep_n, int(mask.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("labels", type=Path)
    ap.add_argument("--fraction", type=float, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", type=Path, required=True)
    a = ap.parse_args()
    n_src, n_rows = subset_labels(a.labels, a.out, a.fraction, a.seed)
    print(f"{a.out}: {n_src} source photos, {n_rows} images")


if __name__ == "__main__":
    main()
