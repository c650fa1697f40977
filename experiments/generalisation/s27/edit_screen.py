"""Split-0 screening of decision_rule_s27.txt: the shipped attiqa-default's MOS + a guard on edit statistics.

The base MOS comes from `attiqa score -m attiqa-default` CSVs (the real five-crop scorer); the statistics of
:mod:`attiqa.models.edit_stats` are measured here on the same five crops (FiveCropTest, resize shorter 500,
crop 320), cached in --work. The guard is fitted per candidate (``fit_ridge`` on the standardised
statistics, -1 clean / +1 edited crops) and applied as the scorer would: MOS - lambda * range * mean over
crops of max(0, g).

    python experiments/generalisation/s27/edit_screen.py --natural runs/guard26/natural \
        --clive-edits runs/guard26/s26/D1_pairs.csv --scores runs/s27 \
        --work runs/s27/es
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from edit_stats import NAMES, edit_stats  # noqa: E402

from attiqa.io.images import load_image  # noqa: E402
from attiqa.models.transforms import FiveCropTest  # noqa: E402
from attiqa.splits import split_indices  # noqa: E402
from attiqa.training.ridge import fit_ridge  # noqa: E402

DATA = Path("../shared/data")
OVER_TRAIN = ("tr_sharpen", "tr_saturation", "tr_contrast", "tr_exposure", "tr_sat_contrast", "tr_combo")
OVER_TEST = ("sharpen", "contrast", "saturation", "exposure", "hue", "combo")
DEGRADE_TEST = ("blur", "noise", "underexposure", "lowcontrast", "desaturation")
TF = FiveCropTest((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 500, 320)  # identity normalisation: crops in [0, 1]


def stats_of(paths: list[Path], cache: Path) -> np.ndarray:
    """(N, 5, 8) statistics of each image's five crops, cached by path list."""
    if cache.is_file():
        got = np.load(cache)
        if list(got["paths"]) == [str(p) for p in paths]:
            return got["stats"]
    out = np.zeros((len(paths), 5, len(NAMES)), np.float32)
    for i, p in enumerate(paths):
        crops = TF(load_image(p))  # (5, 3, 320, 320)
        out[i] = edit_stats(crops).numpy()
        if i % 200 == 0:
            print(f"  {cache.stem}: {i}/{len(paths)}", flush=True)
    np.savez(cache, paths=np.array([str(p) for p in paths]), stats=out)
    return out


def read_scores(path: Path) -> dict[str, float]:
    """An `attiqa score` CSV: MOS by file name."""
    with open(path, newline="") as fh:
        return {Path(r["image"]).name: float(r["mos"]) for r in csv.DictReader(fh)}


