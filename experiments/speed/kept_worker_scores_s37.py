"""Scores through a kept decode worker, for a bit-for-bit comparison with another tree (session 37).

    PYTHONPATH=TREE python experiments/speed/kept_worker_scores_s37.py --data ../shared/data --out scores.npz

Scores 16 agiqa3k-dev + 16 clive-dev photos with both shipped models through ``score_paths`` (1 decode
worker, batch 8), three calls in one process (with a kept worker, calls 2 and 3 reuse it), and saves each
call's float32 scores; ``--compare A.npz B.npz`` prints the largest |difference| between two such files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", nargs=2, type=Path)
    args = ap.parse_args()
    if args.compare:
        a, b = (np.load(p) for p in args.compare)
        for key in sorted(a.files):
            print(f"{key}: rows {a[key].shape[0]}, max |d| = {np.abs(a[key] - b[key]).max()}")
        return

    from attiqa.allocator import tune_allocator
    from attiqa.scorers import load_scorer
    from attiqa.scoring import score_paths

    tune_allocator()
    photos = sorted((args.data / "agiqa3k-dev" / "AGIQA-3K").glob("*.jpg"))[:16]
    photos += sorted((args.data / "clive-dev" / "images").iterdir())[:16]
    got = {}
    for model in ("attiqa-default", "attiqa-agiqa3k"):
        scorer = load_scorer(model)
        for call in range(3):
            run = score_paths(photos, scorer, 8, num_workers=1)
            assert len(run.rows) == len(photos), run.failed
            got[f"{model}/call{call}"] = np.array(
                [[r[c] for c in run.columns] for r in run.rows], dtype=np.float32
            )
    np.savez(args.out, **got)
    print(f"{args.out}: {', '.join(got)}")


if __name__ == "__main__":
    main()
