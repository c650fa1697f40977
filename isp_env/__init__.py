"""ISP tuning by reinforcement learning (ATTIQA §5.2, supplement §D.3).

* :mod:`isp_env.raw` — rawpy reader (any 2x2 Bayer layout), :mod:`isp_env.dng` — DNG writer / unprocessing
* :mod:`isp_env.params` — the 16 tuned parameters, :mod:`isp_env.isp` — the 14-module pipeline
* :mod:`isp_env.reward` — scoring at the scorer's scale + the over-processing guard, :mod:`isp_env.synth` —
  synthetic training raws (unprocessing)
* :mod:`isp_env.env` — the Gymnasium environment, registered as ``isp_env/ISPTuning-v0``
* :mod:`isp_env.tuning` — SB3 training, baselines and the report; :mod:`isp_env.cli` — ``isp-tune``

``import isp_env`` registers the environment (Gymnasium only, :mod:`isp_env.registration`);
:class:`ISPTuningEnv` and the ISP behind it (torch, scipy) are imported on first use, so ``isp-tune
--help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


def _extra_missing(exc: ModuleNotFoundError) -> ModuleNotFoundError:
    """gymnasium / rawpy / stable-baselines3 are the `isp` extra: say so, at import or on first use."""
    return ModuleNotFoundError(
        f"isp_env needs the `isp` extra ({exc.name} is missing): pip install 'attiqa[isp]'"
    )


try:
    from isp_env.registration import ENV_ID, register
except ModuleNotFoundError as exc:
    raise _extra_missing(exc) from exc

if TYPE_CHECKING:
    from isp_env.env import ISPTuningEnv

register()


def __getattr__(name: str) -> Any:
    if name != "ISPTuningEnv":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from isp_env.env import ISPTuningEnv
    except ModuleNotFoundError as exc:
        raise _extra_missing(exc) from exc
    return ISPTuningEnv


__all__ = ["ENV_ID", "ISPTuningEnv", "register"]
