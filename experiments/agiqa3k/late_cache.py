"""Cache the frozen early part's activations of every AGIQA-3k image once (ours; for late-stage fine-tuning).

Issue 15: end-to-end fine-tuning does not fit this CPU, but the late stages of EfficientNet-Lite0 are cheap
(measured: blocks 5-6 + head conv, forward and backward on 16 crops of 320 px, 0.74 s on one core; the early
part's forward alone 1.25 s). So the input of ``blocks[START]`` (default 4: stage 5's input, 80 channels at
1/16 of the crop = 20×20) of the product's view (shorter edge 500, five 320-px crops) is stored once per image
as fp16 in a memory-mapped array; ``late_finetune.py`` then trains the stages after it without ever running
the early ones again. Resumable: chunks of 32 images, a ``done`` mask written atomically after each.

    OMP_NUM_THREADS=1 nice -n 10 python experiments/agiqa3k/late_cache.py ../shared/data/agiqa3k-dev
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from attiqa.models import create_backbone
from attiqa.training.data import MosDataset
from attiqa.training.sources import five_crop_views

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cache_features import write_csv  # noqa: E402


@torch.no_grad()
def early(net, x: torch.Tensor, start: int) -> torch.Tensor:
    h = net.bn1(net.conv_stem(x.contiguous(memory_format=torch.channels_last)))
    for i in range(start):
        h = net.blocks[i](h)
    return h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=Path("runs/agiqa3k/late"))
    ap.add_argument("--start", type=int, default=4, help="cache the input of blocks[START]")
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    csv = write_csv(a.root, a.out / "all.csv")
    bb = create_backbone("efficientnet_lite0_ms").eval()
    net = bb.body.net
    tf, view = five_crop_views(bb, 500, 320)
    data = MosDataset(csv, None, tf, on_error="raise")
    n = len(data)
    probe = early(net, torch.zeros(1, 3, 320, 320), a.start)
    shape = (n, 5, *probe.shape[1:])
    meta = {"start": a.start, "shape": list(shape), "view": view, "csv": str(csv)}
    arr_path, done_path = a.out / f"act_b{a.start}.npy", a.out / f"act_b{a.start}.done.npy"
    mode = "r+" if arr_path.is_file() else "w+"
    arr = np.lib.format.open_memmap(arr_path, mode=mode, dtype=np.float16, shape=shape)
    done = np.load(done_path) if done_path.is_file() else np.zeros(n, dtype=bool)
    (a.out / f"act_b{a.start}.json").write_text(json.dumps(meta, indent=1))
    t0 = time.perf_counter()
    for s in range(0, n, a.chunk):
        idx = [i for i in range(s, min(n, s + a.chunk)) if not done[i]]
        for i in idx:
            x = data[i][0]  # (5, 3, 320, 320)
            arr[i] = early(net, x, a.start).float().contiguous().numpy().astype(np.float16)
        arr.flush()
        done[idx] = True
        tmp = done_path.with_suffix(".tmp.npy")
        np.save(tmp, done)
        tmp.replace(done_path)
        print(f"{int(done.sum())}/{n} images, {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
