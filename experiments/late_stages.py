"""Late stages of EfficientNet-Lite0 on cached early activations (ours; issues 15 and 20): the one copy.

End-to-end fine-tuning does not fit a CPU, but the last stages are cheap; so the frozen stem +
``blocks[:START]`` run once per crop and the input of ``blocks[START]`` is cached (fp16, memory-mapped,
resumable), and the late stages are trained or probed on that cache without running the early ones again.
Used by ``agiqa3k/late_cache.py``, ``agiqa3k/late_finetune.py`` and ``generalisation/s28/late_cache.py``,
``late_probe.py``, ``rank_pretrain.py`` (each puts this folder on ``sys.path``). Research code, not product:
the product's depthwise statistics live in ``attiqa.models.backbones``; here they are rebuilt piecewise, in
the same column order (mean, std of each depthwise tap, then the final pooled features).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attiqa.io.atomic import atomic_path, write_json_atomic
from attiqa.models import create_backbone
from attiqa.models.backbones import tap_points
from attiqa.training.data import MosDataset
from attiqa.training.ridge import fit_ridge
from attiqa.training.sources import five_crop_views

BACKBONE = "efficientnet_lite0_ms"
VIEW = (500, 320)  # the product's view: shorter edge 500, five 320-px crops


# ---------------------------------------------------------------------------------------------------------
# Depthwise tap statistics


@contextlib.contextmanager
def recording_stats(modules: Sequence[nn.Module]) -> Iterator[list[torch.Tensor]]:
    """Yield a list that every forward of ``modules`` extends with (mean, std) over space of its output
    (B, C each), in call order: the product's depthwise statistics, one tap at a time."""
    store: list[torch.Tensor] = []

    def hook(_m, _i, y):
        f = y.float().flatten(2)
        store.extend((f.mean(2), f.std(2)))

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def block_taps(net, first: int, stop: int) -> list[nn.Module]:
    """The depthwise tap modules inside ``net.blocks[first:stop]`` (one per block, the product's order)."""
    modules = tap_points(net, "depthwise")[0]
    a, b = (sum(len(net.blocks[i]) for i in range(k)) for k in (first, stop))
    return list(modules[a:b])


def first_late_column(net, start: int) -> int:
    """Index of the first depthwise-statistics column that ``blocks[start:]`` produce (2 per channel)."""
    widths = [int(w) for w in tap_points(net, "depthwise")[1]]
    return 2 * sum(widths[: sum(len(net.blocks[i]) for i in range(start))])


# ---------------------------------------------------------------------------------------------------------
# The frozen early part and its cache


@torch.no_grad()
def early(net, x: torch.Tensor, start: int) -> torch.Tensor:
    """The input of ``net.blocks[start]`` for images ``x`` (frozen stem + ``blocks[:start]``)."""
    h = net.bn1(net.conv_stem(x.contiguous(memory_format=torch.channels_last)))
    for i in range(start):
        h = net.blocks[i](h)
    return h


