"""DDP helpers for training: one code path for a single process and for ``torchrun --nproc_per_node N``.

- The process group and its basic collectives live in :mod:`attiqa.sharding` (scoring shares them) and are
  handed on here for training's ``D.`` namespace only (``from attiqa.training import distributed as D``:
  ``D.rank()``, ``D.barrier()``, ...); a ``from`` import takes them from :mod:`attiqa.sharding`, their home
  (tests/test_architecture.py). A lost peer is :class:`PeerLost` in every collective (one line, not gloo's
  traceback).
- Without torchrun's env vars (or WORLD_SIZE=1) nothing is initialised and every helper is a no-op.
- Only rank 0 writes files (:func:`is_main`); collectives keep the other ranks in step.
"""

from __future__ import annotations

import inspect

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from attiqa.sharding import (
    DistState,
    PeerLost,
    any_rank,
    barrier,
    collective,
    gather_objects,
    init_distributed,
    is_dist,
    is_main,
    local_rank,
    process_group,
    rank,
    teardown,
    world_size,
)

__all__ = [  # the process-group helpers re-exported from attiqa.sharding, then training's own
    "DistState", "any_rank", "barrier", "gather_objects", "init_distributed", "is_dist", "is_main",
    "local_rank", "process_group", "rank", "teardown", "world_size", "wrap_ddp", "unwrap", "make_sampler",
    "epoch_seed", "all_reduce_sum", "all_reduce_mean", "all_gather_cat", "average_buffers", "PeerLost",
    "collective",
]  # fmt: skip


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP-wrap when world_size > 1 (gradients are averaged across ranks); the model itself otherwise."""
    if world_size() <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    # No buffer sync in forward: each rank keeps BN statistics of its own data; average_buffers() merges
    # them at the end of every epoch (ours), instead of DDP overwriting them with rank 0's at each step.
    # torch >= 2.13 names it forward_sync_buffers (broadcast_buffers is deprecated); it still syncs buffers
    # once at init, which is harmless here: every rank starts from the same weights. Recomputed blocks
    # (pretrain.checkpoint_activations) need neither find_unused_parameters nor static_graph: the
    # non-reentrant recomputation runs no parameter's gradient hook a second time (tests/test_distributed.py).
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
        with collective():
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
    with collective():
        dist.all_gather(sizes, n)
    mx = int(max(s.item() for s in sizes))
    padded = torch.zeros((mx, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    out = [torch.zeros_like(padded) for _ in range(world_size())]
    with collective():
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
                    with collective():
                        dist.all_reduce(b, op=dist.ReduceOp.SUM)
                    b.div_(world_size())
