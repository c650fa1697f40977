"""Correlation metrics for IQA — the one place they are computed (paper §4.2: SROCC, PLCC; plus KRCC, RMSE).

Robustness policy (ours):
- pairs where either value is NaN/inf are dropped (a failed image must not sink a whole evaluation);
- fewer than 2 remaining pairs, or a constant input, give ``nan`` (a correlation is undefined there),
  without raising and without scipy's ConstantInputWarning.
PLCC is the plain Pearson correlation (no logistic fit — the paper does not mention one).

scipy is imported by the correlations themselves, not with this module: ``attiqa score`` and ``genbench
score`` import it (through the score cache) and compute none, and ``scipy.stats`` costs ~0.8 s a start
(docs/default_model.md, "Implementation speed notes"; ``tests/test_cli_import_cost.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray

FEW_IMAGES = 10
"""Below this many images an SROCC is mostly noise: without any real correlation it spreads by about
1/sqrt(n - 1) (0.33 at 10), wider than the gaps the paper's tables compare; on 2 images it is ±1."""


def noise_spread(n: int) -> str:
    """How far an SROCC over ``n`` images moves with no real correlation behind it, in words."""
    return "only ±1" if n < 3 else f"about ±{1 / (n - 1) ** 0.5:.2f} with no real correlation"


def finite_pairs(pred: ArrayLike, target: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(target, dtype=np.float64).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"pred and target differ in length: {p.shape[0]} vs {t.shape[0]}")
    ok = np.isfinite(p) & np.isfinite(t)
    return p[ok], t[ok]


def _degenerate(p: np.ndarray, t: np.ndarray) -> bool:
    return p.size < 2 or np.ptp(p) == 0 or np.ptp(t) == 0


def _corr(
    fn: Callable[[np.ndarray, np.ndarray], Sequence[float]], pred: ArrayLike, target: ArrayLike
) -> float:
    p, t = finite_pairs(pred, target)
    if _degenerate(p, t):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fn(p, t)[0])


def srocc(pred: ArrayLike, target: ArrayLike) -> float:
    """Spearman rank-order correlation."""
    from scipy.stats import spearmanr

    return _corr(spearmanr, pred, target)


def plcc(pred: ArrayLike, target: ArrayLike) -> float:
    """Pearson linear correlation (no logistic mapping)."""
    from scipy.stats import pearsonr

    return _corr(pearsonr, pred, target)


def krcc(pred: ArrayLike, target: ArrayLike) -> float:
    """Kendall rank correlation (tau-b, handles ties)."""
    from scipy.stats import kendalltau

    return _corr(kendalltau, pred, target)


def rmse(pred: ArrayLike, target: ArrayLike) -> float:
    """Root mean squared error in the units of the inputs (nan when nothing is left)."""
    p, t = finite_pairs(pred, target)
    return float(np.sqrt(np.mean((p - t) ** 2))) if p.size else float("nan")


def correlations(pred: ArrayLike, target: ArrayLike) -> dict[str, float]:
    """All metrics at once: ``{"srocc", "plcc", "krcc", "rmse", "n"}`` (n = finite pairs used)."""
    p, t = finite_pairs(pred, target)
    return {
        "srocc": srocc(p, t),
        "plcc": plcc(p, t),
        "krcc": krcc(p, t),
        "rmse": rmse(p, t),
        "n": int(p.size),
    }
