"""Supplement Table 9 analogue ("impact of dataset scale"): pretrain on 0 / 20 / 50 / 100 % of the photos.

The paper pretrains on 20 %, 50 % and 100 % of ImageNet with CLIP labels and fine-tunes end to end. Here
(no CLIP, no GPU), per random 80/20 split of a MOS CSV:

- pretraining pool = that split's TRAINING photos (so no test photo is seen in either stage), labelled by
  the ``classical`` teacher (a label file from ``attiqa label``); a seeded share of the pool is drawn
  (``--draws`` draws per share);
- the recipe's CPU mode on one view: frozen EfficientNet-Lite0 stage statistics (``efficientnet_lite0_ms``)
  of the centre 320 crop of the 500-px view (ours, budget: one crop instead of five — the machine ran at a
  load of ~16 on 2 cores); the five heads (hidden 128) pretrained with the paper's ranking loss, batch 256,
  lr 1e-4, 100 epochs; then the heads' first layers + the MOS MLP fine-tuned as ``configs/default_model.yaml``
  (20 epochs, batch 16, lr 1e-4 / head lr 1e-3, cosine), the last epoch scored on the test photos;
- 0 % = no pretraining (freshly initialised heads, ablation (a)).

The MOS MLP alone is reported: the shipped model's ridge head does not depend on pretraining.

Also printed, the paper's Table 5 analogue: the cosine similarity between features before and after
fine-tuning. The backbone is frozen here (its features: cosine 1 by construction), so it is measured on what
fine-tuning does move, the heads' hidden features (concatenated, what the MOS MLP reads), per test photo,
median — for pretrained heads and for freshly initialised ones (0 %). The backbone
and view are those of ``experiments/generalisation/features.py`` (issue 20), so the two share one cache
entry under ``$ATTIQA_CACHE/features`` (whichever runs first pays for the features).

    python experiments/paper_ablations/dataset_scale.py --csv ../shared/data/clive-dev/mos.csv \
        --labels runs/t9/clive_classical.parquet --splits 10 --draws 3
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from torch import nn

from attiqa.attributes import ATTRIBUTES
from attiqa.config import FinetuneConfig
from attiqa.evaluation.metrics import correlations
from attiqa.models import AttiqaModel, create_backbone
from attiqa.models.backbones import Backbone, MultiLevelStats
from attiqa.models.transforms import CenterCropTest
from attiqa.splits import split_indices
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features
from attiqa.training.losses import make_pretrain_loss
from attiqa.training.mos import cached_mos_trainer, keep_one_head

RESIZE, CROP, MS_DIM = 500, 320, 2848
RECIPE = FinetuneConfig(  # configs/default_model.yaml's finetune stage (feature-cache mode)
    csv="", head_hidden=128, epochs=20, batch_size=16, lr=1e-4, head_lr=1e-3, lr_schedule="cosine"
)


class _StageAndDepthwise(nn.Module):
    """Stage and depthwise statistics from one pass (the layout of issue 20's cache entry)."""

    def __init__(self, body: MultiLevelStats) -> None:
        super().__init__()
        self.body = body

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.body.raw_sets(x, ("stages", "depthwise")), dim=1)


class _OneView(CenterCropTest):
    def __call__(self, img):
        return super().__call__(img).unsqueeze(0)


def centre_crop_stage_features(csv: Path) -> tuple[torch.Tensor, torch.Tensor, MosDataset]:
    """(N, 2848) raw stage statistics of the centre crop, (N,) readable mask, and the dataset."""
    ms = create_backbone("efficientnet_lite0_ms")
    both = Backbone("efficientnet_lite0@stages+depthwise", _StageAndDepthwise(ms.body), MS_DIM + 19200,
                    ms.mean, ms.std)  # fmt: skip
    view = {"kind": "centre_crop", "resize_shorter": RESIZE, "crop": CROP, "mean": list(both.mean),
            "std": list(both.std)}  # fmt: skip
    data = MosDataset(csv, None, _OneView(both.mean, both.std, RESIZE, CROP), on_error="skip")
    feats, ok = cached_features(both, data, view, batch_size=8)
    return feats[:, 0, :MS_DIM], ok, data


