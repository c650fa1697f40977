"""Scatter plot of predictions vs MOS with the fitted logistic curve — the usual IQA sanity picture
(a good model's cloud hugs a monotone curve; outliers and saturation show at a glance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from attiqa.evaluation.logistic import LogisticFit, fit_logistic
from attiqa.evaluation.metrics import ArrayLike, finite_pairs
from attiqa.io.atomic import atomic_path


def scatter_plot(
    pred: ArrayLike,
    mos: ArrayLike,
    out: str | Path,
    title: str = "",
    xlabel: str = "prediction",
    ylabel: str = "MOS",
    fit: LogisticFit | None = None,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write a PNG (atomically) of ``pred`` (x) vs ``mos`` (y) with the fitted curve; returns the path.

    Uses matplotlib's Agg backend through the object API, so it works headless and never changes the
    global pyplot state of a caller.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x, y = finite_pairs(pred, mos)
    fit = fit if fit is not None else fit_logistic(x, y)
    fig = Figure(figsize=(5.5, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    size, alpha = (24, 0.8) if x.size < 300 else (8, 0.6) if x.size < 2000 else (3, 0.25)  # a few: visible
    ax.scatter(x, y, s=size, alpha=alpha, color="#1f77b4", edgecolors="none")
    if x.size >= 2 and fit.method != "none":
        xs = np.linspace(float(x.min()), float(x.max()), 256)
        label = "4-parameter logistic" if fit.method == "logistic" else "linear fit"
        ax.plot(xs, fit(xs), color="#d62728", linewidth=2, label=label)
        ax.legend(loc="lower right", fontsize=8)
    if metrics:
        txt = "\n".join(
            f"{k.upper().replace('_', ' '):9} {v:.3f}" for k, v in metrics.items() if isinstance(v, float)
        )
        ax.text(
            0.02,
            0.98,
            txt,
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=8,
            family="monospace",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    title = f"{title} (n = {x.size})" if title else f"{x.size} images"  # n: how much the figures weigh
    ax.set_title(title, fontsize=10, wrap=True)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", metadata={"Title": title})
    return out
