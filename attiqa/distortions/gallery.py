"""One PNG sheet of an image under every distortion type x level, for checking the library by eye.

Rows are distortion types (registry order: the supplement §A proxies, then KADID #1..#25), columns are
levels 0 (the original) .. 5; every cell is captioned with the level's parameter value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw

import attiqa.distortions.kadid  # noqa: F401  (registers the KADID-10k types: DISTORTIONS is complete)
from attiqa.distortions.basic import DISTORTIONS, NUM_LEVELS, Distortion, apply_distortion, get_distortion
from attiqa.drawing import Font, fit_lines, font, text_right
from attiqa.io.atomic import atomic_path
from attiqa.io.images import shrink_longer

LABEL_W = 230  # the left-hand column: name, attribute, parameter
LABEL_PAD = 4  # its text's margin, left and right
LINE_H = 14  # one line of the left-hand text
CAPTION_H = 16
HEADER_H = 22
_BG = (255, 255, 255)
_FG = (20, 20, 20)


def _thumbnail(img: Image.Image, side: int) -> Image.Image:
    """Downscale so the longer edge is ``side`` (distortions then act at the thumbnail's scale)."""
    return shrink_longer(img.convert("RGB"), side, Image.Resampling.LANCZOS)


def _fmt(value: float | None) -> str:
    if value is None:
        return "original"
    return f"{value:.4g}"


def row_height(thumb_h: int) -> int:
    """A row's cells and their level captions (the height the left-hand text must fit in)."""
    return thumb_h + CAPTION_H


def label_lines(
    draw: ImageDraw.ImageDraw, d: Distortion, font: Font, height: int
) -> list[tuple[str, tuple[int, int, int]]]:
    """The left-hand text of ``d``'s row, ``height`` px tall, as (line, colour), one every LINE_H px from the
    row's top + 2: the name, the attribute, then the parameter wrapped to the column (it was cut at 36
    characters: "factor on the deviation from the cha"), ended in "..." only when the row has no more room."""
    width = LABEL_W - 2 * LABEL_PAD
    ink = int(draw.textbbox((0, 0), "Ayg", font=font)[3])  # a line's ink below its anchor
    room = max(1, (height - 2 - ink) // LINE_H + 1)
    grey = (90, 90, 90)
    out = [(line, _FG) for line in fit_lines(draw, d.name, font, width, 1)]
    out += [
        (line, grey) for line in fit_lines(draw, f"attribute: {d.attribute or '-'}", font, width, room - 1)
    ]
    out += [(line, grey) for line in fit_lines(draw, d.parameter, font, width, room - len(out))]
    return out[:room]


def column_width(thumb_w: int, texts: Sequence[str], font: Font) -> int:
    """A level column: the thumbnail's width, or wider when a caption ("level 0", "original", a parameter)
    is: a small --thumb (or a tall narrow photo) drew each caption over the next column's."""
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return max(thumb_w, *(math.ceil(text_right(probe, t, font)) + 4 for t in texts))


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
    text_font = font()
    heads = [f"level {lv}" for lv in range(cols)]
    captions = [[_fmt(d.parameter_at(lv)) for lv in range(cols)] for d in dists]
    col_w = column_width(cw, [*heads, *(c for row in captions for c in row)], text_font)
    width = LABEL_W + cols * (col_w + 4)
    height = HEADER_H + len(dists) * (row_height(ch) + 4)
    sheet = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(sheet)
    for lv, head in enumerate(heads):
        draw.text((LABEL_W + lv * (col_w + 4) + 2, 4), head, fill=_FG, font=text_font)
    for r, d in enumerate(dists):
        y = HEADER_H + r * (row_height(ch) + 4)
        for i, (line, colour) in enumerate(label_lines(draw, d, text_font, row_height(ch))):
            draw.text((LABEL_PAD, y + 2 + i * LINE_H), line, fill=colour, font=text_font)
        for lv in range(cols):
            x = LABEL_W + lv * (col_w + 4)
            sheet.paste(apply_distortion(small, d.name, lv, seed=seed), (x + (col_w - cw) // 2, y))
            draw.text((x + 2, y + ch + 2), captions[r][lv], fill=_FG, font=text_font)
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
