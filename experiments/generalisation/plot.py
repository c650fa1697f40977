"""The comparison as one picture: every candidate's CLIVE median SROCC (x) against its held-out
over-processing rate (y), coloured by its BIQ2021-val SROCC; the shipped model's split-0 point for scale.

    python experiments/generalisation/plot.py /work/gen_runs/compare*.json \
        -o docs/images/issue20_candidates.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path, help="compare.py --out files (10-split runs)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    rows: dict[str, dict] = {}
    for f in args.results:
        rows.update(json.loads(f.read_text()))
    fig, ax = plt.subplots(figsize=(9, 6))
    pts = [(k, v) for k, v in rows.items() if "clive_note" not in v and v["biq_srocc"] == v["biq_srocc"]]
    pts = [(k, v) for k, v in pts if v["clive_srocc"] > 0.7]  # off the chart: the attributes-only head
    pts.sort(key=lambda kv: (round(kv[1]["over6"], 1), kv[1]["clive_srocc"]))
    x, y, c = ([v[k] for _, v in pts] for k in ("clive_srocc", "over6", "biq_srocc"))
    sc = ax.scatter(x, y, c=c, cmap="viridis", s=60, vmin=0.58, vmax=0.65)
    for i, (k, v) in enumerate(pts):
        dy = -12 + 8 * (i % 4) if v["over6"] > 0.85 else 2  # the crowded top row: stagger the labels
        dx = -150 if v["over6"] > 0.85 else 4
        ax.annotate(k, (v["clive_srocc"], v["over6"]), fontsize=6, xytext=(dx, dy),
                    textcoords="offset points", arrowprops={"arrowstyle": "-", "lw": 0.3})  # fmt: skip
    ax.axhline(0.95, color="red", lw=0.8, ls="--")
    ax.text(0.742, 0.96, "goal: original wins >= 95 %", color="red", fontsize=7)
    ax.set_xlim(0.735, 0.84)
    ax.set_xlabel("CLIVE median SROCC, 10 random 80/20 splits (centre crop)")
    ax.set_ylabel("over-processed scores below the original (32 held-out photos x 6 edits)")
    ax.set_title("issue 20 candidates: linear MOS heads on frozen Lite0 statistics", fontsize=10)
    fig.colorbar(sc, ax=ax, label="BIQ2021-val SROCC (median of the 10 models, zero-shot)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
