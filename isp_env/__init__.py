"""ISP tuning by reinforcement learning (ATTIQA §5.2, supplement §D.3).

* :mod:`isp_env.raw` — rawpy reader (any 2x2 Bayer layout), :mod:`isp_env.dng` — DNG writer / unprocessing
* :mod:`isp_env.params` — the 16 tuned parameters, :mod:`isp_env.isp` — the 14-module pipeline
* :mod:`isp_env.reward` — scoring at the scorer's scale + the over-processing guard, :mod:`isp_env.synth` —
  synthetic training raws (unprocessing)
* :mod:`isp_env.env` — the Gymnasium environment, registered as ``isp_env/ISPTuning-v0``
* :mod:`isp_env.tuning` — SB3 training, baselines and the report; :mod:`isp_env.cli` — ``isp-tune``
"""

from __future__ import annotations

try:
    from isp_env.env import ENV_ID, ISPTuningEnv, register
except ModuleNotFoundError as exc:  # gymnasium / rawpy / stable-baselines3 are the `isp` extra
    raise ModuleNotFoundError(
        f"isp_env needs the `isp` extra ({exc.name} is missing): pip install 'attiqa[isp]'"
    ) from exc

register()

__all__ = ["ENV_ID", "ISPTuningEnv", "register"]