def early_with_stats(net, x: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input of ``blocks[start]``, depthwise statistics of ``blocks[:start]`` (B, D_early))."""
    with recording_stats(block_taps(net, 0, start)) as store:
        h = early(net, x, start)
    return h, torch.cat(store, 1)


def done_path(arr: Path) -> Path:
    """The resume mask beside a cache array: ``act_b4.npy`` -> ``act_b4.done.npy``."""
    return arr.with_name(arr.stem + ".done.npy")


def open_cache(arr: Path, shape: tuple[int, ...], dtype=np.float16) -> tuple[np.memmap, np.ndarray]:
    """(the memory-mapped array, created or reopened to resume, and its per-row ``done`` mask)."""
    mm = np.lib.format.open_memmap(arr, mode="r+" if arr.is_file() else "w+", dtype=dtype, shape=shape)
    mask = done_path(arr)
    return mm, np.load(mask) if mask.is_file() else np.zeros(shape[0], dtype=bool)


def save_done(arr: Path, done: np.ndarray) -> None:
    with atomic_path(done_path(arr)) as tmp, open(tmp, "wb") as f:
        np.save(f, done)


def load_cache(arr: Path, hint: str, unit: str = "photos") -> torch.Tensor:
    """The whole cache array in memory; an unfinished cache stops the script with one line."""
    done = np.load(done_path(arr))
    if not done.all():
        raise SystemExit(f"{arr}: {int((~done).sum())} {unit} not cached yet ({hint})")
    return torch.from_numpy(np.load(arr, mmap_mode="r")[:].copy())


def cache_block_input(
    csv: Path, out: Path, start: int, chunk: int, early_stats: bool, unit: str = "photos"
) -> None:
    """Cache the input of Lite0's ``blocks[start]`` for the five crops of every image of an ``image,mos``
    CSV: ``act_b{start}.npy`` (N, 5, C, H, W) fp16, with ``early_stats`` also ``early_b{start}.npy``
    (N, 5, D_early) float32 (the early taps' statistics, which the late stages never change), and
    ``act_b{start}.json``. Resumable: chunks of ``chunk`` images, the ``done`` mask saved after each."""
    out.mkdir(parents=True, exist_ok=True)
    bb = create_backbone(BACKBONE).eval()
    net = bb.body.net
    tf, view = five_crop_views(bb, *VIEW)
    data = MosDataset(csv, None, tf, on_error="raise")
    n = len(data)
    probe, pstats = early_with_stats(net, torch.zeros(1, 3, VIEW[1], VIEW[1]), start)
    shape = (n, 5, *probe.shape[1:])
    meta = {"start": start, "shape": list(shape), "view": view, "csv": str(csv.resolve())}
    arr_path = out / f"act_b{start}.npy"
    arr, done = open_cache(arr_path, shape)
    est = None
    if early_stats:
        meta["early_stats"] = int(pstats.shape[1])
        est = open_cache(out / f"early_b{start}.npy", (n, 5, pstats.shape[1]), np.float32)[0]
    write_json_atomic(out / f"act_b{start}.json", meta)
    t0 = time.perf_counter()
    for s in range(0, n, chunk):
        idx = [i for i in range(s, min(n, s + chunk)) if not done[i]]
        for i in idx:
            x = data[i][0]  # (5, 3, 320, 320)
            if est is None:
                h = early(net, x, start)
            else:
                h, st = early_with_stats(net, x, start)
                est[i] = st.numpy()
            arr[i] = h.float().contiguous().numpy().astype(np.float16)
        arr.flush()
        if est is not None:
            est.flush()
        done[idx] = True
        save_done(arr_path, done)
        print(f"{int(done.sum())}/{n} {unit}, {time.perf_counter() - t0:.0f} s", flush=True)


# ---------------------------------------------------------------------------------------------------------
# The late stages


class Late(nn.Module):
    """``blocks[start:]`` + head conv/BN of a timm EfficientNet, a linear head on the pooled features."""

    def __init__(self, net, start: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[copy.deepcopy(net.blocks[i]) for i in range(start, len(net.blocks))])
        self.conv_head = copy.deepcopy(net.conv_head)
        self.bn2 = copy.deepcopy(net.bn2)
        self.head = nn.Linear(int(net.num_features), 1)

    def pooled(self, h: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv_head(self.blocks(h))).mean((2, 3))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(h)).squeeze(1)


def freeze_bn(m: nn.Module) -> None:
    """BatchNorm layers back to eval mode (statistics frozen; their affine parameters still train)."""
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.eval()


@torch.no_grad()
def run_flat(fn, flat: torch.Tensor, batch: int) -> torch.Tensor:
    """fn over the crops of ``flat`` (M, C, H, W) in batches (fp32, channels-last)."""
    return torch.cat([fn(flat[j : j + batch].float().contiguous(memory_format=torch.channels_last))
                      for j in range(0, len(flat), batch)])  # fmt: skip


def run_all(fn, acts: torch.Tensor, batch: int = 40) -> torch.Tensor:
    """fn over every crop of ``acts`` (N, 5, C, H, W) in batches -> (N, 5, ...)."""
    n = acts.shape[0]
    out = run_flat(fn, acts.reshape(n * 5, *acts.shape[2:]), batch)
    return out.reshape(n, 5, *out.shape[1:])


def late_dw_stats(model: Late, acts: torch.Tensor, batch: int = 40) -> torch.Tensor:
    """Depthwise tap statistics of the late blocks + the final pooled features, per crop (N, 5, F), in the
    column order of the product's depthwise tap set (mean, std of each tap, then the final features)."""
    with recording_stats(tap_points(model, "depthwise")[0]) as store:

        def fn(x: torch.Tensor) -> torch.Tensor:
            store.clear()
            final = model.pooled(x)
            return torch.cat([*store, final], 1)

        return run_all(fn, acts, batch)


def adamw_cosine(model: Late, lr: float, wd: float, steps: int):
    """AdamW (backbone ``lr``, head 10x) with a cosine decay over ``steps`` steps: (optimiser, scheduler)."""
    back = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    groups = [{"params": back, "lr": lr}, {"params": model.head.parameters(), "lr": lr * 10}]
    opt = torch.optim.AdamW(groups, weight_decay=wd)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    return opt, sched


def add_finetune_options(ap: argparse.ArgumentParser) -> None:
    """The options of :func:`train_split` (late_finetune.py's recipe), with its defaults."""
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)


