"""Session 28, addendum A of ``global_view_rule.txt``: the whole-image 224-px view (G224) on AGIQA-3k,
added to the product's own ridge features — Lite1 five crops (R1) — in the frame of
experiments/agiqa3k/new_families.py (closed-form ridge, LOO penalty, standardised sqrt statistics, each
family scaled to equal total variance, the bench's 10 random + 10 prompt-grouped splits), plus the
held-out-generator check.

G224 comes from ``frozen_probe.py --variant lite1 --taps depthwise --view whole --size 224 --save NPZ``
(rows matched to the research CSV by image path).

    python experiments/generalisation/s28/global_view_agiqa.py ../shared/data/agiqa3k-dev \\
        --g224 runs/s28/probe/agiqa_lite1_dw_g224.npz --g320 runs/s28/probe/agiqa_lite1_dw_g320.npz \\
        --out runs/s28/global_view_agiqa.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from attiqa.datasets import get_dataset
from attiqa.io.atomic import write_json_atomic
from attiqa.models.ridge_head import signed_power
from genbench.agiqa3k import generator_of

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "agiqa3k"))
from cache_features import load_features  # noqa: E402
from multi_kernel import fam, paired  # noqa: E402
from new_families import Fold  # noqa: E402
from recipes import summarise  # noqa: E402
from views import research_setup, run, standardise  # noqa: E402


def saved_rows(npz: Path, images: list[str]) -> torch.Tensor:
    """The saved features' rows in the order of ``images`` (matched by resolved path)."""
    with np.load(npz, allow_pickle=False) as f:
        row = {str(Path(str(i)).resolve()): k for k, i in enumerate(f["items"])}
        x = f["X"]
    missing = [i for i in images if str(Path(i).resolve()) not in row]
    if missing:
        raise SystemExit(f"{npz}: {len(missing)} images of the CSV not saved, e.g. {missing[0]}")
    return torch.from_numpy(x[[row[str(Path(i).resolve())] for i in images]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--g224", type=Path, required=True)
    ap.add_argument("--g320", type=Path, help="addendum B: the 320-px whole-image features (provisional)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prompts, y, sets, csv = research_setup(a.root, a.out.parent / "agiqa_research")
    images = [line.split(",")[0] for line in csv.read_text().splitlines()[1:]]
    _, st1 = load_features(csv, progress=True, stages=False, backbone="efficientnet_lite1_ms")
    r1 = standardise(signed_power(st1[:, :5], 0.5).mean(1))
    del st1
    g224 = standardise(signed_power(saved_rows(a.g224, images), 0.5))
    tries = {"R1: lite1 five crops": r1, "G1: R1 + lite1 G224": fam(r1, g224), "G224 alone": g224}
    if a.g320 is not None:
        g320 = standardise(signed_power(saved_rows(a.g320, images), 0.5))
        tries |= {"G2: R1 + lite1 G320 (provisional)": fam(r1, g320), "G320 alone": g320}
    results: dict = {}
    for name, x in tries.items():
        per = run(x, y, sets, "loo", prompts)
        s = summarise(per)
        row: dict = {"summary": s, "splits": per}
        if not name.startswith("R1"):
            pr = paired(per, results["R1: lite1 five crops"]["splits"])
            rs = results["R1: lite1 five crops"]["summary"]
            row["paired vs R1"] = pr
            row["helps"] = all(s[k]["srocc"] > rs[k]["srocc"] and pr[k][0] >= 7 for k in ("random", "prompt"))
            row["product candidate"] = row["helps"] and all(
                s[k]["srocc"] >= rs[k]["srocc"] + 0.01 for k in ("random", "prompt")
            )
        results[name] = row
        print(
            f"{name:24s} "
            + "  ".join(f"{k}: {v['srocc']:.4f} / {v['plcc']:.4f}" for k, v in s.items())
            + "  "
            + " ".join(f"{k}={v}" for k, v in row.items() if k.startswith(("paired", "helps", "product"))),
            flush=True,
        )
    gens = [generator_of(it.image) for it in get_dataset("agiqa3k", a.root).items]
    folds = {
        "generator": [
            Fold(g, [i for i, x in enumerate(gens) if x != g], [i for i, x in enumerate(gens) if x == g])
            for g in sorted(set(gens))
        ]
    }
    cands = [n for n in tries if n.startswith(("G1:", "G2:"))]
    held = {n: run(tries[n], y, folds, "loo", prompts)["generator"] for n in ["R1: lite1 five crops", *cands]}
    for n in cands:
        base, cand = held["R1: lite1 five crops"], held[n]
        d = [c["srocc"] - b["srocc"] for c, b in zip(cand, base, strict=True)]
        tag = n.split(":")[0]
        held[f"{tag} vs R1"] = {"wins": sum(v > 0 for v in d), "of": len(d), "differences": d,
                                "generator-specific": sum(v <= 0 for v in d) >= 4}  # fmt: skip
        pairs = ", ".join(
            f"{c['split']} {b['srocc']:.3f}->{c['srocc']:.3f}" for c, b in zip(cand, base, strict=True)
        )
        print(f"held-out generator, {tag} vs R1: {pairs}  wins {held[f'{tag} vs R1']['wins']}/6", flush=True)
    results["held-out generator"] = held
    write_json_atomic(a.out, results)


if __name__ == "__main__":
    main()
