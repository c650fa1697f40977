"""Probe (session 41): decode in a prefetch thread of the main process instead of the kept decode worker.

The idea: a thread shares the process's memory, so the batch needs no fresh shared-memory pages, no pickling
and no copy into the main process (session 39 put ~3.5 ms of the worker's ~10 ms per photo there). PIL's
decode and resize release the GIL. The cost: a crash in a decoder takes the scorer down with it (a worker
process isolates that), and the thread's torch ops open a second OpenMP team beside the forward's.

    python experiments/speed/thread_decode_probe_s41.py [--rounds 4]

Prints per round the bare backbone's forward, ``score_paths(num_workers=1)`` (the kept worker, as shipped) and
the thread-prefetched loop on the same 48 generated photos, and each one's ratio to the bare forward (best of
rounds and median per round), as ``benchmarks/score_throughput.py --model attiqa-default`` does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import forward_rate, photo_folder  # noqa: E402

from attiqa.io.batching import batch_plan, stack_batch  # noqa: E402
from attiqa.io.images import discover_images, load_image  # noqa: E402
from attiqa.scorers.attiqa_scorer import AttiqaScorer  # noqa: E402
from attiqa.scorers.zoo import resolve_weights  # noqa: E402
from attiqa.scoring import score_paths  # noqa: E402

BATCH = 8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    paths = discover_images([photo_folder(48)])
    scorer = AttiqaScorer(resolve_weights("attiqa-default"), crops="five")

    def decode(batch: list[int]) -> torch.Tensor:
        return stack_batch([scorer.transform(load_image(paths[i], min_shorter=340)) for i in batch])

    def threaded() -> float:
        t0 = time.perf_counter()
        plan = batch_plan(len(paths), BATCH, first=1)
        with ThreadPoolExecutor(1) as pool:
            futures: list[Future[torch.Tensor]] = [pool.submit(decode, b) for b in plan[:3]]
            for j in range(len(plan)):
                x = futures[j].result()
                if j + 3 < len(plan):
                    futures.append(pool.submit(decode, plan[j + 3]))
                scorer.score_tensors(x)
        return len(paths) / (time.perf_counter() - t0)

    def worker() -> float:
        t0 = time.perf_counter()
        run = score_paths(paths, scorer, BATCH, num_workers=1)
        return len(run.rows) / (time.perf_counter() - t0)

    worker()
    threaded()
    tensors = [scorer.transform(load_image(p)) for p in paths]
    batches = [torch.stack(tensors[i : i + BATCH]) for i in range(0, len(tensors), BATCH)]
    net = scorer.model.backbone.eval()
    rates: dict[str, list[float]] = {"bare": [], "worker": [], "thread": []}
    for r in range(args.rounds):
        rates["bare"].append(forward_rate(net, batches))
        rates["worker"].append(worker())
        rates["thread"].append(threaded())
        print(r, {k: round(v[-1], 2) for k, v in rates.items()}, flush=True)
    for k in ("worker", "thread"):
        best = max(rates[k]) / max(rates["bare"])
        med = statistics.median(a / b for a, b in zip(rates[k], rates["bare"], strict=True))
        print(f"{k}: best ratio {best:.3f}, median per-round ratio {med:.3f}")


if __name__ == "__main__":
    main()
