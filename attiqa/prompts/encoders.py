"""What prompt selection needs from a vision-language model: L2-normalised text and image embeddings.

:class:`ClipPromptEncoder` wraps the project's CLIP teacher (any open_clip model, eq. 1's encoders).
Any object with the same two methods and a ``description`` works, e.g. a stand-in with known
similarities in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from attiqa.teachers.clip import ClipTeacher


class PromptEncoder(Protocol):
    description: str

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(T, D) float32, rows of unit length."""
        ...

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, D) float32, rows of unit length."""
        ...


class ClipPromptEncoder:
    """Embeddings from a :class:`~attiqa.teachers.clip.ClipTeacher` (its model and preprocessing)."""

    def __init__(self, teacher: ClipTeacher, batch_size: int = 32) -> None:
        self.teacher = teacher
        self.batch_size = int(batch_size)
        self.description = str(teacher.metadata().get("spec", "clip"))

    @classmethod
    def from_spec(cls, spec: str, device: str = "cpu", batch_size: int = 32) -> ClipPromptEncoder:
        """Load an open_clip model as ``attiqa label --teacher clip:SPEC`` does (same offline errors)."""
        return cls(ClipTeacher(spec, device=device), batch_size=batch_size)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        chunks = [
            self.teacher.encode_texts(list(texts[i : i + 256])).cpu().numpy()
            for i in range(0, len(texts), 256)
        ]
        return np.concatenate(chunks).astype(np.float32)

    @torch.no_grad()
    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = torch.stack([self.teacher.transform(im) for im in images[i : i + self.batch_size]])
            out.append(self.teacher.encode_images(batch).cpu().numpy())
        return np.concatenate(out).astype(np.float32)
