"""A weight-free reference scorer: the ``classical`` teacher's five measures and their mean.

Ours, not from the papers: a baseline that needs no download, so users always have a reference point.
The overall ``score`` is the unweighted mean of the five attribute scores (an assumption, stated here).
"""

from __future__ import annotations

import torch
from PIL import Image

from attiqa.attributes import ATTRIBUTES
from attiqa.scorers.base import Scorer, ScorerInfo, prepend_mean
from attiqa.teachers.classical import ClassicalTeacher

INFO = ScorerInfo(
    name="classical",
    kind="classical",
    score_range=(0.0, 1.0),
    higher_is_better=True,
    needs="nothing",
    description="mean of five hand-crafted attribute measures (Laplacian energy, RMS contrast, luminance, "
    "Hasler–Süsstrunk colourfulness, noise σ)",
)


class ClassicalScorer(Scorer):
    columns = ("score", *ATTRIBUTES)

    def __init__(self, device: str | torch.device = "cpu", **teacher_kwargs) -> None:
        super().__init__(device)
        self.teacher = ClassicalTeacher(device=device, **teacher_kwargs)

    @property
    def info(self) -> ScorerInfo:
        return INFO

    def transform(self, img: Image.Image) -> torch.Tensor:
        return self.teacher.transform(img)

    @torch.inference_mode()
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        attrs = self.teacher.score_tensors(batch.to(self.device))
        return prepend_mean(attrs)
