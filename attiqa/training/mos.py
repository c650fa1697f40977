"""Fine-tuning pieces shared by the image loop, the cached-feature loop and the ridge weight's
cross-validation: which parameters train, the optimizer, train/eval modes, cached predictions, and the
cached MOS trainer itself (one configuration of :class:`~attiqa.training.trainer.Trainer`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attiqa.config import FinetuneConfig, to_dict
from attiqa.errors import AttiqaError, ConfigError
from attiqa.models import AttiqaModel, AttiqaOutput
from attiqa.training.losses import mos_loss
from attiqa.training.sources import CachedBatches
from attiqa.training.trainer import LR_SCHEDULES, BatchSource, Trainer

CENTRE_VIEW = 4  # FiveCropTest order: TL, TR, BL, BR, centre (then their mirror images with hflip)
TEST_VIEWS = 5  # validation averages the five unmirrored crops, as the scorer's five-crop test does


METRIC_KEYS = ("srocc", "plcc", "krcc", "rmse", "n")
# A fine-tuning's record (card and resume state) of the weights it started from: their ``weights_hash``, so a
# resume can tell that its init checkpoint changed since (pretraining trained on) and start again from it.
INIT_HASH = "init_weights_sha256"


def card_config(cfg: FinetuneConfig, imagenet: bool | None) -> dict[str, Any]:
    """A fine-tuning card's ``config``: the stage's settings, its ``pretrained_backbone`` whether the trained
    network's backbone began from ImageNet weights (a checkpoint's own record, None where it records none):
    a value of the card only, not of the config, whose bool setting built no network from a checkpoint."""
    return {**to_dict(cfg), "pretrained_backbone": imagenet}


@dataclass
class FinetuneResult:
    """``last_checkpoint`` is the model to use: the run's last epoch. ``best_checkpoint`` is the epoch with
    the best SROCC on the held-out split — the split its metrics are reported on (the test split in the
    protocols), so its numbers are optimistic; kept for ablations (``attiqa bench --select best``).
    ``best_epoch`` is that epoch, as the trainer chose it (with a ridge head: by the MOS MLP's SROCC; the
    ridge head is added after training, so no history entry holds the best checkpoint's combined metrics)."""

    best_checkpoint: Path
    best_metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    last_checkpoint: Path | None = None
    best_epoch: int | None = None

    @classmethod
    def of(cls, trainer: Trainer, history: list[dict[str, Any]]) -> FinetuneResult:
        """A finished :class:`Trainer`'s result: its best checkpoint, metrics and epoch, and its last."""
        best = trainer.best
        return cls(trainer.best_path, dict(best["metrics"]), history, trainer.last_path, best.get("epoch"))

    @property
    def last_metrics(self) -> dict[str, float]:
        """The held-out metrics of ``last_checkpoint`` (with a ridge head: of the combined MOS)."""
        last = self.history[-1] if self.history else {}
        return {k: last[k] for k in METRIC_KEYS if k in last}


def set_trainable(model: AttiqaModel, freeze_backbone: bool) -> None:
    """The MOS MLP trains; the heads' last layers never do (not on the MOS path, §3.5); the rest unless
    ``freeze_backbone``."""
    for name, p in model.named_parameters():
        if name.startswith("mos_head."):
            p.requires_grad_(True)
        elif name.startswith("heads.") and ".fc2." in name:
            p.requires_grad_(False)  # not on the MOS path (§3.5)
        else:
            p.requires_grad_(not freeze_backbone)


def keep_one_head(model: AttiqaModel, head: str) -> AttiqaModel:
    """The same network with only ``head`` (its weights and calibration): the MOS MLP then sees that head's
    features alone (ours: supplement Table 10 analogue, one attribute at a time)."""
    if head not in model.head_names:
        raise ConfigError(
            f"finetune.single_head: {head!r} is not a head of this model ({', '.join(model.head_names)})"
        )
    one = AttiqaModel(model.backbone, (head,), model.head_hidden, input_sizes=dict(model.input_sizes))
    one.heads[head].load_state_dict(model.heads[head].state_dict())
    i = model.head_names.index(head)
    one.calib_quantiles.copy_(model.calib_quantiles[i : i + 1])
    one.calibrated.copy_(model.calibrated)
    return one


def make_optimizer(model: AttiqaModel, cfg: FinetuneConfig) -> tuple[torch.optim.AdamW, list[float]]:
    """AdamW over the trainable parameters: the regression MLP at ``head_lr``, the rest at ``lr``; returns it
    with each group's base learning rate (what the schedule scales)."""
    if cfg.lr_schedule not in LR_SCHEDULES:
        valid = ", ".join(LR_SCHEDULES)
        raise ConfigError(f"finetune.lr_schedule: {cfg.lr_schedule!r} is not one of {valid}")
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("mos_head.")]
    assert model.mos_head is not None, "MOS training needs the MOS head (add_mos_head)"
    groups = [{"params": list(model.mos_head.parameters()), "lr": cfg.head_lr or cfg.lr}]
    if body:
        groups.insert(0, {"params": body, "lr": cfg.lr})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return optimizer, [g["lr"] for g in optimizer.param_groups]


