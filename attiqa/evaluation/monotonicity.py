"""Do the attribute heads mean what they say? Score photos degraded in steps and correlate.

For every attribute, each photo is degraded at levels 0..5 by the attribute's own distortion; the SROCC
between the level and the head's score (signed so +1 = "moves the right way") is computed per photo.
A head that tracks its attribute has SROCC near +1 on every photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from attiqa.distortions import NUM_LEVELS, apply_distortion
from attiqa.evaluation.metrics import srocc
from attiqa.interface import Scorer

# attribute -> (distortion, +1 if the attribute should rise with the level, -1 if it should fall)
CHECKS: dict[str, tuple[tuple[str, int], ...]] = {
    "sharpness": (("gaussian_blur", -1),),
    "contrast": (("contrast", -1),),
    "brightness": (("brightness_down", -1), ("brightness_up", +1)),
    "colorfulness": (("saturation_down", -1),),
    "noisiness": (("gaussian_noise", -1),),  # noisiness is "how clean": noise lowers it
}


@dataclass
class MonotonicityResult:
    attribute: str
    distortion: str
    per_photo: list[float]  # signed SROCC per photo (+1 = perfectly right-way monotone)
    strictly_monotone: list[bool]

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_photo))


@torch.no_grad()
def attribute_monotonicity(
    scorer: Scorer, photos: Sequence[Image.Image], seed: int = 0
) -> list[MonotonicityResult]:
    """Signed level-vs-score SROCC for every attribute check the scorer has a column for."""
    results = []
    levels = np.arange(NUM_LEVELS + 1)
    for attr, checks in CHECKS.items():
        if attr not in scorer.columns:
            continue
        col = scorer.columns.index(attr)
        for dist, sign in checks:
            per, strict = [], []
            for img in photos:
                series = [apply_distortion(img, dist, int(lv), seed=seed) for lv in levels]
                batch = torch.stack([scorer.transform(im) for im in series])
                s = scorer.score_tensors(batch)[:, col].float().cpu().numpy() * sign
                per.append(float(srocc(levels, s)))
                strict.append(bool(np.all(np.diff(s) > 0)))
            results.append(MonotonicityResult(attr, dist, per, strict))
    return results
