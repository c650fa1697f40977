"""Synthetic image degradations for proxy tasks, demo data and tests (ATTIQA supplement §A).

The registry :data:`DISTORTIONS` maps a name to a :class:`Distortion` (attribute, direction, function,
five graded levels); :func:`apply_distortion` applies one at a level 0..5 (0 = identity).
"""

from attiqa.distortions.basic import (
    DISTORTIONS,
    NUM_LEVELS,
    Distortion,
    DistortionError,
    apply_distortion,
    get_distortion,
    list_distortions,
    register_distortion,
)
from attiqa.distortions.graded import DEFAULT_GRADED, write_graded_set

__all__ = [
    "DEFAULT_GRADED",
    "write_graded_set",
    "DISTORTIONS",
    "NUM_LEVELS",
    "Distortion",
    "DistortionError",
    "apply_distortion",
    "get_distortion",
    "list_distortions",
    "register_distortion",
]
