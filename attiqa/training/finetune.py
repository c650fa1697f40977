"""Fine-tuning to MOS (paper §3.5, §4.2).

The pretrained model gets a regression MLP on the concatenated head features (before each head's last
layer); MOS targets are normalised to [0, 1] with the TRAIN split's min/max (ours: the range is stored
in the checkpoint, and predictions are mapped back with ``mos_to_dataset_scale``). Training: resize
shorter edge to 340, random 320×320 crops; validation every epoch with the five-crop mean (§4.2);
SROCC/PLCC/KRCC/RMSE; the checkpoint with the best validation SROCC is kept.

Outputs in ``out_dir/finetune/``: ``best.safetensors``, ``last.safetensors`` + ``last.state.safetensors``.

- ``freeze_backbone`` = linear probing (Table 6: "training only a single regression MLPs ... with a
  frozen ATTIQA backbone"). The MLP's inputs are the heads' hidden features, so the heads' first layers
  are part of the frozen feature extractor too; backbone and heads stay in eval mode (BN statistics
  frozen).
- The heads' LAST layers are never trained here: they are not on the MOS path (§3.5), so the attribute
  outputs keep their pretraining meaning as far as the shared features allow.
- ``init_checkpoint=None`` is ablation (a), "no attribute pretraining": an ImageNet backbone with
  freshly initialised heads, trained end to end the same way.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from attiqa.attributes import ATTRIBUTES
from attiqa.config import FinetuneConfig, to_dict
from attiqa.device import resolve_device
from attiqa.errors import AttiqaError, ConfigError
from attiqa.evaluation.metrics import correlations
from attiqa.io.batching import default_num_workers
from attiqa.io.checkpoints import save_training_state
from attiqa.models import AttiqaModel, create_backbone, load_model, save_model
from attiqa.models.backbones import TAP_SETS
from attiqa.models.transforms import FinetuneTrain, FiveCropTest
from attiqa.training import distributed as D
from attiqa.training.data import MosDataset, collate_skip_none, read_mos_csv, split_indices
from attiqa.training.loop import train_epoch
from attiqa.training.losses import mos_loss
from attiqa.training.pretrain import (
    WriteLog,
    load_resume_state,
    make_loader,
    maybe_progress,
    per_process_batch,
    state_path_for,
)

VAL_SPLITS = ("val", "valid", "validation", "test")


@dataclass
class FinetuneResult:
    best_checkpoint: Path
    best_metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)


def finetune(
    cfg: FinetuneConfig,
    init_checkpoint: Path | None,
    out_dir: Path,
    resume: bool = False,
    progress: bool = True,
    backbone: str | None = None,
    pretrained_backbone: bool | None = None,
    backbone_weights: str | None = None,
    head_hidden: int | None = None,
) -> FinetuneResult:
    """Fine-tune on ``cfg.csv``. ``backbone``/``pretrained_backbone``/``backbone_weights``/``head_hidden``
    (default: the same fields of ``cfg``) are used only when ``init_checkpoint`` is None (ablation (a):
    ImageNet-only initialisation)."""
    backbone = backbone or cfg.backbone
    pretrained_backbone = cfg.pretrained_backbone if pretrained_backbone is None else pretrained_backbone
    backbone_weights = backbone_weights or cfg.backbone_weights
    head_hidden = head_hidden or cfg.head_hidden
    state = D.init_distributed()
    ok = False
    try:
        res = _finetune(
            cfg,
            init_checkpoint,
            Path(out_dir),
            resume,
            progress,
            backbone,
            pretrained_backbone,
            backbone_weights,
            head_hidden,
        )
        ok = True
        return res
    finally:
        if ok:
            D.teardown(state)
        elif state.owns_group and D.is_dist():
            torch.distributed.destroy_process_group()


def _datasets(
    cfg: FinetuneConfig, train_tf, test_tf
) -> tuple[Any, Any, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(train set, val set, train MOS, val MOS, description): the split column if any, else §4.1's 80/20."""
    if not cfg.csv:
        raise AttiqaError("finetune: no MOS CSV given (finetune.csv)")
    csv_path = Path(cfg.csv)
    root = cfg.image_root or None
    rows = read_mos_csv(csv_path)
    if "split" in rows[0]:
        train = MosDataset(csv_path, root, train_tf, split="train")
        val = MosDataset(csv_path, root, test_tf, split=VAL_SPLITS, on_error="skip")
        if len(train) == 0 or len(val) == 0:
            raise AttiqaError(f"{csv_path}: split column needs 'train' rows and {'/'.join(VAL_SPLITS)} rows")
        desc = {"split": "column", "n_train": len(train), "n_val": len(val)}
        return train, val, train.mos, val.mos, desc
    full_train = MosDataset(csv_path, root, train_tf)
    full_val = MosDataset(csv_path, root, test_tf, on_error="skip")
    if len(full_train) < 4:
        raise AttiqaError(f"{csv_path}: {len(full_train)} rows — too few to split and fine-tune")
    tr, va = split_indices(len(full_train), cfg.val_fraction, cfg.split_seed)
    desc = {
        "split": f"random {1 - cfg.val_fraction:.0%}/{cfg.val_fraction:.0%} seed {cfg.split_seed}",
        "n_train": len(tr),
        "n_val": len(va),
    }
    return Subset(full_train, tr), Subset(full_val, va), full_train.mos[tr], full_val.mos[va], desc


