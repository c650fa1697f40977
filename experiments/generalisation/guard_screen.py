"""Screening (issue 20, stop 24; ours): is the CLIVE / over-processing frontier a limit of a LINEAR head?

Every pair-fitted head of stops 22-24 lies on one line (CLIVE 0.848 at 0.95 over-processing, ...): one
linear map must both fit CLIVE's MOS and rank every edit below its original. A gated penalty needs no
compromise where the gate is shut:

    MOS(x) = r(x) - lam * max(0, g(x))

r = the plain ridge on the MOS rows (the shipped recipe's head, ``depthwise_late`` here); g = a ridge
"edit detector" (the product's ``fit_ridge``, alpha by leave-one-out) fitted to -1 on the split's CLIVE
training photos and the natural originals, +1 on their training edits (the 110-photo pair table's 13
over-processings and degradations). Where g < 0 (an unedited photo) the MOS is the plain ridge's. Not a
product head (the scorer's ridge head is linear): a screening on the cached five-crop statistics; lam on
the unit MOS scale. Same splits, held-out photos and BIQ2021-val as ``candidates_s24.py``.

    python experiments/generalisation/guard_screen.py --backbone lite0 --lams 0.05,0.1,0.2 --splits 10 \
        --out runs/generalisation/s24/guard_lite0.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import candidates_s24 as c24  # noqa: E402
import compare  # noqa: E402
import features  # noqa: E402

from attiqa.evaluation.metrics import correlations  # noqa: E402
from attiqa.models.backbones import create_backbone  # noqa: E402
from attiqa.models.ridge_head import signed_power  # noqa: E402
from attiqa.splits import split_indices  # noqa: E402
from attiqa.training.data import MosDataset  # noqa: E402
from attiqa.training.feature_cache import cached_features  # noqa: E402
from attiqa.training.mos import TEST_VIEWS  # noqa: E402
from attiqa.training.ridge import ALPHAS, ExtraRows, fit_ridge, fit_ridge_rows  # noqa: E402
from attiqa.training.sources import five_crop_views  # noqa: E402


def per_crop(csv: Path, cols) -> torch.Tensor:
    """Lite0 only: (N, 5, F) per-crop signed square roots of the depthwise statistics (the scorer applies its
    heads crop by crop and averages the MOS: for a gated head that is not the gate of the crop mean)."""
    if csv == compare.DATA / "clive-dev/mos.csv":  # the product's cache, as candidates_s24.loader
        bb = create_backbone("efficientnet_lite0_ms")
        tf, view = five_crop_views(bb, 500, 320)
        data = MosDataset(csv, None, tf, on_error="skip")
        stats, _ = cached_features(bb.tap_view("depthwise"), data, view, batch_size=2, progress=False)
        return signed_power(stats[:, :TEST_VIEWS], 0.5)[:, :, cols].double()
    bb = features.both_taps_backbone()
    tf, view = five_crop_views(bb, features.RESIZE, features.CROP)
    data = MosDataset(csv, None, tf, on_error="skip")
    stats, _ = cached_features(bb, data, view, batch_size=2, progress=False)
    return signed_power(stats[:, :, features.MS_DIM :], 0.5)[:, :, cols].double()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", choices=["lite0", "lite1", "lite2"], default="lite0")
    ap.add_argument("--lams", default="0.05,0.1,0.2")
    ap.add_argument("--taps", default="late", choices=["late", "dw"])
    ap.add_argument("--splits", type=int, default=1)
    ap.add_argument("--share", type=float, default=0.0, help="AGIQA-3k rows in r (fit_ridge_rows, as s24)")
    ap.add_argument("--mu", type=float, default=0.0, help="ranking pairs in r too (weight; margin 0.1)")
    ap.add_argument("--alpha-mult", type=float, default=1.0, help="r's alpha = this x the leave-one-out one")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--agiqa-zero-shot", action="store_true",
                    help="also score AGIQA-3k zero-shot (genbench's images: is the gate open?)")  # fmt: skip
    ap.add_argument("--per-crop", action="store_true", help="gate each crop, average (the scorer's way)")
    ap.add_argument("--pairs-table", default="natural_train110x.csv",
                    help="natural_train60x.csv: the 60-photo table (780 pairs; Lite1, stop 24)")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(1)
    load, net = c24.loader(args.backbone)
    clive = load(compare.DATA / "clive-dev/mos.csv")
    biq = load(compare.DATA / "biq2021-val/mos.csv")
    nat_te = load(c24.NATURAL / "natural_test.csv")
    nat_tr = load(c24.NATURAL / args.pairs_table)
    cols = c24.columns(net, clive["dw"].shape[1], args.taps)
    x, xb, xn, xt = (d["dw"][:, cols].double() for d in (clive, biq, nat_te, nat_tr))
    y = ((clive["mos"] - compare.MOS_LO) / (compare.MOS_HI - compare.MOS_LO)).double()
    edited = torch.tensor([r["kind"] != "original" for r in nat_tr["rows"]])
    idx = {(r["photo"], r["kind"]): i for i, r in enumerate(nat_tr["rows"])}
    pairs = [(idx[(p, "original")], i) for (p, k), i in idx.items() if k != "original"]
    bt, wt = (xt[[p[j] for p in pairs]] for j in (0, 1))
    agiqa = load(c24.AGIQA) if args.share or args.agiqa_zero_shot else None
    xa = agiqa["dw"][:, cols].double() if agiqa is not None else None
    extra = [ExtraRows(xa, agiqa["mos"].double(), args.share)] if args.share else []
    lams = [float(v) for v in args.lams.split(",")]
    if args.per_crop:
        sets = (compare.DATA / "clive-dev/mos.csv", compare.DATA / "biq2021-val/mos.csv",
                c24.NATURAL / "natural_test.csv")  # fmt: skip
        c5, b5, n5 = (per_crop(p, cols) for p in sets)
        five = {id(x): c5, id(xb): b5, id(xn): n5}
    per = {lam: {"cl": [], "bq": [], "ag": [], "gate_clive": [], "gate_biq": [], "gate_agiqa": []}
           for lam in [0.0, *lams]}  # fmt: skip
    for seed in range(args.splits):
        t0 = time.time()
        tr, te = split_indices(len(y), 0.2, seed)
        alphas = (fit_ridge(x[tr], y[tr]).alpha * args.alpha_mult,) if args.alpha_mult != 1 else ALPHAS
        r = fit_ridge_rows(x[tr], y[tr], extra, bt, wt, args.mu, 0.1, alphas)
        xg = torch.cat([x[tr], xt])
        tg = torch.cat([-torch.ones(len(tr)), torch.where(edited, 1.0, -1.0)]).double()
        g = fit_ridge(xg, tg)
        for lam in per:

            def pred(q, lam=lam, r=r, g=g, rows=slice(None)):
                if args.per_crop:  # r is linear: r(mean) = mean of r; the gate crop by crop
                    q5 = five[id(q)][rows]
                    gates = [g.predict(q5[:, k]).clamp(min=0) for k in range(q5.shape[1])]
                    pen = torch.stack(gates, 1).mean(1)
                    return (r.predict(q[rows]) - lam * pen).double().numpy()
                return (r.predict(q[rows]) - lam * g.predict(q[rows]).clamp(min=0)).double().numpy()

            d = per[lam]
            d["cl"].append(correlations(pred(x, rows=te), y[te].numpy()))
            d["bq"].append(correlations(pred(xb), biq["mos"].double().numpy()))
            d["gate_clive"].append(float((g.predict(x[te]) > 0).double().mean()))
            d["gate_biq"].append(float((g.predict(xb) > 0).double().mean()))
            if args.agiqa_zero_shot:  # never fitted on here (share 0): zero-shot, as genbench uses the model
                d["ag"].append(correlations(pred(xa), agiqa["mos"].double().numpy()))
                d["gate_agiqa"].append(float((g.predict(xa) > 0).double().mean()))
            if seed == 0:
                d["rates"] = compare.over_rates(pred(xn), nat_te["rows"])
        print(f"split {seed}: {time.time() - t0:.0f} s (detector alpha {g.alpha:.3g})", flush=True)
    med = lambda ms, k: float(np.median([m[k] for m in ms]))  # noqa: E731
    out = {}
    for lam, d in per.items():
        res = {"clive_srocc": med(d["cl"], "srocc"), "biq_srocc": med(d["bq"], "srocc"),
               "clive_split0": d["cl"][0]["srocc"], "biq_split0": d["bq"][0]["srocc"],
               "gate_open_clive_test": float(np.median(d["gate_clive"])),
               "gate_open_biq": float(np.median(d["gate_biq"])), "share": args.share,
               "mu": args.mu, "alpha_mult": args.alpha_mult, **d["rates"],
               **({"agiqa_srocc": med(d["ag"], "srocc"), "gate_open_agiqa": float(np.median(d["gate_agiqa"]))}
                  if d["ag"] else {}),
               "clive_per_split": [round(m["srocc"], 4) for m in d["cl"]], "splits": args.splits}  # fmt: skip
        tag = "" if args.pairs_table == "natural_train110x.csv" else f" [{args.pairs_table}]"
        tag += f" mu{args.mu}" if args.mu else ""
        tag += f" alpha x{args.alpha_mult}" if args.alpha_mult != 1 else ""
        tag += " per-crop gate" if args.per_crop else ""
        out[f"{args.backbone} guard {args.taps} agiqa{args.share} lam{lam}{tag}"] = res
        print(f"lam {lam:5.2f}: CLIVE {res['clive_srocc']:.4f} (s0 {res['clive_split0']:.3f})  BIQ "
              f"{res['biq_srocc']:.4f} (s0 {res['biq_split0']:.3f})  gate open on "
              f"{res['gate_open_clive_test']:.2f} of CLIVE test, {res['gate_open_biq']:.2f} of BIQ  "
              + compare.rate_text(d["rates"])
              + (f"  AGIQA zero-shot {res['agiqa_srocc']:.4f} (gate open {res['gate_open_agiqa']:.2f})"
                 if d["ag"] else ""),
              flush=True)  # fmt: skip
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