def train_split(
    net, acts: torch.Tensor, y: torch.Tensor, tr: torch.Tensor, train_from: int, a: argparse.Namespace,
    log: Callable[[str], None],
) -> Late:  # fmt: skip
    """Fine-tune ``blocks[train_from:]`` + a linear head to the training part's standardised MOS.

    ``acts``: the input of ``blocks[train_from]`` (N, 5, ...); ``a``: :func:`add_finetune_options`. The head
    starts from a closed-form ridge on the frozen pooled features of the training images (LOO penalty);
    each epoch sees every training image once through one of its five crops at random; MSE; AdamW (head LR
    10x), cosine. BatchNorm statistics stay frozen."""
    torch.manual_seed(a.seed)
    model = Late(net, train_from)
    model.eval()
    # head init: ridge on the frozen pooled features of the training images (mean over crops)
    pooled = run_all(model.pooled, acts[tr]).mean(1)
    fit = fit_ridge(pooled, y[tr].float())
    mu, sd = y[tr].mean(), y[tr].std()
    with torch.no_grad():  # the head predicts standardised MOS
        model.head.weight.copy_((fit.coef / fit.scale).unsqueeze(0) / sd)
        w = fit.coef / fit.scale
        model.head.bias.fill_(float((fit.intercept - float(w @ fit.center) - mu) / sd))
    log(f"  head init: ridge alpha {fit.alpha:.3g}")
    opt, sched = adamw_cosine(model, a.lr, a.wd, a.epochs * math.ceil(len(tr) / a.batch))
    target = ((y - mu) / sd).float()
    gen = torch.Generator().manual_seed(a.seed)
    for ep in range(a.epochs):
        model.train()
        freeze_bn(model)
        order = tr[torch.randperm(len(tr), generator=gen)]
        t0, tot = time.perf_counter(), 0.0
        for s in range(0, len(order), a.batch):
            idx = order[s : s + a.batch]
            crop = torch.randint(0, 5, (len(idx),), generator=gen)
            x = acts[idx, crop].float().contiguous(memory_format=torch.channels_last)
            loss = nn.functional.mse_loss(model(x), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
        log(f"  epoch {ep + 1}/{a.epochs}: train mse {tot / len(tr):.4f} ({time.perf_counter() - t0:.0f} s)")
    model.eval()
    return model
