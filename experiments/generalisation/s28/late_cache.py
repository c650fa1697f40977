"""Cache the input of Lite0's ``blocks[START]`` for the five crops of every photo of MOS CSVs (ours).

Issue 20, stop 28 (``decision_rule_s28.txt``): ``experiments/agiqa3k/late_cache.py`` generalised to any
``image,mos`` CSV (clive-dev, BIQ2021-val). Per photo the product's view (shorter edge 500, five 320-px crops)
runs through the frozen stem + ``blocks[:START]`` once; the input of ``blocks[START]`` is stored as fp16 in a
memory-mapped array (N, 5, 80, 20, 20 for START 4), and the depthwise statistics of the early taps (the
columns of the product's 19,200 that the late stages never change) as float32 (N, 5, D_early), so the late
scripts can rebuild the product's statistics without running the early stages again. Resumable (chunks,
``done`` mask written atomically).

    OMP_NUM_THREADS=1 nice -n 10 python experiments/generalisation/s28/late_cache.py \
        ../shared/data/clive-dev/mos.csv --out runs/s28/late/clive
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from attiqa.io.atomic import write_json_atomic
from attiqa.models import create_backbone
from attiqa.models.backbones import tap_points
from attiqa.training.data import MosDataset
from attiqa.training.sources import five_crop_views


def early_taps(net, start: int) -> list:
    """The depthwise tap modules inside ``blocks[:start]`` (in the product's column order)."""
    modules = tap_points(net, "depthwise")[0]
    n_early = sum(len(net.blocks[i]) for i in range(start))
    return list(modules[:n_early])


@torch.no_grad()
def early(net, x: torch.Tensor, start: int, taps: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(input of ``blocks[start]``, early depthwise statistics (B, D_early): mean, std of each tap)."""
    store: list[torch.Tensor] = []

    def hook(_m, _i, y):
        f = y.float().flatten(2)
        store.extend((f.mean(2), f.std(2)))

    handles = [m.register_forward_hook(hook) for m in taps]
    try:
        h = net.bn1(net.conv_stem(x.contiguous(memory_format=torch.channels_last)))
        for i in range(start):
            h = net.blocks[i](h)
    finally:
        for hd in handles:
            hd.remove()
    return h, torch.cat(store, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path, help="image,mos CSV (paths relative to it or absolute)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--start", type=int, default=4, help="cache the input of blocks[START]")
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    bb = create_backbone("efficientnet_lite0_ms").eval()
    net = bb.body.net
    taps = early_taps(net, a.start)
    tf, view = five_crop_views(bb, 500, 320)
    data = MosDataset(a.csv, None, tf, on_error="raise")
    n = len(data)
    probe, pstats = early(net, torch.zeros(1, 3, 320, 320), a.start, taps)
    shape = (n, 5, *probe.shape[1:])
    meta = {"start": a.start, "shape": list(shape), "view": view, "csv": str(a.csv.resolve()),
            "early_stats": int(pstats.shape[1])}  # fmt: skip
    arr_path, done_path = a.out / f"act_b{a.start}.npy", a.out / f"act_b{a.start}.done.npy"
    st_path = a.out / f"early_b{a.start}.npy"
    mode = "r+" if arr_path.is_file() else "w+"
    arr = np.lib.format.open_memmap(arr_path, mode=mode, dtype=np.float16, shape=shape)
    est = np.lib.format.open_memmap(st_path, mode=mode, dtype=np.float32, shape=(n, 5, pstats.shape[1]))
    done = np.load(done_path) if done_path.is_file() else np.zeros(n, dtype=bool)
    write_json_atomic(a.out / f"act_b{a.start}.json", meta)
    t0 = time.perf_counter()
    for s in range(0, n, a.chunk):
        idx = [i for i in range(s, min(n, s + a.chunk)) if not done[i]]
        for i in idx:
            h, st = early(net, data[i][0], a.start, taps)  # (5, 3, 320, 320) in
            arr[i] = h.float().contiguous().numpy().astype(np.float16)
            est[i] = st.numpy()
        arr.flush()
        est.flush()
        done[idx] = True
        tmp = done_path.with_suffix(".tmp.npy")
        np.save(tmp, done)
        tmp.replace(done_path)
        print(f"{int(done.sum())}/{n} photos, {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
