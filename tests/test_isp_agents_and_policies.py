"""``isp-tune`` beyond its default teacher: SB3 agents, other action modes, policies started from or evaluated
with other settings (docs/robustness.md rows). Real runs on DNGs read by rawpy, the classical scorer, a few
steps each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import isp_heldout
from PIL import Image
from typer.testing import CliRunner

from isp_env.cli import app

# a seconds-long RL run (4 steps on previews, no baselines); the raws, --out and --algo are added
TINY_AGENT = (
    "--model", "classical", "--preview", "64", "--no-baselines",
    "--timesteps", "4", "--learning-starts", "2", "--test-fraction", "0.3",
)  # fmt: skip


def agent_run(
    tmp_path: Path, raws: list[Path], name: str, *extra: object, base: object = "neutral"
) -> tuple[Path, Path]:
    """``raws`` copied into ``tmp_path/raws`` (once) and a tiny `isp-tune` agent run into ``tmp_path/NAME``
    (``extra``: more options)."""
    raw_dir = tmp_path / "raws"
    if not raw_dir.exists():
        raw_dir.mkdir()
        for p in raws:
            (raw_dir / p.name).write_bytes(p.read_bytes())
    run = tmp_path / name
    args = ["--raw-dir", raw_dir, "--out", run, *TINY_AGENT, "--algo", "sac", "--base", base, *extra]
    r = CliRunner().invoke(app, list(map(str, args)))  # in this process: no interpreter start per run
    assert r.exit_code == 0, r.output + repr(r.exception)
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


def test_an_agent_started_from_a_policy_of_other_settings_is_refused_before_any_work(tmp_path, isp_raws):
    """**Was** `isp-tune --algo sac --action-mode absolute --init-policy RUN` (RUN: SAC on residual actions)
    trained without a word: the weights were copied, so the policy's offsets around its base were read as
    absolute parameter values (its action 0, "keep the base", became the middle of every range); the same
    for `--action-mode delta`, another `--residual-scale` or `--base`; `--obs-mode image` failed after the
    split and the base search with "that policy does not fit this run (Error(s) in loading state_dict for
    MultiInputPolicy:)". Now one line naming the policy's own setting, nothing written; with the default
    `--base global` the run takes the policy's base (no global search: baselines/ stays empty)."""
    from isp_env.params import neutral

    base = tmp_path / "base.json"
    base.write_text(json.dumps({**neutral(), "contrast": 1.3, "saturation": 1.2}))
    raw_dir, run = agent_run(tmp_path, isp_raws, "sac", base=base)
    given = ["--raw-dir", str(raw_dir), *TINY_AGENT, "--algo", "sac", "--init-policy", str(run)]
    for extra, said in [
        (["--action-mode", "absolute"], "trained with --action-mode residual"),
        (["--action-mode", "delta"], "trained with --action-mode residual"),
        (["--residual-scale", "0.8"], "trained with --residual-scale 0.4"),
        (["--base", "neutral"], "trained with its base (leave --base at global to use it)"),
        (["--obs-mode", "image"], "trained with --obs-mode stats"),
        (["--algo", "td3"], "trained with --algo sac"),
        (["--max-steps", "3"], "trained with --max-steps 1"),
    ]:
        out = tmp_path / "refused"
        r = CliRunner().invoke(app, [*given, "--out", str(out), *extra])
        line = str(r.exception)
        assert r.exit_code != 0 and f"--init-policy {run}: {said}" in line, (extra, r.output, line)
        assert "pass the same, or start without --init-policy" in line and "\n" not in line
        assert not out.exists(), extra  # refused before the split was written or a base searched
    out = tmp_path / "started"
    r = CliRunner().invoke(app, [*given, "--out", str(out), "--base", "global"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "starting from the policy" in r.output
    card = json.loads((run / "policy.json").read_text())
    assert json.loads((out / "run.json").read_text())["config"]["base"] == card["env"]["base"]
    assert not list((out / "baselines").glob("*.json"))  # its base taken, not searched


def test_a_run_continued_with_more_steps_renders_its_new_policy(tmp_path, isp_raws, isp_cli):
    """**Was** `isp-tune --algo sac --timesteps 12 --out RUN` on a finished 4-step RUN: training went on
    and the held-out raws were tuned anew (test/agent/params/RAW.json rewritten), but the full-resolution
    renders beside them were kept because the files existed — the picture a person checks was the old
    policy's. Now each render is written again unless the file holds these very pixels."""
    import numpy as np

    from isp_env.isp import develop, finish
    from isp_env.params import written_values
    from isp_env.raw import read_raw

    raw_dir, run = agent_run(tmp_path, isp_raws, "sac")
    pngs = sorted((run / "test" / "agent" / "renders").glob("*.png"))
    assert pngs
    before = {p.name: p.read_bytes() for p in pngs}
    res = isp_cli(
        "--raw-dir", raw_dir, "--out", run, *TINY_AGENT, "--algo", "sac", "--base", "neutral",
        "--timesteps", "16",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    raws = {p.stem: p for p in raw_dir.iterdir()}
    changed = 0
    for method in ("agent", "agent_checked"):
        for png in sorted((run / "test" / method / "renders").glob("*.png")):
            done = json.loads((run / "test" / method / "params" / f"{png.stem}.json").read_text())
            want = finish(develop(read_raw(raws[png.stem])), written_values(done["params"]))
            assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), want), (method, png.name)
            changed += method == "agent" and png.read_bytes() != before[png.name]
    assert changed  # the continued policy tuned the raws otherwise (else this test would prove nothing)


def test_check_into_a_folder_of_another_policys_check_tunes_with_the_new_policy(tmp_path, isp_raws):
    """**Was** `isp-tune check RAWS --policy B --out OUT`, where OUT held `--policy A`'s check and A, B were
    two SAC runs of the same `--timesteps` (the default 3,000 for every run), reporting A's parameters,
    renders and scores as B's: the outputs were kept while the policy's step count was the same. Now they
    are kept only for the very policy (its card and weights: ``policy_digest``)."""
    from isp_env.policy_io import load_policy
    from isp_env.tuning import tune_with_policy

    raw_dir, run_a = agent_run(tmp_path, isp_raws, "a", "--action-mode", "absolute")
    _, run_b = agent_run(tmp_path, isp_raws, "b")  # residual, the same 4 steps
    out = tmp_path / "check"
    for run in (run_a, run_b):
        r = CliRunner().invoke(
            app, ["check", str(raw_dir), "--policy", str(run), "-m", "classical", "--out", str(out)]
        )
        assert r.exit_code == 0, r.output + repr(r.exception)
    policy, card = load_policy(run_b / "policy.safetensors")
    for raw in sorted(raw_dir.iterdir()):
        done = json.loads((out / "test" / "policy" / "params" / f"{raw.stem}.json").read_text())
        assert done["params"] == tune_with_policy(policy, card, raw), raw.name  # were A's
        checked = json.loads((out / "test" / "policy_checked" / "params" / f"{raw.stem}.json").read_text())
        assert checked["from"] == done["params"]


def test_a_refused_rerun_leaves_the_run_folder_as_it_was(tmp_path, isp_raws):
    """**Was** `isp-tune --out RUN --seed 3 --cma-global-budget 8` on a finished RUN of another split:
    a global CMA-ES base searched on the new split's training raws and written over RUN's own
    baselines/cma_global.json, then "RUN: this run folder holds another split" — and a missing `--base`
    file with `--synth-photos` refused only after the synthetic raws were written into a new `--out`. Now
    both are refused before any work: RUN untouched, the new folder not made."""
    from isp_env.dng import demo_photo
    from isp_env.raw import find_raws
    from isp_env.run_inputs import scene_groups, split

    raw_dir, run = agent_run(tmp_path, isp_raws, "run", "--cma-global-budget", "4", base="global")
    cached = (run / "baselines" / "cma_global.json").read_bytes()
    raws = find_raws(raw_dir)
    groups = scene_groups(raws, raw_dir)
    seed = next(s for s in range(1, 50) if split(raws, 0.3, s, groups) != split(raws, 0.3, 0, groups))
    args = ["--raw-dir", str(raw_dir), *TINY_AGENT, "--algo", "sac", "--cma-global-budget", "8"]
    r = CliRunner().invoke(app, [*args, "--out", str(run), "--seed", str(seed)])
    assert r.exit_code != 0 and "this run folder holds another split" in str(r.exception), r.output
    assert "global CMA-ES" not in r.output
    assert (run / "baselines" / "cma_global.json").read_bytes() == cached  # was another split's search
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(demo_photo("coffee", 96)).save(photos / "coffee.png")
    out = tmp_path / "new"
    missing = tmp_path / "base.json"
    r = CliRunner().invoke(
        app, [*args, "--out", str(out), "--base", str(missing), "--synth-photos", str(photos)]
    )
    assert r.exit_code != 0 and f"{missing}: not a readable parameter JSON for --base" in str(r.exception)
    assert not out.exists()  # was out/synth/synth_photos_coffee.dng


def test_a_rerun_with_another_global_budget_is_refused_before_it_searches(tmp_path, isp_raws):
    """**Was** `isp-tune --out RUN --cma-global-budget 60` on a finished SAC RUN searched with 6: a new
    global base searched (60 scorer calls) and written over RUN's run.json and baselines, then "RUN: the
    checkpoint was trained with other settings — resume with the same options" (which option unsaid). Now
    one line before any work names it; RUN is left as it was, and the same command with it resumes."""
    raw_dir, run = agent_run(tmp_path, isp_raws, "run", "--cma-global-budget", "6", base="global")
    before = {p: p.read_bytes() for p in (run / "run.json", run / "baselines" / "cma_global.json")}
    args = ["--raw-dir", str(raw_dir), "--out", str(run), *TINY_AGENT, "--algo", "sac"]
    r = CliRunner().invoke(app, [*args, "--cma-global-budget", "60"])
    said = str(r.exception)
    assert r.exit_code != 0 and "pass --cma-global-budget 6 to resume it, or use a new --out" in said, (
        r.output
    )
    assert "global CMA-ES" not in r.output
    assert {p: p.read_bytes() for p in before} == before
    r = CliRunner().invoke(app, [*args, "--cma-global-budget", "6"])
    # (test_isp_cmaes_budget_and_rerun)
    resumed = "training already finished" in r.output or "finished, nothing to do" in r.output
    assert r.exit_code == 0 and resumed, r.output + repr(r.exception)


def test_an_agent_rerun_with_other_learning_settings_names_them_before_any_work(tmp_path, isp_raws):
    """**Was** `isp-tune --out RUN --learning-starts 3` (or another `--batch-size`, `--obs-size`, …) on an
    SAC RUN: run.json rewritten with the new settings (a record of what the run did no more), then "RUN: the
    checkpoint was trained with other settings — resume with the same options or use a new --out", which
    ones unsaid. Now one line before any work names them, from the checkpoint itself; run.json untouched."""
    raw_dir, run = agent_run(tmp_path, isp_raws, "run")
    before = (run / "run.json").read_bytes()
    args = ["--raw-dir", str(raw_dir), "--out", str(run), *TINY_AGENT, "--algo", "sac", "--base", "neutral"]
    r = CliRunner().invoke(app, [*args, "--learning-starts", "3", "--batch-size", "8"])
    said = str(r.exception)
    assert r.exit_code != 0 and "its agent was trained with other settings (" in said, r.output + said
    assert "batch_size 64, now 8; learning_starts 2, now 3) — pass the run's own options to resume it" in said
    assert (run / "run.json").read_bytes() == before
    r = CliRunner().invoke(app, args)
    # (test_isp_cmaes_budget_and_rerun)
    resumed = "training already finished" in r.output or "finished, nothing to do" in r.output
    assert r.exit_code == 0 and resumed, r.output + repr(r.exception)


def test_an_agent_that_would_never_learn_is_warned_about_before_it_trains(tmp_path, isp_raws):
    """**Was** `isp-tune --algo sac --timesteps 20` (the default `--learning-starts` 200) silent: SAC took
    random steps only, made no gradient step, and its policy — reported as "RL agent (SAC)" with its
    training calls — rendered the base on every raw. Now a warning line before the work says so and how
    to fix it; a run that learns gets none."""
    from isp_env.params import neutral

    _, run = agent_run(tmp_path, isp_raws, "idle", "--learning-starts", "200")
    for done in (run / "test" / "agent" / "params").glob("*.json"):  # the base: nothing was learned
        assert json.loads(done.read_text())["params"] == pytest.approx(neutral())
    raw_dir = tmp_path / "raws"
    args = ["--raw-dir", str(raw_dir), *TINY_AGENT, "--algo", "sac", "--base", "neutral"]
    r = CliRunner().invoke(app, [*args, "--out", str(run), "--learning-starts", "200"])
    said = " ".join(r.output.split())
    assert "warning --timesteps 4 is not above --learning-starts 200: SAC takes only random steps" in said
    assert "raise --timesteps or lower --learning-starts" in said
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "learns")])  # learning starts at step 2
    assert r.exit_code == 0 and "warning" not in r.output, r.output


