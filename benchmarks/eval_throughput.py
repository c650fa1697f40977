"""`attiqa eval` end to end (checks, decode, transform, model, metrics, outputs) against the bare backbone.

Both are measured in this run on the same images, so the printed ratio is meaningful on a noisy machine.
Target (issue 15 §1, as for `attiqa score`): ratio >= 0.8. The baseline is the model's bare backbone forward
pass on the very same, already decoded and transformed tensors; everything eval adds (image checks, decode,
transform, the heads and ridge statistics, the score cache off, metrics, CSV/JSON/PNG outputs) is priced.

    python benchmarks/eval_throughput.py                       # 48 generated 512-px JPEGs, default model
    python benchmarks/eval_throughput.py --root /data/agiqa3k-dev --n 96   # real AGIQA-3k images (512 px)
    python benchmarks/eval_throughput.py --model classical --crops center
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
from attiqa.datasets import get_dataset  # noqa: E402
from attiqa.evaluation.evaluate import evaluate  # noqa: E402
from attiqa.io.batching import inference_num_workers  # noqa: E402
from attiqa.io.images import load_image  # noqa: E402
from attiqa.scorers import is_attiqa_model, load_scorer  # noqa: E402
from attiqa.scoring import score_paths  # noqa: E402


def dataset(args: argparse.Namespace):
    """The first ``--n`` images of AGIQA-3k (``--root``) or of generated 512-px JPEGs, as a folder dataset."""
    if args.root:
        full = get_dataset("agiqa3k", args.root)
        items = full.items[: args.n]
    else:
        folder = photo_folder(args.n, size=512)
        items = None
    csv_dir = Path(tempfile.mkdtemp(prefix="attiqa-evalbench-"))
    rows = (
        [(it.image, it.mos) for it in items]
        if items is not None
        else [(p, float(i % 7)) for i, p in enumerate(sorted(folder.glob("*.jpg")))]
    )
    (csv_dir / "mos.csv").write_text("image,mos\n" + "".join(f"{p},{m}\n" for p, m in rows))
    return get_dataset("folder", csv_dir, csv=csv_dir / "mos.csv"), [Path(p) for p, _ in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=48, help="number of images")
    ap.add_argument("--root", help="an AGIQA-3k folder (data.csv + images); default: generated photos")
    ap.add_argument("--model", default=None, help="named model, checkpoint or scorer (default: the default)")
    ap.add_argument("--crops", default="five", choices=["five", "center"])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, help="decode worker processes (default: attiqa eval's own)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the three measurements")
    args = ap.parse_args()

    ds, paths = dataset(args)
    scorer = load_scorer(args.model, **({"crops": args.crops} if is_attiqa_model(args.model) else {}))
    out = Path(tempfile.mkdtemp(prefix="attiqa-evalbench-out-"))
    workers = inference_num_workers(scorer.device, args.workers)

    def run_eval() -> float:
        t0 = time.perf_counter()
        evaluate(ds, scorer, out, batch_size=args.batch_size, num_workers=workers, cache=False,
                 progress=False)  # fmt: skip
        return len(paths) / (time.perf_counter() - t0)

    score_paths(paths[: args.batch_size], scorer, args.batch_size, num_workers=0)  # warm-up (allocations)

    model = getattr(scorer, "model", None)
    net = getattr(model, "backbone", None)
    if net is None:  # not an ATTIQA model: the whole score_tensors call is the baseline
        net = scorer.score_tensors
    tensors = [scorer.transform(load_image(p, min_shorter=scorer.info.min_shorter)) for p in paths]
    bs = min(args.batch_size, scorer.info.max_batch or args.batch_size)
    batches = [torch.stack(tensors[i : i + bs]) for i in range(0, len(tensors), bs)]

    def whole_model() -> float:
        with torch.inference_mode():
            t0 = time.perf_counter()
            for b in batches:
                scorer.score_tensors(b)
            return len(paths) / (time.perf_counter() - t0)

    def bare_forward() -> float:
        return forward_rate(net, batches)

    best, ratio = interleaved(args.rounds, bare=bare_forward, e2e=run_eval, full=whole_model)
    e2e, bare, full = best["e2e"], best["bare"], best["full"]

    print(
        f"images: {len(paths)} ({'AGIQA-3k ' + args.root if args.root else 'generated 512-px JPEGs'}), "
        f"scorer {scorer.info.name}, crops {args.crops}, decode workers {workers}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"attiqa eval end to end  : {e2e:8.2f} images/s")
    print(f"bare backbone forward   : {bare:8.2f} images/s")
    print(f"whole model forward     : {full:8.2f} images/s (heads, ridge statistics, crops averaged)")
    print(f"ratio (target >= 0.8)   : {e2e / bare:8.3f} (best of {args.rounds} alternating rounds each)")
    print(f"median per-round ratio  : {ratio['e2e']:8.3f}")
    print(f"eval / whole model      : {e2e / full:8.3f} (what eval's own work costs)")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
