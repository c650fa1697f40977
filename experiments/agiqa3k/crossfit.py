"""Prompt-grouped cross-fitting (ours): score every AGIQA-3k image with a model that never saw its prompt.

The prompts are dealt into ``--folds`` folds (sorted, then permuted with ``--seed``). For each fold, the
recipe (``--config``, its ``finetune:`` section, exactly what `attiqa train` runs) is trained on the images
of the other folds' prompts — the held-out fold is the run's validation split, and the LAST epoch is kept,
so nothing is selected on it — and scores the fold's images. Every image thus gets an out-of-prompt
score: what a user with new prompts would see.

Outputs in ``--out``: ``fold<k>/`` (each fold's run, its checkpoint kept), ``crossfit.csv`` (image, mos,
fold, human MOS of both targets) and ``crossfit.json`` (per-fold and pooled SROCC/PLCC). With ``--run``
(a `genbench import-agiqa3k` folder) the scores are also written as the metric ``attiqa-agiqa3k-crossfit``
of that run (``scores/attiqa-agiqa3k-crossfit.csv`` + ``.json``, the format `genbench score` writes), so
`genbench agree RUN` reports it next to the other metrics.

Scores come from the cached features of the five test crops (``predict_cached``: the same five crops, the
same arithmetic as `attiqa score` with the checkpoint; ``--check N`` rescored N images from their files
with the real scorer to confirm it).

    python experiments/agiqa3k/crossfit.py ../shared/data/agiqa3k-dev \
        --config configs/agiqa3k_model.yaml --out runs/agiqa3k/crossfit --run runs/agiqa3k/pairs
"""

from __future__ import annotations

import argparse
import csv
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from attiqa.bench_splits import Split
from attiqa.config import FinetuneConfig, from_dict, read_yaml
from attiqa.datasets import get_dataset
from attiqa.evaluation.metrics import correlations
from attiqa.io.atomic import write_json_atomic, write_text_atomic
from attiqa.models import load_model
from attiqa.protocols import write_split_csv
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features
from attiqa.training.mos import predict_cached
from attiqa.training.sources import five_crop_views

METRIC = "attiqa-agiqa3k-crossfit"


def prompt_folds(prompts: list[str], folds: int, seed: int) -> list[Split]:
    """``folds`` splits whose test parts partition the prompts (every image of a prompt on one side)."""
    uniq = sorted(set(prompts))
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = {uniq[j]: k % folds for k, j in enumerate(order)}
    out = []
    for k in range(folds):
        tr = tuple(i for i, p in enumerate(prompts) if fold_of[p] != k)
        te = tuple(i for i, p in enumerate(prompts) if fold_of[p] == k)
        out.append(Split(f"fold{k}", tr, te, seed, "prompt-fold"))
    return out


def fold_scores(ckpt: Path, csv_path: Path, test: list[int]) -> np.ndarray:
    """MOS (dataset scale) of rows ``test`` of ``csv_path`` by checkpoint ``ckpt``, from cached features."""
    model, _ = load_model(ckpt)
    bb = model.backbone
    tf, view = five_crop_views(bb, model.input_sizes["test_resize_shorter"], model.input_sizes["test_crop"])
    data = MosDataset(csv_path, None, tf, on_error="skip")
    feats, ok = cached_features(bb, data, view, progress=False)
    stats = None
    if model.ridge is not None:
        stats, ok2 = cached_features(bb.tap_view(model.ridge.taps), data, view, progress=False)
        ok = ok & ok2
    rows = torch.tensor(test)
    if not bool(ok[rows].all()):
        raise SystemExit(f"{csv_path}: unreadable images among the held-out fold")
    return model.mos_to_dataset_scale(predict_cached(model, feats, rows, stats)).double().numpy()


def check_against_scorer(model: Path | str, images: list[Path], cached: np.ndarray) -> float:
    """Largest |cached - scorer| over ``images`` scored from their files by the real scorer of ``model`` (a
    checkpoint or a named model)."""
    import attiqa
    from attiqa.scoring import score_paths

    run = score_paths(images, attiqa.load_scorer(str(model)), batch_size=4, num_workers=0)
    got = {r["image"]: r["mos"] for r in run.rows}
    return float(max(abs(got[str(p)] - c) for p, c in zip(images, cached, strict=True)))


