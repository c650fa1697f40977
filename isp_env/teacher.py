"""A per-image policy learned from a teacher (ours, issue 19, session 23): ``isp-tune --algo teacher``.

Why: the residual SAC agent of session 22 learned one global offset (exposure sd 0.008 EV across held-out
raws) — its reward signal, one scorer call per raw and step, was too weak to learn how the best setting
depends on the image. Here the dependence is learned by supervision instead:

1. **Teacher targets.** Per-image CMA-ES (:func:`isp_env.baselines.cma_search`, the same guarded reward as
   every other method) on each *training* raw, from the neutral setting like the per-image baseline (or
   from the base); the best setting found is the raw's target. Resumable: one JSON entry per raw.
2. **Features.** The policy's own observation (:func:`isp_env.env.image_stats` of the base render +
   time), standardised with the training raws' mean and standard deviation (the 12 statistics span very
   different ranges; unstandardised, an MLP's bias dominated its output) and clipped to ``Z_CLIP``
   standard deviations, so a raw unlike the training raws is not extrapolated to.
3. **Model** (:class:`TeacherPolicy`): the residual action (target minus base, in normalised units, / the
   residual scale) predicted by ridge regression on the standardised features, or by the mean of the k
   nearest training raws, or by the training mean only (``mean``) — chosen by **scene-group
   cross-validation on the training raws**, judged by the real guarded reward of the predicted settings on
   the raws each fold held out (not by parameter error: many settings score alike, so the targets are
   noisy in the directions that do not matter).

The fitted policy is a small torch module (standardisation + linear map, or stored neighbours; since
session 24 also its training rows ``rows_x``/``rows_y``, a few kB, so a later run can start from it —
``--init-policy``, :func:`isp_env.tuning.train_teacher`) saved through :mod:`isp_env.policy_io`
(safetensors + JSON card) and applied by :func:`isp_env.tuning.tune_with_policy` like an SB3 policy: one
render of the base, no scorer call.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attiqa.io.hashes import record_digest
from attiqa.progress import console, plain_name, progress_task
from isp_env.baselines import cma_search
from isp_env.params import N_PARAMS, RunFiles, to_normalized

KINDS = ("base", "mean", "ridge", "knn")
# candidates of the cross-validated choice (ours): ridge penalties are per training raw (alpha * n), so
# the same grid means the same shrinkage whatever the number of raws; k nearest neighbours
DEFAULT_CANDIDATES: tuple[tuple[str, float], ...] = (
    ("base", 0.0),
    ("mean", 0.0),
    ("ridge", 0.1),
    ("ridge", 0.3),
    ("ridge", 1.0),
    ("ridge", 3.0),
    ("ridge", 10.0),
    ("knn", 3.0),
    ("knn", 7.0),
)
SD_FLOOR = 1e-3  # a feature constant over the training raws (the time) is switched off, not blown up
# standardised features are clipped to this many training standard deviations (ours): a raw unlike every
# training raw (another camera) gets the prediction of the edge of the training data, not an extrapolation
Z_CLIP = 3.0


class TeacherPolicy(torch.nn.Module):
    """Observation (flat statistics) -> residual action in [-1, 1]. ``kind``: ``base`` (action 0: the base
    setting), ``mean`` (the mean target), ``ridge`` (linear map of the standardised features) or ``knn``
    (mean target of the ``k`` nearest training raws in standardised feature space)."""

    mean: torch.Tensor
    scale: torch.Tensor
    active: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    train_z: torch.Tensor
    train_y: torch.Tensor
    rows_x: torch.Tensor
    rows_y: torch.Tensor

    def __init__(
        self, n_features: int, kind: str = "ridge", n_train: int = 0, k: int = 0, n_rows: int = 0
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        self.kind, self.k = kind, int(k)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("active", torch.ones(n_features))  # 0: a feature constant in training
        self.register_buffer("weight", torch.zeros(N_PARAMS, n_features))
        self.register_buffer("bias", torch.zeros(N_PARAMS))
        self.register_buffer("train_z", torch.zeros(n_train if kind == "knn" else 0, n_features))
        self.register_buffer("train_y", torch.zeros(n_train if kind == "knn" else 0, N_PARAMS))
        # the rows it was fitted on (observation, residual target): the prior of a run that starts from it
        self.register_buffer("rows_x", torch.zeros(n_rows, n_features, dtype=torch.float64))
        self.register_buffer("rows_y", torch.zeros(n_rows, N_PARAMS, dtype=torch.float64))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        z = ((obs - self.mean) / self.scale).clamp(-Z_CLIP, Z_CLIP) * self.active
        if self.kind == "knn" and len(self.train_z):
            d = torch.cdist(z, self.train_z)
            idx = d.topk(min(self.k, len(self.train_z)), largest=False).indices
            y = self.train_y[idx].mean(dim=1)
        elif self.kind == "base":
            y = torch.zeros(len(z), N_PARAMS)
        else:
            y = self.bias + z @ self.weight.T
        return y.clamp(-1.0, 1.0)

    def predict(
        self,
        obs: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict`` signature, so :func:`isp_env.tuning.tune_with_policy` applies it unchanged."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        single = x.ndim == 1
        with torch.no_grad():
            a = self(x[None] if single else x).numpy()
        return (a[0] if single else a), state

    def set_training_mode(self, mode: bool) -> None:
        self.train(mode)


def fit_teacher(features: np.ndarray, targets: np.ndarray, kind: str, strength: float = 0.0) -> TeacherPolicy:
    """Fit on (n, F) features and (n, 16) residual actions; ``strength``: ridge alpha per raw, or k."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    n, nf = x.shape
    pol = TeacherPolicy(nf, kind, n_train=n, k=int(strength) if kind == "knn" else 0, n_rows=n)
    mu, sd = x.mean(0), x.std(0)
    on = sd > SD_FLOOR
    scale = np.where(on, sd, 1.0)
    z = np.where(on, np.clip((x - mu) / scale, -Z_CLIP, Z_CLIP), 0.0)
    ybar = y.mean(0)
    w = np.zeros((N_PARAMS, nf))
    if kind == "ridge":
        gram = z.T @ z + strength * n * np.eye(nf)
        w = np.linalg.solve(gram, z.T @ (y - ybar)).T
        w[:, ~on] = 0.0
    with torch.no_grad():
        pol.mean.copy_(torch.as_tensor(mu))
        pol.scale.copy_(torch.as_tensor(scale))
        pol.active.copy_(torch.as_tensor(on.astype(np.float64)))
        pol.weight.copy_(torch.as_tensor(w))
        pol.bias.copy_(torch.as_tensor(ybar if kind != "base" else np.zeros(N_PARAMS)))
        if kind == "knn":
            pol.train_z.copy_(torch.as_tensor(z))
            pol.train_y.copy_(torch.as_tensor(y))
        pol.rows_x.copy_(torch.as_tensor(x))
        pol.rows_y.copy_(torch.as_tensor(y))
    pol.set_training_mode(False)
    return pol


