"""CLIVE held-out, BIQ2021-val (and optionally held-out natural edits) SROCC of fine-tuned checkpoints, with
the ridge head's weight w and guard lambda set per variant — the product's cached five-crop prediction.

Why (decision_rule_s25.txt): the guard's lambda enters no fit (r, the detector g, the CV weight w and the
MLP are fitted without it), so the recipe + ridge_guard 0.5 / 1.0, the same with w = 1, and the incumbent
(lambda 0) are one set of 10 `attiqa bench single` runs with w / lambda set on the kept checkpoints. The
scores are :func:`attiqa.training.mos.predict_cached` on the product's feature cache: the computation of
every run's own held-out metrics (five crops, MLP and ridge crop by crop, averaged). Check it reproduces a
checkpoint made by `attiqa train` with the variant's own config: pass that checkpoint with ``own:cv:own``.

    python experiments/generalisation/guard_bench.py 'RUNS/*' --out X.json \
        --variants ref:cv:0,C1:cv:0.5,C2:cv:1,C3:1:0.5 \
        [--natural runs/generalisation/natural/natural_test.csv]

RUNS_GLOB: bench run folders (each with split.csv and finetune/last.safetensors) or checkpoints (then the
CLIVE held-out rows are clive-dev's split-seed-0 test rows, as `attiqa train` with split_seed 0).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import over_rates  # noqa: E402

from attiqa.evaluation.metrics import correlations  # noqa: E402
from attiqa.models import load_model  # noqa: E402
from attiqa.splits import split_indices  # noqa: E402
from attiqa.training.data import ImageTableDataset, MosDataset  # noqa: E402
from attiqa.training.mos import predict_cached  # noqa: E402
from attiqa.training.sources import five_crop_views, shared_cached_features  # noqa: E402

DATA = Path("../shared/data")


class Table:
    """Cached five-crop features (the MLP's and the ridge taps') of one image list, by path."""

    def __init__(self, model, paths: list[Path], mos: torch.Tensor, rows: list[dict] | None = None):
        tf, view = five_crop_views(model.backbone, 500, 320)
        data = ImageTableDataset(paths, mos, tf, "skip")
        kw = {"batch_size": 4, "workers": 0, "progress": False}
        self.stats, ok1 = shared_cached_features(
            model.backbone.tap_view(model.ridge.taps), data, view, None, **kw
        )
        self.feats, ok2 = shared_cached_features(model.backbone, data, view, None, **kw)
        self.ok = ok1 & ok2
        self.index = {str(Path(p).resolve()): i for i, p in enumerate(paths)}
        self.mos = mos
        self.rows = rows

    def predict(self, model, idx: list[int]) -> np.ndarray:
        with torch.no_grad():
            p = predict_cached(model, self.feats, torch.tensor(idx), self.stats)
        return model.mos_to_dataset_scale(p).double().numpy()


def table_of(model, csv_path: Path, image_root: Path | None = None) -> Table:
    data = MosDataset(csv_path, image_root, lambda im: im)
    return Table(model, list(data.paths), data.mos.float(), list(getattr(data, "rows", [])) or None)


def gate_report(model, nat: Table, rows: list[int]) -> dict[str, float]:
    """Per edit kind: the share of crops whose detector is open (g > 0), and the share of photos whose edit
    gets a larger penalty max(0, g) (mean over its crops) than its original — where the guard can help."""
    head = model.ridge
    with torch.no_grad():
        g = head.detector(head.standardise(nat.stats[rows, :5].flatten(0, 1))).view(len(rows), 5)
    pen = g.clamp(min=0).mean(1)
    by: dict[str, dict[str, tuple[float, float]]] = {}
    for k, i in enumerate(rows):
        r = nat.rows[i]
        by.setdefault(r["photo"], {})[r["kind"]] = (float((g[k] > 0).double().mean()), float(pen[k]))
    out = {}
    for kind in sorted({r["kind"] for r in nat.rows}):
        have = [v for v in by.values() if kind in v and "original" in v]
        out[f"open_{kind}"] = float(np.mean([v[kind][0] for v in have]))
        if kind != "original":
            out[f"widen_{kind}"] = float(np.mean([v[kind][1] > v["original"][1] for v in have]))
    return out


def open_share(model, table: Table, rows: list[int]) -> float:
    """The share of ``rows``' crops whose detector is open (g > 0)."""
    head = model.ridge
    with torch.no_grad():
        g = head.detector(head.standardise(table.stats[rows, :5].flatten(0, 1)))
    return float((g > 0).double().mean())


