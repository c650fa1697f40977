"""isp-tune's caches answer only for the inputs they were filled with: the teacher's cross-validation
scores (``teacher/cv_scores_*.json``: the raws, their targets and features, base, scale and scorer), its
searches (``teacher/targets_*.json``: their start and objective) and the baseline searches
(``baselines/*.json``: their scale, seed and reward model)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import TINY_TEACHER_OPTIONS, run_isp_tune, tiny_teacher_run

from isp_env.params import neutral
from isp_env.train_config import TeacherSettings, TrainConfig
from isp_env.tuning import train_teacher

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg() -> TrainConfig:
    return TrainConfig(
        algo="teacher", preview=64, obs_size=36, action_mode="residual", obs_mode="stats",
        delta_scale=2.0, scorer="classical", base=neutral(),
    )  # fmt: skip


def _rerun_and_fresh(
    tmp_path: Path,
    raws: list[Path],
    options: tuple[str, ...],
    changed: tuple[str, ...],
    read: Callable[[Path], Any],
) -> tuple[Any, Any, Any, str]:
    """A tiny teacher run with ``options``, rerun in its folder with ``changed`` options added, and a fresh
    run with both: ``read`` of the first run, of the rerun and of the fresh run, and the rerun's output."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    from conftest import in_process

    from isp_env.cli import main

    raw_dir, run = tiny_teacher_run(tmp_path / "a", raws, *options)
    first = read(run)
    again = in_process("isp-tune", main)(
        "--raw-dir", raw_dir, "--out", run, *TINY_TEACHER_OPTIONS, *options, *changed
    )
    assert again.returncode == 0, again.stderr[-2000:]
    _, fresh = tiny_teacher_run(tmp_path / "b", raws, *options, *changed)
    return first, read(run), read(fresh), " ".join((again.stdout + again.stderr).split())


def _cv_table(run: Path) -> list[dict]:
    return json.loads((run / "training.json").read_text())["cv_table"]


def test_a_rerun_with_other_targets_scores_the_cross_validation_again(tmp_path, isp_raws):
    """**Was**: the scores were cached by candidate, fold, seed and raw index only: a rerun in the same
    folder with another ``--teacher-budget`` (new targets, which the run accepts) reused every cached
    score of the old targets. Now the file is kept with a digest of its inputs: the rerun's table is the
    one of a fresh run with its settings."""
    options = ("--teacher-restarts", "1", "--no-baselines")
    first, rerun, fresh, said = _rerun_and_fresh(
        tmp_path, isp_raws, options, ("--teacher-budget", "12"), _cv_table
    )
    assert fresh != first  # the new targets predict other settings: other scores
    assert rerun == fresh
    assert "cv_scores_neutral.json are of other inputs" in said


def test_a_raw_added_to_the_teacher_raws_is_not_given_another_raws_cached_score(tmp_path, isp_raws):
    """**Was**: a raw added to the searched raws shifted the indices, so that the cached score of one raw
    was read as another's. Now a changed raw set scores the cross-validation again."""
    mos_groups = {p: f"g{i}" for i, p in enumerate(isp_raws)}
    settings = TeacherSettings(budget=6, restarts=1)
    from isp_env.mos_function import load_mos_function

    mos = load_mos_function("classical")
    fewer = [isp_raws[0], *isp_raws[2:]]
    train_teacher(tmp_path / "run", fewer, _cfg(), mos, mos_groups, settings)
    train_teacher(tmp_path / "run", isp_raws, _cfg(), mos, mos_groups, settings)
    train_teacher(tmp_path / "fresh", isp_raws, _cfg(), mos, mos_groups, settings)
    assert _cv_table(tmp_path / "run") == _cv_table(tmp_path / "fresh")


