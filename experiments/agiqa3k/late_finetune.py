"""Late-stage fine-tuning of EfficientNet-Lite0 on AGIQA-3k, from cached early activations (ours; issue 15).

Every frozen-feature recipe lands at median SROCC 0.794-0.825 (docs/agiqa3k_model.md): the representation is
the limit. This trains the LAST stages of the backbone (``blocks[TRAIN_FROM:]`` + head conv; BatchNorm
statistics stay frozen, their affine parameters train) plus a linear MOS head on their pooled features, on
the activations ``late_cache.py`` stored (the early stages never run again), on the splits `attiqa bench
single --group-by none|prompt` makes (seeds 0..). Per split, everything fixed in advance (no choice on a
test part; the last epoch is reported):

- the head starts from a closed-form ridge on the frozen pooled features of the training images (LOO
  penalty), so the backbone's first gradients come from a sensible head, not a random one;
- each epoch sees every training image once, through one of its five crops at random; MSE on the
  training part's standardised MOS; AdamW (backbone LR, head LR 10x), cosine;
- test prediction = mean over the five crops.

Reported per split: ``ft_head`` (the fine-tuned network's head), ``ridge_frozen`` (the product's ridge head
on the frozen depthwise statistics: the baseline), ``ridge_ft`` (the same ridge rule on depthwise statistics
whose late taps come from the fine-tuned stages: what the product would fit after fine-tuning) and
``mix`` = 0.4 ft_head + 0.6 ridge_ft (the recipe's fixed 0.4 / 0.6 split between its MLP and its ridge).

    OMP_NUM_THREADS=1 nice -n 10 python experiments/agiqa3k/late_finetune.py ../shared/data/agiqa3k-dev \
        --splits random:0,prompt:0 --out runs/agiqa3k/late/ft.json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attiqa.evaluation.metrics import correlations
from attiqa.models import create_backbone
from attiqa.models.backbones import tap_points
from attiqa.models.ridge_head import signed_power
from attiqa.training.ridge import fit_ridge

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cache_features import load_features, prompts_and_mos  # noqa: E402
from recipes import split_sets  # noqa: E402


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
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.eval()


@torch.no_grad()
def run_all(fn, acts: torch.Tensor, batch: int = 40) -> torch.Tensor:
    """fn over every crop of ``acts`` (N, 5, C, H, W) in batches -> (N, 5, ...)."""
    n = acts.shape[0]
    flat = acts.reshape(n * 5, *acts.shape[2:])
    outs = [fn(flat[s : s + batch].float().contiguous(memory_format=torch.channels_last))
            for s in range(0, n * 5, batch)]  # fmt: skip
    out = torch.cat(outs)
    return out.reshape(n, 5, *out.shape[1:])


@torch.no_grad()
def late_dw_stats(model: Late, acts: torch.Tensor, batch: int = 40) -> torch.Tensor:
    """Depthwise tap statistics of the late blocks + the final pooled features, per crop (N, 5, F), in the
    column order of the product's depthwise tap set (mean, std of each tap, then the final features)."""
    modules = tap_points(_Net(model), "depthwise")[0]
    store: list[torch.Tensor] = []

    def hook(_m, _i, y):
        f = y.float().flatten(2)
        store.extend((f.mean(2), f.std(2)))

    def fn(x: torch.Tensor) -> torch.Tensor:
        store.clear()
        final = model.pooled(x)
        return torch.cat([*store, final], 1)

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        return run_all(fn, acts, batch)
    finally:
        for h in handles:
            h.remove()


class _Net:
    """Duck type for tap_points: it reads ``.blocks``."""

    def __init__(self, model: Late) -> None:
        self.blocks = model.blocks


def ridge_predict(x: torch.Tensor, y: torch.Tensor, tr: torch.Tensor, te: torch.Tensor) -> torch.Tensor:
    fit = fit_ridge(x[tr], y[tr])
    return fit.predict(x[te]).double()


