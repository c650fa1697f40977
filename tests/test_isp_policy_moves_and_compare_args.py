"""Review of session 66's finished-policy change: a teacher run whose raw folder was moved (same files)
stays finished; `benchmarks/isp_compare_policies.py` says a malformed `--policy` / `--calls` in one line
and reads a run folder's own training calls. Real runs on DNGs read by rawpy, the classical scorer
(docs/robustness.md rows)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from helpers import REPO, TINY_TEACHER_OPTIONS, attiqa_env, tiny_teacher_run
from test_isp_agents_and_policies import agent_run
from test_isp_policy_finished import ctrl_c_at

import isp_env.tuning


def test_a_teacher_run_rerun_from_its_moved_raw_folder_keeps_its_fit(
    tmp_path, isp_raws, isp_cli, monkeypatch
):
    """**Was** a finished teacher RUN rerun with `--raw-dir` its raw folder moved (the same files): fitted
    again (its fit keyed by the raws' paths), and stopped in that fit `isp-tune render --policy RUN` refused
    its policy as "fitted with other settings than its last run asked (train_raws …)". Now the fit is keyed
    by the raws' names and stamps: "teacher already fitted", no search, and the policy renders."""
    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws)
    moved = raw_dir.rename(tmp_path / "moved")  # (mtimes kept, as `mv` keeps them)
    with monkeypatch.context() as mp:
        ctrl_c_at(mp, "teacher_inputs")  # a Ctrl-C once a fit starts: none should
        res = isp_cli("--raw-dir", moved, "--out", run, *TINY_TEACHER_OPTIONS)
    assert res.returncode == 0 and "teacher already fitted" in res.stdout + res.stderr, res.stderr[-2000:]
    png = tmp_path / "out.png"
    res = isp_cli("render", sorted(moved.iterdir())[0], "--policy", run, "-o", png)
    assert res.returncode == 0 and png.is_file(), res.stderr


def compare(*args: object) -> subprocess.CompletedProcess:
    """`python benchmarks/isp_compare_policies.py ARGS`, a real process."""
    script = [sys.executable, str(REPO / "benchmarks" / "isp_compare_policies.py")]
    return subprocess.run(
        [*script, *map(str, args)], env=attiqa_env(), capture_output=True, text=True, timeout=600
    )


def test_compare_policies_says_a_malformed_policy_or_calls_in_one_line(tmp_path):
    """**Was** a `ValueError` traceback for `--policy RUN` (no `NAME=`) and `--calls sac=many`, after the
    reward model loaded and --out was made; now one line each, nothing made."""
    out = tmp_path / "compare"
    for args, said in (
        (
            ["--policy", "runs/sac"],
            "error: --policy runs/sac: expected NAME=VALUE, e.g. --policy sac=runs/sac",
        ),
        (
            ["--policy", "sac=default", "--calls", "sac=many"],
            "error: --calls sac=many: the calls are a whole number of scorer calls, e.g. --calls sac=3768",
        ),
        (["--calls", "3768"], "error: --calls 3768: expected NAME=VALUE, e.g. --calls sac=3768"),
    ):
        res = compare(tmp_path, *args, "--out", out)
        assert res.returncode == 2 and " ".join(res.stderr.split()) == said, res.stderr
        assert not out.exists()


def test_compare_policies_reads_the_calls_of_a_run_folder_given_as_the_policy(tmp_path, isp_raws):
    """**Was** `--policy sac=RUN` (a run folder, which the script takes) reported with the training calls
    of RUN's parent folder (none: 0); now RUN's own training.json and run.json."""
    _, run = agent_run(tmp_path, isp_raws, "run")
    out = tmp_path / "compare"
    res = compare(run, "--policy", f"sac={run}", "--out", out)
    assert res.returncode == 0, res.stderr[-2000:]
    calls = json.loads((run / "training.json").read_text())["scorer_calls"]
    calls += json.loads((run / "run.json").read_text()).get("base_scorer_calls", 0)
    rows = {m["method"]: m for m in json.loads((out / "summary.json").read_text())["methods"]}
    assert calls > 0 and rows["sac"]["train_scorer_calls"] == calls, rows["sac"]


def test_a_teacher_stopped_between_its_policy_and_its_record_is_said_so(
    tmp_path, isp_raws, isp_cli, monkeypatch
):
    """A teacher run stopped by a Ctrl-C after writing policy.safetensors, before training.json: **was**
    refused as "fitted with other settings than its last run asked (algo None, now 'teacher'; preview None,
    now 64; …)" — every setting, none of them true; now that its fit has no record. The rerun fits from its
    kept searches (none done again) and the policy renders."""
    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in isp_raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    run = tmp_path / "run"
    real = isp_env.tuning.save_policy

    def saved_then_stopped(*args, **kwargs):
        real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as mp:
        mp.setattr(isp_env.tuning, "save_policy", saved_then_stopped)
        res = isp_cli("--raw-dir", raw_dir, "--out", run, *TINY_TEACHER_OPTIONS)
    assert res.returncode == 130 and not (run / "training.json").exists(), res.stderr[-2000:]
    raw, png = sorted(raw_dir.iterdir())[0], tmp_path / "out.png"
    res = isp_cli("render", raw, "--policy", run, "-o", png)
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and not png.exists(), said
    assert (
        f"--policy {run}: its training has not finished (its policy.safetensors has no record of the fit "
        "it is of (no readable training.json)) — finish it: rerun the last isp-tune command run with "
        f"--out {run}"
    ) in said, said
    res = isp_cli("--raw-dir", raw_dir, "--out", run, *TINY_TEACHER_OPTIONS)
    assert res.returncode == 0 and "none done now" in res.stderr, res.stderr[-2000:]
    assert isp_cli("render", raw, "--policy", run, "-o", png).returncode == 0 and png.is_file()
