"""ISP reward throughput: one-pass views scored in batched forward passes against one view a forward pass.

The reward (:func:`isp_env.mos_function.from_scorer`, ``one_pass="center"`` by default) scores a list of
renders — a CMA-ES generation's candidates, the views of one test raw — in forward passes of ``batch_size``
views;
batch size 1 is the one-at-a-time path. Renders: random settings (normalised, neutral + N(0, 0.3), like
CMA-ES candidates) of one raw at the scorer's scale — ``--raw PATH`` or, by default, a DNG unprocessed from
a bundled photo (scikit-image's astronaut, 3000x2000), so it runs without ../shared. Every side is measured
in this run, in turns (rounds), each round's rate divided by the one-at-a-time rate of the same round; the
median of those ratios and the best rate of each side are printed. Scores must equal the one-at-a-time
ones (max |difference| printed; the benchmark fails above 1e-4). The rule that picks the CPU default from
these numbers: benchmarks/isp_reward_batch_rule.txt.

    python benchmarks/isp_reward_batch.py [--model attiqa-default] [--raw PATH] [--sizes 12,48]
        [--batches 2,4,8,16] [--rounds 5] [--threads 1] [--one-pass center|whole] [--device cpu]
        [--cma-budget 150]  (also a per-image CMA-ES search both ways: the same setting? how long?)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved  # noqa: E402

from attiqa.cli import run_app  # noqa: E402
from isp_env.baselines import cma_search, guarded_objective  # noqa: E402
from isp_env.dng import dng_from_photo  # noqa: E402
from isp_env.mos_function import from_scorer  # noqa: E402
from isp_env.params import from_normalized, neutral, to_normalized  # noqa: E402
from isp_env.raw import read_raw  # noqa: E402
from isp_env.reward import develop_view, finish_view, guarded_item  # noqa: E402


def rate(mos, imgs: list[np.ndarray], single: bool):
    """Renders/s of scoring ``imgs``: ``single``, one call per render (the one-at-a-time path: how the tuner
    scored a CMA-ES generation before session 27), else the whole list in one call."""

    def run() -> float:
        t = time.perf_counter()
        if single:
            [mos.one(im) for im in imgs]
        else:
            mos(imgs)
        return len(imgs) / (time.perf_counter() - t)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="reward model (default: the bundled default model)")
    ap.add_argument("--raw", type=Path, default=None, help="a raw file (default: a DNG of a bundled photo)")
    ap.add_argument("--sizes", default="12,48", help="renders per list (12: one CMA-ES generation)")
    ap.add_argument("--batches", default="2,4,8,16", help="views per forward pass to compare with 1")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the ISP tuner uses 1)")
    ap.add_argument("--one-pass", default="center", choices=("center", "whole"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cma-budget", type=int, default=0, help="also run a per-image CMA-ES both ways")
    args = ap.parse_args()
    import torch

    import attiqa

    torch.set_num_threads(args.threads)
    scorer = attiqa.load_scorer(args.model, device=args.device)
    batches = [int(b) for b in args.batches.split(",")]
    mos = {b: from_scorer(scorer, args.one_pass, batch_size=b) for b in [1, *batches]}
    view = mos[1].view_shorter or 384
    path = args.raw
    if path is None:
        photo = np.asarray(Image.fromarray(data.astronaut()).resize((3000, 2000), Image.BICUBIC))
        path = dng_from_photo(Path(tempfile.mkdtemp()) / "bench_reward.dng", photo, "RGGB")
    dev = develop_view(read_raw(path), view)
    rng = np.random.default_rng(0)
    x0 = to_normalized(neutral())
    print(
        f"raw: {path.name}, view shorter side {view}, reward {scorer.info.name} ({args.one_pass}), "
        f"torch threads {torch.get_num_threads()}, device {args.device}, {args.rounds} rounds"
    )
    worst = diff_default = 0.0
    default = from_scorer(scorer, args.one_pass)  # the default batch size (VIEW_BATCH_CPU on the CPU)
    for n in (int(s) for s in args.sizes.split(",")):
        imgs = [
            finish_view(dev, from_normalized(np.clip(x0 + 0.3 * rng.standard_normal(len(x0)), -1, 1)), view)
            for _ in range(n)
        ]
        ref = np.array([mos[1].one(im) for im in imgs])
        diff = {b: float(np.abs(mos[b](imgs) - ref).max()) for b in batches}
        worst = max(worst, *diff.values())
        diff_default = max(diff_default, float(np.abs(default(imgs) - ref).max()))

        best, ratio = interleaved(args.rounds, **{f"b{b}": rate(mos[b], imgs, b == 1) for b in [1, *batches]})
        print(f"{n} renders ({imgs[0].shape[1]}x{imgs[0].shape[0]}):")
        for b in [1, *batches]:
            extra = (
                ""
                if b == 1
                else f"   ratio over one at a time {ratio[f'b{b}']:.2f} (median of rounds), "
                f"max |score difference| {diff[b]:.1e}"
            )
            print(f"  batch {b:2d}: best {best[f'b{b}']:6.2f} renders/s{extra}")
    print(f"max |batched - one at a time| score: {worst:.2e} (a batch size is out at 1e-4 and above)")
    if args.cma_budget:  # a whole per-image search, one render a pass against the default (same result?)
        item = guarded_item(path, view)
        objective = guarded_objective([item], mos[1])
        t = time.perf_counter()
        ref = cma_search(lambda x: objective(x), args.cma_budget, 1, seed=0)  # one call per candidate
        t_one = time.perf_counter() - t
        t = time.perf_counter()
        res = cma_search(guarded_objective([item], default), args.cma_budget, 1, seed=0)  # generations
        t_many = time.perf_counter() - t
        dp = max(abs(ref.params[k] - res.params[k]) for k in ref.params)
        print(
            f"per-image CMA-ES, {ref.calls} scorer calls: best guarded score {ref.mos:.5f} one at a time, "
            f"{res.mos:.5f} by generations (max parameter difference {dp:.1e}); {t_one:.1f} s vs "
            f"{t_many:.1f} s, rendering included (ratio {t_one / t_many:.2f})"
        )
    if diff_default >= 1e-4:
        raise SystemExit(
            f"the default batch size's scores differ from one-at-a-time scores by {diff_default:.1e}"
        )


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
