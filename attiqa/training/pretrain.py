"""Attribute-aware pretraining (paper §3.4; supplement B: random 224 crops, AdamW, batch 256, lr 1e-4).

Outputs in ``out_dir/pretrain/``:
- ``last.safetensors`` (+ ``last.json`` card) and ``last.state.safetensors`` (optimizer moments, epoch,
  global step, loss history) after EVERY epoch, so ``resume=True`` continues with the next epoch;
- ``model.safetensors`` (+ card): the final, calibrated model (stage "pretrain").

Reproducibility (ours): the data order comes from a DistributedSampler (depends only on seed and
epoch) and the augmentation RNG is re-seeded from (seed, epoch, rank) at the start of every epoch, so a
resumed run replays exactly the epochs an uninterrupted run would have done.

Multi-GPU: run the same command under ``torchrun --nproc_per_node N``. ``cfg.batch_size`` is the GLOBAL
batch (paper: 256); each process takes ``batch_size // world_size``. Ranking pairs are formed within each
process's batch (ours: pairs across GPUs are not gathered), and DDP averages the gradients. Only rank 0
writes files; every rank reads the same checkpoint on resume (shared filesystem).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch.utils.data import Subset

from attiqa.config import PretrainConfig, to_dict
from attiqa.device import resolve_device
from attiqa.errors import EveryProcessError
from attiqa.io.batching import data_loader, default_num_workers
from attiqa.io.checkpoints import TrainingStateFile
from attiqa.models import AttiqaModel, create_backbone, save_model
from attiqa.models.efficientnet_lite import EfficientNetLite
from attiqa.models.transforms import CenterCropTest, PretrainTrain
from attiqa.sharding import alike_on_every_process
from attiqa.training import distributed as D
from attiqa.training.cached import check_resumed_heads, pretrain_cached
from attiqa.training.data import (
    DATA_SETTING,
    ROOTS_ORDER,
    PseudoLabelDataset,
    collate_skip_none,
    unreadable_report,
)
from attiqa.training.losses import make_pretrain_loss
from attiqa.training.sources import ImageBatches
from attiqa.training.trainer import Trainer, state_path_for

CALIBRATION_MAX_IMAGES = 50_000  # ours: 101 quantiles are stable long before ImageNet's 1.28M images
__all__ = ["CALIBRATION_MAX_IMAGES", "calibrate_model", "pretrain"]


def check_pairs_per_process(cfg: PretrainConfig, n: int) -> None:
    """Under torchrun each process ranks the pairs of its own batch: with no more images than processes
    each takes one, and the ranking loss has no pair — an epoch of "loss 0.0000" that learns nothing."""
    ws = D.world_size()
    if cfg.loss == "ranking" and n <= ws:
        raise EveryProcessError(
            f"pretrain: {n} labelled images over {ws} processes — a ranking step needs 2 images on each "
            f"process (each would take 1 and learn nothing): run at most {n - 1} process"
            f"{'es' if n > 2 else ''} (torchrun --nproc_per_node {n - 1}), label more images, or set "
            "pretrain.loss: l2"
        )


def pretrain(
    cfg: PretrainConfig,
    labels: Path,
    out_dir: Path,
    resume: bool = False,
    progress: bool = True,
    labels_fix: str = "",
    roots: Sequence[str | Path] = (),
) -> Path:
    """Train an :class:`AttiqaModel` on pseudo-labels; returns ``out_dir/pretrain/model.safetensors``.

    ``resume=True`` continues from ``last`` (the epoch after the last finished one; a run that already
    finished only recalibrates and rewrites the final model); without a ``last`` it starts fresh.
    ``labels_fix``: how to set ``labels`` back when a resume finds the table changed (a table the run's
    label stage writes is set back by its config, not by restoring the file). ``roots``: train on the rows
    in their order under these folders (:func:`~attiqa.io.names.order_under`), not the table's — unless
    ``resume`` continues a run an earlier version started in the table's order."""
    cfg.check("pretrain")  # configs built in code skip the load-time checks
    saved = None  # the saved state, opened once: its row order read here, continued from by the trainer
    if resume:
        with contextlib.suppress(OSError, ValueError, KeyError, SafetensorError):  # none, or unreadable:
            saved = TrainingStateFile(state_path_for(Path(out_dir) / "pretrain" / "last.safetensors"))
    if roots and not rows_follow_roots(saved):  # the trainer's resume says an unreadable one
        roots = ()
    # also for the cached loop: under torchrun only rank 0 writes; the report's count once, the group's total
    with D.process_group(), unreadable_report("pretrain"):
        stage = pretrain_cached if cfg.feature_cache else _pretrain
        return stage(cfg, Path(labels), Path(out_dir), resume, progress, labels_fix, roots, saved)


def rows_follow_roots(saved: TrainingStateFile | None) -> bool:
    """Whether the run ``saved`` (its resume state; None: a new run) trains on its rows in their roots'
    order: true for a new run, false for one an earlier version started (its record has no ``order``)."""
    if saved is None:
        return True
    record = (saved.extra.get("config") or {}).get(DATA_SETTING) or {}
    return bool(record.get("order") == ROOTS_ORDER)


