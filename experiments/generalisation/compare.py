"""Compare MOS-head recipes for generalisation on cached frozen features (issue 20).

Every candidate is a linear MOS head on (signed square root of) frozen EfficientNet-Lite0 statistics of
the centre crop (``features.py``), standardised on its training photos, fitted in closed form:

    min_w  |Z w + b - y|^2  +  mu * sum_pairs max(0, m - (z_orig - z_edit) w)^2  +  alpha |w|^2

- the first term is the product's ridge on clive-dev MOS (unit scale), alpha by exact leave-one-out
  (``attiqa.training.ridge.fit_ridge``) unless the candidate fixes it;
- the second (ours, RankIQA-style) is a squared hinge on ranking pairs "original > edited" from the
  natural photos' training variants (``make_variants.py``): 7 over-processings + 3 degradations per
  photo; solved by an active-set loop (pairs already ranked by more than the margin drop out, refit).

Reported per candidate, side by side:
- CLIVE: median SROCC / PLCC over 10 random 80/20 splits of clive-dev (seeds 0-9, ``split_indices``);
- BIQ2021-val: median over the same 10 models of their zero-shot SROCC / PLCC on the 500 BIQ2021 photos
  (never used to fit anything; only to choose between rows);
- over-processing: share of (held-out natural photo, edit) pairs where the original scores higher, per
  edit and over the six strong over-processings / five degradations (the split-0 model).

    python experiments/generalisation/compare.py --out runs/generalisation/compare.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from attiqa.evaluation.metrics import correlations
from attiqa.models import load_model
from attiqa.models.backbones import create_backbone, tap_points
from attiqa.models.ridge_head import signed_power
from attiqa.splits import split_indices
from attiqa.training.ridge import fit_ridge

HERE = Path(__file__).resolve().parent
sys_path = str(HERE)
import sys  # noqa: E402

sys.path.insert(0, sys_path)
import features  # noqa: E402
from make_variants import DEGRADE_TEST, OVER_TEST  # noqa: E402

DATA = Path("../shared/data")
SHIPPED = HERE.parents[1] / "attiqa/data/models/attiqa-default.safetensors"
SPLITS = 10
MOS_LO, MOS_HI = 3.4976, 91.4362  # clive-dev's range (the shipped model's mos_range)


@dataclass
class Candidate:
    name: str
    feats: str = "dw"  # dw | ms | dw_late | dw+ms | ...
    mu: float = 0.0  # weight of the ranking pairs (0: plain ridge)
    margin: float = 0.1  # on the unit MOS scale (0.1 = 8.8 CLIVE MOS points)
    alpha: float | None = None  # None: leave-one-out on the MOS rows
    pair_kinds: tuple[str, ...] | None = None  # None: every training variant
    pairs_table: str = "natural_train60x.csv"  # 60 photos x 13 edits; natural_train110x.csv: all 110 (s23)
    notes: str = ""
    extra: dict = field(default_factory=dict)


def dw_blocks(net) -> list[tuple[int, int, int]]:
    """(start, width, block index) of each depthwise tap's mean block (std follows it) in the 19,200."""
    widths = tap_points(net, "depthwise")[1]
    out, pos = [], 0
    for i, w in enumerate(widths):
        out.append((pos, w, i))
        pos += 2 * w
    return out


@torch.no_grad()
def attributes(data: dict) -> torch.Tensor:
    """The shipped model's five raw attribute-head outputs (pretrained on pseudo-labels, then fine-tuned
    with the MOS on clive-dev split 0's training photos)."""
    model, _ = load_model(SHIPPED)
    model.float().eval()
    if data.get("powered"):  # five crops: each crop's attributes, then their mean (as the scorer)
        ms5 = data["ms5"].float()
        out = model.forward_features(model.backbone.normalize(ms5.flatten(0, 1))).attributes
        return out.view(*ms5.shape[:2], -1).mean(1).double()
    return model.forward_features(model.backbone.normalize(data["ms"].float())).attributes.double()