def _build_model(
    init_checkpoint: Path | None,
    backbone: str,
    pretrained_backbone: bool,
    backbone_weights: str | None,
    head_hidden: int,
) -> tuple[AttiqaModel, dict[str, Any]]:
    if init_checkpoint is not None:
        model, card = load_model(init_checkpoint)
        return model, {"init": str(init_checkpoint), "init_stage": card.get("stage")}
    bb = create_backbone(backbone, pretrained=pretrained_backbone, weights=backbone_weights)
    return AttiqaModel(bb, ATTRIBUTES, head_hidden), {
        "init": f"imagenet:{backbone}" if pretrained_backbone else f"random:{backbone}"
    }


def _set_trainable(model: AttiqaModel, freeze_backbone: bool) -> None:
    for name, p in model.named_parameters():
        if name.startswith("mos_head."):
            p.requires_grad_(True)
        elif name.startswith("heads.") and ".fc2." in name:
            p.requires_grad_(False)  # not on the MOS path (§3.5)
        else:
            p.requires_grad_(not freeze_backbone)


def make_optimizer(model: AttiqaModel, cfg: FinetuneConfig) -> tuple[torch.optim.AdamW, list[float]]:
    """AdamW over the trainable parameters: the regression MLP at ``head_lr``, the rest at ``lr``; returns it
    with each group's base learning rate (what :func:`set_scheduled_lr` scales)."""
    if cfg.lr_schedule not in LR_SCHEDULES:
        valid = ", ".join(LR_SCHEDULES)
        raise ConfigError(f"finetune.lr_schedule: {cfg.lr_schedule!r} is not one of {valid}")
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("mos_head.")]
    groups = [{"params": list(model.mos_head.parameters()), "lr": cfg.head_lr or cfg.lr}]
    if body:
        groups.insert(0, {"params": body, "lr": cfg.lr})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return optimizer, [g["lr"] for g in optimizer.param_groups]


def set_scheduled_lr(optimizer, base_lrs: list[float], schedule: str, step: int, total: int) -> None:
    factor = lr_factor(schedule, step, total)
    for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
        group["lr"] = base * factor


def _train_mode(model: AttiqaModel, freeze_backbone: bool, freeze_bn: bool = False) -> None:
    model.train()
    if freeze_backbone:
        model.backbone.eval()
        model.heads.eval()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


