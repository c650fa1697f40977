"""One PNG sheet of an image under every distortion type x level, for checking the library by eye.

Rows are distortion types (registry order: the supplement §A proxies, then KADID #1..#25), columns are
levels 0 (the original) .. 5; every cell is captioned with the level's parameter value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

import attiqa.distortions.kadid  # noqa: F401  (registers the KADID-10k types: DISTORTIONS is complete)
from attiqa.distortions.basic import DISTORTIONS, NUM_LEVELS, apply_distortion, get_distortion
from attiqa.io.atomic import atomic_path
from attiqa.io.images import shrink_longer

_LABEL_W = 230
_CAPTION_H = 16
_HEADER_H = 22
_BG = (255, 255, 255)
_FG = (20, 20, 20)


def _thumbnail(img: Image.Image, side: int) -> Image.Image:
    """Downscale so the longer edge is ``side`` (distortions then act at the thumbnail's scale)."""
    return shrink_longer(img.convert("RGB"), side, Image.Resampling.LANCZOS)


def _fmt(value: float | None) -> str:
    if value is None:
        return "original"
    return f"{value:.4g}"


def gallery_sheet(
    img: Image.Image,
    names: Sequence[str] | None = None,
    thumb: int = 160,
    seed: int = 0,
    on_row: Callable[[int], None] | None = None,
) -> Image.Image:
    """The sheet as a PIL image. The source is first reduced to ``thumb`` px on its longer edge."""
    names = list(DISTORTIONS) if names is None else list(names)
    dists = [get_distortion(n) for n in names]
    small = _thumbnail(img, thumb)
    cw, ch = small.size
    cols = NUM_LEVELS + 1
    width = _LABEL_W + cols * (cw + 4)
    height = _HEADER_H + len(dists) * (ch + _CAPTION_H + 4)
    sheet = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for lv in range(cols):
        draw.text((_LABEL_W + lv * (cw + 4) + 2, 4), f"level {lv}", fill=_FG, font=font)
    for r, d in enumerate(dists):
        y = _HEADER_H + r * (ch + _CAPTION_H + 4)
        what = d.attribute or "-"
        draw.text((4, y + 2), d.name, fill=_FG, font=font)
        draw.text((4, y + 16), f"attribute: {what}", fill=(90, 90, 90), font=font)
        draw.text((4, y + 30), d.parameter[:36], fill=(90, 90, 90), font=font)
        for lv in range(cols):
            x = _LABEL_W + lv * (cw + 4)
            sheet.paste(apply_distortion(small, d.name, lv, seed=seed), (x, y))
            draw.text((x + 2, y + ch + 2), _fmt(d.parameter_at(lv)), fill=_FG, font=font)
        if on_row:
            on_row(1)
    return sheet


def write_gallery(
    img: Image.Image,
    out: str | Path,
    names: Sequence[str] | None = None,
    thumb: int = 160,
    seed: int = 0,
    on_row: Callable[[int], None] | None = None,
) -> Path:
    """Write :func:`gallery_sheet` as a PNG (atomically) and return its path."""
    out = Path(out)
    sheet = gallery_sheet(img, names, thumb=thumb, seed=seed, on_row=on_row)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
