"""`isp-tune` command-line defects left open by the first audit: what a user types, on real DNGs read by
rawpy, answered in one line naming the fix."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from isp_env.cli import app


@pytest.mark.timeout(120)
def test_a_huge_episode_length_is_refused_before_any_raw_is_read(tmp_path, isp_raws):
    """**Was** `--max-steps 1000000000000` accepted: the agent trained, then applying it to the first
    held-out raw rendered it once a step, an episode that never ended (the command hung, no error); now the
    option parser refuses more than 20 steps (:data:`isp_env.registration.MAX_STEPS`) in one line naming
    the option, nothing written. (On main this test runs into its timeout.)"""
    out = tmp_path / "run"
    args = ["--raw-dir", str(isp_raws[0].parent), "--out", str(out), "--algo", "sac", "--timesteps", "4"]
    args += ["--model", "classical", "--base", "neutral", "--no-baselines", "--preview", "64"]
    r = CliRunner().invoke(app, [*args, "--max-steps", "1000000000000"])
    assert r.exit_code == 2, r.output + repr(r.exception)
    assert "Invalid value for '--max-steps'" in r.output and "less than or equal to 20" in r.output, r.output
    assert not out.exists()


def test_a_read_only_folder_inside_a_run_folder_says_how_to_resume_it(tmp_path, isp_raws):
    """**Was** a run folder whose `test/teacher/params/` alone was read-only (a copy that kept an
    archive's modes, a folder another user made) resumed until its first write there, then stopped with the
    atomic writer's generic "…/params: not writable (permission denied) — write somewhere else" (which throws
    the run's finished work away); now refused before any work with the advice the run folder itself gets
    (:func:`attiqa.io.atomic.resume_fix`): "make it writable (chmod -R u+w RUN) to resume the run in it, or
    choose another --out". A real run, rerun without root's override of permissions."""
    import os
    import stat
    import subprocess

    from helpers import (
        TINY_TEACHER_OPTIONS,
        attiqa_env,
        isp_tune_cmd,
        tiny_teacher_run,
        unprivileged_cmd,
    )

    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws)
    params = run / "test" / "teacher" / "params"
    done = sorted(params.glob("*.json"))
    done[0].unlink()  # one held-out raw to tune again: the rerun writes into the read-only folder
    params.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        cmd = isp_tune_cmd("--raw-dir", raw_dir, "--out", run, *TINY_TEACHER_OPTIONS)  # a true resume
        res = subprocess.run(
            unprivileged_cmd(cmd), env=attiqa_env(), capture_output=True, text=True, timeout=600
        )
    finally:
        params.chmod(stat.S_IRWXU)
    assert res.returncode == 2, res.stderr[-2000:]
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert f"{params}: not writable" in line, line
    assert f"(chmod -R u+w {run}) to resume the run in it, or choose another --out" in line, line
    assert "write somewhere else" not in line
    assert not done[0].exists() and os.access(run / "run.json", os.R_OK)


def test_check_given_one_raw_file_names_the_single_raw_command(tmp_path, isp_raws):
    """**Was** `isp-tune check IMG.dng` "IMG.dng: not a folder — give the folder that holds the raws": true,
    but a user checking one raw has a command for it; now the line gives it — `isp-tune render IMG.dng
    --policy P --check -o IMG.png` (the best of the policy, its base and neutral by the reward), with the
    policy and reward model typed — and the command it names runs. A file that is no raw: the old line."""
    from PIL import Image

    raw = isp_raws[0]
    r = CliRunner().invoke(app, ["check", str(raw), "--policy", "default", "-m", "classical"])
    said = str(r.exception)
    assert r.exit_code != 0 and "a raw file, not a folder" in said, r.output + said
    cmd = f"isp-tune render {raw} --policy default --check -m classical -o {raw.stem}.png"
    assert cmd in said, said
    assert "or give the folder that holds the raws" in said
    png = tmp_path / f"{raw.stem}.png"
    args = cmd.split()[1:-1] + [str(png)]  # the command it names, its output in tmp_path
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "checked by classical: kept the" in r.output and Image.open(png).size[0] > 0
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (32, 24)).save(photo)
    r = CliRunner().invoke(app, ["check", str(photo)])
    assert "not a folder — give the folder that holds the raws" in str(r.exception)
