"""Session 50's audit of ``isp-tune`` beyond its default teacher: SB3 agents, other action modes, policies
started from or evaluated with other settings (docs/robustness.md rows). Real runs on DNGs read by rawpy,
the classical scorer, a few steps each."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import isp_heldout, run_isp_tune

# a seconds-long RL run (4 SAC steps on previews, no baselines); the raws and --out are added
TINY_AGENT = (
    "--model", "classical", "--preview", "64", "--base", "neutral", "--no-baselines",
    "--timesteps", "4", "--learning-starts", "2", "--test-fraction", "0.3",
)  # fmt: skip


def agent_run(tmp_path: Path, raws: list[Path], name: str, *extra: object) -> tuple[Path, Path]:
    """``raws`` copied into ``tmp_path/raws`` (once) and a tiny `isp-tune` agent run into ``tmp_path/NAME``
    (``extra``: more options)."""
    raw_dir = tmp_path / "raws"
    if not raw_dir.exists():
        raw_dir.mkdir()
        for p in raws:
            (raw_dir / p.name).write_bytes(p.read_bytes())
    run = tmp_path / name
    res = run_isp_tune("--raw-dir", raw_dir, "--out", run, *TINY_AGENT, "--algo", "sac", *extra)
    assert res.returncode == 0, res.stderr[-2000:]
    return raw_dir, run


def test_the_heldout_summary_records_the_policies_it_evaluated(tmp_path, isp_raws):
    """**Was** `benchmarks/isp_heldout.py RAWS --run sac=RUN` writing `"algo": "teacher"` into summary.json —
    its own default `TrainConfig()`, not the SAC agent it loaded and evaluated; now the policies' own
    algorithm, and per policy what its card says it is (algorithm, action and observation modes, steps:
    ``policies``)."""
    raw_dir, run = agent_run(tmp_path, isp_raws, "sac", "--action-mode", "absolute")
    summary = isp_heldout(raw_dir, tmp_path / "heldout", f"sac={run}", global_budget=4)
    assert summary["algo"] == "sac"  # was "teacher"
    card = json.loads((run / "policy.json").read_text())
    assert summary["policies"] == {
        "sac": {
            "algo": "sac", "action_mode": "absolute", "obs_mode": "stats", "max_steps": 1,
            "timesteps": card["timesteps"], "train_raws": len(card["train_raws"]),
        }
    }  # fmt: skip
