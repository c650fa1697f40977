"""The Gymnasium environment: tune the 16 ISP parameters of one raw per episode to maximise a scorer's MOS.

Following ATTIQA §5.2 / supplement §D.3 (MOS as the reward of an RL agent that tunes an ISP, after DRL-ISP,
Shin et al. IROS 2022). Our design choices, documented:

* **Observation** (``Dict``, one definition: :func:`spaces_for`): ``image`` — the current render resized to
  ``obs_size`` x ``obs_size`` (uint8, channel-first, aspect ratio not kept); ``stats`` — :data:`N_STATS`
  statistics of the current render in [0, 1] (luma percentiles, mean RGB, saturation, clipping, gradient:
  cheap cues for per-image adaptation); ``params`` — the current normalised parameters, [-1, 1]; ``time`` —
  the fraction of the fixed horizon used, so the finite horizon is visible to the agent (Gymnasium's rule
  for time limits that are part of the task).
  With ``obs_mode="stats"`` the observation is a flat ``Box`` of the statistics and the time only (for an
  MLP policy: far fewer samples to learn from than a CNN on the image).
* **Action**: ``Box(-1, 1, (16,))``. ``action_mode="absolute"`` (with ``max_steps=1``: a one-step contextual
  policy): the action *is* the normalised parameter vector; ``"delta"``: the normalised parameters move by
  ``delta_scale * action``; ``"residual"`` (ours, issue 19): the parameters are the *base* setting plus
  ``delta_scale * action`` (bounded offsets), so action 0 renders the base. Out-of-range actions are
  clipped and non-finite entries count as 0 (delta, residual) or the neutral value (absolute).
* **Base**: ``base`` (parameter values, default neutral) is where every episode starts; its guarded score
  is cached per raw, so the reward is the gain over the base render of the same raw (a per-raw baseline:
  the optimum of a one-step problem is unchanged, the between-raw variance of the reward is gone).
* **Reward** (:mod:`isp_env.reward`): the render at the scorer's own scale, scored in one pass, minus the
  over-processing guard (``guard=True``), in percent of the scorer's range; a step's reward is the gain of
  that score, so an episode's rewards sum to the gain over the base render. The base render's score
  and the guard's references are computed once per raw and cached: a one-step episode costs one scorer call.
* **Episode**: ``reset`` picks one raw (seeded) and starts from the base parameters; after ``max_steps``
  steps the episode is ``terminated`` (the task ends there; the time is in the observation).
* Raws that can't be read are skipped (listed in ``env.skipped``) — the episode uses another one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from PIL import Image

from attiqa.io.atomic import atomic_path, write_json_atomic
from isp_env.isp import Developed, develop, finish
from isp_env.mos_function import MOSFunction, ScorerSpec, as_mos_function
from isp_env.params import N_PARAMS, check_values, from_normalized, neutral, to_normalized
from isp_env.raw import RawImage, RawReadError, read_raw
from isp_env.reward import DEFAULT_VIEW_SHORTER, Guard, make_guard, scorer_view, to_view, view_long_side

N_STATS = 21  # image_stats: 12 until session 23, + 6 channel percentiles + 3 contrast measures (session 24)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


OBS_MODES = ("image", "stats")
ACTION_MODES = ("absolute", "delta", "residual")


def spaces_for(obs_size: int, obs_mode: str = "image") -> tuple[spaces.Space, spaces.Box]:
    """The observation and action spaces (the one definition, shared with :mod:`isp_env.policy_io`)."""
    if obs_mode == "stats":
        return (
            spaces.Box(0.0, 1.0, (N_STATS + 1,), np.float32),
            spaces.Box(-1.0, 1.0, (N_PARAMS,), np.float32),
        )
    obs = spaces.Dict(
        {
            "image": spaces.Box(0, 255, (3, obs_size, obs_size), np.uint8),
            "stats": spaces.Box(0.0, 1.0, (N_STATS,), np.float32),
            "params": spaces.Box(-1.0, 1.0, (N_PARAMS,), np.float32),
            "time": spaces.Box(0.0, 1.0, (1,), np.float32),
        }
    )
    return obs, spaces.Box(-1.0, 1.0, (N_PARAMS,), np.float32)


def image_stats(rgb: np.ndarray) -> np.ndarray:
    """:data:`N_STATS` statistics of an 8-bit render in [0, 1]: luma percentiles 1/10/50/90/99, mean R/G/B,
    mean HSV saturation, fraction of pixels with a clipped channel, mean gradient and a noise estimate
    (session 22); then (session 24, ours, chosen by the teacher's cross-validation: docs/isp.md) the 10th
    and 90th percentiles of R, G and B (casts in the shadows and highlights) and three contrast measures —
    the luma standard deviation, the mean local contrast (|luma - its Gaussian blur|, sigma 8 px at a
    500-px shorter side) and the standard deviation of the blurred luma (large-scale contrast)."""
    from scipy import ndimage

    x = rgb[::4, ::4].astype(np.float32) / 255.0
    y = x @ LUMA
    pct = np.percentile(y, [1, 10, 50, 90, 99])
    mx, mn = x.max(-1), x.min(-1)
    sat = float(np.mean((mx - mn) / np.maximum(mx, 1e-3)))
    clipped = float(((x <= 0.0) | (x >= 1.0)).any(-1).mean())
    gy, gx = np.abs(np.diff(y, axis=0)), np.abs(np.diff(y, axis=1))
    grad = float(gy.mean() + gx.mean())
    noise = float(np.median(gx)) if gx.size else 0.0
    half = rgb[::2, ::2].reshape(-1, 3).astype(np.float32) / 255.0
    chan = np.percentile(half, [10, 90], axis=0).reshape(-1)  # p10 R, G, B, then p90 R, G, B
    yf = rgb.astype(np.float32) @ (LUMA / 255.0)
    blur = ndimage.gaussian_filter(yf, max(8.0 * min(yf.shape) / 500.0, 0.5))
    contrast = [yf.std(), np.abs(yf - blur).mean(), blur.std()]
    out = np.array(
        [
            *pct,
            *x.reshape(-1, 3).mean(0),
            sat,
            clipped,
            min(4 * grad, 1.0),
            min(16 * noise, 1.0),
            *chan,
            *contrast,
        ]
    )
    return np.clip(np.nan_to_num(out), 0.0, 1.0).astype(np.float32)


@dataclass
class RawEntry:
    """One raw's cached preview front end, its guard and the guarded score of its base render."""

    dev: Developed
    guard: Guard | None
    base: float | None  # guarded score of the base render (None until scored)


class ISPTuningEnv(gym.Env):
    """See the module docstring. ``scorer``: a spec (None = default ATTIQA model, "classical", a path), an
    attiqa Scorer, or any callable PIL image -> MOS. Created lazily, so subprocess workers load their own.

    ``preview``: None (default) renders at the scorer's own scale (its shorter side; small raws at full
    resolution, then resized as the scorer would); an int renders previews of that long side instead.
    ``guard``: subtract the over-processing penalties of :mod:`isp_env.reward` from the MOS.
    ``torch_threads`` (default 1): the process's torch thread count, set when the scorer is created (one
    process per environment; scoring one preview single-threaded was 35 vs 1.4 steps/s on 2 busy cores).
    """

    # ``render()`` returns the current render on demand (no real-time display); ``render_fps`` is the rate a
    # recorded episode is played at (gymnasium's RecordVideo reads it): each step shown for half a second.
    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        raws: Sequence[str | Path],
        scorer: ScorerSpec = None,
        preview: int | None = None,
        obs_size: int = 64,
        max_steps: int = 1,
        action_mode: str = "absolute",
        delta_scale: float = 0.5,
        guard: bool = True,
        cache_size: int = 128,
        render_mode: str | None = None,
        torch_threads: int | None = 1,
        score: bool = True,
        cache_dir: str | Path | None = None,
        view_shorter: int | None = None,
        obs_mode: str = "image",
        base: dict[str, float] | None = None,
    ) -> None:
        if not raws:
            raise ValueError("ISPTuningEnv needs at least one raw file")
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {', '.join(ACTION_MODES)}")
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {', '.join(OBS_MODES)}")
        self.obs_mode = obs_mode
        self.base = check_values(base or {})  # where episodes start; action 0 of "residual" renders it
        self.raws = [Path(p) for p in raws]
        self._scorer_spec = scorer
        self._mos: MOSFunction | None = None
        self.preview = None if preview is None else int(preview)
        self.obs_size, self.max_steps = int(obs_size), int(max_steps)
        self.action_mode, self.delta_scale = action_mode, float(delta_scale)
        self.use_guard = bool(guard)
        self.cache_size = int(cache_size)
        self.render_mode = render_mode
        self.torch_threads = torch_threads
        self.score = bool(score)  # False: render only (applying a trained policy needs no scorer calls)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._view = view_shorter  # the scorer's shorter side; None: asked from the scorer when needed
        self.observation_space, self.action_space = spaces_for(self.obs_size, obs_mode)
        self._cache: OrderedDict[Path, RawEntry] = OrderedDict()
        self.skipped: dict[str, str] = {}
        self._norm = to_normalized(self.base)
        self._entry: RawEntry | None = None
        self._path: Path | None = None
        self._img: np.ndarray | None = None
        self._mos_now = self._score_now = self._score_start = 0.0
        self._penalty = 0.0
        self._t = 0
        self._episode_calls = 0  # scorer calls of this episode (a base score cached by an earlier one: none)

    # -- public state ----------------------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, float]:
        """The current parameter values (name -> value)."""
        return from_normalized(self._norm)

    @property
    def mos(self) -> MOSFunction:
        if self._mos is None:
            if self.torch_threads:
                import torch

                torch.set_num_threads(self.torch_threads)
            self._mos = as_mos_function(self._scorer_spec)
        return self._mos

    @property
    def view_shorter(self) -> int | None:
        """The shorter side renders are scored at (None with an int ``preview``)."""
        if self.preview is not None:
            return None
        if self._view is None:
            self._view = scorer_view(self.mos) if self.score else DEFAULT_VIEW_SHORTER
        return self._view

    def scorer_calls(self) -> int:
        """Scorer calls made by this environment so far."""
        return self._mos.calls if self._mos is not None else 0

    def skipped_raws(self) -> dict[str, str]:
        """Raws this environment could not read: path -> one-line reason."""
        return dict(self.skipped)

    # -- helpers ---------------------------------------------------------------------------------------------
    def developed(self, path: Path) -> Developed:
        """The cached preview front end of ``path``."""
        return self._entry_for(path).dev

    def _entry_for(self, path: Path) -> RawEntry:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        return self.use_front_end(path, self._disk_cached(path))

    def use_front_end(self, path: Path, dev: Developed) -> RawEntry:
        """Cache ``dev`` as ``path``'s front end (with its guard when scoring): what the environment made,
        or one made as it would make it (:meth:`develops_as`), which it then does not make again."""
        guard = make_guard(dev, path, self.view_shorter) if (self.use_guard and self.score) else None
        entry = RawEntry(dev, guard, None)
        self._cache[path] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    def develops_as(self, view_shorter: int | None, preview: int | None) -> bool:
        """Whether a front end made at the scorer's scale ``view_shorter`` — or, when None, a ``preview`` of
        that long side (:func:`isp_env.reward.guarded_item`) — is the one this environment makes."""
        if view_shorter is not None:
            return self.preview is None and self.view_shorter == view_shorter
        return preview is not None and self.preview == preview

    def _disk_cached(self, path: Path) -> Developed:
        """The preview front end from ``cache_dir`` (float16 .npy + JSON), computed once for all workers."""
        if self.cache_dir is None or not path.is_file():
            return self.front_end_of(read_raw(path))  # (a missing file raises RawReadError here)
        import hashlib
        import json

        st = path.stat()
        ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.preview}|{self._view}"
        key = hashlib.sha1(ident.encode()).hexdigest()
        arr_path, meta_path = self.cache_dir / f"{key}.npy", self.cache_dir / f"{key}.json"
        if arr_path.exists() and meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                return Developed(np.load(arr_path).astype(np.float32), float(meta["ae_gain"]), meta["name"])
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry is recomputed
        dev = self.front_end_of(read_raw(path))
        with atomic_path(arr_path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, dev.linear.astype(np.float16))
        write_json_atomic(meta_path, {"ae_gain": dev.ae_gain, "name": dev.name, "raw": str(path)})
        return dev

    def front_end_of(self, raw: RawImage) -> Developed:
        """The front end this environment makes of a raw, from ``raw`` already read (a caller that decoded
        it for another scale passes it to :meth:`use_front_end`: not read again)."""
        return develop(raw, self._preview_long_side(raw.shape))

    def _preview_long_side(self, shape: tuple[int, int]) -> int | None:
        """The long side of the preview front end: ``preview``, else the scorer's view of ``shape``."""
        if self.preview is not None:
            return self.preview
        view = self.view_shorter
        assert view is not None  # view_shorter is an int whenever preview is None
        return view_long_side(shape, view)

    def _render(self) -> np.ndarray:
        assert self._entry is not None, "reset() first"
        img = finish(self._entry.dev, from_normalized(self._norm))
        view = self.view_shorter
        return img if view is None else to_view(img, view)

    def _observe(self) -> dict[str, np.ndarray] | np.ndarray:
        assert self._img is not None, "reset() first"
        if self.obs_mode == "stats":
            t = min(self._t / self.max_steps, 1.0)
            return np.append(image_stats(self._img), np.float32(t)).astype(np.float32)
        small = Image.fromarray(self._img).resize((self.obs_size, self.obs_size), Image.Resampling.BILINEAR)
        image = np.ascontiguousarray(np.asarray(small, dtype=np.uint8).transpose(2, 0, 1))
        params = np.clip(np.nan_to_num(self._norm, nan=0.0), -1.0, 1.0).astype(np.float32)
        time = np.array([min(self._t / self.max_steps, 1.0)], dtype=np.float32)
        return {"image": image, "stats": image_stats(self._img), "params": params, "time": time}

    def _info(self) -> dict:
        return {
            "raw": self._entry.dev.name if self._entry else "",
            "mos": self._mos_now,
            "score": self._score_now,
            "penalty": self._penalty,
            "score_start": self._score_start,
            "params": self.params,
            "step": self._t,
            "episode_scorer_calls": self._episode_calls,
        }

    def _score(self) -> float:
        """Render the current parameters; the guarded score in the scorer's units (0 without scoring)."""
        self._img = self._render()
        if not self.score:
            return 0.0
        self._mos_now = self.mos.one(self._img)
        self._episode_calls += 1
        assert self._entry is not None  # _render() checked it
        g = self._entry.guard
        self._penalty = g.penalty(self._img) * self.mos.width / 100.0 if g is not None else 0.0
        return self._mos_now - self._penalty

    # -- gymnasium API ---------------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray] | np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        order = (
            [Path(options["raw"])]
            if "raw" in options
            else [self.raws[int(i)] for i in self.np_random.permutation(len(self.raws))]
        )
        for path in order:
            if str(path) in self.skipped:
                continue
            try:
                self._entry, self._path = self._entry_for(path), path
                break
            except RawReadError as exc:
                self.skipped[str(path)] = str(exc)
        else:
            raise RawReadError(
                order[0],
                "no readable raw among the environment's files — "
                + "; ".join(list(self.skipped.values())[:3]),
            )
        start = options.get("params")
        self._norm = to_normalized(start if start is not None else self.base)
        self._t = self._episode_calls = 0
        if start is None and self._entry.base is not None:  # base start of a raw scored before: no call
            self._img = self._render()
            self._score_now = self._entry.base
        else:
            self._score_now = self._score()
            if start is None:
                self._entry.base = self._score_now
        self._score_start = self._score_now
        return self._observe(), self._info()

    def step(
        self, action: npt.ArrayLike
    ) -> tuple[dict[str, np.ndarray] | np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._entry is None:
            raise ResetNeeded("no episode has started: call reset() before step()")  # OrderEnforcing's error
        if self._t >= self.max_steps:  # Gymnasium leaves a step past the end undefined: it went on scoring
            raise ResetNeeded(
                f"the episode ended (terminated) after its {self.max_steps} step(s): call reset() before "
                "step() again"
            )
        a = np.asarray(action, dtype=np.float64).reshape(N_PARAMS)
        if self.action_mode in ("delta", "residual"):
            a = np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
            origin = self._norm if self.action_mode == "delta" else to_normalized(self.base)
            self._norm = np.clip(origin + self.delta_scale * a, -1.0, 1.0)
        else:
            fallback = to_normalized(neutral())
            a = np.where(np.isfinite(a), a, fallback)
            self._norm = np.clip(a, -1.0, 1.0)
        prev = self._score_now
        self._score_now = self._score()
        reward = 100.0 * (self._score_now - prev) / (self.mos.width if self.score else 1.0)
        reward = float(reward) if np.isfinite(reward) else 0.0
        self._t += 1
        return self._observe(), reward, self._t >= self.max_steps, False, self._info()

    def render(self) -> np.ndarray | None:
        return None if self._img is None else self._img.copy()
