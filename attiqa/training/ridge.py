"""Fitting the ridge MOS head after fine-tuning (ours; the head: :mod:`attiqa.models.ridge_head`).

Closed form, no epochs: the tap statistics of the five test crops of every training photo (feature cache,
so a second fit or another split costs nothing), their signed power, averaged over the crops, are
standardised; ridge regression on the normalised MOS with the regularisation chosen by exact
leave-one-out error over :data:`ALPHAS` (the efficient form: one SVD, every alpha and every left-out photo
from it). The crops' mean is the right training input: the head is linear, so the mean of its per-crop
predictions — what five-crop scoring reports — is its prediction on the mean.

Then both checkpoints of the run (``last`` and ``best``) get the head and their cards the validation
metrics of the combined MOS (and the MLP's alone, for comparison); the result's last history entry is the
combined model, which is what ``attiqa bench`` reports.

Ranking pairs (ours, issue 20; RankIQA-style): with ``finetune.ridge_pairs`` (a CSV of image pairs
``better,worse``, e.g. an unlabelled photo and its over-processed or degraded edits), the fit adds a
squared hinge ``mu * sum max(0, m - (z_better - z_worse) w)^2`` to the ridge objective
(:func:`fit_ridge_pairs`). The MOS rows' alpha is still chosen by leave-one-out; the pairs then teach
the head that "more" (saturation, contrast, sharpening) is not always better.

Guard (ours, issue 20; not shipped): with ``finetune.ridge_guard`` = lambda > 0 the head's MOS becomes
``r - lambda * max(0, g)`` (:mod:`attiqa.models.ridge_head`), g an "edit detector" fitted by :func:`fit_guard`
(:func:`fit_ridge` itself, leave-one-out alpha) on r's standardised statistics to -1 on the training photos
and ``ridge_pairs``' originals, +1 on its edits: the gated head of ``experiments/generalisation/
guard_screen.py`` (docs/default_model.md, stop 24) as a product option.

Extra MOS tables (ours, issue 20; the per-dataset scale is the idea of LIQE [Zhang et al. 2023] and UNIQUE
[Zhang et al. 2021], here in its simplest affine form): with ``finetune.ridge_extra`` (e.g. AGIQA-3k next
to CLIVE), every image of each extra table joins the same closed-form fit as an extra row, its MOS mapped
onto the main training targets' scale (matched mean and sd), each table weighted to a total ``share`` of
the main rows (:func:`fit_ridge_rows`). Standardisation, intercept and alpha stay the main rows' own.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from attiqa.config import FinetuneConfig
from attiqa.datasets.readers import read_csv
from attiqa.errors import AttiqaError
from attiqa.evaluation.metrics import correlations
from attiqa.io.batching import default_num_workers
from attiqa.io.checkpoints import read_card
from attiqa.models import AttiqaModel, Backbone, load_model, save_model
from attiqa.models.ridge_head import RidgeHead, signed_power
from attiqa.training import distributed as D
from attiqa.training.data import ImageTableDataset, MosDataset, MosSplit
from attiqa.training.mos import TEST_VIEWS, cached_mos_trainer, predict_cached
from attiqa.training.sources import five_crop_views, shared_cached_features
from attiqa.training.trainer import one_thread

ALPHAS = tuple(10.0 ** (k / 4) for k in range(25))  # 1 .. 1e6 on standardised features
WEIGHTS = tuple(k / 10 for k in range(11))  # the ridge's share of the MOS, when cross-validated
CV_FOLDS = 5


@dataclass
class RidgeFit:
    center: torch.Tensor
    scale: torch.Tensor
    coef: torch.Tensor
    intercept: float
    alpha: float
    loo_rmse: float

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """Transformed features ``x`` (N, F) on this fit's scale, z, in ``x``'s float precision (at least
        float32): what the coefficients and a guard's detector (:class:`GuardFit`) apply to."""
        x = x if x.dtype == torch.float64 else x.float()
        return (x - self.center.to(x.dtype)) / self.scale.to(x.dtype)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions for already transformed features ``x`` (N, F)."""
        return self.standardise(x.float()) @ self.coef + self.intercept


def fit_ridge(x: torch.Tensor, y: torch.Tensor, alphas: tuple[float, ...] = ALPHAS,
              standardize: bool = True) -> RidgeFit:  # fmt: skip
    """Ridge regression of ``y`` (N,) on standardised ``x`` (N, F) with an unpenalised intercept; alpha
    minimises the exact leave-one-out squared error (hat-matrix form; computed in float64). Without
    ``standardize`` the columns are only centred (``x`` is already on the scale wanted: :func:`fit_guard`)."""
    x, y = x.double(), y.double()
    n = x.shape[0]
    if n < 3 or x.shape[1] < 1:
        raise ValueError(f"ridge needs at least 3 photos and 1 feature, got {tuple(x.shape)}")
    center = x.mean(0)
    scale = x.std(0, unbiased=False)
    # A constant channel's statistics vary only by float32 rounding (spread ~1e-8 of the value): standardised,
    # that noise would get a weight, and any change of the network's arithmetic (an fp16 export, other
    # kernels) would move the MOS by thousands of such spreads. Treated as constant: z ~ 0, no weight.
    ones = torch.ones_like(scale)
    scale = torch.where(scale > 1e-6 * center.abs() + 1e-12, scale, ones) if standardize else ones
    z = (x - center) / scale
    y_mean = y.mean()
    yc = y - y_mean
    u, s2 = _left_singular(z)
    uty = u.T @ yc
    best: tuple[float, float] | None = None
    for alpha in alphas:
        shrink = s2 / (s2 + alpha)
        fitted = u @ (shrink * uty)
        leverage = (u**2) @ shrink + 1.0 / n  # + the intercept's share
        loo = (yc - fitted) / (1.0 - leverage)
        err = float((loo**2).mean())
        if best is None or err < best[1]:
            best = (alpha, err)
    assert best is not None
    alpha = best[0]
    coef = z.T @ (u @ (uty / (s2 + alpha)))  # = (z'z + alpha I)^-1 z'y, as u spans z's columns
    return RidgeFit(center.float(), scale.float(), coef.float(), float(y_mean), alpha, math.sqrt(best[1]))


@dataclass
class ExtraRows:
    """An extra MOS table for :func:`fit_ridge_rows`: transformed features (M, F), its MOS on its own
    scale (M,), and its total weight against the main rows."""

    x: torch.Tensor
    mos: torch.Tensor
    share: float


def affine_to(mos: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mos`` mapped affinely onto ``target``'s scale: the same mean and (unbiased) sd. A table's ranking is
    kept, its own scale (0-1, 1-5, 0-100) dropped."""
    mos, target = mos.double(), target.double()
    sd = mos.std()
    if not sd > 0:
        raise ValueError("an extra MOS table needs at least two different MOS values")
    return (mos - mos.mean()) / sd * target.std() + target.mean()


