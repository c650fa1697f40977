"""A trained ISP policy against the neutral render on a folder of raws, by the guarded reward (no search).

What a user does before trusting a policy on another camera's raws, and what a change to the raw pipeline
must be checked with: every raw rendered neutral and with the policy, both scored by the reward model (MOS
and MOS minus the guard's penalty), one report. No CMA-ES baseline is run (``isp-tune`` does that), so it
takes minutes, not an hour. Writes results.csv, summary.json, report.md and grid.png into --out, and prints
per raw the guarded reward of both and the policy's wins.

    python benchmarks/isp_policy_check.py ../shared/data/raw/real --policy default --out runs/policy_check

The shipped default policy has seen every shared real raw in training, so on them this is a check that it
still improves on neutral, not a held-out figure (docs/isp.md, "Held-out real raws").
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from attiqa.cli import run_app
from attiqa.errors import ConfigError
from isp_env.mos_function import load_mos_function
from isp_env.policy_io import load_policy, resolve_policy
from isp_env.raw import find_raws, probe_raw
from isp_env.reward import DEFAULT_VIEW_SHORTER
from isp_env.run import evaluate
from isp_env.tuning import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw_dir", type=Path, help="folder of raws (searched recursively)")
    ap.add_argument("--policy", default="default", help="policy.safetensors, a run folder, or `default`")
    ap.add_argument("--model", default=None, help="reward scorer (default: the bundled ATTIQA model)")
    ap.add_argument("--out", type=Path, default=Path("runs/policy_check"))
    args = ap.parse_args()

    raws = [p for p in find_raws(args.raw_dir) if probe_raw(p) is None]
    if not raws:
        raise ConfigError(f"{args.raw_dir}: no raw LibRaw can read")
    policy, card = load_policy(resolve_policy(args.policy))
    mos = load_mos_function(args.model)
    cfg = TrainConfig(algo=str(card.get("algo", "teacher")), scorer=args.model)
    cfg.view_shorter = mos.view_shorter or DEFAULT_VIEW_SHORTER
    evaluate(args.raw_dir, args.out, cfg, mos, raws, [], {"policy": (policy, card)}, {}, {}, baselines=False)

    by: dict[str, dict[str, tuple[float, float]]] = {}
    with (args.out / "results.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            by.setdefault(r["image"], {})[r["method"]] = (float(r["mos"]), float(r["guarded"]))
    print(f"{'raw':32s} {'neutral MOS':>11s} {'policy MOS':>10s} {'guarded':>8s}")
    for key, v in sorted(by.items()):
        print(f"{key:32s} {v['neutral'][0]:11.2f} {v['policy'][0]:10.2f} {v['policy'][1]:8.2f}")
    for i, what in enumerate(("MOS", "guarded reward")):
        gains = [v["policy"][i] - v["neutral"][i] for v in by.values()]
        before, after = (statistics.mean(v[m][i] for v in by.values()) for m in ("neutral", "policy"))
        print(
            f"{what}: policy above neutral on {sum(g > 0 for g in gains)} of {len(gains)} raws; mean "
            f"{before:.2f} -> {after:.2f} (median gain {statistics.median(gains):+.2f})"
        )


if __name__ == "__main__":
    run_app(main)
