"""The environment's Gymnasium id and its registration: Gymnasium only, by a string entry point.

Apart from :mod:`isp_env.env` (which needs torch, scipy and the ISP) so that ``import isp_env`` — and so
``isp-tune --help`` — registers the environment without importing them: the class is imported by
Gymnasium when an environment is made.
"""

from __future__ import annotations

import gymnasium as gym

ENV_ID = "isp_env/ISPTuning-v0"

# The longest episode (``max_steps``), one bound for the option parser (``isp-tune --max-steps``) and
# :func:`isp_env.train_config.check_config` (the library's runs): 10**12 was an episode that never ended
# (applying a policy renders each held-out raw once a step). 1 is the measured recipe (docs/isp.md); delta
# steps (isp_env.train_config.DELTA_SCALE, 0.5) cross a parameter's whole range (2 wide) in 4, residual and
# absolute actions set the parameters outright at every step, and DRL-ISP, the paper's reference, ends its
# episodes after 3 (its code's --episode_max_step): 20 leaves five times that room. Here, not in
# isp_env.env, so that ``isp-tune --help`` reads it without torch.
MAX_STEPS = 20

# The observation a trained policy sees when none is asked for: the image statistics (an MLP), the measured
# recipe (docs/isp.md; the shipped policy's ``env.obs_mode``). One default for ``isp-tune --obs-mode`` and
# :class:`isp_env.train_config.TrainConfig` — the library's was "image" (a CNN on the render), the command's
# "stats": ``TrainConfig(algo="teacher")`` was refused for a setting its user never chose.
OBS_MODE = "stats"

RL_ALGOS = ("sac", "ppo", "td3")  # the SB3 agents of ``--algo`` (besides ``teacher``)

# The rest of what ``isp-tune`` and :class:`isp_env.train_config.TrainConfig` / :func:`isp_env.run.run` both
# set, one default each (session 49): the library trained SAC on absolute actions (SAC was the command's
# default up to session 22), 20,000 steps in 2 environments, around a neutral base, while the command — and
# the shipped policy (``algo`` "teacher", ``env.action_mode`` "residual") — fits the teacher around the global
# CMA-ES setting. The agents' budget is the command's quick run (docs/isp.md's runs pass --timesteps).
ALGO = "teacher"
ACTION_MODE = "residual"
BASE = "global"  # residual actions: the setting action 0 renders (global | neutral | a parameter JSON)
TIMESTEPS, N_ENVS, CHECKPOINT_EVERY = 3_000, 1, 500  # RL agents: steps, environments, steps between saves

# ``--test-raws``' default (``isp-tune``, ``isp-tune check``, :func:`isp_env.run.run`): at most this many
# held-out raws are evaluated (each costs the per-image CMA-ES's ``--cma-image-budget`` scorer calls and a
# full-resolution render per method); a smaller split is evaluated whole (docs/isp.md, "At FiveK scale").
# Here, not in isp_env.run, so that ``isp-tune --help`` shows it without torch.
TEST_RAWS = 100

# ``--cma-image-budget``'s default (``isp-tune``, :func:`isp_env.run.run`): the per-image CMA-ES baseline's
# scorer calls per held-out raw; one constant, so a library run that changed it is told when it is ignored
CMA_IMAGE_BUDGET = 150
# ``--cma-global-budget``'s (:func:`isp_env.run.run`): the global CMA-ES's scorer calls — the search of
# ``--base global`` and the global baseline; a run with neither is told it ignores a budget given
CMA_GLOBAL_BUDGET = 600

# the split's defaults (``isp-tune --test-fraction`` / ``--group-by``, :func:`isp_env.run.run`): the share
# of raws held out, and what is kept whole on one side (``scene`` | ``camera``: isp_env.run_inputs)
TEST_FRACTION = 0.3
GROUP_BY_DEFAULT = "scene"

# the RL agents' replay buffer in steps (:class:`isp_env.train_config.TrainConfig`); ``isp-tune --batch-size``
# may not exceed it, checked before torch is imported
BUFFER_SIZE = 20_000


def register() -> None:
    """Register :data:`ENV_ID` with Gymnasium (idempotent; done on ``import isp_env``)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="isp_env.env:ISPTuningEnv")
