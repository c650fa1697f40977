"""Shared helpers for the ISP teacher benchmarks (isp_teacher_prior.py, isp_camera_holdout.py): a raw's
target from a run's cached searches, and guarded scores of settings cached by a tag."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from attiqa.io.atomic import write_json_atomic


def best_of(entry: dict, restarts: int = 3) -> dict[str, float]:
    """A raw's target: its best search of seeds 0 .. restarts - 1 (the default recipe)."""
    runs = [r for r in entry.get("runs", [entry]) if int(r.get("seed", 0)) < restarts]
    return max(runs, key=lambda r: r["score"])["params"]


def cached_scores(
    cache: dict[str, float],
    cache_path: Path,
    tag: str,
    names: Sequence[str],
    objectives: Mapping[str, Callable[[np.ndarray], float]],
    settings: Sequence[np.ndarray],
) -> list[float]:
    """Each raw's guarded score of its normalised setting (clipped to the ranges), cached under
    ``test:TAG:NAME`` and saved to ``cache_path``: a rerun costs no scorer call."""
    out = []
    for n, s in zip(names, settings, strict=True):
        key = f"test:{tag}:{n}"
        if key not in cache:
            cache[key] = float(objectives[n](np.clip(s, -1.0, 1.0)))
        out.append(cache[key])
    write_json_atomic(cache_path, cache)
    return out