def select(data: dict, kind: str, blocks) -> torch.Tensor:
    dw, ms = data["dw"], data["ms"]
    if kind == "attr":  # linear in the five attributes (no power: they are signed scores)
        return attributes(data)
    if kind.endswith("+attr"):
        x = select(data, kind.removesuffix("+attr"), blocks)
        a = attributes(data)
        return torch.cat(
            [x, a.repeat(1, max(1, x.shape[1] // 50))], 1
        )  # repeated: a larger share of the penalty budget
    if kind == "dw":
        x = dw
    elif kind == "ms":
        x = ms
    elif kind.startswith("dw_from"):  # depthwise taps of blocks >= k + the final features
        k = int(kind.removeprefix("dw_from"))
        cols = [torch.arange(s, s + 2 * w) for s, w, i in blocks if i >= k]
        x = torch.cat([dw[:, torch.cat(cols)], dw[:, -1280:]], 1)
    elif kind.startswith("ms+dw_from"):
        k = int(kind.removeprefix("ms+dw_from"))
        cols = [torch.arange(s, s + 2 * w) for s, w, i in blocks if i >= k]
        x = torch.cat([ms, dw[:, torch.cat(cols)]], 1)
    elif kind == "dw_mean":
        cols = [torch.arange(s, s + w) for s, w, i in blocks]
        x = torch.cat([dw[:, torch.cat(cols)], dw[:, -1280:]], 1)
    elif kind == "dw_std":
        cols = [torch.arange(s + w, s + 2 * w) for s, w, i in blocks]
        x = torch.cat([dw[:, torch.cat(cols)], dw[:, -1280:]], 1)
    else:
        raise ValueError(kind)
    return x.double() if data.get("powered") else signed_power(x, 0.5).double()


def fit_linear(x, y, pairs_o, pairs_v, cand: Candidate, rounds: int = 8, prior=None) -> dict:
    """The linear head: ``{"center", "scale", "coef", "intercept", "alpha"}`` on the features ``x``.

    ``prior`` (a head dict on the same features): fit only a correction to it — the MOS rows' target is
    the prior's residual and each pair's margin is reduced by the prior's own gap — and return prior +
    correction as one head (the penalty then keeps the result near the prior, not near zero)."""
    if prior is not None:
        off = lambda q: apply_head(prior, q)  # noqa: E731
        pm = pairs_o is not None and len(pairs_o) > 0
        delta = fit_with_margins(
            x,
            y - off(x),
            pairs_o,
            pairs_v,
            cand,
            rounds,
            (cand.margin - (off(pairs_o) - off(pairs_v))) if pm else None,
        )
        return add_heads(prior, delta)
    return fit_with_margins(x, y, pairs_o, pairs_v, cand, rounds, None)


def apply_head(h: dict, q: torch.Tensor) -> torch.Tensor:
    return ((q.double() - h["center"]) / h["scale"]) @ h["coef"] + h["intercept"]


def add_heads(a: dict, b: dict) -> dict:
    """a + b as one head in b's standardisation."""
    coef = b["coef"] + a["coef"] * b["scale"] / a["scale"]
    intercept = (
        b["intercept"] + a["intercept"] + float(((b["center"] - a["center"]) / a["scale"]) @ a["coef"])
    )
    return {**b, "coef": coef, "intercept": intercept}


def fit_with_margins(x, y, pairs_o, pairs_v, cand: Candidate, rounds: int, margins) -> dict:
    base = fit_ridge(x.float(), y.float()) if cand.alpha is None else None
    alpha = cand.alpha if cand.alpha is not None else base.alpha * cand.extra.get("alpha_mult", 1.0)
    if alpha != (base.alpha if base is not None else alpha):
        base = None  # the LOO fit is not the head any more: refit below at the scaled alpha
    if cand.mu == 0 or pairs_o is None:
        if base is not None:
            return {"center": base.center.double(), "scale": base.scale.double(), "coef": base.coef.double(),
                    "intercept": base.intercept, "alpha": alpha}  # fmt: skip
        pairs_o = pairs_v = x[:0]
    center = x.mean(0)
    scale = x.std(0, unbiased=False)
    scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))
    z = torch.cat([(x - center) / scale, (pairs_o - pairs_v) / scale]).float()
    g = (z @ z.T).double()  # every row's Gram once; the active set only indexes it
    n, ym = len(y), float(y.mean())
    m = margins if margins is not None else torch.full((len(pairs_o),), cand.margin, dtype=torch.float64)
    s = float(np.sqrt(cand.mu * n / max(len(pairs_o), 1)))  # mu = the pairs' total weight vs the MOS rows
    active = torch.ones(len(pairs_o), dtype=torch.bool)
    for _ in range(rounds):
        rows = torch.cat([torch.arange(n), n + torch.nonzero(active).flatten()])
        c = torch.ones(len(rows), dtype=torch.float64)
        c[n:] = s
        t = torch.cat([y - ym, s * m[active]])
        gr = c[:, None] * g[rows][:, rows] * c[None, :]
        gr.diagonal().add_(alpha)
        beta = torch.linalg.solve(gr, t)
        w = z[rows].double().T @ (c * beta)
        if len(pairs_o) == 0:
            break
        new = (z[n:].double() @ w) < m  # squared hinge: the pairs ranked by less than their margin
        if torch.equal(new, active):
            break
        active = new
    return {"center": center, "scale": scale, "coef": w, "intercept": ym, "alpha": alpha}


def shipped_ridge() -> dict:
    """The shipped model's ridge head as a head dict (depthwise taps, unit MOS scale)."""
    model, _ = load_model(SHIPPED)
    r = model.ridge.float()
    return {"center": r.center.double(), "scale": r.scale.double(), "coef": r.coef.double(),
            "intercept": float(r.intercept), "alpha": r.alpha}  # fmt: skip


def fit(x, y, pairs_o, pairs_v, cand: Candidate, margins=None):
    """Returns (predict(x) -> unit-scale MOS, alpha). ``margins``: per-pair margins (default: cand.margin)."""
    prior = shipped_ridge() if cand.extra.get("prior") == "shipped" else None
    if margins is not None:
        h = fit_with_margins(x, y, pairs_o, pairs_v, cand, 30, margins)
    else:
        h = fit_linear(x, y, pairs_o, pairs_v, cand, prior=prior)
    return (lambda q: ((q.double() - h["center"]) / h["scale"]) @ h["coef"] + h["intercept"]), h["alpha"]


@torch.no_grad()
def shipped_mlp(d: dict) -> torch.Tensor:
    """The shipped MOS MLP's predictions (unit scale) on a features dict."""
    model, _ = load_model(SHIPPED)
    model.float().eval()
    return torch.from_numpy(shipped_mos(model, "mlp", d)).double()


def over_rates(pred: np.ndarray, rows: list[dict]) -> dict[str, float]:
    by = {}
    for p, r in zip(pred, rows, strict=True):
        by.setdefault(r["photo"], {})[r["kind"]] = p
    out = {}
    for kind in (*OVER_TEST, *DEGRADE_TEST):
        wins = [v["original"] > v[kind] for v in by.values() if kind in v and "original" in v]
        out[kind] = float(np.mean(wins))
    out["over6"] = float(np.mean([out[k] for k in OVER_TEST]))
    out["degr5"] = float(np.mean([out[k] for k in DEGRADE_TEST]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--natural", type=Path, default=Path("runs/generalisation/natural"))
    ap.add_argument("--out", type=Path, default=Path("runs/generalisation/compare.json"))
    ap.add_argument("--only", nargs="*", help="candidate names to run")
    ap.add_argument("--splits", type=int, default=SPLITS, help="1: split 0 only (like the shipped model)")
    ap.add_argument("--no-biq", action="store_true", help="skip BIQ2021-val (while its features are cached)")
    ap.add_argument("--crops", choices=["center", "five"], default="center",
                    help="five: heads fitted and scored on five-crop means (the scorer's view)")  # fmt: skip
    ap.add_argument("--pair-crops", choices=["center", "five"],
                    help="the view of the ranking pairs' photos (default: --crops)")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(1)
    load = partial(features.load, crops=args.crops)
    clive = load(DATA / "clive-dev/mos.csv", product_cache=args.crops == "five")  # `attiqa train` cached it
    biq = None if args.no_biq else load(DATA / "biq2021-val/mos.csv")
    nat_te = load(args.natural / "natural_test.csv")
    todo = [c for c in CANDIDATES if not args.only or c.name in args.only]
    pair_load = partial(features.load, crops=args.pair_crops or args.crops)
    tables: dict[str, dict] = {}  # pair tables, loaded once each
    blocks = dw_blocks(create_backbone("efficientnet_lite0_ms", pretrained=False).body.net)
    y_all = ((clive["mos"] - MOS_LO) / (MOS_HI - MOS_LO)).double()
    results = {}
    if biq is not None and (not args.only or "shipped" in args.only):
        results.update(shipped(clive, biq, nat_te))
        save(args.out, results)
    for cand in todo:
        xc = select(clive, cand.feats, blocks)
        xb = select(biq, cand.feats, blocks) if biq is not None else None
        xn = select(nat_te, cand.feats, blocks)
        po = pv = None
        margins = None
        if cand.mu > 0:
            if cand.pairs_table not in tables:
                tables[cand.pairs_table] = pair_load(args.natural / cand.pairs_table)
            nat_tr = tables[cand.pairs_table]
            xt = select(nat_tr, cand.feats, blocks)
            idx = {(r["photo"], r["kind"]): i for i, r in enumerate(nat_tr["rows"])}
            pairs = [
                (idx[(p, "original")], i)
                for (p, k), i in idx.items()
                if k != "original" and (cand.pair_kinds is None or k in cand.pair_kinds)
            ]
            po, pv = xt[[a for a, _ in pairs]], xt[[b for _, b in pairs]]
            w = cand.extra.get("mlp_weight", 0.0)
            if w and cand.extra.get("pairs_on_combined"):  # the hinge on (1-w) ridge + w MLP (split 0 only)
                mlp = shipped_mlp(nat_tr)
                gap = mlp[[a for a, _ in pairs]] - mlp[[b for _, b in pairs]]
                margins = (cand.margin - w * gap) / (1 - w)
        cl, bq, alphas = [], [], []
        rates = None
        for seed in range(args.splits):
            tr, te = split_indices(len(y_all), 0.2, seed)
            ridge, alpha = fit(xc[tr], y_all[tr], po, pv, cand, margins)
            w_mlp = cand.extra.get("mlp_weight", 0.0)  # split 0 only: the shipped MLP saw its photos

            def predict(q, d, rows=slice(None), ridge=ridge, w_mlp=w_mlp):
                out = ridge(q[rows])
                return (1 - w_mlp) * out + w_mlp * shipped_mlp(d)[rows] if w_mlp else out

            alphas.append(alpha)
            cl.append(correlations(predict(xc, clive, te).numpy(), y_all[te].numpy()))
            if xb is not None:
                bq.append(correlations(predict(xb, biq).numpy(), biq["mos"].double().numpy()))
            else:
                bq.append({"srocc": float("nan"), "plcc": float("nan")})
            if seed == 0:
                rates = over_rates(predict(xn, nat_te).numpy(), nat_te["rows"])
        med = lambda ms, k: float(np.median([m[k] for m in ms]))  # noqa: E731
        res = {"clive_srocc": med(cl, "srocc"), "clive_plcc": med(cl, "plcc"), "biq_srocc": med(bq, "srocc"),
               "biq_plcc": med(bq, "plcc"), "alpha_median": float(np.median(alphas)), **rates,
               "clive_per_split": [round(m["srocc"], 4) for m in cl],
               "biq_per_split": [round(m["srocc"], 4) for m in bq]}  # fmt: skip
        results[cand.name] = res
        save(args.out, results)  # after every candidate: a killed run keeps what it measured
        print(f"{cand.name:40s} CLIVE {res['clive_srocc']:.3f}/{res['clive_plcc']:.3f}  BIQ "
              f"{res['biq_srocc']:.3f}/{res['biq_plcc']:.3f}  " + rate_text(rates), flush=True)  # fmt: skip


def save(out: Path, results: dict) -> None:
    old = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**old, **results}, indent=1))


