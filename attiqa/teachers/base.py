"""The teacher: a scorer whose columns are the five attributes, used for pseudo-labels (paper §3.2).

A teacher is an :class:`attiqa.interface.Scorer` (``transform`` runs in decode workers and must be
picklable; ``score_tensors`` gives (N, len(columns)) scores in [0, 1] on ``device``), so ``attiqa
label`` drives it with the same :func:`attiqa.scoring.score_batches` as ``attiqa score``.

``columns`` is :data:`attiqa.attributes.ATTRIBUTES` for the standard teachers (higher = better for
every column, so "noisiness" means "how clean").
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from attiqa.attributes import ATTRIBUTES
from attiqa.interface import Scorer
from attiqa.scorer_info import ScorerInfo


class Teacher(Scorer):
    """Base class of pseudo-label teachers."""

    name: str = "teacher"
    columns: tuple[str, ...] = ATTRIBUTES
    min_shorter: int | None = None  # shorter edge the transform resizes to (reported in ``info``)

    @property
    def info(self) -> ScorerInfo:
        return ScorerInfo(
            name=self.name,
            kind="teacher",
            score_range=(0.0, 1.0),
            description="pseudo-label teacher: five attribute scores in [0, 1]",
            min_shorter=self.min_shorter,
        )

    @abstractmethod
    def metadata(self) -> dict[str, Any]:
        """What produced the labels (teacher kind, model id, prompts, scaling), for the label file."""

    @torch.no_grad()
    def score_images(self, images: Sequence[Image.Image | str | Path]) -> np.ndarray:
        """Convenience: score PIL images or paths; returns (N, len(columns)) float32."""
        out = self(list(images))
        return np.stack([np.asarray(out[c], dtype=np.float32) for c in self.columns], axis=1)
