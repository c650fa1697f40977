"""Cache the frozen features every candidate of issue 20 is compared on (run once; resumable).

For each MOS CSV given (``image,mos`` columns; the natural-photo variant tables of ``make_variants.py``
have a dummy mos), the CENTRE 320-px crop of the 500-px view goes once through the product's frozen
EfficientNet-Lite0 and both tap sets are read from that one pass (``MultiLevelStats.raw_sets``): the stage
statistics the attribute heads read (2,848 values, as ``efficientnet_lite0_ms``) and the depthwise
statistics of the ridge head (19,200 values, as ``tap_view("depthwise")``). Stored with the product's
resumable feature cache (``$ATTIQA_CACHE/features``).

Why the centre crop only (ours, a budget choice): the machine ran at a load of ~16 on 2 cores during
this work (0.3 photos/s for five crops); the centre crop is the scorer's fifth view and costs a fifth.
Candidates are compared on it; the shipped model is then checked with the real five-crop scorer.

    python experiments/generalisation/features.py \
        ../shared/data/clive-dev/mos.csv ../shared/data/biq2021-val/mos.csv \
        runs/generalisation/natural/natural_test.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from attiqa.models import create_backbone
from attiqa.models.backbones import Backbone, MultiLevelStats
from attiqa.models.ridge_head import signed_power
from attiqa.models.transforms import CenterCropTest, FiveCropTest
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features

RESIZE, CROP = 500, 320  # configs/default_model.yaml
MS_DIM = 2848  # stage statistics first, then the 19,200 depthwise statistics


class BothTaps(nn.Module):
    """Stage and depthwise statistics of one forward pass, concatenated."""

    def __init__(self, body: MultiLevelStats) -> None:
        super().__init__()
        self.body = body

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.body.raw_sets(x, ("stages", "depthwise")), dim=1)


class OneView(CenterCropTest):
    def __call__(self, img):
        return super().__call__(img).unsqueeze(0)


def both_taps_backbone() -> Backbone:
    ms = create_backbone("efficientnet_lite0_ms")
    return Backbone("efficientnet_lite0@stages+depthwise", BothTaps(ms.body), MS_DIM + 19200, ms.mean, ms.std)


def load(csv: str | Path, progress: bool = False, crops: str = "center", product_cache: bool = False) -> dict:
    """``{"ms": (N, 2848), "dw": (N, 19200), "valid": (N,), "mos": (N,), "rows": [...]}`` (cached).

    ``crops="center"``: the raw statistics of the centre crop. ``crops="five"``: the scorer's view — per
    crop the signed square root (``signed_power``, as the ridge head), then the MEAN over the five crops
    (``"powered": True``; the ridge head is linear, so this is what five-crop scoring predicts), and
    ``"ms5"`` the raw per-crop stage statistics (N, 5, 2848) for the MLP path. ``product_cache``: read
    the two caches ``attiqa train`` fills (stage and depthwise statistics in two passes; clive-dev is
    there) instead of this script's one-pass cache."""
    backbone = both_taps_backbone()
    kind = {"center": "centre_crop", "five": "five_crop"}[crops]
    view = {"kind": kind, "resize_shorter": RESIZE, "crop": CROP, "mean": list(backbone.mean),
            "std": list(backbone.std)}  # fmt: skip
    tf = OneView if crops == "center" else FiveCropTest
    data = MosDataset(Path(csv), None, tf(backbone.mean, backbone.std, RESIZE, CROP), on_error="skip")
    bs = 8 if crops == "center" else 2
    if product_cache:
        ms_bb = create_backbone("efficientnet_lite0_ms")
        ms, ok1 = cached_features(ms_bb, data, view, batch_size=bs, progress=progress)
        dw, ok2 = cached_features(ms_bb.tap_view("depthwise"), data, view, batch_size=bs, progress=progress)
        feats, ok = torch.cat([ms, dw], 2), ok1 & ok2
    else:
        feats, ok = cached_features(backbone, data, view, batch_size=bs, progress=progress)
    out = {"valid": ok, "mos": data.mos.float(), "rows": data.rows}
    if crops == "center":
        return {**out, "ms": feats[:, 0, :MS_DIM], "dw": feats[:, 0, MS_DIM:], "powered": False}
    powered = signed_power(feats, 0.5).mean(1)
    return {**out, "ms": powered[:, :MS_DIM], "dw": powered[:, MS_DIM:], "ms5": feats[:, :, :MS_DIM],
            "powered": True}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--crops", choices=["center", "five"], default="center")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for csv in args.csv:
        out = load(csv, progress=True, crops=args.crops)
        print(f"{csv}: {int(out['valid'].sum())}/{len(out['valid'])} images cached", flush=True)


if __name__ == "__main__":
    main()
