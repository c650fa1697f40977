"""Toward 0.87 on frozen Lite features (ours; issue 15, session 24): kernels and ensembles of three backbones.

Session 23's best linear result is a ridge on Lite0's five-crop depthwise statistics + Lite1's and Lite2's
whole-image ones (0.830 / 0.821 median SROCC, random / prompt-grouped). Two ideas that need no new feature
pass (every family is in ``$ATTIQA_CACHE/features``), on the 10 + 10 splits of `attiqa bench single`:

- an RBF kernel ridge on the three families (the kernel width and penalty chosen by 5-fold prompt-grouped
  CV inside each training part; on Lite0 alone it gave +0.009 / +0.013 over the linear ridge, session 22);
- the mean of the three backbones' own ridge predictions (an ensemble) instead of one ridge on the
  concatenation;
- for reference, the product view's Lite1 ridge (five 320-px crops, as the Lite1 recipe reads them).

Rule, written before the runs: an idea "helps" only if its median SROCC is above the linear three-backbone
ridge's on both split kinds AND it beats that ridge on at least 7 of the 10 splits of each kind; it is then a
candidate for a later product recipe (none is chosen here). Output: runs/agiqa3k/research/multi_kernel.json.

    OMP_NUM_THREADS=1 nice -n 10 python experiments/agiqa3k/multi_kernel.py ../shared/data/agiqa3k-dev
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from attiqa.evaluation.metrics import correlations
from attiqa.models.ridge_head import signed_power

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cache_features import load_features  # noqa: E402
from recipes import summarise  # noqa: E402
from second_backbone import lite_whole  # noqa: E402
from views import _predict, cv_error, research_setup, run, standardise  # noqa: E402

GAMMAS = (0.25, 0.5, 1.0, 2.0, 4.0)


def fam(*xs: torch.Tensor) -> torch.Tensor:
    """Concatenate feature families, each scaled to the first one's total variance."""
    return torch.cat([x * (xs[0].shape[1] / x.shape[1]) ** 0.5 for x in xs], 1)


def ensemble(zs: list[torch.Tensor], y: torch.Tensor, sets, groups: list[str]) -> dict[str, list[dict]]:
    """The mean of each family's own linear ridge prediction (LOO penalty, the product's rule)."""
    grams = [z @ z.T for z in zs]
    out = {}
    for kind, splits in sets.items():
        rows = []
        for sp in splits:
            tr, te = torch.tensor(sp.train), torch.tensor(sp.test)
            preds = [_predict(g, y, tr, te, cv_error(g, y, tr, "loo", groups)[0]) for g in grams]
            m = correlations(torch.stack(preds).mean(0).numpy(), y[te].numpy())
            rows.append({"split": sp.name, "srocc": m["srocc"], "plcc": m["plcc"]})
        out[kind] = rows
    return out


def paired(per: dict[str, list[dict]], ref: dict[str, list[dict]]) -> dict[str, tuple[int, float]]:
    """Per split kind: (splits where ``per`` beats ``ref`` in SROCC, median difference)."""
    out = {}
    for kind in per:
        d = torch.tensor([a["srocc"] - b["srocc"] for a, b in zip(per[kind], ref[kind], strict=True)])
        out[kind] = (int((d > 0).sum()), float(d.median()))
    return out


def lite_families(csv: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standardised sqrt depthwise statistics (cached): Lite0 five crops, Lite1 five crops, Lite1 and Lite2
    whole 512-px image."""
    sq = lambda x: standardise(signed_power(x, 0.5))  # noqa: E731
    _, st0 = load_features(csv, progress=False, stages=False)
    crops0 = standardise(signed_power(st0[:, :5], 0.5).mean(1))
    del st0
    _, st1 = load_features(csv, progress=True, stages=False, backbone="efficientnet_lite1_ms")
    crops1 = standardise(signed_power(st1[:, :5], 0.5).mean(1))
    del st1
    return crops0, crops1, sq(lite_whole(csv, "lite1", 512)), sq(lite_whole(csv, "lite2", 512))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=Path("runs/agiqa3k/research"))
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prompts, y, sets, csv = research_setup(a.root, a.out)
    crops0, crops1, whole1, whole2 = lite_families(csv)
    three = fam(crops0, whole1, whole2)
    target = a.out / "multi_kernel.json"
    results = json.loads(target.read_text()) if target.is_file() else {}

    def report(name: str, per: dict[str, list[dict]]) -> None:
        s = summarise(per)
        results[name] = {"summary": s, "splits": per}
        if base in results and name != base:
            results[name]["paired_vs_linear_three"] = paired(per, results[base]["splits"])
        print(f"{name:66s} " + "  ".join(f"{k}: {v['srocc']:.4f} / {v['plcc']:.4f}" for k, v in s.items())
              + (f"  paired {results[name].get('paired_vs_linear_three')}" if name != base else ""),
              flush=True)  # fmt: skip
        a.out.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(results, indent=1))

    base = "linear ridge, lite0 crops + lite1 + lite2 whole (session 23's best)"
    report(base, run(three, y, sets, "loo", prompts))
    report("lite1 crops dw sqrt, linear ridge, LOO (the Lite1 recipe's ridge)", run(crops1, y, sets, "loo",
                                                                                   prompts))  # fmt: skip
    report("mean of the three backbones' own ridges", ensemble([crops0, whole1, whole2], y, sets, prompts))
    report("RBF kernel ridge, lite0 crops + lite1 + lite2 whole, gamma+alpha by grouped CV",
           run(three, y, sets, "group", prompts, GAMMAS))  # fmt: skip


if __name__ == "__main__":
    main()
