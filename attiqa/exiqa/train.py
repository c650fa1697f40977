"""ExIQA stage 1 (paper 004 §IV-C1, §V-B2): shallow visual prompt tuning of CLIP for distortion
identification on a set from ``attiqa make-distorted`` (labels.csv: strength per distortion).

Optimiser (§V-B2): AdamW (ours; the paper names only the schedule), cosine learning rate with linear warmup,
peak 0.002, the paper's 100 epochs with 20 of warmup by default. Each epoch ends with a checkpoint
(``exiqa.safetensors`` + JSON card: CLIP spec, attribute table, prompts, w) after the training state
(optimiser, prompts and w: one atomic file), so a run killed at any moment resumes at the next epoch. A
held-out split reports eq. (10) accuracy and eq. (11) RMSE.

Prompt length: 100 tokens by default, Table II's length for KADID-10k (and TID2013), the single-distortion
set closest to a KADID-type ``make-distorted`` set (Table II: 30 for LVQ, 15 for CSIQ and LIVE). For its own
100k multi-distortion set the paper fine-tunes the whole CLIP instead (5 epochs, lr 5e-5, §V-B2); we keep
shallow prompt tuning there too (ours).

Held-out split (ours: the paper gives none for its own set): by source photo. Every round re-distorts the
same photos, so an image-wise split would put one photo's other versions on the training side and report
accuracy on content already seen; here all versions of a photo are on one side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from attiqa.datasets.readers import read_csv, to_float
from attiqa.errors import AttiqaError, ConfigError
from attiqa.exiqa.model import (
    AttributeTable,
    ExiqaModel,
    distortion_loss,
    interval_accuracy,
    load_attribute_table,
    strength_rmse,
)
from attiqa.io.atomic import (
    folder_held,
    output_folder,
    refuse_if_folder_held,
    resumed_busy_fix,
    write_json_atomic,
)
from attiqa.io.batching import data_loader
from attiqa.io.checkpoints import (
    load_checkpoint,
    load_training_state,
    read_card,
    save_checkpoint,
    save_training_state,
)
from attiqa.io.commands import Command
from attiqa.io.hashes import sha256_of
from attiqa.io.run_meta import differing_settings, same_setting
from attiqa.limits import MAX_PROMPTS
from attiqa.teachers.clip import load_open_clip, parse_clip_spec
from attiqa.training.data import ImageTableDataset, collate_skip_none, unreadable_report


@dataclass
class ExiqaTrainConfig:
    clip: str = "ViT-B-16/openai"
    epochs: int = 100
    warmup_epochs: int = 20
    lr: float = 0.002
    batch_size: int = 32
    n_prompts: int = 100  # paper Table II: 100 (KADID-10k, TID2013), 30 (LVQ), 15 (CSIQ, LIVE)
    val_fraction: float = 0.1
    seed: int = 0
    attributes: str | None = None  # attribute file (default: the bundled one)


STATE_FILE = "exiqa.state.safetensors"
TRAINING = "training in"  # a training holding its --out, in a second command's line


def read_distortion_labels(
    data_dir: Path, table: AttributeTable
) -> tuple[list[Path], torch.Tensor, list[str]]:
    """Image paths, the (N, D) strength matrix in the table's order and each image's source photo (the
    ``source`` column of a ``make-distorted`` folder; the image itself when the column is absent)."""
    path = data_dir / "labels.csv"
    if not path.is_file():
        raise ConfigError(f"{path}: not found — make one with `attiqa make-distorted`")
    labels = read_csv(path, ",", what="labels.csv of `attiqa make-distorted`")
    image_col = labels.column("image", required=False)
    columns = {d: labels.column(d, required=False) for d in table.distortions}
    missing = [d for d, c in columns.items() if c is None]
    if image_col is None or missing:
        what = ", ".join(["image"] if image_col is None else missing[:3])
        raise ConfigError(
            f"{path}: no column for {what} — regenerate with `attiqa make-distorted` (the 25 KADID types)"
        )
    if not labels.rows:
        raise ConfigError(f"{path}: no rows — make a set with `attiqa make-distorted`")
    named = {d: c for d, c in columns.items() if c is not None}  # all of them, now
    paths, strengths, sources = [], [], []
    source_col = labels.column("source", required=False)
    for n, r in labels.numbered():
        image = str(r.get(image_col) or "")
        if not image:
            raise ConfigError(f"{path}:{n}: no image name — regenerate with `attiqa make-distorted`")
        paths.append(data_dir / image)
        strengths.append([_strength(r.get(c), f"{path}:{n}: {d}") for d, c in named.items()])
        source = str(r.get(source_col) or "") if source_col else ""
        sources.append(source or image)
    return paths, torch.tensor(strengths, dtype=torch.float32), sources


def _strength(cell: Any, where: str) -> float:
    """A label's strength: a number in [0, 1] (0 = not applied); anything else would train on garbage."""
    try:
        v = to_float(cell, where)
    except AttiqaError:  # not a number, or beyond any score
        v = math.nan
    if not 0.0 <= v <= 1.0:  # NaN (an empty cell) too
        raise ConfigError(
            f"{where}: strength {cell!r} is not a number in [0, 1] — fix the cell or regenerate"
        )
    return v


