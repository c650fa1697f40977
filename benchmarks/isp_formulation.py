"""Choose the agent's formulation by measurement, on the TRAINING side only (issue 19).

The raws are split as ``isp-tune`` splits them (scene groups, ``--seed``); the held-out raws are never
touched. The training raws are split again by scene group into a fit part and a validation part
(``--val-fraction``). Every formulation trains for the same ``--steps`` on the fit raws, then its
deterministic policy tunes each validation raw (no scorer call) and is scored like the reward: MOS at the
scorer's scale and the guarded score (MOS minus the over-processing guard). Residual formulations start from
a base: ``neutral`` or ``global`` (one setting found by CMA-ES on the fit raws, ``--base-budget`` calls).

    python benchmarks/isp_formulation.py RAW_DIR --out runs/formulation --steps 600 \
        --config sac:stats:residual:global --config td3:stats:residual:global --config sac:image:absolute
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from attiqa.cli import run_app
from attiqa.io.atomic import write_json_atomic
from isp_env.baselines import cma_search, guarded_objective
from isp_env.mos_function import load_mos_function
from isp_env.params import neutral
from isp_env.policy_io import load_policy
from isp_env.raw import find_raws, read_raw
from isp_env.reward import develop_view, finish_view, make_guard
from isp_env.run_inputs import readable_raws, scene_groups, split
from isp_env.train_config import TrainConfig
from isp_env.tuning import train, tune_with_policy


def global_base(fit, mos, view, budget: int, out: Path, seed: int) -> dict[str, float]:
    path = out / "base_global.json"
    if path.exists():
        doc = json.loads(path.read_text())
        if doc.get("budget") == budget:
            return doc["params"]
    n = min(len(fit), max(1, budget // 48))
    rng = np.random.default_rng(seed)
    items = []
    for i in rng.permutation(len(fit))[:n]:
        dev = develop_view(read_raw(fit[int(i)]), view)
        items.append((dev, make_guard(dev, fit[int(i)], view), view))
    res = cma_search(guarded_objective(items, mos), budget, len(items), seed)
    write_json_atomic(path, {"params": res.params, "score": res.mos, "calls": res.calls, "budget": budget})
    return res.params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw_dir", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--config",
        action="append",
        required=True,
        help="ALGO:OBS:ACTION[:BASE], e.g. sac:stats:residual:global, ppo:image:absolute",
    )
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--val-fraction", type=float, default=0.3)
    ap.add_argument("--base-budget", type=int, default=300)
    ap.add_argument("--residual-scale", type=float, default=0.4)
    ap.add_argument("--learning-starts", type=int, default=100)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    raws, _ = readable_raws(find_raws(args.raw_dir))  # the run's own split: unreadable raws stay out
    groups = scene_groups(raws, args.raw_dir)
    train_raws, _ = split(raws, args.test_fraction, args.seed, groups)  # the held-out side is never used
    fit, val = split(train_raws, args.val_fraction, args.seed + 1, groups)
    print(f"{len(fit)} fit raws, {len(val)} validation raws (all from the training side)", flush=True)
    mos = load_mos_function(args.model)
    view = mos.view_shorter or 384
    args.out.mkdir(parents=True, exist_ok=True)
    items = {}
    for p in val:
        dev = develop_view(read_raw(p), view)
        items[p] = (dev, make_guard(dev, p, view))

    def score(params_of) -> dict[str, float]:
        imgs = [finish_view(dev, params_of(p), view) for p, (dev, _) in items.items()]
        mos_v = [float(m) for m in mos(imgs)]  # the validation raws' renders in one reward call
        guarded = [
            m - guard.penalty(img) * mos.width / 100.0
            for m, img, (_, guard) in zip(mos_v, imgs, items.values(), strict=True)
        ]
        return {
            "mos": float(np.mean(mos_v)),
            "guarded": float(np.mean(guarded)),
            "guarded_each": [float(g) for g in guarded],
        }

    results = {"neutral": score(lambda p: neutral())}
    base = None
    for spec in args.config:
        if spec.split(":")[3:4] == ["global"]:
            base = global_base(fit, mos, view, args.base_budget, args.out, args.seed)
            results["global_base"] = score(lambda p, b=base: b)
            break
    for spec in args.config:
        algo, obs, action, *rest = spec.split(":")
        base_name = rest[0] if rest else "neutral"
        cfg = TrainConfig(
            algo=algo,
            timesteps=args.steps,
            n_envs=1,
            obs_mode=obs,
            action_mode=action,
            delta_scale=args.residual_scale if action == "residual" else 0.5,
            base=base if base_name == "global" else None,
            seed=args.seed,
            view_shorter=view,
            learning_starts=args.learning_starts,
            scorer=args.model,
            checkpoint_every=10**9,
        )
        run_dir = args.out / spec.replace(":", "_")
        t0 = time.time()
        summary = train(run_dir, fit, cfg, subprocess=False)
        secs = time.time() - t0
        policy, card = load_policy(run_dir / "policy.safetensors")
        r = score(lambda p, pol=policy, c=card: tune_with_policy(pol, c, p))
        r |= {"steps": summary["timesteps"], "scorer_calls": summary["scorer_calls"], "seconds": secs}
        results[spec] = r
        write_json_atomic(args.out / "results.json", results)
    n0 = np.asarray(results["neutral"]["guarded_each"])
    print(f"{'formulation':32s} {'MOS':>6s} {'guarded':>8s} {'> neutral':>9s} {'steps/s':>8s}")
    for name, r in results.items():
        beats = float(np.mean(np.asarray(r["guarded_each"]) > n0 + 1e-9))
        rate = f"{r['steps'] / r['seconds']:.2f}" if "steps" in r else ""
        print(f"{name:32s} {r['mos']:6.2f} {r['guarded']:8.2f} {100 * beats:8.0f}% {rate:>8s}")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
