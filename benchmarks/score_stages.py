"""Where `attiqa score`'s time goes, stage by stage, in milliseconds per photo (all in one process).

    OMP_NUM_THREADS=1 python benchmarks/score_stages.py --root ../shared/data/clive-dev --n 24

Stages: decode (``load_image``), the scorer's transform (resize, five crops, normalisation), batch stacking
(the decode worker's collate), the backbone forward with the heads' and the ridge head's tap statistics, the
same forward with the heads' statistics only (the bare backbone, what `benchmarks/score_throughput.py`
compares with; the difference is the ridge head's extra statistics), the heads, and writing the CSV. Best of
``--rounds`` rounds per stage. Without ``--root``: the generated photos of the other benchmarks.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import first_photos  # noqa: E402

from attiqa.cli import run_app  # noqa: E402
from attiqa.io.batching import stack_batch  # noqa: E402
from attiqa.io.images import load_image  # noqa: E402
from attiqa.scorers.attiqa_scorer import AttiqaScorer  # noqa: E402
from attiqa.scorers.zoo import resolve_weights  # noqa: E402
from attiqa.scoring import ScoreWriter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", help="a folder of photos (e.g. clive-dev); default: generated 512-px JPEGs")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--model", default="attiqa-default")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    paths = first_photos(args.root, args.n)
    ckpt = resolve_weights(args.model) if not Path(args.model).exists() else Path(args.model)
    sc = AttiqaScorer(ckpt)
    model, bs = sc.model, args.batch_size
    if model.ridge is None:
        raise SystemExit(f"{args.model}: no ridge head, so no extra tap statistics to price")

    def one_round() -> dict[str, float]:
        t: dict[str, float] = defaultdict(float)

        def lap(name: str, since: float) -> float:
            now = time.perf_counter()
            t[name] += now - since
            return now

        tensors = []
        for p in paths:
            t0 = time.perf_counter()
            img = load_image(p, min_shorter=sc.info.min_shorter)
            t0 = lap("decode", t0)
            tensors.append(sc.transform(img))
            lap("resize + five crops + normalisation", t0)
        t0 = time.perf_counter()
        batches = [stack_batch(tensors[i : i + bs]) for i in range(0, len(tensors), bs)]
        lap("batch stacking", t0)
        rows = []
        with torch.inference_mode():
            for b in batches:
                x = b.flatten(0, 1)
                t0 = time.perf_counter()
                feats, stats = model.backbone.forward_with_taps(x, model.ridge.taps)
                t0 = lap("backbone forward, both tap sets", t0)
                model.backbone(x)
                t0 = lap("[bare backbone forward, heads' taps only]", t0)
                out = model.forward_features(feats, stats)
                mos = model.mos_to_dataset_scale(out.mos).reshape(-1, 1)
                res = torch.cat([mos, model.attribute_scores(out.attributes)], 1)
                rows.append(res.view(b.shape[0], b.shape[1], -1).mean(1).numpy())
                lap("heads, calibration, crop mean", t0)
        t0 = time.perf_counter()
        writer = ScoreWriter(Path(tempfile.mkdtemp()) / "scores.csv", sc.columns)
        for i, res in enumerate(rows):
            names = paths[i * bs : (i + 1) * bs]
            writer.add(
                [
                    {"image": str(p), **dict(zip(sc.columns, map(float, r), strict=True))}
                    for p, r in zip(names, res, strict=True)
                ]
            )
        writer.close()
        lap("CSV writing", t0)
        return t

    one_round()  # warm-up
    rounds = [one_round() for _ in range(args.rounds)]
    best = {k: min(r[k] for r in rounds) * 1000 / len(paths) for k in rounds[0]}
    print(
        f"{len(paths)} photos, five crops, batch {bs}, {sc.info.name}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"ms per photo, best of {args.rounds} rounds:")
    for k, v in best.items():
        print(f"  {k:45s} {v:7.1f}")
    extra = best["backbone forward, both tap sets"] - best["[bare backbone forward, heads' taps only]"]
    print(f"  {'(the ridge head extra statistics: difference)':45s} {extra:7.1f}")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
