"""Registry entry of ``exiqa``; the model code (:mod:`attiqa.exiqa`) is imported only on creation."""

from __future__ import annotations

from pathlib import Path

import torch

from attiqa.scorers.base import Scorer, ScorerInfo

INFO = ScorerInfo(
    name="exiqa",
    kind="trained",
    score_range=(0.0, 1.0),
    higher_is_better=True,
    needs="a run of `attiqa train-exiqa` (+ train-exiqa-regressor): --model exiqa:RUN (+ its CLIP weights)",
    description="ExIQA (paper 004): score = eq. 9 quality (MOS scale); 25 distortion strengths (explanation)",
)


def create_exiqa(path: str | Path = "", device: str | torch.device = "cpu", **kw) -> Scorer:
    from attiqa.exiqa.scorer import ExiqaScorer

    return ExiqaScorer(path, device, **kw)