def fit_ridge_rows(
    x: torch.Tensor,
    y: torch.Tensor,
    extra: tuple[ExtraRows, ...] | list[ExtraRows] = (),
    better: torch.Tensor | None = None,
    worse: torch.Tensor | None = None,
    pair_weight: float = 0.0,
    margin: float = 0.1,
    alphas: tuple[float, ...] = ALPHAS,
    rounds: int = 30,
) -> RidgeFit:
    """:func:`fit_ridge` on the main rows ``x`` (N, F), ``y`` (N,), plus extra MOS tables and ranking
    pairs (ours, issue 20). Minimises, in closed form per active set,

        |Z w + b - y|^2 + sum_t c_t^2 |Z_t w + b - A_t(y_t)|^2
                        + s^2 * sum_{active pairs} (m - (z_better - z_worse) w)^2 + alpha |w|^2

    ``A_t`` = :func:`affine_to` (table t's MOS onto the main targets' mean and sd), ``c_t^2 = share_t * N /
    M_t`` (the table's total weight = share x the main rows), ``s^2 = pair_weight * N / P``. The pairs are a
    squared hinge: a pair ranked by at least the margin ``m`` drops out of the active set, the fit is redone
    until the set stops changing (or ``rounds``).

    Ours, stated exactly: the standardisation (Z = (x - center) / scale), the intercept ``b`` (the main
    targets' mean) and alpha all come from the main rows alone — alpha is :func:`fit_ridge`'s exact
    leave-one-out choice on the main rows with the extra rows and pairs absent; they are added afterwards
    at that alpha (no leave-one-out over them). Without extra rows and pairs (or all weights 0) the result
    is exactly :func:`fit_ridge`'s."""
    base = fit_ridge(x, y, alphas)
    extra = [e for e in extra if e.share > 0 and len(e.x)]
    use_pairs = better is not None and worse is not None and pair_weight > 0 and len(better) > 0
    if not extra and not use_pairs:
        return base
    for e in extra:
        if e.x.shape[1:] != x.shape[1:] or len(e.x) != len(e.mos):
            raise ValueError(f"extra rows {tuple(e.x.shape)} / MOS {tuple(e.mos.shape)} do not match "
                             f"{tuple(x.shape)}")  # fmt: skip
    if use_pairs:
        assert better is not None and worse is not None
        if better.shape != worse.shape or better.shape[1:] != x.shape[1:]:
            raise ValueError(f"pair features {tuple(better.shape)} / {tuple(worse.shape)} do not match "
                             f"{tuple(x.shape)}")  # fmt: skip
    center, scale = base.center.double(), base.scale.double()
    n = x.shape[0]
    std = lambda v: (v.double() - center) / scale  # noqa: E731
    blocks = [std(x), *(std(e.x) for e in extra)]
    y = y.double()
    yc = y - y.mean()
    weights = [torch.ones(n, dtype=torch.float64)]
    targets = [yc]
    for e in extra:
        w = math.sqrt(e.share * n / len(e.x))
        weights.append(torch.full((len(e.x),), w, dtype=torch.float64))
        targets.append(w * (affine_to(e.mos, y) - y.mean()))
    fixed = sum(len(b) for b in blocks)  # rows always in the fit
    npairs = 0
    if use_pairs:
        assert better is not None and worse is not None
        npairs = len(better)
        blocks.append((better.double() - worse.double()) / scale)
    z = torch.cat(blocks)
    gram = z @ z.T  # every row's products once; each active set only indexes it
    c_fixed, t_fixed = torch.cat(weights), torch.cat(targets)
    s = math.sqrt(pair_weight * n / npairs) if use_pairs else 0.0
    active = torch.ones(npairs, dtype=torch.bool)
    coef = base.coef.double()
    for _ in range(rounds):
        on = torch.nonzero(active).flatten()
        rows = torch.cat([torch.arange(fixed), fixed + on])
        c = torch.cat([c_fixed, torch.full((len(on),), s, dtype=torch.float64)])
        target = torch.cat([t_fixed, torch.full((len(on),), s * margin, dtype=torch.float64)])
        k = c[:, None] * gram[rows][:, rows] * c[None, :]
        k.diagonal().add_(base.alpha)
        coef = z[rows].T @ (c * torch.linalg.solve(k, target))  # ridge in its dual (Gram) form
        if not use_pairs:
            break
        now = (z[fixed:] @ coef) < margin
        if torch.equal(now, active):
            break
        active = now
    return RidgeFit(base.center, base.scale, coef.float(), base.intercept, base.alpha, base.loo_rmse)


