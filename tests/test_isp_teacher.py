"""`isp-tune --algo teacher`: a per-image policy regressed on per-image CMA-ES optima (isp_env.teacher)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import isp_run

from isp_env.env import N_STATS
from isp_env.params import N_PARAMS, NAMES, from_normalized, neutral, to_normalized
from isp_env.policy_io import load_policy, save_policy
from isp_env.teacher import (
    DEFAULT_CANDIDATES,
    choose_by_cv,
    fit_teacher,
    group_folds,
    inputs_digest,
    residual_targets,
    search_targets,
    spread_sample,
)
from isp_env.train_config import TeacherSettings, TrainConfig
from isp_env.tuning import env_for_policy, train_teacher, tune_with_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EXPOSURE = NAMES.index("tone_exposure")
SATURATION = NAMES.index("saturation")


def _card(kind: str, n_features: int, k: int = 0, scale: float = 2.0) -> dict:
    env = {
        "preview": 64,
        "obs_size": 36,
        "max_steps": 1,
        "action_mode": "residual",
        "delta_scale": scale,
        "guard": True,
        "view_shorter": None,
        "obs_mode": "stats",
        "base": neutral(),
        "scorer": None,
    }
    return {
        "algo": "teacher",
        "timesteps": 0,
        "env": env,
        "policy_kwargs": {"n_features": n_features, "kind": kind, "k": k},
    }


def _observations(raws: list[Path], card: dict) -> np.ndarray:
    """The policy's own observation (statistics of the base render) of each raw — no scorer involved."""
    return np.stack([env_for_policy(card, p).reset(seed=0)[0] for p in raws]).astype(np.float64)


def test_ridge_recovers_a_linear_rule_and_switches_off_constant_features():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (40, 13))
    x[:, 12] = 0.0  # the time: constant in a one-step episode
    y = np.zeros((40, N_PARAMS))
    y[:, EXPOSURE] = 0.8 * (x[:, 2] - 0.5)  # brighter renders -> lower exposure, nothing else changes
    pol = fit_teacher(x, y, "ridge", 1e-6)
    a, _ = pol.predict(x.astype(np.float32))
    assert np.abs(a - y).max() < 1e-4
    probe = x[:2].copy()
    probe[:, 12] = 5.0  # a value never seen in training must not move the prediction
    assert np.allclose(pol.predict(probe.astype(np.float32))[0], a[:2], atol=1e-6)
    assert pol.active[12] == 0 and pol.active[:12].all()
    # shrinkage pulls every prediction to the training mean; "mean" and "base" ignore the features
    strong = fit_teacher(x, y, "ridge", 1e6).predict(x.astype(np.float32))[0]
    assert np.abs(strong - y.mean(0)).max() < 1e-3
    assert np.allclose(fit_teacher(x, y, "mean").predict(x.astype(np.float32))[0], y.mean(0), atol=1e-6)
    assert not fit_teacher(x, y, "base").predict(x.astype(np.float32))[0].any()


def test_knn_averages_the_nearest_training_targets():
    x = np.array([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [0.9, 1.0]])
    y = np.zeros((4, N_PARAMS))
    y[:2, 0], y[2:, 0] = -0.5, 0.5
    pol = fit_teacher(x, y, "knn", 2)
    a, _ = pol.predict(np.array([[0.05, 0.0], [0.95, 1.0]], dtype=np.float32))
    assert a[:, 0].tolist() == pytest.approx([-0.5, 0.5])


def test_group_folds_keep_scene_groups_together_and_cover_every_raw():
    groups = ["a", "a", "a", "b", "c", "c", "d", "e", "e", "f"]
    folds = group_folds(groups, 3, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(groups)))
    for f in folds:
        inside = {groups[i] for i in f}
        assert all(groups[j] not in inside for g in folds if g is not f for j in g)
    assert max(map(len, folds)) - min(map(len, folds)) <= 3


