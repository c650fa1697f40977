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

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from attiqa.config import PretrainConfig, to_dict
from attiqa.device import resolve_device
from attiqa.errors import AttiqaError
from attiqa.io.batching import default_num_workers
from attiqa.io.checkpoints import load_checkpoint, load_training_state, read_card, save_training_state
from attiqa.models import AttiqaModel, create_backbone, save_model
from attiqa.models.transforms import CenterCropTest, PretrainTrain
from attiqa.training import distributed as D
from attiqa.training.data import PseudoLabelDataset, collate_skip_none
from attiqa.training.loop import train_epoch
from attiqa.training.losses import make_pretrain_loss

CALIBRATION_MAX_IMAGES = 50_000  # ours: 101 quantiles are stable long before ImageNet's 1.28M images
DEBUG_HASH_ENV = "ATTIQA_DEBUG_HASH_DIR"  # tests: each rank writes its final weight hash + files it wrote


# ----------------------------------------------------------------------------------------------------------
# Helpers shared with fine-tuning


def state_path_for(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".safetensors", ".state.safetensors"))


def weights_hash(model: torch.nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, bytes): equal hashes = bit-identical weights."""
    h = hashlib.sha256()
    for k, v in sorted(D.unwrap(model).state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class WriteLog:
    """Records files written by this process; refuses writes on ranks other than 0 (only rank 0 writes)."""

    def __init__(self) -> None:
        self.files: list[str] = []

    def __call__(self, path: Path) -> Path:
        if not D.is_main():
            raise RuntimeError(f"rank {D.rank()} tried to write {path}; only rank 0 writes files")
        self.files.append(str(path))
        return path

    def debug_dump(self, model: torch.nn.Module) -> None:
        """If ``ATTIQA_DEBUG_HASH_DIR`` is set, each rank writes ``rank{r}.json`` (weight hash, its files)."""
        d = os.environ.get(DEBUG_HASH_ENV)
        if d:
            Path(d).mkdir(parents=True, exist_ok=True)
            doc = {
                "rank": D.rank(),
                "world_size": D.world_size(),
                "hash": weights_hash(model),
                "files": self.files,
            }
            (Path(d) / f"rank{D.rank()}.json").write_text(json.dumps(doc))


def load_resume_state(weights: Path, model: AttiqaModel, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load ``last`` weights + optimizer state; they must be from the same epoch (both written atomically,
    model first — a kill between the two writes is detected here instead of silently mixing epochs)."""
    state_file = state_path_for(weights)
    if not state_file.exists():
        raise AttiqaError(
            f"{state_file}: training state missing next to {weights.name} — cannot resume exactly"
        )
    opt_state, extra = load_training_state(state_file)
    card_epoch = read_card(weights).get("epoch")
    if card_epoch != extra.get("epoch"):
        raise AttiqaError(
            f"{weights}: weights are from epoch {card_epoch} but the optimizer state from epoch "
            f"{extra.get('epoch')} (interrupted while saving) — delete both files to restart the stage"
        )
    tensors, _ = load_checkpoint(weights)
    if getattr(model, "ridge", None) is None:  # a finished fine-tuning run: its ridge head is refitted
        tensors = {k: v for k, v in tensors.items() if not k.startswith("ridge.")}
    model.load_state_dict(tensors, strict=True)
    optimizer.load_state_dict(opt_state)
    return extra


def make_progress(enabled: bool):
    """A rich progress bar (rank 0 only) showing loss and images/s; None when disabled."""
    if not enabled or not D.is_main():
        return None
    from attiqa.progress import make_training_progress

    return make_training_progress()


@contextmanager
def maybe_progress(enabled: bool) -> Iterator[Any]:
    prog = make_progress(enabled)
    if prog is None:
        yield None
        return
    with prog:
        yield prog


def make_loader(
    dataset, batch_size: int, sampler, num_workers: int, seed: int, drop_last: bool, collate_fn=None
) -> DataLoader:
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        generator=g,
        drop_last=drop_last,
        collate_fn=collate_fn,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if num_workers > 0 else None,
    )


