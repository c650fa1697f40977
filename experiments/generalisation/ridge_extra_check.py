"""The product's ``finetune.ridge_extra`` on real data (issue 20, stop 23): ridge alone, clive-dev splits.

The fit is the product's: :func:`attiqa.training.ridge.ridge_fitter` on a ``FinetuneConfig`` with
``ridge_taps: depthwise`` (configs/default_model.yaml's taps, 500 px / 320 crops) and the extra table at each
share — the extra images' five-crop statistics from the product feature cache, their MOS mapped affinely
onto the split's training targets, alpha the CLIVE rows' leave-one-out choice. Judged by the ridge alone
(no MOS MLP, no cross-validated weight: a full ``attiqa train`` also trains the MLP) on the held-out photos
of each random clive-dev split (``attiqa train``'s split_seed) and on BIQ2021-val (never fitted on; its
statistics from ``features.py``'s cache of the same depthwise taps, checked against the product view on
the six images the product cache holds).

    python experiments/generalisation/ridge_extra_check.py --extra AGIQA.csv --shares 0,0.1 --splits 10 \
        --out X.json
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

from attiqa.config import FinetuneConfig, RidgeExtraConfig  # noqa: E402
from attiqa.evaluation.metrics import correlations  # noqa: E402
from attiqa.models.backbones import create_backbone  # noqa: E402
from attiqa.models.ridge_head import signed_power  # noqa: E402
from attiqa.splits import split_indices  # noqa: E402
from attiqa.training.data import MosDataset, read_mos_split  # noqa: E402
from attiqa.training.mos import TEST_VIEWS  # noqa: E402
from attiqa.training.ridge import ridge_fitter  # noqa: E402
from attiqa.training.sources import five_crop_views, shared_cached_features  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extra", required=True, help="image,mos CSV of the extra table (AGIQA-3k mos_quality)")
    ap.add_argument("--shares", default="0,0.1")
    ap.add_argument("--splits", type=int, default=1, help="clive-dev random 80/20 splits, seeds 0..K-1")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    clive_csv = str(compare.DATA / "clive-dev/mos.csv")
    backbone = create_backbone("efficientnet_lite0_ms")
    kw = {"batch_size": 2, "workers": 0, "progress": False}
    split = read_mos_split(clive_csv, "", 0.2, 0)
    view_tf, view = five_crop_views(backbone, 500, 320)
    taps = backbone.tap_view("depthwise")
    stats, ok = shared_cached_features(taps, split.dataset(view_tf), view, None, **kw)
    x = signed_power(stats[:, :TEST_VIEWS], 0.5).mean(1)
    biq = features.load(compare.DATA / "biq2021-val/mos.csv", crops="five")
    xb, yb, okb = biq["dw"], biq["mos"], biq["valid"]
    probe = MosDataset(compare.DATA / "biq2021-val/mos.csv", None, view_tf, on_error="skip")
    rows = [0, 1, 2, 10, 11, 12]  # the same statistics as the product's view (these six are in its cache)
    probe.paths, probe.targets = [probe.paths[i] for i in rows], probe.targets[rows]
    pb, _ = shared_cached_features(taps, probe, view, None, **kw)
    gap = float((signed_power(pb[:, :TEST_VIEWS], 0.5).mean(1) - xb[rows]).abs().max())
    print(f"BIQ2021-val statistics: features.py vs product view, max |diff| {gap:.2e}", flush=True)
    results = {}
    for share in (float(s) for s in args.shares.split(",")):
        extra = [RidgeExtraConfig(csv=args.extra, share=share)] if share > 0 else []
        cfg = FinetuneConfig(csv=clive_csv, resize_shorter=500, crop_size=320, feature_cache=True,
                             ridge_taps="depthwise", ridge_power=0.5, ridge_extra=extra)  # fmt: skip
        fitter, card = ridge_fitter(cfg, backbone, kw)[:2]
        per_split = []
        for seed in range(args.splits):
            train, val = split_indices(len(split.mos), 0.2, seed)
            tr = torch.tensor([i for i in train if ok[i]])
            te = torch.tensor([i for i in val if ok[i]])
            fit = fitter(x[tr], split.mos[tr].float())
            clive = correlations(fit.predict(x[te]).double().numpy(), split.mos[te].double().numpy())
            cross = correlations(fit.predict(xb[okb]).double().numpy(), yb[okb].double().numpy())
            per_split.append({"seed": seed, "clive": clive, "biq2021_val": cross, "alpha": fit.alpha})
            print(f"share {share} split {seed}: alpha {fit.alpha:.3g} CLIVE SROCC {clive['srocc']:.4f} "
                  f"PLCC {clive['plcc']:.4f}  BIQ2021-val SROCC {cross['srocc']:.4f} "
                  f"PLCC {cross['plcc']:.4f}",
                  flush=True)  # fmt: skip
        med = {k: float(np.median([r[k]["srocc"] for r in per_split])) for k in ("clive", "biq2021_val")}
        print(
            f"share {share}: median SROCC over {args.splits} splits: CLIVE {med['clive']:.4f} "
            f"BIQ2021-val {med['biq2021_val']:.4f}",
            flush=True,
        )
        results[f"share {share}"] = {"median_srocc": med, "splits": per_split, "extra": card.get("extra", [])}
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