def mos_csv(root: Path) -> tuple[list[Path], np.ndarray]:
    """A shared-data MOS folder (mos.csv + images/): paths in the CSV's order, and the MOS."""
    with open(root / "mos.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [root / "images" / Path(r["image"]).name for r in rows], np.array([float(r["mos"]) for r in rows])


def inputs(natural: Path):
    """clive-dev and BIQ2021-val (paths, MOS), clive-dev's split-0 (train, test) indices, and the rows of
    make_variants.py's held-out and training tables."""
    clive = mos_csv(DATA / "clive-dev")
    with open(natural / "natural_test.csv", newline="") as fh:
        test = list(csv.DictReader(fh))
    with open(natural / "natural_train110x.csv", newline="") as fh:
        train = list(csv.DictReader(fh))
    return clive, mos_csv(DATA / "biq2021-val"), split_indices(len(clive[0]), 0.2, 0), test, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--natural", type=Path, required=True)
    ap.add_argument("--clive-edits", type=Path, required=True, help="stop 26's D1 pair table")
    ap.add_argument("--scores", type=Path, required=True, help="folder with ship_clive/biq/nat.csv")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)

    (cp, cm), (bp, bm), (tr, te), nt, ntr = inputs(args.natural)
    with open(args.clive_edits, newline="") as fh:
        ce = sorted({r["worse"] for r in csv.DictReader(fh) if "/clive_images/" in r["worse"]})
    ce = [p for p in ce if any(p.endswith(f"__{k}.png") for k in OVER_TRAIN)]
    print(f"clive edits (over-processing): {len(ce)}", flush=True)

    s_clive = stats_of(cp, args.work / "clive.npz")
    s_biq = stats_of(bp, args.work / "biq.npz")
    s_nt = stats_of([args.natural / r["image"] for r in nt], args.work / "nat_test.npz")
    ntr_keep = [r for r in ntr if r["kind"] == "original" or r["kind"] in OVER_TRAIN]
    s_ntr = stats_of([args.natural / r["image"] for r in ntr_keep], args.work / "nat_train.npz")
    s_ce = stats_of([Path(p) for p in ce], args.work / "clive_edits.npz")

    ship = {k: read_scores(args.scores / f"ship_{k}.csv") for k in ("clive", "biq", "nat")}
    lo, hi = cm[tr].min(), cm[tr].max()
    width = hi - lo
    base_clive = np.array([ship["clive"][p.name] for p in cp])
    base_biq = np.array([ship["biq"][p.name] for p in bp])
    base_nt = np.array([ship["nat"][Path(r["image"]).name] for r in nt])

    clean_nat = np.stack([s for s, r in zip(s_ntr, ntr_keep, strict=True) if r["kind"] == "original"])
    edit_nat = np.stack([s for s, r in zip(s_ntr, ntr_keep, strict=True) if r["kind"] != "original"])
    tables = {"E1": (np.concatenate([s_clive[tr], clean_nat]), edit_nat),
              "E2": (np.concatenate([s_clive[tr], clean_nat]), np.concatenate([edit_nat, s_ce]))}  # fmt: skip
    results = {}
    for name, (clean, edited) in tables.items():
        xc, xe = clean.reshape(-1, len(NAMES)), edited.reshape(-1, len(NAMES))
        x = torch.from_numpy(np.concatenate([xc, xe])).double()
        y = torch.cat([-torch.ones(len(xc)), torch.ones(len(xe))]).double()
        fit = fit_ridge(x, y)

        def g(s: np.ndarray, fit=fit) -> np.ndarray:
            z = fit.standardise(torch.from_numpy(s.reshape(-1, len(NAMES))).double()).double()
            return (z @ fit.coef.double() + fit.intercept).numpy().reshape(s.shape[:2])

        gc, gb, gn = g(s_clive), g(s_biq), g(s_nt)
        coef = dict(zip(NAMES, (fit.coef.double() / fit.scale.double()).tolist(), strict=True))
        for lam in (0.5, 1.0):

            def pen(gg: np.ndarray, lam: float = lam) -> np.ndarray:
                return lam * width * np.clip(gg, 0, None).mean(1)

            mc, mb, mn = base_clive - pen(gc), base_biq - pen(gb), base_nt - pen(gn)
            orig = {r["photo"]: mn[i] for i, r in enumerate(nt) if r["kind"] == "original"}
            rates = {}
            for kind in OVER_TEST + DEGRADE_TEST:
                pairs = [(orig[r["photo"]], mn[i]) for i, r in enumerate(nt) if r["kind"] == kind]
                rates[kind] = sum(o > e for o, e in pairs) / len(pairs)
            over = sum(round(rates[k] * 32) for k in OVER_TEST)
            deg = [rates[k] for k in DEGRADE_TEST]
            res = {"clive0": float(spearmanr(mc[te], cm[te])[0]), "biq": float(spearmanr(mb, bm)[0]),
                   "over": over, "deg_min": min(deg), "deg_mean": float(np.mean(deg)), "rates": rates,
                   "open_nat_orig": float((gn[[r["kind"] == "original" for r in nt]] > 0).mean()),
                   "open_clive_test": float((gc[te] > 0).mean()), "open_biq": float((gb > 0).mean()),
                   "alpha": float(fit.alpha)}  # fmt: skip
            results[f"{name}-{lam}"] = res
            print(f"{name}-{lam}: CLIVE0 {res['clive0']:.4f} BIQ {res['biq']:.4f} over {over}/192 "
                  f"deg min {res['deg_min']:.3f} mean {res['deg_mean']:.3f} | open nat "
                  f"{res['open_nat_orig']:.2f} clive {res['open_clive_test']:.3f} biq {res['open_biq']:.3f}",
                  flush=True)  # fmt: skip
            print("   " + " ".join(f"{k} {v:.2f}" for k, v in rates.items()), flush=True)
        print("   coef/unit:", {k: round(v, 3) for k, v in coef.items()}, flush=True)
    base = {"clive0": float(spearmanr(base_clive[te], cm[te])[0]), "biq": float(spearmanr(base_biq, bm)[0])}
    print(f"base (shipped, no guard): CLIVE0 {base['clive0']:.4f} BIQ {base['biq']:.4f}")
    if args.out:
        args.out.write_text(json.dumps({"base": base, "candidates": results}, indent=1))


if __name__ == "__main__":
    main()
