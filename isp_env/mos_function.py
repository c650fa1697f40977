"""The reward's scorer: any attiqa scorer (or any callable image -> MOS), counted and NaN-safe.

The default is the ATTIQA checkpoint (`attiqa.load_scorer(None)`, the named default model); with none bundled
that fails with one line asking for ``--model``. Tests and weight-free runs use ``classical``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from attiqa.errors import ModelLoadError
from attiqa.interface import CALL_BATCH, Scorer

# views per forward pass of a one-pass reward (ours). CPU: 2, chosen by benchmarks/isp_reward_batch_rule.txt
# (one torch thread: ~1.1-1.2x the one-at-a-time throughput, within the noise of a busy machine; 8 and
# more lose — docs/isp.md);
# GPU: the scorer's own list batch (attiqa.interface.CALL_BATCH; not measured here). At most that many
# centre crops' worth of pixels a pass (whole views are larger).
VIEW_BATCH_CPU = 2
VIEW_BATCH = CALL_BATCH
VIEW_PIXELS = CALL_BATCH * 320 * 320


class MOSFunction:
    """Batch of uint8 RGB renders (H, W, 3) -> MOS array; counts scorer calls (one per image).

    Non-finite scores are replaced by the lowest score of the range, so NaN never reaches an agent.
    """

    def __init__(
        self,
        fn: Callable,
        score_range: tuple[float, float] = (0.0, 1.0),
        name: str = "custom",
        batched: bool = False,
        view_shorter: int | None = None,
    ) -> None:
        self.fn = fn
        self.view_shorter = view_shorter  # the shorter side the scorer looks at (None: no native scale)
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


def score_views(
    views: Sequence[torch.Tensor], score: Callable[[torch.Tensor], Any], batch_size: int = VIEW_BATCH
) -> np.ndarray:
    """Score (C, H, W) view tensors in batched forward passes (``score``: a stacked batch -> one score per
    row): views of one shape stacked, at most ``batch_size`` and :data:`VIEW_PIXELS` pixels a pass; the
    scores in the order given. Equal to scoring them one at a time up to float rounding
    (tests/test_isp_reward.py). "center" views are all of one shape, "whole" views of one raw's renders too.
    """
    out = np.zeros(len(views), dtype=np.float64)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, v in enumerate(views):
        groups.setdefault(tuple(v.shape), []).append(i)
    for shape, idx in groups.items():
        step = max(min(int(batch_size), VIEW_PIXELS // max(shape[-1] * shape[-2], 1)), 1)
        for k in range(0, len(idx), step):
            part = idx[k : k + step]
            scores = np.asarray(score(torch.stack([views[i] for i in part])), dtype=np.float64).reshape(-1)
            out[part] = scores
    return out


def from_scorer(
    scorer: Scorer, one_pass: bool | str = "center", batch_size: int | None = None
) -> MOSFunction:
    """Wrap an :class:`attiqa.scorers.Scorer`: its first column (``mos`` or ``score``) is the MOS.

    ``one_pass`` (ours, issue 19): a trained ATTIQA scorer grades the whole image in one forward pass at
    its own scale (the render is resized so its shorter side is the model's ``test_resize_shorter`` when
    it is not already) instead of the paper's five 320-px crops (§4.2): ``"whole"`` scores the whole view
    (cheaper than five crops), ``"center"`` (default) its centre crop of the model's crop size (the
    scorer's own single-crop option; cheaper still — costs in docs/isp.md); ``False``: the paper's five
    crops.
    ``benchmarks/isp_reward_agreement.py`` measures the rank agreement with five-crop full-resolution scores.
    A list of renders is scored in forward passes of ``batch_size`` views (:func:`score_views`; None:
    :data:`VIEW_BATCH_CPU` on the CPU, else :data:`VIEW_BATCH`; 1: one view a pass).
    """
    column = scorer.columns[0]
    if column == "mos" and getattr(scorer, "has_mos", True) is False:
        raise ModelLoadError(
            f"{getattr(scorer, 'checkpoint', scorer.info.name)}: this checkpoint has no MOS head (pretrain "
            "only) — pass a fine-tuned one (runs/<name>/finetune/best.safetensors) or --model classical"
        )

    model = getattr(scorer, "model", None)
    shorter = scorer.info.min_shorter
    if one_pass and model is not None and shorter and hasattr(model, "card_config"):
        # the model's own test transforms (attiqa.models.transforms), scored through the scorer's own call
        from attiqa.models.transforms import CenterCropTest, Normalize, resize_shorter

        cfg = model.card_config()
        normalize = Normalize(cfg["mean"], cfg["std"])

        def whole(im: Image.Image) -> torch.Tensor:
            return normalize(resize_shorter(im.convert("RGB"), int(shorter)))

        # "center": what attiqa.load_scorer(..., crops="center") does
        view: Callable[[Image.Image], Any] = (
            whole
            if one_pass != "center"
            else CenterCropTest(cfg["mean"], cfg["std"], int(shorter), int(cfg.get("test_crop") or 320))
        )

        if batch_size is None:
            device = getattr(scorer, "device", None)
            batch_size = VIEW_BATCH_CPU if device is None or device.type == "cpu" else VIEW_BATCH
        step = int(batch_size)

        def one(images: Sequence[Image.Image]) -> np.ndarray:
            return score_views([view(im) for im in images], lambda b: scorer.score_views(b)[column], step)

        return MOSFunction(
            one, scorer.info.reward_range, scorer.info.name, batched=True, view_shorter=int(shorter)
        )

    def fn(images: list[Image.Image]) -> np.ndarray | float:
        return scorer(images)[column]

    return MOSFunction(
        fn, scorer.info.reward_range, scorer.info.name, batched=True, view_shorter=scorer.info.min_shorter
    )


def load_mos_function(
    spec: str | Path | None = None, device: str = "cpu", one_pass: bool | str = "center"
) -> MOSFunction:
    """``None`` = the default ATTIQA model; otherwise a checkpoint path, named model or scorer name."""
    import attiqa

    return from_scorer(attiqa.load_scorer(None if spec is None else str(spec), device=device), one_pass)


# what an environment's ``scorer`` may be (:func:`as_mos_function` turns each into a MOSFunction)
ScorerSpec = MOSFunction | Scorer | str | Path | Callable[[Image.Image], float] | None


def as_mos_function(scorer: ScorerSpec) -> MOSFunction:
    """Accept a MOSFunction, an attiqa Scorer, a spec string/path/None, or a plain callable(PIL) -> float."""
    if isinstance(scorer, MOSFunction):
        return scorer
    if scorer is None or isinstance(scorer, (str, Path)):
        return load_mos_function(scorer)
    if isinstance(scorer, Scorer):
        return from_scorer(scorer)
    if callable(scorer):
        return MOSFunction(scorer)
    raise TypeError(f"scorer must be a spec, an attiqa Scorer or a callable, not {type(scorer).__name__}")
