"""Held-out comparison of several trained policies and the baselines on one scene-group split (issue 19).

Each ``--run NAME=DIR`` is an ``isp-tune`` run folder (its ``policy.safetensors`` and ``training.json``); all
runs must use the same raw folder and seed, so they share the split. At most ``--test-raws`` (default
100, as isp-tune's) of the held-out raws are evaluated, spread over the scene groups and seeded as the
runs' own evaluation (each costs the per-image CMA-ES's ``--cma-image-budget`` calls). Writes the usual report
(``results.csv``, ``summary.json``, ``report.md``, ``grid.png``) into ``--out`` with one column per policy.
Every method is scored at the scorer's own scale, as ``isp-tune check`` scores, whatever ``--preview`` the
runs trained at (each policy tunes at its own, from its card): docs/isp.md says what that means for the runs'
own reports.

    python benchmarks/isp_heldout.py RAW_DIR --run agent=runs/a --run agent_real_only=runs/b \
        --out runs/heldout
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from attiqa.cli import run_app
from attiqa.errors import AttiqaError
from isp_env.mos_function import load_mos_function
from isp_env.params import read_run_json
from isp_env.policy_files import FINISH_RUN, training_left
from isp_env.policy_io import load_policy
from isp_env.raw import find_raws
from isp_env.registration import TEST_RAWS
from isp_env.run import capped, evaluate, split_names
from isp_env.run_inputs import readable_raws, scene_groups, split
from isp_env.train_config import TrainConfig
from isp_env.tuning import check_reward_model


def run_files(spec: str) -> tuple[str, Path, dict[str, Any], dict[str, Any]]:
    """``NAME=RUN_DIR`` -> its name, folder, ``run.json`` and ``training.json``; one line (not a traceback)
    for a spec without ``=`` or a folder that is not a finished ``isp-tune`` run — also one continued with
    more steps and stopped, whose files an earlier training left (the rule of ``isp-tune render --policy
    RUN``: :func:`isp_env.policy_files.training_left`)."""
    name, sep, folder = spec.partition("=")
    if not sep or not name or not folder:
        raise AttiqaError(f"--run {spec}: expected NAME=RUN_DIR, e.g. --run agent=runs/isp_real")
    run = Path(folder)
    for needed in ("run.json", "training.json", "policy.safetensors"):
        if not (run / needed).is_file():
            raise AttiqaError(
                f"{run}: no {needed} — not a finished isp-tune run folder; pass the --out of an "
                "`isp-tune` run that has ended"
            )
    if left := training_left(run):  # continued and stopped: an earlier training's policy and training.json
        finish = FINISH_RUN.format(run=run)
        raise AttiqaError(f"--run {spec}: its training has not finished ({left}) — {finish}")
    return name, run, read_run_json(run / "run.json"), read_run_json(run / "training.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("raw_dir", type=Path)
    ap.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--model", default=None)
    ap.add_argument("--cma-global-budget", type=int, default=600)
    ap.add_argument("--cma-image-budget", type=int, default=150)
    ap.add_argument("--test-raws", type=int, default=TEST_RAWS, help="held-out raws evaluated, at most")
    args = ap.parse_args()
    if args.test_raws < 1:
        raise AttiqaError(f"--test-raws {args.test_raws}: evaluate at least 1 held-out raw")
    import torch

    torch.set_num_threads(1)
    raws, _ = readable_raws(find_raws(args.raw_dir))  # the run's own split: unreadable raws stay out
    groups = scene_groups(raws, args.raw_dir)
    train_raws, test_raws = split(raws, args.test_fraction, args.seed, groups)
    agents, budgets = {}, {}
    for name, folder, plan, training in map(run_files, args.run):
        if split_names(plan)[1] != split_names({"raw_dir": str(args.raw_dir), "test": test_raws})[1]:
            raise AttiqaError(
                f"{folder}: its test raws differ from this split — use the same raw folder and seed"
            )
        agents[name] = load_policy(folder / "policy.safetensors")
        budgets[name] = {
            "train": int(training["scorer_calls"]) + int(plan.get("base_scorer_calls", 0)),
            "test": 0,
        }
    mos = load_mos_function(args.model)
    for name, (_, card) in agents.items():  # a policy tuned for another reward model is judged by this one
        check_reward_model(name, card, args.model, refuse=False)
    cfg = TrainConfig(seed=args.seed, scorer=args.model, view_shorter=mos.view_shorter or 384)
    args.out.mkdir(parents=True, exist_ok=True)
    evaluated, held_out = capped(test_raws, args.test_raws, groups, args.seed, "held-out raws")
    summary = evaluate(
        args.raw_dir,
        args.out,
        cfg,
        mos,
        evaluated,
        train_raws,
        agents,
        budgets,
        {},
        True,
        args.cma_global_budget,
        args.cma_image_budget,
        held_out=held_out,
    ).summary
    print((args.out / "report.md").read_text())
    neutral = next(s for s in summary if s["method"] == "neutral")
    per = next(s for s in summary if s["method"] == "cma_per_image")
    headroom = per["mean_mos"] - neutral["mean_mos"]
    for s in summary:
        if s["method"].removesuffix("_checked") in agents:
            # per-image CMA-ES no better than neutral (a tiny budget, few raws): a share of its "gain" was
            # printed as -1572102308 %
            share = (
                f"{100 * (s['mean_mos'] - neutral['mean_mos']) / headroom:.0f} % of per-image CMA-ES's gain "
                "over neutral"
                if headroom > 1e-6
                else f"mean MOS {s['mean_mos']:.3g} against neutral's {neutral['mean_mos']:.3g} (per-image "
                "CMA-ES did not improve on neutral: no gain to share)"
            )
            print(
                f"{s['method']}: {share}; better than neutral on {100 * s['beats_neutral']:.0f} % of the raws"
            )


if __name__ == "__main__":
    run_app(main)  # an AttiqaError (a folder that is not a run, a raw folder without raws) is one line
