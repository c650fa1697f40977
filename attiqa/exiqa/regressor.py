"""ExIQA stage 2 (paper 004 §IV-C2, eq. 9): a quality regressor on the attribute probabilities of the frozen,
prompt-tuned CLIP, trained with MSE on a MOS CSV (``image,mos[,split]``).

Paper: MLP with two hidden layers, SELU, dropout 0.2, cosine learning-rate schedule, 100 epochs. Ours: AdamW
at 1e-3, hidden width 256, MOS standardised for training (mean / std stored; predictions are returned on the
CSV's MOS scale), a seeded 80/20 split reporting SROCC / PLCC. The attribute probabilities are computed once
(CLIP is frozen). Writes ``regressor.safetensors`` (+ JSON card) next to ``exiqa.safetensors``.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from attiqa.errors import ConfigError
from attiqa.evaluation.metrics import plcc, srocc
from attiqa.exiqa import REGRESSOR_FILE, regressor_fit_held
from attiqa.exiqa.model import Regressor
from attiqa.exiqa.scorer import ExiqaScorer
from attiqa.io.atomic import output_folder
from attiqa.io.batching import data_loader
from attiqa.io.checkpoints import save_checkpoint
from attiqa.splits import split_indices
from attiqa.training.data import MosDataset, collate_skip_none, unreadable_report

HIDDEN = 256


def _no_transform_yet(image: Image.Image) -> torch.Tensor:
    """The dataset's transform until the scorer (which brings the real one) has loaded."""
    raise RuntimeError("attribute_features sets the scorer's transform before reading images")


@torch.no_grad()
def attribute_features(
    scorer: ExiqaScorer, ds: MosDataset, batch_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D·K) attribute probabilities and (N,) MOS of the readable images of a MOS CSV."""
    ds.transform = scorer.transform
    feats, mos = [], []
    for batch in data_loader(ds, batch_size, collate_fn=collate_skip_none):
        if batch is None:
            continue
        x, y, _ = batch
        feats.append(scorer.model.attribute_probs(x.to(scorer.device)).cpu())
        mos.append(y)
    return torch.cat(feats), torch.cat(mos)


@unreadable_report("exiqa regressor")
def train_regressor(
    run_dir: Path, mos_csv: Path, epochs: int = 100, lr: float = 1e-3, seed: int = 0, device: str = "cpu"
) -> dict[str, Any]:
    """Fit eq. (9) and save ``regressor.safetensors`` in ``run_dir``; returns the held-out metrics."""
    # the MOS CSV (and its images) first: a wrong --mos fails in one line before CLIP loads
    ds = MosDataset(Path(mos_csv), None, _no_transform_yet, on_error="skip")
    # held from before the scorer loads to the card, by the lock `train exiqa -o RUN` holds too: two fits at
    # once saved one's weights beside the other's card; a fit on a run still training read its first epoch
    with regressor_fit_held(run_dir):
        scorer = ExiqaScorer(run_dir, device=device, regressor=False)
        done = len(scorer.card.get("history", []))
        planned = int(scorer.card.get("config", {}).get("epochs", 0))
        if done < planned:  # fitted on these prompts, the regressor would not fit the finished run's
            raise ConfigError(
                f"{scorer.path}: its training stopped after epoch {done} of {planned} — finish it first "
                "(rerun the same `attiqa train exiqa` command: it resumes), then fit the regressor"
            )
        run = scorer.path.parent  # written beside the checkpoint: no other place to choose
        where = f"{REGRESSOR_FILE} is written beside the run's checkpoint"
        output_folder(run, fix=f"make it writable (chmod u+w {shlex.quote(str(run))}): {where}", create=False)
        return _fit_and_save(scorer, ds, run, mos_csv, epochs, lr, seed)


def _fit_and_save(
    scorer: ExiqaScorer, ds: MosDataset, run: Path, mos_csv: Path, epochs: int, lr: float, seed: int
) -> dict[str, Any]:
    """:func:`train_regressor`'s fit on the attribute probabilities, saved in ``run``."""
    x, y = attribute_features(scorer, ds)
    tr, va = split_indices(len(y), 0.2, seed)
    mean, std = float(y[tr].mean()), float(y[tr].std().clamp_min(1e-6))
    torch.manual_seed(seed)
    reg = Regressor(x.shape[1], HIDDEN)
    opt = torch.optim.AdamW(reg.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    xt, yt = x[tr], (y[tr] - mean) / std
    losses = []
    for _ in range(epochs):
        reg.train()
        perm = torch.randperm(len(tr))
        total = 0.0
        for i in range(0, len(tr), 32):
            idx = perm[i : i + 32]
            loss = torch.mean((reg(xt[idx]) - yt[idx]) ** 2)  # eq. (9)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        losses.append(total / len(tr))
    reg.eval()
    with torch.no_grad():
        pred = (reg(x[va]) * std + mean).numpy()
    metrics = {
        "val_srocc": srocc(pred, y[va].numpy()),
        "val_plcc": plcc(pred, y[va].numpy()),
        "n_train": len(tr),
    }
    card = {
        "kind": "exiqa-regressor",
        "hidden": HIDDEN,
        "mos_mean": mean,
        "mos_std": std,
        "mos_range": [float(y.min()), float(y.max())],
        "mos_csv": str(mos_csv),
        "epochs": epochs,
        "train_loss": losses,
        "metrics": metrics,
    }
    tensors = {f"regressor.{k}": v for k, v in reg.state_dict().items()}
    save_checkpoint(run / REGRESSOR_FILE, tensors, card)
    return {"losses": losses, **metrics, "finite": bool(np.isfinite(pred).all())}
