"""AGIQA-3k as a second MOS dataset for the ridge head: does it help camera photos? (issue 20, stop 23)

Screening on cached five-crop ``depthwise_late`` statistics (the view of both datasets' product caches):
the ridge's rows are clive-dev's training photos of each split plus ALL AGIQA-3k images, whose MOS is put on
the CLIVE unit scale by a per-dataset affine map (matched mean and std of the split's CLIVE targets — the
scale-free idea of LIQE/UNIQUE in its simplest form), weighted to a total share ``lam`` of the CLIVE rows;
optionally the ranking pairs (squared hinge, as ``compare.py``). Judged on clive-dev's test photos and
BIQ2021-val (never fitted on). A screening shortcut (ours): the features are standardised once with the
mean/std of all 862 clive-dev photos (unlabelled statistics), alpha is the CLIVE-only LOO choice of split 0.

    python experiments/generalisation/second_dataset.py --agiqa runs/generalisation/s23/agiqa_all.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare  # noqa: E402
import features  # noqa: E402

from attiqa.evaluation.metrics import correlations  # noqa: E402
from attiqa.models.backbones import create_backbone  # noqa: E402
from attiqa.splits import split_indices  # noqa: E402
from attiqa.training.ridge import fit_ridge  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agiqa", type=Path, required=True, help="image,mos CSV of AGIQA-3k (mos_quality)")
    ap.add_argument("--natural", type=Path, default=Path("runs/generalisation/natural"))
    ap.add_argument("--pairs-table", default="natural_train110x.csv")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--grid", default="0:0,0.3:0,1:0,0.3:0.5,0:0.5", help="AGIQA share:pair weight, ...")
    args = ap.parse_args()
    torch.set_num_threads(1)
    load = lambda p, **k: features.load(p, crops="five", **k)  # noqa: E731
    clive = load(compare.DATA / "clive-dev/mos.csv", product_cache=True)
    agiqa = load(args.agiqa, product_cache=True)
    biq = load(compare.DATA / "biq2021-val/mos.csv")
    nat_te, nat_tr = load(args.natural / "natural_test.csv"), load(args.natural / args.pairs_table)
    blocks = compare.dw_blocks(create_backbone("efficientnet_lite0_ms", pretrained=False).body.net)
    sel = lambda d: compare.select(d, "dw_from3", blocks)  # noqa: E731
    xc, xa, xb, xn, xt = (sel(d) for d in (clive, agiqa, biq, nat_te, nat_tr))
    idx = {(r["photo"], r["kind"]): i for i, r in enumerate(nat_tr["rows"])}
    pairs = [(idx[(p, "original")], i) for (p, k), i in idx.items() if k != "original"]
    center, scale = xc.mean(0), xc.std(0, unbiased=False).clamp_min(1e-12)
    z = lambda x: ((x - center) / scale).float()  # noqa: E731
    zc, za, zb, zn = z(xc), z(xa), z(xb), z(xn)
    zd = z(xt[[a for a, _ in pairs]]) - z(xt[[b for _, b in pairs]])
    rows = torch.cat([zc, za, zd])
    print("Gram of", tuple(rows.shape), flush=True)
    gram = (rows @ rows.T).double()
    nc, na, nd = len(zc), len(za), len(zd)
    y = ((clive["mos"] - compare.MOS_LO) / (compare.MOS_HI - compare.MOS_LO)).double()
    ya_z = ((agiqa["mos"] - agiqa["mos"].mean()) / agiqa["mos"].std()).double()
    tr0, _ = split_indices(nc, 0.2, 0)
    alpha = fit_ridge(xc[tr0].float(), y[tr0].float()).alpha
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for lam, mu in (tuple(float(v) for v in g.split(":")) for g in args.grid.split(",")):
        cl, bq, rates = [], [], None
        for seed in range(10):
            tr, te = split_indices(nc, 0.2, seed)
            ym, ys = float(y[tr].mean()), float(y[tr].std())
            ca = np.sqrt(lam * len(tr) / na) if lam else 0.0
            cp = np.sqrt(mu * len(tr) / nd) if mu else 0.0
            active = torch.ones(nd, dtype=torch.bool) if mu else torch.zeros(nd, dtype=torch.bool)
            for _ in range(30):
                sel_rows = [torch.as_tensor(tr), nc + torch.arange(na) if lam else torch.arange(0),
                            nc + na + torch.nonzero(active).flatten()]  # fmt: skip
                r = torch.cat(sel_rows)
                c = torch.cat([torch.ones(len(tr)), torch.full((len(sel_rows[1]),), ca),
                               torch.full((len(sel_rows[2]),), cp)]).double()  # fmt: skip
                t = torch.cat([y[tr] - ym, ca * ys * ya_z[: len(sel_rows[1])],
                               torch.full((len(sel_rows[2]),), cp * 0.1, dtype=torch.float64)])  # fmt: skip
                k = c[:, None] * gram[r][:, r] * c[None, :]
                k.diagonal().add_(alpha)
                beta = torch.linalg.solve(k, t)
                w = rows[r].double().T @ (c * beta)
                if not mu:
                    break
                new = (zd.double() @ w) < 0.1
                if torch.equal(new, active):
                    break
                active = new
            pred = lambda q, w=w, ym=ym: q.double() @ w + ym  # noqa: E731
            cl.append(correlations(pred(zc[te]).numpy(), y[te].numpy()))
            bq.append(correlations(pred(zb).numpy(), biq["mos"].double().numpy()))
            if seed == 0:
                rates = compare.over_rates(pred(zn).numpy(), nat_te["rows"])
        med = lambda ms: float(np.median([m["srocc"] for m in ms]))  # noqa: E731
        name = f"agiqa share {lam} pairs mu {mu}"
        results[name] = {"clive_srocc": med(cl), "biq_srocc": med(bq), "clive_split0": cl[0]["srocc"],
                         "biq_split0": bq[0]["srocc"], **rates}  # fmt: skip
        print(
            f"{name:28s} CLIVE {med(cl):.4f} BIQ {med(bq):.4f} (split 0: {cl[0]['srocc']:.4f} / "
            f"{bq[0]['srocc']:.4f}) over6 {rates['over6']:.3f} degr5 {rates['degr5']:.3f}",
            flush=True,
        )
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