def stopped_longer_run(tmp_path: Path, isp_raws, isp_cli, monkeypatch) -> tuple[Path, Path]:
    """A finished 4-step RUN continued with `--timesteps 16` and stopped by a real SIGINT after a checkpoint
    (step 8; its policy.safetensors still the 4-step one): (raw folder, RUN)."""
    import os
    import signal

    import isp_env.tuning

    raw_dir, run = agent_run(tmp_path, isp_raws, "run")
    real_save = isp_env.tuning.save_state

    def ctrl_c_after_a_checkpoint(model, *args, **kwargs):
        real_save(model, *args, **kwargs)
        if model.num_timesteps > 4:
            os.kill(os.getpid(), signal.SIGINT)  # a user's Ctrl-C once the longer training saved its state

    monkeypatch.setattr(isp_env.tuning, "save_state", ctrl_c_after_a_checkpoint)
    res = isp_cli(
        "--raw-dir", raw_dir, "--out", run, *TINY_AGENT, "--algo", "sac", "--base", "neutral",
        "--timesteps", "16", "--checkpoint-every", "4",
    )  # fmt: skip
    assert res.returncode == 130, res.stderr[-2000:]
    monkeypatch.setattr(isp_env.tuning, "save_state", real_save)
    return raw_dir, run


NOT_FINISHED = "its training has not finished (its checkpoint is at step 8, its policy.safetensors of step 4)"