def rate_text(rates: dict) -> str:
    return f"over6 {rates['over6']:.2f} degr5 {rates['degr5']:.2f}  " + " ".join(
        f"{k}:{rates[k]:.2f}" for k in (*OVER_TEST, *DEGRADE_TEST)
    )


def shipped_mos(model, part: str, d: dict) -> np.ndarray:
    if d.get("powered"):  # five crops: the mean of the per-crop MLP outputs; the ridge on the mean
        ms5 = d["ms5"].float()
        mlp = model.forward_features(model.backbone.normalize(ms5.flatten(0, 1))).mos
        mlp = mlp.view(ms5.shape[:2]).mean(1)
        r = apply_head(shipped_ridge(), d["dw"]).float()
    else:
        mlp = model.forward_features(model.backbone.normalize(d["ms"].float())).mos
        r = model.ridge(d["dw"].float())
    w = model.ridge.weight
    return {"combined": (1 - w) * mlp + w * r, "mlp": mlp, "ridge": r}[part].double().numpy()


@torch.no_grad()
def shipped(clive, biq, nat_te) -> dict:
    """The shipped attiqa-default on the same centre-crop features: combined MOS, MLP alone, ridge alone.
    CLIVE: split 0's 172 test photos only (it was trained on split 0's training photos)."""
    model, _ = load_model(SHIPPED)
    model.float().eval()
    _, te = split_indices(len(clive["mos"]), 0.2, 0)
    out = {}
    for part in ("combined", "mlp", "ridge"):
        pred = partial(shipped_mos, model, part)
        c = correlations(pred(clive)[te], clive["mos"][te].double().numpy())
        b = correlations(pred(biq), biq["mos"].double().numpy())
        rates = over_rates(pred(nat_te), nat_te["rows"])
        name = f"shipped attiqa-default: {part}"
        out[name] = {"clive_srocc": c["srocc"], "clive_plcc": c["plcc"], "biq_srocc": b["srocc"],
                     "biq_plcc": b["plcc"], **rates, "clive_note": "split 0 only"}  # fmt: skip
        print(f"{name:40s} CLIVE(split0) {c['srocc']:.3f}/{c['plcc']:.3f}  "
              f"BIQ {b['srocc']:.3f}/{b['plcc']:.3f}  " + rate_text(rates), flush=True)  # fmt: skip
    return out


