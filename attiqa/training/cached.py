"""Pretraining and fine-tuning on cached frozen-backbone features (ours: ``feature_cache: true``).

Differs from the paper on purpose, for machines without a GPU: the backbone stays at its initial
weights (ImageNet, or an earlier checkpoint) and only what sits on top of it trains —

- pretraining (§3.4): the five attribute heads, on the margin ranking loss (eq. 3-4) or the L2 ablation,
  with the paper's batch 256, lr 1e-4 and 100 epochs (supplement B), which take seconds here;
- fine-tuning (§3.5): the heads' first layers and the regression MLP (``freeze_backbone: true`` = linear
  probing, Table 6: the regression MLP only).

Views are fixed instead of random: the five crops of §4.2's test view (four corners + centre) after
resizing the shorter edge, and with ``hflip: true`` their five mirror images too (cached as views 5-9:
the stand-in for random flips); each epoch every image contributes one of its views, drawn at random,
and validation averages the five unmirrored crops (as the five-crop test does). The backbone's features are
standardised per feature with statistics of the training photos (:meth:`Backbone.set_feature_statistics`)
when the backbone has a standardisation layer (``efficientnet_lite0_ms``).

The checkpoints are ordinary ATTIQA checkpoints (backbone + heads + MOS MLP): scoring, export and
evaluation do not know how they were trained. ``last`` + its optimizer state are written every tenth of
the run, so ``--resume`` continues exactly from there.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from attiqa.config import FinetuneConfig, PretrainConfig, to_dict
from attiqa.errors import AttiqaError
from attiqa.evaluation.metrics import correlations
from attiqa.io.checkpoints import save_training_state
from attiqa.models import AttiqaModel, create_backbone, save_model
from attiqa.models.transforms import FiveCropTest, MirroredFiveCropTest
from attiqa.training.data import MosDataset, PseudoLabelDataset, read_mos_csv, split_indices
from attiqa.training.feature_cache import cached_features
from attiqa.training.losses import make_pretrain_loss, mos_loss

CENTRE_VIEW = 4  # FiveCropTest order: TL, TR, BL, BR, centre (then their mirror images with hflip)
TEST_VIEWS = 5  # validation averages the five unmirrored crops, as the scorer's five-crop test does


def five_crop_views(
    backbone, resize_shorter: int | None, crop: int, mirrored: bool = False
) -> tuple[FiveCropTest, dict[str, Any]]:
    """The cached views (five crops, with ``mirrored`` their mirror images too) and their cache key."""
    cls = MirroredFiveCropTest if mirrored else FiveCropTest
    tf = cls(backbone.mean, backbone.std, resize_shorter, crop)
    desc = {"kind": "five_crop", "resize_shorter": resize_shorter, "crop": crop,
            "mean": list(backbone.mean), "std": list(backbone.std)}  # fmt: skip
    if mirrored:  # only then: caches made without mirrors keep their key
        desc["mirrored"] = True
    return tf, desc


def _train_mode(model: AttiqaModel) -> None:
    """Heads train; the frozen backbone (BN statistics, feature standardisation) stays in eval mode."""
    model.train()
    model.backbone.eval()


def _epoch_batches(
    model: AttiqaModel, rows: torch.Tensor, n_views: int, batch_size: int, seed: int, epoch: int
):
    """Put the heads in training mode and yield one epoch of shuffled (row indices, view indices) batches
    over ``rows``, seeded by (seed, epoch) so a resumed run draws the same batches; whole batches only."""
    _train_mode(model)
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = rows[torch.randperm(len(rows), generator=gen)]
    views = torch.randint(0, n_views, (len(order),), generator=gen)
    stop = len(order) - (len(order) % batch_size if len(order) > batch_size else 0)
    for s in range(0, stop, batch_size):
        yield order[s : s + batch_size], views[s : s + batch_size]


def _resume(last_path: Path, model: AttiqaModel, optimizer, resume: bool) -> dict[str, Any] | None:
    from attiqa.training.pretrain import load_resume_state

    if resume and last_path.exists():
        return load_resume_state(last_path, model, optimizer)
    return None


@contextmanager
def _one_thread():
    """The heads are small matrices: one thread is fastest, and far faster than several on a busy CPU
    (measured: epochs of 1-30 s with 2 threads next to other jobs, steady with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _checkpoint_due(epoch: int, epochs: int) -> bool:
    """``last`` + optimizer state every ``epochs // 10`` epochs and after the final one: an epoch here takes
    well under a second of compute, far less than writing the whole model, and resume loses at most that."""
    return (epoch + 1) % max(1, epochs // 10) == 0 or epoch + 1 == epochs


def _save_epoch(model, last_path: Path, optimizer, card: dict[str, Any], extra: dict[str, Any]) -> None:
    from attiqa.training.pretrain import state_path_for

    save_model(model, last_path, card)
    save_training_state(state_path_for(last_path), optimizer.state_dict(), extra)


# ----------------------------------------------------------------------------------------------------------
def pretrain_cached(
    cfg: PretrainConfig, labels: Path, out_dir: Path, resume: bool = False, progress: bool = True
) -> Path:
    """Attribute-aware pretraining of the heads on cached features; returns ``pretrain/model.safetensors``."""
    from attiqa.progress import console

    stage_dir = Path(out_dir) / "pretrain"
    last_path, final_path = stage_dir / "last.safetensors", stage_dir / "model.safetensors"
    torch.manual_seed(cfg.seed)
    backbone = create_backbone(cfg.backbone, pretrained=cfg.pretrained_backbone, weights=cfg.backbone_weights)
    view_tf, view = five_crop_views(backbone, cfg.resize_shorter, cfg.crop_size, mirrored=cfg.hflip)
    dataset = PseudoLabelDataset(labels, view_tf, on_error="skip")
    # The heads are created before the extraction, whose DataLoader draws from the global RNG only when
    # the cache is cold: a warm cache must give the same initial heads.
    sizes = {"pretrain_crop": cfg.crop_size, "pretrain_resize_shorter": cfg.resize_shorter,
             "test_crop": cfg.crop_size, "test_resize_shorter": cfg.resize_shorter}  # fmt: skip
    model = AttiqaModel(backbone, dataset.head_names, cfg.head_hidden, input_sizes=sizes)
    feats, valid = cached_features(
        backbone, dataset, view, cfg.feature_cache_dir and Path(cfg.feature_cache_dir),
        batch_size=max(1, min(cfg.batch_size, 64) // 5), workers=_workers(cfg.num_workers), progress=progress,
    )  # fmt: skip
    rows = torch.nonzero(valid).flatten()
    if len(rows) < 2:
        raise AttiqaError(f"{labels}: fewer than 2 images could be read — nothing to rank")
    backbone.set_feature_statistics(feats[rows].flatten(0, 1))
    model.backbone.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.heads.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = make_pretrain_loss(cfg.loss, cfg.margin)
    targets = dataset.targets
    start_epoch, history = 0, []
    extra = _resume(last_path, model, optimizer, resume)
    if extra is not None:
        start_epoch, history = int(extra["epoch"]), list(extra["history"])
    base_card = {
        "stage": "pretrain", "config": to_dict(cfg), "feature_cache": True, "frozen_backbone": True,
        "labels": {"path": str(labels), "rows": len(dataset), "readable": int(valid.sum()),
                   "head_names": list(dataset.head_names), "metadata": dataset.metadata},
    }  # fmt: skip
    bsz = min(cfg.batch_size, len(rows))
    with _one_thread():
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            losses = []
            for idx, v in _epoch_batches(model, rows, feats.shape[1], bsz, cfg.seed, epoch):
                out = model.forward_features(backbone.normalize(feats[idx, v]))
                loss = loss_fn(out.attributes, targets[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
            history.append({"epoch": epoch + 1, "loss": sum(losses) / max(len(losses), 1),
                            "steps": len(losses), "seconds": round(time.perf_counter() - t0, 3)})  # fmt: skip
            extra = {"epoch": epoch + 1, "global_step": sum(h["steps"] for h in history), "history": history,
                     "head_names": list(dataset.head_names), "config": to_dict(cfg)}  # fmt: skip
            if _checkpoint_due(epoch, cfg.epochs):
                partial = {**base_card, "stage": "pretrain-partial", "epoch": epoch + 1}
                _save_epoch(model, last_path, optimizer, partial, extra)
            if progress and ((epoch + 1) % 10 == 0 or epoch + 1 == cfg.epochs):
                console.log(
                    f"pretrain (cached features) epoch {epoch + 1}/{cfg.epochs}: "
                    f"loss {history[-1]['loss']:.4f}"
                )
    model.eval()
    with torch.no_grad():  # calibration (ours): the centre crop of every readable training photo
        model.calibrate(model.forward_features(backbone.normalize(feats[rows, CENTRE_VIEW])).attributes)
    save_model(model, final_path, {**base_card, "epoch": cfg.epochs, "history": history})
    return final_path


def _workers(n: int | None) -> int:
    from attiqa.io.batching import default_num_workers

    return default_num_workers() if n is None else n


# ----------------------------------------------------------------------------------------------------------
def _mos_steps_per_epoch(cfg: FinetuneConfig, n_train: int) -> int:
    bsz = min(cfg.batch_size, n_train)
    return n_train // bsz if n_train > bsz else 1


def mos_epoch_cached(
    model: AttiqaModel,
    optimizer,
    base_lrs: list[float],
    feats: torch.Tensor,
    rows: torch.Tensor,
    target01: torch.Tensor,
    cfg: FinetuneConfig,
    epoch: int,
) -> list[float]:
    """One epoch of MOS fine-tuning on cached features of ``rows`` (targets on the unit scale); the
    learning rate follows ``cfg.lr_schedule`` over ``cfg.epochs``. Returns the step losses."""
    from attiqa.training.finetune import set_scheduled_lr

    bsz = min(cfg.batch_size, len(rows))
    steps_per_epoch = _mos_steps_per_epoch(cfg, len(rows))
    total = steps_per_epoch * cfg.epochs
    losses = []
    for step, (idx, v) in enumerate(_epoch_batches(model, rows, feats.shape[1], bsz, cfg.seed, epoch)):
        set_scheduled_lr(optimizer, base_lrs, cfg.lr_schedule, epoch * steps_per_epoch + step, total)
        pred01 = model.forward_features(model.backbone.normalize(feats[idx, v])).mos
        loss = mos_loss(pred01, target01[idx], cfg.plcc_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def predict_cached(
    model: AttiqaModel, feats: torch.Tensor, rows: torch.Tensor, stats: torch.Tensor | None = None
) -> torch.Tensor:
    """MOS on the unit scale of ``rows``: the mean over the five test crops, as five-crop scoring; with
    ``stats`` (cached ridge tap statistics) through the ridge head too."""
    model.eval()
    f = model.backbone.normalize(feats[rows, :TEST_VIEWS].flatten(0, 1))
    s = stats[rows, :TEST_VIEWS].flatten(0, 1) if stats is not None else None
    return model.forward_features(f, s).mos.view(len(rows), TEST_VIEWS).mean(1)


def _split_rows(cfg: FinetuneConfig, csv_path: Path, n: int) -> tuple[list[int], list[int], str]:
    from attiqa.training.finetune import VAL_SPLITS

    rows = read_mos_csv(csv_path)
    if rows and "split" in rows[0]:
        tr = [i for i, r in enumerate(rows) if r["split"] == "train"]
        va = [i for i, r in enumerate(rows) if r["split"] in VAL_SPLITS]
        if not tr or not va:
            raise AttiqaError(f"{csv_path}: split column needs 'train' rows and {'/'.join(VAL_SPLITS)} rows")
        return tr, va, "column"
    if n < 4:
        raise AttiqaError(f"{csv_path}: {n} rows — too few to split and fine-tune")
    tr, va = split_indices(n, cfg.val_fraction, cfg.split_seed)
    return tr, va, f"random {1 - cfg.val_fraction:.0%}/{cfg.val_fraction:.0%} seed {cfg.split_seed}"


def finetune_cached(
    cfg: FinetuneConfig,
    model: AttiqaModel,
    init_info: dict[str, Any],
    stage_dir: Path,
    resume: bool = False,
    progress: bool = True,
):
    """Fine-tune ``model`` (already built, MOS MLP attached) on cached features, writing ``best`` / ``last``
    checkpoints into ``stage_dir``; see the module docstring."""
    from attiqa.progress import console
    from attiqa.training.finetune import (
        FinetuneResult,
        _better,
        _set_trainable,
        make_optimizer,
    )

    stage_dir = Path(stage_dir)
    last_path, best_path = stage_dir / "last.safetensors", stage_dir / "best.safetensors"
    csv_path = Path(cfg.csv)
    backbone = model.backbone
    view_tf, view = five_crop_views(backbone, cfg.resize_shorter, cfg.crop_size, mirrored=cfg.hflip)
    data = MosDataset(csv_path, cfg.image_root or None, view_tf, on_error="skip")
    tr_all, va_all, split_kind = _split_rows(cfg, csv_path, len(data))
    feats, valid = cached_features(
        backbone, data, view, cfg.feature_cache_dir and Path(cfg.feature_cache_dir),
        batch_size=max(1, cfg.batch_size // 5), workers=_workers(cfg.num_workers), progress=progress,
    )  # fmt: skip
    tr = torch.tensor([i for i in tr_all if valid[i]], dtype=torch.long)
    va = torch.tensor([i for i in va_all if valid[i]], dtype=torch.long)
    if len(tr) < 2 or len(va) < 2:
        raise AttiqaError(
            f"{csv_path}: too few readable images to fine-tune ({len(tr)} train, {len(va)} val)"
        )
    mos = data.mos
    lo, hi = float(mos[tr].min()), float(mos[tr].max())
    if not hi > lo:
        raise AttiqaError(f"{csv_path}: all training MOS values are equal ({lo}) — nothing to regress")
    model.set_mos_range(lo, hi)
    if init_info.get("init", "").startswith(("imagenet:", "random:")):
        backbone.set_feature_statistics(feats[tr].flatten(0, 1))  # no pretraining statistics to keep
    _set_trainable(model, cfg.freeze_backbone)  # as end-to-end fine-tuning, then the backbone stays frozen
    model.backbone.requires_grad_(False)
    optimizer, base_lrs = make_optimizer(model, cfg)
    start_epoch, history = 0, []
    best: dict[str, Any] = {"srocc": None, "metrics": {}, "epoch": None}
    extra = _resume(last_path, model, optimizer, resume)
    if extra is not None:
        start_epoch, history, best = int(extra["epoch"]), list(extra["history"]), extra["best"]
    steps_per_epoch = _mos_steps_per_epoch(cfg, len(tr))
    target01 = model.mos_to_unit_scale(mos)
    base_card = {
        "stage": "finetune", "config": to_dict(cfg), **init_info,
        "feature_cache": True, "frozen_backbone": True,
        "dataset": {"csv": str(cfg.csv), "image_root": cfg.image_root or str(csv_path.resolve().parent),
                    "split": split_kind, "n_train": len(tr), "n_val": len(va),
                    "unreadable": int((~valid).sum())},
        "mos_range": [lo, hi], "linear_probe": cfg.freeze_backbone,
    }  # fmt: skip
    with _one_thread():
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            losses = mos_epoch_cached(model, optimizer, base_lrs, feats, tr, target01, cfg, epoch)
            pred = model.mos_to_dataset_scale(predict_cached(model, feats, va))
            metrics = correlations(pred.double().numpy(), mos[va].double().numpy())
            history.append({"epoch": epoch + 1, "train_loss": sum(losses) / max(len(losses), 1), **metrics,
                            "seconds": round(time.perf_counter() - t0, 3)})  # fmt: skip
            improved = best["srocc"] is None or _better(metrics["srocc"], best["srocc"])
            if improved:
                best = {"srocc": metrics["srocc"], "metrics": metrics, "epoch": epoch + 1}
            card = {**base_card, "epoch": epoch + 1, "metrics": metrics, "history": history}
            if improved:
                save_model(model, best_path, {**card, "best_epoch": epoch + 1})
            extra = {
                "epoch": epoch + 1,
                "global_step": (epoch + 1) * steps_per_epoch,
                "history": history,
                "best": best,
            }
            if _checkpoint_due(epoch, cfg.epochs):
                stage = "finetune" if epoch + 1 == cfg.epochs else "finetune-partial"
                _save_epoch(model, last_path, optimizer, {**card, "stage": stage}, extra)
            if progress and ((epoch + 1) % 10 == 0 or epoch + 1 == cfg.epochs):
                console.log(
                    f"finetune (cached features) epoch {epoch + 1}/{cfg.epochs}: "
                    f"loss {history[-1]['train_loss']:.4f} "
                    f"SROCC {metrics['srocc']:.4f} PLCC {metrics['plcc']:.4f}"
                )
    return FinetuneResult(best_checkpoint=best_path, best_metrics=dict(best["metrics"]), history=history)
