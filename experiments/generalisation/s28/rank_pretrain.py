"""Ranking pretraining of Lite0's last stages on ordered distortion pairs (ours; issue 20, stop 28).

Candidate B of ``decision_rule_s28.txt`` (RankIQA-style, Liu et al. ICCV 2017, on the late stages only):

- ``cache``: each of the 142 unlabelled photos of ``natural/`` is resized as the scorer does (shorter
  edge 500), ONE 320-px crop is taken (position seeded by the photo's index), 8 of the 23 usable KADID
  types are drawn (seeded; not ``kadid_contrast_change``: its levels are not monotone; not
  ``kadid_mean_shift``: mapmm undoes it) and the crop is degraded at levels 1, 3 and 5 of each
  (``attiqa.distortions.apply_distortion``, seed = photo index; level 0 left out: KADID's mapmm
  stretches every level >= 1 but not the original). The frozen stem + ``blocks[:4]`` run once; the
  input of ``blocks[4]`` is stored fp16 (142, 24, 80, 20, 20).
- ``train``: frozen ``blocks[4]`` once, then ``blocks[5:]`` + head conv (BN statistics frozen) and a
  linear score on the pooled features are trained on pairs (same photo, same type; (1,3), (1,5), (3,5),
  the lower level better): margin ranking loss max(0, 1 - (s_better - s_worse)) + DRIFT x mean squared
  drift of the pooled features from the frozen ones (per column, in units of the frozen features' std
  over the pair crops). Head initialised to the mean pooled-feature difference (better - worse), scaled
  so the mean gap is 1. AdamW lr 1e-4 (head 1e-3), weight decay 1e-4, cosine, 3 epochs, batch 16 pairs.
  Writes the trained late stages as safetensors + JSON (``late_probe.py --late-state`` reads it).

    OMP_NUM_THREADS=1 nice -n 10 python experiments/generalisation/s28/rank_pretrain.py cache \
        --out runs/s28/late/rank
    OMP_NUM_THREADS=1 nice -n 10 python experiments/generalisation/s28/rank_pretrain.py train \
        --out runs/s28/late/rank
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from attiqa.distortions import KADID_NAMES, apply_distortion
from attiqa.io.atomic import write_json_atomic
from attiqa.io.images import discover_images
from attiqa.models import create_backbone
from attiqa.models.transforms import Normalize, ensure_min_size, resize_shorter

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from late_stages import (  # noqa: E402
    BACKBONE,
    Late,
    adamw_cosine,
    early,
    freeze_bn,
    load_cache,
    open_cache,
    run_flat,
    save_done,
)

NATURAL = Path("../shared/data/natural")
TYPES = tuple(n for n in KADID_NAMES if n not in ("kadid_contrast_change", "kadid_mean_shift"))
LEVELS = (1, 3, 5)
PER_PHOTO = 8
START = 4  # cached: the input of blocks[4]; blocks[4] frozen, blocks[5:] trained


def cache(a: argparse.Namespace) -> None:
    bb = create_backbone(BACKBONE).eval()
    net, norm = bb.body.net, Normalize(bb.mean, bb.std)
    files = discover_images([a.natural])
    n, k = len(files), PER_PHOTO * len(LEVELS)
    a.out.mkdir(parents=True, exist_ok=True)
    arr_path = a.out / "pairs_b4.npy"
    arr, done = open_cache(arr_path, (n, k, 80, 20, 20))
    meta: dict = {"photos": [str(p) for p in files], "types": [], "levels": list(LEVELS), "boxes": []}
    t0 = time.perf_counter()
    for i, path in enumerate(files):
        rng = np.random.default_rng(i)
        img = ensure_min_size(resize_shorter(Image.open(path).convert("RGB"), 500), 320)
        left, top = int(rng.integers(0, img.width - 320 + 1)), int(rng.integers(0, img.height - 320 + 1))
        crop = img.crop((left, top, left + 320, top + 320))
        types = [TYPES[j] for j in rng.choice(len(TYPES), PER_PHOTO, replace=False)]
        meta["types"].append(types)
        meta["boxes"].append([left, top])
        if done[i]:
            continue
        x = torch.stack([norm(apply_distortion(crop, t, lv, seed=i)) for t in types for lv in LEVELS])
        arr[i] = early(net, x, START).float().contiguous().numpy().astype(np.float16)
        done[i] = True
        if (i + 1) % 10 == 0 or i + 1 == n:
            arr.flush()
            save_done(arr_path, done)
            print(f"{i + 1}/{n} photos, {time.perf_counter() - t0:.0f} s", flush=True)
    write_json_atomic(a.out / "pairs_b4.json", meta)


def pair_index(n: int) -> torch.Tensor:
    """(P, 2) flat crop indices (better, worse) into the (n * 24) crops."""
    k = PER_PHOTO * len(LEVELS)
    rows = []
    for i in range(n):
        for t in range(PER_PHOTO):
            b = i * k + t * len(LEVELS)
            rows += [(b + 0, b + 1), (b + 0, b + 2), (b + 1, b + 2)]
    return torch.tensor(rows)


def pair_accuracy(model: Late, flat: torch.Tensor, pairs: torch.Tensor) -> float:
    s = run_flat(model, flat, 48)
    return float((s[pairs[:, 0]] > s[pairs[:, 1]]).double().mean())


def train(a: argparse.Namespace) -> None:
    acts = load_cache(a.out / "pairs_b4.npy", "rank_pretrain.py cache")
    n, k = acts.shape[:2]
    net = create_backbone(BACKBONE).body.net.eval()
    flat = run_flat(net.blocks[START], acts.reshape(n * k, *acts.shape[2:]), 48).half()  # blocks[4]'s output
    torch.manual_seed(a.seed)
    model = Late(net, START + 1).eval()
    pairs = pair_index(n)
    f0 = run_flat(model.pooled, flat, 48).float()  # (n*k, 1280): the frozen pooled features
    sd0 = f0.std(0) + 1e-6
    with torch.no_grad():
        d = (f0[pairs[:, 0]] - f0[pairs[:, 1]]).mean(0)
        model.head.weight.copy_((d / d.dot(d)).unsqueeze(0))
        model.head.bias.zero_()
    acc0 = pair_accuracy(model, flat, pairs)
    print(f"{len(pairs)} pairs from {n} photos; frozen pair accuracy {acc0:.4f}", flush=True)
    opt, sched = adamw_cosine(model, a.lr, a.wd, a.epochs * math.ceil(len(pairs) / a.batch))
    gen = torch.Generator().manual_seed(a.seed)
    log = []
    for ep in range(a.epochs):
        model.train()
        freeze_bn(model)
        order = torch.randperm(len(pairs), generator=gen)
        t0, tot_r, tot_d, nb = time.perf_counter(), 0.0, 0.0, 0
        for s in range(0, len(order), a.batch):
            p = pairs[order[s : s + a.batch]]
            idx = torch.cat([p[:, 0], p[:, 1]])
            f = model.pooled(flat[idx].float().contiguous(memory_format=torch.channels_last))
            sc = model.head(f).squeeze(1)
            m = len(p)
            rank = torch.relu(a.margin - (sc[:m] - sc[m:])).mean()
            drift = (((f - f0[idx]) / sd0) ** 2).mean()
            loss = rank + a.drift * drift
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot_r, tot_d, nb = tot_r + rank.item(), tot_d + drift.item(), nb + 1
        msg = (f"epoch {ep + 1}/{a.epochs}: rank {tot_r / nb:.4f} drift {tot_d / nb:.4f} "
               f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
        print(msg, flush=True)
        log.append(msg)
    model.eval()
    acc1 = pair_accuracy(model, flat, pairs)
    print(f"trained pair accuracy {acc1:.4f}", flush=True)
    state = {nm: t.detach().contiguous() for nm, t in model.state_dict().items()}
    save_file(state, str(a.out / "late_rank.safetensors"))
    info = {"start": START + 1, "pairs": len(pairs), "photos": n, "acc_frozen": acc0, "acc_trained": acc1,
            "epochs": a.epochs, "lr": a.lr, "wd": a.wd, "batch": a.batch, "margin": a.margin,
            "drift": a.drift, "seed": a.seed, "log": log}  # fmt: skip
    write_json_atomic(a.out / "late_rank.json", info)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["cache", "train"])
    ap.add_argument("--natural", type=Path, default=NATURAL)
    ap.add_argument("--out", type=Path, default=Path("runs/s28/late/rank"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16, help="pairs per step")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--margin", type=float, default=1.0)
    ap.add_argument("--drift", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cache(a) if a.step == "cache" else train(a)


if __name__ == "__main__":
    main()