def write_metric(run_dir: Path, rows: list[dict], folds: int, config: str, metric: str = METRIC) -> None:
    """The scores as metric ``metric`` of the genbench run ``run_dir`` (what `genbench score` would write)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["image", "mos"])
    for r in rows:
        w.writerow([r["image"], f"{r['mos']:.6g}"])
    write_text_atomic(run_dir / "scores" / f"{metric}.csv", buf.getvalue())
    what = (f"{folds}-fold prompt-grouped cross-fitting of {config}: each image scored by a model trained "
            "without its prompt (experiments/agiqa3k/crossfit.py)") if folds else (
            f"{config} scored from cached features (experiments/agiqa3k/cached_scores.py)")  # fmt: skip
    write_json_atomic(run_dir / "scores" / f"{metric}.json", {
        "metric": metric, "column": "mos", "columns": ["mos"], "higher_is_better": True, "kind": "attiqa",
        "score_range": [0.0, 5.0], "scorer": {"what": what},
    })  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--init", type=Path, help="initial checkpoint, as `attiqa train` would use")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/agiqa3k/crossfit"))
    ap.add_argument("--run", type=Path, help="a `genbench import-agiqa3k` run folder to add the metric to")
    ap.add_argument("--check", type=int, default=0, help="rescore N held-out images with the real scorer")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from attiqa.training.finetune import finetune

    ds = get_dataset("agiqa3k", a.root)
    items = ds.items
    prompts = [it.meta.get("prompt", "") for it in items]
    data = read_yaml(a.config)
    cfg = from_dict(FinetuneConfig, data.get("finetune", data), str(a.config))
    rows: list[dict] = []
    per_fold = []
    for sp in prompt_folds(prompts, a.folds, a.seed):
        run_dir = a.out / sp.name
        ckpt = run_dir / "finetune" / "last.safetensors"
        csv_path = write_split_csv(run_dir / "split.csv", items, sp)
        if not (run_dir / "done.json").is_file():
            finetune(replace(cfg, csv=str(csv_path), image_root=""), a.init, run_dir, progress=False)
            write_json_atomic(run_dir / "done.json", {"split": sp.name, "n_train": len(sp.train)})
        test_rows = list(range(len(sp.train), len(sp.train) + len(sp.test)))  # split.csv: train rows first
        mos = fold_scores(ckpt, csv_path, test_rows)
        m = correlations(mos, np.array([items[i].mos for i in sp.test]))
        per_fold.append({"fold": sp.name, "n_test": len(sp.test), "srocc": m["srocc"], "plcc": m["plcc"]})
        n_p = len({prompts[i] for i in sp.test})
        print(f"{sp.name}: {len(sp.test)} images of {n_p} held-out prompts, "
              f"SROCC {m['srocc']:.4f} PLCC {m['plcc']:.4f}", flush=True)  # fmt: skip
        if a.check:
            imgs = [items[i].image for i in sp.test[: a.check]]
            print(f"  real scorer vs cached features, {a.check} images: max |diff| "
                  f"{check_against_scorer(ckpt, imgs, mos[: a.check]):.2e} MOS", flush=True)  # fmt: skip
        for i, s in zip(sp.test, mos, strict=True):
            it = items[i]
            rows.append({"image": str(it.image), "mos": float(s), "fold": sp.name, "mos_quality": it.mos,
                         "mos_align": it.extras.get("mos_align"), "prompt": prompts[i]})  # fmt: skip
    order = {str(it.image): k for k, it in enumerate(items)}
    rows.sort(key=lambda r: order[r["image"]])
    pooled = {t: correlations(np.array([r["mos"] for r in rows]), np.array([r[t] for r in rows]))
              for t in ("mos_quality", "mos_align")}  # fmt: skip
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(a.out / "crossfit.csv", buf.getvalue())
    doc = {"config": str(a.config), "init": str(a.init), "folds": a.folds, "seed": a.seed,
           "per_fold": per_fold, "pooled": pooled}  # fmt: skip
    write_json_atomic(a.out / "crossfit.json", doc)
    q, al = pooled["mos_quality"], pooled["mos_align"]
    print(f"pooled over {len(rows)} images: mos_quality SROCC {q['srocc']:.4f} PLCC {q['plcc']:.4f}; "
          f"mos_align SROCC {al['srocc']:.4f} PLCC {al['plcc']:.4f}")  # fmt: skip
    if a.run:
        write_metric(a.run, rows, a.folds, str(a.config))
        print(f"{a.run}/scores/{METRIC}.csv written: `genbench agree {a.run}` now reports it")


if __name__ == "__main__":
    main()
