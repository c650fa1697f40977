"""Session 28 screening (issues 15 and 20): does a whole-image view at 224 px add to the 320-px crop?

Rule, committed before any feature was computed: ``global_view_rule.txt`` beside this script. Features come
from ``experiments/default_model/frozen_probe.py --save`` (.npz: ``X``, ``y``, ``items`` and, with
``--cross``, the zero-shot set's ``Xc``, ``yc``); this script concatenates saved families, runs the probe's
10 random 80/20 splits (seeds 0-9, the product's ridge with the probe's penalties, signed square root) and
pairs every candidate with its reference split by split.

    python experiments/default_model/frozen_probe.py --variant lite0 --taps depthwise --view whole \\
        --size 224 --sqrt -d clive:folder=../shared/data/clive-dev/mos.csv \\
        --cross biq:folder=../shared/data/biq2021-val/mos.csv --splits 10 \\
        --save runs/s28/probe/lite0_dw_g224.npz
    python experiments/default_model/frozen_probe.py --variant lite1 --taps depthwise --view whole \\
        --size 224 --sqrt -d agiqa3k=../shared/data/agiqa3k-dev --splits 10 \\
        --save runs/s28/probe/agiqa_lite1_dw_g224.npz
    (and --size 320 into *_g320.npz; the centre-crop references lite0_dw_center.npz and
    agiqa_lite1_dw_center.npz are stop 26's --view center runs: experiments/default_model/
    frozen_sources_results.md, saved into runs/scout/probe)
    python experiments/generalisation/s28/global_view.py --probe runs/s28/probe --refs runs/scout/probe \\
        --out runs/s28/global_view.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from attiqa.evaluation.metrics import correlations
from attiqa.io.atomic import write_json_atomic
from attiqa.training.ridge import fit_ridge

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "default_model"))
from frozen_probe import PROBE_ALPHAS  # noqa: E402

SPLITS = 10


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def combine(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Columns of several saved families of the same images (checked), each signed-square-rooted."""
    items = [str(i) for i in parts[0]["items"]]
    for p in parts[1:]:
        if [str(i) for i in p["items"]] != items:
            raise SystemExit("saved features of different images or order")
    sq = lambda a: np.sign(a) * np.sqrt(np.abs(a))  # noqa: E731
    out = {"X": np.hstack([sq(p["X"]) for p in parts]), "y": parts[0]["y"]}
    if all("Xc" in p for p in parts):
        out["Xc"], out["yc"] = np.hstack([sq(p["Xc"]) for p in parts]), parts[0]["yc"]
    return out


def probe(d: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Per split: in-domain SROCC / PLCC and, if saved, the zero-shot set's SROCC / PLCC."""
    X, y = d["X"], d["y"]
    res: dict[str, list[float]] = {"srocc": [], "plcc": [], "cross_srocc": [], "cross_plcc": []}
    for seed in range(SPLITS):
        p = np.random.default_rng(seed).permutation(len(y))
        tr, te = p[: int(0.8 * len(y))], p[int(0.8 * len(y)) :]
        fit = fit_ridge(torch.from_numpy(X[tr]), torch.from_numpy(y[tr]), PROBE_ALPHAS)
        m = correlations(fit.predict(torch.from_numpy(X[te])).double().numpy(), y[te])
        res["srocc"].append(m["srocc"])
        res["plcc"].append(m["plcc"])
        if "Xc" in d:
            c = correlations(fit.predict(torch.from_numpy(d["Xc"])).double().numpy(), d["yc"])
            res["cross_srocc"].append(c["srocc"])
            res["cross_plcc"].append(c["plcc"])
    return res


def paired(a: list[float], b: list[float]) -> tuple[int, float]:
    d = np.asarray(a) - np.asarray(b)
    return int((d > 0).sum()), float(np.median(d))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probe", type=Path, required=True, help="folder of this screening's .npz files")
    ap.add_argument("--refs", type=Path, required=True, help="folder of stop 26's centre-crop .npz files")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    f = {
        "C0": a.refs / "lite0_dw_center.npz",
        "A0": a.refs / "agiqa_lite1_dw_center.npz",
        "CG224": a.probe / "lite0_dw_g224.npz",
        "AG224": a.probe / "agiqa_lite1_dw_g224.npz",
        "CG320": a.probe / "lite0_dw_g320.npz",
        "AG320": a.probe / "agiqa_lite1_dw_g320.npz",
    }
    tries = {  # name: (families, reference or None, decides?)
        "C0: Lite0 centre crop (reference)": (["C0"], None, False),
        "C1: C0 + Lite0 G224": (["C0", "CG224"], "C0: Lite0 centre crop (reference)", True),
        "Lite0 G224 alone": (["CG224"], "C0: Lite0 centre crop (reference)", False),
        "C0 + Lite0 G320": (["C0", "CG320"], "C0: Lite0 centre crop (reference)", False),
        "Lite0 G320 alone": (["CG320"], "C0: Lite0 centre crop (reference)", False),
        "A0: Lite1 centre crop (reference)": (["A0"], None, False),
        "A1: A0 + Lite1 G224": (["A0", "AG224"], "A0: Lite1 centre crop (reference)", True),
        "Lite1 G224 alone": (["AG224"], "A0: Lite1 centre crop (reference)", False),
        "A0 + Lite1 G320": (["A0", "AG320"], "A0: Lite1 centre crop (reference)", False),
        "Lite1 G320 alone": (["AG320"], "A0: Lite1 centre crop (reference)", False),
    }
    results: dict[str, dict] = {}
    for name, (fams, ref, decides) in tries.items():
        if not all(f[k].is_file() for k in fams):
            print(f"{name}: skipped (features not saved yet)")
            continue
        r = probe(combine([load(f[k]) for k in fams]))
        row: dict = {"splits": r, "median": {k: float(np.median(v)) for k, v in r.items() if v}}
        if ref is not None and ref in results:
            rr = results[ref]["splits"]
            row["paired"] = {k: paired(r[k], rr[k]) for k in ("srocc", "cross_srocc") if r[k] and rr[k]}
            med, rmed = row["median"], results[ref]["median"]
            if decides and name.startswith("C1"):
                row["helps"] = bool(
                    med["cross_srocc"] >= rmed["cross_srocc"] + 0.02
                    and row["paired"]["cross_srocc"][0] >= 8
                    and med["srocc"] >= rmed["srocc"] - 0.005
                )
            elif decides:
                row["helps"] = bool(med["srocc"] >= rmed["srocc"] + 0.01 and row["paired"]["srocc"][0] >= 8)
        results[name] = row
        cross = f"  zero-shot {row['median']['cross_srocc']:.4f}" if "cross_srocc" in row["median"] else ""
        extra = f"  paired {row.get('paired')}  helps={row.get('helps')}" if ref else ""
        med = row["median"]
        print(f"{name:36s} in-domain {med['srocc']:.4f} / {med['plcc']:.4f}{cross}{extra}")
        write_json_atomic(a.out, results)


if __name__ == "__main__":
    main()