@torch.no_grad()
def predict_five_crop(
    model: AttiqaModel, val_ds, device: torch.device, batch_size: int, workers: int
) -> torch.Tensor:
    """MOS on the dataset scale for every item of ``val_ds`` (NaN where the image failed to decode):
    mean over the five crops (§4.2); items are sharded over ranks and gathered."""
    n = len(val_ds)
    shard = Subset(val_ds, list(range(D.rank(), n, D.world_size())))
    # Items report their index in the innermost dataset; map it back to a position in val_ds.
    inner = val_ds.indices if isinstance(val_ds, Subset) else range(n)
    pos_of = {int(j): p for p, j in enumerate(inner)}
    loader = DataLoader(shard, batch_size=batch_size, num_workers=workers, collate_fn=collate_skip_none)
    was_training = model.training
    model.eval()
    rows = []
    for batch in loader:
        if batch is None:  # every image of this batch failed to decode
            continue
        x, _, idx = batch
        b, k = x.shape[:2]
        mos = model(x.to(device).flatten(0, 1)).mos.view(b, k).mean(1)
        pos = torch.tensor([pos_of[int(i)] for i in idx], device=device, dtype=torch.float64)
        rows.append(torch.stack([pos, model.mos_to_dataset_scale(mos).double()], 1))
    model.train(was_training)
    local = torch.cat(rows) if rows else torch.zeros((0, 2), device=device, dtype=torch.float64)
    allr = D.all_gather_cat(local).cpu()
    out = torch.full((n,), float("nan"), dtype=torch.float64)
    out[allr[:, 0].long()] = allr[:, 1]
    return out


def _finetune(
    cfg: FinetuneConfig,
    init_checkpoint: Path | None,
    out_dir: Path,
    resume: bool,
    progress: bool,
    backbone: str,
    pretrained_backbone: bool,
    backbone_weights: str | None,
    head_hidden: int,
) -> FinetuneResult:
    _check_settings(cfg)
    stage_dir = out_dir / "finetune"
    torch.manual_seed(cfg.seed)  # seeded, identical fresh layers on every rank (and across runs)
    model, init_info = _build_model(
        init_checkpoint, backbone, pretrained_backbone, backbone_weights, head_hidden
    )
    model.add_mos_head(cfg.mos_hidden)
    model.input_sizes.update(test_resize_shorter=cfg.resize_shorter, test_crop=cfg.crop_size)
    cfg = _ridge_or_not(cfg, model)
    cv_ridge = cfg.ridge_taps is not None and cfg.ridge_weight is None
    init_model = copy.deepcopy(model) if cv_ridge else None  # the CV retrains the MLP from here
    from attiqa.training.cached import finetune_cached

    # The MOS MLP (and whatever else trains) is trained in place: end to end, on cached features, or
    # cached then polished.
    if not cfg.feature_cache:
        result = _end_to_end(cfg, model, init_info, stage_dir, resume, progress, polish=False)
    elif not cfg.polish_epochs:
        result = finetune_cached(cfg, model, init_info, stage_dir, resume, progress)
    else:
        heads_dir = stage_dir / "heads"
        heads = finetune_cached(cfg, model, init_info, heads_dir, resume, progress)
        info = {**init_info, "heads_checkpoint": str(heads_dir / "last.safetensors"),
                "heads_last_epoch": heads.history[-1]}  # fmt: skip
        result = _end_to_end(cfg, model, info, stage_dir, resume, progress, polish=True)
    if not cfg.ridge_taps:
        return result
    from attiqa.training.ridge import add_ridge_head

    best, history = add_ridge_head(cfg, model, init_model, stage_dir, result.history, progress)
    return replace(result, best_metrics=best, history=history)


def _check_settings(cfg: FinetuneConfig) -> None:
    """One-line errors for settings that cannot work (the learning-rate schedule is checked with the
    optimizer it configures)."""
    if not cfg.plcc_weight >= 0:
        raise ConfigError(f"finetune.plcc_weight: must be >= 0 (0 = MSE only), got {cfg.plcc_weight}")
    if cfg.polish_epochs < 0:
        raise ConfigError(f"finetune.polish_epochs: must be >= 0, got {cfg.polish_epochs}")
    if cfg.polish_epochs and not cfg.feature_cache:
        raise ConfigError("finetune.polish_epochs: polishes a feature-cache run; set feature_cache: true "
                          "(without the cache, raise finetune.epochs instead)")  # fmt: skip
    if cfg.ridge_taps is not None and cfg.ridge_taps not in TAP_SETS:
        raise ConfigError(f"finetune.ridge_taps: {cfg.ridge_taps!r} is not one of {', '.join(TAP_SETS)} "
                          "(or leave it out: no ridge head)")  # fmt: skip
    if cfg.ridge_weight is not None and not 0.0 <= cfg.ridge_weight <= 1.0:
        raise ConfigError(f"finetune.ridge_weight: the ridge's share of the MOS, in [0, 1] (leave it out to "
                          f"cross-validate it), got {cfg.ridge_weight}")  # fmt: skip
    if not cfg.ridge_power > 0:
        raise ConfigError(f"finetune.ridge_power: must be > 0 (0.5 = square root), got {cfg.ridge_power}")
    if cfg.polish_epochs and cfg.freeze_backbone:
        raise ConfigError("finetune.polish_epochs: trains the backbone, linear probing (freeze_backbone) "
                          "keeps it frozen; set one of them")  # fmt: skip


