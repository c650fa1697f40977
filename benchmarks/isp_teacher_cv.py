"""The teacher's scene-group cross-validation on a run's training raws, for the target and feature variants
of docs/isp.md "Session 24" (issue 19): which targets (one per-image search, the best of two or three, the
mean of two) and which observation (the 12 statistics of sessions 22-23 or all 21) make the better teacher.

Training side only: the raws of RUN/run.json's ``train`` list, the base of RUN/baselines/cma_global.json,
the searches of RUN/teacher/targets_neutral.json (an ``isp-tune --algo teacher`` run with
``--teacher-restarts 3``). Every prediction is scored by the real guarded reward (30 scorer calls per
variant, ridge alpha and fold seed on 30 raws); scores are cached in RUN/teacher/cv_variants.json as each
fold ends, each variant's kept with the digest of its inputs as the run's cross-validation keeps its own
(:func:`isp_env.tuning.cv_inputs`, :class:`isp_env.teacher.KeptFor`): a rerun on the same run costs
nothing, and one whose raws, searches, base or scorer changed scores again.

    python benchmarks/isp_teacher_cv.py RUN [--fold-seeds 0 1] [--alphas 1 3 10]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from attiqa.cli import run_app
from attiqa.io.atomic import write_json_atomic
from isp_env.baselines import score_together
from isp_env.env import N_STATS
from isp_env.mos_function import load_mos_function
from isp_env.params import from_normalized, to_normalized
from isp_env.run_inputs import scene_groups
from isp_env.teacher import KeptFor, choose_by_cv, residual_targets
from isp_env.tuning import cv_inputs, teacher_inputs

sys.path.insert(0, str(Path(__file__).parent))
from _isp import run_plan  # noqa: E402

OLD_STATS = 12  # the observation of sessions 22-23: the first 12 statistics (+ the time)


def targets(runs: list[dict], variant: str) -> dict[str, float]:
    """A raw's target setting from its searches (seeds 0, 1, 2) for one variant."""
    by_seed = {int(r["seed"]): r for r in runs}
    if variant == "mean of 2":
        pair = [to_normalized(by_seed[s]["params"]) for s in (0, 1)]
        return from_normalized((pair[0] + pair[1]) / 2)
    k = {"one search": 1, "best of 2": 2, "best of 3": 3}[variant]
    return max((by_seed[s] for s in range(k)), key=lambda r: r["score"])["params"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--fold-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--alphas", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    args = ap.parse_args()
    plan, cfg = run_plan(args.run)
    raws = [Path(p) for p in plan["train"]]
    groups = scene_groups(raws, Path(plan["raw_dir"]))
    mos = load_mos_function(cfg.scorer)
    names, feats, objectives, group_of, _ = teacher_inputs(raws, cfg, mos, groups)
    searches = json.loads((args.run / "teacher" / "targets_neutral.json").read_text())
    base = to_normalized(cfg.base or {})
    x_all = np.stack(feats)
    observations = {"12": np.hstack([x_all[:, :OLD_STATS], x_all[:, N_STATS:]]), "21": x_all}
    cache_path = args.run / "teacher" / "cv_variants.json"
    caches: dict[str, dict[str, Any]] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    unknown = [k for k, v in caches.items() if "inputs" not in v]  # index-keyed ones: of unknown inputs
    if unknown:  # said once, as the product's caches say it (isp_env.teacher.KeptFor)
        print(f"{cache_path}: {len(unknown)} entries saved before their inputs were recorded: scored again")
        caches = {k: v for k, v in caches.items() if k not in unknown}
    candidates = [("ridge", a) for a in args.alphas]

    def score(pairs: list[tuple[int, np.ndarray]]) -> list[float]:  # a fold's raws in shared calls
        return score_together(
            [(objectives[names[i]], np.clip(base + cfg.scale * a, -1.0, 1.0)) for i, a in pairs]
        )

    print(f"{len(names)} training raws; CV guarded score (fold seeds {args.fold_seeds}), ridge alpha per raw")
    print(f"| targets | statistics | {' | '.join(f'ridge {a:g}' for a in args.alphas)} |")
    print(f"| --- | --- | {' | '.join('---:' for _ in args.alphas)} |")
    for variant in ("one search", "mean of 2", "best of 2", "best of 3"):
        settings = [targets(searches[n]["runs"], variant) for n in names]
        y = residual_targets(settings, cfg.base or {}, cfg.scale)
        for stats, x in observations.items():
            cells: dict[float, list[float]] = {a: [] for a in args.alphas}
            for seed in args.fold_seeds:
                key = f"{variant}|{stats}|{seed}"
                inputs = cv_inputs(x, y, names, group_of, replace(cfg, seed=seed))
                kept = caches.get(key, {})
                ours = bool(kept) and KeptFor(cache_path, inputs, "scored").matches(kept)
                cache = dict(kept["scores"]) if ours else {}

                def save(scores: dict[str, float], key: str = key, inputs: str = inputs) -> None:
                    caches[key] = {"inputs": inputs, "scores": scores}
                    write_json_atomic(cache_path, caches)

                choice = choose_by_cv(x, y, group_of, score, candidates, seed=seed, cache=cache, save=save)
                for row in choice.table:
                    cells[row["strength"]].append(row["cv_score"])
            shown = (" / ".join(f"{v:.2f}" for v in cells[a]) for a in args.alphas)
            print(f"| {variant} | {stats} | " + " | ".join(shown) + " |", flush=True)


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
