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


def test_a_cma_es_search_spends_the_budget_asked_in_whole_generations(isp_raws):
    """**Was**: every search took generations of 12 settings, whatever its budget: the README's quick
    check's global CMA-ES (20 calls on one raw) scored its start and one generation — 13 of its 20 calls,
    the other 7 unspent without a word. Now the population is widened so whole generations take every
    setting the budget pays for; the real search on a real raw, its reward calls counted."""
    import attiqa
    from isp_env.baselines import DEFAULT_POPSIZE, cma_search, mean_mos_objective, search_plan
    from isp_env.isp import develop
    from isp_env.mos_function import from_scorer
    from isp_env.raw import read_raw

    mos = from_scorer(attiqa.create_scorer("classical"))
    dev = develop(read_raw(isp_raws[0]), 48)
    res = cma_search(mean_mos_objective([dev], mos), budget=20, calls_per_eval=1, seed=0)
    assert res.calls == mos.calls == 20
    plan = search_plan(20, 1)
    assert plan.calls == 20 and plan.said(20).endswith(": 20 of the 20 scorer calls asked")
    for budget, per in ((150, 1), (600, 12)):  # the default budgets: searched as before, 12 a generation
        plan = search_plan(budget, per)
        assert plan.popsize == DEFAULT_POPSIZE and budget - per * DEFAULT_POPSIZE < plan.calls <= budget
        assert f"{budget - plan.calls} left unspent: whole generations" in plan.said(budget)


@pytest.mark.slow  # a tiny real run with both CMA-ES baselines: ~30 s
def test_the_report_states_the_cma_es_calls_used_of_those_asked(tmp_path, isp_raws):
    """**Was**: the report gave the CMA-ES baselines' calls used (13 for a global budget of 20) and nothing
    said what was asked. Now the run's line and report.md say the calls used of those asked, and
    summary.json has ``scorer_calls_asked`` beside them."""
    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in isp_raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    run = tmp_path / "run"
    budgets = ("--cma-global-budget", "20", "--cma-image-budget", "5")
    res = run_isp_tune("--raw-dir", raw_dir, "--out", run, *tiny_args(), *budgets)
    assert res.returncode == 0, res.stderr[-2000:]
    said = " ".join(res.stderr.split())
    assert "— the start and 1 generation of 19 settings: 20 of the 20 scorer calls asked" in said, said
    summary = {m["method"]: m for m in json.loads((run / "summary.json").read_text())["methods"]}
    n = summary["cma_per_image"]["n_images"]
    assert summary["cma_global"]["train_scorer_calls"] == summary["cma_global"]["scorer_calls_asked"] == 20
    assert summary["cma_per_image"]["test_scorer_calls"] == summary["cma_per_image"]["scorer_calls_asked"]
    assert summary["cma_per_image"]["scorer_calls_asked"] == 5 * n
    report = " ".join((run / "report.md").read_text().split())
    labels = {m: summary[m]["label"] for m in ("cma_global", "cma_per_image")}
    assert (
        f"Scorer calls used of those asked: {labels['cma_global']} 20 of the 20; "
        f"{labels['cma_per_image']} {5 * n} of the {5 * n}"
    ) in report