def set_variant(model, w: str, lam_s: str) -> None:
    head = model.ridge
    if w != "cv":
        head.weight = float(w)
    if lam_s == "own":
        return
    lam = float(lam_s)
    if lam > 0 and not hasattr(head, "guard_coef"):
        raise SystemExit("this checkpoint has no guard detector: fit it with finetune.ridge_guard > 0")
    head.guard = float(lam)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--variants", required=True, help="name:w:lambda,... (cv / own: the checkpoint's own)")
    ap.add_argument("--natural", type=Path, help="a make_variants.py table of held-out photos and edits")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    variants = [tuple(v.split(":")) for v in args.variants.split(",")]
    ckpts = []
    for pattern in args.runs:
        for p in sorted(glob.glob(pattern)):
            p = Path(p)
            ckpts.append((p / "finetune/last.safetensors", p / "split.csv") if p.is_dir() else (p, None))
    clive = biq = nat = None
    out: dict = {"variants": {}, "runs": []}
    for ckpt, split_csv in ckpts:
        model, card = load_model(ckpt)
        model.eval()
        if clive is None:
            clive = table_of(model, DATA / "clive-dev/mos.csv")
            biq = table_of(model, DATA / "biq2021-val/mos.csv")
            if args.natural:
                nat = table_of(model, args.natural)
        if split_csv is not None:
            with open(split_csv, newline="") as fh:
                test = [
                    clive.index[str(Path(r["image"]).resolve())]
                    for r in csv.DictReader(fh)
                    if r["split"] == "test"
                ]
        else:
            test = split_indices(len(clive.index), 0.2, int(card["config"]["split_seed"]))[1]
        test = [i for i in test if clive.ok[i]]
        biq_rows = [i for i in range(len(biq.ok)) if biq.ok[i]]
        run = {
            "checkpoint": str(ckpt),
            "weight_cv": model.ridge.weight,
            "card_srocc": card["metrics"]["srocc"],
        }
        w_cv, lam_fit = model.ridge.weight, model.ridge.guard
        for name, w, lam in variants:
            set_variant(model, w, lam)
            r = {
                "clive": correlations(clive.predict(model, test), clive.mos[test].double().numpy())["srocc"],
                "biq": correlations(biq.predict(model, biq_rows), biq.mos[biq_rows].double().numpy())[
                    "srocc"
                ],
            }
            if nat is not None:
                rows = [i for i in range(len(nat.ok)) if nat.ok[i]]
                rates = over_rates(nat.predict(model, rows), [nat.rows[i] for i in rows])
                r.update({k: v for k, v in rates.items() if v == v})
            run[name] = r
            model.ridge.weight, model.ridge.guard = w_cv, lam_fit
        if nat is not None and hasattr(model.ridge, "guard_coef"):
            run["gate"] = gate_report(model, nat, [i for i in range(len(nat.ok)) if nat.ok[i]])
        if hasattr(model.ridge, "guard_coef"):  # s26: where the detector opens on unedited photos
            run["open_clive_test"], run["open_biq"] = (
                open_share(model, clive, test),
                open_share(model, biq, biq_rows),
            )
        out["runs"].append(run)
        print(json.dumps({k: v for k, v in run.items() if k != "checkpoint"}), flush=True)
    for name, _, _ in variants:
        vals = [r[name] for r in out["runs"]]
        out["variants"][name] = {k: statistics.median([v[k] for v in vals]) for k in ("clive", "biq")}
        out["variants"][name]["n_runs"] = len(vals)
    print(json.dumps(out["variants"], indent=1))
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
