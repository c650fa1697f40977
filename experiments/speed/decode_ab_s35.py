"""Old vs new decoding of `attiqa score` in alternating rounds of one process (session 35).

    python experiments/speed/decode_ab_s35.py [--model attiqa-default] [--n 48] [--rounds 4] [--root DIR]

As ``benchmarks/score_throughput.py`` (the same photos, batch 8, one decode worker, the bare backbone forward
on pre-decoded tensors as the baseline), with two end-to-end runs per round: ``old`` = the decode worker sends
the scorer's float32 ``transform`` output (the code before session 35), ``new`` = ``packed_transform`` (uint8
crops) unpacked in the main process. Prints per round: images/s, ratio to the bare forward, the main
process's minor page faults, the worker's CPU ms and faults per photo, and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _common import forward_rate, photo_folder  # noqa: E402

from attiqa.io.images import discover_images, load_image  # noqa: E402
from attiqa.scorers.attiqa_scorer import AttiqaScorer  # noqa: E402
from attiqa.scorers.zoo import resolve_weights  # noqa: E402
from attiqa.scoring import score_paths  # noqa: E402


def usage(who: int) -> tuple[float, int]:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime, r.ru_minflt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="attiqa-default")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--root", type=Path, help="real photos instead of the generated 512-px JPEGs")
    args = ap.parse_args()

    paths = discover_images([args.root])[: args.n] if args.root else discover_images([photo_folder(args.n)])
    ckpt = resolve_weights(args.model) if not Path(args.model).exists() else Path(args.model)
    new = AttiqaScorer(ckpt)
    old = AttiqaScorer(ckpt)
    old.packed_transform = old.transform  # type: ignore[method-assign]  # the float32 batches of before
    old.unpack = lambda batch: batch  # type: ignore[method-assign]
    tensors = [new.transform(load_image(p, min_shorter=new.info.min_shorter)) for p in paths]
    bs = args.batch_size
    batches = [torch.stack(tensors[i : i + bs]) for i in range(0, len(tensors), bs)]
    net = new.model.backbone.eval()

    def end_to_end(scorer: AttiqaScorer) -> dict[str, float]:
        c0, f0 = usage(resource.RUSAGE_SELF)
        k0, g0 = usage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        run = score_paths(paths, scorer, bs, num_workers=args.workers)
        sec = time.perf_counter() - t0
        c1, f1 = usage(resource.RUSAGE_SELF)
        k1, g1 = usage(resource.RUSAGE_CHILDREN)
        n = len(run.rows)
        return {"rate": n / sec, "faults": f1 - f0, "worker_ms": (k1 - k0) / n * 1e3, "worker_faults": g1 - g0}

    for scorer in (old, new):  # warm-up
        score_paths(paths[:bs], scorer, bs, num_workers=args.workers)
    ratios: dict[str, list[float]] = {"old": [], "new": []}
    order = [("old", old), ("new", new)]
    print(f"{len(paths)} photos, {args.model}, batch {bs}, workers {args.workers}, torch threads "
          f"{torch.get_num_threads()}")  # fmt: skip
    for r in range(args.rounds):
        bare = forward_rate(net, batches)
        line = [f"round {r}: load {os.getloadavg()[0]:.1f}, bare {bare:.2f}/s"]
        for name, scorer in order if r % 2 == 0 else order[::-1]:
            got = end_to_end(scorer)
            ratios[name].append(got["rate"] / bare)
            line.append(
                f"{name} {got['rate']:.2f}/s ratio {got['rate'] / bare:.3f} (main faults {got['faults']}, "
                f"worker {got['worker_ms']:.1f} ms/photo, {got['worker_faults']} faults)"
            )
        print(" | ".join(line) + f" | load {os.getloadavg()[0]:.1f}", flush=True)
    for name, rs in ratios.items():
        print(f"{name}: best ratio {max(rs):.3f}, median {statistics.median(rs):.3f}")
    print(f"new / old per round: {[round(n / o, 3) for n, o in zip(ratios['new'], ratios['old'], strict=True)]}")


if __name__ == "__main__":
    main()
