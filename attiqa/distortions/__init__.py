"""Synthetic image degradations: the proxy distortions of ATTIQA supplement §A (``basic``) and the 25
KADID-10k types (``kadid``, names ``kadid_*``).

The registry :data:`DISTORTIONS` maps a name to a :class:`Distortion` (attribute, direction, function,
five graded levels, source of the level values); :func:`apply_distortion` applies one at a level 0..5
(0 = identity).
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
from attiqa.distortions.kadid import KADID_NAMES

__all__ = [
    "DEFAULT_GRADED",
    "KADID_NAMES",
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
