"""Train an SB3 agent on the ISP environment, resumably, and apply it to raws.

SAC by default (PPO and TD3 selectable), over ``n_envs`` environments in subprocesses (``SubprocVecEnv``):
``MlpPolicy`` on the image statistics (``obs_mode="stats"``) or ``MultiInputPolicy`` (NatureCNN on the
render + statistics, parameters and time). ``isp-tune`` trains the formulation chosen by measurement
(``benchmarks/isp_formulation.py``, docs/isp.md): residual actions around a base, statistics, SAC.
Hyper-parameters the paper does not give (it gives none for the agent) are ours, in
:class:`isp_env.train_config.TrainConfig`.
:func:`train_teacher` (``--algo teacher``, session 23) fits the per-image policy of :mod:`isp_env.teacher`
instead: supervised by per-image CMA-ES optima of the training raws, no RL.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from attiqa.errors import ConfigError
from attiqa.progress import console, plain, plain_failure, plain_name, progress_task
from attiqa.scorers import DEFAULT_MODEL, scorer_identity
from isp_env.baselines import RenderObjective, guarded_objective, score_together, search_plan
from isp_env.env import ISPTuningEnv
from isp_env.params import N_PARAMS, RunFiles, file_stamp, neutral, to_normalized
from isp_env.policy_files import find_state, init_policy_file
from isp_env.policy_io import (
    algorithms,
    load_policy,
    load_state,
    policy_name,
    save_policy,
    save_state,
)
from isp_env.raw import RawImage, RawReadError
from isp_env.reward import guarded_item
from isp_env.teacher import (
    Choice,
    KeptFor,
    TeacherPolicy,
    choose_by_cv,
    fit_teacher,
    inputs_digest,
    residual_targets,
    search_targets,
)
from isp_env.train_config import TeacherSettings, TrainConfig, check_config

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.policies import BasePolicy
    from stable_baselines3.common.vec_env import VecEnv

    from isp_env.isp import Developed
    from isp_env.mos_function import MOSFunction
    from isp_env.reward import Guard


def exit_with_parent(parent_pid: int, deathsig: bool) -> None:
    """End this worker process as soon as its parent is gone. SB3's worker loop notices only when it next
    talks to the parent: a worker in the middle of a step (a render and a scorer call) outlived a
    ``kill -9`` of ``isp-tune`` by seconds, then printed a BrokenPipeError traceback. On Linux the kernel
    sends SIGKILL (``PR_SET_PDEATHSIG``) — only when the parent made the worker from its main thread: the
    signal follows the creating *thread*. Everywhere, a daemon thread waits on the parent's sentinel
    (``multiprocessing.parent_process``; else it polls ``os.getppid``) and calls ``os._exit``."""
    if deathsig and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # no prctl: the thread below ends the worker
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    parent = multiprocessing.parent_process()

    def watch() -> None:
        if parent is not None and parent.pid == parent_pid:
            parent.join()  # returns when the parent's end of the sentinel pipe closes: when it dies
        else:
            while os.getppid() == parent_pid:
                time.sleep(0.2)
        os._exit(1)

    if os.getppid() != parent_pid:  # it died before the watch began (a spawned worker starts slowly)
        os._exit(1)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class EnvFactory:
    """Picklable env constructor for SubprocVecEnv workers (each loads its own scorer). ``parent``: the pid
    of the process that made the workers (then each ends when it does, :func:`exit_with_parent`), and
    whether it made them from its main thread."""

    def __init__(
        self, raws: list[str], kwargs: dict[str, Any], seed: int, parent: tuple[int, bool] | None = None
    ) -> None:
        self.raws, self.kwargs, self.seed, self.parent = raws, kwargs, seed, parent

    def __call__(self) -> Monitor:
        from stable_baselines3.common.monitor import Monitor

        if self.parent is not None:
            exit_with_parent(*self.parent)
        env = ISPTuningEnv(self.raws, **self.kwargs)
        env.reset(seed=self.seed)
        return Monitor(env)


def make_vec_env(
    raws: list[Path], cfg: TrainConfig, subprocess: bool = True, cache_dir: Path | None = None
) -> VecEnv:
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    kwargs = cfg.env_kwargs() | {"cache_dir": str(cache_dir) if cache_dir else None}
    workers = subprocess and cfg.n_envs > 1
    parent = (os.getpid(), threading.current_thread() is threading.main_thread()) if workers else None
    fns: list[Callable[[], Any]] = [
        EnvFactory([str(p) for p in raws], kwargs, cfg.seed + i, parent) for i in range(cfg.n_envs)
    ]
    if workers:
        return SubprocVecEnv(fns, start_method="spawn")
    return DummyVecEnv(fns)


def build_model(cfg: TrainConfig, venv: VecEnv) -> BaseAlgorithm:
    check_config(cfg)
    if cfg.algo == "teacher":
        raise ConfigError("--algo teacher is fitted by train_teacher, not an SB3 model")
    from stable_baselines3.common.logger import Logger

    algos = algorithms()
    common: dict[str, Any] = {  # keyword arguments of every algorithm's constructor
        "learning_rate": cfg.learning_rate,
        "seed": cfg.seed,
        "verbose": 0,
        "device": "cpu",
        "policy_kwargs": cfg.policy_kwargs(),
    }
    extra: dict[str, Any]  # the algorithm's own keyword arguments
    if cfg.algo == "ppo":
        extra = {"n_steps": cfg.n_steps, "batch_size": min(cfg.batch_size, cfg.n_steps * cfg.n_envs)}
    else:
        extra = {
            "batch_size": cfg.batch_size,
            "buffer_size": max(cfg.buffer_size, cfg.batch_size),
            "learning_starts": cfg.learning_starts,
        }
    model = algos[cfg.algo](policy_name(cfg.obs_mode), venv, **common, **extra)
    # SB3's own logger at verbose 0 still makes an empty /tmp/SB3-<time> folder at every learn(); the
    # run's progress and files are ours (run_dir), so it logs nowhere
    model.set_logger(Logger(folder=None, output_formats=[]))
    if cfg.action_mode == "residual":
        zero_action_head(model.policy)
    return model


def zero_action_head(policy: BasePolicy) -> None:
    """Zero the last layer of the actor's (deterministic) action output, so an untrained residual policy
    renders exactly the base setting (ours): learning starts from the base, not from a random offset."""
    import torch

    heads = []
    actor = getattr(policy, "actor", None)
    if actor is not None and hasattr(actor, "mu"):  # SAC: Linear; TD3: Sequential(..., Linear, Tanh)
        mu = actor.mu
        heads.append(
            mu
            if isinstance(mu, torch.nn.Linear)
            else [m for m in mu.modules() if isinstance(m, torch.nn.Linear)][-1]
        )
    if hasattr(policy, "action_net"):  # PPO
        net = policy.action_net
        assert isinstance(net, torch.nn.Linear)  # on a Box action space: its Gaussian's mean layer
        heads.append(net)
    with torch.no_grad():
        for layer in heads:
            layer.weight.zero_()
            layer.bias.zero_()
    target = getattr(policy, "actor_target", None)
    if target is not None and actor is not None:
        target.load_state_dict(actor.state_dict())


def _callback(
    run_dir: Path, cfg: TrainConfig, calls_before: int, advance: Callable[[int], None], venv: VecEnv
) -> tuple[BaseCallback, Callable[[], int]]:
    """The checkpointing callback of ``model.learn``, and its count of the scorer calls made so far."""
    from stable_baselines3.common.callbacks import BaseCallback

    # PPO learns from a rollout only at its end and the state does not hold a rollout half collected: a
    # checkpoint mid-rollout resumed past steps never learned from, then collected whole rollouts more (128
    # asked, 144 trained). Its checkpoints are saved where a rollout starts; the off-policy agents' at a step.
    on_policy = cfg.algo == "ppo"

    class Checkpointer(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.last = 0

        def scorer_calls(self) -> int:
            return calls_before + int(sum(venv.env_method("scorer_calls")))

        def _on_training_start(self) -> None:
            self.last = self.num_timesteps  # a resume's own checkpoint is not saved again at once

        def _save_when_due(self) -> None:
            if self.num_timesteps - self.last >= cfg.checkpoint_every:
                self.last = self.num_timesteps
                save_state(
                    self.model,
                    run_dir / "checkpoint",
                    {"scorer_calls": self.scorer_calls(), "config": cfg.learning_key()},
                )

        def _on_rollout_start(self) -> None:
            if on_policy:
                self._save_when_due()

        def _on_step(self) -> bool:
            advance(venv.num_envs)
            if not on_policy:
                self._save_when_due()
            return True

    cb = Checkpointer()
    return cb, cb.scorer_calls


def planned_steps(cfg: TrainConfig, remaining: int) -> int:
    """The steps ``learn(total_timesteps=remaining)`` takes: PPO collects whole rollouts (``n_steps`` per
    env), so ``--timesteps 8`` trains 64 — the bar read "64/8"; the off-policy agents take ``remaining``."""
    if cfg.algo != "ppo" or remaining <= 0:
        return max(remaining, 0)
    rollout = cfg.n_steps * cfg.n_envs
    return -(-remaining // rollout) * rollout


def train(
    run_dir: Path,
    train_raws: list[Path],
    cfg: TrainConfig,
    subprocess: bool = True,
    files: RunFiles | None = None,
) -> dict[str, Any]:
    """Train (or resume) and write ``policy.safetensors`` + ``policy.json``; returns the training summary.
    ``files``: the run folder's kept JSON files as checked (:class:`isp_env.params.RunFiles`)."""
    import torch

    files = files or RunFiles(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    summary_path = run_dir / "training.json"
    if summary_path.exists() and (run_dir / "policy.safetensors").exists():
        done = files.read(summary_path)
        if done.get("timesteps", 0) >= cfg.timesteps and done.get("config") == cfg.learning_key():
            console.print(
                f"[green]training already finished[/] ({done['timesteps']} steps) in {plain_name(run_dir)}"
            )
            return done
    venv = make_vec_env(train_raws, cfg, subprocess, cache_dir=run_dir / "preview_cache")
    try:
        model = build_model(cfg, venv)
        calls_before = 0
        state_dir = find_state(run_dir / "checkpoint")
        if state_dir is not None:
            doc = files.read(state_dir / "state.json")
            if doc.get("config") != cfg.learning_key():
                raise ConfigError(
                    f"{run_dir}: the checkpoint was trained with other settings — resume with "
                    "the same options or use a new --out"
                )
            load_state(model, state_dir, doc)
            calls_before = int(doc.get("scorer_calls", 0))
            console.print(f"resuming from {plain_name(state_dir)} at step {model.num_timesteps}")
        elif cfg.init_policy:
            init_from_policy(model, cfg.init_policy, cfg, run_dir)
        reward = scorer_identity(cfg.scorer)
        remaining = max(cfg.timesteps - model.num_timesteps, 0)
        kept = model.num_timesteps  # a resume's steps: in the count, not in the rate
        total = kept + planned_steps(cfg, remaining)
        with progress_task(f"training {cfg.algo.upper()}", total, "step", kept=kept) as advance:
            cb, scorer_calls = _callback(run_dir, cfg, calls_before, advance, venv)
            if remaining:
                model.learn(total_timesteps=remaining, callback=cb, reset_num_timesteps=False)
        calls = scorer_calls()
        skipped = {k: v for d in venv.env_method("skipped_raws") for k, v in d.items()}
        for raw, reason in skipped.items():
            console.print(f"[yellow]skipped[/] {plain_failure(reason, raw)}")
        save_state(model, run_dir / "checkpoint", {"scorer_calls": calls, "config": cfg.learning_key()})
        card = {
            "algo": cfg.algo,
            "policy_kwargs": cfg.policy_kwargs(),
            "env": cfg.env_kwargs() | {"scorer": None},
            "scorer": cfg.scorer,
            "reward_model": reward,
            "timesteps": int(model.num_timesteps),
            "train_raws": [p.name for p in train_raws],
        }
        save_policy(model, run_dir / "policy.safetensors", card)
    finally:
        venv.close()
    summary = {
        "timesteps": int(model.num_timesteps),
        "scorer_calls": calls,
        "config": cfg.learning_key(),
        "skipped": skipped,
    }
    files.write(summary_path, summary)
    return summary


def distillable(cfg: TrainConfig, spec: str | Path) -> None:
    """Refuse a run a teacher policy cannot start (:func:`distill_teacher`: a SAC actor on the statistics,
    residual actions)."""
    if cfg.algo != "sac" or cfg.obs_mode != "stats" or cfg.action_mode != "residual":
        raise ConfigError(
            f"{spec}: a teacher policy can start only SAC with --obs-mode stats and --action-mode "
            "residual — or train a teacher (--algo teacher)"
        )


def checked_agent_init(
    cfg: TrainConfig, spec: str | Path | None = None, adopt: bool = True, out: Path | None = None
) -> None:
    """The one check of the policy an RL run starts from (``--init-policy``), before any work: its weights
    are copied as they are, so its actions and observations must mean the same here — its algorithm,
    observation, action mode, episode length and (image observations) size, and for offsets (residual,
    delta) their scale and (residual) the base they are around. ``spec``: the policy (default
    ``cfg.init_policy``). ``adopt``: take the policy's base and
    scale where ``cfg`` has none of its own (``base`` / ``delta_scale`` None; :func:`isp_env.run.run`
    leaves ``--base global`` unsearched for it), as a teacher prior's are taken (:func:`checked_prior`).
    A teacher policy is distilled instead (:func:`distill_teacher`: it re-expresses its offsets).
    ``out``: the run's folder, whose run.json says which file it started from
    (:func:`isp_env.policy_files.init_policy_file`)."""
    spec = spec or cfg.init_policy  # (the run's --init-policy, or the one init_from_policy is given)
    if cfg.algo == "teacher" or not spec:
        return
    _, card = load_policy(init_policy_file(spec, out))
    if card["algo"] == "teacher":
        distillable(cfg, spec)
        return
    env = card["env"]
    if adopt and cfg.action_mode == env.get("action_mode"):
        if cfg.action_mode == "residual" and cfg.base is None:
            cfg.base = dict(env.get("base") or neutral())
        if cfg.action_mode != "absolute" and cfg.delta_scale is None:
            cfg.delta_scale = float(env["delta_scale"])
    wrong = [] if card["algo"] == cfg.algo else [f"--algo {card['algo']}"]
    for key in ("obs_mode", "action_mode", "max_steps") + (("obs_size",) if cfg.obs_mode == "image" else ()):
        if env.get(key) != getattr(cfg, key):
            wrong.append(f"--{key.replace('_', '-')} {env.get(key)}")
    if not wrong and cfg.action_mode != "absolute" and abs(float(env["delta_scale"]) - cfg.scale) > 1e-9:
        wrong.append(
            f"--residual-scale {env['delta_scale']:g}"
            if cfg.action_mode == "residual"
            else f"delta_scale {env['delta_scale']:g}"
        )
    base = to_normalized(env.get("base") or {})
    if not wrong and cfg.action_mode == "residual" and not np.allclose(base, to_normalized(cfg.base or {})):
        wrong.append("its base (leave --base at global to use it)")
    if wrong:
        raise ConfigError(
            f"--init-policy {spec}: trained with {', '.join(wrong)} — not this run's, so its actions or "
            "observations would mean other things here; pass the same, or start without --init-policy"
        )


def init_from_policy(
    model: BaseAlgorithm, spec: str | Path, cfg: TrainConfig | None = None, out: Path | None = None
) -> None:
    """Start training from a saved policy's weights (``default`` = the policy shipped with the package);
    the algorithm, network and observation size must match. A teacher policy (``--algo teacher``) is
    distilled into a SAC actor instead (:func:`distill_teacher`). ``out``: the run's folder (the file it
    started from: :func:`isp_env.policy_files.init_policy_file`, as ``run`` checked it)."""
    policy, card = load_policy(init_policy_file(spec, out))
    if cfg is not None:
        checked_agent_init(cfg, spec, adopt=False, out=out)  # (run checked it; train's callers here)
        check_reward_model(spec, card, cfg.scorer, refuse=False)
    if isinstance(policy, TeacherPolicy) and cfg is not None:  # card["algo"] == "teacher"
        distill_teacher(model, policy, card, cfg)
        console.print(f"starting from the teacher policy {plain_name(spec)} (distilled into the actor)")
        return
    try:
        if card["algo"] != type(model).__name__.lower():
            raise RuntimeError(f"algorithm {card['algo']}")
        model.policy.load_state_dict(policy.state_dict())
    except RuntimeError as exc:
        raise ConfigError(
            f"{spec}: that policy does not fit this run ({str(exc).splitlines()[0]}) — start "
            "with the same --algo, network and --obs-size, or without --init-policy"
        ) from None
    console.print(f"starting from the policy {plain_name(spec)}")


def distill_teacher(
    model: BaseAlgorithm,
    teacher: TeacherPolicy,
    card: dict[str, Any],
    cfg: TrainConfig,
    steps: int = 600,
    samples: int = 4096,
) -> float:
    """Behaviour-cloning warm start (ours, session 23): fit a SAC actor's deterministic action to a teacher
    policy's settings, on observations drawn around the teacher's training statistics (its standardisation:
    mean + sd x N(0, 1), within +-3 sd and the observation box) — no raw and no scorer call needed. The
    teacher's residual (its base and scale) is re-expressed around this run's base and scale. Returns the
    final mean squared error in action units."""
    import torch

    distillable(cfg, cfg.init_policy or "the teacher policy")
    actor = getattr(model, "actor", None)
    assert actor is not None  # a SAC model (distillable)
    gen = torch.Generator().manual_seed(cfg.seed)
    z = torch.randn(samples, teacher.mean.numel(), generator=gen).clamp(-3.0, 3.0)
    obs = (teacher.mean + teacher.scale * z * teacher.active).clamp(0.0, 1.0).float()
    with torch.no_grad():
        params = (
            torch.as_tensor(to_normalized(card["env"].get("base") or {}), dtype=torch.float32)
            + float(card["env"]["delta_scale"]) * teacher(obs)
        ).clamp(-1.0, 1.0)
        base = torch.as_tensor(to_normalized(cfg.base or {}), dtype=torch.float32)
        target = ((params - base) / cfg.scale).clamp(-0.999, 0.999)
    opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
    loss = torch.zeros(())
    for _ in range(steps):
        idx = torch.randint(0, samples, (256,), generator=gen)
        loss = torch.nn.functional.mse_loss(actor(obs[idx], deterministic=True), target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def env_for_policy(card: dict[str, Any], raw_path: Path) -> ISPTuningEnv:
    """A render-only environment with the settings a policy was trained with."""
    env_cfg = {k: v for k, v in card["env"].items() if k != "scorer"}
    return ISPTuningEnv([raw_path], scorer=None, score=False, torch_threads=None, **env_cfg)


def tune_with_policy(
    policy: TeacherPolicy | BasePolicy,
    card: dict[str, Any],
    raw_path: Path,
    front_end: tuple[Developed, int | None, int | None] | None = None,
    raw: RawImage | None = None,
) -> dict[str, float]:
    """Run the deterministic policy for one episode on ``raw_path``'s preview; no scorer calls are needed
    (the observation is the render, its statistics and the parameters, not the score). Returns the final
    parameters. ``front_end``: the raw's front end already made, with the view and preview it was made at
    (:func:`isp_env.reward.guarded_item`) — taken when the policy's environment would make the same one;
    else ``raw``, the raw already decoded, is developed at the policy's scale: either way the raw is not
    read again (``isp-tune check -m classical`` with a policy of the default model's scale read it)."""
    env = env_for_policy(card, raw_path)
    if front_end is not None and env.develops_as(*front_end[1:]):
        env.use_front_end(Path(raw_path), front_end[0])
    elif raw is not None:
        env.use_front_end(Path(raw_path), env.front_end_of(raw))
    obs, _ = env.reset(seed=0)
    for _ in range(env.max_steps):
        action, _ = policy.predict(obs, deterministic=True)
        obs, *_ = env.step(action)
    return env.params


@dataclass(frozen=True)
class CheckedSetting:
    """What :func:`checked_setting` kept for one raw: its ``params``, which candidate they are
    (``chosen``), and the reward of every candidate scored (``scores``: guarded when the policy was
    trained with the guard)."""

    params: dict[str, float]
    chosen: str
    scores: dict[str, float]


def checked_setting(
    values: dict[str, float],
    card: dict[str, Any],
    item: tuple[Developed, Guard, int | None],
    mos: MOSFunction,
) -> CheckedSetting:
    """The policy's setting ``values`` for one raw checked against the setting it offsets from (the card's
    base) and the neutral defaults by the reward model: all rendered as the reward sees them (``item``, from
    :func:`isp_env.reward.guarded_item`) and scored in one call; the best is kept, the policy's on a tie.
    Two or three scorer calls per raw instead of none: a policy that renders a raw worse than neutral or its
    base — a camera it never saw (docs/isp.md, "Leave one camera out") — falls back to the better of them
    *by the reward*, which is all this guarantees (not that people prefer it)."""
    from isp_env.report import CHECK_CANDIDATES  # their order is the preference :func:`checked_choice` reads

    env = card.get("env", {})
    residual = env.get("action_mode", "residual") == "residual" and env.get("base")
    settings = {
        "policy": values,
        "base": {**neutral(), **env["base"]} if residual else None,
        "neutral": neutral(),
    }
    kept: dict[str, dict[str, float]] = {}
    for name in CHECK_CANDIDATES:  # a neutral base is one candidate, not two
        cand = settings[name]
        if cand is not None and all(cand != other for other in kept.values()):
            kept[name] = cand
    dev, guard, view = item
    objective = guarded_objective([(dev, guard if env.get("guard", True) else None, view)], mos)
    scores = dict(zip(kept, objective.many([to_normalized(v) for v in kept.values()]), strict=True))
    chosen = checked_choice(scores)
    return CheckedSetting(dict(kept[chosen]), chosen, scores)


def checked_choice(scores: dict[str, float]) -> str:
    """The candidate a check keeps, from its candidates' rewards in order of preference (policy, base,
    neutral): a later one only when better by more than float rounding."""
    from isp_env.report import better_than

    chosen = next(iter(scores))
    for name, score in scores.items():
        if better_than(score, scores[chosen]):
            chosen = name
    return chosen


def teacher_inputs(
    raws: list[Path], cfg: TrainConfig, mos: MOSFunction, groups: dict[Path, str]
) -> tuple[list[str], list[np.ndarray], dict[str, RenderObjective], list[str], dict[str, str]]:
    """Per readable raw, what the teacher learns from: its name (``scene_group|file``), the policy's
    observation of its base render (float64), its guarded objective (normalised setting -> score), its scene
    group; and the raws skipped (path -> reason). Shared by :func:`train_teacher` and
    ``benchmarks/isp_teacher_cv.py``."""
    env_cfg = {k: v for k, v in cfg.env_kwargs().items() if k != "scorer"}
    names: list[str] = []
    feats: list[np.ndarray] = []
    objectives: dict[str, RenderObjective] = {}
    group_of: list[str] = []
    skipped: dict[str, str] = {}
    for p in raws:
        env = ISPTuningEnv([p], scorer=None, score=False, torch_threads=None, **env_cfg)
        try:
            obs, _ = env.reset(seed=0)
        except RawReadError as exc:  # the raw's own reason, not the one-raw environment's "none readable"
            skipped[str(p)] = env.skipped.get(str(p), str(exc))
            console.print(f"[yellow]skipped[/] {plain_failure(skipped[str(p)], p)}")
            continue
        name = f"{groups.get(p, p.name)}|{p.name}"
        names.append(name)
        feats.append(np.asarray(obs, dtype=np.float64))
        objectives[name] = guarded_objective([guarded_item(p, env.view_shorter, dev=env.developed(p))], mos)
        group_of.append(groups.get(p, p.name))
    return names, feats, objectives, group_of, skipped


@dataclass
class TeacherPrior:
    """The training rows of a saved teacher policy (``--init-policy`` with ``--algo teacher``): base-render
    observations ``x`` (n, F), residual targets ``y`` (n, 16) around ``base`` at ``scale``, scene groups."""

    spec: str
    x: np.ndarray
    y: np.ndarray
    groups: list[str]
    kind: str
    strength: float
    base: dict[str, float]
    scale: float


# the environment settings a prior's rows depend on: its statistics and targets mean the same only if equal
PRIOR_SETTINGS = ("obs_size", "obs_mode", "action_mode", "max_steps", "guard", "preview", "view_shorter")


def teacher_prior(spec: str, cfg: TrainConfig, out: Path | None = None) -> TeacherPrior:
    """Load the rows a teacher run starts from (ours, session 24): the policy must be a teacher policy that
    carries its rows (saved since session 24) and was fitted with this run's environment settings and
    scorer; the run then uses its base and residual scale (set by :func:`isp_env.run.run`). ``out``: the
    run's folder (the file it started from: :func:`isp_env.policy_files.init_policy_file`)."""
    policy, card = load_policy(init_policy_file(spec, out))
    rows = card.get("teacher", {}).get("rows")
    if not isinstance(policy, TeacherPolicy) or not rows or not len(policy.rows_x):  # algo "teacher"
        raise ConfigError(
            f"{spec}: not a teacher policy with its training rows — --algo teacher can start "
            "only from one saved by `isp-tune --algo teacher` since session 24"
        )
    env = card["env"]
    mine = cfg.env_kwargs()
    check_reward_model(spec, card, cfg.scorer, refuse=True)
    wrong = [k for k in PRIOR_SETTINGS if env.get(k) != mine.get(k)]
    if wrong:
        raise ConfigError(
            f"{spec}: its rows were made with other settings ({', '.join(wrong)}: "
            f"{', '.join(f'{k}={env.get(k)}' for k in wrong if k in env)}) — use the policy's "
            "settings or start without --init-policy"
        )
    t = card["teacher"]
    return TeacherPrior(
        str(spec),
        policy.rows_x.double().numpy(),
        policy.rows_y.double().numpy(),
        list(rows["groups"]),
        t["kind"],
        float(t["strength"]),
        dict(env.get("base") or {}),
        float(env["delta_scale"]),
    )


def checked_prior(
    cfg: TrainConfig, prior: TeacherPrior | None = None, out: Path | None = None
) -> TeacherPrior | None:
    """The prior a teacher run starts from: ``prior`` (already loaded, e.g. by :func:`isp_env.run.run`) or
    else ``cfg.init_policy`` loaded here, so that every caller of :func:`train_teacher` gets one load and
    the same refusals. The one check of the prior's base and scale: the run must use them, since its rows
    are statistics of the base's renders and offsets at that scale — ``cfg`` takes them where it has none
    of its own (``base`` / ``delta_scale`` None) and is refused where it has others. ``out``: the run's
    folder (:func:`teacher_prior`'s)."""
    if prior is None and cfg.init_policy:
        prior = teacher_prior(cfg.init_policy, cfg, out)
    if prior is None:
        return None
    if cfg.base is None:
        cfg.base = dict(prior.base)
    elif not np.allclose(to_normalized(prior.base), to_normalized(cfg.base)):
        raise ConfigError(
            f"--init-policy {prior.spec}: this run's base is not the policy's — a teacher run "
            "started from a policy uses the policy's base (leave --base at global)"
        )
    if cfg.delta_scale is None:
        cfg.delta_scale = prior.scale
    elif abs(prior.scale - cfg.scale) > 1e-9:
        raise ConfigError(
            f"--init-policy {prior.spec}: --residual-scale {cfg.scale:g} is not the policy's "
            f"{prior.scale:g} — leave it unset"
        )
    return prior


_SAID_UNKNOWN: set[str] = set()


def describe_reward_model(ident: dict[str, Any]) -> str:
    sha = ident.get("sha256")
    return f"{ident.get('name')} (sha256 {sha[:12]}…)" if sha else str(ident.get("name"))


def check_reward_model(spec: str | Path, card: dict[str, Any], scorer: str | None, refuse: bool) -> None:
    """The one check that a policy was fitted against this run's reward model ``scorer`` (``--model``,
    None = the default model): by the SHA-256 of its weights the card records (``reward_model``, since
    session 26, :func:`attiqa.scorers.scorer_identity`), so a re-shipped default model is noticed. Another
    model is refused (``refuse``: a teacher prior's rows are that model's optima) or warned about; a policy
    that does not record it (saved before session 26, as the bundled policy up to session 43) is compared
    by ``--model`` name only, and said so once."""
    current = scorer_identity(scorer)
    rec = card.get("reward_model")
    if rec is None:
        rec = {"name": card.get("scorer") or DEFAULT_MODEL, "sha256": None}
        if rec["name"] == current["name"]:
            if str(spec) not in _SAID_UNKNOWN:
                _SAID_UNKNOWN.add(str(spec))
                console.print(
                    f"[yellow]note[/] {plain_name(spec)}: the policy does not record the weights of the "
                    f"reward model it was fitted against (saved before session 26): assumed to be this "
                    f"run's {describe_reward_model(current)}"
                )
            return
    elif rec.get("sha256") == current["sha256"] and (current["sha256"] or rec.get("name") == current["name"]):
        return
    what = (
        f"{spec}: fitted against the reward model {describe_reward_model(rec)}, not this run's "
        f"{describe_reward_model(current)}"
    )
    if refuse:
        raise ConfigError(
            f"{what} — its rows are that model's optima: pass that model with --model, or "
            "start without --init-policy"
        )
    console.print(
        f"[yellow]warning[/] {plain_name(what)}: it was tuned for another scorer (a starting point only)"
    )


def teacher_card(
    cfg: TrainConfig,
    settings: TeacherSettings,
    choice: Choice,
    rows_x: np.ndarray,
    rows_groups: list[str],
    prior: TeacherPrior | None,
    calls: int,
    train_names: list[str],
) -> dict[str, Any]:
    """The JSON card of a teacher policy: what a later run needs to reuse its rows as a prior."""
    return {
        "algo": "teacher",
        "policy_kwargs": {
            "n_features": int(rows_x.shape[1]),
            "kind": choice.kind,
            "k": int(choice.strength) if choice.kind == "knn" else 0,
        },
        "env": cfg.env_kwargs() | {"scorer": None},
        "scorer": cfg.scorer,
        "reward_model": scorer_identity(cfg.scorer),
        "timesteps": calls,
        "teacher": {
            "budget_per_raw": settings.budget,
            "restarts": settings.restarts,
            "start": settings.start,
            "kind": choice.kind,
            "strength": choice.strength,
            "cv_score": choice.cv_score if choice.table else None,
            "cv": [{k: v for k, v in r.items() if k != "scores"} for r in choice.table],
            "rows": {
                "x": "rows_x: the policy's observation (base-render statistics + time) of each training raw",
                "y": "rows_y: its residual target ((CMA-ES best - base) / delta_scale, normalised units)",
                "groups": rows_groups,
            },
            "init_policy": prior.spec if prior is not None else None,
            "prior_rows": len(prior.x) if prior is not None else 0,
        },
        "train_raws": train_names,
    }


def cv_inputs(
    x: np.ndarray,
    y: np.ndarray,
    names: list[str],
    group_of: list[str],
    cfg: TrainConfig,
    prior: TeacherPrior | None = None,
) -> str:
    """The digest the teacher's cross-validation scores are kept with (:class:`isp_env.teacher.KeptFor`):
    they are of these raws (``names``, their scene groups), features ``x``, residual targets ``y``, fold
    seed (``cfg.seed``), base, scale and scorer, and of the prior's rows — a cache of others is not. One
    rule for :func:`train_teacher` and ``benchmarks/isp_teacher_cv.py``."""
    return inputs_digest(
        [x, y, *((prior.x, prior.y) if prior is not None else ())],
        {
            "names": names,
            "groups": group_of,
            "seed": cfg.seed,
            "env": {k: v for k, v in cfg.env_kwargs().items() if k != "scorer"},
            "reward_model": scorer_identity(cfg.scorer),
        },
    )


def teacher_fit_key(
    cfg: TrainConfig, settings: TeacherSettings, train_raws: list[Path], init_policy: str | None
) -> dict[str, Any]:
    """What a teacher policy is fitted from (training.json's ``config``): a fit of another key is made
    again, and run.json's ``asked`` holds the key of its last run (:func:`isp_env.policy_files.training_left`:
    a policy of other settings is not that run's finished one). ``cfg`` as the run resolved it (its base);
    ``init_policy``: its prior's spec. Its raws by name and stamp (size, mtime: :func:`file_stamp`), the
    teacher's own names for them (:func:`teacher_inputs`), not their paths: a raw folder moved (same files)
    was another fit — refitted, and a rerun stopped before its fit left the finished policy "fitted with
    other settings"."""
    return cfg.learning_key() | {
        "teacher_budget": settings.budget,
        "teacher_start": settings.start,
        "teacher_restarts": settings.restarts,
        "train_raws": {p.name: file_stamp(p, hashed=False) for p in sorted(train_raws)},
        "init_policy": init_policy,
    }


def train_teacher(
    run_dir: Path,
    train_raws: list[Path],
    cfg: TrainConfig,
    mos: MOSFunction,
    groups: dict[Path, str],
    settings: TeacherSettings | None = None,
    prior: TeacherPrior | None = None,
    files: RunFiles | None = None,
) -> dict[str, Any]:
    """``--algo teacher`` (:mod:`isp_env.teacher`): per-image CMA-ES targets on the training raws (the best
    of ``settings.restarts`` searches of ``settings.budget`` scorer calls each, from the neutral setting
    like the per-image baseline or from the base), a scene-group cross-validated choice of the regression,
    then the chosen model fitted on every training raw; writes ``policy.safetensors`` + ``policy.json``
    like :func:`train`. Resumable (every search and CV score is saved as it is computed).

    ``prior`` (loaded by :func:`teacher_prior`), else ``cfg.init_policy`` (a teacher policy with its rows,
    e.g. ``default``): its rows join every fit — the CV's folds hold out only ``train_raws`` — and the run
    must use its base and scale (``run`` sets them; :func:`checked_prior` refuses others);
    with fewer than two scene groups of its own to cross-validate, the run keeps the prior's model choice,
    so with no readable training raw it refits the prior policy itself. ``files``: the run folder's kept
    JSON files as checked (:class:`isp_env.params.RunFiles`)."""
    files = files or RunFiles(run_dir)
    settings = settings or TeacherSettings()
    budget, start = settings.budget, settings.start
    check_config(cfg, settings)
    prior = checked_prior(cfg, prior, run_dir)
    key = teacher_fit_key(cfg, settings, train_raws, prior.spec if prior is not None else cfg.init_policy)
    summary_path = run_dir / "training.json"
    if summary_path.exists() and (run_dir / "policy.safetensors").exists():
        done = files.read(summary_path)
        if done.get("config") == key | {"train_raws": sorted(map(str, train_raws))}:  # keyed by path before
            done = {**done, "config": key}  # (session 66's review): its record now says the key asked
            files.write(summary_path, done)
        if done.get("config") == key:
            console.print(f"[green]teacher already fitted[/] in {plain_name(run_dir)}")
            return done
    folder = run_dir / "teacher"
    folder.mkdir(parents=True, exist_ok=True)
    base = to_normalized(cfg.base or {})
    names, feats, objectives, group_of, skipped = teacher_inputs(train_raws, cfg, mos, groups)
    if len(names) < (0 if prior is not None else 2):
        raise ConfigError(f"--algo teacher needs at least 2 readable training raws, found {len(names)}")
    if prior is None and len(set(group_of)) < 2:  # before any search: its cross-validation needs two
        raise ConfigError(
            f"--algo teacher: its training raws are one scene group ({group_of[0]!r}) — its cross-validation "
            "holds out whole groups and needs 2 or more; add raws of other scenes, or start from a policy "
            "(--init-policy default)"
        )
    x0 = base if start == "base" else to_normalized(neutral())
    # search seeds 0, 1, ... whatever the split seed: a raw's targets do not depend on the split (runs on
    # other splits, and the run that fits the policy to ship, reuse the same searches)
    tries = f"{settings.restarts} searches" if settings.restarts != 1 else "one search"
    console.print(
        f"teacher: per-image CMA-ES on {len(names)} training raws, {tries} a raw of --teacher-budget "
        f"{budget} scorer calls — each {search_plan(budget, 1).said(budget)}"
    )
    # a search is of its start and of the objective: the raw at the scorer's scale (preview or view), guarded
    searched_with = {"preview": cfg.preview, "view_shorter": cfg.view_shorter, "guard": cfg.guard}
    found = inputs_digest([x0], searched_with | {"reward_model": scorer_identity(cfg.scorer)})
    targets = search_targets(
        objectives, budget, x0, 0, folder / f"targets_{start}.json", settings.restarts, files, inputs=found
    )
    n_features = prior.x.shape[1] if prior is not None else len(feats[0])
    x = np.stack(feats) if feats else np.zeros((0, n_features))
    y = (
        residual_targets([targets[n]["params"] for n in names], cfg.base or {}, cfg.scale)
        if names
        else np.zeros((0, N_PARAMS))
    )
    inputs = cv_inputs(x, y, names, group_of, cfg, prior)
    cache_path = folder / f"cv_scores_{start}.json"
    kept = files.read(cache_path)
    ours = bool(kept) and KeptFor(cache_path, inputs, "scored").matches(kept)  # said when of no digest
    cache: dict[str, float] = dict(kept.get("scores", {})) if ours else {}
    if "inputs" in kept and not ours:
        console.print(
            f"teacher: the cross-validation scores in {plain_name(cache_path)} are of other inputs (raws, "
            "targets, base or scorer): scored again"
        )

    def score(pairs: list[tuple[int, np.ndarray]]) -> list[float]:  # a fold's raws in shared calls
        return score_together(
            [(objectives[names[i]], np.clip(base + cfg.scale * a, -1.0, 1.0)) for i, a in pairs]
        )

    rows_x, rows_y, rows_groups = x, y, list(group_of)
    if prior is not None:
        rows_x, rows_y = np.concatenate([x, prior.x]), np.concatenate([y, prior.y])
        rows_groups += prior.groups
    if prior is not None and len(set(group_of)) < 2:  # nothing to cross-validate: the prior's choice
        choice = Choice(prior.kind, prior.strength, float("nan"), [])
        console.print(
            f"fewer than 2 scene groups of its own: the model of {plain(prior.spec)} ({prior.kind} "
            f"{prior.strength:g}) refitted with {len(names)} more raw(s)"
        )
    else:
        choice = choose_by_cv(
            x,
            y,
            group_of,
            score,
            seed=cfg.seed,
            cache=cache,
            prior=(prior.x, prior.y) if prior is not None else None,
            save=lambda scores: files.write(cache_path, {"inputs": inputs, "scores": scores}),
        )
    policy = fit_teacher(rows_x, rows_y, choice.kind, choice.strength)
    searched = int(sum(int(targets[n]["calls"]) for n in names))
    calls = searched + len(cache)  # searches + CV renders scored
    card = teacher_card(
        cfg,
        settings,
        choice,
        rows_x,
        rows_groups,
        prior,
        calls,
        [p.name for p in train_raws if str(p) not in skipped],
    )
    save_policy(policy, run_dir / "policy.safetensors", card)
    summary = {
        "timesteps": calls,
        "scorer_calls": calls,
        "search_calls": searched,  # of the budgets asked (the report's calls used of those asked)
        "search_calls_asked": budget * settings.restarts * len(names),
        "config": key,
        "skipped": skipped,
        "teacher": card["teacher"],
        "cv_table": choice.table,
    }
    files.write(summary_path, summary)
    return summary
