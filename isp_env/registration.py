"""The environment's Gymnasium id and its registration: Gymnasium only, by a string entry point.

Apart from :mod:`isp_env.env` (which needs torch, scipy and the ISP) so that ``import isp_env`` — and so
``isp-tune --help`` — registers the environment without importing them: the class is imported by
Gymnasium when an environment is made.
"""

from __future__ import annotations

import gymnasium as gym

ENV_ID = "isp_env/ISPTuning-v0"


def register() -> None:
    """Register :data:`ENV_ID` with Gymnasium (idempotent; done on ``import isp_env``)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="isp_env.env:ISPTuningEnv")