def test_render_from_a_run_whose_training_has_not_finished_says_so(tmp_path, isp_raws, isp_cli, monkeypatch):
    """**Was** `isp-tune render RAW --policy RUN` of a finished 4-step RUN continued with `--timesteps 16`
    and stopped with Ctrl-C after a checkpoint: rendered with the 4-step policy.safetensors, no word that the
    training had gone on and not finished; a run stopped before its first policy was "a folder without
    policy.safetensors — pass an isp-tune run folder" (it is one). Now one line each, with the fix."""
    raw_dir, run = stopped_longer_run(tmp_path, isp_raws, isp_cli, monkeypatch)
    raw, png = next(raw_dir.iterdir()), tmp_path / "out.png"
    res = isp_cli("render", raw, "--policy", run, "-o", png)
    said = " ".join(res.stderr.split())
    assert res.returncode != 0 and not png.exists(), said
    assert (
        f"--policy {run}: {NOT_FINISHED} — finish it: rerun the last isp-tune command run with --out {run} "
        "(it resumes)"
    ) in said, said
    assert said.endswith(f"or use that earlier policy anyway: --policy {run / 'policy.safetensors'}"), said
    assert isp_cli("render", raw, "--policy", run / "policy.safetensors", "-o", png).returncode == 0
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "run.json").write_bytes((run / "run.json").read_bytes())  # stopped before its first policy
    res = isp_cli("render", raw, "--policy", fresh, "-o", png)
    said = " ".join(res.stderr.split())
    assert f"{fresh}: an isp-tune run whose training has not finished (no policy.safetensors" in said, said


