"""Pretraining and fine-tuning on cached frozen-backbone features (ours: ``feature_cache: true``).

Differs from the paper on purpose, for machines without a GPU: the backbone stays at its initial
weights (ImageNet, or an earlier checkpoint) and only what sits on top of it trains —

- pretraining (§3.4): the five attribute heads, on the margin ranking loss (eq. 3-4) or the L2 ablation,
  with the paper's batch 256, lr 1e-4 and 100 epochs (supplement B), which take seconds here;
- fine-tuning (§3.5): the heads' first layers and the regression MLP (``freeze_backbone: true`` = linear
  probing, Table 6: the regression MLP only).

Views are fixed instead of random: the five crops of §4.2's test view (four corners + centre) after
resizing the shorter edge, and with ``hflip: true`` their five mirror images too (cached as views 5-9:
the stand-in for random flips); each epoch every image contributes one of its views, drawn at random
(:class:`~attiqa.training.sources.CachedBatches`), and validation averages the five unmirrored crops (as
the five-crop test does). The backbone's features are standardised per feature with statistics of the
training photos (:meth:`Backbone.set_feature_statistics`) when the backbone has a standardisation layer
(``efficientnet_lite0_ms``).

Under torchrun the cached loops are never DDP-wrapped, by design: rank 0 fills the feature cache and every
process trains on all the batches in the same order (:func:`~attiqa.training.mos.on_features`), ending with
the weights one process would.

Both are configurations of the one loop (:class:`~attiqa.training.trainer.Trainer`). The checkpoints are
ordinary ATTIQA checkpoints (backbone + heads + MOS MLP): scoring, export and evaluation do not know how
they were trained. The resume point is written every tenth of the run (an epoch here takes well under a
second, far less than writing the whole model), so ``--resume`` loses at most that.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from attiqa.config import FinetuneConfig, PretrainConfig, to_dict
from attiqa.errors import AttiqaError
from attiqa.evaluation.metrics import correlations
from attiqa.io.batching import default_num_workers
from attiqa.io.checkpoints import TrainingStateFile
from attiqa.models import AttiqaModel, create_backbone, save_model
from attiqa.sharding import alike_on_every_process
from attiqa.training import distributed as D
from attiqa.training.data import (
    DATA_SETTING,
    MosSplit,
    PseudoLabelDataset,
    training_mos_range,
)
from attiqa.training.losses import make_pretrain_loss
from attiqa.training.mos import (
    CENTRE_VIEW,
    INIT_HASH,
    FinetuneResult,
    cached_mos_trainer,
    cached_train_mode,
    card_config,
    on_features,
    predict_cached,
)
from attiqa.training.sources import CachedBatches, five_crop_views, shared_cached_features
from attiqa.training.trainer import Trainer, WriteLog, one_thread


def checkpoint_every(epochs: int) -> int:
    return max(1, epochs // 10)


def workers(n: int | None) -> int:
    return default_num_workers() if n is None else n


def check_resumed_heads(extra: dict | None, head_names: tuple[str, ...], last_path: Path) -> None:
    """A resumed pretraining must have the label file's heads. Every process of a torchrun job calls it: a
    table whose columns differ on one node is said by the process that read it (was: that one stopped and
    the others were cut off mid-epoch, saying "rerun the same command")."""
    with alike_on_every_process():
        if extra is not None and tuple(extra.get("head_names", ())) != head_names:
            raise AttiqaError(
                f"{last_path}: heads {extra.get('head_names')} differ from the label file's columns "
                f"{list(head_names)} — --resume continues that run: give it the label table it was trained "
                "on (the same columns in the same order), or train over it with --no-resume (or choose "
                "another out_dir)"
            )


def pretrain_cached(cfg: PretrainConfig, labels: Path, out_dir: Path, resume: bool, progress: bool,
                    labels_fix: str, roots: Sequence[str | Path] = (),
                    saved: TrainingStateFile | None = None) -> Path:  # fmt: skip
    """Attribute-aware pretraining of the heads on cached features; returns ``pretrain/model.safetensors``."""
    stage_dir = Path(out_dir) / "pretrain"
    final_path = stage_dir / "model.safetensors"
    torch.manual_seed(cfg.seed)
    backbone = create_backbone(cfg.backbone, pretrained=cfg.pretrained_backbone, weights=cfg.backbone_weights)
    view_tf, view = five_crop_views(backbone, cfg.resize_shorter, cfg.crop_size, mirrored=cfg.hflip)
    dataset = PseudoLabelDataset(labels, view_tf, on_error="skip", roots=roots)
    # The heads are created before the extraction, whose DataLoader draws from the global RNG only when
    # the cache is cold: a warm cache must give the same initial heads.
    sizes = {"pretrain_crop": cfg.crop_size, "pretrain_resize_shorter": cfg.resize_shorter,
             "test_crop": cfg.crop_size, "test_resize_shorter": cfg.resize_shorter}  # fmt: skip
    model = AttiqaModel(backbone, dataset.head_names, cfg.head_hidden, input_sizes=sizes)
    feats, valid = shared_cached_features(
        backbone, dataset, view, cfg.feature_cache_dir, max(1, min(cfg.batch_size, 64) // 5),
        workers(cfg.num_workers), progress,
    )  # fmt: skip
    rows = torch.nonzero(valid).flatten()
    with alike_on_every_process():  # images unreadable on one node only: said by the process that met it
        if len(rows) < 2:
            raise AttiqaError(f"{labels}: fewer than 2 images could be read — nothing to rank")
    backbone.set_feature_statistics(feats[rows].flatten(0, 1))
    model.backbone.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.heads.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = make_pretrain_loss(cfg.loss, cfg.margin)
    base_card = {
        "stage": "pretrain", "config": to_dict(cfg), "feature_cache": True, "frozen_backbone": True,
        "labels": {"path": str(labels), "rows": len(dataset), "readable": int(valid.sum()),
                   "head_names": list(dataset.head_names), "metadata": dataset.metadata},
    }  # fmt: skip

    def step_loss(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(net(x).attributes, y)  # net: the model on features (on_features)

    trainer = Trainer(
        "pretrain", model, CachedBatches(feats, dataset.targets, rows, cfg.batch_size, cfg.seed), step_loss,
        optimizer, cfg.epochs, stage_dir=stage_dir, train_mode=lambda: cached_train_mode(model),
        wrap=on_features,
        checkpoint_every=checkpoint_every(cfg.epochs), card=base_card, label="pretrain (cached features)",
        log_every=10, progress=progress,
        state_extra={"head_names": list(dataset.head_names)},
        settings={**to_dict(cfg), DATA_SETTING: dataset.fingerprint()}, data_fix=labels_fix, saved=saved,
    )  # fmt: skip
    check_resumed_heads(trainer.resume(resume), dataset.head_names, trainer.last_path)
    with one_thread():
        history = trainer.fit()
    model.eval()
    with torch.no_grad():  # calibration (ours): the centre crop of every readable training photo
        model.calibrate(model.forward_features(backbone.normalize(feats[rows, CENTRE_VIEW])).attributes)
    if D.is_main():
        save_model(model, trainer.log(final_path), {**base_card, "epoch": cfg.epochs, "history": history})
    trainer.finish()
    D.barrier()
    return final_path


def finetune_cached(
    cfg: FinetuneConfig,
    model: AttiqaModel,
    split: MosSplit,
    init_info: dict[str, Any],
    stage_dir: Path,
    resume: bool = False,
    progress: bool = True,
    log: WriteLog | None = None,
    imagenet: bool | None = None,
    saved: TrainingStateFile | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` (already built, MOS MLP attached) on cached features of ``split``, writing
    ``best`` / ``last`` checkpoints into ``stage_dir``; see the module docstring. ``imagenet``: whether the
    network's backbone began from ImageNet weights, for the cards (:func:`~attiqa.training.mos.card_config`;
    None: unknown); ``saved``: its state as a check opened it (``Trainer.saved``)."""
    stage_dir = Path(stage_dir)
    backbone = model.backbone
    view_tf, view = five_crop_views(backbone, cfg.resize_shorter, cfg.crop_size, mirrored=cfg.hflip)
    data = split.dataset(view_tf, on_error="skip")
    feats, valid = shared_cached_features(
        backbone, data, view, cfg.feature_cache_dir, max(1, cfg.batch_size // 5), workers(cfg.num_workers),
        progress,
    )  # fmt: skip
    tr = torch.tensor([i for i in split.train if valid[i]], dtype=torch.long)
    va = torch.tensor([i for i in split.val if valid[i]], dtype=torch.long)
    mos = split.mos
    with alike_on_every_process():  # images unreadable on one node only: said by the process that met it
        if len(tr) < 2 or len(va) < 2:
            raise AttiqaError(
                f"{split.source}: too few readable images to fine-tune ({len(tr)} train, {len(va)} val)"
            )
        lo, hi = training_mos_range(mos[tr], split.source)
    model.set_mos_range(lo, hi)
    if init_info.get("init", "").startswith(("imagenet:", "random:")):
        backbone.set_feature_statistics(feats[tr].flatten(0, 1))  # no pretraining statistics to keep
    target01 = model.mos_to_unit_scale(mos)
    base_card = {
        "stage": "finetune", "config": card_config(cfg, imagenet), **init_info,
        "feature_cache": True, "frozen_backbone": True,
        "dataset": {**split.card(), "n_train": len(tr), "n_val": len(va), "unreadable": int((~valid).sum())},
        "mos_range": [lo, hi], "linear_probe": cfg.freeze_backbone,
    }  # fmt: skip

    def validate() -> dict[str, float]:
        pred = model.mos_to_dataset_scale(predict_cached(model, feats, va))
        return correlations(pred.double().numpy(), mos[va].double().numpy())

    trainer = cached_mos_trainer(
        model, cfg, feats, tr, target01, stage_dir=stage_dir, validate=validate,
        checkpoint_every=checkpoint_every(cfg.epochs), card=base_card, label="finetune (cached features)",
        log_every=10, progress=progress, log=log or WriteLog(),
        settings={**to_dict(cfg), DATA_SETTING: split.fingerprint()},
        state_extra={k: init_info[k] for k in (INIT_HASH,) if k in init_info}, saved=saved,
    )  # fmt: skip
    with one_thread():
        history = trainer.fit(resume)
    return FinetuneResult.of(trainer, history)
