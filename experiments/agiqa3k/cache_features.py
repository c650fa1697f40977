"""Cache frozen EfficientNet-Lite features of an AGIQA-3k folder once (ours; every recipe here reads them).

Two tensors per image, both over the five 320-px test crops after resizing the shorter edge (default 500,
the default model's view): the stage statistics the attribute heads / MOS MLP read (`efficientnet_lite0_ms`,
2,848 values) and the depthwise statistics the ridge head reads (19,200 values); ``--backbone`` for another
registry backbone (e.g. efficientnet_lite1_ms, session 24). Stored in the shared
feature cache ($ATTIQA_CACHE/features) exactly as `attiqa train` / `attiqa bench` store them, so those
commands reuse them. Resumable (chunks of 256 images).

    nice python experiments/agiqa3k/cache_features.py ../shared/data/agiqa3k-dev
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from attiqa.datasets import get_dataset
from attiqa.models import create_backbone
from attiqa.splits import split_indices
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features
from attiqa.training.sources import five_crop_views


def prompts_and_mos(root: Path) -> tuple[list[str], torch.Tensor]:
    """Each AGIQA-3k image's prompt and ``mos_quality`` (float64), in the dataset adapter's order."""
    ds = get_dataset("agiqa3k", root)
    return [it.meta.get("prompt", "") for it in ds.items], torch.tensor(
        [it.mos for it in ds.items], dtype=torch.float64
    )


def write_csv(root: Path, out: Path, holdout_seed: int = 0, holdout: bool = True) -> Path:
    """image,mos,split (absolute paths, mos_quality) of every image of the AGIQA-3k folder ``root``.

    ``holdout``: the split column holds out 20 % of the prompts with all their images (``val``; the prompts
    sorted, then ``split_indices`` with ``holdout_seed`` — the same rule as `attiqa bench --group-by prompt`'s
    split 0), so a model trained on this CSV is validated on prompts it never saw (research). Without it
    (the shipped model): every image is a ``train`` row, and every image is listed once more as a ``val``
    row because fine-tuning needs a validation part — its figures are then the in-sample fit, not a test."""
    ds = get_dataset("agiqa3k", root)
    prompts = sorted({it.meta.get("prompt", "") for it in ds.items})
    val: set[str] = set()
    if holdout:
        _, held = split_indices(len(prompts), 0.2, holdout_seed)
        val = {prompts[i] for i in held}
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["image,mos,split"] + [
        f"{it.image.resolve()},{float(it.mos)!r},{'val' if it.meta.get('prompt', '') in val else 'train'}"
        for it in ds.items
    ]
    if not holdout:
        lines += [f"{it.image.resolve()},{float(it.mos)!r},val" for it in ds.items]
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)
    return out


def load_features(
    csv: Path, resize_shorter: int = 500, crop: int = 320, progress: bool = True, batch_size: int = 4,
    stages: bool = True, backbone: str = "efficientnet_lite0_ms",
) -> tuple[torch.Tensor | None, torch.Tensor]:  # fmt: skip
    """(stage features (N, 5, 2848) or None without ``stages``, depthwise statistics (N, 5, 19200)) of the
    CSV's images, from the cache (computed and stored when missing); widths are Lite0's."""
    bb = create_backbone(backbone)
    tf, view = five_crop_views(bb, resize_shorter, crop)
    data = MosDataset(csv, None, tf, on_error="skip")
    # the ridge's statistics first: the recipe research needs them most
    dw = bb.tap_view("depthwise")
    stats, ok = cached_features(dw, data, view, batch_size=batch_size, progress=progress)
    feats = None
    if stages:
        feats, ok1 = cached_features(bb, data, view, batch_size=batch_size, progress=progress)
        ok = ok & ok1
    if not bool(ok.all()):
        raise SystemExit(f"{csv}: {int((~ok).sum())} images could not be read")
    return feats, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="AGIQA-3k folder (data.csv + images)")
    ap.add_argument("--csv", type=Path, default=Path("runs/agiqa3k/all.csv"))
    ap.add_argument("--resize-shorter", type=int, default=500)
    ap.add_argument("--crop", type=int, default=320)
    ap.add_argument(
        "--all-prompts",
        action="store_true",
        help="every image a training row (the shipped model), listed again as in-sample val rows",
    )
    ap.add_argument("--backbone", default="efficientnet_lite0_ms", help="the recipe's finetune.backbone")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    csv = write_csv(a.root, a.csv, holdout=not a.all_prompts)
    feats, stats = load_features(csv, a.resize_shorter, a.crop, backbone=a.backbone)
    print(
        f"{feats.shape[0]} images: features {tuple(feats.shape)}, depthwise {tuple(stats.shape)} "
        f"in {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
