"""Baselines for the report (issue 6): neutral defaults, ``rawpy.postprocess()``, one global parameter set
found by CMA-ES on the training images, and per-image CMA-ES on each test image.

Budgets (ours, to compare fairly with the agent): both CMA-ES searches get the agent's *training* scorer-call
budget — the global search over the training images, the per-image search split evenly over the test images.
CMA-ES (Hansen & Ostermeier 2001) runs in the normalised [-1, 1]^16 space from the neutral point, sigma0 0.3,
via the ``cma`` package; the neutral point is always evaluated first, so a search never reports worse than it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from isp_env.isp import Developed, finish
from isp_env.params import N_PARAMS, from_normalized, neutral, to_normalized

if TYPE_CHECKING:
    from isp_env.reward import Guard

SIGMA0 = 0.3


@dataclass
class SearchResult:
    params: dict[str, float]
    mos: float
    calls: int


def cma_search(
    objective: Callable[[np.ndarray], float],
    budget: int,
    calls_per_eval: int,
    seed: int = 0,
    popsize: int | None = None,
    x0: np.ndarray | None = None,
) -> SearchResult:
    """Maximise ``objective`` (normalised vector -> MOS) within ``budget`` scorer calls, from ``x0``
    (normalised; default the neutral point), which is evaluated first."""
    import cma

    x0 = to_normalized(neutral()) if x0 is None else np.clip(np.asarray(x0, dtype=np.float64), -1.0, 1.0)
    best_x, best_f = x0, objective(x0)
    calls = calls_per_eval
    evals_left = max((budget - calls) // max(calls_per_eval, 1), 0)
    pop = popsize or int(4 + 3 * np.log(N_PARAMS))  # CMA-ES default population
    pop = max(2, min(pop, evals_left)) if evals_left >= 2 else 0
    if pop:
        es = cma.CMAEvolutionStrategy(
            x0, SIGMA0, {"bounds": [-1.0, 1.0], "popsize": pop, "seed": seed + 1, "verbose": -9}
        )
        while evals_left >= pop:
            xs = es.ask()
            fs = [objective(np.asarray(x)) for x in xs]
            calls += pop * calls_per_eval
            evals_left -= pop
            es.tell(xs, [-f for f in fs])
            i = int(np.argmax(fs))
            if fs[i] > best_f:
                best_x, best_f = np.asarray(xs[i]), fs[i]
    return SearchResult(from_normalized(best_x), float(best_f), int(calls))


def mean_mos_objective(devs: Sequence[Developed], mos) -> Callable[[np.ndarray], float]:
    """Normalised parameters -> mean MOS of their renders of ``devs`` (one scorer call per image)."""

    def f(x: np.ndarray) -> float:
        values = from_normalized(x)
        return float(np.mean(mos([finish(d, values) for d in devs])))

    return f


def guarded_objective(
    items: Sequence[tuple[Developed, Guard | None, int | None]], mos
) -> Callable[[np.ndarray], float]:
    """Normalised parameters -> mean guarded score (MOS minus the :class:`isp_env.reward.Guard` penalty,
    in the scorer's units) of the renders at the scorer's scale; ``items``: (front end, guard, view)."""
    from isp_env.reward import finish_view

    def f(x: np.ndarray) -> float:
        values = from_normalized(x)
        imgs = [finish(d, values) if v is None else finish_view(d, values, v) for d, _, v in items]
        scores = mos(imgs)
        pen = [
            g.penalty(im) * mos.width / 100.0 if g is not None else 0.0
            for (_, g, _), im in zip(items, imgs, strict=True)
        ]
        return float(np.mean(scores - np.asarray(pen)))

    return f


def rawpy_preview(path, size: tuple[int, int]) -> np.ndarray:
    """``rawpy.postprocess()`` with the camera white balance (LibRaw's defaults otherwise: AHD, sRGB,
    auto-bright), resized (Lanczos) to a preview's ``(height, width)``."""
    from isp_env.reward import rawpy_render

    return rawpy_render(path, size)
