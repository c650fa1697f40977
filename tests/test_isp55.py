"""Session 55's isp-tune round: a finished run rerun as it was has nothing to do, the global CMA-ES budget
spent in whole generations and said, and what a user met running isp-tune on real raws (docs/robustness.md
rows) — each on real DNGs read by rawpy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_isp_tune, tiny_teacher_run


def _stamps(run: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()}


@pytest.mark.slow  # three tiny real runs: ~30 s
def test_a_finished_run_rerun_as_it_was_reports_from_what_it_recorded(tmp_path, isp_raws):
    """**Was**: the same command again over a finished (writable) run scored every held-out raw again and
    rewrote results.csv, summary.json, report.md and grid.png (~18 s on the README's quick run) though
    every result was on disk; only a read-only copy was reported from its records. Now "RUN: finished,
    nothing to do", its table from summary.json, nothing written; a --base file edited since is work left."""
    from isp_env.params import neutral

    base = tmp_path / "base.json"
    base.write_text(json.dumps(neutral()))
    opts = ("--no-baselines", "--base", base)  # (the last --base wins over TINY_TEACHER_OPTIONS' neutral)
    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws, *opts)
    args = ("--raw-dir", raw_dir, "--out", run, *tiny_args(), *opts)
    before = _stamps(run)
    res = run_isp_tune(*args)
    assert res.returncode == 0, res.stderr[-2000:]
    said = " ".join(res.stderr.split())
    assert f"{run}: finished, nothing to do" in said and "nothing was written" in said, said
    assert f"delete {run / 'finished.json'}" in said, said
    n = json.loads((run / "summary.json").read_text())["n_test"]
    assert f"held-out raws ({n})" in res.stdout and "neutral" in res.stdout, res.stdout
    assert _stamps(run) == before  # nothing scored, nothing rewritten

    base.write_text(json.dumps(neutral(), indent=1))  # the same setting, another file: work left
    res = run_isp_tune(*args)
    assert res.returncode == 0 and "nothing to do" not in res.stderr, res.stderr[-2000:]
    assert _stamps(run)[str(run / "finished.json")] != before[str(run / "finished.json")]


def tiny_args() -> tuple[str, ...]:
    from helpers import TINY_TEACHER_OPTIONS

    return tuple(map(str, TINY_TEACHER_OPTIONS))
