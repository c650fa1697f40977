"""Whether an `isp-tune` run's policy is finished, decided in one place from the run's own records
(``isp_env.policy_files.training_left``: run.json's ``asked``; ``init_policy_file``: the file a started run
began from). Real runs on DNGs read by rawpy, the classical scorer, a few steps each, stopped by a real
SIGINT (docs/robustness.md rows)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from helpers import REPO, TINY_TEACHER_OPTIONS, attiqa_env, tiny_teacher_run
from test_isp_agents_and_policies import TINY_AGENT, agent_run, stopped_longer_run

import isp_env.tuning


def ctrl_c_at(monkeypatch, name: str, after_steps: int | None = None) -> None:
    """A real Ctrl-C (SIGINT to this process) when ``isp_env.tuning.NAME`` is called — ``build_model``:
    training about to start, no new checkpoint; ``save_state`` with ``after_steps``: once a checkpoint of
    more steps is saved; ``search_targets``: a teacher's searches about to start."""
    real = getattr(isp_env.tuning, name)

    def stop(*args, **kwargs):
        if after_steps is None:
            os.kill(os.getpid(), signal.SIGINT)
        made = real(*args, **kwargs)
        if after_steps is not None and args[0].num_timesteps > after_steps:
            os.kill(os.getpid(), signal.SIGINT)
        return made

    monkeypatch.setattr(isp_env.tuning, name, stop)


def continued_and_stopped(tmp_path, isp_raws, isp_cli, monkeypatch, name: str = "run") -> tuple[Path, Path]:
    """A finished 4-step RUN continued with `--timesteps 16` and stopped by a Ctrl-C as its training starts,
    before any new checkpoint (its checkpoint and policy.safetensors still the 4-step ones)."""
    raw_dir, run = agent_run(tmp_path, isp_raws, name)
    with monkeypatch.context() as mp:
        ctrl_c_at(mp, "build_model")
        res = isp_cli(
            "--raw-dir", raw_dir, "--out", run, *TINY_AGENT, "--algo", "sac", "--base", "neutral",
            "--timesteps", "16", "--checkpoint-every", "1000",
        )  # fmt: skip
    assert res.returncode == 130, res.stderr[-2000:]
    return raw_dir, run


def render_refused(isp_cli, raw_dir: Path, run: Path, png: Path) -> tuple[Path, Path, str]:
    """`isp-tune render RAW --policy RUN -o PNG` of a raw of ``raw_dir``, refused (exit 2, nothing
    written): the raw, the PNG and the words said."""
    raw = sorted(raw_dir.iterdir())[0]
    res = isp_cli("render", raw, "--policy", run, "-o", png)
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and not png.exists(), said
    return raw, png, said


def test_a_run_continued_with_more_steps_and_stopped_before_a_checkpoint_is_unfinished(
    tmp_path, isp_raws, isp_cli, monkeypatch
):
    """**Was** `isp-tune render RAW --policy RUN` of a 4-step RUN continued with `--timesteps 16` and stopped
    before its first new checkpoint: rendered with the 4-step policy, no word (run.json did not record the
    steps asked; only a checkpoint further on than the policy told). Now one line: the steps its last run
    asked. A run.json of the version before (no ``asked``) renders as it did."""
    raw_dir, run = continued_and_stopped(tmp_path, isp_raws, isp_cli, monkeypatch)
    raw, png, said = render_refused(isp_cli, raw_dir, run, tmp_path / "out.png")
    assert (
        f"--policy {run}: its training has not finished (its last run asked 16 steps, its "
        "policy.safetensors is of step 4) — finish it" in said
    ), said
    record = json.loads((run / "run.json").read_text())
    old = {k: v for k, v in record.items() if k not in ("asked", "inputs")}  # as the version before wrote it
    (run / "run.json").write_text(json.dumps(old))
    assert isp_cli("render", raw, "--policy", run, "-o", png).returncode == 0 and png.is_file()


