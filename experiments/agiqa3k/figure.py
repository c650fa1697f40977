"""The model card's picture (ours): prompt cross-fitted predictions vs human MOS, by generator, and the
per-split SROCC of `attiqa bench single` (random and prompt-grouped splits) next to the paper's anchors.

Only numbers are drawn (no AGIQA-3k image or thumbnail: the shared data's terms keep those out of the
repository).

    python experiments/agiqa3k/figure.py --crossfit runs/agiqa3k/crossfit/crossfit.csv \
        --bench runs/agiqa3k/bench_random/single.json runs/agiqa3k/bench_prompt/single.json \
        --out docs/images/agiqa3k_model.png
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from attiqa.evaluation.metrics import correlations  # noqa: E402
from genbench.agiqa3k import generator_of  # noqa: E402

ANCHORS = {"ATTIQA (paper)": 0.854, "CLIP-AGIQA": 0.875, "TeMu-IQA": 0.898, "goal": 0.87}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crossfit", type=Path, required=True)
    ap.add_argument("--bench", type=Path, nargs=2, required=True, help="random, then grouped single.json")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    with open(a.crossfit, newline="") as fh:
        rows = list(csv.DictReader(fh))
    pred = np.array([float(r["mos"]) for r in rows])
    human = np.array([float(r["mos_quality"]) for r in rows])
    gens = [generator_of(Path(r["image"]).name) for r in rows]
    m = correlations(pred, human)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1.5, 1]})
    for g in sorted(set(gens)):
        sel = np.array([x == g for x in gens])
        ax.scatter(human[sel], pred[sel], s=7, alpha=0.6, label=f"{g} ({int(sel.sum())})")
    lo, hi = float(min(human.min(), pred.min())), float(max(human.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=0.8)
    ax.set_xlabel("human MOS (mos_quality)")
    ax.set_ylabel("predicted MOS (model that never saw the prompt)")
    ax.set_title(f"prompt cross-fitted, {len(rows)} images: SROCC {m['srocc']:.3f} PLCC {m['plcc']:.3f}",
                 fontsize=10)  # fmt: skip
    ax.legend(fontsize=7, markerscale=2, loc="upper left")
    for k, path in enumerate(a.bench):
        runs = json.loads(path.read_text())["runs"]
        vals = [r["srocc"] for r in runs]
        bx.scatter(np.full(len(vals), k) + np.linspace(-0.12, 0.12, len(vals)), vals, s=18)
        bx.hlines(np.median(vals), k - 0.25, k + 0.25, color="k")
        bx.text(k + 0.28, np.median(vals), f"median\n{np.median(vals):.3f}", va="center", fontsize=8)
    for name, v in ANCHORS.items():
        bx.axhline(v, color="r" if name == "goal" else "0.7", lw=0.8, ls="--" if name == "goal" else ":")
        bx.text(1.45, v, name, fontsize=7, va="center")
    bx.set_xticks([0, 1], ["random splits", "prompt-grouped"])
    bx.set_xlim(-0.5, 2.0)
    bx.set_ylabel("test SROCC per split (attiqa bench single)")
    bx.set_title("10 + 10 splits, the shipped recipe", fontsize=10)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
