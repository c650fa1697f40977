"""Score a MOS / variant table with the real five-crop scorer and report what compare.py reports.

Why: candidates were compared on centre-crop features; the shipped model scores five crops. This runs
the product's scorer (``attiqa.load_scorer``) on the photos themselves. Scores are appended to
``--out`` as they come (a killed run resumes). Prints SROCC/PLCC against ``mos`` for a MOS table, or the
original-beats-edit rates for a ``make_variants.py`` table.

    python experiments/generalisation/check_scorer.py attiqa/data/models/attiqa-default.safetensors \
        runs/generalisation/natural/natural_test.csv --out runs/generalisation/five_over_shipped.csv \
        --kinds original,sharpen,contrast,saturation,exposure,hue,combo
    python experiments/generalisation/check_scorer.py CKPT ../shared/data/clive-dev/mos.csv --split0-test ...
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import over_rates  # noqa: E402

import attiqa  # noqa: E402
from attiqa.evaluation.metrics import correlations  # noqa: E402
from attiqa.splits import split_indices  # noqa: E402
from attiqa.training.data import MosDataset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("table", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split0-test", action="store_true", help="only split seed 0's 20 %% test photos")
    ap.add_argument("--crops", default="five", choices=["five", "center"])
    ap.add_argument("--kinds", help="variant tables: only these kinds (comma-separated)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = MosDataset(args.table, None, lambda im: im)
    rows = list(range(len(data.paths)))
    if args.split0_test:
        rows = split_indices(len(rows), 0.2, 0)[1]
    if args.kinds:
        rows = [i for i in rows if data.rows[i]["kind"] in args.kinds.split(",")]
    done: dict[str, float] = {}
    if args.out.exists():
        with open(args.out, newline="") as fh:
            done = {r["image"]: float(r["mos_pred"]) for r in csv.DictReader(fh)}
    scorer = attiqa.load_scorer(args.checkpoint, crops=args.crops)
    todo = [i for i in rows if str(data.paths[i]) not in done]
    new = not args.out.exists()
    with open(args.out, "a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["image", "mos_pred"])
        for s in range(0, len(todo), 16):
            part = todo[s : s + 16]
            pred = scorer([str(data.paths[i]) for i in part])["mos"]
            for i, p in zip(part, pred, strict=True):
                w.writerow([str(data.paths[i]), float(p)])
                done[str(data.paths[i])] = float(p)
            fh.flush()
            print(f"{s + len(part)}/{len(todo)}", flush=True)
    pred = np.array([done[str(data.paths[i])] for i in rows])
    if "kind" in data.rows[0]:
        rates = over_rates(pred, [data.rows[i] for i in rows])
        print({k: round(v, 3) for k, v in rates.items() if v == v})  # kinds not scored give NaN
    else:
        m = correlations(pred, data.mos[rows].double().numpy())
        print({k: round(float(v), 4) for k, v in m.items()})


if __name__ == "__main__":
    main()