def test_check_and_init_policy_of_a_run_whose_training_has_not_finished_say_so(
    tmp_path, isp_raws, isp_cli, monkeypatch
):
    """The same stopped RUN given to `isp-tune check --policy RUN` and `isp-tune --init-policy RUN`: **was**
    taken without a word — the check scored, and the new agent started from, the 4-step policy an earlier
    training left (render alone asked whether the run had finished). Now one function decides it for all
    three (`isp_env.policy_files.resolve_policy`): one line each naming the caller's option, nothing made."""
    raw_dir, run = stopped_longer_run(tmp_path, isp_raws, isp_cli, monkeypatch)
    out = tmp_path / "check"
    res = isp_cli("check", raw_dir, "--policy", run, "-m", "classical", "--out", out)
    said = " ".join(res.stderr.split())
    assert res.returncode != 0 and not (out / "results.csv").exists(), said
    assert f"--policy {run}: {NOT_FINISHED}" in said, said
    new = tmp_path / "new"
    res = isp_cli("--raw-dir", raw_dir, "--out", new, *TINY_AGENT, "--algo", "sac", "--init-policy", run)
    said = " ".join(res.stderr.split())
    assert res.returncode != 0 and not (new / "policy.safetensors").exists(), said
    assert f"--init-policy {run}: {NOT_FINISHED}" in said, said
    assert f"or use that earlier policy anyway: --init-policy {run / 'policy.safetensors'}" in said, said


