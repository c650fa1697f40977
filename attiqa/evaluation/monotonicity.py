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

from attiqa.distortions import DEFAULT_GRADED, NUM_LEVELS, apply_distortion, get_distortion
from attiqa.evaluation.metrics import srocc
from attiqa.interface import Scorer

# The distortions the attribute heads are checked against: the graded set pretraining degrades with, one
# noise of its two (gaussian_noise; iso_noise checks the same head). The attribute each degrades and the
# direction (+1: the attribute's score should rise with the level, -1: fall; noisiness is "how clean", so
# noise lowers it) are the distortion's own, in its registry entry (attiqa.distortions.basic): written
# here a second time they could disagree.
CHECKED: tuple[str, ...] = tuple(n for n in DEFAULT_GRADED if n != "iso_noise")


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
    for dist in CHECKED:
        d = get_distortion(dist)
        if d.attribute is None or d.attribute not in scorer.columns:
            continue
        col = scorer.columns.index(d.attribute)
        per, strict = [], []
        for img in photos:
            series = [apply_distortion(img, dist, int(lv), seed=seed) for lv in levels]
            batch = torch.stack([scorer.transform(im) for im in series])
            s = scorer.score_tensors(batch)[:, col].float().cpu().numpy() * d.direction
            per.append(float(srocc(levels, s)))
            strict.append(bool(np.all(np.diff(s) > 0)))
        results.append(MonotonicityResult(d.attribute, dist, per, strict))
    return results