def test_a_teacher_rerun_with_other_settings_and_stopped_is_unfinished(
    tmp_path, isp_raws, isp_cli, monkeypatch
):
    """**Was** a finished teacher RUN (`--teacher-budget 6`) rerun with `--teacher-budget 12` and stopped in
    its searches: `isp-tune render --policy RUN` used the policy of budget 6 without a word. Now one line
    naming the settings its policy was fitted with and those asked; the rerun, finished, is taken."""
    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws)
    more = [*TINY_TEACHER_OPTIONS, "--teacher-budget", "12"]  # the last one given is taken
    with monkeypatch.context() as mp:
        ctrl_c_at(mp, "search_targets")
        res = isp_cli("--raw-dir", raw_dir, "--out", run, *more)
    assert res.returncode == 130, res.stderr[-2000:]
    raw, png, said = render_refused(isp_cli, raw_dir, run, tmp_path / "out.png")
    assert (
        f"--policy {run}: its training has not finished (its policy.safetensors was fitted with other "
        "settings than its last run asked (teacher_budget 6, now 12))" in said
    ), said
    assert isp_cli("--raw-dir", raw_dir, "--out", run, *more).returncode == 0
    assert isp_cli("render", raw, "--policy", run, "-o", png).returncode == 0 and png.is_file()


def test_a_run_started_from_run_and_stopped_resumes_after_run_was_continued_and_stopped(
    tmp_path, isp_raws, isp_cli, monkeypatch
):
    """NEW started with `--init-policy RUN` and stopped before its first checkpoint, rerun after RUN was
    continued with more steps and stopped after a checkpoint: **was** let through `run()`'s check (a started
    run), then refused inside training ("--init-policy RUN: its training has not finished") — train
    resolved RUN as a new run's. Now NEW starts from the file its run.json says it started from
    (unchanged), and finishes."""
    raw_dir, run = agent_run(tmp_path, isp_raws, "run")
    new = tmp_path / "new"
    start = ["--raw-dir", raw_dir, "--out", new, *TINY_AGENT, "--algo", "sac", "--base", "neutral"]
    with monkeypatch.context() as mp:
        ctrl_c_at(mp, "build_model")
        res = isp_cli(*start, "--init-policy", run)
    assert res.returncode == 130 and (new / "run.json").is_file(), res.stderr[-2000:]
    stopped_longer_run(tmp_path, isp_raws, isp_cli, monkeypatch)  # RUN's checkpoint at step 8, policy 4
    res = isp_cli(*start, "--init-policy", run)
    said = " ".join(res.stderr.split())
    assert res.returncode == 0 and (new / "policy.safetensors").is_file(), said
    fresh = isp_cli(*start[:3], tmp_path / "fresh", *start[4:], "--init-policy", run)  # a new run: refused
    assert fresh.returncode == 2 and f"--init-policy {run}: its training has not finished" in fresh.stderr


def test_compare_policies_advice_keeps_the_policy_name(tmp_path, isp_raws, isp_cli, monkeypatch):
    """**Was** `benchmarks/isp_compare_policies.py BASE --policy sac=RUN` with RUN unfinished: "--policy
    RUN: … or use that earlier policy anyway: --policy RUN/policy.safetensors" — without `sac=`, so the
    command it suggests fails. Now the name is kept in both."""
    _, base = agent_run(tmp_path, isp_raws, "base")
    _, run = stopped_longer_run(tmp_path, isp_raws, isp_cli, monkeypatch)
    out = tmp_path / "compare"
    script = [sys.executable, str(REPO / "benchmarks" / "isp_compare_policies.py"), str(base)]
    res = subprocess.run(
        [*script, "--policy", f"sac={run}", "--out", str(out)],
        env=attiqa_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    said = " ".join(res.stderr.split())
    assert res.returncode == 2, said
    assert said.startswith(f"error: --policy sac={run}: its training has not finished"), said
    assert said.endswith(f"or use that earlier policy anyway: --policy sac={run / 'policy.safetensors'}"), (
        said
    )