def _ridge_or_not(cfg: FinetuneConfig, model: AttiqaModel) -> FinetuneConfig:
    """The ridge head belongs to the CPU-budget recipe (frozen backbone with tap sets, cached features). So
    that the same recipe still runs with ``backbone: resnet50`` or end-to-end training (one changed line), a
    ridge it cannot fit is left out with a one-line warning saying what to set, instead of an error."""
    why = None
    if cfg.ridge_taps and not model.backbone.has_tap_sets:
        why = f"backbone {model.backbone.name!r} has no named tap sets (efficientnet_lite0_ms has)"
    elif cfg.ridge_taps and cfg.ridge_weight is None and (not cfg.feature_cache or cfg.polish_epochs):
        why = ("cross-validating ridge_weight retrains the MOS MLP on cached features; for end-to-end or "
               "polished runs set finetune.ridge_weight (e.g. 0.5) to fit it anyway")  # fmt: skip
    if why is None:
        return cfg
    if D.is_main():
        from attiqa.progress import console

        console.print(f"[yellow]finetune.ridge_taps: no ridge head — {why}")
    return replace(cfg, ridge_taps=None)


def _end_to_end(
    cfg: FinetuneConfig,
    model: AttiqaModel,
    init_info: dict[str, Any],
    stage_dir: Path,
    resume: bool,
    progress: bool,
    polish: bool,
) -> FinetuneResult:
    """The end-to-end loop on images (random crops; five-crop validation). ``polish`` (ours, LP-FT): the
    model arrives with heads trained on cached frozen features; train everything ``cfg.polish_epochs`` more
    epochs at ``cfg.polish_lr`` with every BatchNorm frozen, so small batches do not move the statistics."""
    device = resolve_device(cfg.device)
    last_path, best_path = stage_dir / "last.safetensors", stage_dir / "best.safetensors"
    log = WriteLog()
    card_cfg = to_dict(cfg)
    if polish:
        cfg = replace(cfg, epochs=cfg.polish_epochs, lr=cfg.polish_lr, head_lr=cfg.polish_lr)
    mean, std = model.backbone.mean, model.backbone.std
    train_tf = FinetuneTrain(mean, std, cfg.resize_shorter, cfg.crop_size, cfg.hflip)
    test_tf = FiveCropTest(mean, std, cfg.resize_shorter, cfg.crop_size)
    train_ds, val_ds, train_mos, val_mos, split_desc = _datasets(cfg, train_tf, test_tf)
    if polish:  # the cached heads set it from the same training split
        lo, hi = (float(v) for v in model.mos_range)
    else:
        lo, hi = float(train_mos.min()), float(train_mos.max())
        if not hi > lo:
            raise AttiqaError(f"{cfg.csv}: all training MOS values are equal ({lo}) — nothing to regress")
        model.set_mos_range(lo, hi)
    model.to(device)
    _set_trainable(model, cfg.freeze_backbone)
    optimizer, base_lrs = make_optimizer(model, cfg)

    start_epoch, global_step, history = 0, 0, []
    best: dict[str, Any] = {"srocc": None, "metrics": {}, "epoch": None}
    if resume and last_path.exists():
        extra = load_resume_state(last_path, model, optimizer)
        start_epoch, global_step, history = (
            int(extra["epoch"]),
            int(extra["global_step"]),
            list(extra["history"]),
        )
        best = extra["best"]

    bsz = per_process_batch(cfg.batch_size, len(train_ds))
    workers = default_num_workers() if cfg.num_workers is None else cfg.num_workers
    sampler = D.make_sampler(train_ds, shuffle=True, seed=cfg.seed, drop_last=False)
    drop_last = len(sampler) > bsz
    ddp = D.wrap_ddp(model, device)
    base_card = {
        "stage": "finetune",
        "config": card_cfg,
        **init_info,
        "dataset": {
            "csv": str(cfg.csv),
            "image_root": cfg.image_root or str(Path(cfg.csv).resolve().parent),
            **split_desc,
        },
        "mos_range": [lo, hi],
        "linear_probe": cfg.freeze_backbone,
    }
    if polish:
        base_card["polish"] = {"epochs": cfg.epochs, "lr": cfg.lr, "frozen_batchnorm": True}
    if not cfg.freeze_backbone:
        base_card["attribute_note"] = "backbone fine-tuned: attribute scores use the pretraining calibration"

    with maybe_progress(progress) as prog:
        for epoch in range(start_epoch, cfg.epochs):
            seed = D.epoch_seed(cfg.seed, epoch, D.rank())
            torch.manual_seed(seed)
            sampler.set_epoch(epoch)
            loader = make_loader(train_ds, bsz, sampler, workers, seed, drop_last)
            n_steps = (
                len(loader) if cfg.max_steps_per_epoch is None else min(len(loader), cfg.max_steps_per_epoch)
            )
            task = (
                prog.add_task(f"finetune {epoch + 1}/{cfg.epochs}", total=n_steps, loss=0.0, ips=0.0)
                if prog
                else None
            )
            _train_mode(model, cfg.freeze_backbone, freeze_bn=polish)
            total_steps = n_steps * cfg.epochs

            def set_lr(step: int, first: int = global_step, total: int = total_steps) -> None:
                set_scheduled_lr(optimizer, base_lrs, cfg.lr_schedule, first + step, total)

            on_step = (lambda lv, ips, t=task: prog.update(t, advance=1, loss=lv, ips=ips)) if prog else None
            stats = train_epoch(
                loader,
                n_steps,
                lambda x, y: mos_loss(ddp(x).mos, model.mos_to_unit_scale(y), cfg.plcc_weight),
                optimizer,
                device,
                model,
                on_step,
                set_lr,
            )
            global_step += stats.steps
            train_loss, t0 = stats.mean_loss, time.perf_counter() - stats.seconds
            pred = predict_five_crop(model, val_ds, device, max(1, bsz), workers)
            metrics = correlations(pred.numpy(), val_mos.numpy())
            seconds = time.perf_counter() - t0
            history.append(
                {"epoch": epoch + 1, "train_loss": train_loss, **metrics, "seconds": round(seconds, 3)}
            )
            improved = best["srocc"] is None or _better(metrics["srocc"], best["srocc"])
            if improved:
                best = {"srocc": metrics["srocc"], "metrics": metrics, "epoch": epoch + 1}
            if prog is not None:
                prog.remove_task(task)
                prog.console.log(
                    f"finetune epoch {epoch + 1}/{cfg.epochs}: loss {train_loss:.4f} "
                    f"SROCC {metrics['srocc']:.4f} PLCC {metrics['plcc']:.4f}{' (best)' if improved else ''}"
                )
            if D.is_main():
                card = {**base_card, "epoch": epoch + 1, "metrics": metrics, "history": history}
                if improved:
                    save_model(model, log(best_path), {**card, "best_epoch": epoch + 1})
                stage = "finetune" if epoch + 1 == cfg.epochs else "finetune-partial"
                save_model(model, log(last_path), {**card, "stage": stage})
                extra = {"epoch": epoch + 1, "global_step": global_step, "history": history, "best": best}
                save_training_state(log(state_path_for(last_path)), optimizer.state_dict(), extra)
            D.barrier()
    log.debug_dump(model)
    return FinetuneResult(best_checkpoint=best_path, best_metrics=dict(best["metrics"]), history=history)


LR_SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Learning-rate multiplier at optimizer step ``step`` of ``total``; a pure function of the step, so a
    resumed run continues on the same curve. "cosine" (ours): half a cosine from 1 down to 0."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))
    return 1.0


def _better(new: float, old: float | None) -> bool:
    """NaN is never better; anything beats a NaN best."""
    if new != new:  # nan
        return False
    return old is None or old != old or new > old