def test_cross_validation_picks_the_model_that_scores_best_on_held_out_raws():
    """The score is a reward peaked at an image-dependent optimum: only a model using the features gets it."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (24, 5))
    best = np.zeros((24, N_PARAMS))
    best[:, EXPOSURE] = x[:, 0] - 0.5
    noisy = best + rng.normal(0, 0.05, best.shape)  # a search's optimum is a noisy estimate

    def score(pairs: list[tuple[int, np.ndarray]]) -> list[float]:
        return [-float(np.sum((a - best[i]) ** 2)) for i, a in pairs]

    cache: dict[str, float] = {}
    choice = choose_by_cv(x, noisy, [f"g{i // 3}" for i in range(24)], score, seed=0, cache=cache)
    assert choice.kind in ("ridge", "knn")
    assert len(choice.table) == len(DEFAULT_CANDIDATES) and len(cache) == 24 * len(DEFAULT_CANDIDATES)
    by = {(r["kind"], r["strength"]): r["cv_score"] for r in choice.table}
    assert choice.cv_score == max(by.values()) > by[("base", 0.0)]
    calls = []
    groups = [f"g{i // 3}" for i in range(24)]
    again = choose_by_cv(x, noisy, groups, lambda pairs: calls.append(pairs) or [], seed=0, cache=cache)
    assert not calls and again.kind == choice.kind  # cached scores: no scorer call on a rerun


def test_cross_validation_scores_a_folds_uncached_predictions_in_one_call():
    """A fold's predictions reach the scorer together (the tuner scores them in shared reward calls);
    a cached score is not asked for again, and the table is the one of scoring them one by one."""
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (20, 4))
    y = np.zeros((20, N_PARAMS))
    y[:, EXPOSURE] = x[:, 1] - 0.5
    groups = [f"g{i // 2}" for i in range(20)]

    def one_score(i: int, a: np.ndarray) -> float:
        return -float(np.sum((a - y[i]) ** 2))

    lists: list[list[int]] = []

    def score_many(pairs: list[tuple[int, np.ndarray]]) -> list[float]:
        lists.append([i for i, _ in pairs])
        return [one_score(i, a) for i, a in pairs]

    def one_by_one(pairs: list[tuple[int, np.ndarray]]) -> list[float]:
        return [v for i, a in pairs for v in score_many([(i, a)])]

    one = choose_by_cv(x, y, groups, one_by_one, seed=0)
    lists.clear()
    cache: dict[str, float] = {"ridge:1:5:0:3": 7.0}  # a cached score is not asked for again
    many = choose_by_cv(x, y, groups, score_many, seed=0, cache=cache)
    mine = {(r["kind"], r["strength"]): r["scores"] for r in many.table}
    theirs = {(r["kind"], r["strength"]): r["scores"] for r in one.table}
    assert mine[("ridge", 1.0)][3] == 7.0
    mine[("ridge", 1.0)][3] = theirs[("ridge", 1.0)][3]
    assert mine == theirs
    assert len(lists) == len(DEFAULT_CANDIDATES) * 5  # one call per candidate and fold
    assert sum(map(len, lists)) == 20 * len(DEFAULT_CANDIDATES) - 1


def test_policy_adapts_per_raw_and_round_trips_through_the_policy_files(tmp_path, isp_raws):
    """Fitted on real DNGs' observations, the policy gives raws with other statistics other settings, and
    the saved + loaded policy tunes them identically."""
    card = _card("ridge", N_STATS + 1)
    x = _observations(isp_raws, card)
    assert np.ptp(x[:, 2]) > 0.01  # the four photos differ in median luma
    y = np.zeros((len(isp_raws), N_PARAMS))
    y[:, EXPOSURE] = -(x[:, 2] - x[:, 2].mean()) / np.ptp(x[:, 2])  # darker raw -> more exposure
    y[:, SATURATION] = 0.2
    pol = fit_teacher(x, y, "ridge", 1e-8)
    path = save_policy(pol, tmp_path / "policy.safetensors", card)
    loaded, loaded_card = load_policy(path)
    assert loaded_card["algo"] == "teacher" and loaded.kind == "ridge"
    tuned = [tune_with_policy(loaded, loaded_card, p) for p in isp_raws]
    exposures = [t["tone_exposure"] for t in tuned]
    assert len({round(e, 4) for e in exposures}) == len(isp_raws)  # one setting per raw, not one for all
    darkest, brightest = int(np.argmin(x[:, 2])), int(np.argmax(x[:, 2]))
    assert exposures[darkest] > 0 > exposures[brightest]
    for p, t, target in zip(isp_raws, tuned, y, strict=True):
        want = from_normalized(np.clip(to_normalized(neutral()) + 2.0 * target, -1, 1))
        assert t == pytest.approx(want, abs=1e-4)
        assert t == tune_with_policy(pol, card, p)
    # neighbours round-trip too (their training set is part of the file)
    knn_card = _card("knn", N_STATS + 1, k=1)
    knn = fit_teacher(x, y, "knn", 1)
    loaded_knn, _ = load_policy(save_policy(knn, tmp_path / "knn.safetensors", knn_card))
    assert np.allclose(loaded_knn.predict(x.astype(np.float32))[0], y, atol=1e-6)


def test_residual_targets_render_the_target_from_the_base():
    base = neutral() | {"tone_exposure": 0.5}
    target = neutral() | {"tone_exposure": -1.0, "saturation": 1.5}
    a = residual_targets([target], base, 2.0)[0]
    assert from_normalized(to_normalized(base) + 2.0 * a) == pytest.approx(target)


def test_train_teacher_end_to_end_with_a_real_scorer(tmp_path, isp_raws):
    """Targets by per-image CMA-ES with the weight-free scorer, CV over every candidate, a policy file
    that tunes raws without a scorer; a rerun reuses everything."""
    from isp_env.mos_function import load_mos_function

    mos = load_mos_function("classical")
    cfg = _prior_cfg(base=neutral() | {"saturation": 0.8})
    groups = {p: f"g{i // 2}" for i, p in enumerate(isp_raws)}
    summary = train_teacher(tmp_path, isp_raws, cfg, mos, groups, TeacherSettings(budget=8, restarts=1))
    targets = json.loads((tmp_path / "teacher" / "targets_neutral.json").read_text())
    assert len(targets) == len(isp_raws) and all(t["calls"] <= 8 for t in targets.values())
    assert len(summary["cv_table"]) == len(DEFAULT_CANDIDATES)
    assert summary["scorer_calls"] == mos.calls  # every call counted: searches + CV
    policy, card = load_policy(tmp_path / "policy.safetensors")
    assert card["teacher"]["kind"] == summary["teacher"]["kind"]
    calls = mos.calls
    params = tune_with_policy(policy, card, isp_raws[0])
    assert mos.calls == calls and set(params) == set(NAMES)
    again = train_teacher(tmp_path, isp_raws, cfg, mos, groups, TeacherSettings(budget=8, restarts=1))
    assert mos.calls == calls and again["teacher"] == summary["teacher"]


def test_cli_trains_a_teacher_by_default_on_at_most_teacher_raws_and_renders_with_it(
    tmp_path, isp_raws, isp_cli
):
    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in isp_raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    run = [
        "--raw-dir",
        str(raw_dir),
        "--out",
        str(tmp_path / "run"),
        "--model",
        "classical",
        "--preview",
        "64",
        "--obs-size",
        "36",
        "--base",
        "neutral",
        "--teacher-budget",
        "6",
        "--teacher-raws",
        "2",
        "--test-fraction",
        "0.3",
        "--no-baselines",
    ]
    res = isp_cli(*run)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "teacher policy" in (tmp_path / "run" / "report.md").read_text()
    said = " ".join((res.stdout + res.stderr).split())
    # the progress line names the policy it tunes with (**was** "agent: ..." for a teacher, session 38)
    assert "teacher: read + tune" in said and "agent:" not in said
    card = json.loads((tmp_path / "run" / "policy.json").read_text())
    assert card["algo"] == "teacher" and card["env"]["delta_scale"] == 2.0
    plan = json.loads((tmp_path / "run" / "run.json").read_text())
    searched = json.loads((tmp_path / "run" / "training.json").read_text())["config"]["train_raws"]
    assert (
        len(plan["train"]) == 3
        and len(searched) == 2
        and set(searched) <= {Path(p).name for p in plan["train"]}
    )
    out = tmp_path / "out.png"
    res = isp_cli("render", isp_raws[0], "-o", out, "--policy", tmp_path / "run" / "policy.safetensors")
    assert res.returncode == 0, res.stderr[-2000:]
    assert out.stat().st_size > 1000
    # session 44: the run also reports the teacher checked against its base and neutral by the reward — per
    # held-out raw the best candidate's guarded score (a neutral base is one candidate: two calls a raw)
    with (tmp_path / "run" / "results.csv").open(newline="") as fh:
        by = {(r["image"], r["method"]): float(r["guarded"]) for r in csv.DictReader(fh)}
    held = sorted({img for img, _ in by})
    assert held and all((img, "teacher_checked") in by for img in held)
    calls = []
    for img in held:
        saved = json.loads(
            (tmp_path / "run" / "test" / "teacher_checked" / "params" / f"{img}.json").read_text()
        )
        # the base is neutral here, and a candidate equal to an earlier one is not scored again
        assert "base" not in saved["scores"] and "policy" in saved["scores"]
        calls.append(len(saved["scores"]))
        assert saved["scores"][saved["chosen"]] == max(saved["scores"].values())
        assert by[img, "teacher_checked"] >= max(by[img, "teacher"], by[img, "neutral"]) - 1e-3
    summary = {m["method"]: m for m in json.loads((tmp_path / "run" / "summary.json").read_text())["methods"]}
    assert summary["teacher_checked"]["scorer_calls_per_image"] == round(sum(calls) / len(calls), 1)
    assert (
        "checked: the best of the policy's setting, its base and neutral by the reward on each raw"
        in (tmp_path / "run" / "report.md").read_text()
    )


def test_sac_can_start_from_a_teacher_policy(tmp_path, isp_raws):
    """`isp-tune --init-policy TEACHER` (e.g. the shipped default): the SAC actor is distilled to the
    teacher's settings, re-expressed around the SAC run's own base and residual scale."""
    from isp_env.tuning import build_model, init_from_policy, make_vec_env

    card = _card("ridge", N_STATS + 1)
    x = _observations(isp_raws, card)
    y = np.zeros((len(isp_raws), N_PARAMS))
    y[:, EXPOSURE] = 0.15 * (x[:, 2] - x[:, 2].mean()) / np.ptp(x[:, 2])
    y[:, SATURATION] = -0.1
    teacher = fit_teacher(x, y, "ridge", 1e-8)
    path = save_policy(teacher, tmp_path / "teacher.safetensors", card)
    base = neutral() | {"saturation": 0.9}
    cfg = TrainConfig(
        algo="sac",
        timesteps=8,
        n_envs=1,
        preview=64,
        obs_size=36,
        action_mode="residual",
        obs_mode="stats",
        delta_scale=0.5,
        base=base,
        scorer="classical",
        net_arch=[32, 32],
        learning_starts=100,
    )
    venv = make_vec_env(isp_raws[:1], cfg, subprocess=False)
    model = build_model(cfg, venv)
    init_from_policy(model, path, cfg)
    want = np.clip(to_normalized(neutral()) + 2.0 * teacher.predict(x.astype(np.float32))[0], -1, 1)
    got = np.clip(
        to_normalized(base) + 0.5 * model.policy.predict(x.astype(np.float32), deterministic=True)[0], -1, 1
    )
    assert np.abs(got - want).max() < 0.05  # the teacher's settings, from another base and scale
    assert np.ptp(got[:, EXPOSURE]) > 0.5 * np.ptp(want[:, EXPOSURE])  # and its per-raw adaptation
    venv.close()
    td3 = TrainConfig(**{**cfg.__dict__, "algo": "td3"})
    from attiqa.errors import ConfigError

    with pytest.raises(ConfigError, match="only SAC"):
        init_from_policy(build_model(td3, make_vec_env(isp_raws[:1], td3, subprocess=False)), path, td3)


def test_spread_sample_takes_every_scene_group_before_a_second_raw_of_any():
    raws = [Path(f"/r/{g}_{i}.dng") for g, n in (("a", 5), ("b", 1), ("c", 2), ("d", 3)) for i in range(n)]
    groups = {p: p.name.split("_")[0] for p in raws}
    four = spread_sample(raws, 4, groups, seed=0)
    assert sorted(groups[p] for p in four) == ["a", "b", "c", "d"]
    six = spread_sample(raws, 6, groups, seed=0)
    assert {groups[p] for p in six} == {"a", "b", "c", "d"} and len(set(six)) == 6
    assert six == spread_sample(list(reversed(raws)), 6, groups, seed=0)  # seeded, order-free
    assert spread_sample(raws, 50, groups, seed=0) == raws


def test_the_residual_scale_default_lives_in_the_config():
    """One default, by algorithm and action mode (not only in the CLI): a teacher built in code gets the
    whole range, an RL agent the session 22 offset, delta steps their step; an explicit value wins."""
    teacher = TrainConfig(algo="teacher", action_mode="residual", obs_mode="stats")
    assert teacher.env_kwargs()["delta_scale"] == 2.0
    assert TrainConfig(algo="sac", action_mode="residual").scale == 0.4
    assert TrainConfig(algo="sac", action_mode="delta").scale == 0.5
    assert TrainConfig(algo="teacher", action_mode="residual", delta_scale=0.7).scale == 0.7


def test_targets_are_the_best_of_restarts_and_resume_from_single_search_files(tmp_path):
    """Session 24: a raw's target is the best of its searches (seeds seed, seed + 1); a file of one search
    a raw counts as the first restart, so only the second is run; a rerun runs nothing. (Session 23's
    files, saved without the digest of their inputs, are searched again:
    ``test_isp_teacher_cv_cache.py``.)"""
    calls = []

    def objective(x):  # a real function of the setting, best at exposure +0.5 (normalised)
        calls.append(1)
        return -float((x[EXPOSURE] - 0.5) ** 2 + 0.1 * np.sum(x**2))

    path = tmp_path / "targets.json"
    digest = inputs_digest([to_normalized(neutral())], {})
    one = {"seed": 0, "params": neutral(), "score": -1e9, "calls": 12, "budget": 12, "inputs": digest}
    path.write_text(json.dumps({"a": {"runs": [one]}}))
    out = search_targets({"a": objective}, 12, to_normalized(neutral()), 0, path, 2, inputs=digest)
    assert len(calls) == 12  # only the seed-1 search ran
    runs = json.loads(path.read_text())["a"]["runs"]
    assert sorted(r["seed"] for r in runs) == [0, 1] and out["a"]["calls"] == 24
    assert out["a"]["score"] == max(r["score"] for r in runs) > -1e9
    assert out["a"]["params"] == next(r["params"] for r in runs if r["seed"] == 1)
    again = search_targets({"a": objective}, 12, to_normalized(neutral()), 0, path, 2, inputs=digest)
    assert len(calls) == 12 and again["a"] == out["a"]


def test_a_policy_fitted_on_another_observation_is_refused_in_one_line(tmp_path):
    """Session 24 widened the observation (12 -> N_STATS statistics): a session 23 policy file must not
    crash at inference but be refused when loaded, naming the file and the fix."""
    from attiqa.errors import ModelLoadError

    old = fit_teacher(np.random.default_rng(0).uniform(0, 1, (6, 13)), np.zeros((6, N_PARAMS)), "ridge", 1.0)
    path = save_policy(old, tmp_path / "old.safetensors", _card("ridge", 13))
    with pytest.raises(ModelLoadError, match="old.safetensors.*12 image statistics.*retrain"):
        load_policy(path)


# ------------------------------------------------------------------------------------------------------
# --init-policy with --algo teacher: the policy's training rows are the prior of a new run (session 24)


def _prior_file(tmp_path: Path, isp_raws: list[Path], kind: str = "ridge", strength: float = 1.0) -> Path:
    """A teacher policy fitted on the DNGs' observations (a per-raw exposure rule), with its rows and the
    card ``train_teacher`` writes; the weight-free scorer, so runs that start from it need no weights."""
    card = _card(kind, N_STATS + 1) | {"scorer": "classical"}
    x = _observations(isp_raws, card)
    y = np.zeros((len(isp_raws), N_PARAMS))
    y[:, EXPOSURE] = -(x[:, 2] - x[:, 2].mean()) / np.ptp(x[:, 2])
    pol = fit_teacher(x, y, kind, strength)
    card["teacher"] = {
        "kind": kind,
        "strength": strength,
        "rows": {"groups": [f"prior{i // 2}" for i in range(len(x))]},
    }
    return save_policy(pol, tmp_path / "prior.safetensors", card)


def _prior_cfg(base: dict[str, float] | None = None, **kw) -> TrainConfig:
    """A small teacher config: the weight-free scorer, a neutral base unless ``base`` is given."""
    return TrainConfig(
        algo="teacher",
        preview=64,
        obs_size=36,
        action_mode="residual",
        obs_mode="stats",
        delta_scale=2.0,
        scorer="classical",
        base=neutral() if base is None else base,
        **kw,
    )


def test_training_rows_round_trip_through_the_policy_file(tmp_path, isp_raws):
    path = _prior_file(tmp_path, isp_raws)
    pol, card = load_policy(path)
    rows_x, rows_y = pol.rows_x.numpy(), pol.rows_y.numpy()
    assert rows_x.shape == (len(isp_raws), N_STATS + 1) and rows_y.shape == (len(isp_raws), N_PARAMS)
    assert np.array_equal(rows_x, _observations(isp_raws, card))  # float64, bit for bit
    assert np.ptp(rows_y[:, EXPOSURE]) > 0.5
    refit = fit_teacher(rows_x, rows_y, "ridge", 1.0)  # the file holds what it was fitted on
    assert np.array_equal(refit.weight.numpy(), pol.weight.numpy())


def test_a_teacher_run_from_a_policy_with_no_raws_of_its_own_reproduces_it(tmp_path, isp_raws):
    from isp_env.mos_function import load_mos_function

    path = _prior_file(tmp_path, isp_raws)
    prior, _ = load_policy(path)
    mos = load_mos_function("classical")
    summary = train_teacher(tmp_path / "run", [], _prior_cfg(init_policy=str(path)), mos, {})
    assert mos.calls == 0 and summary["teacher"]["init_policy"] == str(path)
    assert summary["teacher"]["prior_rows"] == len(isp_raws)
    pol, card = load_policy(tmp_path / "run" / "policy.safetensors")
    x = prior.rows_x.float()
    assert np.allclose(pol.predict(x)[0], prior.predict(x)[0], atol=1e-6)
    assert [tune_with_policy(pol, card, p) for p in isp_raws] == [
        tune_with_policy(prior, card, p) for p in isp_raws
    ]


def test_cv_folds_hold_out_only_the_runs_own_raws_and_every_fit_has_the_prior_rows():
    rng = np.random.default_rng(2)
    x, px = rng.uniform(0, 1, (6, 5)), rng.uniform(0, 1, (10, 5))
    y, py = np.zeros((6, N_PARAMS)), np.full((10, N_PARAMS), 0.5)
    seen: list[tuple[int, np.ndarray]] = []
    groups = ["a", "a", "b", "b", "c", "c"]
    choose_by_cv(
        x,
        y,
        groups,
        lambda pairs: [seen.append(p) or 0.0 for p in pairs],
        candidates=[("mean", 0.0)],
        n_folds=3,
        prior=(px, py),
    )
    assert sorted(i for i, _ in seen) == list(range(6))  # each own raw judged once, no prior row
    for _, a in seen:  # fit on 4 own rows (target 0) + 10 prior rows (0.5): the mean is 5/14
        assert np.allclose(a, 5.0 / 14.0)


def test_a_teacher_run_adds_the_prior_rows_and_refuses_another_base(tmp_path, isp_raws):
    from attiqa.errors import ConfigError
    from isp_env.mos_function import load_mos_function

    path = _prior_file(tmp_path, isp_raws)
    mos = load_mos_function("classical")
    groups = {p: f"g{i // 2}" for i, p in enumerate(isp_raws)}
    summary = train_teacher(
        tmp_path / "run",
        isp_raws,
        _prior_cfg(init_policy=str(path)),
        mos,
        groups,
        TeacherSettings(budget=6, restarts=1),
    )
    pol, card = load_policy(tmp_path / "run" / "policy.safetensors")
    assert len(pol.rows_x) == 2 * len(isp_raws) and card["teacher"]["rows"]["groups"][-1] == "prior1"
    assert summary["teacher"]["prior_rows"] == len(isp_raws)
    cv = json.loads((tmp_path / "run" / "teacher" / "cv_scores_neutral.json").read_text())
    assert cv["scores"] and all(k.endswith(f":prior{len(isp_raws)}") for k in cv["scores"])
    cfg = _prior_cfg(init_policy=str(path))
    cfg.base = neutral() | {"saturation": 1.4}
    with pytest.raises(ConfigError, match="base is not the policy's"):
        train_teacher(tmp_path / "other", isp_raws, cfg, mos, groups)
    raw_dir, base_file = tmp_path / "raws", tmp_path / "base.json"
    raw_dir.mkdir()
    for p in isp_raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    base_file.write_text(json.dumps(cfg.base))
    with pytest.raises(
        ConfigError, match="prior.safetensors: this run's base is not the policy's.*leave --base at global"
    ):
        isp_run(raw_dir, tmp_path / "cli", _prior_cfg(init_policy=str(path)), base=str(base_file))
    rowless = save_policy(
        fit_teacher(np.zeros((2, N_STATS + 1)), np.zeros((2, N_PARAMS)), "mean"),
        tmp_path / "old.safetensors",
        _card("mean", N_STATS + 1) | {"scorer": None},
    )
    with pytest.raises(ConfigError, match="old.safetensors: not a teacher policy with its training rows"):
        train_teacher(tmp_path / "old", isp_raws, _prior_cfg(init_policy=str(rowless)), mos, groups)


# ------------------------------------------------------------------------------------------------------
# the policy card, format 2 (session 26): one row count (the tensors), the reward model's identity


def test_a_teacher_card_holds_no_row_count_and_format_1_cards_still_load(tmp_path, isp_raws):
    """Format 1 stored the row count three times (policy_kwargs.n_train / n_rows, teacher.rows.n) beside the
    tensors; format 2 keeps it only in the tensors. A format-1 file loads and comes back in the new form;
    a card whose scene groups disagree with its rows, or a newer format, is refused naming the file."""
    from attiqa.errors import ModelLoadError
    from attiqa.io.checkpoints import load_checkpoint, save_checkpoint

    path = _prior_file(tmp_path, isp_raws)
    _, card = load_checkpoint(path)
    assert card["policy_format"] == 2 and set(card["policy_kwargs"]) == {"n_features", "kind", "k"}
    assert "n" not in card["teacher"]["rows"]
    tensors, _ = load_checkpoint(path)
    n = len(isp_raws)
    old = card | {
        "policy_kwargs": card["policy_kwargs"] | {"n_train": n, "n_rows": n},
        "teacher": card["teacher"] | {"rows": card["teacher"]["rows"] | {"n": n}},
    }
    old.pop("policy_format")
    save_checkpoint(tmp_path / "v1.safetensors", tensors, old)
    pol, back = load_policy(tmp_path / "v1.safetensors")
    assert len(pol.rows_x) == len(isp_raws) and set(back["policy_kwargs"]) == {"n_features", "kind", "k"}
    assert "n" not in back["teacher"]["rows"]
    bad = card | {"teacher": card["teacher"] | {"rows": {"groups": ["g"]}}}
    save_checkpoint(tmp_path / "bad.safetensors", tensors, bad)
    with pytest.raises(ModelLoadError, match="bad.safetensors: its card names 1 scene groups for 4 training"):
        load_policy(tmp_path / "bad.safetensors")
    save_checkpoint(tmp_path / "new.safetensors", tensors, card | {"policy_format": 3})
    with pytest.raises(ModelLoadError, match="new.safetensors: policy format 3 is newer.*upgrade attiqa"):
        load_policy(tmp_path / "new.safetensors")


def test_the_shipped_policy_records_the_default_model_it_was_fitted_against(capsys):
    """The bundled policy (format 2, re-shipped in session 43) records the shipped default model's name and
    weights: a run with the default model, named or not, starts from it without a note; another model is
    refused."""
    from attiqa.errors import ConfigError
    from attiqa.scorers import scorer_identity
    from isp_env.policy_files import resolve_policy
    from isp_env.tuning import check_reward_model

    pol, card = load_policy(resolve_policy("default"))
    assert card["policy_format"] == 2 and len(pol.rows_x) == 43
    assert card["reward_model"] == scorer_identity(None) == scorer_identity("attiqa-default")
    check_reward_model("default", card, None, refuse=True)
    check_reward_model("default", card, "attiqa-default", refuse=True)
    assert "does not record" not in capsys.readouterr().err
    with pytest.raises(
        ConfigError, match="default: fitted against the reward model attiqa-default .*classical"
    ):
        check_reward_model("default", card, "classical", refuse=True)


def test_a_format_1_policy_without_its_reward_model_is_assumed_fitted_on_the_named_one_said_once(capsys):
    """A card saved before session 26 (format 1, as the policy shipped until session 43) records no reward
    model: a run with that model's name may start from it — with one note that its weights are not
    recorded; another model is refused."""
    from attiqa.errors import ConfigError
    from isp_env.policy_files import resolve_policy
    from isp_env.tuning import check_reward_model

    _, card = load_policy(resolve_policy("default"))
    old = {k: v for k, v in card.items() if k != "reward_model"} | {"policy_format": 1}
    check_reward_model("old-policy", old, None, refuse=True)
    check_reward_model("old-policy", old, "attiqa-default", refuse=True)
    err = capsys.readouterr().err
    assert err.count("does not record the weights of the reward model") == 1 and "attiqa-default" in err
    with pytest.raises(
        ConfigError,
        match="old-policy: fitted against the reward model attiqa-default, not this "
        "run's classical .*pass that model with --model, or start without --init-policy",
    ):
        check_reward_model("old-policy", old, "classical", refuse=True)


def test_a_policy_records_its_reward_model_and_a_changed_one_is_refused(tmp_path, isp_raws, capsys):
    """The card records the reward model's name and weights' SHA-256 (a checkpoint's file; a named model's
    from the registry): a prior fitted against other weights — a re-shipped default model — is refused as
    a teacher prior and warned about as an SAC starting point, and a run folder made with another reward
    model is refused before anything is written."""
    import torch

    from attiqa.errors import ConfigError, ModelLoadError
    from attiqa.io.checkpoints import load_checkpoint, save_checkpoint
    from attiqa.io.hashes import sha256_of
    from attiqa.scorers import scorer_identity
    from attiqa.scorers.zoo import named_models, resolve_weights
    from isp_env.mos_function import load_mos_function
    from isp_env.tuning import check_reward_model

    default = scorer_identity(None)
    assert default == {"name": "attiqa-default", "sha256": named_models()["attiqa-default"]["sha256"]}
    assert default["sha256"] == sha256_of(resolve_weights("attiqa-default"))
    assert scorer_identity("classical") == {"name": "classical", "sha256": None}
    ckpt = tmp_path / "m.safetensors"
    ckpt.write_bytes(b"not really weights")  # not a checkpoint: one line (session 54), no identity
    with pytest.raises(ModelLoadError, match="not a readable safetensors checkpoint"):
        scorer_identity(ckpt)
    save_checkpoint(ckpt, {"w": torch.zeros(2)}, {"name": "m"})
    assert scorer_identity(ckpt)["sha256"] == sha256_of(ckpt)

    path = _prior_file(tmp_path, isp_raws)
    mos_run = tmp_path / "run"
    train_teacher(mos_run, [], _prior_cfg(init_policy=str(path)), load_mos_function("classical"), {})
    _, card = load_policy(mos_run / "policy.safetensors")
    assert card["reward_model"] == {"name": "classical", "sha256": None}
    tensors, raw_card = load_checkpoint(path)
    reshipped = raw_card | {"scorer": None, "reward_model": default | {"sha256": "0" * 64}}
    with pytest.raises(
        ConfigError,
        match=r"p.safetensors: fitted against the reward model attiqa-default "
        r"\(sha256 000000000000…\), not this run's attiqa-default \(sha256 "
        f"{default['sha256'][:12]}…\\)",
    ):
        check_reward_model("p.safetensors", reshipped, None, refuse=True)
    check_reward_model("p", reshipped, "attiqa-default", refuse=False)  # SAC warm start: a warning only
    assert "warning p: fitted against the reward model attiqa-default" in capsys.readouterr().err
    other = raw_card | {
        "scorer": "other.safetensors",
        "reward_model": {"name": "other.safetensors", "sha256": "0" * 64},
    }
    save_checkpoint(tmp_path / "other.safetensors", tensors, other)
    with pytest.raises(ConfigError, match="other.safetensors: fitted against the reward model other"):
        train_teacher(
            tmp_path / "r2",
            [],
            _prior_cfg(init_policy=str(tmp_path / "other.safetensors")),
            load_mos_function("classical"),
            {},
        )

    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in isp_raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "folder"
    out.mkdir()
    made = {"reward_model": {"name": "x.safetensors", "sha256": "ab" * 32}}
    (out / "run.json").write_text(json.dumps(made))
    with pytest.raises(
        ConfigError,
        match=r"folder: this run folder was made with the reward model "
        r"x.safetensors \(sha256 abababababab…\), not this run's classical — use a new --out",
    ):
        isp_run(raw_dir, out, _prior_cfg())
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]


def test_the_priors_base_and_scale_are_taken_where_unset_and_refused_where_given(tmp_path, isp_raws):
    """One check (tuning.checked_prior), used by `run` before any work and by train_teacher: an unset base
    and scale become the prior's; a given --residual-scale that is not the prior's is refused (`run` used to
    replace it silently)."""
    from attiqa.errors import ConfigError
    from isp_env.tuning import checked_prior, teacher_prior

    path = _prior_file(tmp_path, isp_raws)
    cfg = TrainConfig(
        algo="teacher",
        preview=64,
        obs_size=36,
        action_mode="residual",
        obs_mode="stats",
        scorer="classical",
        init_policy=str(path),
    )
    prior = teacher_prior(str(path), cfg)
    assert cfg.base is None and cfg.delta_scale is None
    checked_prior(cfg, prior)
    assert cfg.base == prior.base and cfg.delta_scale == prior.scale == 2.0
    given = replace(cfg, base=None, delta_scale=1.0)  # the same run, with a --residual-scale of its own
    with pytest.raises(
        ConfigError,
        match=r"prior.safetensors: --residual-scale 1 is not the policy's 2 — "
        "leave it unset",
    ):
        checked_prior(given, prior)
