"""The Gymnasium environment on real DNGs with the real (weight-free) classical scorer."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import attiqa
import isp_env
from isp_env.env import N_STATS, ISPTuningEnv, image_stats
from isp_env.isp import develop, finish
from isp_env.mos_function import from_scorer
from isp_env.params import N_PARAMS, NAMES, neutral, to_normalized
from isp_env.raw import read_raw


@pytest.fixture(scope="module")
def scorer():
    s = attiqa.create_scorer("classical")
    assert s.columns == ("score", "sharpness", "contrast", "brightness", "colorfulness", "noisiness")
    return from_scorer(s)


def test_registered_id_passes_the_gymnasium_checker(isp_raws, scorer):
    env = gym.make(isp_env.ENV_ID, raws=isp_raws, scorer=scorer, preview=96, obs_size=40, max_steps=3)
    assert isinstance(env.unwrapped, ISPTuningEnv)
    check_env(env.unwrapped, skip_render_check=True)
    before = scorer.calls  # the checker's resets may have scored this raw's base: then cached
    obs, info = env.reset(seed=1)
    assert obs["image"].shape == (3, 40, 40) and obs["image"].dtype == np.uint8
    assert obs["params"].dtype == np.float32
    assert np.allclose(obs["params"], to_normalized(neutral()), atol=1e-6)
    steps = 0
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert env.observation_space.contains(obs) and np.isfinite(reward) and not truncated
    assert steps == 3 and info["episode_scorer_calls"] == scorer.calls - before in (3, 4)


def test_contract_horizon_is_visible_and_spaces_are_one_definition(isp_raws, scorer):
    """Gymnasium's rule for time limits that are part of the task: the time is in the observation; the
    policy files rebuild the very spaces the env declares."""
    from isp_env.env import spaces_for
    from isp_env.policy_io import build_policy

    env = ISPTuningEnv(isp_raws[:1], scorer=scorer, preview=64, obs_size=36, max_steps=2, action_mode="delta")
    obs, _ = env.reset(seed=0)
    assert obs["time"][0] == 0.0
    obs, _, terminated, truncated, _ = env.step(np.zeros(N_PARAMS, np.float32))
    assert obs["time"][0] == pytest.approx(0.5) and not terminated and not truncated
    obs, _, terminated, _, info = env.step(np.zeros(N_PARAMS, np.float32))
    assert obs["time"][0] == 1.0 and terminated
    assert env.params == info["params"]
    obs_space, act_space = spaces_for(36)
    assert obs_space == env.observation_space and act_space == env.action_space
    policy = build_policy(
        {
            "algo": "sac",
            "env": {"obs_size": 36},
            "policy_kwargs": {"net_arch": [8], "features_extractor_kwargs": {"cnn_output_dim": 8}},
        }
    )
    assert policy.observation_space == env.observation_space


def test_one_step_episode_scores_neutral_once_per_raw(isp_raws, scorer):
    """A one-step contextual episode: the neutral render's score is cached per raw, so each later episode
    costs one scorer call."""
    env = ISPTuningEnv(isp_raws[:1], scorer=scorer, preview=64, obs_size=36)
    assert env.max_steps == 1 and env.action_mode == "absolute"
    before = env.mos.calls  # (the scorer is shared by this module's tests)
    for episode in range(3):
        env.reset(seed=episode)
        *_, terminated, _, info = env.step(np.zeros(N_PARAMS, np.float32))
        assert terminated
    assert env.scorer_calls() - before == 1 + 3


def test_reward_is_the_scorers_mos_gain(isp_raws, scorer):
    env = ISPTuningEnv(
        isp_raws[:1], scorer=scorer, preview=96, obs_size=32, max_steps=2, action_mode="delta", guard=False
    )
    _, info0 = env.reset(seed=0)
    action = np.zeros(N_PARAMS, np.float32)
    action[NAMES.index("saturation")] = 1.0
    action[NAMES.index("sharpen_amount")] = 1.0
    _, reward, _, _, info1 = env.step(action)
    # recompute independently: render with the resulting parameters, score with a fresh classical scorer
    fresh = attiqa.create_scorer("classical")
    dev = develop(read_raw(isp_raws[0]), 96)
    from PIL import Image

    before = fresh(Image.fromarray(finish(dev, neutral())))["score"]
    after = fresh(Image.fromarray(finish(dev, info1["params"])))["score"]
    assert info1["params"]["saturation"] == pytest.approx(1.5)  # delta 0.5 in normalised units: 0 -> 0.5
    assert info0["mos"] == pytest.approx(before, abs=1e-5) and info1["mos"] == pytest.approx(after, abs=1e-5)
    assert reward == pytest.approx(100.0 * (after - before), abs=1e-3)


def test_nan_and_out_of_range_actions_never_reach_the_agent(isp_raws, scorer):
    for mode in ("delta", "absolute"):
        env = ISPTuningEnv(isp_raws[:2], scorer=scorer, preview=64, obs_size=32, action_mode=mode)
        env.reset(seed=0)
        action = np.full(N_PARAMS, np.nan, np.float32)
        action[:4] = [np.inf, -np.inf, 7.0, -9.0]
        obs, reward, *_ = env.step(action)
        assert np.isfinite(reward) and np.isfinite(obs["params"]).all()
        assert env.observation_space.contains(obs)


def test_nan_scores_are_replaced_and_counted(isp_raws):
    env = ISPTuningEnv(isp_raws[:1], scorer=lambda img: float("nan"), preview=64, obs_size=32, guard=False)
    env.reset(seed=0)
    _, reward, *_ = env.step(np.ones(N_PARAMS, np.float32))
    assert reward == 0.0 and env.mos.nonfinite == 2


def test_unreadable_raws_are_skipped_and_listed(isp_raws, tmp_path, scorer):
    bad = tmp_path / "truncated.dng"
    bad.write_bytes(isp_raws[0].read_bytes()[:500])
    env = ISPTuningEnv([bad, isp_raws[0]], scorer=scorer, preview=64, obs_size=32)
    for seed in range(3):
        _, info = env.reset(seed=seed)
        assert info["raw"] == isp_raws[0].name
    assert list(env.skipped) == [str(bad)] and "truncated.dng" in env.skipped[str(bad)]
    only_bad = ISPTuningEnv([bad], scorer=scorer, preview=64)
    with pytest.raises(isp_env.raw.RawReadError, match="no readable raw"):
        only_bad.reset(seed=0)


def test_default_scorer_is_the_bundled_model_or_asks_for_model(isp_raws):
    from attiqa.errors import ModelLoadError
    from attiqa.scorers import DEFAULT_MODEL
    from attiqa.scorers.zoo import named_models

    env = ISPTuningEnv(isp_raws[:1], scorer=None, preview=64, obs_size=32, max_steps=1)
    if DEFAULT_MODEL not in named_models():
        with pytest.raises(ModelLoadError, match="--model"):
            env.reset(seed=0)
        return
    _, info = env.reset(seed=0)
    assert env.mos.name == DEFAULT_MODEL
    assert np.isfinite(info["mos"]) and -20 < info["mos"] < 120  # the CLIVE MOS scale
    _, reward, *_ = env.step(np.zeros(N_PARAMS, np.float32))
    assert np.isfinite(reward)


def test_attiqa_checkpoint_as_reward(isp_raws, tmp_path):
    """A real ATTIQA checkpoint (tiny backbone, random init: the machinery, not the numbers) drives the env by
    path, exactly as `isp-tune --model ckpt.safetensors` does; a pretrain-only checkpoint is refused."""
    import torch
    from PIL import Image

    from attiqa.errors import ModelLoadError
    from attiqa.models import AttiqaModel, create_backbone, save_model

    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny"), head_hidden=16, mos_hidden=8)
    model.set_mos_range(0.0, 100.0)
    ckpt = save_model(model, tmp_path / "finetune" / "best.safetensors", card={"name": "tiny"})
    env = ISPTuningEnv(isp_raws[:1], scorer=str(ckpt), preview=64, obs_size=32, max_steps=1)
    _, info = env.reset(seed=0)
    assert env.mos.score_range == (0.0, 100.0) and env.mos.name == "tiny"
    # the reward scores the render in one pass: the scorer's own centre crop at its scale
    direct = attiqa.load_scorer(ckpt, crops="center")(Image.fromarray(env.render()))["mos"]
    assert info["mos"] == pytest.approx(direct, rel=1e-5)
    _, reward, *_ = env.step(np.ones(N_PARAMS, np.float32))
    assert np.isfinite(reward)
    pre = save_model(
        AttiqaModel(create_backbone("tiny"), head_hidden=16),
        tmp_path / "pre.safetensors",
        card={"name": "pre"},
    )
    with pytest.raises(ModelLoadError, match="no MOS head"):
        ISPTuningEnv(isp_raws[:1], scorer=str(pre), preview=64).reset(seed=0)


def test_preview_disk_cache_is_shared_and_equal(isp_raws, tmp_path, scorer):
    kw = {"scorer": scorer, "preview": 64, "obs_size": 32, "cache_dir": tmp_path / "cache"}
    first = ISPTuningEnv(isp_raws[:1], **kw)
    obs1, info1 = first.reset(seed=0)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    second = ISPTuningEnv(isp_raws[:1], **kw)  # e.g. another worker or a resumed run: reads the cache
    obs2, info2 = second.reset(seed=0)
    np.testing.assert_allclose(
        second.developed(isp_raws[0]).linear, develop(read_raw(isp_raws[0]), 64).linear, rtol=2e-3, atol=1e-4
    )  # float16 storage
    assert np.abs(obs1["image"].astype(int) - obs2["image"]).max() <= 1
    assert info2["mos"] == pytest.approx(info1["mos"], abs=1e-3)


def test_residual_action_zero_renders_the_base_and_offsets_are_bounded(isp_raws, scorer):
    """Residual actions (ours): action 0 is the base setting, +-1 is base +- delta_scale (normalised units),
    clipped to the ranges; the reward is the guarded gain over the base render of the same raw."""
    from isp_env.params import check_values, from_normalized

    base = check_values({"tone_exposure": 0.3, "saturation": 1.2, "contrast": 1.45})
    env = ISPTuningEnv(
        isp_raws[:1],
        scorer=scorer,
        preview=64,
        obs_size=32,
        action_mode="residual",
        delta_scale=0.25,
        obs_mode="stats",
        base=base,
    )
    obs, info = env.reset(seed=0)
    assert env.params == base and obs.shape == (N_STATS + 1,) and obs[-1] == 0.0
    _, reward, terminated, _, info = env.step(np.zeros(N_PARAMS, np.float32))
    assert terminated and info["params"] == base and reward == pytest.approx(0.0, abs=1e-9)
    env.reset(seed=1)
    a = np.ones(N_PARAMS, np.float32)
    _, reward, *_, info = env.step(a)
    expect = from_normalized(np.clip(to_normalized(base) + 0.25, -1, 1))
    assert info["params"] == pytest.approx(expect)
    assert info["params"]["contrast"] == 1.5  # clipped to the range
    # the reward is the guarded gain over the base render, recomputed independently
    from isp_env.reward import make_guard

    dev = develop(read_raw(isp_raws[0]), 64)
    guard = make_guard(dev, isp_raws[0], None)
    fresh = from_scorer(attiqa.create_scorer("classical"))

    def guarded(values):
        img = finish(dev, values)
        return fresh.one(img) - guard.penalty(img) * fresh.width / 100.0

    assert info["score_start"] == pytest.approx(guarded(base), abs=1e-6)
    assert reward == pytest.approx(100.0 * (guarded(info["params"]) - guarded(base)) / fresh.width, abs=1e-4)


def test_stats_observation_passes_the_gymnasium_checker(isp_raws, scorer):
    from isp_env.env import spaces_for

    env = ISPTuningEnv(
        isp_raws[:2], scorer=scorer, preview=64, obs_size=32, action_mode="residual", obs_mode="stats"
    )
    check_env(env, skip_render_check=True)
    assert spaces_for(32, "stats") == (env.observation_space, env.action_space)


def test_image_stats_see_casts_in_shadows_and_highlights_and_contrast():
    """The session 24 statistics (after the first 12): channel percentiles 10/90 and three contrast
    measures, all in the observation box. A photo-like gradient with a blue cast in its shadows only and
    a harder copy of it: the percentiles see the cast where it is, the contrast measures see the edit."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.1, 0.9, 400, dtype=np.float32)[None, :, None].repeat(300, 0)
    texture = 0.05 * rng.standard_normal((300, 400, 1)).astype(np.float32)
    base = np.clip(ramp + texture, 0, 1).repeat(3, axis=2)
    cast = base.copy()
    cast[..., 2] += 0.15 * (1 - ramp[..., 0])  # blue lifted in the shadows, highlights untouched
    hard = np.clip(0.5 + 1.6 * (base - 0.5), 0, 1)
    s_base, s_cast, s_hard = (
        image_stats((255 * np.clip(x, 0, 1)).astype(np.uint8)) for x in (base, cast, hard)
    )
    assert s_base.shape == (N_STATS,) and ((s_base >= 0) & (s_base <= 1)).all()
    p10 = slice(12, 15)
    p90 = slice(15, 18)
    assert s_cast[p10][2] - s_cast[p10][0] > 0.08 > abs(s_base[p10][2] - s_base[p10][0])
    assert abs(s_cast[p90][2] - s_cast[p90][0]) < 0.05
    assert (s_hard[18:21] > 1.2 * s_base[18:21]).all()  # luma sd, local and large-scale contrast
