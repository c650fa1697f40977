"""Why backbones run in channels_last: training and inference speed of each backbone in both layouts.

Prints images/s per layout and the ratio channels_last / contiguous (measured in this run).

    python benchmarks/channels_last.py [--backbone efficientnet_lite0] [--size 224] [--batch 16]
"""

from __future__ import annotations

import argparse
import time

import torch

from attiqa.cli import run_app
from attiqa.models import create_backbone


def rate(body: torch.nn.Module, x: torch.Tensor, train: bool, reps: int = 3) -> float:
    opt = torch.optim.AdamW(body.parameters()) if train else None
    body.train(train)
    times = []
    for _ in range(reps + 1):
        t = time.perf_counter()
        if train:
            opt.zero_grad()
            body(x).sum().backward()
            opt.step()
        else:
            with torch.inference_mode():
                body(x)
        times.append(time.perf_counter() - t)
    return x.shape[0] / min(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    x = torch.randn(args.batch, 3, args.size, args.size)
    for train in (False, True):
        res = {}
        for layout in (torch.contiguous_format, torch.channels_last):
            body = create_backbone(args.backbone, pretrained=False).body.to(memory_format=layout)
            res[layout] = rate(body, x.contiguous(memory_format=layout), train)
        a, b = res[torch.contiguous_format], res[torch.channels_last]
        print(
            f"{args.backbone} {'train' if train else 'infer'} @{args.size}: contiguous {a:7.1f} img/s | "
            f"channels_last {b:7.1f} img/s | ratio {b / a:.2f}"
        )


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
