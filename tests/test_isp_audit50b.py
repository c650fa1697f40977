"""Session 50's second isp-tune audit: the environment's metadata and episode counts, a resumed check's
progress rate (docs/robustness.md rows)."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import numpy as np

import attiqa
import isp_env
from isp_env.cli import app
from isp_env.env import ISPTuningEnv
from isp_env.mos_function import from_scorer


def test_the_gymnasium_checker_passes_the_environment_without_a_warning(isp_raws):
    """**Was** ``check_env`` warning "No render fps was declared in the environment
    (env.metadata['render_fps'] is None or not defined)" (the metadata named the render mode only). Now the
    metadata has a ``render_fps``; the env made by its registered id with its render mode, render checks
    included."""
    from gymnasium.utils.env_checker import check_env

    scorer = from_scorer(attiqa.create_scorer("classical"))
    env = gym.make(isp_env.ENV_ID, raws=isp_raws[:2], scorer=scorer, preview=64, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    assert env.unwrapped.metadata["render_fps"] > 0


def test_episode_scorer_calls_counts_the_calls_made_not_the_steps(isp_raws):
    """**Was** ``info["episode_scorer_calls"]`` the step count + 1 whatever happened: an episode on a raw
    whose base score was cached by an earlier episode (no call at reset) said 2 for its one step's call. Now
    the scorer calls the episode made, the scorer's own count."""
    scorer = from_scorer(attiqa.create_scorer("classical"))
    env = ISPTuningEnv(isp_raws[:1], scorer=scorer, preview=64, max_steps=1, obs_mode="stats")
    action = np.zeros(env.action_space.shape, np.float32)
    for first in (True, False):
        before = scorer.calls
        _, info = env.reset(seed=0)
        assert info["episode_scorer_calls"] == scorer.calls - before == (1 if first else 0)
        _, _, terminated, _, info = env.step(action)
        assert terminated and info["episode_scorer_calls"] == scorer.calls - before == (2 if first else 1)
    _, info = env.reset(seed=0, options={"params": env.params})  # a given start is scored: one call
    assert info["episode_scorer_calls"] == 1


def test_a_resumed_check_counts_the_kept_tunings_apart_from_the_rate(tmp_path, isp_raws):
    """**Was** a resumed ``isp-tune check`` counting the policy settings the earlier run wrote as tuned now:
    "policy: read + tune: 2/2 (41.3 img/s)" with none tuned. Now they are kept (``advance(n, kept=True)``,
    as the run's other passes): "2/2 (none done now, 2 kept from an earlier run)". The real command twice,
    piped, the classical scorer."""
    from typer.testing import CliRunner

    cmd = ["check", str(isp_raws[0].parent), "-m", "classical", "--out", str(tmp_path / "c")]
    for _ in range(2):
        r = CliRunner().invoke(app, cmd)
        assert r.exit_code == 0, r.output + repr(r.exception)
    last = [x for x in r.output.splitlines() if x.startswith("policy: read + tune: ")][-1]
    assert re.fullmatch(r"policy: read \+ tune: 4/4 \(none done now, 4 kept from an earlier run\)", last)
