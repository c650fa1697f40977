"""A teacher as a quality scorer: its five attribute scores plus ``score`` = their unweighted mean.

- ``classical``: the weight-free teacher (:mod:`attiqa.teachers.classical`) — a baseline that needs no
  download, so users always have a reference point (ours, not from the papers).
- ``attiqa-zeroshot``: the ``clip`` teacher (paper §3.2, eq. 1-2) with the selected prompts (paper
  Table 1, or a prompts file from ``attiqa select-prompts``).

The mean as overall score is our choice, not the paper's: ATTIQA never scores quality zero-shot, it
trains on these probabilities (§3.4).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from attiqa.errors import ModelLoadError
from attiqa.interface import Scorer, prepend_mean
from attiqa.scorer_info import ScorerInfo
from attiqa.teachers import ClassicalTeacher, ClipTeacher, Teacher


class AttributeMeanScorer(Scorer):
    """``teacher``: "classical" or "clip"; ``spec`` is the CLIP spec or folder for "clip"."""

    def __init__(
        self,
        spec: str = "",
        device: str | torch.device = "cpu",
        *,
        teacher: str,
        info: ScorerInfo,
        prompts: str | Path | None = None,
        scale: float = 1.0,
        cache_dir: str | Path | None = None,
        **teacher_kwargs: Any,
    ) -> None:
        super().__init__(device)
        self.teacher: Teacher
        if teacher == "classical":
            if spec:
                raise ModelLoadError(f"scorer {info.name!r} takes no argument, got {spec!r}")
            self.teacher = ClassicalTeacher(device=device, **teacher_kwargs)
        elif teacher == "clip":
            hint = f"-m {info.name}:"
            self.teacher = ClipTeacher(spec, device, prompts, scale, cache_dir, hint_flag=hint)
        else:
            raise ValueError(f"unknown teacher {teacher!r}")
        self.columns = ("score", *self.teacher.columns)
        self._info = dataclasses.replace(info, min_shorter=self.teacher.info.min_shorter)

    @property
    def info(self) -> ScorerInfo:
        return self._info

    def transform(self, img: Image.Image) -> torch.Tensor:
        return self.teacher.transform(img)

    @torch.inference_mode()
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        return prepend_mean(self.teacher.score_tensors(batch.to(self.device)))

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self._info.name, "kind": self._info.kind}
        if isinstance(self.teacher, ClipTeacher):
            meta.update({"overall": "mean of the five attributes", **self.teacher.metadata()})
        return meta
