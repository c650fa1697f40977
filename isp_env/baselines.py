"""Baselines for the report (issue 6): neutral defaults, ``rawpy.postprocess()``, one global parameter set
found by CMA-ES on the training images, and per-image CMA-ES on each test image.

Budgets (ours, to compare fairly with the agent): both CMA-ES searches get the agent's *training* scorer-call
budget — the global search over the training images, the per-image search split evenly over the test images.
CMA-ES (Hansen & Ostermeier 2001) runs in the normalised [-1, 1]^16 space from the neutral point, sigma0 0.3,
via the ``cma`` package; the neutral point is always evaluated first, so a search never reports worse than it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from isp_env.isp import Developed, finish
from isp_env.params import N_PARAMS, from_normalized, neutral, to_normalized

if TYPE_CHECKING:
    from pathlib import Path

    from isp_env.mos_function import MOSFunction
    from isp_env.reward import Guard

SIGMA0 = 0.3


@dataclass
class SearchResult:
    params: dict[str, float]
    mos: float
    calls: int


@dataclass(frozen=True)
class SearchPlan:
    """How :func:`cma_search` spends a budget: its start (neutral) and ``generations`` whole generations of
    ``popsize`` settings, ``calls`` scorer calls in all (each setting costs one call per raw searched)."""

    generations: int
    popsize: int
    calls: int

    def said(self, budget: int) -> str:
        """The plan in words against the ``budget`` asked, the calls left unspent said (whole generations)."""
        gens = (
            f"{self.generations} generation{'s' if self.generations != 1 else ''} of {self.popsize} settings"
        )
        left = budget - self.calls
        rest = f" ({left} left unspent: whole generations)" if left > 0 else ""
        return f"the start and {gens}: {self.calls} of the {budget} scorer calls asked{rest}"


DEFAULT_POPSIZE = int(4 + 3 * np.log(N_PARAMS))  # CMA-ES's default population: 12 for the 16 parameters


def search_plan(budget: int, calls_per_eval: int, popsize: int | None = None) -> SearchPlan:
    """The generations ``budget`` scorer calls buy after the start, ``calls_per_eval`` calls a setting:
    whole generations of about :data:`DEFAULT_POPSIZE` settings, the population widened until they take
    every setting the budget pays for but fewer than one a generation (a population fixed at 12 left up to
    11 unspent: a budget of 20 on one raw spent 13, the start and one generation). ``popsize``: a
    population kept as given (at most the settings paid for)."""
    per = max(calls_per_eval, 1)
    evals = max((budget - calls_per_eval) // per, 0)
    if evals < 2:
        return SearchPlan(0, 0, calls_per_eval)
    if popsize:
        pop = max(2, min(popsize, evals))
        gens = evals // pop
    else:
        gens = max(1, evals // DEFAULT_POPSIZE)
        pop = evals // gens
    return SearchPlan(gens, pop, calls_per_eval + gens * pop * calls_per_eval)


# renders per reward call when several settings are scored together (ours): a CMA-ES generation's renders
# go to the scorer as one list (a one-pass reward scores such a list in batched forward passes,
# :func:`isp_env.mos_function.score_views`), at most this many at once (memory: ~0.6 MB a view)
RENDERS_PER_CALL = 64


@dataclass
class RenderObjective:
    """Normalised parameters -> score through renders scored by ``mos``: ``render`` (setting -> its renders)
    and ``value`` (its renders and their MOS -> its score). ``obj(x)`` scores one setting; ``obj.many(xs)``
    (and :func:`score_together`) score several in shared reward calls — the same numbers, each setting's
    renders and scores passed to ``value`` exactly as ``obj(x)`` does."""

    render: Callable[[np.ndarray], list[np.ndarray]]
    value: Callable[[list[np.ndarray], np.ndarray], float]
    mos: MOSFunction

    def __call__(self, x: np.ndarray) -> float:
        imgs = self.render(x)
        return self.value(imgs, self.mos(imgs))

    def many(self, xs: Sequence[np.ndarray]) -> list[float]:
        return score_together([(self, x) for x in xs])


def score_together(pairs: Sequence[tuple[RenderObjective, np.ndarray]]) -> list[float]:
    """``[obj(x) for obj, x in pairs]`` with the renders of several settings (of one objective or of several
    sharing a reward, e.g. the held-out raws of a cross-validation fold) scored in one reward call, at most
    :data:`RENDERS_PER_CALL` renders a call (more when one setting has more renders)."""
    out: list[float] = []
    pending: list[tuple[RenderObjective, list[np.ndarray]]] = []

    def flush() -> None:
        if not pending:
            return
        mos = pending[0][0].mos
        scores = mos([im for _, imgs in pending for im in imgs])
        k = 0
        for obj, imgs in pending:
            out.append(obj.value(imgs, scores[k : k + len(imgs)]))
            k += len(imgs)
        pending.clear()

    for obj, x in pairs:
        imgs = obj.render(np.asarray(x))
        same = bool(pending) and pending[0][0].mos is obj.mos
        if pending and (not same or sum(len(i) for _, i in pending) + len(imgs) > RENDERS_PER_CALL):
            flush()
        pending.append((obj, imgs))
    flush()
    return out


def evaluate_all(objective: Callable[[np.ndarray], float], xs: Sequence[np.ndarray]) -> list[float]:
    """``objective`` at each of ``xs``: in shared reward calls when it can (a :class:`RenderObjective`),
    else one call each."""
    many = getattr(objective, "many", None)
    return list(many(xs)) if many is not None else [objective(x) for x in xs]


def cma_search(
    objective: Callable[[np.ndarray], float],
    budget: int,
    calls_per_eval: int,
    seed: int = 0,
    popsize: int | None = None,
    x0: np.ndarray | None = None,
    *,
    kept: Mapping[str, Any] | None = None,
    on_generation: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Maximise ``objective`` (normalised vector -> MOS) within ``budget`` scorer calls, from ``x0``
    (normalised; default the neutral point), which is evaluated first, then in the whole generations of
    :func:`search_plan`. Each generation's candidates are scored together (:func:`evaluate_all`).

    Resumable (a search of minutes — the global baseline's 600 calls — was lost to a Ctrl-C): after the
    start and after each generation ``on_generation`` gets the search so far, JSON-ready (``{"start": f,
    "generations": [{"xs": settings, "fs": scores}, …]}``); ``kept``, such a log of an interrupted search
    of the same inputs, is replayed — CMA-ES is seeded, so each generation asks for the same settings,
    which are told their kept scores instead of being scored again — and the search goes on from its end:
    the result is the uninterrupted search's. A generation that asks for other settings than its kept
    ones (another ``cma`` version) is scored, with every one after it. The replay equals the uninterrupted
    search only while ``objective`` leaves NumPy's global random state alone (CMA-ES draws its samples from
    it; the renders and scorers here do not): an objective that draws from it is asked other settings after
    a resume, which are then scored again — never given stale scores."""
    import cma

    x0 = to_normalized(neutral()) if x0 is None else np.clip(np.asarray(x0, dtype=np.float64), -1.0, 1.0)
    n_kept = kept_generations(kept)  # what a resume replays: the rule the rerun's line counts by
    resumed = kept is not None and n_kept is not None
    replay = list((kept or {}).get("generations") or [])[: n_kept or 0]
    best_x, best_f = x0, float(kept["start"]) if kept is not None and resumed else objective(x0)
    log: dict[str, Any] = {"start": float(best_f), "generations": []}
    if on_generation is not None and not resumed:
        on_generation(log)
    calls = calls_per_eval
    plan = search_plan(budget, calls_per_eval, popsize)
    pop = plan.popsize
    if plan.generations:
        es = cma.CMAEvolutionStrategy(
            x0, SIGMA0, {"bounds": [-1.0, 1.0], "popsize": pop, "seed": seed + 1, "verbose": -9}
        )
        for g in range(plan.generations):
            xs = es.ask()
            fs = kept_scores(xs, replay[g]) if g < len(replay) else None
            if fs is None:
                replay = []  # asked otherwise, or the kept ones ended: this generation and the rest scored
                fs = evaluate_all(objective, [np.asarray(x) for x in xs])
            log["generations"].append(
                {"xs": [[float(v) for v in x] for x in xs], "fs": [float(f) for f in fs]}
            )
            if on_generation is not None and not replay:
                on_generation(log)
            calls += pop * calls_per_eval
            es.tell(xs, [-f for f in fs])
            i = int(np.argmax(fs))
            if fs[i] > best_f:
                best_x, best_f = np.asarray(xs[i]), fs[i]
    return SearchResult(from_normalized(best_x), float(best_f), int(calls))


