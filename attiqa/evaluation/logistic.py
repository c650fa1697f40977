"""The VQEG 4-parameter logistic mapping from predictions to MOS, and PLCC / RMSE after it.

Why: PLCC measures linearity, but a model's scale need not be linear in MOS (e.g. a 0-1 score vs a
1-100 MOS, or a saturating curve). The IQA convention (VQEG FR-TV Phase II report, 2003) fits a
monotonic logistic first and reports PLCC and RMSE of the fitted values. The ATTIQA paper (§4.2) reports
plain PLCC; ``attiqa eval`` reports both (plain PLCC from :mod:`attiqa.evaluation.metrics`).

    f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2

Fitting policy (ours): x is standardised before fitting (the optimiser then sees O(1) numbers whatever
the model's scale); the start point is the data's range (b1, b2 = max/min of MOS, swapped when the
correlation is negative), b3 = median(x), |b4| = std(x)/2 (so the curve spans the data). The logistic is
kept only when it beats the least-squares line by AICc (its two extra parameters must pay for
themselves; AICc needs at least 7 points for 4 parameters + the noise variance); if ``curve_fit``
fails, or the line wins, the line is used — which leaves PLCC equal to the plain PLCC — and ``method``
says which was used. PLCC after the fit keeps the sign of the relationship: a decreasing fit (a
lower-is-better score against MOS) gives a negative PLCC, as the plain PLCC does, not the positive
correlation of the fitted values with MOS.
"""

from __future__ import annotations

import math
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

    @property
    def direction(self) -> float:
        """+1 for a fit rising with the prediction, -1 for a falling one, NaN for none."""
        if self.method == "logistic":
            return 1.0 if self.params[0] >= self.params[1] else -1.0
        if self.method == "linear":
            return 1.0 if self.params[0] >= 0 else -1.0
        return float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


def _sse(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.sum((y - f) ** 2))


# 4 logistic parameters + the noise variance; AICc's correction needs n > k + 1
_K_LOGISTIC, _K_LINEAR = 5, 3
MIN_LOGISTIC_POINTS = _K_LOGISTIC + 2


def aicc(sse: float, n: int, k: int) -> float:
    """Akaike's criterion with the small-sample correction, for a least-squares fit with ``k``
    parameters (the noise variance counted) on ``n`` points: lower is better."""
    return n * math.log(max(sse, 1e-300) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def fit_logistic(pred: ArrayLike, mos: ArrayLike, maxfev: int = 20000) -> LogisticFit:
    """Fit the 4-parameter logistic, kept when it beats the line by AICc (module docstring); never raises
    on bad data."""
    from scipy.optimize import OptimizeWarning, curve_fit

    x, y = finite_pairs(pred, mos)
    n = int(x.size)
    if n < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return LogisticFit("none", (), n, "fewer than 2 distinct points")
    slope, intercept = np.polyfit(x, y, 1)
    linear = LogisticFit("linear", (float(slope), float(intercept)), n)
    if n < MIN_LOGISTIC_POINTS:
        return LogisticFit("linear", linear.params, n, f"fewer than {MIN_LOGISTIC_POINTS} points: linear fit")
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
    if not np.all(np.isfinite(fy)) or aicc(_sse(y, fy), n, _K_LOGISTIC) >= aicc(
        _sse(y, linear(x)), n, _K_LINEAR
    ):
        return LogisticFit(
            "linear", linear.params, n, "logistic fit no better than a line by AICc; linear fit used"
        )
    return fit


def _signed_plcc(fit: LogisticFit, x: np.ndarray, y: np.ndarray) -> float:
    """PLCC of the fitted values with MOS, with the sign of the fit's direction (module docstring)."""
    return fit.direction * plcc(fit(x), y)


def plcc_after_fit(pred: ArrayLike, mos: ArrayLike) -> float:
    """PLCC between the logistic-mapped predictions and MOS (VQEG convention), signed as the fit runs."""
    x, y = finite_pairs(pred, mos)
    return _signed_plcc(fit_logistic(x, y), x, y)


def fitted_metrics(pred: ArrayLike, mos: ArrayLike) -> dict:
    """``{"plcc_fit", "rmse_fit", "fit"}``: PLCC and RMSE (MOS units) after the fit, and the fit itself."""
    x, y = finite_pairs(pred, mos)
    fit = fit_logistic(x, y)
    fy = fit(x)
    return {"plcc_fit": _signed_plcc(fit, x, y), "rmse_fit": rmse(fy, y), "fit": fit}
