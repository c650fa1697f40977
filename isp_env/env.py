"""The Gymnasium environment: tune the 16 ISP parameters of one raw per episode to maximise a scorer's MOS.

Following ATTIQA §5.2 / supplement §D.3 (MOS as the reward of an RL agent that tunes an ISP, after DRL-ISP,
Shin et al. IROS 2022). Our design choices, documented:

* **Observation** (``Dict``): ``image`` — the current preview render resized to ``obs_size`` x ``obs_size``
  (uint8, channel-first, aspect ratio not kept), and ``params`` — the current normalised parameters, [-1, 1].
* **Action**: ``Box(-1, 1, (16,))``. ``action_mode="delta"`` (default): incremental, the normalised parameters
  move by ``delta_scale * action``; ``"absolute"``: the action *is* the normalised parameter vector. Out-of-
  range actions are clipped and non-finite entries count as 0 (delta) or the neutral value (absolute).
* **Reward**: the MOS gain of the step, ``100 * (MOS_t - MOS_{t-1}) / (range width)`` — MOS points in percent
  of the scorer's range, so classical (0-1) and ATTIQA (0-100) rewards have the same size. Summed over an
  episode it telescopes to the gain over the neutral rendering.
* **Episode**: ``reset`` picks one raw (seeded), starts from the neutral parameters and scores the neutral
  render (one scorer call); each of the ``max_steps`` steps renders and scores once; then ``terminated``.
* Raws that can't be read are skipped (listed in ``env.skipped``) — the episode uses another one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

from attiqa.io.atomic import atomic_path, write_json_atomic
from isp_env.isp import Developed, develop, finish
from isp_env.params import N_PARAMS, from_normalized, neutral, to_normalized
from isp_env.raw import RawReadError, read_raw
from isp_env.scoring import as_mos_function

ENV_ID = "isp_env/ISPTuning-v0"


class ISPTuningEnv(gym.Env):
    """See the module docstring. ``scorer``: a spec (None = default ATTIQA model, "classical", a path), an
    attiqa Scorer, or any callable PIL image -> MOS. Created lazily, so subprocess workers load their own.

    ``torch_threads`` (default 1): the process's torch thread count, set when the scorer is created. Scoring
    one small preview is several times faster single-threaded on a busy CPU (measured: 35 vs 1.4 steps/s on
    2 shared cores); parallelism comes from one process per environment (SubprocVecEnv). ``None`` leaves it.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        raws: Sequence[str | Path],
        scorer=None,
        preview: int = 256,
        obs_size: int = 64,
        max_steps: int = 4,
        action_mode: str = "delta",
        delta_scale: float = 0.5,
        cache_size: int = 64,
        render_mode: str | None = None,
        torch_threads: int | None = 1,
        score: bool = True,
        cache_dir: str | Path | None = None,
    ) -> None:
        if not raws:
            raise ValueError("ISPTuningEnv needs at least one raw file")
        if action_mode not in ("delta", "absolute"):
            raise ValueError("action_mode must be 'delta' or 'absolute'")
        self.raws = [Path(p) for p in raws]
        self._scorer_spec = scorer
        self._mos = None
        self.preview, self.obs_size, self.max_steps = int(preview), int(obs_size), int(max_steps)
        self.action_mode, self.delta_scale = action_mode, float(delta_scale)
        self.cache_size = int(cache_size)
        self.render_mode = render_mode
        self.torch_threads = torch_threads
        self.score = bool(score)  # False: render only (applying a trained policy needs no scorer calls)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (3, self.obs_size, self.obs_size), np.uint8),
            "params": spaces.Box(-1.0, 1.0, (N_PARAMS,), np.float32),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (N_PARAMS,), np.float32)
        self._cache: OrderedDict[Path, Developed] = OrderedDict()
        self.skipped: dict[str, str] = {}
        self._norm = to_normalized(neutral())
        self._dev: Developed | None = None
        self._img: np.ndarray | None = None
        self._mos_now = self._mos_start = 0.0
        self._t = 0

    # -- helpers ---------------------------------------------------------------------------------------------
    @property
    def mos(self):
        if self._mos is None:
            if self.torch_threads:
                import torch

                torch.set_num_threads(self.torch_threads)
            self._mos = as_mos_function(self._scorer_spec)
        return self._mos

    def developed(self, path: Path) -> Developed:
        """The cached preview front end of ``path`` (LRU)."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        dev = self._disk_cached(path)
        self._cache[path] = dev
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return dev

    def _disk_cached(self, path: Path) -> Developed:
        """The preview front end from ``cache_dir`` (float16 .npy + JSON), computed once for all workers."""
        if self.cache_dir is None or not path.is_file():
            return develop(read_raw(path), self.preview)  # (a missing file raises RawReadError here)
        import hashlib
        import json

        st = path.stat()
        ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.preview}"
        key = hashlib.sha1(ident.encode()).hexdigest()
        arr_path, meta_path = self.cache_dir / f"{key}.npy", self.cache_dir / f"{key}.json"
        if arr_path.exists() and meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                return Developed(np.load(arr_path).astype(np.float32), float(meta["ae_gain"]), meta["name"])
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry is recomputed
        dev = develop(read_raw(path), self.preview)
        with atomic_path(arr_path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, dev.linear.astype(np.float16))
        write_json_atomic(meta_path, {"ae_gain": dev.ae_gain, "name": dev.name, "raw": str(path)})
        return dev

    def _observe(self) -> dict[str, np.ndarray]:
        small = Image.fromarray(self._img).resize((self.obs_size, self.obs_size), Image.BILINEAR)
        image = np.ascontiguousarray(np.asarray(small, dtype=np.uint8).transpose(2, 0, 1))
        params = np.clip(np.nan_to_num(self._norm, nan=0.0), -1.0, 1.0).astype(np.float32)
        return {"image": image, "params": params}

    def _info(self) -> dict:
        return {"raw": self._dev.name if self._dev else "", "mos": self._mos_now,
                "mos_start": self._mos_start, "params": from_normalized(self._norm), "step": self._t,
                "episode_scorer_calls": self._t + 1}  # the neutral render + one per step

    def _score(self) -> float:
        self._img = finish(self._dev, from_normalized(self._norm))
        return self.mos.one(self._img) if self.score else 0.0

    def skipped_raws(self) -> dict[str, str]:
        """Raws this environment could not read: path -> one-line reason."""
        return dict(self.skipped)

    def scorer_calls(self) -> int:
        """Scorer calls made by this environment so far."""
        return self._mos.calls if self._mos is not None else 0

    # -- gymnasium API ---------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        order = ([Path(options["raw"])] if "raw" in options
                 else [self.raws[int(i)] for i in self.np_random.permutation(len(self.raws))])
        for path in order:
            if str(path) in self.skipped:
                continue
            try:
                self._dev = self.developed(path)
                break
            except RawReadError as exc:
                self.skipped[str(path)] = str(exc)
        else:
            raise RawReadError(order[0], "no readable raw among the environment's files — "
                               + "; ".join(list(self.skipped.values())[:3]))
        start = options.get("params")
        self._norm = to_normalized(start) if start is not None else to_normalized(neutral())
        self._t = 0
        self._mos_now = self._mos_start = self._score()
        return self._observe(), self._info()

    def step(self, action):
        if self._dev is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, dtype=np.float64).reshape(N_PARAMS)
        if self.action_mode == "delta":
            a = np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
            self._norm = np.clip(self._norm + self.delta_scale * a, -1.0, 1.0)
        else:
            fallback = to_normalized(neutral())
            a = np.where(np.isfinite(a), a, fallback)
            self._norm = np.clip(a, -1.0, 1.0)
        prev = self._mos_now
        self._mos_now = self._score()
        reward = 100.0 * (self._mos_now - prev) / (self.mos.width if self.score else 1.0)
        reward = float(reward) if np.isfinite(reward) else 0.0
        self._t += 1
        return self._observe(), reward, self._t >= self.max_steps, False, self._info()

    def render(self):
        return None if self._img is None else self._img.copy()


def register() -> None:
    """Register :data:`ENV_ID` with Gymnasium (idempotent; done on ``import isp_env``)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="isp_env.env:ISPTuningEnv")
