"""What a scorer's numbers mean and what it needs: :class:`ScorerInfo`, plain data.

Apart from the scorer protocol (:mod:`attiqa.interface`, which needs torch) so the model zoo's metadata
(:mod:`attiqa.scorers.zoo`) can be read, e.g. by ``attiqa models``, without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScorerInfo:
    """What the numbers mean, what the scorer needs, and how it must be batched.

    Two ranges, never mixed up: ``score_range`` is the scale the first column is on — what a user reads a
    score against (CLIVE's MOS 0–100 for ``attiqa-default``, AGIQA-3k's 0–5, 0–1 for a probability); shown
    by ``attiqa models``, contact sheets and genbench's records. ``trained_range`` is the MOS range of the
    data the scorer was fitted on (its card's ``mos_range``: 3.50–91.44 of the 690 CLIVE training photos
    for ``attiqa-default``), None for a scorer never fitted to MOS. A checkpoint of one's own records no
    scale (its card may, as ``score_range``): its ``score_range`` is then its ``trained_range``.

    ``max_batch``: 1 when transform outputs differ in size (native-resolution scorers). ``min_shorter``:
    the shorter edge the transform resizes to, so big JPEGs may decode at a reduced scale (None: decode
    at native scale). ``view_pixels``: the pixels of one image's transform output (an ATTIQA checkpoint's
    crops, sized by its card), so a batch of larger views holds fewer images. All three are read by
    :func:`attiqa.scoring.score_batches` and nothing else.
    """

    name: str
    kind: str  # "trained" | "zero-shot" | "classical" | "teacher"
    score_range: tuple[float, float]
    higher_is_better: bool = True
    needs: str = "nothing"  # weights it needs, in words
    description: str = ""
    max_batch: int | None = None
    min_shorter: int | None = None
    view_pixels: int | None = None
    trained_range: tuple[float, float] | None = None
    # a checkpoint fine-tuned on a named dataset (its card): "NAME:ROOT" and the split it trained on
    fitted_on: str = ""
    fitted_split: str = ""
    # and the SHA-256 of its rows (``IQADataset.fingerprint``; "" in cards made before it was recorded), by
    # the version of that hash its card's key names (``datasets.base.ROWS_KEYS``: session 50's cards hold 1)
    fitted_rows: str = ""
    fitted_rows_version: int = 0
    scale: str = ""  # the scale in words where a zoo row cannot give numbers before a model is loaded

    @property
    def reward_range(self) -> tuple[float, float]:
        """What isp_env's reward divides a score change by: where the scores spread, the training range
        when the scorer was fitted to MOS (the shipped ISP policy and its figures were made with it), else
        the scale."""
        return self.trained_range or self.score_range

    def scale_record(self) -> dict[str, object]:
        """How a score file's JSON states the scale of its scores (``attiqa score``, genbench's records):
        one writer, so a consumer reads both files alike."""
        return {"score_range": list(self.score_range), "higher_is_better": self.higher_is_better}