def group_folds(groups: Sequence[str], n_folds: int, seed: int) -> list[np.ndarray]:
    """Indices of the raws each fold holds out: whole scene groups, seeded, as even as the groups allow."""
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    sizes = {g: sum(x == g for x in groups) for g in names}
    folds: list[list[str]] = [[] for _ in range(min(n_folds, len(names)))]
    for g in sorted(names, key=lambda g: -sizes[g]):  # largest groups first, into the emptiest fold
        min(folds, key=lambda f: sum(sizes[x] for x in f)).append(g)
    held = [set(f) for f in folds]
    return [np.array([i for i, x in enumerate(groups) if x in h]) for h in held]


@dataclass
class Choice:
    kind: str
    strength: float
    cv_score: float  # mean guarded score of the held-out predictions over every training raw
    table: list[dict[str, Any]]


def choose_by_cv(
    features: np.ndarray,
    targets: np.ndarray,
    groups: Sequence[str],
    score: Callable[[list[tuple[int, np.ndarray]]], list[float]],
    candidates: Sequence[tuple[str, float]] = DEFAULT_CANDIDATES,
    n_folds: int = 5,
    seed: int = 0,
    cache: dict[str, float] | None = None,
    prior: tuple[np.ndarray, np.ndarray] | None = None,
    save: Callable[[dict[str, float]], None] | None = None,
) -> Choice:
    """Scene-group CV: for each candidate and fold, fit on the other folds, predict the fold's raws and
    score a fold's uncached predictions in one call, ``score([(raw index, residual action), ...])`` -> their
    real guarded rewards (shared reward calls batch them). Returns the candidate with the best mean;
    ``cache`` (key -> score) saves scorer calls across reruns. Its keys name the candidate, the folds, the
    seed and the raw's index only: a cache answers only for the inputs it was filled with (keep it
    with their :func:`inputs_digest`, as :func:`isp_env.tuning.train_teacher` does).
    ``prior`` (features, targets): rows of an earlier policy (``--init-policy``) added to every fold's
    training side, never held out — the folds judge only this run's raws.
    ``save(cache)``: called after each fold that scored anything, so a kill loses at most the scores of
    the fold it stopped in and a resume scores only the folds not finished."""
    cache = {} if cache is None else cache
    px, py = prior if prior is not None else (np.zeros((0, features.shape[1])), np.zeros((0, N_PARAMS)))
    tag = f":prior{len(px)}" if len(px) else ""  # a score with prior rows is another score
    folds = group_folds(groups, n_folds, seed)
    table = []
    best: Choice | None = None

    def key(kind: str, strength: float, i: int) -> str:
        return f"{kind}:{strength:g}:{n_folds}:{seed}:{i}{tag}"

    kept = sum(key(k, s, i) in cache for k, s in candidates for i in range(len(features)))  # scored before
    with progress_task(
        "teacher: cross-validation", len(candidates) * len(features), unit="raw", kept=kept
    ) as adv:
        for kind, strength in candidates:
            scores = np.zeros(len(features))
            for test in folds:
                train = np.setdiff1d(np.arange(len(features)), test)
                pol = fit_teacher(
                    np.concatenate([features[train], px]),
                    np.concatenate([targets[train], py]),
                    kind,
                    strength,
                )
                actions, _ = pol.predict(features[test])
                keys = {int(i): key(kind, strength, int(i)) for i in test}
                todo = [
                    (int(i), np.asarray(a))
                    for i, a in zip(test, actions, strict=True)
                    if keys[int(i)] not in cache
                ]
                done = score(todo) if todo else []
                for (i, _), v in zip(todo, done, strict=True):
                    cache[keys[i]] = float(v)
                if todo and save is not None:
                    save(cache)
                for i in test:
                    scores[i] = cache[keys[int(i)]]
                adv(len(todo))
            row = {
                "kind": kind,
                "strength": strength,
                "cv_score": float(scores.mean()),
                "scores": scores.tolist(),
            }
            table.append(row)
            console.print(f"  {kind:5s} {strength:5g}: CV guarded score {scores.mean():.2f}")
            if best is None or scores.mean() > best.cv_score + 1e-9:
                best = Choice(kind, strength, float(scores.mean()), table)
    assert best is not None  # every Choice holds the same (complete) table
    return best