def fit_ridge_pairs(
    x: torch.Tensor,
    y: torch.Tensor,
    better: torch.Tensor,
    worse: torch.Tensor,
    weight: float,
    margin: float,
    alphas: tuple[float, ...] = ALPHAS,
    rounds: int = 30,
) -> RidgeFit:
    """:func:`fit_ridge_rows` with ranking pairs only (``weight`` = the pairs' total share against the N
    MOS rows; ``better``/``worse`` are transformed features (P, F))."""
    return fit_ridge_rows(x, y, (), better, worse, weight, margin, alphas, rounds)


@dataclass
class GuardFit:
    """The guard's detector on a ridge's standardised statistics z: ``g = z @ coef + bias``."""

    coef: torch.Tensor
    bias: float
    alpha: float
    loo_rmse: float


def fit_guard(fit: RidgeFit, clean: torch.Tensor, edited: torch.Tensor) -> GuardFit:
    """The edit detector for ``fit``'s head: :func:`fit_ridge` of -1 (``clean`` rows, transformed features)
    and +1 (``edited`` rows) on ``fit``'s standardised statistics z (the head standardises once for both).

    Not standardised again on its own rows (ours; the stop-24 screening did, and it broke in the real
    scorer): a statistic nearly constant on the MOS photos and the pair images (a dead channel, spread ~1e-9)
    would get a weight ~1e9, and a photo whose crop moves it by 1e-4 got a MOS of -7 million. On r's z such a
    column stays tiny, so the ridge penalty keeps its weight small."""
    if len(clean) < 1 or len(edited) < 1:
        raise ValueError(f"the guard needs clean and edited rows, got {len(clean)} and {len(edited)}")
    z = fit.standardise(torch.cat([clean, edited]).double())
    # Nor may it weight a nearly dead column that r's fit kept (spread < 1e-3 of the median column): its z is
    # float noise, amplified by the signed root, that differs between the cached training path and the scorer;
    # a detector leaning on it scores differently on the two (docs/default_model.md, "Stop 26").
    z[:, fit.scale.double() < 1e-3 * fit.scale.double().median()] = 0.0
    target = torch.cat([-torch.ones(len(clean)), torch.ones(len(edited))]).double()
    g = fit_ridge(z, target, standardize=False)
    coef = g.coef.double()
    bias = g.intercept - float(g.center.double() @ coef)
    return GuardFit(coef.float(), bias, g.alpha, g.loo_rmse)


