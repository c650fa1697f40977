"""Does averaging fine-tuning seeds lift the default recipe? (issue 3's search for 0.85)

For each of the bench protocol's random 80/20 splits of a MOS dataset, fine-tune the recipe's heads from
the pretrained checkpoint with ``--seeds`` different seeds (feature-cache mode: seconds each), and compare
the first seed alone with the mean prediction of all seeds (five-crop test, last epoch).

    python experiments/default_model/seed_ensemble.py -d clive:folder=../shared/data/clive-dev/mos.csv \
        --init runs/default_model/pretrain/model.safetensors --splits 5 --seeds 5
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from attiqa.bench_setup import load_base_config
from attiqa.bench_splits import random_splits
from attiqa.datasets import get_dataset
from attiqa.datasets.readers import parse_data_spec
from attiqa.evaluation.metrics import correlations
from attiqa.models import load_model
from attiqa.protocols import write_split_csv
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features
from attiqa.training.finetune import finetune
from attiqa.training.sources import five_crop_views


def test_features(model, split_csv: Path, test_rows: list[int], cfg) -> tuple[torch.Tensor, np.ndarray]:
    """The test photos' cached five-crop features (the frozen backbone is the same for every seed) and MOS."""
    tf, view = five_crop_views(model.backbone, cfg.resize_shorter, cfg.crop_size)
    data = MosDataset(split_csv, None, tf, on_error="skip")
    feats, _ = cached_features(model.backbone, data, view, progress=False)
    return feats[test_rows], data.mos[test_rows].numpy()


@torch.no_grad()
def predict(model, feats: torch.Tensor) -> np.ndarray:
    """Five-crop MOS predictions of ``model`` from cached features."""
    model.eval()
    out = model.forward_features(model.backbone.normalize(feats.flatten(0, 1)))
    return model.mos_to_dataset_scale(out.mos.view(len(feats), -1).mean(1)).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--data", required=True, help="[LABEL:]NAME=ROOT as for attiqa bench")
    ap.add_argument("-c", "--config", default="configs/default_model.yaml")
    ap.add_argument("--init", type=Path, required=True, help="pretrained checkpoint")
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("-o", "--out", type=Path, default=Path("runs/seed_ensemble"))
    args = ap.parse_args()
    _, name, root = parse_data_spec(args.data)
    items = get_dataset(name, root).items
    cfg = load_base_config(args.config)
    single, ensemble = [], []
    for split in random_splits(len(items), args.splits, 0):
        run = args.out / split.name
        run.mkdir(parents=True, exist_ok=True)
        csv = write_split_csv(run / "split.csv", items, split)
        test_rows = list(range(len(split.train), len(split.train) + len(split.test)))
        preds, feats, mos = [], None, None
        for seed in range(args.seeds):
            seed_cfg = replace(cfg, csv=str(csv), image_root="", seed=seed)
            finetune(seed_cfg, args.init, run / f"seed{seed}", progress=False)
            model, _ = load_model(run / f"seed{seed}" / "finetune" / "last.safetensors")
            if feats is None:
                feats, mos = test_features(model, csv, test_rows, cfg)
            preds.append(predict(model, feats))
        single.append(correlations(preds[0], mos))
        ensemble.append(correlations(np.mean(preds, 0), mos))
        print(
            f"{split.name}: seed 0 SROCC {single[-1]['srocc']:.4f}, "
            f"mean of {args.seeds} seeds {ensemble[-1]['srocc']:.4f}",
            flush=True,
        )
    for label, res in (("seed 0", single), (f"{args.seeds}-seed mean", ensemble)):
        print(
            f"{label}: median SROCC {np.median([r['srocc'] for r in res]):.3f}, "
            f"PLCC {np.median([r['plcc'] for r in res]):.3f}"
        )


if __name__ == "__main__":
    main()
