"""Batch sources for :class:`~attiqa.training.trainer.Trainer`: what one epoch trains on.

- :class:`ImageBatches`: images through a DataLoader (random crops), data order from a DistributedSampler
  (seed, epoch) and each item's augmentation RNG seeded from (seed, epoch, item), so a resumed epoch replays
  exactly, whatever process decodes the item (:class:`SeededItems`); ``batch_size`` is the GLOBAL batch,
  each process takes its share.
- :class:`CachedBatches` (ours, CPU budget mode): rows of cached backbone features, one of each image's
  fixed views drawn at random per epoch (see :mod:`attiqa.training.cached`).

A new source is any object with ``epoch(e) -> (batches, n_steps)`` yielding ``(inputs, targets)`` pairs
(tensors, moved to the device by the loop) and depending only on (seed, e).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from attiqa.io.batching import data_loader
from attiqa.models.backbones import Backbone
from attiqa.models.transforms import FiveCropTest, MirroredFiveCropTest
from attiqa.progress import console
from attiqa.training import distributed as D
from attiqa.training.data import ImageTableDataset
from attiqa.training.feature_cache import cached_features


def per_process_batch(global_batch: int, n_items: int) -> int:
    """``global_batch // world_size``, at least 2 (a ranking batch needs pairs), at most the rank's share."""
    ws = D.world_size()
    b = max(2, global_batch // ws)
    return max(1, min(b, -(-n_items // ws)))


def make_loader(
    dataset: Dataset,
    batch_size: int,
    sampler: Sampler[int],
    num_workers: int,
    seed: int,
    drop_last: bool,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    g = torch.Generator()
    g.manual_seed(seed)
    return data_loader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        generator=g,
        drop_last=drop_last,
        collate_fn=collate_fn,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4,
    )


def uneven_batch_words(key: str, global_batch: int) -> str | None:
    """What each process takes when the global batch does not split evenly over torchrun's processes (the
    step then trains on another global batch than the config says), or None when it splits."""
    ws = D.world_size()
    each = max(2, global_batch // ws)
    if ws <= 1 or each * ws == global_batch:
        return None
    if global_batch // ws < 2:
        return (f"{key}: {global_batch} over {ws} processes is fewer than 2 images each — each takes 2 (a "
                f"step needs pairs), {2 * ws} in all")  # fmt: skip
    return (f"{key}: {global_batch} is not a multiple of the {ws} processes — each takes {each} images a "
            f"step, {each * ws} in all; set {each * ws} or {each * ws + ws} to choose")  # fmt: skip


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one item's augmentation in one epoch (its own stream: not a rank's
    :func:`~attiqa.training.distributed.epoch_seed`)."""
    import numpy as np

    state = np.random.SeedSequence([seed, epoch, index], spawn_key=(1,)).generate_state(2, dtype=np.uint64)
    return int(state[0] >> 1)


class SeededItems(Dataset):
    """``dataset``'s items, each drawn with the torch RNG seeded from (seed, epoch, its index) and the
    caller's RNG left as it was. Why: a random crop or flip was drawn from the RNG of the process that
    decoded the item — the main one (``num_workers: 0``) or the loader worker its batch went to — so the
    crops depended on the number of decode workers, a setting a ``--resume`` may change (and whose default
    is one per spare core of the machine): the resumed epochs were not the uninterrupted run's."""

    def __init__(self, dataset: Dataset, seed: int, epoch: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, epoch

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed(self.seed, self.epoch, index))
            return self.dataset[index]


class ImageBatches:
    """Batches of ``(image, target)`` from a dataset of ``(image, target, index)`` items; ``key``: the config
    setting of the global batch, named when it does not split evenly over torchrun's processes."""

    def __init__(
        self, dataset: Dataset, batch_size: int, seed: int, workers: int, max_steps: int | None = None,
        key: str = "batch_size",
    ) -> None:  # fmt: skip
        self.dataset, self.seed, self.workers, self.max_steps = dataset, seed, workers, max_steps
        n = len(dataset)  # type: ignore[arg-type]
        self.batch_size = per_process_batch(batch_size, n)
        uneven = uneven_batch_words(key, batch_size)
        if uneven is not None and D.is_main():  # was silent: a global batch of 5 trained as 4 on 2 processes
            console.print(f"[yellow]{uneven}", highlight=False)
        # Whole batches, unless the data is smaller (then one batch, the same size on every rank). Under
        # torchrun the remainder is left out as one process leaves it out: DistributedSampler's padding would
        # repeat images and give an epoch more steps than one process takes with the same global batch.
        self.drop_last = n // D.world_size() >= self.batch_size
        self.sampler = D.make_sampler(dataset, shuffle=True, seed=seed, drop_last=self.drop_last)

    def epoch(self, epoch: int) -> tuple[Iterable[tuple[Any, torch.Tensor]], int]:
        seed = D.epoch_seed(self.seed, epoch, D.rank())
        torch.manual_seed(seed)  # the main process's RNG (the model's draws), as each epoch starts
        self.sampler.set_epoch(epoch)
        items = SeededItems(self.dataset, self.seed, epoch)  # crops alike with any number of workers
        loader = make_loader(items, self.batch_size, self.sampler, self.workers, seed, self.drop_last)
        n = len(loader) if self.max_steps is None else min(len(loader), self.max_steps)
        return ((x, y) for x, y, _ in loader), n


class CachedBatches:
    """Batches of ``(features (B, F), targets[rows])`` over ``rows`` of cached ``feats`` (N, K, F): shuffled
    by (seed, epoch), each image one of its K views; whole batches only (unless there is just one). Under
    torchrun every process draws all of them, no share each: the cached loops are never DDP-wrapped
    (:func:`attiqa.training.mos.on_features`)."""

    def __init__(self, feats: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, batch_size: int,
                 seed: int) -> None:  # fmt: skip
        self.feats, self.targets, self.rows, self.seed = feats, targets, rows, seed
        self.batch_size = min(batch_size, len(rows))

    def steps(self) -> int:
        n = len(self.rows)
        return n // self.batch_size if n > self.batch_size else 1

    def epoch(self, epoch: int) -> tuple[Iterable[tuple[Any, torch.Tensor]], int]:
        return self._batches(epoch), self.steps()

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = self.rows[torch.randperm(len(self.rows), generator=gen)]
        views = torch.randint(0, self.feats.shape[1], (len(order),), generator=gen)
        bsz = self.batch_size
        stop = len(order) - (len(order) % bsz if len(order) > bsz else 0)
        for s in range(0, stop, bsz):
            idx = order[s : s + bsz]
            yield self.feats[idx, views[s : s + bsz]], self.targets[idx]


# ----------------------------------------------------------------------------------------------------------
# Cached views


def five_crop_views(
    backbone: Backbone, resize_shorter: int | None, crop: int, mirrored: bool = False
) -> tuple[FiveCropTest, dict[str, Any]]:
    """The cached views (five crops, with ``mirrored`` their mirror images too) and their cache key."""
    cls = MirroredFiveCropTest if mirrored else FiveCropTest
    tf = cls(backbone.mean, backbone.std, resize_shorter, crop)
    desc = {"kind": "five_crop", "resize_shorter": resize_shorter, "crop": crop,
            "mean": list(backbone.mean), "std": list(backbone.std)}  # fmt: skip
    if mirrored:  # only then: caches made without mirrors keep their key
        desc["mirrored"] = True
    return tf, desc


def shared_cached_features(
    backbone: Backbone, dataset: ImageTableDataset, view: dict[str, Any], root: str | Path | None,
    batch_size: int, workers: int, progress: bool,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """:func:`cached_features`, computed by rank 0 only under torchrun (the other ranks wait, then read)."""
    if not D.is_main():
        with D.collective():
            D.barrier()
    out = cached_features(backbone, dataset, view, Path(root) if root else None, batch_size=batch_size,
                          workers=workers, progress=progress and D.is_main())  # fmt: skip
    if D.is_main():
        with D.collective():
            D.barrier()
    return out