def per_process_batch(global_batch: int, n_items: int) -> int:
    """``global_batch // world_size``, at least 2 (a ranking batch needs pairs), at most the rank's share."""
    ws = D.world_size()
    b = max(2, global_batch // ws)
    return max(1, min(b, -(-n_items // ws)))


# ----------------------------------------------------------------------------------------------------------


def pretrain(
    cfg: PretrainConfig, labels: Path, out_dir: Path, resume: bool = False, progress: bool = True
) -> Path:
    """Train an :class:`AttiqaModel` on pseudo-labels; returns ``out_dir/pretrain/model.safetensors``.

    ``resume=True`` continues from ``last`` (the epoch after the last finished one; a run that already
    finished only recalibrates and rewrites the final model); without a ``last`` it starts fresh."""
    if cfg.feature_cache:
        from attiqa.training.cached import pretrain_cached

        return pretrain_cached(cfg, Path(labels), Path(out_dir), resume, progress)
    state = D.init_distributed()
    ok = False
    try:
        path = _pretrain(cfg, Path(labels), Path(out_dir), resume, progress)
        ok = True
        return path
    finally:
        if ok:
            D.teardown(state)
        elif state.owns_group and D.is_dist():
            torch.distributed.destroy_process_group()


def _pretrain(cfg: PretrainConfig, labels: Path, out_dir: Path, resume: bool, progress: bool) -> Path:
    device = resolve_device(cfg.device)
    stage_dir = out_dir / "pretrain"
    last_path, final_path = stage_dir / "last.safetensors", stage_dir / "model.safetensors"
    log = WriteLog()

    torch.manual_seed(cfg.seed)  # identical initial heads on every rank (DDP also broadcasts rank 0's)
    backbone = create_backbone(cfg.backbone, pretrained=cfg.pretrained_backbone, weights=cfg.backbone_weights)
    train_tf = PretrainTrain(backbone.mean, backbone.std, cfg.crop_size, cfg.resize_shorter, cfg.hflip)
    dataset = PseudoLabelDataset(labels, train_tf)
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

    start_epoch, global_step, history = 0, 0, []
    if resume and last_path.exists():
        extra = load_resume_state(last_path, model, optimizer)
        if tuple(extra.get("head_names", ())) != dataset.head_names:
            raise AttiqaError(
                f"{last_path}: heads {extra.get('head_names')} differ from the label file's columns"
            )
        start_epoch, global_step, history = (
            int(extra["epoch"]),
            int(extra["global_step"]),
            list(extra["history"]),
        )

    bsz = per_process_batch(cfg.batch_size, len(dataset))
    workers = default_num_workers() if cfg.num_workers is None else cfg.num_workers
    sampler = D.make_sampler(dataset, shuffle=True, seed=cfg.seed, drop_last=False)
    drop_last = len(sampler) > bsz  # whole batches only, unless the data is smaller than one batch
    ddp = D.wrap_ddp(model, device)

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
        "per_process_batch": bsz,
    }

    with maybe_progress(progress) as prog:
        for epoch in range(start_epoch, cfg.epochs):
            seed = D.epoch_seed(cfg.seed, epoch, D.rank())
            torch.manual_seed(seed)  # augmentation RNG in the main process (num_workers=0)
            sampler.set_epoch(epoch)
            loader = make_loader(dataset, bsz, sampler, workers, seed, drop_last)
            n_steps = (
                len(loader) if cfg.max_steps_per_epoch is None else min(len(loader), cfg.max_steps_per_epoch)
            )
            task = (
                prog.add_task(f"pretrain {epoch + 1}/{cfg.epochs}", total=n_steps, loss=0.0, ips=0.0)
                if prog
                else None
            )
            ddp.train()
            on_step = (lambda lv, ips, t=task: prog.update(t, advance=1, loss=lv, ips=ips)) if prog else None
            stats = train_epoch(
                loader, n_steps, lambda x, y: loss_fn(ddp(x).attributes, y), optimizer, device, model, on_step
            )
            global_step += stats.steps
            mean_loss, seconds = stats.mean_loss, stats.seconds
            history.append(
                {"epoch": epoch + 1, "loss": mean_loss, "steps": n_steps, "seconds": round(seconds, 3)}
            )
            if prog is not None:
                prog.remove_task(task)
                prog.console.log(
                    f"pretrain epoch {epoch + 1}/{cfg.epochs}: loss {mean_loss:.4f} ({seconds:.1f}s)"
                )
            if D.is_main():
                extra = {
                    "epoch": epoch + 1,
                    "global_step": global_step,
                    "history": history,
                    "head_names": list(dataset.head_names),
                    "config": to_dict(cfg),
                }
                save_model(
                    model, log(last_path), {**base_card, "stage": "pretrain-partial", "epoch": epoch + 1}
                )
                save_training_state(log(state_path_for(last_path)), optimizer.state_dict(), extra)
            D.barrier()

    calibrate_model(model, labels, cfg, device, workers)
    if D.is_main():
        card = {**base_card, "epoch": cfg.epochs, "global_step": global_step, "history": history}
        save_model(model, log(final_path), card)
    log.debug_dump(model)
    D.barrier()
    return final_path


@torch.no_grad()
def calibrate_model(
    model: AttiqaModel, labels: Path, cfg: PretrainConfig, device: torch.device, workers: int
) -> None:
    """Quantiles of the heads' raw outputs over (up to CALIBRATION_MAX_IMAGES) training photos, eval mode,
    centre crops of the training crop size; sharded over ranks and gathered, so every rank stores the same."""
    tf = CenterCropTest(model.backbone.mean, model.backbone.std, cfg.resize_shorter, cfg.crop_size)
    ds = PseudoLabelDataset(labels, tf, on_error="skip")
    n = len(ds)
    if n > CALIBRATION_MAX_IMAGES:
        g = torch.Generator().manual_seed(cfg.seed)
        idx = torch.randperm(n, generator=g)[:CALIBRATION_MAX_IMAGES].sort().values.tolist()
    else:
        idx = list(range(n))
    shard = Subset(ds, idx[D.rank() :: D.world_size()])
    loader = DataLoader(
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
