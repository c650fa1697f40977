"""isp-tune: the environment's metadata and episode counts, a resumed check's progress rate
(docs/robustness.md rows)."""

from __future__ import annotations

import json
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
    "policy: read + tune: 2/2 (41.3 img/s)" with none tuned. Now they are kept (``progress_task(kept=…)``,
    as the run's other passes): "2/2 (none done now, 2 kept from an earlier run)". The real command twice,
    piped, the classical scorer."""
    from typer.testing import CliRunner

    cmd = ["check", str(isp_raws[0].parent), "-m", "classical", "--out", str(tmp_path / "c")]
    for _ in range(2):
        r = CliRunner().invoke(app, cmd)
        assert r.exit_code == 0, r.output + repr(r.exception)
    last = [x for x in r.output.splitlines() if x.startswith("policy: read + tune: ")][-1]
    assert re.fullmatch(r"policy: read \+ tune: 4/4 \(none done now, 4 kept from an earlier run\)", last)


def test_a_resumed_ppo_run_trains_the_steps_asked(tmp_path, isp_raws):
    """**Was** PPO's resume checkpoint saved every ``checkpoint_every`` steps, in the middle of a rollout
    (whose steps are learned from only at its end): a run of 192 steps interrupted after its checkpoint at
    step 16 resumed "at step 16", learned from none of those 16, and ended at 208 steps (three whole
    rollouts of 64 more). Now PPO's checkpoint is saved where a rollout starts (every rollout before it
    learned from), so the resumed run trains the rest and ends at the steps asked. The real training,
    interrupted (Ctrl-C) once its first checkpoint is on disk, then run again."""
    import _thread
    import threading
    import time

    import pytest

    from isp_env.policy_files import find_state
    from isp_env.train_config import TrainConfig
    from isp_env.tuning import train

    cfg = TrainConfig(
        algo="ppo", action_mode="residual", obs_mode="stats", timesteps=192, n_steps=64, checkpoint_every=16,
        scorer="classical", preview=48, seed=0,
    )  # fmt: skip
    run = tmp_path / "run"
    state = run / "checkpoint" / "state.json"
    stop = threading.Event()

    def interrupt_after_the_first_checkpoint() -> None:
        while not stop.is_set():
            if state.is_file():
                _thread.interrupt_main()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=interrupt_after_the_first_checkpoint, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            train(run, isp_raws[:2], cfg, subprocess=False)
    finally:
        stop.set()
        watcher.join()
    kept = json.loads((find_state(run / "checkpoint") / "state.json").read_text())["num_timesteps"]
    assert 0 < kept < cfg.timesteps and kept % cfg.n_steps == 0  # at a rollout's start
    summary = train(run, isp_raws[:2], cfg, subprocess=False)
    assert summary["timesteps"] == cfg.timesteps