def read_pairs_csv(path: str | Path) -> tuple[list[Path], torch.Tensor]:
    """A ranking-pair table with columns ``better,worse`` (image paths, relative ones to the CSV's folder):
    the distinct images and a (P, 2) index tensor into them."""
    path = Path(path)
    if not path.is_file():
        raise AttiqaError(f"{path}: ranking-pair CSV not found (finetune.ridge_pairs)")
    table = read_csv(path)  # the one CSV reader: any case of the names, duplicate columns, shifted rows
    better, worse = table.column("better", required=False), table.column("worse", required=False)
    if better is None or worse is None:
        raise AttiqaError(f"{path}: a ranking-pair CSV needs columns better,worse "
                          f"(found: {', '.join(table.fields) or 'none'})")  # fmt: skip
    rows = [{"better": str(r.get(better) or ""), "worse": str(r.get(worse) or "")} for r in table.rows]
    if not rows:
        raise AttiqaError(f"{path}: no ranking pairs")
    root = path.resolve().parent
    images: dict[Path, int] = {}
    pairs = []
    for r in rows:
        ends = [Path(r[c]) if Path(r[c]).is_absolute() else root / r[c] for c in ("better", "worse")]
        pairs.append([images.setdefault(e, len(images)) for e in ends])
    return list(images), torch.tensor(pairs, dtype=torch.long)


