"""Re-ship attiqa-default with the MOS head chosen by ``compare.py`` (issue 20).

What changes and what does not: the backbone, the five pretrained attribute heads and the MOS MLP of the
shipped checkpoint stay bit-for-bit (so the attributes, and their monotonicity, are untouched); its ridge
MOS head is refitted — on the tap set and with the ranking pairs the comparison chose — on the same 690
clive-dev training photos (split seed 0) plus the natural photos' training variants, and the MOS mix weight
is set. Written fp16 with a card (relative paths only); prints the SHA-256 for ``attiqa/data/models.json``.

    ATTIQA_CACHE=/work/cache python experiments/generalisation/ship.py --feats ms --mu 1 --margin 0.1 \
        --weight 1.0 --out attiqa/data/models/attiqa-default.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare  # noqa: E402
import features  # noqa: E402

from attiqa.io.checkpoints import sha256_of  # noqa: E402
from attiqa.models import load_model, save_model  # noqa: E402
from attiqa.models.ridge_head import RidgeHead  # noqa: E402
from attiqa.training.data import split_indices  # noqa: E402

TAPS = {"ms": "stages", "dw": "depthwise"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--src", type=Path, default=HERE.parents[1] / "attiqa/data/models/attiqa-default.safetensors"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--feats", choices=sorted(TAPS), default="ms")
    ap.add_argument("--mu", type=float, default=1.0)
    ap.add_argument("--margin", type=float, default=0.1)
    ap.add_argument("--alpha", type=float)
    ap.add_argument("--weight", type=float, default=1.0, help="the ridge head's share of the MOS")
    ap.add_argument("--natural", type=Path, default=Path("/work/gen_runs/natural"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, card = load_model(args.src)
    model.float()
    clive = features.load(compare.DATA / "clive-dev/mos.csv")
    nat = features.load(args.natural / "natural_train60x.csv")
    lo, hi = (float(v) for v in model.mos_range)
    y = ((clive["mos"] - lo) / (hi - lo)).double()
    tr, _ = split_indices(len(y), 0.2, 0)  # the shipped model's own training split
    x = compare.select(clive, args.feats, None)[tr]
    xn = compare.select(nat, args.feats, None)
    idx = {(r["photo"], r["kind"]): i for i, r in enumerate(nat["rows"])}
    pairs = [(idx[(p, "original")], i) for (p, k), i in idx.items() if k != "original"]
    cand = compare.Candidate("ship", args.feats, args.mu, args.margin, args.alpha)
    fitted = compare.fit_linear(x, y[tr], xn[[a for a, _ in pairs]], xn[[b for _, b in pairs]], cand)
    head = RidgeHead(TAPS[args.feats], fitted["coef"].numel(), power=0.5, weight=args.weight,
                     alpha=fitted["alpha"])  # fmt: skip
    head.center.copy_(fitted["center"].float())
    head.scale.copy_(fitted["scale"].float())
    head.coef.copy_(fitted["coef"].float())
    head.intercept.fill_(float(fitted["intercept"]))
    model.ridge = None
    model.attach_ridge(head)
    recipe = {"script": "experiments/generalisation/ship.py",
              "from": "attiqa-default of stop 13 (backbone, attribute heads and MOS MLP kept)",
              "feats": args.feats, "taps": TAPS[args.feats],
              "pairs": len(pairs), "mu": args.mu, "margin": args.margin, "alpha": fitted["alpha"],
              "fit_view": "centre 320-px crop of the 500-px view", "clive_split": "random 80%/20% seed 0",
              "natural_pairs": "natural_train60x.csv of make_variants.py (60 photos x 13 edits)"}  # fmt: skip
    keep = {
        k: v
        for k, v in card.items()
        if k not in ("format_version", "attiqa_version", "model", "exported_from")
    }
    keep["dataset"] = {**keep.get("dataset", {}), "image_root": "../shared/data/clive-dev"}
    keep["ridge"] = {**head.card(), "fit": recipe}
    keep["description"] = (
        "ATTIQA on EfficientNet-Lite0 (multi-level features), classical pseudo-labels, fine-tuned "
        f"on CLIVE; MOS = {1 - args.weight:.2f} MLP + {args.weight:.2f} linear head on the "
        f"{TAPS[args.feats]} statistics fitted with ranking pairs (docs/default_model.md)"
    )
    out = save_model(model, args.out, keep, half=True)
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB) sha256 {sha256_of(out)}")
    # the fp16 file against the fp32 head it came from, on the validation photos' centre crops
    back, _ = load_model(out)
    biq = features.load(compare.DATA / "biq2021-val/mos.csv")
    for m, tag in ((model, "fp32"), (back.float(), "fp16 file")):
        m.eval()
        with torch.no_grad():
            f = m.backbone.normalize(biq["ms"].float())
            p = m.forward_features(f, biq[args.feats if args.feats == "dw" else "ms"].float()).mos
        from attiqa.evaluation.metrics import correlations

        print(tag, "BIQ2021-val centre crop", {k: round(v, 4) for k, v in
              correlations(p.double().numpy(), biq["mos"].double().numpy()).items()})  # fmt: skip
    _ = np


if __name__ == "__main__":
    main()