def inputs_digest(arrays: Sequence[np.ndarray], record: Mapping[str, Any]) -> str:
    """A digest of what a cached result depends on: ``arrays`` (a CV's features, targets and prior rows; a
    search's start) and ``record`` (the raws' names, base, scale, scorer, ...). A cache kept with another
    digest was filled for other inputs: its results are not this run's."""
    return record_digest(record, arrays, 16)  # attiqa's one rule of a cache entry's inputs


@dataclass
class KeptFor:
    """The one rule of isp-tune's caches kept with an :func:`inputs_digest` (the teacher's searches and
    cross-validation scores, the baseline searches): an entry is reused only when it records ``digest``.
    One saved before its inputs were recorded is of unknown inputs and made again (trusted, a rerun with
    another ``--preview`` reused the old scale's searches), said once for ``path``: ``redone`` again."""

    path: Path
    digest: str
    redone: str  # "searched" / "scored"
    said: bool = False

    def matches(self, entry: Mapping[str, Any]) -> bool:
        if "inputs" not in entry and not self.said:
            console.print(
                f"{plain_name(self.path)}: saved before its inputs were recorded: {self.redone} again"
            )
            self.said = True
        return bool(entry.get("inputs") == self.digest)


def search_targets(
    items: Mapping[str, Callable[[np.ndarray], float]],
    budget: int,
    x0: np.ndarray,
    seed: int,
    path: Path,
    restarts: int = 1,
    files: RunFiles | None = None,
    *,
    inputs: str,
) -> dict[str, dict[str, Any]]:
    """Per-image CMA-ES from ``x0`` (normalised) on each raw's guarded objective (name -> objective),
    ``restarts`` independent searches (seeds ``seed``, ``seed + 1``, ...) of ``budget`` scorer calls each;
    a raw's target is its best setting over them (session 24: the best of two or three searches made a
    better teacher than one search or the mean of two — docs/isp.md). Every search is saved to ``path``
    as it ends (resumable), through ``files`` when given (the run folder's kept files as checked:
    :class:`isp_env.params.RunFiles`).
    ``inputs``: the :func:`inputs_digest` of what a search depends on besides the raw's name, budget and
    seed (its start, the objective's scale and scorer); a search saved with another, or without one, is
    made again (:class:`KeptFor`).
    """
    files = files or RunFiles(path.parent)
    old: dict[str, dict[str, Any]] = files.read(path)
    runs: dict[str, list[dict[str, Any]]] = {}
    kept_for = KeptFor(path, inputs, "searched")
    for name in items:
        entry = old.get(name, {})
        found = entry.get("runs", [entry] if "params" in entry else [])  # (session 23: one search a raw)
        runs[name] = [r for r in found if r.get("budget") == budget and kept_for.matches(r)]
    out: dict[str, dict[str, Any]] = {}
    searched = {(name, x.get("seed")) for name in items for x in runs.get(name, [])}
    kept = sum(
        (name, seed + r) in searched for name in items for r in range(restarts)
    )  # from the first frame
    with progress_task(
        "teacher: per-image CMA-ES on the training raws", len(items) * restarts, unit="search", kept=kept
    ) as adv:
        for name, objective in items.items():
            mine = runs.setdefault(name, [])
            for r in range(restarts):
                if (name, seed + r) not in searched:
                    res = cma_search(objective, budget, 1, seed + r, x0=x0)
                    mine.append(
                        {
                            "seed": seed + r,
                            "params": res.params,
                            "score": res.mos,
                            "calls": res.calls,
                            "budget": budget,
                            "inputs": inputs,
                        }
                    )
                    files.write(path, {**old, **out, name: _best(mine, seed, restarts)})
                    adv(1)
            out[name] = _best(mine, seed, restarts)
    return out


