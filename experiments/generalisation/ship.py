"""Re-ship attiqa-default with the MOS head chosen by ``compare.py`` (issue 20).

What changes and what does not: the backbone, the five pretrained attribute heads and the MOS MLP of the
shipped checkpoint stay bit-for-bit (so the attributes, and their monotonicity, are untouched); its ridge
MOS head is refitted — on the tap set and with the ranking pairs the comparison chose — on the same 690
clive-dev training photos (split seed 0) plus the natural photos' training variants, and the MOS mix weight
is set. The fit is the product's (``attiqa.training.ridge.fit_ridge_pairs``: what ``finetune.ridge_pairs``
runs) on the view the scorer uses (``--crops five``: per-crop signed square roots averaged over the five
crops, as the shipped ridge was fitted). Written fp16 with a card (relative paths only); refused if fp16
would flush a ridge scale to 0 or overflow a value; prints the SHA-256 for ``attiqa/data/models.json``.

    python experiments/generalisation/ship.py --feats dw --mu 0.3 --margin 0.1 \
        --weight 1.0 --crops five --out attiqa/data/models/attiqa-default.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare  # noqa: E402
import features  # noqa: E402

from attiqa.evaluation.metrics import correlations  # noqa: E402
from attiqa.io.hashes import sha256_of  # noqa: E402
from attiqa.models import load_model, save_model  # noqa: E402
from attiqa.models.ridge_head import RidgeHead  # noqa: E402
from attiqa.splits import split_indices  # noqa: E402
from attiqa.training.ridge import fit_ridge_pairs  # noqa: E402

TAPS = {"ms": "stages", "dw": "depthwise", "dw_from3": "depthwise_late"}  # compare.py name -> tap set
VIEWS = {"center": "centre 320-px crop of the 500-px view", "five": "mean over the five 320-px crops"}


def fp16_guard(head: RidgeHead) -> None:
    """Refuse an fp16 export that would change the head: a positive scale that rounds to 0 (the feature
    would be dropped at load) or any value that overflows fp16."""
    for name in ("center", "scale", "coef", "intercept"):
        t = getattr(head, name)
        h = t.half()
        if not torch.isfinite(h).all():
            raise SystemExit(f"ridge.{name}: a value overflows fp16 (max |x| {float(t.abs().max()):.3g})")
    flushed = int(((head.scale > 0) & (head.scale.half() == 0)).sum())
    if flushed:
        raise SystemExit(f"ridge.scale: {flushed} feature scale(s) round to 0 in fp16; refusing the export")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--src", type=Path, default=HERE.parents[1] / "attiqa/data/models/attiqa-default.safetensors"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--feats", choices=sorted(TAPS), default="dw")
    ap.add_argument("--mu", type=float, default=1.0)
    ap.add_argument("--margin", type=float, default=0.1)
    ap.add_argument("--weight", type=float, default=1.0, help="the ridge head's share of the MOS")
    ap.add_argument("--natural", type=Path, default=Path("runs/generalisation/natural"))
    ap.add_argument("--pairs-table", default="natural_train60x.csv", help="a make_variants table")
    ap.add_argument("--crops", choices=["center", "five"], default="five", help="the head's fitting view")
    ap.add_argument("--pair-crops", choices=["center", "five"], help="the pairs' view (default: --crops)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, card = load_model(args.src)
    model.float()
    clive = features.load(compare.DATA / "clive-dev/mos.csv", crops=args.crops,
                          product_cache=args.crops == "five")  # fmt: skip
    nat = features.load(args.natural / args.pairs_table, crops=args.pair_crops or args.crops)
    lo, hi = (float(v) for v in model.mos_range)
    y = ((clive["mos"] - lo) / (hi - lo)).double()
    tr, _ = split_indices(len(y), 0.2, 0)  # the shipped model's own training split
    blocks = compare.dw_blocks(model.backbone.body.net)
    x = compare.select(clive, args.feats, blocks)[tr]
    xn = compare.select(nat, args.feats, blocks)
    idx = {(r["photo"], r["kind"]): i for i, r in enumerate(nat["rows"])}
    pairs = [(idx[(p, "original")], i) for (p, k), i in idx.items() if k != "original"]
    fit = fit_ridge_pairs(x.float(), y[tr].float(), xn[[a for a, _ in pairs]].float(),
                          xn[[b for _, b in pairs]].float(), args.mu, args.margin)  # fmt: skip
    head = RidgeHead(TAPS[args.feats], fit.coef.numel(), power=0.5, weight=args.weight, alpha=fit.alpha)
    head.center.copy_(fit.center)
    head.scale.copy_(fit.scale)
    head.coef.copy_(fit.coef)
    head.intercept.fill_(fit.intercept)
    fp16_guard(head)
    model.ridge = None
    model.attach_ridge(head)
    recipe = {"script": "experiments/generalisation/ship.py",
              "from": "attiqa-default of stop 13 (backbone, attribute heads and MOS MLP kept)",
              "feats": args.feats, "taps": TAPS[args.feats],
              "pairs": len(pairs), "mu": args.mu, "margin": args.margin, "alpha": fit.alpha,
              "fit_view": VIEWS[args.crops], "pair_view": VIEWS[args.pair_crops or args.crops],
              "clive_split": "random 80%/20% seed 0",
              "natural_pairs": f"{args.pairs_table} of make_variants.py ({len(pairs)} pairs)"}  # fmt: skip
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
    # the fp16 file against the fp32 head it came from, on BIQ2021-val (the view the head was fitted on)
    back, _ = load_model(out)
    biq = features.load(compare.DATA / "biq2021-val/mos.csv", crops=args.crops)
    for m, tag in ((model, "fp32"), (back.float(), "fp16 file")):
        m.eval()
        r = correlations(mos_of(m, biq, compare.select(biq, args.feats, blocks)).double().numpy(),
                         biq["mos"].double().numpy())  # fmt: skip
        print(tag, f"BIQ2021-val ({args.crops} crops)", {k: round(v, 4) for k, v in r.items()})


@torch.no_grad()
def mos_of(m, d: dict, xr: torch.Tensor) -> torch.Tensor:
    """The model's MOS from cached features (``features.load``) and the ridge input ``xr`` (transformed,
    ``compare.select``): the MLP per crop, then the mean; the ridge head's linear map on the crops' mean of
    the transformed statistics (what five-crop scoring reports, since the head is linear)."""
    if d.get("powered"):
        ms5 = d["ms5"].float()
        mlp = m.forward_features(m.backbone.normalize(ms5.flatten(0, 1))).mos.view(ms5.shape[:2]).mean(1)
    else:
        mlp = m.forward_features(m.backbone.normalize(d["ms"].float())).mos
    r = m.ridge
    scale = torch.where(r.scale > 0, r.scale, torch.inf)
    ridge = ((xr.float() - r.center) / scale) @ r.coef + r.intercept
    return (1 - r.weight) * mlp + r.weight * ridge


if __name__ == "__main__":
    main()
