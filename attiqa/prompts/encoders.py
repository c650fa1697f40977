"""What prompt selection needs from a vision-language model: L2-normalised text and image embeddings.

:class:`ClipPromptEncoder` wraps the project's CLIP teacher (any open_clip model, eq. 1's encoders).
Any object with the same two methods and a ``description`` works, e.g. a stand-in with known
similarities in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from attiqa.errors import ImageLoadError
from attiqa.io.images import load_image
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

    def __init__(self, teacher: ClipTeacher, batch_size: int = 32, workers: int | None = None) -> None:
        from attiqa.io.batching import inference_num_workers

        self.teacher = teacher
        self.batch_size = int(batch_size)
        self.workers = inference_num_workers(teacher.device, None if workers is None else int(workers))
        self.description = str(teacher.metadata().get("spec", "clip"))

    @classmethod
    def from_spec(
        cls, spec: str, device: str = "cpu", batch_size: int = 32, workers: int | None = None
    ) -> ClipPromptEncoder:
        """Load an open_clip model as ``attiqa label --teacher clip:SPEC`` does (same offline errors)."""
        return cls(ClipTeacher(spec, device=device), batch_size=batch_size, workers=workers)

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

    def encode_paths(self, paths: Sequence[Path]) -> tuple[np.ndarray, list[int], list[ImageLoadError]]:
        """Decode files in parallel workers (:mod:`attiqa.io.batching`; big JPEGs at reduced scale) and
        encode them: embeddings of the readable ones, their positions, the load errors."""
        from attiqa.io.batching import iter_image_batches

        embs, ok, errors = [], [], []
        for batch in iter_image_batches(
            paths, self.teacher.transform, self.batch_size, self.workers, min_shorter=self.teacher.min_shorter
        ):
            errors.extend(batch.errors)
            if batch.tensor is not None:
                embs.append(self.teacher.encode_images(batch.tensor).cpu().numpy())
                ok.extend(batch.indices)
        emb = np.concatenate(embs).astype(np.float32) if embs else np.zeros((0, 1), np.float32)
        return emb, ok, errors


def encode_files(
    encoder: PromptEncoder, paths: Sequence[Path], min_shorter: int | None = None
) -> tuple[np.ndarray, list[int], list[ImageLoadError]]:
    """Embeddings of the readable files among ``paths``, their positions, and the load errors. Uses the
    encoder's own parallel ``encode_paths`` when it has one, else loads with :func:`load_image`."""
    if hasattr(encoder, "encode_paths"):
        return encoder.encode_paths(paths)
    imgs, ok, errors = [], [], []
    for j, p in enumerate(paths):
        try:
            imgs.append(load_image(p, min_shorter=min_shorter))
            ok.append(j)
        except ImageLoadError as exc:
            errors.append(exc)
    emb = encoder.encode_images(imgs) if imgs else np.zeros((0, 1), np.float32)
    return emb, ok, errors