def kept_generations(kept: Mapping[str, Any] | None) -> int | None:
    """How much of ``kept`` (an interrupted :func:`cma_search`'s log) a resume replays: None when its start
    is not kept (no finite score: scored again, and every generation with it), else the generations before
    the first without finite scores. What a rerun says it keeps (the whole log was said, once a NaN score
    made the replay stop early)."""
    start = kept.get("start") if kept else None
    if not (isinstance(start, float) and math.isfinite(start)):
        return None
    n = 0
    for g in (kept or {}).get("generations") or []:
        fs = g.get("fs") if isinstance(g, Mapping) else None
        if (
            not isinstance(fs, list)
            or not fs
            or not all(isinstance(f, float) and math.isfinite(f) for f in fs)
        ):
            break
        n += 1
    return n


def kept_scores(xs: Sequence[np.ndarray], kept: object) -> list[float] | None:
    """The scores ``kept`` (a generation of :func:`cma_search`'s log) holds for the settings ``xs`` asked
    now, or None when it holds other settings, or is no such record (a hand edit)."""
    if not isinstance(kept, Mapping):
        return None
    try:
        old, fs = np.asarray(kept["xs"], dtype=np.float64), [float(f) for f in kept["fs"]]
        same = old.shape == np.shape(xs) and len(fs) == len(xs) and np.array_equal(old, np.asarray(xs))
    except (KeyError, TypeError, ValueError):
        return None
    return fs if same and all(math.isfinite(f) for f in fs) else None


