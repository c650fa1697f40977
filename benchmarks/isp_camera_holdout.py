"""Does the teacher recipe carry to a camera it never saw? Leave-one-camera-out on a finished teacher run
(issue 19's held-out question asked by camera instead of by scene group; session 43, ours).

RUN is an ``isp-tune --algo teacher`` run whose searches cover every raw (the shipping run, ``--test-fraction
0``: ``RUN/teacher/targets_neutral.json``), so no per-image search is run again. The camera of each raw is
read from ``RAW_DIR/manifest.csv`` (columns ``file``, ``libraw_make``, ``libraw_model``; the shared raws'
manifest has them), else a DNG's own tags, as ``isp-tune --group-by camera`` reads it
(``isp_env.run_inputs.raw_cameras``: a raw with neither is refused in one line). For each camera in
turn, with its raws held out and every other camera's raws for training, the recipe is redone as
``isp-tune`` does it, nothing taken from the held-out camera:

* the base: global CMA-ES on the training raws (``--cma-global-budget`` calls, cached in
  ``RUN/camera_holdout/CAMERA/baselines/cma_global.json``);
* the observation of every raw's render with that base, the residual targets (the best of the recipe's three
  per-image searches) relative to it, the model chosen by the training raws' scene-group CV by the real
  guarded reward (cached per camera), fitted on the training raws;
* the held-out camera's raws judged by the guarded reward: neutral, the base, per-image CMA-ES (the seed-0
  search of ``targets_neutral.json``: from neutral, 150 calls, seed 0 — the per-image baseline's search) and
  the teacher's prediction; and (session 44) the teacher checked: per raw the best of the teacher, the base
  and neutral by the guarded reward (``isp-tune render --check``; :func:`isp_env.tuning.checked_choice` on
  the same scores, so no scorer call more).

Prints per camera the guarded scores and the teacher's share of per-image CMA-ES's gain over neutral (the
held-out goal's measure, here on the guarded score) and over the base. Scores are cached in
``RUN/camera_holdout/scores.json``: a rerun costs no scorer call.

    python benchmarks/isp_camera_holdout.py runs/ship [--cma-global-budget 600]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from isp_env.baselines import score_together
from isp_env.mos_function import load_mos_function
from isp_env.params import neutral, read_run_json, to_normalized
from isp_env.report import better_than
from isp_env.run import global_cma
from isp_env.run_inputs import raw_cameras, read_manifest, scene_groups
from isp_env.teacher import choose_by_cv, fit_teacher, residual_targets
from isp_env.tuning import checked_choice, teacher_inputs

sys.path.insert(0, str(Path(__file__).parent))
from _isp import best_of, cached_scores, run_plan  # noqa: E402

from attiqa.cli import run_app  # noqa: E402


def seed0(entry: dict) -> dict[str, float]:
    """The raw's seed-0 search: the same search as ``isp-tune``'s per-image CMA-ES baseline."""
    return next(r for r in entry.get("runs", [entry]) if int(r.get("seed", 0)) == 0)["params"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--cma-global-budget", type=int, default=600)
    args = ap.parse_args()
    plan, cfg = run_plan(args.run)
    root = Path(plan["raw_dir"])
    raws = [Path(p) for p in plan["train"] + plan["test"]]
    manifest = read_manifest(root)  # one reading: the cameras and the scene groups
    camera = raw_cameras(raws, root, manifest)
    groups = scene_groups(raws, root, manifest)
    mos = load_mos_function(cfg.scorer)
    searches = json.loads((args.run / "teacher" / "targets_neutral.json").read_text())
    folder = args.run / "camera_holdout"
    cache_path = folder / "scores.json"
    cache: dict[str, float] = read_run_json(cache_path)
    rows: list[tuple[dict[str, Any], dict[str, list[float]], dict[str, int]]] = []
    for cam in sorted(set(camera.values()), key=lambda c: (-sum(v == c for v in camera.values()), c)):
        slug = re.sub(r"[^A-Za-z0-9]+", "_", cam).strip("_")
        train = [p for p in raws if camera[p] != cam]
        test = [p for p in raws if camera[p] == cam]
        g = global_cma(folder / slug, cfg, mos, train, {}, args.cma_global_budget)
        fold = dataclasses.replace(cfg, base=g["params"])
        base = to_normalized(fold.base or {})
        names, feats, obj, group_of, _ = teacher_inputs(train, fold, mos, groups)
        t_names, t_feats, t_obj, _, _ = teacher_inputs(test, fold, mos, groups)
        x = np.stack(feats)
        y = residual_targets([best_of(searches[n]) for n in names], fold.base or {}, fold.scale)
        cv_cache: dict[str, float] = {
            k[len(slug) + 4 :]: v for k, v in cache.items() if k.startswith(f"cv:{slug}:")
        }

        def score(pairs: list[tuple[int, np.ndarray]], names=names, obj=obj, base=base) -> list[float]:
            return score_together(
                [(obj[names[i]], np.clip(base + cfg.scale * a, -1.0, 1.0)) for i, a in pairs]
            )

        choice = choose_by_cv(x, y, group_of, score, seed=cfg.seed, cache=cv_cache)
        cache.update({f"cv:{slug}:{k}": v for k, v in cv_cache.items()})
        pol = fit_teacher(x, y, choice.kind, choice.strength)
        actions = pol.predict(np.stack(t_feats).astype(np.float32))[0]
        settings = {
            "neutral": [to_normalized(neutral())] * len(t_names),
            "base": [base] * len(t_names),
            "per-image CMA-ES": [to_normalized(seed0(searches[n])) for n in t_names],
            "teacher": [base + fold.scale * a for a in actions],
        }
        model = f"{choice.kind} {choice.strength:g}"
        tag = f"{slug}:{{}}:{choice.kind}:{choice.strength:g}"
        scores = {
            method: cached_scores(cache, cache_path, tag.format(method), t_names, t_obj, v)
            for method, v in settings.items()
        }
        picks = [
            checked_choice({"policy": t, "base": b, "neutral": n})
            for t, b, n in zip(scores["teacher"], scores["base"], scores["neutral"], strict=True)
        ]
        scores["checked"] = [scores["teacher" if p == "policy" else p][i] for i, p in enumerate(picks)]
        kept = {c: picks.count(c) for c in ("policy", "base", "neutral")}
        result = {"camera": cam, "train": len(names), "test": len(t_names), "model": model}
        rows.append((result, scores, kept))
        print(json.dumps({**result, **scores, "checked kept": kept}))
    print("\nleave-one-camera-out, guarded score on the held-out camera's raws (mean)")
    print(
        f"{'camera':34s} {'train':>5s} {'test':>4s} {'neutral':>8s} {'base':>8s} {'per-img':>8s} "
        f"{'teacher':>8s}  > neutral  share vs neutral / base  model     {'checked':>8s}  > neutral  "
        "share vs neutral  kept (policy/base/neutral)"
    )
    for r, sc, kept in rows:
        m = {k: float(np.mean(v)) for k, v in sc.items()}
        gain_n = m["per-image CMA-ES"] - m["neutral"]
        gain_b = m["per-image CMA-ES"] - m["base"]
        share = {
            k: 100 * (m[k] - m["neutral"]) / gain_n if gain_n else float("nan")
            for k in ("teacher", "checked")
        }
        share_b = 100 * (m["teacher"] - m["base"]) / gain_b if gain_b else float("nan")
        wins = {k: sum(better_than(t, n) for t, n in zip(sc[k], sc["neutral"], strict=True)) for k in share}
        print(
            f"{r['camera']:34s} {r['train']:5d} {r['test']:4d} {m['neutral']:8.2f} {m['base']:8.2f} "
            f"{m['per-image CMA-ES']:8.2f} {m['teacher']:8.2f}  {wins['teacher']:3d} of {r['test']:<3d}  "
            f"{share['teacher']:6.0f} % / {share_b:4.0f} %     {r['model']:9s} {m['checked']:8.2f}  "
            f"{wins['checked']:3d} of {r['test']:<3d}  {share['checked']:6.0f} %           "
            + "/".join(str(n) for n in kept.values())
        )


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
