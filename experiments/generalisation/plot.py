"""The comparison as one picture: every candidate's CLIVE median SROCC (x) against its held-out
over-processing rate (y), coloured by its BIQ2021-val SROCC; the shipped model's split-0 point for scale.

    python experiments/generalisation/plot.py runs/generalisation/compare*.json \
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
    ap.add_argument("--view", default="centre crop", help="the view named on the x axis")
    ap.add_argument("--title", default="issue 20 candidates: MOS heads on frozen Lite0 statistics")
    ap.add_argument("--zoom", action="store_true", help="only the rows at >= 0.85 over-processing, magnified")
    ap.add_argument("--mark", help="rows whose name starts with this: triangles, and the only ones labelled")
    ap.add_argument("--split0", action="store_true",
                    help="every row's split-0 model, the shipped one included")  # fmt: skip
    args = ap.parse_args()
    rows: dict[str, dict] = {}
    for f in args.results:
        rows.update(json.loads(f.read_text()))
    if args.split0:
        split0(rows, args.out)
        return
    fig, ax = plt.subplots(figsize=(9, 6))
    pts = [(k, v) for k, v in rows.items() if "clive_note" not in v and v["biq_srocc"] == v["biq_srocc"]]
    pts = [(k, v) for k, v in pts if v["clive_srocc"] > 0.7]  # off the chart: the attributes-only head
    if args.zoom:
        pts = [(k.removeprefix("s23 "), v) for k, v in pts if v["over6"] >= 0.85]
    pts.sort(key=lambda kv: (round(kv[1]["over6"], 1), kv[1]["clive_srocc"]))
    x, y, c = ([v[k] for _, v in pts] for k in ("clive_srocc", "over6", "biq_srocc"))
    marked = [bool(args.mark) and k.startswith(args.mark) for k, _ in pts]
    for shape, on in (("o", False), ("^", True)):
        sel = [i for i, m in enumerate(marked) if m == on]
        if sel:
            sc = ax.scatter([x[i] for i in sel], [y[i] for i in sel], c=[c[i] for i in sel], cmap="viridis",
                            s=80 if on else 50, vmin=0.58, vmax=0.65, marker=shape,
                            edgecolors="black" if on else "none",
                            label=args.mark if on else "pair-fitted ridges (linear)")  # fmt: skip
    if args.mark:
        ax.legend(loc="lower left", fontsize=8)
    for i, (k, v) in enumerate(pts):
        if args.mark and not marked[i]:
            continue
        dy = -12 + 8 * (i % 4) if v["over6"] > 0.85 else 2  # the crowded top row: stagger the labels
        dx = -150 if v["over6"] > 0.85 else 4
        if args.zoom:
            dx, dy = (6, -3) if i % 2 else (-130, 4)
        ax.annotate(k, (v["clive_srocc"], v["over6"]), fontsize=6, xytext=(dx, dy),
                    textcoords="offset points", arrowprops={"arrowstyle": "-", "lw": 0.3})  # fmt: skip
    ax.axhline(0.95, color="red", lw=0.8, ls="--")
    lo, hi = min(x) - 0.01, max(max(x), 0.85) + 0.005
    ax.text(lo + 0.002, 0.955, "goal: original wins >= 95 %", color="red", fontsize=7)
    if hi >= 0.85:
        ax.axvline(0.85, color="red", lw=0.8, ls=":")  # the in-domain goal
    ax.set_xlim(lo, hi)
    ax.set_xlabel(f"CLIVE median SROCC, 10 random 80/20 splits ({args.view})")
    ax.set_ylabel("over-processed scores below the original (32 held-out photos x 6 edits)")
    ax.set_title(args.title, fontsize=10)
    fig.colorbar(sc, ax=ax, label="BIQ2021-val SROCC (median of the 10 models, zero-shot)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


def split0(rows: dict[str, dict], out: Path) -> None:
    """CLIVE split-0 SROCC (x) against the over-processing rate (y), coloured by BIQ2021-val split 0."""
    pts = []
    for k, v in rows.items():
        if k.startswith("shipped") and not k.endswith("combined"):
            continue
        clive = v["clive_per_split"][0] if "clive_per_split" in v else v["clive_srocc"]
        biq = v["biq_per_split"][0] if "biq_per_split" in v else v["biq_srocc"]
        name = k.replace("shipped attiqa-default: combined", "SHIPPED attiqa-default")
        pts.append((name, clive, v["over6"], biq))
    fig, ax = plt.subplots(figsize=(9, 6))
    sc = ax.scatter([p[1] for p in pts], [p[2] for p in pts], c=[p[3] for p in pts], cmap="viridis", s=60,
                    vmin=0.60, vmax=0.635)  # fmt: skip
    right = max(p[1] for p in pts)
    for i, (k, x, y, _) in enumerate(sorted(pts, key=lambda p: (round(p[2], 1), p[1]))):
        dx = -170 if x > right - 0.008 else 4  # labels of the rightmost points go to their left
        ax.annotate(k, (x, y), fontsize=6, xytext=(dx, -10 + 7 * (i % 4)), textcoords="offset points",
                    arrowprops={"arrowstyle": "-", "lw": 0.3})  # fmt: skip
    ax.axhline(0.95, color="red", lw=0.8, ls="--")
    ax.set_xlabel("CLIVE SROCC, split 0's 172 test photos (five crops, the scorer's view)")
    ax.set_ylabel("over-processed scores below the original (32 held-out photos x 6 edits)")
    ax.set_title("issue 20, stop 22: split-0 models on five crops (red: the 95 % goal)", fontsize=10)
    fig.colorbar(sc, ax=ax, label="BIQ2021-val SROCC (zero-shot, split-0 model)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
