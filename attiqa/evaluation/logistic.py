"""The VQEG 4-parameter logistic mapping from predictions to MOS, and PLCC / RMSE after it.

Why: PLCC measures linearity, but a model's scale need not be linear in MOS (e.g. a 0-1 score vs a
1-100 MOS, or a saturating curve). The IQA convention (VQEG FR-TV Phase II report, 2003) fits a
monotonic logistic first and reports PLCC and RMSE of the fitted values. The ATTIQA paper (§4.2) reports
plain PLCC; ``attiqa eval`` reports both (plain PLCC from :mod:`attiqa.evaluation.metrics`).

    f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2

Fitting policy (ours): x is standardised before fitting (the optimiser then sees O(1) numbers whatever
the model's scale); the start point is the data's range (b1, b2 = max/min of MOS, swapped when the
correlation is negative), b3 = median(x), |b4| = std(x)/2 (so the curve spans the data); if
``curve_fit`` fails or ends worse than the straight line, the least-squares line is used instead —
which leaves PLCC equal to the plain PLCC — and ``method`` says which was used.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from attiqa.evaluation.metrics import ArrayLike, finite_pairs, plcc, rmse


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The VQEG 4-parameter logistic (module docstring); overflow-safe."""
    from scipy.special import expit

    t = (np.asarray(x, dtype=np.float64) - b3) / max(abs(b4), 1e-12)
    return (b1 - b2) * expit(t) + b2


@dataclass(frozen=True)
class LogisticFit:
    """A fitted mapping prediction -> MOS. ``params`` are b1..b4 in the units of the raw predictions
    (for ``method == "logistic"``) or (slope, intercept) for the linear fallback."""

    method: str  # "logistic" | "linear" | "none"
    params: tuple[float, ...]
    n: int
    message: str = ""

    def __call__(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.method == "logistic":
            return logistic4(x, *self.params)
        if self.method == "linear":
            a, b = self.params
            return a * x + b
        return np.full_like(x, np.nan)

    def to_dict(self) -> dict:
        return asdict(self)


def _sse(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.sum((y - f) ** 2))


def fit_logistic(pred: ArrayLike, mos: ArrayLike, maxfev: int = 20000) -> LogisticFit:
    """Fit the 4-parameter logistic (module docstring); never raises on bad data."""
    from scipy.optimize import OptimizeWarning, curve_fit

    x, y = finite_pairs(pred, mos)
    n = int(x.size)
    if n < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return LogisticFit("none", (), n, "fewer than 2 distinct points")
    slope, intercept = np.polyfit(x, y, 1)
    linear = LogisticFit("linear", (float(slope), float(intercept)), n)
    if n < 5:
        return LogisticFit("linear", linear.params, n, "fewer than 5 points: linear fit")
    mu, sd = float(np.mean(x)), float(np.std(x))
    xs = (x - mu) / sd
    up = np.corrcoef(xs, y)[0, 1] >= 0
    hi, lo = float(np.max(y)), float(np.min(y))
    p0 = [hi, lo, float(np.median(xs)), 0.5] if up else [lo, hi, float(np.median(xs)), 0.5]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            popt, _ = curve_fit(logistic4, xs, y, p0=p0, maxfev=maxfev)
    except (RuntimeError, OptimizeWarning, ValueError, FloatingPointError) as exc:
        return LogisticFit("linear", linear.params, n, f"logistic fit failed ({exc}); linear fit used")
    b1, b2, b3, b4 = (float(v) for v in popt)
    fit = LogisticFit("logistic", (b1, b2, mu + sd * b3, sd * abs(b4)), n)
    fy = fit(x)
    if not np.all(np.isfinite(fy)) or _sse(y, fy) > _sse(y, linear(x)) * (1 + 1e-9):
        return LogisticFit("linear", linear.params, n, "logistic fit worse than a line; linear fit used")
    return fit


def plcc_after_fit(pred: ArrayLike, mos: ArrayLike) -> float:
    """PLCC between the logistic-mapped predictions and MOS (VQEG convention)."""
    x, y = finite_pairs(pred, mos)
    return plcc(fit_logistic(x, y)(x), y)


def fitted_metrics(pred: ArrayLike, mos: ArrayLike) -> dict:
    """``{"plcc_fit", "rmse_fit", "fit"}``: PLCC and RMSE (MOS units) after the fit, and the fit itself."""
    x, y = finite_pairs(pred, mos)
    fit = fit_logistic(x, y)
    fy = fit(x)
    return {"plcc_fit": plcc(fy, y), "rmse_fit": rmse(fy, y), "fit": fit}
