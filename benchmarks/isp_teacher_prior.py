"""Does starting a teacher run from a policy's rows (``isp-tune --algo teacher --init-policy``) help a user
with few raws? (issue 19, session 24.)

On a finished ``isp-tune --algo teacher`` run (RUN: its split, base and per-image searches are reused, so
no search is run again), a "user" is a seeded draw of ``--user`` training raws from as many scene groups;
the "prior" is the run's other training raws, as a policy fitted on them would carry them. Three teachers
are judged by the real guarded reward on the run's held-out raws:

* user only: the user's raws, the model chosen by the user's scene-group CV (as ``isp-tune`` does);
* user + prior: the same CV, every fit with the prior rows added (``choose_by_cv(prior=...)``);
* prior only: ridge 1 on the prior rows (what the user starts from, no raw of their own).

Also neutral, the base, per-image CMA-ES (RUN/baselines/cma_per_image.json's settings) and the run's own
teacher fitted on every training raw (ridge 1), re-scored the same way. Scores are cached in
RUN/teacher/prior_bench.json, so a rerun costs no scorer call.

    python benchmarks/isp_teacher_prior.py RUN [--user 5] [--draws 4]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from attiqa.io.atomic import write_json_atomic
from isp_env.mos_function import load_mos_function
from isp_env.params import neutral, to_normalized
from isp_env.run import image_keys
from isp_env.run_inputs import scene_groups
from isp_env.teacher import choose_by_cv, fit_teacher, residual_targets
from isp_env.tuning import teacher_inputs

sys.path.insert(0, str(Path(__file__).parent))
from _isp import best_of, cached_scores, run_plan  # noqa: E402

from attiqa.cli import run_app  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--user", type=int, default=5, help="training raws of the user (one per scene group)")
    ap.add_argument("--draws", type=int, default=4)
    args = ap.parse_args()
    plan, cfg = run_plan(args.run)
    root = Path(plan["raw_dir"])
    train_raws, test_raws = [Path(p) for p in plan["train"]], [Path(p) for p in plan["test"]]
    groups = scene_groups(train_raws + test_raws, root)
    mos = load_mos_function(cfg.scorer)
    names, feats, train_obj, group_of, _ = teacher_inputs(train_raws, cfg, mos, groups)
    t_names, t_feats, t_obj, _, _ = teacher_inputs(test_raws, cfg, mos, groups)
    searches = json.loads((args.run / "teacher" / "targets_neutral.json").read_text())
    x = np.stack(feats)
    y = residual_targets([best_of(searches[n]) for n in names], cfg.base or {}, cfg.scale)
    xt = np.stack(t_feats)
    base = to_normalized(cfg.base or {})
    cache_path = args.run / "teacher" / "prior_bench.json"
    cache: dict[str, float] = json.loads(cache_path.read_text()) if cache_path.exists() else {}

    def held_out(tag: str, settings: list[np.ndarray]) -> float:
        """Mean guarded score of normalised settings on the held-out raws (cached by ``tag``)."""
        return float(np.mean(cached_scores(cache, cache_path, tag, t_names, t_obj, settings)))

    def policy_settings(pol) -> list[np.ndarray]:
        return [base + cfg.scale * a for a in pol.predict(xt.astype(np.float32))[0]]

    per = json.loads((args.run / "baselines" / "cma_per_image.json").read_text())
    key_of = {p: k for k, p in image_keys(test_raws, root).items()}  # the run's names of its outputs
    keys = {n: key_of[p] for n, p in zip(t_names, test_raws, strict=True)}
    ref = {
        "neutral": held_out("neutral", [to_normalized(neutral())] * len(t_names)),
        "the base (RUN's global CMA-ES)": held_out("base", [base] * len(t_names)),
        "per-image CMA-ES": held_out("cma", [to_normalized(per[keys[n]]["params"]) for n in t_names]),
        f"teacher, all {len(x)} training raws": held_out(
            "all", policy_settings(fit_teacher(x, y, "ridge", 1.0))
        ),
    }
    b0 = ref["the base (RUN's global CMA-ES)"]
    gain = ref["per-image CMA-ES"] - b0
    rows = []
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(group_of):
        by_group.setdefault(g, []).append(i)
    for draw in range(args.draws):
        rng = np.random.default_rng(draw)
        picked = rng.choice(sorted(by_group), size=args.user, replace=False)
        user = np.array(sorted(int(rng.choice(by_group[g])) for g in picked))
        prior = np.setdiff1d(np.arange(len(x)), np.array([i for g in picked for i in by_group[g]]))
        u_groups = [group_of[i] for i in user]

        def score(pairs: list[tuple[int, np.ndarray]], user=user, draw=draw) -> list[float]:
            out = []
            for i, a in pairs:  # i: index into the user's raws
                key = f"cv:{draw}:{names[user[i]]}:{np.round(a, 6).tobytes().hex()}"
                if key not in cache:
                    cache[key] = float(train_obj[names[user[i]]](np.clip(base + cfg.scale * a, -1.0, 1.0)))
                out.append(cache[key])
            return out

        result: dict[str, Any] = {"draw": draw, "user": [names[i] for i in user], "n_prior": len(prior)}
        for label, pr in (("user only", None), ("user + prior", (x[prior], y[prior]))):
            c = choose_by_cv(x[user], y[user], u_groups, score, n_folds=min(5, args.user), prior=pr)
            px, py = (
                (x[user], y[user])
                if pr is None
                else (np.concatenate([x[user], pr[0]]), np.concatenate([y[user], pr[1]]))
            )
            result[label] = held_out(
                f"{draw}:{label}:{c.kind}:{c.strength:g}",
                policy_settings(fit_teacher(px, py, c.kind, c.strength)),
            )
            result[label + " model"] = f"{c.kind} {c.strength:g}"
        write_json_atomic(cache_path, cache)
        result["prior only"] = held_out(
            f"{draw}:prior", policy_settings(fit_teacher(x[prior], y[prior], "ridge", 1.0))
        )
        rows.append(result)
        print(json.dumps(result))
    print(f"\nheld-out raws: {len(t_names)}; guarded score (share of per-image CMA-ES's gain over the base)")
    for k, v in ref.items():
        print(f"  {k:34s} {v:6.2f} ({100 * (v - b0) / gain:5.1f} %)")
    for label in ("user only", "user + prior", "prior only"):
        vals = [r[label] for r in rows]
        shares = [100 * (v - b0) / gain for v in vals]
        print(
            f"  {label:34s} {np.mean(vals):6.2f} ({np.mean(shares):5.1f} %)  per draw: "
            + ", ".join(f"{s:.0f} %" for s in shares)
        )


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
