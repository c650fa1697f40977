"""One training epoch, shared by pretraining and fine-tuning (DDP-aware, progress-aware)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from attiqa.training import distributed as D


@dataclass
class EpochStats:
    mean_loss: float  # averaged over steps and ranks
    images: int  # seen by this rank
    steps: int
    seconds: float


def train_epoch(
    batches: Iterable,
    n_steps: int,
    step_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    model: torch.nn.Module,
    on_step: Callable[[float, float], None] | None = None,
    before_step: Callable[[int], None] | None = None,
) -> EpochStats:
    """Run up to ``n_steps`` optimizer steps over ``(x, y, index)`` batches.

    ``step_loss(x, y)`` returns the loss of one batch; ``on_step(loss, images_per_second)`` feeds a
    progress bar; ``before_step(step)`` runs before each optimizer step (e.g. to set a scheduled learning
    rate). BatchNorm statistics are averaged across ranks at the end (see ``average_buffers``).
    """
    t0, loss_sum, n_img, steps = time.perf_counter(), torch.zeros((), device=device), 0, 0
    for step, (x, y, _) in enumerate(batches):
        if step >= n_steps:
            break
        if before_step is not None:
            before_step(step)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = step_loss(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
        n_img += x.shape[0]
        steps += 1
        if on_step is not None:
            on_step(float(loss.detach()), n_img * D.world_size() / max(time.perf_counter() - t0, 1e-9))
    D.average_buffers(model)
    mean_loss = float(D.all_reduce_mean(loss_sum / max(n_steps, 1)))
    return EpochStats(mean_loss, n_img, steps, time.perf_counter() - t0)
