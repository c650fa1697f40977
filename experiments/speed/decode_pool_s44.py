"""What a thread pool per ``iter_image_batches`` call costs, next to the call itself (session 44).

    PYTHONPATH=. python experiments/speed/decode_pool_s44.py --images ../shared/data/clive-dev/images

With no decode worker (``inference_num_workers``: torch's threads take every core) each call decodes its
batches on a ``ThreadPoolExecutor`` made for the call. Per round: the best of 50 pool lifecycles (made, its
threads started by one task each, joined) over the best of 3 calls that decode (only) N real photos with
the default model's transform, and over one ``score_paths`` call of the same photos (decode and model).
Prints the median and every round of both ratios: the saving a pool kept per process could bring.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    import torch

    from attiqa.allocator import tune_allocator
    from attiqa.io.batching import iter_image_batches
    from attiqa.scorers import load_scorer
    from attiqa.scoring import score_paths

    tune_allocator()
    scorer = load_scorer("attiqa-default")
    photos = sorted(args.images.iterdir())[:8]
    threads = torch.get_num_threads()

    def decode(n: int) -> float:
        t = time.perf_counter()
        for _ in iter_image_batches(photos[:n], scorer.transform, 8, 0, min_shorter=scorer.info.min_shorter):
            pass
        return time.perf_counter() - t

    def pool() -> float:
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as p:
            list(p.map(abs, range(threads)))
        return time.perf_counter() - t

    def score(n: int) -> float:
        t = time.perf_counter()
        score_paths(photos[:n], scorer, 8, num_workers=0)
        return time.perf_counter() - t

    decode(8), pool(), score(8)  # warm-up
    for n in (2, 8):
        by_decode, by_score = [], []
        for _ in range(args.rounds):
            p = min(pool() for _ in range(50))
            by_decode.append(p / min(decode(n) for _ in range(3)))
            by_score.append(p / score(n))
        for what, ratios in (("decoding", by_decode), ("score_paths", by_score)):
            print(
                f"{threads} threads, {n} photos: pool / {what} call = median {statistics.median(ratios):.5f} "
                f"(rounds {', '.join(f'{r:.5f}' for r in ratios)})"
            )


if __name__ == "__main__":
    main()
