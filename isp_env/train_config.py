"""What a run is trained with (:class:`TrainConfig`) and the settings that do not fit together
(:func:`check_config`), torch-free: ``isp-tune`` builds its config and checks it before torch, the raws'
probe and the model stack load (:func:`isp_env.run_inputs.run_inputs` checks it first), and so do the
library's runs. Training itself is :mod:`isp_env.tuning`'s.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from attiqa.errors import ConfigError, did_you_mean
from isp_env.registration import (
    ACTION_MODE,
    ALGO,
    BASE,
    BUFFER_SIZE,
    CHECKPOINT_EVERY,
    MAX_STEPS,
    N_ENVS,
    OBS_MODE,
    RL_ALGOS,
    TIMESTEPS,
)

# The one place of the default ``delta_scale`` (normalised units; each range is 2 wide), by action mode and
# algorithm (ours): delta steps 0.5; residual offsets of an RL agent 0.4 (session 22, measured with
# benchmarks/isp_formulation.py); residual offsets of the teacher 2, the whole range — its targets are
# per-image optima that may lie anywhere, and its regression's shrinkage, not a clip, keeps it near the base.
DELTA_SCALE, RESIDUAL_SCALE, TEACHER_RESIDUAL_SCALE = 0.5, 0.4, 2.0


def default_delta_scale(algo: str, action_mode: str) -> float:
    """The ``delta_scale`` a :class:`TrainConfig` gets when none is given."""
    if action_mode != "residual":
        return DELTA_SCALE
    return TEACHER_RESIDUAL_SCALE if algo == "teacher" else RESIDUAL_SCALE


@dataclass
class TrainConfig:
    # the defaults of isp-tune (isp_env.registration: one place for both)
    algo: str = ALGO
    timesteps: int = TIMESTEPS
    n_envs: int = N_ENVS
    preview: int | None = None  # None: render at the scorer's own scale (isp_env.reward)
    obs_size: int = 64
    max_steps: int = 1  # one-step contextual policy (docs/isp.md: why)
    action_mode: str = ACTION_MODE
    # delta: step size; residual: largest offset from the base (normalised units); None (not given):
    # default_delta_scale, or a teacher prior's (checked_prior) — read it as ``scale``
    delta_scale: float | None = None
    obs_mode: str = OBS_MODE  # stats: MLP on the statistics only; image: CNN on the render + stats
    base: dict[str, float] | None = None  # residual: the setting action 0 renders (None = neutral)
    guard: bool = True
    view_shorter: int | None = None  # the scorer's shorter side, filled in from the scorer by `run`
    seed: int = 0
    learning_rate: float = 3e-4
    batch_size: int = 64
    buffer_size: int = BUFFER_SIZE
    learning_starts: int = 200
    n_steps: int = 64  # PPO rollout length per env
    net_arch: list[int] = field(default_factory=lambda: [128, 128])
    cnn_features: int = 128
    checkpoint_every: int = CHECKPOINT_EVERY
    scorer: str | None = None  # None = the default ATTIQA model
    torch_threads: int = 1  # learner; single-threaded is much faster on busy cores (docs/isp.md)
    init_policy: str | None = None  # start from this policy's weights ("default" = the shipped one)

    @property
    def scale(self) -> float:
        """``delta_scale``, or its default when none is given."""
        if self.delta_scale is None:
            return default_delta_scale(self.algo, self.action_mode)
        return float(self.delta_scale)

    def env_kwargs(self) -> dict[str, Any]:
        return {
            "scorer": self.scorer,
            "preview": self.preview,
            "obs_size": self.obs_size,
            "max_steps": self.max_steps,
            "action_mode": self.action_mode,
            "delta_scale": self.scale,
            "guard": self.guard,
            "view_shorter": self.view_shorter,
            "obs_mode": self.obs_mode,
            "base": self.base,
        }

    def policy_kwargs(self) -> dict[str, Any]:
        if self.obs_mode == "stats":
            return {"net_arch": list(self.net_arch)}
        return {
            "net_arch": list(self.net_arch),
            "features_extractor_kwargs": {"cnn_output_dim": self.cnn_features},
        }

    def learning_key(self) -> dict[str, Any]:
        """Settings a resumed run must share with the checkpoint."""
        d = asdict(self)
        for k in ("timesteps", "checkpoint_every", "n_envs", "torch_threads", "init_policy"):
            d.pop(k)
        d["delta_scale"] = self.scale  # as resolved: the same key whether the default was given or not
        return d


@dataclass
class TeacherSettings:
    """How ``--algo teacher`` makes its targets (CLI ``--teacher-*``); the one place of the defaults, the
    measured recipe (docs/isp.md)."""

    budget: int = 150  # scorer calls of each per-image CMA-ES search (the per-image baseline's budget)
    restarts: int = 3  # searches per raw (seeds 0, 1, ...); the best setting is the raw's target
    start: str = "neutral"  # where the searches start: neutral (like the per-image baseline) or base
    raws: int = 60  # at most this many training raws are searched, spread over the scene groups


def check_config(cfg: TrainConfig, settings: TeacherSettings | None = None) -> None:
    """The settings that do not fit together, refused before any work (an unknown ``--algo`` was found
    after the global CMA-ES had spent its 600 scorer calls): :func:`isp_env.run_inputs.run_inputs` checks
    them first, before the raws are probed, for ``isp-tune`` (before torch loads) and the library's runs;
    :func:`isp_env.run.run` again, for a config changed since. ``settings``: a teacher run's (its
    ``--teacher-start``), else None."""
    algo, action_mode, obs_mode, max_steps = cfg.algo, cfg.action_mode, cfg.obs_mode, cfg.max_steps
    start = None if settings is None else settings.start
    algos = ("teacher", *RL_ALGOS)
    if algo not in algos:
        raise ConfigError(f"unknown --algo {algo!r}; one of {', '.join(algos)}{did_you_mean(algo, algos)}")
    modes = ("residual", "absolute", "delta")
    if action_mode not in modes:
        hint = did_you_mean(action_mode, modes)
        raise ConfigError(f"--action-mode {action_mode!r}: use residual, absolute or delta{hint}")
    if obs_mode not in ("stats", "image"):
        hint = did_you_mean(obs_mode, ("stats", "image"))
        raise ConfigError(f"--obs-mode {obs_mode!r}: use stats or image{hint}")
    if not 1 <= max_steps <= MAX_STEPS:  # the option parser's bound, for the library's runs too
        raise ConfigError(f"--max-steps {max_steps}: use 1 to {MAX_STEPS} (1: one-step contextual policy)")
    if algo == "teacher" and (action_mode != "residual" or obs_mode != "stats"):
        raise ConfigError("--algo teacher needs --action-mode residual and --obs-mode stats")
    if start is not None and start not in ("base", "neutral"):
        raise ConfigError(f"--teacher-start {start!r}: use base or neutral")


# Options that only some runs use, by what a run must be for them to count: given to another run they were
# dropped without a word (`--algo sac --teacher-budget 5` trained SAC for 3000 steps; `--timesteps 10000`
# on the default teacher trained nothing longer; `--residual-scale` with `--action-mode absolute` was None).
AGENT_ONLY = ("timesteps", "n_envs", "batch_size", "learning_starts", "checkpoint_every")
TEACHER_ONLY = ("teacher_budget", "teacher_raws", "teacher_restarts", "teacher_start")


# Each such setting's name, as the one who gave it reads it: the command's option, or the library's own —
# the field of TrainConfig / TeacherSettings / isp_env.run_inputs.InputSettings, or run()'s keyword (a
# library caller was told "--teacher-budget", an option it never typed)
SETTING_NAMES = {
    **{n: ("--" + n.replace("_", "-"), f"TrainConfig.{n}") for n in AGENT_ONLY},
    **{
        n: ("--" + n.replace("_", "-"), "TeacherSettings." + n.removeprefix("teacher_")) for n in TEACHER_ONLY
    },
    "residual_scale": ("--residual-scale", "TrainConfig.delta_scale"),
    "test_raws": ("--test-raws", "InputSettings.test_raws_cap"),
    "cma_image_budget": ("--cma-image-budget", "run(cma_image_budget=…)"),
    "cma_global_budget": ("--cma-global-budget", "run(cma_global_budget=…)"),
}


def ignored_settings(
    cfg: TrainConfig,
    given: Collection[str],
    test_fraction: float,
    baselines: bool = True,
    *,
    base: str = BASE,
    as_options: bool = True,
) -> list[str]:
    """Why this run ignores each of the ``given`` settings, one reason a kind ([] when none): ``given`` by
    their keys in :data:`SETTING_NAMES` (``teacher_budget`` for ``--teacher-budget``) — the options typed
    (``isp-tune``), or a library run's settings not at their defaults
    (:func:`isp_env.run_inputs.given_settings`, :func:`isp_env.run.run`'s ``cma_image_budget``). A
    warning, not a refusal (:func:`isp_env.run_inputs.run_inputs` says it before the raws are listed): the
    same command with another ``--algo`` is how a run's options are tried. ``as_options``: the reasons
    name the command's options (``isp-tune``), else the library's settings (``TeacherSettings.budget: algo
    'teacher' only``). ``base``: the run's ``--base`` (``global``: the global CMA-ES searches the residual
    base, spending ``--cma-global-budget``). ``cfg``: checked (:func:`check_config`)."""

    def of(names: tuple[str, ...]) -> list[str]:
        return [SETTING_NAMES[n][0 if as_options else 1] for n in names if n in given]

    def said(option: str, setting: str) -> str:
        return option if as_options else setting

    algo, why = cfg.algo, []
    if algo == "teacher" and (opts := of(AGENT_ONLY)):
        agents = said("pass --algo sac, ppo or td3", "algo 'sac', 'ppo' or 'td3'")
        why.append(f"{', '.join(opts)}: RL agents only ({agents}), not the teacher")
    if algo != "teacher" and (opts := of(TEACHER_ONLY)):
        only, now = said("--algo teacher", "algo 'teacher'"), said(f"--algo {algo}", f"algo {algo!r}")
        why.append(f"{', '.join(opts)}: {only} only, not {now}")
    if cfg.action_mode != "residual" and (opts := of(("residual_scale",))):
        # (the library's delta_scale is a delta step's size too: given_settings counts it under absolute only)
        modes = said("--action-mode residual", "action_mode 'residual' or 'delta'")
        why.append(f"{opts[0]}: {modes} only, not {cfg.action_mode}")
    if test_fraction == 0 and (opts := of(("test_raws", "cma_image_budget"))):
        why.append(
            f"{', '.join(opts)}: nothing is held out with {said('--test-fraction 0', 'test_fraction 0')}"
        )
    elif not baselines and (opts := of(("cma_image_budget",))):
        off = said("--no-baselines", "baselines=False")
        why.append(f"{opts[0]}: the per-image CMA-ES baseline is off ({off})")
    # the global CMA-ES runs for the global baseline and for a residual base of --base global (not taken
    # from a config's own base or an --init-policy's: those may skip it, so are not said)
    searched = cfg.action_mode == "residual" and base == "global" and cfg.base is None
    if not searched and (test_fraction == 0 or not baselines) and (opts := of(("cma_global_budget",))):
        if cfg.action_mode != "residual":
            no_base = said(f"--action-mode {cfg.action_mode}", f"action_mode {cfg.action_mode!r}")
        else:
            no_base = said(
                f"--base {base}",
                "TrainConfig.base" if cfg.base is not None else f"InputSettings.base {base!r}",
            )
        off = (
            said("--test-fraction 0", "test_fraction 0")
            if test_fraction == 0
            else said("--no-baselines", "baselines=False")
        )
        why.append(
            f"{opts[0]}: no global CMA-ES runs (no base search with {no_base}, no baseline with {off})"
        )
    return why
