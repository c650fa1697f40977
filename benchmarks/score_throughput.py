"""`attiqa score` end to end (decode + transform + model) against the bare model forward pass.

Both are measured in this run on the same images, so the printed ratio is meaningful on a noisy
machine. Target (issue: core): ratio >= 0.8 on a 2-core CPU.

    python benchmarks/score_throughput.py [--n 48] [--backbone efficientnet_lite0] [--crops five]
    python benchmarks/score_throughput.py --model attiqa-default   # the shipped model (its ridge head too)

``--model`` scores with a named model or checkpoint instead of random heads on ``--backbone``; the
baseline is still its bare backbone forward pass (``Backbone.forward``: the heads' features only), so
the ratio also prices everything the model adds on top, e.g. the ridge head's extra tap statistics.

Both sides use the scorer's network: with BatchNorm folded into the convolutions (the scorer's default,
``attiqa.models.fold``) the bare backbone is the folded one too; ``--no-fold`` measures both unfolded.
``benchmarks/fold_throughput.py`` prices the folding itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import forward_rate, interleaved, photo_folder  # noqa: E402

from attiqa.cli import run_app  # noqa: E402
from attiqa.io.batching import inference_num_workers  # noqa: E402
from attiqa.io.images import discover_images, load_image  # noqa: E402
from attiqa.models import AttiqaModel, create_backbone, save_model  # noqa: E402
from attiqa.models.backbones import stats_path  # noqa: E402
from attiqa.scorers.attiqa_scorer import AttiqaScorer  # noqa: E402
from attiqa.scorers.zoo import resolve_weights  # noqa: E402
from attiqa.scoring import score_paths  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=48, help="number of images")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--crops", default="five", choices=["five", "center"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--model", help="named model or checkpoint (default: random heads on --backbone)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of both measurements")
    ap.add_argument("--workers", type=int, help="decode worker processes (default: attiqa score's own)")
    ap.add_argument(
        "--fold", action=argparse.BooleanOptionalAction, default=True, help="BatchNorm folded (both sides)"
    )
    args = ap.parse_args()

    folder = photo_folder(args.n)
    paths = discover_images([folder])
    if args.model:
        ckpt = resolve_weights(args.model) if not Path(args.model).exists() else Path(args.model)
    else:
        model = AttiqaModel(create_backbone(args.backbone, pretrained=False), mos_hidden=512)
        ckpt = save_model(model, Path(tempfile.mkdtemp()) / "bench.safetensors", card={"name": "bench"})
    scorer = AttiqaScorer(ckpt, crops=args.crops, fold=args.fold)

    # warm-up (allocations, thread pools)
    workers = inference_num_workers(scorer.device, args.workers)
    score_paths(paths[: args.batch_size], scorer, args.batch_size, num_workers=workers)

    def end_to_end() -> float:
        t0 = time.perf_counter()
        run = score_paths(paths, scorer, args.batch_size, num_workers=workers)
        return len(run.rows) / (time.perf_counter() - t0)

    # baseline: the bare forward pass on the very same (already decoded and transformed) tensors
    tensors = [scorer.transform(load_image(p)) for p in paths]
    batches = [torch.stack(tensors[i : i + args.batch_size]) for i in range(0, len(tensors), args.batch_size)]
    net = scorer.model.backbone.eval()
    best, ratio = interleaved(args.rounds, bare=lambda: forward_rate(net, batches), e2e=end_to_end)
    e2e, bare = best["e2e"], best["bare"]

    print(
        f"images: {len(paths)} ({args.crops} crop(s) each), backbone {net.name}, "
        f"ridge head {scorer.model.ridge is not None}, BatchNorm folded {args.fold} (both sides), "
        f"torch threads {torch.get_num_threads()}, decode workers {workers}"
    )
    if scorer.model.ridge is not None:  # its tap statistics: the optional native kernel, or the torch path
        print(f"tap statistics          : {stats_path()}")
    print(f"attiqa score end to end : {e2e:8.2f} images/s")
    print(f"bare backbone forward   : {bare:8.2f} images/s")
    print(f"ratio (target >= 0.8)   : {e2e / bare:8.3f} (best of {args.rounds} alternating rounds each)")
    print(f"median per-round ratio  : {ratio['e2e']:8.3f}")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
