"""Shared helpers for the ISP benchmarks that read a finished ``isp-tune`` run (isp_teacher_prior.py,
isp_camera_holdout.py, isp_teacher_cv.py, isp_compare_policies.py): its plan and config, a raw's target
from its cached searches, and guarded scores of settings cached by a tag."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attiqa.errors import AttiqaError
from attiqa.io.atomic import write_json_atomic
from isp_env.params import read_run_json
from isp_env.train_config import TrainConfig


def run_plan(run: Path) -> tuple[dict[str, Any], TrainConfig]:
    """``RUN/run.json`` (raw folder, split, config) and its :class:`TrainConfig`; a folder that is not a
    finished run is one line naming it and what to give instead, not a traceback."""
    plan = read_run_json(run / "run.json")
    if not plan or "config" not in plan:
        raise AttiqaError(
            f"{run}: not an isp-tune run (no run.json in it) — give the --out folder of a finished "
            "`isp-tune --raw-dir DIR --out RUN` run"
        )
    cfg = TrainConfig(**{k: v for k, v in plan["config"].items() if k in TrainConfig.__dataclass_fields__})
    return plan, cfg


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