def test_a_resume_with_nothing_changed_scores_nothing_again(tmp_path, isp_raws):
    """A run stopped after its cross-validation (no policy saved) resumes, in a new `isp-tune` process,
    without a search or a cross-validation score made again: the digest of unchanged inputs is the same
    in that process's recomputation."""
    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws, "--teacher-restarts", "1", "--no-baselines")
    first = _cv_table(run)
    kept = json.loads((run / "teacher" / "cv_scores_neutral.json").read_text())
    (run / "policy.safetensors").unlink()  # as a kill before the policy was saved left the run
    (run / "training.json").unlink()
    again = run_isp_tune(  # a new process: the digest must not depend on this one (set order, ids)
        "--raw-dir", raw_dir, "--out", run, *TINY_TEACHER_OPTIONS, "--teacher-restarts", "1", "--no-baselines"
    )
    assert again.returncode == 0, again.stderr[-2000:]
    said = " ".join((again.stdout + again.stderr).split())
    n = len(kept["scores"])
    assert f"teacher: cross-validation: {n}/{n} (none done now, {n} kept from an earlier run)" in said, said
    assert "teacher: per-image CMA-ES on the training raws: 2/2 (none done now, 2 kept" in said, said
    assert "other inputs" not in said and "saved before" not in said
    assert json.loads((run / "teacher" / "cv_scores_neutral.json").read_text()) == kept
    assert _cv_table(run) == first


@pytest.mark.parametrize(
    ("first", "then", "start"),
    [({"preview": 64}, {"preview": 48}, "neutral"), ({}, {"base": neutral() | {"saturation": 1.3}}, "base")],
    ids=["other-preview", "other-base-start"],
)
def test_a_search_of_another_objective_or_start_is_not_a_target(tmp_path, isp_raws, first, then, start):
    """**Was**: ``teacher/targets_*.json`` kept each raw's searches by name, budget and seed only: a rerun
    in the same folder with another ``--preview`` (the objective renders at it) or, searching from the
    base, another ``--base`` took the old searches as its targets. Now each search records a digest of
    its start and objective, and only matching ones are reused: the targets are a fresh run's."""
    from isp_env.mos_function import load_mos_function

    mos = load_mos_function("classical")
    groups = {p: f"g{i}" for i, p in enumerate(isp_raws[:2])}
    settings = TeacherSettings(budget=6, restarts=1, start=start)
    train_teacher(tmp_path / "run", isp_raws[:2], replace(_cfg(), **first), mos, groups, settings)
    old = json.loads((tmp_path / "run" / "teacher" / f"targets_{start}.json").read_text())
    for folder in ("run", "fresh"):
        train_teacher(tmp_path / folder, isp_raws[:2], replace(_cfg(), **then), mos, groups, settings)
    targets = [
        {
            n: t["params"]
            for n, t in json.loads((tmp_path / f / "teacher" / f"targets_{start}.json").read_text()).items()
        }
        for f in ("run", "fresh")
    ]
    assert targets[0] != {n: t["params"] for n, t in old.items()}
    assert targets[0] == targets[1]


def test_a_rerun_at_another_preview_searches_its_baselines_again(tmp_path, isp_raws):
    """**Was**: ``baselines/cma_global.json`` was kept by budget, ``cma_per_image.json`` by budget and
    raw: a rerun in the same folder with another ``--preview`` (the searches score renders at it) reported
    the old scale's searches as its baselines. Now each records a digest of its scale, seed and reward
    model: the rerun's baselines are a fresh run's."""
    budgets = ("--cma-global-budget", "12", "--cma-image-budget", "4", "--teacher-restarts", "1")
    first, rerun, fresh, _ = _rerun_and_fresh(tmp_path, isp_raws, budgets, ("--preview", "48"), _searches)
    assert rerun != first
    assert rerun == fresh


def _searches(run: Path) -> list:
    """The global and per-image baseline searches' settings of ``run``."""
    per = json.loads((run / "baselines" / "cma_per_image.json").read_text())
    glob = json.loads((run / "baselines" / "cma_global.json").read_text())
    return [glob["params"], {k: v["params"] for k, v in per.items()}]


SAVED_BEFORE = "saved before its inputs were recorded"


