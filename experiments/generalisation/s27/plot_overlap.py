"""Why the stop-27 edit guard was refuted, as a picture: per statistic, the spread of clean crops (clive-dev
split-0 training photos, natural training originals) against the held-out natural photos' strong edits.

Reads hinge_screen.py's cached statistics (--work); writes one PNG (docs/images/issue20_s27_edit_stats.png).

    python experiments/generalisation/s27/plot_overlap.py --natural runs/guard26/natural \
        --work runs/s27/es --out docs/images/issue20_s27_edit_stats.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from edit_stats import NAMES  # noqa: E402

from attiqa.splits import split_indices  # noqa: E402

SHOWN = ("clip_hi", "clip_lo", "sat_hi", "chroma_p99", "overshoot", "band_ratio")
EDITS = ("exposure", "contrast", "saturation", "sharpen", "combo")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--natural", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    clive = np.load(args.work / "h_clive.npz")["stats"]
    tr, _ = split_indices(len(clive), 0.2, 0)
    with open(args.natural / "natural_test.csv", newline="") as fh:
        kinds = [r["kind"] for r in csv.DictReader(fh)]
    nat = np.load(args.work / "h_nat_test.npz")["stats"]
    originals = nat[[k == "original" for k in kinds]]
    groups = {"CLIVE training photos": clive[tr], "held-out natural originals": originals}
    groups |= {f"their {e} edit": nat[[k == e for k in kinds]] for e in EDITS}
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, name in zip(axes.flat, SHOWN, strict=True):
        j = NAMES.index(name)
        data = [g[..., j].ravel() for g in groups.values()]
        ax.boxplot(data, orientation="horizontal", whis=(1, 99), showfliers=False)
        ax.set_yticks(range(1, len(groups) + 1), list(groups) if ax in axes[:, 0] else [""] * len(groups))
        ax.axvline(np.quantile(clive[tr][..., j], 0.99), color="tab:red", lw=1, ls="--")
        ax.set_title(name + (" (log share)" if name not in ("chroma_p99", "band_ratio") else ""))
        ax.invert_yaxis()
    fig.suptitle("Stop 27: edit statistics per crop (boxes: 1st-99th percentile); red: CLIVE training crops' "
                 "99th percentile — authentic CLIVE photos overlap the strong edits")  # fmt: skip
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(args.out)


if __name__ == "__main__":
    main()
