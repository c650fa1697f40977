"""The scorer protocol every quality metric and every teacher implements (one protocol, not two).

A scorer splits CPU preprocessing (:meth:`Scorer.transform`, runs in decode workers) from the batched
model call (:meth:`Scorer.score_tensors`); :func:`attiqa.scoring.score_batches` is the one loop that
drives them for ``score``, ``eval``, ``label`` and genbench. A teacher (paper §3.2) is a scorer whose
columns are the five attributes. Calling a scorer on paths, PIL images or tensors returns a dict
``column -> np.ndarray`` (or ``column -> float`` for a single input).

This module sits outside :mod:`attiqa.scorers` and :mod:`attiqa.teachers` because both implement it
(scorers build on teachers; neither may import the other's package in a circle). :class:`ScorerInfo` is
plain data in :mod:`attiqa.scorer_info` (the zoo reads it without torch), used here under the same name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from attiqa.io.images import load_image
from attiqa.scorer_info import ScorerInfo


def prepend_mean(attrs: torch.Tensor) -> torch.Tensor:
    """(N, K) attribute scores -> (N, 1 + K) with their unweighted mean as the first (overall) column."""
    return torch.cat([attrs.mean(dim=1, keepdim=True), attrs], dim=1)


CALL_BATCH = 16  # images per forward pass when a list is scored through Scorer.__call__


class Scorer(ABC):
    """Base class: ``columns[0]`` is the overall score; further columns (e.g. attributes) are optional."""

    columns: tuple[str, ...] = ("score",)

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    @property
    @abstractmethod
    def info(self) -> ScorerInfo: ...

    @abstractmethod
    def transform(self, img: Image.Image) -> torch.Tensor:
        """One RGB image -> CPU tensor ((C,H,W), or (K,C,H,W) for multi-crop)."""

    @abstractmethod
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, len(columns)) scores for a batch stacked from :meth:`transform` outputs."""

    def metadata(self) -> dict[str, Any]:
        return {"name": self.info.name, "kind": self.info.kind}

    @torch.no_grad()
    def __call__(
        self, inputs: str | Path | Image.Image | torch.Tensor | Sequence[str | Path | Image.Image]
    ) -> dict[str, np.ndarray] | dict[str, float]:
        """Score paths, PIL images, a list of them, or an already-transformed tensor batch."""
        single = False
        parts: Iterator[torch.Tensor] | list[torch.Tensor]
        if isinstance(inputs, torch.Tensor):
            parts = [inputs if inputs.dim() >= 4 else inputs.unsqueeze(0)]
            single = inputs.dim() == 3
        else:
            items: Sequence[str | Path | Image.Image]
            if isinstance(inputs, (str, Path, Image.Image)):
                items, single = [inputs], True
            else:
                items = inputs
            # Decode, transform and score a few images at a time: a long list must not become one
            # batch (a few hundred five-crop images would need tens of GB of activations).
            step = self.info.max_batch or CALL_BATCH
            chunks = (items[i : i + step] for i in range(0, len(items), step))
            parts = (torch.stack([self._tensor_of(x) for x in chunk]) for chunk in chunks)
        out = torch.cat([self.score_tensors(b).float().cpu() for b in parts]).numpy()
        if single:
            return {c: float(out[0, i]) for i, c in enumerate(self.columns)}
        return {c: out[:, i] for i, c in enumerate(self.columns)}

    def _tensor_of(self, x: str | Path | Image.Image) -> torch.Tensor:
        im = x if isinstance(x, Image.Image) else load_image(x, min_shorter=self.info.min_shorter)
        return self.transform(im.convert("RGB"))