def test_a_search_target_saved_before_its_inputs_were_recorded_is_searched_again(tmp_path, capsys):
    """**Was** reused: a search of ``teacher/targets_*.json`` saved without the digest of its start and
    objective (before session 57, or session 23's one search a raw) was trusted, so in an older run folder
    a rerun with another ``--preview`` still took the old scale's searches. Now it is of unknown inputs:
    searched again, said once for the file."""
    from isp_env.params import to_normalized
    from isp_env.teacher import inputs_digest, search_targets

    calls = []

    def objective(x):  # a real function of the setting, best at exposure +0.5 (normalised)
        calls.append(1)
        return -float((x[0] - 0.5) ** 2 + 0.1 * (x**2).sum())

    marker = {"marker": 1.0}
    search = {"params": marker, "score": 1e9, "calls": 12, "budget": 12}
    path = tmp_path / "targets_neutral.json"
    path.write_text(json.dumps({"a": {"runs": [{"seed": 0, **search}]}, "b": search}))  # 57's and 23's
    x0 = to_normalized(neutral())
    digest = inputs_digest([x0], {"preview": 64})
    out = search_targets({"a": objective, "b": objective}, 12, x0, 0, path, inputs=digest)
    assert len(calls) == 24 and all(t["params"] != marker for t in out.values())
    assert capsys.readouterr().err.count(f"targets_neutral.json: {SAVED_BEFORE}: searched again") == 1
    assert search_targets({"a": objective, "b": objective}, 12, x0, 0, path, inputs=digest) == out
    assert len(calls) == 24 and SAVED_BEFORE not in capsys.readouterr().err  # its searches kept now


def test_cross_validation_scores_saved_before_their_inputs_were_recorded_are_scored_again(
    tmp_path, isp_raws, capsys
):
    """**Was**: a ``teacher/cv_scores_*.json`` of the flat format before session 57 (no digest) was
    dropped with "are of other inputs (raws, targets, base or scorer)", false of an unchanged old run.
    Now its inputs are said to be unknown: "saved before its inputs were recorded: scored again"."""
    from isp_env.mos_function import load_mos_function

    mos = load_mos_function("classical")
    groups = {p: f"g{i}" for i, p in enumerate(isp_raws)}
    settings = TeacherSettings(budget=6, restarts=1)
    first = train_teacher(tmp_path, isp_raws, _cfg(), mos, groups, settings)
    path = tmp_path / "teacher" / "cv_scores_neutral.json"
    scores = json.loads(path.read_text())["scores"]
    path.write_text(json.dumps(scores))  # as the runs before session 57 kept it
    (tmp_path / "policy.safetensors").unlink()  # as a kill before the policy was saved left the run
    (tmp_path / "training.json").unlink()
    capsys.readouterr()
    calls = mos.calls
    again = train_teacher(tmp_path, isp_raws, _cfg(), mos, groups, settings)
    said = capsys.readouterr().err
    assert said.count(f"cv_scores_neutral.json: {SAVED_BEFORE}: scored again") == 1
    assert "other inputs" not in said
    assert mos.calls == calls + len(scores) and again["cv_table"] == first["cv_table"]
    assert json.loads(path.read_text())["scores"] == scores


def test_baseline_searches_saved_before_their_inputs_were_recorded_are_searched_again(
    tmp_path, isp_raws, capsys
):
    """**Was** reused: ``baselines/cma_global.json`` and ``cma_per_image.json`` searches saved without the
    digest of their scale, seed and reward model were trusted (``.get("inputs", inputs)``): in an older
    run folder a rerun with another ``--preview`` reported the old scale's searches. Now they are
    searched again, said once a file."""
    import attiqa
    from isp_env.mos_function import from_scorer
    from isp_env.run import HeldOutItems, global_cma, image_keys, per_image_cma

    cfg = replace(_cfg(), seed=0)
    mos = from_scorer(attiqa.create_scorer("classical"))
    out = tmp_path / "run"
    (out / "baselines").mkdir(parents=True)
    marker = {"marker": 1.0}
    search = {"params": marker, "calls": 12, "budget": 12}
    (out / "baselines" / "cma_global.json").write_text(
        json.dumps({**search, "train_score": 0.0, "n_images": 1})
    )
    raw_dir = isp_raws[0].parent
    paths = image_keys(isp_raws[:2], raw_dir)
    per = {k: {**search, "budget": 4, "score": 0.0, "raw": str(p)} for k, p in paths.items()}
    (out / "baselines" / "cma_per_image.json").write_text(json.dumps(per))
    g = global_cma(out, cfg, mos, isp_raws[2:], {}, 12)
    found = per_image_cma(out, cfg, mos, HeldOutItems(paths, None, 64), raw_dir, 4)
    said = capsys.readouterr().err
    assert g["params"] != marker and all(found[k]["params"] != marker for k in paths)
    for name in ("cma_global.json", "cma_per_image.json"):
        assert said.count(f"{name}: {SAVED_BEFORE}: searched again") == 1, said
    calls = mos.calls
    assert global_cma(out, cfg, mos, isp_raws[2:], {}, 12) == g  # kept now, with their digest
    assert per_image_cma(out, cfg, mos, HeldOutItems(paths, None, 64), raw_dir, 4) == found
    assert mos.calls == calls


