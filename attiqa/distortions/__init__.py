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

import importlib
from typing import TYPE_CHECKING, Any

from attiqa.distortions.defaults import DEFAULT_GRADED

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

# name -> the submodule defining it
_WHERE = {
    "DISTORTIONS": "basic",
    "NUM_LEVELS": "basic",
    "Distortion": "basic",
    "DistortionError": "basic",
    "apply_distortion": "basic",
    "get_distortion": "basic",
    "list_distortions": "basic",
    "register_distortion": "basic",
    "write_graded_set": "graded",
    "KADID_NAMES": "kadid",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # the KADID types register themselves in DISTORTIONS when kadid is imported: do it on any first use,
    # as the eager package did, so the registry is always complete
    importlib.import_module(f"{__name__}.kadid")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


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