def _pretrain(cfg: PretrainConfig, labels: Path, out_dir: Path, resume: bool, progress: bool, labels_fix: str,
              roots: Sequence[str | Path], saved: TrainingStateFile | None = None) -> Path:  # fmt: skip
    device = resolve_device(cfg.device)
    stage_dir = out_dir / "pretrain"
    final_path = stage_dir / "model.safetensors"

    torch.manual_seed(cfg.seed)  # identical initial heads on every rank (DDP also broadcasts rank 0's)
    backbone = create_backbone(cfg.backbone, pretrained=cfg.pretrained_backbone, weights=cfg.backbone_weights)
    if cfg.checkpoint_activations:  # checked: a plain EfficientNet-Lite (PretrainConfig.check)
        assert isinstance(backbone.body, EfficientNetLite)
        backbone.body.checkpoint_blocks = True
    train_tf = PretrainTrain(backbone.mean, backbone.std, cfg.crop_size, cfg.resize_shorter, cfg.hflip)
    with alike_on_every_process():  # a table that differs on one node: said by the processes that met it
        dataset = PseudoLabelDataset(labels, train_tf, roots=roots)
        check_pairs_per_process(cfg, len(dataset))
    # A pretrain-only model is scored in the view it was trained and calibrated in (fine-tuning later
    # switches the test view to the paper's 340/320, §4.2).
    sizes = {
        "pretrain_crop": cfg.crop_size,
        "pretrain_resize_shorter": cfg.resize_shorter,
        "test_crop": cfg.crop_size,
        "test_resize_shorter": cfg.resize_shorter,
    }
    model = AttiqaModel(backbone, dataset.head_names, cfg.head_hidden, input_sizes=sizes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = make_pretrain_loss(cfg.loss, cfg.margin)

    workers = default_num_workers() if cfg.num_workers is None else cfg.num_workers
    source = ImageBatches(
        dataset, cfg.batch_size, cfg.seed, workers, cfg.max_steps_per_epoch, "pretrain.batch_size"
    )
    base_card = {
        "stage": "pretrain",
        "config": to_dict(cfg),
        "labels": {
            "path": str(labels),
            "rows": len(dataset),
            "head_names": list(dataset.head_names),
            "metadata": dataset.metadata,
        },
        "world_size": D.world_size(),
        "per_process_batch": source.batch_size,
    }
    trainer = Trainer(
        "pretrain", model, source, lambda net, x, y: loss_fn(net(x).attributes, y), optimizer, cfg.epochs,
        stage_dir=stage_dir, wrap=lambda m: D.wrap_ddp(m, device), device=device, card=base_card,
        progress=progress,
        state_extra={"head_names": list(dataset.head_names)},
        settings={**to_dict(cfg), DATA_SETTING: dataset.fingerprint()}, data_fix=labels_fix, saved=saved,
    )  # fmt: skip
    check_resumed_heads(trainer.resume(resume), dataset.head_names, trainer.last_path)
    history = trainer.fit()

    calibrate_model(model, labels, cfg, device, workers, roots)
    if D.is_main():
        card = {**base_card, "epoch": cfg.epochs, "global_step": trainer.global_step, "history": history}
        save_model(model, trainer.log(final_path), card)
    trainer.finish()
    D.barrier()
    return final_path


@torch.no_grad()
def calibrate_model(
    model: AttiqaModel,
    labels: Path,
    cfg: PretrainConfig,
    device: torch.device,
    workers: int,
    roots: Sequence[str | Path] = (),
) -> None:
    """Quantiles of the heads' raw outputs over (up to CALIBRATION_MAX_IMAGES) training photos, eval mode,
    centre crops of the training crop size; sharded over ranks and gathered, so every rank stores the same."""
    tf = CenterCropTest(model.backbone.mean, model.backbone.std, cfg.resize_shorter, cfg.crop_size)
    ds = PseudoLabelDataset(labels, tf, on_error="skip", roots=roots)
    n = len(ds)
    if n > CALIBRATION_MAX_IMAGES:
        g = torch.Generator().manual_seed(cfg.seed)
        idx = torch.randperm(n, generator=g)[:CALIBRATION_MAX_IMAGES].sort().values.tolist()
    else:
        idx = list(range(n))
    shard = Subset(ds, idx[D.rank() :: D.world_size()])
    loader = data_loader(
        shard,
        batch_size=max(2, cfg.batch_size // D.world_size()),
        num_workers=workers,
        collate_fn=collate_skip_none,
    )
    was_training = model.training
    model.eval()
    outs = []
    for batch in loader:
        if batch is not None:
            outs.append(model(batch[0].to(device)).attributes.float())
    local = torch.cat(outs) if outs else torch.zeros((0, len(model.head_names)), device=device)
    model.calibrate(D.all_gather_cat(local))
    model.train(was_training)
