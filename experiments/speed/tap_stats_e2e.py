"""`score_throughput.py`'s own measurement with the tap statistics' path switched per round, in ONE process
(a path's win measured in separate processes drowns in the shared host's swings; session 35).

    PYTHONPATH=$PWD python experiments/speed/tap_stats_e2e.py --model attiqa-default --threads 2 --rounds 4

Each round runs every arm (``ATTIQA_NATIVE`` = 0: torch path, 1: the kernel on torch's OpenMP team,
pthreads: the kernel on its own threads) in an order rotated from round to round; each arm measures
``score_paths`` over the generated 512-px JPEGs (one decode worker) and the bare backbone forward on the same
decoded tensors, as ``benchmarks/score_throughput.py`` does. Prints images/s per arm per round, each arm's
ratio to its own bare forward, and each arm's end-to-end rate over the torch path's in the same round.
Session 36 (experiments/speed/tap_stats_rule_s36.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _common import forward_rate, photo_folder  # noqa: E402

from attiqa.io.images import discover_images, load_image  # noqa: E402
from attiqa.models.backbones import native_kernel  # noqa: E402
from attiqa.scorers.attiqa_scorer import AttiqaScorer  # noqa: E402
from attiqa.scorers.zoo import resolve_weights  # noqa: E402
from attiqa.scoring import score_paths  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="attiqa-default")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--arms", nargs="+", default=["0", "1", "pthreads"], help="ATTIQA_NATIVE values")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kernel = native_kernel()
    if kernel is None:
        raise SystemExit("the native kernel is not built: run `make native`")
    paths = discover_images([photo_folder(args.n)])
    scorer = AttiqaScorer(resolve_weights(args.model))
    tensors = [scorer.transform(load_image(p)) for p in paths]
    bs = args.batch_size
    batches = [torch.stack(tensors[i : i + bs]) for i in range(0, len(tensors), bs)]
    net = scorer.model.backbone.eval()

    def e2e() -> float:
        t0 = time.perf_counter()
        run = score_paths(paths, scorer, bs, num_workers=1)
        return len(run.rows) / (time.perf_counter() - t0)

    print(f"{args.model}: {len(paths)} images, torch threads {torch.get_num_threads()}, kernel "
          f"{kernel.variant()}, OpenMP runtime {kernel.runtime()}; "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    for arm in args.arms:  # warm-up of every path (allocations, thread pools)
        os.environ["ATTIQA_NATIVE"] = arm
        score_paths(paths[:bs], scorer, bs, num_workers=1)
        forward_rate(net, batches[:1])
    got: dict[str, list[tuple[float, float]]] = {arm: [] for arm in args.arms}
    for r in range(args.rounds):
        order = args.arms[r % len(args.arms) :] + args.arms[: r % len(args.arms)]
        line = []
        for arm in order:
            os.environ["ATTIQA_NATIVE"] = arm
            rate, bare = e2e(), forward_rate(net, batches)
            got[arm].append((rate, bare))
            line.append(f"{arm}: {rate:.2f} / bare {bare:.2f} ({rate / bare:.3f})")
        print(f"round {r + 1} (load {os.getloadavg()[0]:.2f}): " + "; ".join(line), flush=True)
    os.environ.pop("ATTIQA_NATIVE")
    base = [rate for rate, _ in got[args.arms[0]]]
    for arm, rows in got.items():
        ratio = [rate / bare for rate, bare in rows]
        vs = [rate / b for (rate, _), b in zip(rows, base, strict=True)]
        wins = sum(v > 1 for v in vs)
        print(f"{arm:>9}: e2e/bare median {statistics.median(ratio):.3f} (best {max(ratio):.3f}); e2e over "
              f"arm {args.arms[0]!r} per round {' '.join(f'{v:.3f}' for v in vs)} "
              f"(median {statistics.median(vs):.3f}, above in {wins}/{len(vs)})")  # fmt: skip


if __name__ == "__main__":
    main()