def test_isp_heldout_of_a_run_whose_training_has_not_finished_says_so(
    tmp_path, isp_raws, isp_cli, monkeypatch
):
    """`python benchmarks/isp_heldout.py RAWS --run agent=RUN` with RUN the stopped run above: **was** taken
    as finished (its run.json, training.json and policy.safetensors are there, an earlier training's) and
    reported the 4-step policy with that training's scorer calls, no word — `render`, `check` and
    `--init-policy` refused it. Now the same one line, nothing written (review of the mends of session 65)."""
    import subprocess
    import sys

    from helpers import REPO, attiqa_env

    raw_dir, run = stopped_longer_run(tmp_path, isp_raws, isp_cli, monkeypatch)
    out = tmp_path / "heldout"
    script = [sys.executable, str(REPO / "benchmarks" / "isp_heldout.py"), str(raw_dir), "--out", str(out)]
    res = subprocess.run(
        [*script, "--run", f"agent={run}", "--model", "classical", "--cma-global-budget", "4"],
        env=attiqa_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and not out.exists(), said
    assert said == (
        f"error: --run agent={run}: {NOT_FINISHED} — finish it: rerun the last isp-tune command run with "
        f"--out {run} (it resumes), then use it"
    ), said


def test_a_finished_run_started_from_a_run_continued_since_stays_finished(
    tmp_path, isp_raws, isp_cli, monkeypatch
):
    """NEW, a finished run started with `--init-policy RUN`, rerun (its command again) after RUN was continued
    with more steps and stopped — RUN's policy.safetensors, the file NEW read, untouched: **was** refused,
    "--init-policy RUN: its training has not finished" (its record of the files it read left that policy out
    once resolve_policy refused RUN, and a started run's checks asked RUN's training to have finished). Now
    still finished: a started run's --init-policy is the file it started from (policy_files.init_policy_file);
    a new run's is refused as before (the test above) (review of the session-65 mends)."""
    raw_dir, run = agent_run(tmp_path, isp_raws, "run")
    _, new = agent_run(tmp_path, isp_raws, "new", "--init-policy", run)
    stopped_longer_run(tmp_path, isp_raws, isp_cli, monkeypatch)
    res = isp_cli(
        "--raw-dir", raw_dir, "--out", new, *TINY_AGENT, "--algo", "sac", "--base", "neutral",
        "--init-policy", run,
    )  # fmt: skip
    said = " ".join(res.stderr.split())
    assert res.returncode == 0 and "has not finished" not in said, said
    assert f"{new}: finished, nothing to do" in said, said
