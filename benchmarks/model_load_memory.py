"""Where a named model's load memory goes, step by step in one process: resident memory (anonymous and
file-backed, from /proc/self/status) and wall time after torch, after each import the scorer needs, after
reading the checkpoint, building the network, loading and folding it, and after its first forwards.

    python benchmarks/model_load_memory.py [--model attiqa-default] [--threads 1]

Run it in a fresh process (each step's cost is what it adds to the steps before). Figures in
docs/default_model.md ("Implementation speed notes", the memory row).
"""

from __future__ import annotations

import argparse
import gc
import time


def status() -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon, RssFile of this process in MiB."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


class Steps:
    def __init__(self) -> None:
        self.prev = status()
        self.t = time.perf_counter()
        print(f"{'step':<58} {'RSS':>6} {'+RSS':>6} {'+anon':>6} {'+file':>6} {'s':>6}  (MiB)")

    def __call__(self, name: str) -> None:
        now, t = status(), time.perf_counter()
        d = {k: now[k] - self.prev[k] for k in now}
        print(
            f"{name:<58} {now['VmRSS']:6.0f} {d['VmRSS']:+6.0f} {d['RssAnon']:+6.0f} {d['RssFile']:+6.0f} "
            f"{t - self.t:6.2f}"
        )
        self.prev, self.t = now, t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="attiqa-default", help="a named ATTIQA model (`attiqa models`)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    from attiqa.allocator import tune_allocator

    tune_allocator()  # as the command lines do
    step = Steps()
    import torch

    torch.set_num_threads(args.threads)
    step("import torch")
    import attiqa.interface
    import attiqa.io.checkpoints
    import attiqa.scoring  # noqa: F401  (what `attiqa score` holds before it loads a model)

    step("attiqa.scoring, attiqa.interface, checkpoints")
    import torchvision  # noqa: F401  (imported by timm: FrozenBatchNorm2d)

    step("import torchvision (timm's import of it)")
    import timm  # noqa: F401

    step("import timm (the rest)")
    from attiqa.models.attiqa_model import build_model_from_config, validate_model_card
    from attiqa.models.fold import fold_batchnorm
    from attiqa.scorers.zoo import resolve_weights

    step("attiqa.models")
    path = resolve_weights(args.model)
    tensors, card = attiqa.io.checkpoints.load_checkpoint(path)
    mib = sum(t.numel() * t.element_size() for t in tensors.values()) / 2**20
    step(f"read the checkpoint ({path.stat().st_size / 2**20:.1f} MiB file, {mib:.1f} MiB tensors)")
    model = build_model_from_config(validate_model_card(path, card, tensors))
    step("build the network (random initial weights)")
    model.load_state_dict(tensors, strict=False)
    del tensors
    gc.collect()
    step("load the weights, checkpoint tensors freed")
    fold_batchnorm(model.eval())
    step("fold BatchNorm")
    x = torch.rand(1, 3, 320, 320).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)
        step("first forward, 1 crop of 320 px")
        model(x)
        step("second forward, 1 crop")
    print(f"peak RSS {status()['VmHWM']:.0f} MiB")


if __name__ == "__main__":
    main()
