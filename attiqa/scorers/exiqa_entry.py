"""Registry entry of ``exiqa``; the model code (:mod:`attiqa.exiqa`) is imported only on creation."""

from __future__ import annotations

from pathlib import Path

import torch

from attiqa.scorers.base import Scorer, ScorerInfo

INFO = ScorerInfo(
    name="exiqa",
    kind="trained",
    score_range=(0.0, 1.0),
    higher_is_better=False,
    needs="a checkpoint from `attiqa train-exiqa`: --model exiqa:PATH (+ its CLIP weights)",
    description="ExIQA (paper 004): distortion probabilities via attribute prompts (higher = more distorted)",
)


def create_exiqa(path: str | Path = "", device: str | torch.device = "cpu", **kw) -> Scorer:
    from attiqa.exiqa.scorer import ExiqaScorer

    return ExiqaScorer(path, device, **kw)
