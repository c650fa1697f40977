"""The reward's scorer: any attiqa scorer (or any callable image -> MOS), counted and NaN-safe.

The default is the ATTIQA checkpoint (`attiqa.load_scorer(None)`, the named default model); with none bundled
that fails with one line asking for ``--model``. Tests and weight-free runs use ``classical``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from attiqa.errors import ModelLoadError


class MOSFunction:
    """Batch of uint8 RGB renders (H, W, 3) -> MOS array; counts scorer calls (one per image).

    Non-finite scores are replaced by the lowest score of the range, so NaN never reaches an agent.
    """

    def __init__(self, fn: Callable, score_range: tuple[float, float] = (0.0, 1.0), name: str = "custom",
                 batched: bool = False) -> None:
        self.fn = fn
        self.score_range = (float(score_range[0]), float(score_range[1]))
        self.name = name
        self.batched = batched
        self.calls = 0
        self.nonfinite = 0

    @property
    def width(self) -> float:
        lo, hi = self.score_range
        return hi - lo if np.isfinite(hi - lo) and hi > lo else 1.0

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        images = list(images)
        if not images:
            return np.zeros(0)
        if self.batched:
            out = np.asarray(self.fn([Image.fromarray(im) for im in images]), dtype=np.float64).reshape(-1)
        else:
            out = np.array([float(self.fn(Image.fromarray(im))) for im in images], dtype=np.float64)
        self.calls += len(images)
        bad = ~np.isfinite(out)
        if bad.any():
            self.nonfinite += int(bad.sum())
            out[bad] = self.score_range[0]
        return out

    def one(self, image: np.ndarray) -> float:
        return float(self([image])[0])


def from_scorer(scorer) -> MOSFunction:
    """Wrap an :class:`attiqa.scorers.Scorer`: its first column (``mos`` or ``score``) is the MOS."""
    column = scorer.columns[0]
    if column == "mos" and getattr(scorer, "has_mos", True) is False:
        raise ModelLoadError(
            f"{getattr(scorer, 'checkpoint', scorer.info.name)}: this checkpoint has no MOS head (pretrain "
            "only) — pass a fine-tuned one (runs/<name>/finetune/best.safetensors) or --model classical"
        )

    def fn(images):
        return scorer(images)[column]

    return MOSFunction(fn, scorer.info.score_range, scorer.info.name, batched=True)


def load_mos_function(spec: str | Path | None = None, device: str = "cpu") -> MOSFunction:
    """``None`` = the default ATTIQA model; otherwise a checkpoint path, named model or scorer name."""
    import attiqa

    return from_scorer(attiqa.load_scorer(None if spec is None else str(spec), device=device))


def as_mos_function(scorer) -> MOSFunction:
    """Accept a MOSFunction, an attiqa Scorer, a spec string/path/None, or a plain callable(PIL) -> float."""
    if isinstance(scorer, MOSFunction):
        return scorer
    if scorer is None or isinstance(scorer, (str, Path)):
        return load_mos_function(scorer)
    if hasattr(scorer, "columns") and hasattr(scorer, "info"):
        return from_scorer(scorer)
    if callable(scorer):
        return MOSFunction(scorer)
    raise TypeError(f"scorer must be a spec, an attiqa Scorer or a callable, not {type(scorer).__name__}")
