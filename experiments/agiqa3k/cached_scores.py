"""Score a dataset with a checkpoint from the shared feature cache instead of the images (ours; a CPU budget).

On this 2-core machine, shared by six jobs, one five-crop pass over 1,491 AGIQA-3k images takes most of an
hour; the features of exactly those crops are cached once for training. A checkpoint whose backbone is the
frozen fp32 ImageNet Lite0 (every model trained here, and `attiqa-default` with its backbone restored to
fp32 by ``default_init.py``) scores from that cache with the same arithmetic as `attiqa score`: five crops,
MLP + ridge head, the mean over the crops. ``--check N`` rescores N images from their files with a real
scorer (``--check-model``, e.g. the shipped fp16 named model) and prints the largest difference, so the
shortcut is measured, not assumed.

Writes ``--out`` (image, prediction, targets) and prints SROCC / PLCC / KRCC / RMSE per target; with
``--run`` also writes the scores as metric ``--metric`` of a genbench run (the format `genbench score`
writes), so `genbench agree` reports it.

    python experiments/agiqa3k/cached_scores.py runs/agiqa3k/attiqa-default-fp32.safetensors \
        --agiqa3k ../shared/data/agiqa3k-dev --check 12 --check-model attiqa-default \
        --out runs/agiqa3k/default_on_agiqa3k.csv --run runs/agiqa3k/pairs --metric attiqa-default
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np
import torch

from attiqa.datasets import get_dataset
from attiqa.evaluation.metrics import correlations
from attiqa.io.atomic import write_text_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crossfit import check_against_scorer, fold_scores, write_metric  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--agiqa3k", type=Path, help="AGIQA-3k folder (both targets)")
    src.add_argument("--folder-csv", type=Path, help="a folder dataset's CSV (image,mos), e.g. clive-dev")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--check", type=int, default=0)
    ap.add_argument("--check-model", default=None, help="scorer for --check (default: the checkpoint)")
    ap.add_argument("--run", type=Path)
    ap.add_argument("--metric", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.agiqa3k:
        ds = get_dataset("agiqa3k", a.agiqa3k)
        targets = {"mos_quality": [it.mos for it in ds.items],
                   "mos_align": [it.extras.get("mos_align", np.nan) for it in ds.items]}  # fmt: skip
    else:
        ds = get_dataset("folder", a.folder_csv.parent, csv=a.folder_csv)
        targets = {"mos": [it.mos for it in ds.items]}
    images = [Path(it.image) for it in ds.items]
    csv_path = a.out.with_suffix(".input.csv")
    write_text_atomic(
        csv_path,
        "image,mos\n"
        + "".join(f"{p},{t!r}\n" for p, t in zip(images, next(iter(targets.values())), strict=True)),
    )
    pred = fold_scores(a.checkpoint, csv_path, list(range(len(images))))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["image", "prediction", *targets])
    for i, p in enumerate(images):
        w.writerow([p, f"{pred[i]:.6g}", *(targets[t][i] for t in targets)])
    write_text_atomic(a.out, buf.getvalue())
    for t, vals in targets.items():
        m = correlations(pred, np.array(vals, dtype=float))
        print(f"{a.checkpoint.name} on {len(images)} images, target {t}: SROCC {m['srocc']:.4f} "
              f"PLCC {m['plcc']:.4f} KRCC {m['krcc']:.4f} RMSE {m['rmse']:.4f}")  # fmt: skip
    if a.check:
        step = max(1, len(images) // a.check)
        idx = list(range(0, len(images), step))[: a.check]
        model = a.check_model or str(a.checkpoint)
        diff = check_against_scorer(model, [images[i] for i in idx], pred[idx])
        print(f"check: {len(idx)} images rescored from their files by {model}: max |diff| {diff:.2e}")
    if a.run:
        rows = [{"image": str(p), "mos": float(v)} for p, v in zip(images, pred, strict=True)]
        write_metric(a.run, rows, 0, str(a.checkpoint), a.metric or a.checkpoint.stem)
        print(f"{a.run}/scores/{a.metric or a.checkpoint.stem}.csv written")


if __name__ == "__main__":
    main()
