"""Text on the PNG sheets (contact sheet, distortion gallery): Pillow's own font, and text fitted to a box
— wrapped at spaces and, when even that leaves text over, ended in "..." — so a caption is never cut off
mid-word at a column's edge. No fonts to install."""

from __future__ import annotations

import unicodedata

from PIL import ImageDraw, ImageFont

from attiqa.progress import shown_name

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont
ELLIPSIS = "..."  # ASCII: Pillow's bitmap fallback font has no "…"


def font(size: int | None = None) -> Font:
    """Pillow's default font at ``size`` px (its own default size when None)."""
    if size is None:
        return ImageFont.load_default()
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def drawable_name(name: object) -> str:
    """A file name in the letters Pillow's default font has (ASCII): accents dropped (``café`` -> ``cafe``),
    any other character ``?``, bytes that are not UTF-8 and control characters as escapes
    (:func:`attiqa.progress.shown_name`). The font draws an empty box for each character it lacks: a sheet
    showed ``caf▯_▯▯▯.jpg`` for ``café_ü日本.jpg``."""
    out = []
    for ch in shown_name(name):
        if ch.isascii():
            out.append(ch)
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isascii())
            out.append(base or "?")
    return "".join(out)


def text_right(draw: ImageDraw.ImageDraw, text: str, font: Font) -> float:
    """How far right of its anchor ``text`` inks (textbbox, not the advance width: what must fit)."""
    return float(draw.textbbox((0, 0), text, font=font)[2]) if text else 0.0


def fit_lines(draw: ImageDraw.ImageDraw, text: str, font: Font, width: float, max_lines: int) -> list[str]:
    """``text`` wrapped at spaces into at most ``max_lines`` lines of at most ``width`` px (a word longer than
    a line is broken); when text is left over, the last line ends in "..."."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        joined = f"{line} {word}" if line else word
        if text_right(draw, joined, font) <= width:
            line = joined
            continue
        if line:
            lines.append(line)
        line = word
        while len(line) > 1 and text_right(draw, line, font) > width:
            cut = 1  # at least one character a line, however narrow the box
            while cut < len(line) and text_right(draw, line[: cut + 1], font) <= width:
                cut += 1
            lines.append(line[:cut])
            line = line[cut:]
    if line:
        lines.append(line)
    if max_lines <= 0:
        return []
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and text_right(draw, last.rstrip() + ELLIPSIS, font) > width:
        last = last[:-1]
    return [*lines[: max_lines - 1], last.rstrip() + ELLIPSIS]


def draw_fitted(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font: Font,
    width: float,
    max_lines: int,
    fill: str | tuple[int, int, int],
    line_height: int = 12,
    outline: str | tuple[int, int, int] | None = None,
) -> int:
    """Draw ``text`` from ``xy`` in lines fitted to ``width`` (:func:`fit_lines`), ``line_height`` apart, so
    a caption stays in its panel however long; returns the number of lines drawn. ``outline``: a 1-px
    outline of that colour, for a caption on a photo (yellow alone was unreadable on a bright one)."""
    lines = fit_lines(draw, text, font, width, max_lines)
    for i, line in enumerate(lines):
        draw.text(
            (xy[0], xy[1] + line_height * i), line, fill=fill, font=font,
            stroke_width=1 if outline is not None else 0, stroke_fill=outline,
        )  # fmt: skip
    return len(lines)
