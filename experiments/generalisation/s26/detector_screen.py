"""Split-0 screening of the guard's detector per pair table: the ridge alone (w = 1), product fits.

Why (stop 26): on a fresh machine the MLP's features of clive-dev, BIQ2021-val and the held-out variants
could not all be recomputed in the session's CPU budget; the guard's detector needs only the ridge's tap
statistics. This fits, exactly as ``attiqa train`` does on split seed 0 (``fit_ridge`` with leave-one-out
alpha on the training photos' five-crop means, targets on the training MOS's unit scale; ``fit_guard`` on
r's standardised statistics, -1 = training photos + the table's originals, +1 = its edits), and scores
the held-out variants crop by crop as :class:`attiqa.models.ridge_head.RidgeHead` does (the scorer averages
the crops' MOS). So each table's row is s25's C3 head (ridge alone, its lambda), not a recipe file: the
recipe's 30 % MLP share is left out. Reports, per table and lambda: over-processings / degradations below
their original (per type), the share of crops where g > 0 on held-out natural originals, on CLIVE
split-0 test photos and (with ``--biq``) on BIQ2021-val, and CLIVE split-0 / BIQ2021-val SROCC.

    python experiments/generalisation/s26/detector_screen.py --natural runs/guard26/natural \
        --tables C2=natural_train110x_pairs.csv D1=runs/guard26/s26/D1_pairs.csv --out X.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from compare import over_rates  # noqa: E402

from attiqa.evaluation.metrics import correlations  # noqa: E402
from attiqa.models.backbones import create_backbone  # noqa: E402
from attiqa.models.ridge_head import signed_power  # noqa: E402
from attiqa.splits import split_indices  # noqa: E402
from attiqa.training.data import ImageTableDataset, MosDataset  # noqa: E402
from attiqa.training.ridge import fit_guard, fit_ridge, read_pairs_csv  # noqa: E402
from attiqa.training.sources import five_crop_views, shared_cached_features  # noqa: E402

VIEWS = 5
DATA = Path("../shared/data")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--natural", type=Path, required=True, help="make_variants.py's output folder")
    ap.add_argument("--tables", nargs="+", required=True, help="NAME=pair CSV (in --natural, or a path)")
    ap.add_argument("--lams", default="0.5,1")
    ap.add_argument("--biq", action="store_true", help="also BIQ2021-val (its tap statistics must be cached)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    taps = create_backbone("efficientnet_lite0_ms").eval().tap_view("depthwise")
    tf, view = five_crop_views(taps, 500, 320)
    kw = {"batch_size": 4, "workers": 0, "progress": False}

    def stats_of(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        s, ok = shared_cached_features(taps, ImageTableDataset(paths, torch.zeros(len(paths)), tf, "skip"),
                                       view, None, **kw)  # fmt: skip
        return signed_power(s[:, :VIEWS].float(), 0.5), ok  # (N, 5, F) transformed, per crop (as the fit)

    clive = MosDataset(DATA / "clive-dev/mos.csv", None, lambda im: im)
    xc, okc = stats_of(list(clive.paths))
    tr, va = split_indices(len(clive.paths), 0.2, 0)
    tr = [i for i in tr if okc[i]]
    va = [i for i in va if okc[i]]
    mos = clive.mos.float()
    lo, hi = float(mos[tr].min()), float(mos[tr].max())
    fit = fit_ridge(xc[tr].mean(1), (mos[tr] - lo) / (hi - lo))
    with open(args.natural / "natural_test.csv", newline="") as fh:
        nat_rows = list(csv.DictReader(fh))
    xn, okn = stats_of([args.natural / r["image"] for r in nat_rows])
    keep = [i for i in range(len(nat_rows)) if okn[i]]
    extra = {}
    if args.biq:
        biq = MosDataset(DATA / "biq2021-val/mos.csv", None, lambda im: im)
        xb, okb = stats_of(list(biq.paths))
        extra["biq"] = (xb[okb], biq.mos.double()[okb])

    def r_and_g(x: torch.Tensor, guard) -> tuple[torch.Tensor, torch.Tensor]:
        z = fit.standardise(x.flatten(0, 1)).double()  # per crop, float32 standardisation as the head
        r = z @ fit.coef.double() + fit.intercept
        g = z @ guard.coef.double() + guard.bias
        return r.view(len(x), VIEWS), g.view(len(x), VIEWS)

    out: dict = {"clive_alpha": fit.alpha, "tables": {}}
    for spec in args.tables:
        name, path = spec.split("=", 1)
        table = args.natural / path if (args.natural / path).is_file() else Path(path)
        paths, pairs = read_pairs_csv(table)
        xp, okp = stats_of(paths)
        pairs = pairs[okp[pairs[:, 0]] & okp[pairs[:, 1]]]
        edited = torch.zeros(len(paths), dtype=torch.bool)
        edited[pairs[:, 1]] = True
        used = torch.zeros(len(paths), dtype=torch.bool)
        used[pairs.flatten()] = True
        xm = xp.mean(1)
        guard = fit_guard(fit, torch.cat([xc[tr].mean(1), xm[used & ~edited]]), xm[edited])
        res: dict = {"clean": len(tr) + int((used & ~edited).sum()), "edited": int(edited.sum()),
                     "alpha": guard.alpha, "loo_rmse": guard.loo_rmse}  # fmt: skip
        rn, gn = r_and_g(xn[keep], guard)
        rc, gc = r_and_g(xc[va], guard)
        orig = [k for k, i in enumerate(keep) if nat_rows[i]["kind"] == "original"]
        res["open_nat_originals"] = float((gn[orig] > 0).double().mean())
        res["open_nat_edits"] = float(
            (gn[[k for k in range(len(keep)) if k not in set(orig)]] > 0).double().mean()
        )
        res["open_clive_test"] = float((gc > 0).double().mean())
        if "biq" in extra:
            rb, gb = r_and_g(extra["biq"][0], guard)
            res["open_biq"] = float((gb > 0).double().mean())
        for lam in [0.0, *(float(v) for v in args.lams.split(","))]:
            pn = (rn - lam * gn.clamp(min=0)).mean(1)
            rates = over_rates(pn.numpy(), [nat_rows[i] for i in keep])
            row = {k: v for k, v in rates.items() if v == v}
            row["clive_split0"] = correlations(
                (rc - lam * gc.clamp(min=0)).mean(1).numpy(), mos[va].double().numpy()
            )["srocc"]
            if "biq" in extra:
                row["biq"] = correlations(
                    (rb - lam * gb.clamp(min=0)).mean(1).numpy(), extra["biq"][1].numpy()
                )["srocc"]
            res[f"lam{lam:g}"] = row
        out["tables"][name] = res
        print(name, json.dumps(res), flush=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