S23 = [  # session 23 (issue 20): written before any of them was run; decision rule in the card
    Candidate("s23 pairs dw>=3 mu0.2 m0.1", "dw_from3", mu=0.2),
    Candidate("s23 pairs dw>=3 mu0.5 m0.1", "dw_from3", mu=0.5),
    Candidate("s23 pairs dw>=3 mu0.3 m0.05", "dw_from3", mu=0.3, margin=0.05),
    Candidate("s23 pairs dw>=3 mu1 m0.05", "dw_from3", mu=1.0, margin=0.05),
    Candidate("s23 pairs dw>=3 mu0.3 m0.2", "dw_from3", mu=0.3, margin=0.2),
    Candidate("s23 pairs dw>=3 mu0.1 m0.2", "dw_from3", mu=0.1, margin=0.2),
    Candidate("s23 pairs dw>=3 mu0.3 m0.1 alpha x0.5", "dw_from3", mu=0.3, extra={"alpha_mult": 0.5}),
    Candidate("s23 pairs dw>=3 mu0.3 m0.1 alpha x2", "dw_from3", mu=0.3, extra={"alpha_mult": 2.0}),
    Candidate("s23 pairs110 dw>=3 mu0.3 m0.1", "dw_from3", mu=0.3, pairs_table="natural_train110x.csv"),
    Candidate("s23 pairs110 dw>=3 mu0.2 m0.1", "dw_from3", mu=0.2, pairs_table="natural_train110x.csv"),
    Candidate("s23 pairs110 dw>=3 mu0.5 m0.1", "dw_from3", mu=0.5, pairs_table="natural_train110x.csv"),
    Candidate(
        "s23 pairs110 dw>=3 mu0.3 m0.05", "dw_from3", mu=0.3, margin=0.05, pairs_table="natural_train110x.csv"
    ),
    Candidate("s23 pairs110 dw mu0.3 m0.1", "dw", mu=0.3, pairs_table="natural_train110x.csv"),
    # split 0 only (--splits 1): the shipped MLP's 0.3 share kept, the hinge on the combined MOS
    Candidate(
        "s23 pairs-on-combined dw>=3 mu0.3 m0.1 + 0.3 MLP",
        "dw_from3",
        mu=0.3,
        extra={"mlp_weight": 0.3, "pairs_on_combined": True},
    ),
    # added after the first results (01:40): the stage statistics (free at scoring) beside the late taps
    Candidate("s23 pairs110 ms+dw>=3 mu0.5 m0.1", "ms+dw_from3", mu=0.5, pairs_table="natural_train110x.csv"),
    Candidate("s23 pairs110 ms+dw>=3 mu0.3 m0.1", "ms+dw_from3", mu=0.3, pairs_table="natural_train110x.csv"),
    # split 0 only: the shipped attribute heads' five outputs as extra ridge inputs (their share in the MOS)
    Candidate("s23 pairs dw>=3+attr mu0.3 m0.1", "dw_from3+attr", mu=0.3),
    Candidate("s23 ridge dw>=3+attr", "dw_from3+attr"),
    Candidate(
        "s23 pairs-on-combined dw>=3 mu0.5 m0.1 + 0.3 MLP",
        "dw_from3",
        mu=0.5,
        extra={"mlp_weight": 0.3, "pairs_on_combined": True},
    ),
    Candidate(
        "s23 pairs110-on-combined dw>=3 mu0.3 m0.1 + 0.3 MLP",
        "dw_from3",
        mu=0.3,
        pairs_table="natural_train110x.csv",
        extra={"mlp_weight": 0.3, "pairs_on_combined": True},
    ),
]

