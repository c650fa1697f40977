"""DDP helpers: one code path for a single process and for ``torchrun --nproc_per_node N``.

- Initialised from torchrun's env vars (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); backend NCCL
  when CUDA is available, gloo otherwise (CPU tests).
- Without those env vars (or WORLD_SIZE=1) nothing is initialised and every helper is a no-op.
- Only rank 0 writes files (:func:`is_main`); collectives keep the other ranks in step.
"""

from __future__ import annotations

import datetime
import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler


@dataclass(frozen=True)
class DistState:
    rank: int
    world_size: int
    local_rank: int
    owns_group: bool  # we created the process group, so we destroy it in teardown()


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_dist() else 0


def world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if is_dist() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_dist():
        dist.barrier()


def gather_objects(obj: object) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank — also a barrier; ``[obj]`` alone."""
    if not is_dist():
        return [obj]
    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def init_distributed(timeout_minutes: float = 30.0) -> DistState:
    """Join the torchrun process group if the env says so (idempotent; reuses an existing group)."""
    if is_dist():
        return DistState(rank(), world_size(), local_rank(), owns_group=False)
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    if ws <= 1:
        return DistState(0, 1, 0, owns_group=False)
    lr = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(lr)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return DistState(dist.get_rank(), dist.get_world_size(), lr, owns_group=True)


def teardown(state: DistState) -> None:
    """Destroy the group only if :func:`init_distributed` created it (a caller's group is left alone)."""
    if state.owns_group and is_dist():
        dist.barrier()
        dist.destroy_process_group()


@contextmanager
def process_group(timeout_minutes: float = 30.0) -> Iterator[DistState]:
    """:func:`init_distributed` for the ``with`` block, then :func:`teardown` — except after an error,
    when a group this call created is destroyed without the closing barrier: a rank that failed must not
    wait for ranks that may never reach it."""
    state = init_distributed(timeout_minutes)
    ok = False
    try:
        yield state
        ok = True
    finally:
        if ok:
            teardown(state)
        elif state.owns_group and is_dist():
            dist.destroy_process_group()


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP-wrap when world_size > 1 (gradients are averaged across ranks); the model itself otherwise."""
    if world_size() <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    # No buffer sync in forward: each rank keeps BN statistics of its own data; average_buffers() merges
    # them at the end of every epoch (ours), instead of DDP overwriting them with rank 0's at each step.
    # torch >= 2.13 names it forward_sync_buffers (broadcast_buffers is deprecated); it still syncs buffers
    # once at init, which is harmless here: every rank starts from the same weights.
    if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters:
        return DDP(model, device_ids=ids, forward_sync_buffers=False)
    return DDP(model, device_ids=ids, broadcast_buffers=False)


def unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


def make_sampler(dataset: Dataset, shuffle: bool, seed: int, drop_last: bool) -> DistributedSampler:
    """A DistributedSampler for any world size (also 1): its permutation depends only on (seed, epoch),
    which makes data order reproducible and resumable. Call ``set_epoch`` every epoch."""
    return DistributedSampler(
        dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle, seed=seed, drop_last=drop_last
    )


def epoch_seed(seed: int, epoch: int, rank_: int) -> int:
    """A well-mixed 63-bit seed for (run seed, epoch, rank): augmentations differ across ranks and
    epochs, yet an epoch replays identically after ``--resume``."""
    import numpy as np

    return int(np.random.SeedSequence([seed, epoch, rank_]).generate_state(2, dtype=np.uint64)[0] >> 1)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if is_dist():
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    return all_reduce_sum(t) / world_size()


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate tensors of different lengths (dim 0) from all ranks, in rank order (gloo-safe)."""
    if not is_dist():
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    mx = int(max(s.item() for s in sizes))
    padded = torch.zeros((mx, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    out = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(out, padded)
    return torch.cat([o[: int(s.item())] for o, s in zip(out, sizes, strict=True)])


@torch.no_grad()
def average_buffers(model: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running stats) across ranks (ours).

    DDP keeps parameters identical but each rank updates its BN statistics from its own batches, so
    without this the ranks would end an epoch with different buffers (and rank 0's checkpoint would
    only reflect rank 0's data)."""
    if world_size() <= 1:
        return
    for m in unwrap(model).modules():
        if isinstance(m, nn.modules.batchnorm._NormBase):
            for b in (m.running_mean, m.running_var):
                if b is not None:
                    dist.all_reduce(b, op=dist.ReduceOp.SUM)
                    b.div_(world_size())
