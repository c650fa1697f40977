"""``attiqa-zeroshot``: the ``clip`` teacher (ATTIQA paper §3.2, eq. 1-2) used directly as a scorer.

Columns: the five attribute probabilities with the selected prompts (paper Table 1, or a prompts file
from ``attiqa select-prompts``), and ``score`` = their unweighted mean. The mean is our choice, not the
paper's: ATTIQA never scores quality zero-shot, it trains on these probabilities (§3.4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from attiqa.attributes import ATTRIBUTES
from attiqa.scorers.base import Scorer, ScorerInfo, prepend_mean
from attiqa.teachers.clip import DEFAULT_CLIP_SPEC, ClipTeacher

INFO = ScorerInfo(
    name="attiqa-zeroshot",
    kind="zero-shot",
    score_range=(0.0, 1.0),
    higher_is_better=True,
    needs=f"CLIP {DEFAULT_CLIP_SPEC} (offline: --model attiqa-zeroshot:FOLDER)",
    description="the clip teacher: five attribute probabilities (Table 1 prompts), score = their mean",
)


class ZeroShotScorer(Scorer):
    columns = ("score", *ATTRIBUTES)

    def __init__(
        self,
        spec: str = DEFAULT_CLIP_SPEC,
        device: str | torch.device = "cpu",
        prompts: str | Path | None = None,
        scale: float = 1.0,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__(device)
        self.teacher = ClipTeacher(
            spec or DEFAULT_CLIP_SPEC, device, prompts, scale, cache_dir, hint_flag="--model attiqa-zeroshot:"
        )
        self.min_shorter = self.teacher.min_shorter

    @property
    def info(self) -> ScorerInfo:
        return INFO

    def transform(self, img: Image.Image) -> torch.Tensor:
        return self.teacher.transform(img)

    @torch.no_grad()
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        attrs = self.teacher.score_tensors(batch)
        return prepend_mean(attrs)

    def metadata(self) -> dict[str, Any]:
        return {
            "name": INFO.name,
            "kind": INFO.kind,
            "overall": "mean of the five attributes",
            **self.teacher.metadata(),
        }