def _left_singular(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left singular vectors of ``z`` with non-zero singular values, and their squares, from the
    eigendecomposition of the smaller Gram matrix (e.g. 19,200 features x 700 photos: much faster than an
    SVD of ``z``; docs/default_model.md, "Implementation speed notes")."""
    n, f = z.shape
    if n <= f:
        s2, u = torch.linalg.eigh(z @ z.T)
    else:
        s2, v = torch.linalg.eigh(z.T @ z)
    keep = s2 > s2.max() * 1e-12
    s2 = s2[keep]
    u = u[:, keep] if n <= f else z @ v[:, keep] / s2.sqrt()
    return u, s2


def ridge_head_from_fit(fit: RidgeFit, taps: str, power: float, weight: float, guard: GuardFit | None = None,
                        lam: float = 0.0) -> RidgeHead:  # fmt: skip
    """The head of ``fit``; with ``guard`` and ``lam`` > 0 its gated guard too."""
    lam = lam if guard is not None else 0.0
    head = RidgeHead(taps, fit.coef.numel(), power=power, weight=weight, alpha=fit.alpha, guard=lam)
    head.center.copy_(fit.center)
    head.scale.copy_(fit.scale)
    head.coef.copy_(fit.coef)
    head.intercept.fill_(fit.intercept)
    if lam > 0:
        assert guard is not None
        head.guard_coef.copy_(guard.coef)
        head.guard_bias.fill_(guard.bias)
    return head


def add_ridge_head(
    cfg: FinetuneConfig,
    model: AttiqaModel,
    init_model: AttiqaModel | None,
    split: MosSplit,
    stage_dir: Path,
    history: list[dict[str, Any]],
    progress: bool = True,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Fit the ridge head on the run's training split, attach it to ``model`` (the last epoch's) and to the
    run's ``best`` checkpoint, and rewrite both; returns (best checkpoint's combined metrics, history with
    the combined model as its last entry). ``init_model`` (the model before MOS training) is needed only
    to choose the weight by cross-validation (``cfg.ridge_weight`` None)."""
    taps = cfg.ridge_taps
    if taps is None:
        raise AttiqaError("the ridge head needs finetune.ridge_taps")
    backbone = model.backbone
    view_tf, view = five_crop_views(backbone, cfg.resize_shorter, cfg.crop_size)
    data = split.dataset(view_tf, on_error="skip")
    n_workers = default_num_workers() if cfg.num_workers is None else cfg.num_workers
    kw: dict[str, Any] = {
        "batch_size": max(1, cfg.batch_size // 5),
        "workers": n_workers,
        "progress": progress,
    }
    stats, ok_stats = shared_cached_features(backbone.tap_view(cfg.ridge_taps), data, view,
                                             cfg.feature_cache_dir, **kw)  # fmt: skip
    feats, ok_feats = shared_cached_features(backbone, data, view, cfg.feature_cache_dir, **kw)  # the MLP's
    valid = ok_stats & ok_feats
    tr = torch.tensor([i for i in split.train if valid[i]], dtype=torch.long)
    va = torch.tensor([i for i in split.val if valid[i]], dtype=torch.long)
    if len(tr) < 3 * CV_FOLDS:
        raise AttiqaError(f"{split.source}: too few readable training photos for the ridge head ({len(tr)})")
    x = signed_power(stats[:, :TEST_VIEWS], cfg.ridge_power).mean(1)
    target01 = model.mos_to_unit_scale(split.mos.float())
    fitter, fit_card, ranked, edits = ridge_fitter(cfg, backbone, kw)
    fit = fitter(x[tr], target01[tr])
    card_ridge: dict[str, Any] = {"loo_rmse_unit_scale": fit.loo_rmse, "n_train": len(tr), **fit_card}
    if ranked is not None:
        card_ridge["pairs"] = {**fit_card["pairs"], "ranked_train": ranked(fit)}
    guard = None
    if cfg.ridge_guard > 0:
        assert edits is not None  # ridge_fitter reads the pair table whenever the guard is on
        guard = fit_guard(fit, torch.cat([x[tr], edits[0]]), edits[1])
    weight = cfg.ridge_weight
    if weight is None:
        if init_model is None:
            raise AttiqaError("ridge_weight: choosing it needs the model before MOS training")
        weight, card_ridge["weight_cv"] = choose_ridge_weight(cfg, model, init_model, feats, x, tr, target01,
                                                              fitter)  # fmt: skip

    def head() -> RidgeHead:
        return ridge_head_from_fit(fit, taps, cfg.ridge_power, weight, guard, cfg.ridge_guard)

    if guard is not None and edits is not None:
        gated = head()  # the scorer's own g (RidgeHead.detector), here on the crop means

        def opened(v: torch.Tensor) -> float:
            return float((gated.detector(fit.standardise(v)) > 0).double().mean())

        card_ridge["guard"] = {"lambda": cfg.ridge_guard, "alpha": guard.alpha, "loo_rmse": guard.loo_rmse,
                               "clean": len(tr) + len(edits[0]), "edited": len(edits[1]),
                               "open_train": opened(x[tr]), "open_edits": opened(edits[1])}  # fmt: skip

    def val_metrics(m: AttiqaModel) -> tuple[dict[str, float], dict[str, float]]:
        target = split.mos[va].double().numpy()
        return tuple(  # type: ignore[return-value]
            correlations(m.mos_to_dataset_scale(predict_cached(m, feats, va, s)).double().numpy(), target)
            for s in (stats, None)
        )

    ridge = model.attach_ridge(head())
    card_ridge = {**ridge.card(), **card_ridge}
    metrics, mlp_metrics = val_metrics(model)
    history = [*history, {"epoch": history[-1]["epoch"] if history else 0, "ridge": True, **metrics}]
    best_metrics = metrics
    last_path, best_path = stage_dir / "last.safetensors", stage_dir / "best.safetensors"
    if best_path.exists():
        best_model, best_card = load_model(best_path)
        best_model.attach_ridge(head())
        best_metrics, best_mlp = val_metrics(best_model)
    if D.is_main():
        card = read_card(last_path)
        ridge_info = {**card_ridge, "mlp_metrics": mlp_metrics}
        save_model(model, last_path, {**card, "metrics": metrics, "history": history, "ridge": ridge_info})
        if best_path.exists():
            save_model(best_model, best_path, {**best_card, "metrics": best_metrics,
                                               "ridge": {**card_ridge, "mlp_metrics": best_mlp}})  # fmt: skip
    D.barrier()
    if progress and D.is_main():
        from attiqa.progress import console

        console.log(
            f"ridge head ({cfg.ridge_taps}, alpha {fit.alpha:.3g}, weight {weight:.1f}): SROCC "
            f"{metrics['srocc']:.4f} PLCC {metrics['plcc']:.4f} (MLP alone {mlp_metrics['srocc']:.4f} / "
            f"{mlp_metrics['plcc']:.4f})"
        )
    return best_metrics, history


class RidgeFitter(NamedTuple):
    """What :func:`ridge_fitter` returns: the fit, its card entries (``pairs``, ``extra``), with ranking
    pairs the share of the training pairs a fitted head ranks the right way round, and with the guard the
    pair table's (originals, edits) features for its detector (:func:`fit_guard`)."""

    fit: Callable[[torch.Tensor, torch.Tensor], RidgeFit]
    card: dict[str, Any]
    ranked: Callable[[RidgeFit], float] | None = None
    edits: tuple[torch.Tensor, torch.Tensor] | None = None


def ridge_fitter(cfg: FinetuneConfig, backbone: Backbone, kw: dict[str, Any]) -> RidgeFitter:
    """The fit to use — :func:`fit_ridge`, or :func:`fit_ridge_rows` with ``cfg.ridge_pairs``' pairs and
    ``cfg.ridge_extra``'s tables, their images' features the same five-crop tap statistics as the MOS
    photos, from the same feature cache."""
    assert cfg.ridge_taps is not None  # a ridge head has taps: add_ridge_head refuses a config without
    view_tf, view = five_crop_views(backbone, cfg.resize_shorter, cfg.crop_size)
    taps = backbone.tap_view(cfg.ridge_taps)

    def transformed(data: ImageTableDataset) -> tuple[torch.Tensor, torch.Tensor]:
        stats, ok = shared_cached_features(taps, data, view, cfg.feature_cache_dir, **kw)
        return signed_power(stats[:, :TEST_VIEWS], cfg.ridge_power).mean(1), ok

    extra: list[ExtraRows] = []
    card: dict[str, Any] = {}
    for table in cfg.ridge_extra:
        if table.share <= 0:
            continue
        data = MosDataset(table.csv, table.image_root or None, view_tf, on_error="skip")
        xe, ok = transformed(data)
        if int(ok.sum()) < 2:
            raise AttiqaError(f"{table.csv}: fewer than two readable images (finetune.ridge_extra)")
        extra.append(ExtraRows(xe[ok], data.mos[ok], table.share))
        card.setdefault("extra", []).append({"csv": Path(table.csv).name, "n": int(ok.sum()),
                                             "skipped": int((~ok).sum()), "share": table.share,
                                             "map": "affine, matched mean and sd"})  # fmt: skip
    better = worse = None
    ranked: Callable[[RidgeFit], float] | None = None
    edits = None
    if cfg.ridge_pairs and (cfg.ridge_pair_weight > 0 or cfg.ridge_guard > 0):
        paths, pairs = read_pairs_csv(cfg.ridge_pairs)
        xp, ok = transformed(ImageTableDataset(paths, torch.zeros(len(paths)), view_tf, "skip"))
        keep = ok[pairs[:, 0]] & ok[pairs[:, 1]]
        if not keep.any():
            raise AttiqaError(f"{cfg.ridge_pairs}: no ranking pair has both images readable")
        pairs = pairs[keep]
        if cfg.ridge_guard > 0:  # an image ever ranked below another is an edit; the rest are originals
            edited = torch.zeros(len(paths), dtype=torch.bool)
            edited[pairs[:, 1]] = True
            used = torch.zeros(len(paths), dtype=torch.bool)
            used[pairs.flatten()] = True
            edits = (xp[used & ~edited], xp[edited])
    if cfg.ridge_pairs and cfg.ridge_pair_weight > 0:
        better, worse = xp[pairs[:, 0]], xp[pairs[:, 1]]

        def ranked_share(fit: RidgeFit) -> float:
            return float((fit.predict(better) > fit.predict(worse)).double().mean())

        ranked = ranked_share

        card["pairs"] = {"csv": Path(cfg.ridge_pairs).name, "n": int(len(pairs)),
                         "skipped": int((~keep).sum()), "weight": cfg.ridge_pair_weight,
                         "margin": cfg.ridge_pair_margin}  # fmt: skip
    if not card:
        return RidgeFitter(fit_ridge, {}, None, edits)

    def fitter(x: torch.Tensor, y: torch.Tensor) -> RidgeFit:
        return fit_ridge_rows(x, y, extra, better, worse, cfg.ridge_pair_weight, cfg.ridge_pair_margin)

    return RidgeFitter(fitter, card, ranked, edits)


def choose_ridge_weight(
    cfg: FinetuneConfig,
    model: AttiqaModel,
    init_model: AttiqaModel,
    feats: torch.Tensor,
    x: torch.Tensor,
    tr: torch.Tensor,
    target01: torch.Tensor,
    fitter: Callable[[torch.Tensor, torch.Tensor], RidgeFit] = fit_ridge,
) -> tuple[float, dict[str, Any]]:
    """The ridge's share of the MOS by :data:`CV_FOLDS`-fold cross-validation on the training split only:
    per fold, the MOS MLP is trained again from ``init_model`` exactly as the run trained it (cached
    features, ``cfg.epochs``) and the ridge refitted; the weight in :data:`WEIGHTS` with the least
    out-of-fold squared error wins. Costs ``CV_FOLDS`` more MLP trainings (seconds each, cached features)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    order = tr[torch.randperm(len(tr), generator=gen)]
    folds = order.tensor_split(CV_FOLDS)
    mlp_oof, ridge_oof = torch.empty(len(order)), torch.empty(len(order))
    start = 0
    with one_thread():
        for k, held in enumerate(folds):
            rows = torch.cat([f for j, f in enumerate(folds) if j != k])
            fit = fitter(x[rows], target01[rows])
            part = slice(start, start + len(held))
            ridge_oof[part] = fit.predict(x[held])
            m = copy.deepcopy(init_model)
            m.backbone.load_state_dict(model.backbone.state_dict())  # frozen: its feature statistics
            cached_mos_trainer(m, cfg, feats, rows, target01, progress=False).fit()  # no files
            mlp_oof[part] = predict_cached(m, feats, held)
            start += len(held)
    y = target01[order].double()
    table = []
    for w in WEIGHTS:
        pred = ((1 - w) * mlp_oof + w * ridge_oof).double()
        table.append({"weight": w, "mse": float(((pred - y) ** 2).mean()),
                      "srocc": correlations(pred.numpy(), y.numpy())["srocc"]})  # fmt: skip
    best = min(table, key=lambda r: r["mse"])
    return float(best["weight"]), {"folds": CV_FOLDS, "criterion": "mse", "table": table}
