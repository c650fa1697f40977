"""Prompt selection on cached embeddings (both proxy tasks, every pair of every attribute) against one
matrix product of the same size, both measured in this run.

The selection scores all 50 x 50 pairs of each attribute by array operations (ATTIQA §3.3; the issue's
target: 200 images x 5 attributes well under a second). The baseline is the single product
(images x D) @ (D x pairs) that computing one score per image and pair would need at the least.

    python benchmarks/prompt_selection.py [--images 200] [--dim 512] [--adjectives 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from attiqa.attributes import ATTRIBUTES
from attiqa.cli import run_app
from attiqa.distortions import NUM_LEVELS
from attiqa.prompts import load_proxy_distortions, make_prompt, select_from_embeddings
from attiqa.prompts.candidates import AttributeCandidates
from attiqa.prompts.selection import RatedImages


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200, help="photos (task 1) and rated images (task 2)")
    ap.add_argument("--dim", type=int, default=512, help="embedding width (ViT-B/16: 512)")
    ap.add_argument(
        "--adjectives", type=int, default=50, help="positive and negative adjectives per attribute"
    )
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, d, k = args.images, args.dim, args.adjectives

    cands = {
        a: AttributeCandidates(a, tuple(f"{a}_p{i}" for i in range(k)), tuple(f"{a}_n{i}" for i in range(k)))
        for a in ATTRIBUTES
    }
    texts = [t for c in cands.values() for pol in ("positive", "negative") for t in c.prompts(pol)]
    text_emb = dict(zip(texts, _unit(rng.normal(size=(len(texts), d))), strict=True))
    proxies = load_proxy_distortions()
    dists = sorted({x for v in proxies.values() for x in v})
    series = {x: _unit(rng.normal(size=(n, NUM_LEVELS + 1, d))) for x in dists}
    rated = RatedImages(_unit(rng.normal(size=(n, d))), {a: rng.normal(size=n) for a in ATTRIBUTES})

    def best(fn) -> float:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    sel_t = best(lambda: select_from_embeddings(cands, text_emb, series, proxies, rated))
    pairs = len(ATTRIBUTES) * k * k
    img = _unit(rng.normal(size=(n, d)))
    weights = _unit(rng.normal(size=(pairs, d))).T.copy()
    mm_t = best(lambda: img @ weights)
    n_series = sum(len(v) for v in proxies.values())
    print(
        f"prompt selection: {len(ATTRIBUTES)} attributes x {k}x{k} pairs, task 1 on {n} photos x "
        f"{n_series} distortion series x {NUM_LEVELS + 1} levels, task 2 on {n} rated images, D={d}"
    )
    print(
        f"  selection on cached embeddings: {sel_t * 1000:8.1f} ms   (example name: {make_prompt('crisp')!r})"
    )
    print(f"  one matmul ({n}x{d}) @ ({d}x{pairs}): {mm_t * 1000:8.1f} ms")
    print(f"  ratio selection / matmul: {sel_t / mm_t:.1f}x   (target: selection well under 1 s)")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
