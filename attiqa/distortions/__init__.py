"""Synthetic image degradations: the proxy distortions of ATTIQA supplement §A (``basic``) and the 25
KADID-10k types (``kadid``, names ``kadid_*``).

The registry :data:`DISTORTIONS` maps a name to a :class:`Distortion` (attribute, direction, function,
five graded levels, source of the level values); :func:`apply_distortion` applies one at a level 0..5
(0 = identity).

The names below are imported on first use (PEP 562): the distortion code needs numpy, scipy and
scikit-image (about a second), and a command line that only names :data:`DEFAULT_GRADED`
(:mod:`attiqa.distortions.defaults`) must not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attiqa.distortions.defaults import DEFAULT_GRADED
from attiqa.lazy import lazy_names

if TYPE_CHECKING:
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
    from attiqa.distortions.graded import write_graded_set
    from attiqa.distortions.kadid import KADID_NAMES

# name -> the submodule defining it. The KADID types register themselves in DISTORTIONS when kadid is
# imported: it comes first on any first use, as with the eager package, so the registry is always complete.
__getattr__ = lazy_names(
    __name__,
    {
        **dict.fromkeys(
            ("DISTORTIONS", "NUM_LEVELS", "Distortion", "DistortionError", "apply_distortion",
             "get_distortion", "list_distortions", "register_distortion"),
            f"{__name__}.basic",
        ),
        "write_graded_set": f"{__name__}.graded",
        "KADID_NAMES": f"{__name__}.kadid",
    },
    first=(f"{__name__}.kadid",),
)  # fmt: skip


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
