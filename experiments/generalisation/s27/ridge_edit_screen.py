"""Amendment s27c of decision_rule_s27.txt: the edit statistics as extra inputs of the ridge MOS head, with
the ranking pairs (a split-0 screening of the ridge alone, w = 1).

Inputs per photo: the mean over its five crops of the signed square root of Lite0's depthwise statistics
(the product's cached five-crop features) and of the eight statistics of edit_stats.py (hinge_screen.py's
cache in --work). A k-times smaller penalty on the edit statistics is exact by repeating their columns k^2
times (ridge splits the weight among copies). The fit is the product's ``fit_ridge_rows``.

    python experiments/generalisation/s27/ridge_edit_screen.py --natural runs/guard26/natural \
        --work runs/s27/es --out runs/s27/es/ridge_edit.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from edit_screen import inputs  # this folder (sys.path[0] when run)
from scipy.stats import spearmanr

from attiqa.models.backbones import create_backbone
from attiqa.models.ridge_head import signed_power
from attiqa.training.data import ImageTableDataset
from attiqa.training.ridge import fit_ridge_rows, read_pairs_csv
from attiqa.training.sources import five_crop_views, shared_cached_features

OVER_TEST = ("sharpen", "contrast", "saturation", "exposure", "hue", "combo")
DEGRADE_TEST = ("blur", "noise", "underexposure", "lowcontrast", "desaturation")
CANDIDATES = {"F0": (0, 0.3), "F1": (1, 0.3), "F10": (10, 0.3), "N1": (1, 0.0)}  # name: (k, pair weight)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--natural", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True, help="hinge_screen.py's statistics cache")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    (cp, cm), (bp, bm), (tr, te), nt, _ = inputs(args.natural)
    pair_images, pairs = read_pairs_csv(args.natural / "natural_train110x_pairs.csv")
    taps = create_backbone("efficientnet_lite0_ms").eval().tap_view("depthwise")
    tf, view = five_crop_views(taps, 500, 320)

    def dw(paths: list[Path]) -> torch.Tensor:
        data = ImageTableDataset(paths, torch.zeros(len(paths)), tf, "raise")
        s, ok = shared_cached_features(taps, data, view, None, batch_size=4, workers=0, progress=False)
        assert bool(ok.all()), "unreadable image"
        return signed_power(s[:, :5].float(), 0.5).mean(1)

    edit: dict[str, np.ndarray] = {}
    for name in ("h_clive", "h_biq", "h_nat_test", "h_nat_train"):
        got = np.load(args.work / f"{name}.npz")
        edit |= {str(Path(p).resolve()): s.mean(0) for p, s in zip(got["paths"], got["stats"], strict=True)}

    def es(paths: list[Path]) -> torch.Tensor:
        return torch.from_numpy(np.stack([edit[str(Path(p).resolve())] for p in paths])).float()

    sets = {"clive": cp, "biq": bp, "nat": [args.natural / r["image"] for r in nt], "pairs": pair_images}
    feats = {k: (dw(v), es(v)) for k, v in sets.items()}
    lo, hi = cm[tr].min(), cm[tr].max()
    y = torch.from_numpy((cm - lo) / (hi - lo)).double()
    results = {}
    for name, (k, mu) in CANDIDATES.items():

        def x_of(key: str, k: int = k) -> torch.Tensor:
            d, e = feats[key]
            return torch.cat([d, *([e] * (k * k))], 1) if k else d

        xp = x_of("pairs")
        fit = fit_ridge_rows(x_of("clive")[tr], y[tr], (), xp[pairs[:, 0]], xp[pairs[:, 1]], mu, 0.1)
        pred = {key: fit.predict(x_of(key)).double().numpy() for key in ("clive", "biq", "nat")}
        orig = {r["photo"]: pred["nat"][i] for i, r in enumerate(nt) if r["kind"] == "original"}
        rates = {}
        for kind in OVER_TEST + DEGRADE_TEST:
            got_pairs = [(orig[r["photo"]], pred["nat"][i]) for i, r in enumerate(nt) if r["kind"] == kind]
            rates[kind] = sum(o > e for o, e in got_pairs) / len(got_pairs)
        over = sum(round(rates[t] * 32) for t in OVER_TEST)
        deg = [rates[t] for t in DEGRADE_TEST]
        res = {"clive0": float(spearmanr(pred["clive"][te], cm[te])[0]),
               "biq": float(spearmanr(pred["biq"], bm)[0]), "over": over, "deg_min": min(deg),
               "deg_mean": float(np.mean(deg)), "rates": rates, "alpha": fit.alpha}  # fmt: skip
        results[name] = res
        print(f"{name} (k {k}, pairs {mu}): CLIVE0 {res['clive0']:.4f} BIQ {res['biq']:.4f} over {over}/192 "
              f"deg min {res['deg_min']:.3f} mean {res['deg_mean']:.3f}", flush=True)  # fmt: skip
        print("   " + " ".join(f"{t} {v:.2f}" for t, v in rates.items()), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
