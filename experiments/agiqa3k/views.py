"""Which view and which ridge penalty for AGIQA-3k? Closed-form ridge on cached frozen Lite0 statistics.

Questions from issue 15 (session 22), each answered on the splits `attiqa bench single` makes (10 random
80/20 image splits and 10 prompt-grouped ones, seeds 0-9), median SROCC / PLCC of ``mos_quality``:

- view: AGIQA-3k images are 512×512; the product's view resizes them to 500 px and averages five 320-px crops.
  Does the whole image at its native 512 px (one view, no resize) carry more, alone or next to the crops?
- penalty: the product picks the ridge penalty by leave-one-out error over the training images; images of one
  prompt are near-duplicates in content, so leave-one-out may favour a weak penalty. ``--alpha-cv prompt``
  picks it by 5-fold prompt-grouped cross-validation inside the training part instead (never the test part).
- feature families: depthwise statistics, stage statistics, both with each family scaled to equal total
  variance (so 19,200 depthwise columns do not drown 2,848 stage columns).

Features are standardised once over all images (no labels), as ``recipes.py --dual``; every split is solved
from one Gram matrix. The whole-image statistics are cached like the product's (``$ATTIQA_CACHE/features``,
view ``whole``), so a second run costs seconds.

    python experiments/agiqa3k/views.py ../shared/data/agiqa3k-dev
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from attiqa.evaluation.metrics import correlations
from attiqa.models import create_backbone
from attiqa.models.ridge_head import signed_power
from attiqa.models.transforms import CenterCropTest
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features
from attiqa.training.ridge import ALPHAS

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cache_features import load_features, prompts_and_mos, write_csv  # noqa: E402
from recipes import split_sets, summarise  # noqa: E402


class WholeImage(CenterCropTest):
    """The whole image as one view (1, 3, H, W): no resize, a centre crop of the full 512 px."""

    def __call__(self, img):  # type: ignore[override]
        return super().__call__(img).unsqueeze(0)


def whole_features(csv: Path, size: int, taps: str) -> torch.Tensor:
    bb = create_backbone("efficientnet_lite0_ms")
    tf = WholeImage(bb.mean, bb.std, None, size)
    view = {"kind": "whole", "crop": size, "mean": list(bb.mean), "std": list(bb.std)}
    data = MosDataset(csv, None, tf, on_error="skip")
    net = bb if taps == "stages" else bb.tap_view(taps)
    x, ok = cached_features(net, data, view, batch_size=4, progress=True)
    if not bool(ok.all()):
        raise SystemExit(f"{csv}: {int((~ok).sum())} images could not be read")
    return x[:, 0]


def research_setup(root: Path, out: Path) -> tuple[list[str], torch.Tensor, dict[str, list], Path]:
    """(prompts, MOS, the bench's 10 + 10 splits, the all-images CSV in ``out``) of an AGIQA-3k folder:
    what every ridge study here starts from."""
    prompts, y = prompts_and_mos(root)
    return prompts, y, split_sets(prompts, 10), write_csv(root, out / "all.csv")


def standardise(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return (x - x.mean(0)) / x.std(0, unbiased=False).clamp_min(1e-12)


def _centred_eig(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    one = torch.full((k.shape[0],), 1.0 / k.shape[0], dtype=k.dtype)
    kc = k - one @ k - (k @ one)[:, None] + one @ k @ one
    s2, u = torch.linalg.eigh(kc)
    return s2.clamp_min(0), u, one


def _predict(gram: torch.Tensor, y: torch.Tensor, tr: torch.Tensor, te: torch.Tensor, alpha: float):
    k = gram[tr][:, tr]
    s2, u, one = _centred_eig(k)
    yc = y[tr] - y[tr].mean()
    dual = u @ ((u.T @ yc) / (s2 + alpha))
    kte = gram[te][:, tr]
    kte_c = kte - (kte @ one)[:, None] - (one @ k)[None, :] + one @ k @ one
    return kte_c @ dual + y[tr].mean()


def choose_alpha(gram, y, tr, how: str, groups: list[str]) -> float:
    """Leave-one-out (the product's rule) or 5-fold grouped CV inside ``tr``."""
    return cv_error(gram, y, tr, how, groups)[0]


def cv_error(gram, y, tr, how: str, groups: list[str]) -> tuple[float, float]:
    """(best alpha, its mean squared CV error) by leave-one-out or 5-fold grouped CV inside ``tr``."""
    if how == "loo":
        s2, u, _ = _centred_eig(gram[tr][:, tr])
        yc = y[tr] - y[tr].mean()
        uty = u.T @ yc
        errs = []
        for alpha in ALPHAS:
            shrink = s2 / (s2 + alpha)
            loo = (yc - u @ (shrink * uty)) / (1.0 - ((u**2) @ shrink + 1.0 / len(tr)))
            errs.append(float((loo**2).mean()))
        j = min(range(len(ALPHAS)), key=errs.__getitem__)
        return ALPHAS[j], errs[j]
    names = sorted({groups[int(i)] for i in tr})
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(names), generator=gen).tolist()
    fold_of = {g: k % 5 for k, g in zip(order, names, strict=True)}
    fold = torch.tensor([fold_of[groups[int(i)]] for i in tr])
    errs = torch.zeros(len(ALPHAS), dtype=torch.float64)
    for f in range(5):
        a, b = tr[fold != f], tr[fold == f]
        k = gram[a][:, a]
        s2, u, one = _centred_eig(k)
        yc = y[a] - y[a].mean()
        uty = u.T @ yc
        kte = gram[b][:, a]
        kte_c = kte - (kte @ one)[:, None] - (one @ k)[None, :] + one @ k @ one
        for j, alpha in enumerate(ALPHAS):
            pred = kte_c @ (u @ (uty / (s2 + alpha))) + y[a].mean()
            errs[j] += float(((pred - y[b]) ** 2).sum())
    return ALPHAS[int(errs.argmin())], float(errs.min()) / len(tr)


def rbf(z: torch.Tensor, gamma: float) -> torch.Tensor:
    """An RBF kernel on standardised features, ``exp(-gamma * |a - b|^2 / F)``, scaled to the linear
    kernel's trace so that the same alpha grid applies."""
    g = z @ z.T
    d = torch.diag(g)
    k = torch.exp(-gamma * (d[:, None] + d[None, :] - 2 * g).clamp_min(0) / z.shape[1])
    return k * (torch.trace(g) / torch.trace(k))


def run(z: torch.Tensor, y: torch.Tensor, sets, how: str, groups: list[str],
        kernel: float | tuple[float, ...] | None = None) -> dict[str, list[dict]]:  # fmt: skip
    """``kernel``: None = linear; a gamma = RBF; a tuple of gammas = RBF with gamma (and alpha) chosen by the
    same CV inside each training part."""
    if kernel is None:
        grams = {None: z @ z.T}
    else:
        grams = {g: rbf(z, g) for g in (kernel if isinstance(kernel, tuple) else (kernel,))}
    out = {}
    for kind, splits in sets.items():
        rows = []
        for sp in splits:
            tr, te = torch.tensor(sp.train), torch.tensor(sp.test)
            fits = {g: cv_error(gram, y, tr, how, groups) for g, gram in grams.items()}
            gamma = min(fits, key=lambda g: fits[g][1]) if len(fits) > 1 else next(iter(fits))
            alpha = fits[gamma][0]
            m = correlations(_predict(grams[gamma], y, tr, te, alpha).numpy(), y[te].numpy())
            rows.append({"split": sp.name, "alpha": alpha, "gamma": gamma, "srocc": m["srocc"],
                         "plcc": m["plcc"]})  # fmt: skip
        out[kind] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--size", type=int, default=512, help="whole-image view: centre crop of this size")
    ap.add_argument("--out", type=Path, default=Path("runs/agiqa3k/research"))
    ap.add_argument("--only", default="", help="run only recipes whose name contains one of these")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prompts, y, sets, csv = research_setup(a.root, a.out)
    feats, stats = load_features(csv, progress=False)
    crops_dw = standardise(signed_power(stats[:, :5], 0.5).mean(1))
    crops_st = standardise(signed_power(feats[:, :5], 0.5).mean(1))

    def fam(*xs: torch.Tensor) -> torch.Tensor:  # each family the total variance of the first (alpha grid)
        return torch.cat([x * (xs[0].shape[1] / x.shape[1]) ** 0.5 for x in xs], 1)

    recipes = {
        "crops dw sqrt, LOO alpha (the product)": (lambda: crops_dw, "loo"),
        "crops dw sqrt, prompt-grouped CV alpha": (lambda: crops_dw, "group"),
        "crops dw + stages, equal family weight, LOO": (lambda: fam(crops_dw, crops_st), "loo"),
        "crops dw sqrt, RBF kernel ridge gamma 0.5, grouped CV": (lambda: crops_dw, "group", 0.5),
        "crops dw sqrt, RBF kernel ridge gamma 0.1, grouped CV": (lambda: crops_dw, "group", 0.1),
        "crops dw sqrt, RBF kernel ridge, gamma in 0.25-4 and alpha by grouped CV": (
            lambda: crops_dw,
            "group",
            (0.25, 0.5, 1.0, 2.0, 4.0),
        ),
        "crops dw + stages, equal family weight, grouped CV": (lambda: fam(crops_dw, crops_st), "group"),
    }
    whole: dict[str, torch.Tensor] = {}

    def w(taps: str) -> torch.Tensor:
        if taps not in whole:
            whole[taps] = standardise(signed_power(whole_features(csv, a.size, taps), 0.5))
        return whole[taps]

    recipes.update({
        f"whole {a.size} px dw sqrt, LOO": (lambda: w("depthwise"), "loo"),
        f"whole {a.size} px dw sqrt, grouped CV": (lambda: w("depthwise"), "group"),
        f"whole {a.size} px dw + crops dw, equal weight, grouped CV": (lambda: fam(w("depthwise"), crops_dw),
                                                                          "group"),
        f"whole {a.size} px dw+stages + crops dw+stages, grouped CV": (
            lambda: fam(w("depthwise"), w("stages"), crops_dw, crops_st), "group"),
    })  # fmt: skip
    target = a.out / "views.json"
    results = json.loads(target.read_text()) if target.is_file() else {}
    for name, (build, how, *kernel) in recipes.items():
        if a.only and not any(o in name for o in a.only.split(",")):
            continue
        per = run(build(), y, sets, how, prompts, *kernel)
        s = summarise(per)
        alphas = sorted({r["alpha"] for rows in per.values() for r in rows})
        gammas = sorted({r["gamma"] for rows in per.values() for r in rows if r.get("gamma") is not None})
        results[name] = {"summary": s, "splits": per}
        print(f"{name:58s} " + "  ".join(f"{k}: {v['srocc']:.4f} / {v['plcc']:.4f}" for k, v in s.items())
              + f"  alphas {alphas[0]:.3g}-{alphas[-1]:.3g}" + (f" gammas {gammas}" if gammas else ""),
              flush=True)  # fmt: skip
        a.out.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