def pseudo_labels(labels: Path, paths: list[Path]) -> torch.Tensor:
    """(N, 5) label rows for ``paths`` (by file name; NaN where a photo has no label)."""
    t = pq.read_table(labels)
    by_name = {Path(p).name: i for i, p in enumerate(t.column("image").to_pylist())}
    cols = np.stack([t.column(a).to_numpy() for a in ATTRIBUTES], 1).astype(np.float32)
    out = np.full((len(paths), len(ATTRIBUTES)), np.nan, np.float32)
    for i, p in enumerate(paths):
        if Path(p).name in by_name:
            out[i] = cols[by_name[Path(p).name]]
    return torch.from_numpy(out)


def fresh_model(seed: int) -> AttiqaModel:
    torch.manual_seed(seed)
    return AttiqaModel(create_backbone("efficientnet_lite0_ms"), ATTRIBUTES, RECIPE.head_hidden)


def pretrain(feats: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor, seed: int) -> AttiqaModel:
    """The heads on ``rows``: ranking loss (eq. 3-4, m = 0.1), AdamW lr 1e-4, batch 256, 100 epochs."""
    model = fresh_model(seed)
    model.backbone.set_feature_statistics(feats[rows])
    model.backbone.requires_grad_(False)
    opt = torch.optim.AdamW(model.heads.parameters(), lr=1e-4, weight_decay=0.01)
    loss_fn = make_pretrain_loss("ranking", 0.1)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    model.backbone.eval()
    bsz = min(256, len(rows))
    for _ in range(100):
        order = rows[torch.randperm(len(rows), generator=gen)]
        for s in range(0, len(order) - len(order) % bsz, bsz):  # whole batches only, as the recipe
            idx = order[s : s + bsz]
            out = model.forward_features(model.backbone.normalize(feats[idx]))
            loss = loss_fn(out.attributes, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model


@torch.no_grad()
def head_features(model: AttiqaModel, feats: torch.Tensor) -> torch.Tensor:
    """The heads' hidden features, concatenated (what the MOS MLP reads)."""
    model.eval()
    f = model.backbone.normalize(feats)
    return torch.cat([model.heads[h].hidden(f) for h in model.head_names], dim=1)


def finetune_and_test(model: AttiqaModel, feats, mos, tr, te, seed: int, fresh: bool) -> dict[str, float]:
    """The recipe's cached fine-tuning (heads' first layers + MOS MLP), last epoch on the test photos; also
    the median cosine of the test photos' head features before/after fine-tuning (``cos``)."""
    before = model
    model = copy.deepcopy(model)
    torch.manual_seed(seed)
    if fresh:  # no pretraining statistics to keep: standardise with the training photos (as cached.py)
        model.backbone.set_feature_statistics(feats[tr])
    model.add_mos_head(RECIPE.mos_hidden)
    lo, hi = float(mos[tr].min()), float(mos[tr].max())
    model.set_mos_range(lo, hi)
    cfg = dataclasses.replace(RECIPE, seed=seed)
    target01 = model.mos_to_unit_scale(mos)
    views = feats[:, None]  # (N, 1 view, F)
    cached_mos_trainer(model, cfg, views, tr, target01, progress=False).fit()
    model.eval()
    with torch.no_grad():
        pred = model.mos_to_dataset_scale(model.forward_features(model.backbone.normalize(feats[te])).mos)
    if fresh:  # "before" = the fresh heads, under the feature statistics fine-tuning used
        before = copy.deepcopy(before)
        before.backbone.load_state_dict(model.backbone.state_dict())
    z0, z1 = head_features(before, feats[te]), head_features(model, feats[te])
    cos = float(torch.nn.functional.cosine_similarity(z0, z1).median())
    return {**correlations(pred.double().numpy(), mos[te].double().numpy()), "cos": cos}


def single_heads(feats, labels, mos, data, usable, n_splits: int, t0: float) -> None:
    """Supplement Table 10 analogue: per split, pretrain on all training photos, then fine-tune the MOS MLP on
    each head's features alone (``finetune.single_head``'s :func:`keep_one_head`) and on all five."""
    choices = ("all five", *ATTRIBUTES)
    results: dict[str, list[dict[str, float]]] = {c: [] for c in choices}
    for split in range(n_splits):
        tr_all, te_all = split_indices(len(data.paths), 0.2, split)
        tr = torch.tensor([i for i in tr_all if usable[i]])
        te = torch.tensor([i for i in te_all if usable[i]])
        pre = pretrain(feats, labels, tr, seed=split)
        for c in choices:
            model = pre if c == "all five" else keep_one_head(pre, c)
            r = finetune_and_test(model, feats, mos, tr, te, seed=split, fresh=False)
            results[c].append(r)
            print(f"split {split} heads {c}: SROCC {r['srocc']:.3f} PLCC {r['plcc']:.3f}", flush=True)
    print(f"\nmedian over {n_splits} splits (MOS MLP, centre crop; {time.perf_counter() - t0:.0f} s):")
    full = np.array([r["srocc"] for r in results["all five"]])
    for c in choices:
        s = np.array([r["srocc"] for r in results[c]])
        p = np.array([r["plcc"] for r in results[c]])
        diff = s - full
        sd = diff.std(ddof=1) if len(diff) > 1 else 0.0
        head = f"  {c:>12}: SROCC {np.median(s):.3f}  PLCC {np.median(p):.3f}"
        print(f"{head}  vs all five: {diff.mean():+.3f} +/- {sd:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, required=True)
    ap.add_argument("--labels", type=Path, required=True, help="`attiqa label` output for the CSV's photos")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.2, 0.5, 1.0])
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--draws", type=int, default=3, help="pool draws per share below 100 %%")
    ap.add_argument(
        "--single-heads", action="store_true",
        help="supplement Table 10 analogue instead: pretrain on 100 %%, fine-tune on each head alone / all",
    )  # fmt: skip
    a = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    feats, ok, data = centre_crop_stage_features(a.csv)
    labels = pseudo_labels(a.labels, data.paths)
    mos = data.mos.float()
    usable = ok & torch.isfinite(labels).all(1)
    took = time.perf_counter() - t0
    print(f"{int(usable.sum())}/{len(usable)} photos with features and labels ({took:.0f} s)")
    if a.single_heads:
        return single_heads(feats, labels, mos, data, usable, a.splits, t0)
    results: dict[float, list[dict[str, float]]] = {f: [] for f in a.fractions}
    for split in range(a.splits):
        tr_all, te_all = split_indices(len(data.paths), 0.2, split)
        tr = torch.tensor([i for i in tr_all if usable[i]])
        te = torch.tensor([i for i in te_all if usable[i]])
        for f in a.fractions:
            runs = []
            for d in range(1 if f in (0.0, 1.0) else a.draws):
                if f == 0.0:
                    model, fresh = fresh_model(split), True
                else:
                    pick = torch.randperm(len(tr), generator=torch.Generator().manual_seed(1000 * split + d))
                    pool = tr[pick[: max(2, int(round(f * len(tr))))]]
                    model, fresh = pretrain(feats, labels, pool, seed=split), False
                runs.append(finetune_and_test(model, feats, mos, tr, te, seed=split, fresh=fresh))
            mean = {k: float(np.mean([r[k] for r in runs])) for k in ("srocc", "plcc", "cos")}
            results[f].append(mean)
            line = f"split {split} pretrain {f:.0%}: SROCC {mean['srocc']:.3f} PLCC {mean['plcc']:.3f}"
            print(f"{line} head-feature cosine before/after {mean['cos']:.3f}", flush=True)
    print(f"\nmedian over {a.splits} splits (MOS MLP, centre crop; {time.perf_counter() - t0:.0f} s):")
    full = np.array([r["srocc"] for r in results[max(a.fractions)]])
    for f in a.fractions:
        s = np.array([r["srocc"] for r in results[f]])
        p = np.array([r["plcc"] for r in results[f]])
        diff = s - full
        sd = diff.std(ddof=1) if len(diff) > 1 else 0.0
        c = np.median([r["cos"] for r in results[f]])
        head = f"  pretrain {f:>4.0%}: SROCC {np.median(s):.3f}  PLCC {np.median(p):.3f}  cos {c:.3f}"
        print(f"{head}  vs {max(a.fractions):.0%}: {diff.mean():+.3f} +/- {sd:.3f} (mean +/- sd over splits)")


if __name__ == "__main__":
    main()