def split_by_source(sources: list[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Training and held-out indices with every image of a source photo on the same side: a seeded
    ``val_fraction`` of the distinct sources (at least one; at least one left to train on) is held out."""
    groups = sorted(set(sources))
    if len(groups) < 2:
        raise ConfigError(
            f"a held-out split by source photo needs at least 2 source photos, got {len(groups)} — "
            "use more photos or --val-fraction 0"
        )
    perm = np.random.default_rng(seed).permutation(len(groups))
    n_val = min(max(int(round(len(groups) * val_fraction)), 1), len(groups) - 1)
    held = {groups[j] for j in perm[:n_val]}
    tr = [i for i, s in enumerate(sources) if s not in held]
    va = [i for i, s in enumerate(sources) if s in held]
    return tr, va


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warmup to 1, then cosine decay to 0 (steps counted in optimiser updates)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


@torch.no_grad()
def evaluate(model: ExiqaModel, loader: DataLoader, device: torch.device) -> dict[str, float]:
    preds, trues = [], []
    for batch in loader:
        if batch is None:
            continue
        x, y, _ = batch
        preds.append(model.distortion_probs(model.attribute_probs(x.to(device))).cpu())
        trues.append(y)
    if not preds:
        return {}
    p, t = torch.cat(preds), torch.cat(trues)
    return {
        "accuracy": interval_accuracy(p, t),
        "rmse": strength_rmse(p, t),
        "loss": float(distortion_loss(p, t)),
    }


def epochs_kept(out_dir: Path) -> int:
    """How many epochs a rerun of the run in ``out_dir`` resumes after (its training state's), 0 without."""
    try:
        return int(load_training_state(Path(out_dir) / STATE_FILE)[1]["epoch"])
    except (AttiqaError, OSError, KeyError, TypeError, ValueError):
        return 0


def _checkpoint_card(ckpt: Path) -> dict[str, Any] | None:
    """The checkpoint's card, None without a readable one (a kill before its first save, or deleted)."""
    try:
        return read_card(ckpt)
    except AttiqaError:
        return None


def _epochs_in(card: dict[str, Any] | None) -> int:
    """The epochs a checkpoint's card says it holds (its history), -1 without a card."""
    return -1 if card is None else len(card.get("history", []))


def _resume(
    model: ExiqaModel,
    opt: torch.optim.Optimizer,
    ckpt: Path,
    ckpt_card: dict[str, Any] | None,
    state_path: Path,
    settings: dict[str, Any],
) -> tuple[int, list[dict[str, Any]]]:
    """Load the run kept in ``state_path`` (weights, optimiser, epoch); returns (epochs done, history). A
    state of an earlier version holds neither weights nor settings: the checkpoint's, of the same epoch only
    (those versions saved the checkpoint first, so a kill between the two left it an epoch ahead).
    ``ckpt_card``: the checkpoint's card, read once by the caller (:func:`_checkpoint_card`)."""
    opt_state, extra, weights = load_training_state(state_path, with_model=True)
    epoch, history, before = int(extra["epoch"]), list(extra["history"]), extra.get("settings")
    if weights is None and _epochs_in(ckpt_card) != epoch:
        raise ConfigError(
            f"{ckpt}: its weights are not of epoch {epoch}, the epoch of {state_path.name} (a run of an "
            "earlier version stopped between the two saves, or the checkpoint gone) — delete both to train "
            "again"
        )
    if before is None:  # an earlier version's state: the settings are the checkpoint's (level, so read)
        card = ckpt_card or {}
        before = {
            **card.get("config", {}),
            "labels_sha256": card.get("labels_sha256", settings["labels_sha256"]),  # earlier runs: no hash
        }
    if not same_setting(before, settings):  # by value: a NaN setting read back is its own
        raise ConfigError(
            f"{ckpt.parent}: holds a run with other settings ({differing_settings(before, settings)}) — use "
            "another --out, or the same settings and data to resume it"
        )
    if weights is None:
        weights, _ = load_checkpoint(ckpt)
    model.load_trainable_state(weights)
    opt.load_state_dict(opt_state)
    return epoch, history


@unreadable_report("exiqa")
def train_exiqa(
    data_dir: Path,
    out_dir: Path,
    cfg: ExiqaTrainConfig,
    device: str | torch.device = "cpu",
    workers: int = 0,
    on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train prompts + w (eq. 6-8); returns the history. Resumes from ``out_dir`` when it holds a run of
    the same settings and ``labels.csv``; ``on_start(epochs kept)`` before the first epoch trained."""
    if cfg.warmup_epochs > cfg.epochs:  # before CLIP loads
        raise ConfigError(
            f"--warmup-epochs {cfg.warmup_epochs} is more than --epochs {cfg.epochs}: the learning rate "
            "would never reach its peak nor decay — give fewer warmup epochs (the paper: 20 of 100; default: "
            "a fifth)"
        )
    if cfg.n_prompts > MAX_PROMPTS:  # before CLIP loads: the attention grows with their square
        raise ConfigError(
            f"--prompts {cfg.n_prompts} is more than {MAX_PROMPTS}: the attention a training step keeps "
            f"grows with the square of the tokens ({MAX_PROMPTS} prompts: ~0.9 GB a photo with ViT-B-16) — "
            f"give at most {MAX_PROMPTS} (the paper: 15 to 100)"
        )
    device = torch.device(device)
    table = load_attribute_table(cfg.attributes)
    paths, targets, sources = read_distortion_labels(Path(data_dir), table)
    # held by another run (a training, a regressor fit): said before CLIP loads (minutes), making nothing
    refuse_if_folder_held(out_dir, TRAINING, resumed_busy_fix(), command=Command.TRAIN_EXIQA)
    clip, preprocess, tokenizer, weights = load_open_clip(parse_clip_spec(cfg.clip), device, flag="--clip ")
    torch.manual_seed(cfg.seed)
    model = ExiqaModel(clip, tokenizer, table, cfg.n_prompts).to(device)
    tr_idx, va_idx = (
        split_by_source(sources, cfg.val_fraction, cfg.seed)
        if cfg.val_fraction > 0
        else (list(range(len(paths))), [])
    )

    def loader(idx: list[int], shuffle: bool) -> DataLoader:
        ds = ImageTableDataset([paths[i] for i in idx], targets[idx], preprocess, "skip")
        gen = torch.Generator().manual_seed(cfg.seed)
        return data_loader(
            ds,
            cfg.batch_size,
            shuffle=shuffle,
            num_workers=workers,
            collate_fn=collate_skip_none,
            generator=gen,
        )

    train_loader = loader(tr_idx, True)
    val_loader = loader(va_idx, False) if va_idx else None
    opt = torch.optim.AdamW([model.prompts, model.w_logits], lr=cfg.lr, weight_decay=0.0)
    steps_per_epoch = max(1, len(train_loader))
    total, warmup = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch

    out_dir = Path(out_dir)
    ckpt, state_path = out_dir / "exiqa.safetensors", out_dir / STATE_FILE
    labels_sha256 = sha256_of(Path(data_dir) / "labels.csv")  # a resume on other data is refused
    card: dict[str, Any] = {
        "kind": "exiqa",
        "clip": cfg.clip,
        "clip_weights": weights,
        "config": asdict(cfg),
        "distortions": list(table.distortions),
        "attributes": [list(a) for a in table.attributes],
        "prompt_positive": table.positive,
        "prompt_negative": table.negative,
        "labels_sha256": labels_sha256,
        "val_split": "by source photo",
        "val_sources": sorted({sources[i] for i in va_idx}),
    }
    output_folder(out_dir, "--out")  # the inputs are read and CLIP is loaded: a typo leaves no folder
    # two runs into one --out trained over each other's state and checkpoint, epoch by epoch
    with folder_held(out_dir, TRAINING, resumed_busy_fix(), command=Command.TRAIN_EXIQA):
        history: list[dict[str, Any]] = []
        start = 0
        settings = {**asdict(cfg), "labels_sha256": labels_sha256}
        if state_path.exists():
            ckpt_card = _checkpoint_card(ckpt)  # once: the resume and the level check below both read it
            start, history = _resume(model, opt, ckpt, ckpt_card, state_path, settings)
            if _epochs_in(ckpt_card) != start:  # stopped between the state and the checkpoint: bring it level
                save_checkpoint(ckpt, model.trainable_state(), {**card, "history": history})
                write_json_atomic(out_dir / "history.json", history)
        if on_start:
            on_start(start)
        step = start * steps_per_epoch
        for epoch in range(start, cfg.epochs):
            gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
            train_loader.sampler.generator = gen  # type: ignore[attr-defined]
            losses = []
            for batch in train_loader:
                if batch is None:
                    continue
                x, y, _ = batch
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * lr_factor(step, total, warmup)
                loss = distortion_loss(
                    model.distortion_probs(model.attribute_probs(x.to(device))), y.to(device)
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                step += 1
            row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": sum(losses) / max(1, len(losses))}
            if val_loader is not None:
                row.update({f"val_{k}": v for k, v in evaluate(model, val_loader, device).items()})
            history.append(row)
            # the state first, with the weights: the one resume point, whole whatever moment a kill comes
            extra = {"epoch": epoch + 1, "history": history, "settings": settings}
            save_training_state(state_path, opt.state_dict(), extra, model.trainable_state())
            save_checkpoint(ckpt, model.trainable_state(), {**card, "history": history})
            write_json_atomic(out_dir / "history.json", history)
            if on_epoch:
                on_epoch(epoch + 1, row)
        return {"checkpoint": str(ckpt), "history": history}