def mean_mos_objective(devs: Sequence[Developed], mos: MOSFunction) -> RenderObjective:
    """Normalised parameters -> mean MOS of their renders of ``devs`` (one scorer call per image)."""

    def render(x: np.ndarray) -> list[np.ndarray]:
        values = from_normalized(x)
        return [finish(d, values) for d in devs]

    def value(imgs: list[np.ndarray], scores: np.ndarray) -> float:
        return float(np.mean(scores))

    return RenderObjective(render, value, mos)


def guarded_objective(
    items: Sequence[tuple[Developed, Guard | None, int | None]], mos: MOSFunction
) -> RenderObjective:
    """Normalised parameters -> mean guarded score (MOS minus the :class:`isp_env.reward.Guard` penalty,
    in the scorer's units) of the renders at the scorer's scale; ``items``: (front end, guard, view)."""
    from isp_env.reward import finish_view

    def render(x: np.ndarray) -> list[np.ndarray]:
        values = from_normalized(x)
        return [finish(d, values) if v is None else finish_view(d, values, v) for d, _, v in items]

    def value(imgs: list[np.ndarray], scores: np.ndarray) -> float:
        pen = [
            g.penalty(im) * mos.width / 100.0 if g is not None else 0.0
            for (_, g, _), im in zip(items, imgs, strict=True)
        ]
        return float(np.mean(scores - np.asarray(pen)))

    return RenderObjective(render, value, mos)


def rawpy_preview(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """``rawpy.postprocess()`` with the camera white balance (LibRaw's defaults otherwise: AHD, sRGB,
    auto-bright), resized (Lanczos) to a preview's ``(height, width)``."""
    from isp_env.reward import rawpy_render

    return rawpy_render(path, size)
