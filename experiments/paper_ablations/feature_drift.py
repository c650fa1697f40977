"""Paper Table 5 analogue: cosine similarity of features before and after fine-tuning.

The paper compares the encoder's features of the pretrained and the fine-tuned model. In the CPU recipe
(``feature_cache: true``) the backbone is frozen, so its features are identical (cosine 1) by construction;
what fine-tuning moves is the heads' hidden layer — the representation the regression MLP reads (§3.5). This
script measures that one: per test photo, the cosine between the concatenated head features (mean over the
five test crops) of the pretrained checkpoint and of each fine-tuned checkpoint of a bench kept with
``--keep-checkpoints``; printed per split with its median.

    python experiments/paper_ablations/feature_drift.py --init runs/t9_100/pretrain/model.safetensors \
        --bench runs/t9_100/bench --csv ../shared/data/clive-dev/mos.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from attiqa.models import load_model
from attiqa.training.cached import TEST_VIEWS, five_crop_views
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features


@torch.no_grad()
def head_features(model, feats: torch.Tensor) -> torch.Tensor:
    """(N, nH * hidden): the heads' hidden features, mean over the five test crops."""
    model.eval()
    f = model.backbone.normalize(feats[:, :TEST_VIEWS].flatten(0, 1))
    hidden = torch.cat([model.heads[h].hidden(f) for h in model.head_names], dim=1)
    return hidden.view(len(feats), TEST_VIEWS, -1).mean(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", type=Path, required=True, help="pretrained checkpoint fine-tuning started from")
    ap.add_argument("--bench", type=Path, required=True, help="a bench folder run with --keep-checkpoints")
    ap.add_argument("--csv", type=Path, required=True, help="the MOS CSV the bench fine-tuned on")
    ap.add_argument("--resize-shorter", type=int, default=500, help="fine-tuning view (the recipe's: 500)")
    ap.add_argument("--crop", type=int, default=320, help="fine-tuning crop (the recipe's: 320)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    before, _ = load_model(a.init)
    tf, view = five_crop_views(before.backbone, a.resize_shorter, a.crop)
    data = MosDataset(a.csv, None, tf, on_error="skip")
    feats, valid = cached_features(before.backbone, data, view, progress=False)
    ckpts = sorted(a.bench.rglob("best.safetensors")) or sorted(a.bench.rglob("last.safetensors"))
    if not ckpts:
        raise SystemExit(f"{a.bench}: no fine-tuned checkpoints — run the bench with --keep-checkpoints")
    rows = torch.nonzero(valid).squeeze(1)
    z0 = head_features(before, feats[rows])
    medians = []
    for path in ckpts:
        after, _ = load_model(path)
        cos = F.cosine_similarity(z0, head_features(after, feats[rows]), dim=1).numpy()
        medians.append(float(np.median(cos)))
        print(
            f"{path}: head features, cosine before/after: median {np.median(cos):.3f}, mean {cos.mean():.3f}",
        )
    print(f"median over {len(ckpts)} runs: {np.median(medians):.3f} (backbone features: 1.000, frozen)")


if __name__ == "__main__":
    main()
