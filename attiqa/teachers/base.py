"""The teacher protocol: something that turns images into attribute pseudo-labels (paper §3.2).

A teacher splits its work in two so batch jobs can decode in parallel workers:
- :meth:`Teacher.transform` — PIL RGB image -> CPU tensor (runs in DataLoader workers; must be picklable),
- :meth:`Teacher.score_tensors` — a stacked batch -> (N, len(columns)) scores in [0, 1] (runs on ``device``).

``columns`` is :data:`attiqa.attributes.ATTRIBUTES` for the standard teachers (higher = better for
every column, so "noisiness" means "how clean").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from attiqa.attributes import ATTRIBUTES
from attiqa.io.images import load_image


class Teacher(ABC):
    """Base class of pseudo-label teachers."""

    name: str = "teacher"
    columns: tuple[str, ...] = ATTRIBUTES
    min_shorter: int | None = None  # shorter edge the transform resizes to (lets big JPEGs decode smaller)

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    @abstractmethod
    def transform(self, img: Image.Image) -> torch.Tensor:
        """Preprocess one RGB image into a CPU tensor (C, H, W) of a fixed size."""

    @abstractmethod
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        """Scores in [0, 1], shape (N, len(columns)), for a batch from :meth:`transform`."""

    @abstractmethod
    def metadata(self) -> dict[str, Any]:
        """What produced the labels (teacher kind, model id, prompts, scaling), for the label file."""

    @torch.no_grad()
    def score_images(self, images: Sequence[Image.Image | str | Path]) -> np.ndarray:
        """Convenience: score PIL images or paths in one batch; returns (N, len(columns)) float32."""
        pil = [
            im if isinstance(im, Image.Image) else load_image(im, min_shorter=self.min_shorter)
            for im in images
        ]
        batch = torch.stack([self.transform(im) for im in pil])
        return self.score_tensors(batch).float().cpu().numpy()