def test_a_run_killed_in_its_cross_validation_keeps_the_scores_it_made(tmp_path, isp_raws):
    """**Was**: ``teacher/cv_scores_*.json`` was written only when the cross-validation ended (a
    ``finally``, which a SIGKILL or power loss never reaches): a kill mid-CV lost every score of the run
    and the resume scored them all again. Now each fold's scores are saved as it ends: ``isp-tune``
    SIGKILLs itself as its first save of them returns (:func:`helpers.signal_after`: no poller to stall),
    then the same command in a new process keeps every saved score (said as kept from its first line) and
    scores only the rest."""
    from helpers import signal_after

    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in isp_raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    run = tmp_path / "run"
    options = (*TINY_TEACHER_OPTIONS, "--teacher-raws", "3", "--teacher-restarts", "1", "--no-baselines")
    args = ("--raw-dir", raw_dir, "--out", run, *options, "--preview", "96")
    path = run / "teacher" / "cv_scores_neutral.json"

    def saved() -> dict[str, float]:
        try:
            return dict(json.loads(path.read_text())["scores"])
        except (OSError, ValueError, KeyError):
            return {}

    kill = signal_after(tmp_path, "replace", "cv_scores_neutral.json", 1, "SIGKILL", "isp_env.cli")
    killed = run_isp_tune(*args, **kill)
    assert killed.returncode == -9, killed.stderr[-2000:]
    first = saved()
    total = 9 * 3  # the default candidates, each scored on the 3 training raws
    assert 0 < len(first) < total, f"{len(first)} of {total} scores saved at the kill"
    again = run_isp_tune(*args)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr[-2000:]
    said = " ".join((again.stdout + again.stderr).split())
    k = len(first)
    assert f"teacher: cross-validation: {k}/{total} (none done now, {k} kept from an earlier run)" in said
    assert f"teacher: cross-validation: {total}/{total} (" in said
    assert said.count(f"{k} kept from an earlier run)") >= 2  # the first line and the last
    after = saved()
    assert len(after) == total and all(after[key] == v for key, v in first.items())
    assert "saved before" not in said and "other inputs" not in said


def test_the_teacher_cv_benchmark_scores_again_when_its_runs_searches_changed(tmp_path, isp_raws):
    """**Was**: ``benchmarks/isp_teacher_cv.py`` cached its scores by variant, candidate, fold seed and raw
    index only (its docstring warned): rerun after the run's searches changed, it printed the old
    targets' table. Now each variant's scores are kept with the digest the run's own cross-validation uses
    (``isp_env.tuning.cv_inputs``): a rerun with nothing changed prints the same table from the cache, one
    after a change prints a fresh run's. The real script on a real tiny teacher run."""
    import subprocess
    import sys

    from helpers import REPO, attiqa_env

    _, run = tiny_teacher_run(
        tmp_path, isp_raws, "--teacher-restarts", "3", "--teacher-raws", "3", "--no-baselines"
    )
    cmd = [sys.executable, str(REPO / "benchmarks" / "isp_teacher_cv.py"), str(run), "--fold-seeds", "0"]
    cache = run / "teacher" / "cv_variants.json"

    def table() -> str:
        res = subprocess.run([*cmd, "--alphas", "1"], env=attiqa_env(), capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    first = table()
    kept = cache.read_bytes()
    assert table() == first and cache.read_bytes() == kept  # nothing changed: every score from the cache
    path = run / "teacher" / "targets_neutral.json"
    searches = json.loads(path.read_text())
    for entry in searches.values():  # as new searches left the raws other targets
        for r in entry["runs"]:
            r["params"] = {k: v * 0.5 for k, v in r["params"].items()}
    path.write_text(json.dumps(searches))
    rerun = table()
    cache.unlink()
    fresh = table()
    assert fresh != first
    assert rerun == fresh
    old = json.loads(cache.read_text())
    old["one search|21|0|ridge|1"] = {"scores": {"0": 0.5}}  # index-keyed, as the script kept them before
    cache.write_text(json.dumps(old))
    said = table()  # the old entry is dropped and said once, as the product's caches say it (review)
    assert said.splitlines()[0].endswith("1 entries saved before their inputs were recorded: scored again")
    assert said.split("\n", 1)[1] == fresh