def image_train_mode(model: AttiqaModel, freeze_backbone: bool, freeze_bn: bool = False) -> None:
    """End to end: everything trains, except a frozen backbone/heads (eval mode) and, for the LP-FT polish,
    every BatchNorm (small batches must not move the statistics)."""
    model.train()
    if freeze_backbone:
        model.backbone.eval()
        model.heads.eval()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def cached_train_mode(model: AttiqaModel) -> None:
    """Heads train; the frozen backbone (BN statistics, feature standardisation) stays in eval mode."""
    model.train()
    model.backbone.eval()


@torch.no_grad()
def predict_cached(
    model: AttiqaModel, feats: torch.Tensor, rows: torch.Tensor, stats: torch.Tensor | None = None
) -> torch.Tensor:
    """MOS on the unit scale of ``rows``: the mean over the five test crops, as five-crop scoring; with
    ``stats`` (cached ridge tap statistics) through the ridge head too."""
    model.eval()
    f = model.backbone.normalize(feats[rows, :TEST_VIEWS].flatten(0, 1))
    s = stats[rows, :TEST_VIEWS].flatten(0, 1) if stats is not None else None
    mos = model.forward_features(f, s).mos
    assert mos is not None, "the model has no MOS head"
    return mos.view(len(rows), TEST_VIEWS).mean(1)


class OnFeatures(torch.nn.Module):
    """The model's forward on cached backbone features (B, F) instead of images: what the cached-feature
    loops' steps compute through (their Trainer's ``net``), as the image loops' steps compute through the
    model (or its DDP wrapper). It holds the model itself: same parameters, nothing of its own."""

    def __init__(self, model: AttiqaModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor, ridge_stats: torch.Tensor | None = None) -> AttiqaOutput:
        return self.model.forward_features(self.model.backbone.normalize(feats), ridge_stats)


def on_features(model: torch.nn.Module) -> torch.nn.Module:
    """The cached-feature loops' ``wrap``, never DDP (by design): under torchrun every process trains on all
    the batches, drawn from (seed, epoch) alone (:class:`~attiqa.training.sources.CachedBatches`), so the
    processes end with one process's weights and have no gradients to exchange — heads on cached features
    take seconds, where an all-reduce per step would cost more than it shares."""
    assert isinstance(model, AttiqaModel), "cached features feed an ATTIQA model"
    return OnFeatures(model)


def cached_mos_trainer(
    model: AttiqaModel, cfg: FinetuneConfig, feats: torch.Tensor, rows: torch.Tensor, target01: torch.Tensor,
    source: BatchSource | None = None, loss: Callable[[torch.Tensor, Any], torch.Tensor] | None = None,
    **kw: Any,
) -> Trainer:  # fmt: skip
    """The MOS trainer on cached features of ``rows`` (targets on the unit scale): parameters as
    :func:`set_trainable` says, the backbone frozen; ``kw`` go to :class:`Trainer` (files, validation).

    ``source`` (default: :class:`CachedBatches` of ``rows``) and ``loss(pred_unit_mos, targets)`` (default:
    :func:`mos_loss` with ``cfg.plcc_weight``) replace the batches and the objective; the source's inputs
    must be cached features (B, F). Its steps compute through :func:`on_features`' net, never DDP: a
    ``wrap=`` is refused."""
    if "wrap" in kw:
        raise AttiqaError(
            "cached_mos_trainer: wrap= is not taken — every process trains on all the cached batches (the "
            "same weights with no gradients to exchange), so the cached loop is never DDP-wrapped"
        )
    set_trainable(model, cfg.freeze_backbone)
    model.backbone.requires_grad_(False)
    optimizer, base_lrs = make_optimizer(model, cfg)
    source = source or CachedBatches(feats, target01, rows, cfg.batch_size, cfg.seed)
    objective = loss or (lambda pred, y: mos_loss(pred, y, cfg.plcc_weight))

    def step_loss(net: torch.nn.Module, x: torch.Tensor, y: Any) -> torch.Tensor:
        mos = net(x).mos
        assert mos is not None  # make_optimizer checked the MOS head
        return objective(mos, y)

    return Trainer("finetune", model, source, step_loss, optimizer, cfg.epochs, lr_schedule=cfg.lr_schedule,
                   base_lrs=base_lrs, train_mode=lambda: cached_train_mode(model), wrap=on_features,
                   **{"lr_key": "finetune.lr or finetune.head_lr", **kw})  # fmt: skip
