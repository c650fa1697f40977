"""What a scorer's numbers mean and what it needs: :class:`ScorerInfo`, plain data.

Apart from the scorer protocol (:mod:`attiqa.interface`, which needs torch) so the model zoo's metadata
(:mod:`attiqa.scorers.zoo`) can be read, e.g. by ``attiqa models``, without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScorerInfo:
    """What the numbers mean, what the scorer needs, and how it must be batched.

    ``max_batch``: 1 when transform outputs differ in size (native-resolution scorers). ``min_shorter``:
    the shorter edge the transform resizes to, so big JPEGs may decode at a reduced scale (None: decode
    at native scale). Both are read by :func:`attiqa.scoring.score_batches` and nothing else.
    """

    name: str
    kind: str  # "trained" | "zero-shot" | "classical" | "teacher"
    score_range: tuple[float, float]
    higher_is_better: bool = True
    needs: str = "nothing"  # weights it needs, in words
    description: str = ""
    max_batch: int | None = None
    min_shorter: int | None = None