CANDIDATES = [
    Candidate("ridge dw (shipped ridge, LOO alpha)", "dw"),
    Candidate("ridge ms (stage stats only)", "ms"),
    Candidate("ridge dw blocks>=10 (cheap taps)", "dw_from10"),
    Candidate("ridge dw blocks>=6", "dw_from6"),
    Candidate("pairs dw mu0.3 m0.1 + 0.3 shipped MLP", "dw", mu=0.3, extra={"mlp_weight": 0.3}),
    Candidate("pairs dw>=3 mu0.3 m0.1 + 0.3 shipped MLP", "dw_from3", mu=0.3, extra={"mlp_weight": 0.3}),
    Candidate("ridge dw + 0.3 shipped MLP", "dw", extra={"mlp_weight": 0.3}),
    Candidate("ridge dw>=3 + 0.3 shipped MLP", "dw_from3", extra={"mlp_weight": 0.3}),
    Candidate("pairs dw>=3 mu1 m0.1 + 0.3 shipped MLP", "dw_from3", mu=1.0, extra={"mlp_weight": 0.3}),
    Candidate("pairs dw>=3 mu3 m0.1 + 0.3 shipped MLP", "dw_from3", mu=3.0, extra={"mlp_weight": 0.3}),
    Candidate("pairs dw>=3 mu1 m0.1 + 0.15 shipped MLP", "dw_from3", mu=1.0, extra={"mlp_weight": 0.15}),
    Candidate(
        "pairs dw>=3 mu1 m0.2 + 0.3 shipped MLP", "dw_from3", mu=1.0, margin=0.2, extra={"mlp_weight": 0.3}
    ),
    Candidate("pairs dw>=3 mu1 m0.1", "dw_from3", mu=1.0),
    Candidate("pairs dw>=3 mu0.3 m0.1 alpha 3e4", "dw_from3", mu=0.3, alpha=3e4),
    Candidate("ridge dw blocks>=1", "dw_from1"),
    Candidate("ridge dw blocks>=3 (half the statistics' cost)", "dw_from3"),
    Candidate("ridge dw blocks>=5", "dw_from5"),
    Candidate("pairs dw>=3 mu0.3 m0.1", "dw_from3", mu=0.3),
    Candidate("pairs dw>=5 mu0.3 m0.1", "dw_from5", mu=0.3),
    Candidate("ridge ms + dw blocks>=10", "ms+dw_from10"),
    Candidate("ridge dw, alpha 3e4 (x10)", "dw", alpha=3e4),
    Candidate("ridge dw, alpha 3e5 (x100)", "dw", alpha=3e5),
    Candidate("ridge ms, alpha 1e3", "ms", alpha=1e3),
    Candidate("ridge ms, alpha 1e4", "ms", alpha=1e4),
    Candidate("linear on the 5 attribute outputs", "attr", alpha=1.0),
    Candidate("ridge ms + attributes", "ms+attr"),
    Candidate("pairs ms mu0.3 m0.1", "ms", mu=0.3),
    Candidate("pairs ms mu1 m0.1", "ms", mu=1.0),
    Candidate("pairs ms mu3 m0.1", "ms", mu=3.0),
    Candidate("pairs ms mu1 m0.2", "ms", mu=1.0, margin=0.2),
    Candidate("pairs dw mu0.3 m0.1", "dw", mu=0.3),
    Candidate("pairs dw mu1 m0.1", "dw", mu=1.0),
    Candidate("pairs dw mu3 m0.1", "dw", mu=3.0),
    Candidate("pairs ms+dw>=10 mu1 m0.1", "ms+dw_from10", mu=1.0),
    Candidate("pairs dw>=10 mu0.3 m0.1", "dw_from10", mu=0.3),
    Candidate("pairs dw>=10 mu1 m0.1", "dw_from10", mu=1.0),
    Candidate("pairs dw>=10 mu3 m0.1", "dw_from10", mu=3.0),
    Candidate("pairs dw>=10 mu1 m0.05", "dw_from10", mu=1.0, margin=0.05),
    Candidate("pairs dw>=10 mu0.3 m0.1 alpha 3e4", "dw_from10", mu=0.3, alpha=3e4),
    Candidate("pairs dw mu0.3 m0.1 alpha 3e4", "dw", mu=0.3, alpha=3e4),
    Candidate("pairs dw>=10 mu0.3 m0.1 alpha 1e4", "dw_from10", mu=0.3, alpha=1e4),
    # split 0 only (--splits 1): a correction to the shipped ridge, which was fitted on split 0's photos
    Candidate("shipped ridge + pairs correction mu0.3", "dw", mu=0.3, extra={"prior": "shipped"}),
    Candidate("shipped ridge + pairs correction mu1", "dw", mu=1.0, extra={"prior": "shipped"}),
    Candidate(
        "shipped ridge + pairs correction mu0.3 alpha 3e4",
        "dw",
        mu=0.3,
        alpha=3e4,
        extra={"prior": "shipped"},
    ),
]
CANDIDATES += S23

if __name__ == "__main__":
    main()
