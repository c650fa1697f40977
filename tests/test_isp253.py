"""Session 53's second isp-tune pass: a finished run archived read-only, the help's figures, and
`isp-tune render` / `check` given bad input — each on real DNGs read by rawpy."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from helpers import TINY_TEACHER_OPTIONS, attiqa_env, isp_tune_cmd, tiny_teacher_run, unprivileged_cmd

READ_ONLY = stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP


def _rerun_read_only(run: Path, *args: object) -> subprocess.CompletedProcess:
    """``isp-tune ARGS`` with ``run`` and every folder in it read-only, without root's override."""
    folders = [run, *(p for p in run.rglob("*") if p.is_dir())]
    for p in folders:
        p.chmod(READ_ONLY)
    try:
        cmd = unprivileged_cmd(isp_tune_cmd(*args))
        return subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=600)
    finally:
        for p in folders:
            p.chmod(stat.S_IRWXU)


def _stamps(run: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_a_finished_run_made_read_only_is_finished_not_refused(tmp_path, isp_raws):
    """**Was** the same command rerun on a finished run archived read-only refused with "make it writable
    (chmod -R u+w RUN) to resume the run in it", though it had nothing to resume (it would only have
    written its reports again); now "finished, nothing to do", its table from summary.json, exit 0, nothing
    written. The same folder rerun with other settings (work left) keeps the chmod advice."""
    opts = (*TINY_TEACHER_OPTIONS, "--no-baselines")
    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws, "--no-baselines")
    before = _stamps(run)
    res = _rerun_read_only(run, "--raw-dir", raw_dir, "--out", run, *opts)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "finished, nothing to do" in res.stderr and "Traceback" not in res.stderr, res.stderr
    n = json.loads((run / "summary.json").read_text())["n_test"]
    assert f"held-out raws ({n})" in res.stdout and "neutral" in res.stdout, res.stdout
    assert _stamps(run) == before

    res = _rerun_read_only(run, "--raw-dir", raw_dir, "--out", run, *opts, "--test-raws", 1)
    assert res.returncode == 2, res.stderr[-2000:]
    line = res.stderr.strip()
    assert "\n" not in line and f"(chmod -R u+w {run}) to resume the run in it" in line, line

    first = sorted(p for p in raw_dir.iterdir())[0]  # a raw replaced since: its results are stale
    first.touch()
    res = _rerun_read_only(run, "--raw-dir", raw_dir, "--out", run, *opts)
    assert res.returncode == 2 and f"(chmod -R u+w {run})" in res.stderr, res.stderr[-2000:]
    assert _stamps(run) == before


def test_the_help_holds_no_measured_figures():
    """**Was** `isp-tune --help` holding figures that go stale — "--test-raws … (default 100: every held-out
    raw of a folder of up to ~330; FiveK holds out 1,500)", "--residual-scale … (0.4; 2, the whole range,
    …)", the ISP's "16 parameters of a 14-module" pipeline — and `isp-tune check --help` a measurement ("on a
    camera left out of training it helped on three of five"); now they are in docs/isp.md, the help says
    what each option does and its default, the shared --test-raws default read from its one constant."""
    from typer.testing import CliRunner

    from isp_env.cli import app
    from isp_env.registration import TEST_RAWS

    for command in ([], ["check"], ["render"]):
        said = " ".join(CliRunner().invoke(app, [*command, "--help"]).output.replace("│", " ").split())
        for figure in ("~330", "1,500", "0.4", "three of five", "16 parameters", "14-module"):
            assert figure not in said, (command, figure)
        if command != ["render"]:
            assert f"default {TEST_RAWS}" in said, command
    tune = " ".join(CliRunner().invoke(app, ["--help"]).output.replace("│", " ").split())
    assert "the whole range for the teacher" in tune and "docs/isp.md" in tune