def train_split(net, acts, y, tr, a, log) -> Late:
    torch.manual_seed(a.seed)
    model = Late(net, a.train_from)
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
    back = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    groups = [{"params": back, "lr": a.lr}, {"params": model.head.parameters(), "lr": a.lr * 10}]
    opt = torch.optim.AdamW(groups, weight_decay=a.wd)
    steps = a.epochs * math.ceil(len(tr) / a.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--acts", type=Path, default=Path("runs/agiqa3k/late/act_b4.npy"))
    ap.add_argument("--train-from", type=int, default=5, help="train blocks[TRAIN_FROM:] (>= cached start)")
    ap.add_argument("--splits", default="random:0,prompt:0", help="KIND:SEED,... (bench splits, seeds 0-9)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/agiqa3k/late/ft.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    def log(msg: str) -> None:
        print(msg, flush=True)

    meta = json.loads(a.acts.with_suffix(".json").read_text())
    start = int(meta["start"])
    done = np.load(a.acts.with_name(a.acts.stem + ".done.npy"))
    if not done.all():
        raise SystemExit(f"{a.acts}: {int((~done).sum())} images not cached yet (late_cache.py)")
    acts = torch.from_numpy(np.load(a.acts, mmap_mode="r")[:].copy())  # (N, 5, C, H, W) fp16
    prompts, y = prompts_and_mos(a.root)
    _, stats = load_features(Path(meta["csv"]), progress=False, stages=False)  # (N, 5, 19200), cached
    net = create_backbone("efficientnet_lite0_ms").body.net.eval()
    if a.train_from > start:  # frozen blocks between the cache and the trained part: run them once
        with torch.no_grad():
            frozen = nn.Sequential(*[net.blocks[i] for i in range(start, a.train_from)])
            acts = run_all(frozen, acts).half()
    # columns of the frozen depthwise statistics the fine-tuned blocks replace
    widths = [int(w) for w in tap_points(net, "depthwise")[1]]
    n_early = sum(len(net.blocks[i]) for i in range(a.train_from))
    first_late = 2 * sum(widths[:n_early])
    frozen_x = signed_power(stats[:, :5], 0.5).mean(1)
    sets = split_sets(prompts, 10)
    results = json.loads(a.out.read_text()) if a.out.is_file() else {}
    for spec in a.splits.split(","):
        kind, seed = spec.split(":")
        sp = sets[kind][int(seed)]
        key = f"{kind}:{seed} from{a.train_from} ep{a.epochs} lr{a.lr:g} wd{a.wd:g} s{a.seed}"
        if key in results:
            log(f"{key}: done before")
            continue
        tr, te = torch.tensor(sp.train), torch.tensor(sp.test)
        t0 = time.perf_counter()
        log(f"{key}: {len(tr)} train / {len(te)} test")
        model = train_split(net, acts, y, tr, a, log)
        ft_head = run_all(model, acts[te]).mean(1).double() * y[tr].std() + y[tr].mean()
        late = signed_power(late_dw_stats(model, acts), 0.5).mean(1)
        ft_x = torch.cat([frozen_x[:, :first_late], late], 1)
        preds = {
            "ft_head": ft_head,
            "ridge_frozen": ridge_predict(frozen_x, y, tr, te),
            "ridge_ft": ridge_predict(ft_x, y, tr, te),
        }
        preds["mix"] = 0.4 * preds["ft_head"] + 0.6 * preds["ridge_ft"]
        preds["mix_frozen"] = 0.4 * preds["ft_head"] + 0.6 * preds["ridge_frozen"]
        row = {}
        for name, p in preds.items():
            m = correlations(p.numpy(), y[te].numpy())
            row[name] = {"srocc": m["srocc"], "plcc": m["plcc"]}
        row["seconds"] = time.perf_counter() - t0
        log(f"{key}: " + "  ".join(f"{k} {v['srocc']:.4f}/{v['plcc']:.4f}" for k, v in row.items()
                                    if isinstance(v, dict)) + f"  ({row['seconds']:.0f} s)")  # fmt: skip
        results[key] = row
        a.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = a.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(a.out)


if __name__ == "__main__":
    main()
