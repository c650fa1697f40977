"""Shared helpers for benchmarks: a folder of real photos (scikit-image's bundled ones) as JPEG files."""

from __future__ import annotations

import tempfile
from pathlib import Path

from attiqa.demo import DEMO_PHOTOS, skimage_photo


def photo_folder(n: int, size: int = 512) -> Path:
    """``n`` JPEG files cycling through the bundled photos, resized so the shorter edge is ``size``."""
    d = Path(tempfile.mkdtemp(prefix="attiqa-bench-"))
    photos = [skimage_photo(name) for name in DEMO_PHOTOS]
    for i in range(n):
        img = photos[i % len(photos)]
        s = size / min(img.size)
        img = img.resize((round(img.width * s), round(img.height * s)))
        img.save(d / f"img_{i:04d}.jpg", quality=92)
    return d
