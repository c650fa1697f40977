"""Does the fp16 export of an AGIQA model score like the fp32 checkpoint it came from? (ours)

fp16's smallest subnormal is 6e-8: a ridge ``scale`` (a feature's training spread) below it is stored as 0
(the head then drops that feature: ``RidgeHead.forward``), and ``center`` / ``coef`` lose precision. This
counts the ridge values the export flushed to zero and compares the two models' MOS on every image of the
CSV, from the shared feature cache (the export's heads on the fp32 backbone, so the cache applies); ``--check
N`` then rescores N images from their files with the export itself (fp16 backbone included) through the real
scorer. Exit status 1 if a ridge scale was flushed or the MOS differ by more than ``--tol``.

    python experiments/agiqa3k/check_export.py runs/agiqa3k_model/finetune/last.safetensors \
        attiqa/data/models/attiqa-agiqa3k.safetensors --csv runs/agiqa3k/all.csv --check 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from attiqa.evaluation.metrics import correlations
from attiqa.models import load_model
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features
from attiqa.training.mos import predict_cached
from attiqa.training.sources import five_crop_views

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crossfit import check_against_scorer  # noqa: E402


def scores(model, csv: Path) -> np.ndarray:
    bb = model.backbone
    tf, view = five_crop_views(bb, model.input_sizes["test_resize_shorter"], model.input_sizes["test_crop"])
    data = MosDataset(csv, None, tf, on_error="skip")
    feats, ok = cached_features(bb, data, view, progress=False)
    stats, ok2 = cached_features(bb.tap_view(model.ridge.taps), data, view, progress=False)
    rows = torch.nonzero(ok & ok2).flatten()
    return model.mos_to_dataset_scale(predict_cached(model, feats, rows, stats)).double().numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fp32", type=Path, help="the checkpoint `attiqa train` wrote")
    ap.add_argument("export", type=Path, help="its `attiqa export` (fp16)")
    ap.add_argument("--csv", type=Path, required=True, help="image,mos CSV of the images to compare on")
    ap.add_argument("--check", type=int, default=0)
    ap.add_argument("--tol", type=float, default=0.01, help="largest allowed |MOS difference|")
    a = ap.parse_args()
    torch.set_num_threads(1)
    full, _ = load_model(a.fp32)
    half, _ = load_model(a.export)
    flushed = {}
    for name in ("center", "scale", "coef"):
        x32, x16 = getattr(full.ridge, name), getattr(half.ridge, name)
        flushed[name] = int(((x32 != 0) & (x16 == 0)).sum())
    print("ridge values flushed to 0 by fp16: " + ", ".join(f"{k} {v}" for k, v in flushed.items())
          + f" (smallest fp32 scale {float(full.ridge.scale.min()):.3g})")  # fmt: skip
    half.backbone.load_state_dict(full.backbone.state_dict())  # the fp32 backbone: the cache's key
    p32, p16 = scores(full, a.csv), scores(half, a.csv)
    diff = float(np.abs(p32 - p16).max())
    rank = correlations(p16, p32)["srocc"]
    print(f"{len(p32)} images from the cache: max |MOS fp16 heads - fp32| {diff:.2e}, SROCC between them "
          f"{rank:.6f}")  # fmt: skip
    if a.check:
        data = MosDataset(a.csv, None, lambda img: img)
        idx = np.linspace(0, len(p32) - 1, a.check).round().astype(int)
        d = check_against_scorer(a.export, [Path(data.paths[i]) for i in idx], p32[idx])
        print(f"check: {a.check} images scored from their files by the export (fp16 backbone too): "
              f"max |diff| vs fp32 {d:.2e}")  # fmt: skip
    if flushed["scale"] or diff > a.tol:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
