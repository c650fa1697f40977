"""The default distortion set of graded degradation sets, as plain names.

A module of its own, free of numpy/scipy, so a command line can show it as an option's default without
importing the distortion code (``attiqa --help`` stays fast); :mod:`attiqa.distortions.graded` uses it.
"""

from __future__ import annotations

DEFAULT_GRADED: tuple[str, ...] = (
    "gaussian_blur",
    "contrast",
    "brightness_down",
    "brightness_up",
    "saturation_down",
    "gaussian_noise",
    "iso_noise",
)
