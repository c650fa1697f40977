"""Several trained policies in one held-out report, beside the baselines of an `isp-tune` run (issue 19).

Reuses RUN's split (run.json) and its cached baselines (global and per-image CMA-ES: no new search when the
budgets match), applies each policy to RUN's held-out raws (no scorer call) and scores every render with
the current reward (scorer + guard), so policies trained in other runs, or with an earlier guard, are
compared on equal terms. Writes results.csv, summary.json, report.md and grid.png into --out.

    python benchmarks/isp_compare_policies.py RUN --policy teacher=RUN/policy.safetensors \
        --policy sac22=runs/main/policy.safetensors --calls sac22=3768 --out runs/compare
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from attiqa.cli import run_app
from attiqa.errors import ConfigError
from isp_env.mos_function import load_mos_function
from isp_env.params import check_values
from isp_env.policy_files import resolve_policy
from isp_env.policy_io import load_policy
from isp_env.run import evaluate

sys.path.insert(0, str(Path(__file__).parent))
from _isp import run_plan  # noqa: E402


def named(option: str, spec: str, example: str) -> tuple[str, str]:
    """``NAME=VALUE`` -> (NAME, VALUE); one line naming the option and an example for anything else (was
    a ``ValueError`` traceback, after the reward model had loaded)."""
    name, sep, value = spec.partition("=")
    if not sep or not name or not value:
        raise ConfigError(f"{option} {spec}: expected NAME=VALUE, e.g. {option} {example}")
    return name, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="an isp-tune run folder (its split and baselines are reused)")
    ap.add_argument("--policy", action="append", default=[], help="NAME=policy.safetensors (repeatable)")
    ap.add_argument(
        "--calls",
        action="append",
        default=[],
        help="NAME=training scorer calls, for the "
        "report (default: the policy folder's training.json + run.json base calls)",
    )
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    named_paths = [named("--policy", spec, "sac=runs/sac") for spec in args.policy]  # before any work
    # its advice keeps NAME=; refused before --out is made
    policies = [(name, resolve_policy(path, f"--policy {name}=")) for name, path in named_paths]
    given = dict(named("--calls", spec, "sac=3768") for spec in args.calls)
    if bad := [f"{n}={c}" for n, c in given.items() if not c.isdigit()]:
        raise ConfigError(
            f"--calls {bad[0]}: the calls are a whole number of scorer calls, e.g. --calls sac=3768"
        )
    import torch

    torch.set_num_threads(1)
    plan, cfg = run_plan(args.run)
    if cfg.base:
        cfg.base = check_values(cfg.base)
    mos = load_mos_function(cfg.scorer)
    (args.out / "baselines").mkdir(parents=True, exist_ok=True)
    for f in (args.run / "baselines").glob("*.json"):
        shutil.copy(f, args.out / "baselines" / f.name)
    agents, budgets = {}, {}
    for name, resolved in policies:
        policy, card = load_policy(resolved)
        agents[name] = (policy, card)
        if name in given:
            calls = int(given[name])
        else:
            folder = resolved.parent  # (a run folder given as the policy: that folder, not its parent)
            train, run = (
                json.loads((folder / f).read_text()) if (folder / f).exists() else {}
                for f in ("training.json", "run.json")
            )
            calls = int(train.get("scorer_calls", 0)) + int(run.get("base_scorer_calls", 0))
        budgets[name] = {"train": calls, "test": 0}
    summary = evaluate(
        Path(plan["raw_dir"]),
        args.out,
        cfg,
        mos,
        [Path(p) for p in plan["test"]],
        [Path(p) for p in plan["train"]],
        agents,
        budgets,
        {},
    ).summary
    for s in summary:
        print(
            f"{s['label']:24s} MOS {s['mean_mos']:6.2f}  guarded {s['mean_guarded']:6.2f}  "
            f"> neutral {100 * s.get('beats_neutral', 0):3.0f} %  "
            f"clipped {100 * s['mean_clipped']:4.1f} %  saturation {s['mean_saturation']:.3f}"
        )


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
