"""Stop 25's candidates in plot.py's JSON format (10-split medians from guard_bench.py, split-0 rates from
check_scorer.py's score files), next to stops 23-24's linear rows (the stop-24 screening guard rows left out:
they are in docs/images/issue20_s24_frontier.png).

    python experiments/generalisation/s25/frontier.py --runs runs/guard/s25 \
        --base runs/generalisation/s24/frontier24.json --out runs/guard/s25/frontier25.json
    python experiments/generalisation/plot.py runs/guard/s25/frontier25.json --zoom --mark s25 \
        --view "five crops" --title "..." -o docs/images/issue20_s25_guard.png
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from compare import over_rates  # noqa: E402

# candidate -> (guard_bench JSON, its variant name, check_scorer score file)
CANDIDATES = {
    "s25 C1 recipe + guard 0.5": ("gb_C1_10.json", "C1", "nat_C1.csv"),
    "s25 C2 recipe + guard 1.0": ("gb_C1_10.json", "C2", "nat_C2.csv"),
    "s25 C3 ridge + guard 0.5": ("gb_C1_10.json", "C3", "nat_C3.csv"),
    "s25 C4 recipe + guard 1.0 + AGIQA 5%": ("gb_C4_10.json", "C4", "nat_C4.csv"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--natural", type=Path, default=Path("runs/generalisation/natural/natural_test.csv"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = {k: v for k, v in json.loads(args.base.read_text()).items() if not k.startswith("gated guard")}
    with open(args.natural, newline="") as fh:
        table = {str((args.natural.parent / r["image"]).resolve()): r for r in csv.DictReader(fh)}
    for name, (bench, variant, scores) in CANDIDATES.items():
        if not (args.runs / bench).exists():
            continue
        runs = json.loads((args.runs / bench).read_text())["runs"]
        with open(args.runs / scores, newline="") as fh:
            pred = {str(Path(r["image"]).resolve()): float(r["mos_pred"]) for r in csv.DictReader(fh)}
        keys = [k for k in pred if k in table]
        rates = over_rates(np.array([pred[k] for k in keys]), [table[k] for k in keys])
        rows[name] = {
            "clive_srocc": float(np.median([r[variant]["clive"] for r in runs])),
            "biq_srocc": float(np.median([r[variant]["biq"] for r in runs])),
            "clive_per_split": [r[variant]["clive"] for r in runs],
            "biq_per_split": [r[variant]["biq"] for r in runs],
            **rates,
        }
        print(name, {k: round(v, 4) for k, v in rows[name].items() if not isinstance(v, list)})
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
