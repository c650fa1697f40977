"""The tap statistics alone: the native kernel against the torch path, on the maps a shipped model's ridge
taps produce on real photos (all in one process, alternating rounds; ratios, since the host is shared).

    python benchmarks/tap_stats.py --model attiqa-default --threads 1 2
    python benchmarks/tap_stats.py --model attiqa-agiqa3k --root ../shared/data/agiqa3k-dev

The maps of ``--photos`` photos' five crops (one scorer pass) are captured by forward hooks, then
``spatial_mean_std`` runs over all of them with ``ATTIQA_NATIVE=0`` (torch) and ``1`` (native) in turn, for
``--rounds`` rounds at each thread count. Prints ms per photo (median of rounds), torch/native time ratio per
round, and both paths' worst errors against float64 (``torch.std_mean``; ``tap_maps.py``). Session 35
(experiments/speed/).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import first_photos  # noqa: E402
from tap_maps import Stats, capture_tap_maps, stat_errors  # noqa: E402

from attiqa.cli import run_app  # noqa: E402
from attiqa.models.backbones import native_kernel, spatial_mean_std  # noqa: E402
from attiqa.scorers.attiqa_scorer import AttiqaScorer  # noqa: E402
from attiqa.scorers.zoo import resolve_weights  # noqa: E402


def run(maps: list[torch.Tensor], native: bool) -> float:
    os.environ["ATTIQA_NATIVE"] = "1" if native else "0"
    t = time.perf_counter()
    with torch.inference_mode():
        for y in maps:
            spatial_mean_std(y)
    return time.perf_counter() - t


def with_native(native: bool) -> Stats:
    """``spatial_mean_std`` on the native kernel or on torch."""

    def stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        os.environ["ATTIQA_NATIVE"] = "1" if native else "0"
        return spatial_mean_std(y)

    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="attiqa-default")
    ap.add_argument("--root", help="a folder of photos; default: the generated 512-px JPEGs")
    ap.add_argument("--photos", type=int, default=4, help="photos (x5 crops) whose maps are reduced")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    kernel = native_kernel()
    if kernel is None:
        raise SystemExit("the native kernel is not built (or ATTIQA_NATIVE=0): run `make native`")
    photos = first_photos(args.root, args.photos)
    sc = AttiqaScorer(resolve_weights(args.model))
    maps = capture_tap_maps(sc, photos, chunk=5 * len(photos), ridge_only=True)  # one scorer pass
    elems = sum(y.numel() for y in maps)
    print(f"{args.model}: {len(maps)} maps of {len(photos)} photos' crops, {elems / 1e6:.1f} M elements; "
          f"kernel {kernel.variant()}; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for name, native in (("torch", False), ("native", True)):
        em, es, ez = stat_errors(maps, with_native(native))
        print(f"  {name:6s} worst error vs float64: mean {em:.1e}, std {es:.1e}, std where 0 {ez:.1e}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        run(maps, False), run(maps, True)  # warm-up
        old, new = [], []
        for _ in range(args.rounds):
            old.append(run(maps, False))
            new.append(run(maps, True))
        per = 1e3 / len(photos)
        ratios = [o / n for o, n in zip(old, new, strict=True)]
        print(f"  {threads} thread(s): torch {statistics.median(old) * per:.1f} ms/photo, native "
              f"{statistics.median(new) * per:.1f}; torch/native per round "
              f"{' '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f}); "
              f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    os.environ.pop("ATTIQA_NATIVE")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
