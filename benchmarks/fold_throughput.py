"""Scoring with BatchNorm folded into the convolutions vs the checkpoint's layers, in the same run.

Two scorers of the same checkpoint: ``AttiqaScorer(fold=True)`` (what ``attiqa score`` uses) and
``fold=False``. Each measurement alternates between them round by round (``_common.interleaved``), so both
sides of a ratio see the same machine load. Printed: the model forward pass on already transformed crops
(``Scorer.score_tensors``: backbone, tap statistics, heads) and ``attiqa score`` end to end (decode,
transform, model), as folded / unfolded throughput ratios (> 1: folding is faster), and the largest score
difference between the two on the same crops.

    python benchmarks/fold_throughput.py [--n 24] [--model attiqa-default] [--crops five] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, photo_folder  # noqa: E402

from attiqa.cli import run_app  # noqa: E402
from attiqa.io.images import discover_images, load_image  # noqa: E402
from attiqa.scorers.attiqa_scorer import AttiqaScorer  # noqa: E402
from attiqa.scorers.zoo import resolve_weights  # noqa: E402
from attiqa.scoring import score_paths  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=24, help="number of images")
    ap.add_argument("--model", default="attiqa-default", help="named model or checkpoint")
    ap.add_argument("--crops", default="five", choices=["five", "center"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of each measurement")
    args = ap.parse_args()

    paths = discover_images([photo_folder(args.n)])
    ckpt = resolve_weights(args.model) if not Path(args.model).exists() else Path(args.model)
    scorers = {
        name: AttiqaScorer(ckpt, crops=args.crops, fold=name == "folded") for name in ("unfolded", "folded")
    }
    tensors = [scorers["folded"].transform(load_image(p)) for p in paths]
    batches = [torch.stack(tensors[i : i + args.batch_size]) for i in range(0, len(tensors), args.batch_size)]

    def forward(scorer: AttiqaScorer) -> float:
        t0 = time.perf_counter()
        for b in batches:
            scorer.score_tensors(b)
        return len(paths) / (time.perf_counter() - t0)

    def end_to_end(scorer: AttiqaScorer) -> float:
        t0 = time.perf_counter()
        run = score_paths(paths, scorer, args.batch_size, num_workers=1)
        return len(run.rows) / (time.perf_counter() - t0)

    outs = {}
    for name, scorer in scorers.items():  # warm-up (allocations, thread pools), and the scores compared
        outs[name] = torch.cat([scorer.score_tensors(b) for b in batches])
    diff = (outs["folded"] - outs["unfolded"]).abs().max(dim=0).values
    fwd_best, fwd_ratio = interleaved(
        args.rounds, **{k: (lambda s=s: forward(s)) for k, s in scorers.items()}
    )
    e2e_best, e2e_ratio = interleaved(
        args.rounds, **{k: (lambda s=s: end_to_end(s)) for k, s in scorers.items()}
    )

    print(
        f"images: {len(paths)} ({args.crops} crop(s) each), model {scorers['folded'].info.name}, "
        f"backbone {scorers['folded'].model.backbone.name}, torch threads {torch.get_num_threads()}"
    )
    print(f"largest |folded - unfolded|: MOS {diff[0]:.2e}, attributes {diff[1:].max():.2e}")
    for what, best, ratio in (
        ("model forward", fwd_best, fwd_ratio),
        ("score end to end", e2e_best, e2e_ratio),
    ):
        print(
            f"{what:17s}: unfolded {best['unfolded']:7.2f} images/s, folded {best['folded']:7.2f} images/s | "
            f"ratio folded/unfolded: best-of {best['folded'] / best['unfolded']:.3f}, "
            f"median per round {ratio['folded']:.3f} ({args.rounds} alternating rounds)"
        )


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
