"""Graded degradation sets: every source photo under every chosen distortion at chosen levels.

Widens an unlabelled photo collection so that the five attributes vary (used by the demo and by the
default-model recipe before pseudo-labelling). Idempotent and resumable: existing outputs are skipped,
each file is written atomically, unreadable sources are skipped and reported.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from attiqa.distortions.basic import apply_distortion, get_distortion
from attiqa.errors import ImageLoadError
from attiqa.io.atomic import atomic_path
from attiqa.io.images import load_image

DEFAULT_GRADED: tuple[str, ...] = (
    "gaussian_blur",
    "contrast",
    "brightness_down",
    "brightness_up",
    "saturation_down",
    "gaussian_noise",
    "iso_noise",
)


@dataclass
class GradedResult:
    written: list[Path] = field(default_factory=list)
    existing: list[Path] = field(default_factory=list)
    failed: list[ImageLoadError] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return sorted(self.written + self.existing)


def _save(img: Image.Image, path: Path, fmt: str) -> None:
    with atomic_path(path) as tmp:
        if fmt == "jpg":
            img.save(tmp, format="JPEG", quality=95)
        else:
            img.save(tmp, format="PNG")


def write_graded_set(
    sources: Sequence[Path],
    out_dir: str | Path,
    distortions: Sequence[str] = DEFAULT_GRADED,
    levels: Sequence[int] = (1, 3, 5),
    include_original: bool = True,
    fmt: str = "png",
    max_side: int | None = None,
    variants_per_source: int | None = None,
    seed: int = 0,
    on_item: Callable[[int], None] | None = None,
) -> GradedResult:
    """Write ``<stem>.<fmt>`` and ``<stem>__<distortion>_<level>.<fmt>`` for every source into ``out_dir``.

    ``max_side`` (optional) downsizes big sources first, so the distortions act at a known scale. The
    seed of each distortion is the level, so a rerun reproduces the same files. ``variants_per_source``
    keeps only that many (distortion, level) combinations per source, drawn at random (seeded by
    ``seed`` and the file name), for collections too large to multiply by every combination.
    """
    for d in distortions:
        get_distortion(d)  # fail early with a clear message on a typo
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = GradedResult()
    stems: dict[str, int] = {}
    for src in sources:
        src = Path(src)
        stem = src.stem
        if stem in stems:  # same file name in different folders
            stems[stem] += 1
            stem = f"{stem}_{stems[stem]}"
        else:
            stems[stem] = 0
        combos = [(d, lvl) for d in distortions for lvl in levels]
        if variants_per_source is not None and variants_per_source < len(combos):
            rng = random.Random(f"{seed}:{stem}")
            combos = sorted(rng.sample(combos, variants_per_source))
        targets = [(None, 0, out_dir / f"{stem}.{fmt}")] if include_original else []
        targets += [(d, lvl, out_dir / f"{stem}__{d}_{lvl}.{fmt}") for d, lvl in combos]
        todo = [t for t in targets if not t[2].exists()]
        res.existing.extend(t[2] for t in targets if t[2].exists())
        if todo:
            try:
                img = load_image(src)
            except ImageLoadError as exc:
                res.failed.append(exc)
                if on_item:
                    on_item(1)
                continue
            if max_side and max(img.size) > max_side:
                s = max_side / max(img.size)
                img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BICUBIC)
            for dist, lvl, path in todo:
                out = img if dist is None else apply_distortion(img, dist, lvl, seed=lvl)
                _save(out, path, fmt)
                res.written.append(path)
        if on_item:
            on_item(1)
    return res