def _best(runs: list[dict[str, Any]], seed: int, restarts: int) -> dict[str, Any]:
    """A raw's target entry: the best of its searches with seeds ``seed .. seed + restarts - 1``; every
    search kept under ``runs``, the calls of those used summed."""
    used = [r for r in runs if seed <= r.get("seed", seed) < seed + restarts] or runs
    top = max(used, key=lambda r: r["score"])
    return {
        "params": top["params"],
        "score": top["score"],
        "calls": int(sum(r["calls"] for r in used)),
        "budget": top["budget"],
        "restarts": len(used),
        "runs": runs,
    }


def residual_targets(params: Sequence[dict[str, float]], base: dict[str, float], scale: float) -> np.ndarray:
    """(n, 16) residual actions that render ``params`` from ``base``: (target - base) / scale, clipped."""
    b = to_normalized(base)
    return np.clip(np.stack([(to_normalized(p) - b) / scale for p in params]), -1.0, 1.0)


def spread_sample(raws: Sequence[Path], n: int, groups: dict[Path, str], seed: int) -> list[Path]:
    """At most ``n`` of ``raws`` for the teacher's searches (each costs ``--teacher-budget`` scorer calls)
    or the held-out evaluation (``--test-raws``), spread over as many scene groups as possible: one raw of
    every group (groups in a seeded order) before a second of any. All of them, as given, when there are
    no more than ``n``."""
    if len(raws) <= n:
        return list(raws)
    rng = random.Random(seed)
    by_group: dict[str, list[Path]] = {}
    for p in sorted(raws, key=str):
        by_group.setdefault(groups.get(p, str(p)), []).append(p)
    for members in by_group.values():
        rng.shuffle(members)
    order = sorted(by_group)
    rng.shuffle(order)
    picked: list[Path] = []
    for rank in range(max(len(m) for m in by_group.values())):
        picked += [by_group[g][rank] for g in order if rank < len(by_group[g])][: n - len(picked)]
    return sorted(picked, key=str)
