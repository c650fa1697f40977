"""A PNG contact sheet of scored photos: thumbnail, MOS, and one bar per attribute.

So a person can check at a glance that the numbers mean what they say (the blurry photo has the short
sharpness bar). Drawn with Pillow only: no plotting backend or fonts to install.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, PngImagePlugin

from attiqa.attributes import display_name
from attiqa.drawing import Font, drawable_name, fit_lines, font, text_right
from attiqa.errors import ImageLoadError
from attiqa.io.atomic import atomic_path
from attiqa.io.images import load_image

SHEET_MARK = ("Software", "attiqa contact sheet")  # a PNG text chunk: the sheet is known as ours on a rerun
BAR_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3")


def contact_sheet(
    rows: Sequence[dict],
    out: str | Path,
    bars: Sequence[str],
    headline: str | None = "mos",
    thumb: int = 220,
    per_row: int = 4,
    headline_range: tuple[float, float] | None = None,
) -> Path:
    """Write a sheet for ``rows`` (dicts with ``image`` and score columns) to ``out`` (PNG, atomic).

    ``bars`` are columns with values in [0, 1] drawn as bars; ``headline`` (e.g. ``mos``) is printed
    above them, with ``headline_range`` shown as "range lo-hi" when given (ASCII: the font has no en dash).
    """
    n = len(rows)
    if n == 0:
        raise ValueError("nothing to draw")
    bar_h, pad = 16, 10
    text_h = 24 if headline else 0
    cell_w = thumb + 2 * pad
    cell_h = thumb + text_h + len(bars) * (bar_h + 4) + 3 * pad + 16
    cols = min(per_row, n)
    sheet = Image.new("RGB", (cols * cell_w, math.ceil(n / cols) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    small, big = font(12), font(16)
    labels, label_w = bar_labels(draw, bars, small, thumb)
    for i, row in enumerate(rows):
        x0, y0 = (i % cols) * cell_w + pad, (i // cols) * cell_h + pad
        try:
            img = load_image(row["image"], min_shorter=thumb)
            img.thumbnail((thumb, thumb))
            sheet.paste(img, (x0 + (thumb - img.width) // 2, y0 + (thumb - img.height) // 2))
        except ImageLoadError:
            draw.rectangle([x0, y0, x0 + thumb, y0 + thumb], outline="#999999")
            draw.text((x0 + 8, y0 + thumb // 2), "unreadable", fill="#999999", font=small)
        y = y0 + thumb + 4
        file_name = fit_lines(
            draw, drawable_name(Path(row["image"]).name), small, thumb, 1
        )  # measured, not cut at N characters
        draw.text((x0, y), "".join(file_name), fill="#333333", font=small)
        y += 16
        if headline:
            v = row.get(headline)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                txt = f"{headline.upper()} n/a"
            else:
                # one decimal for a 0-100 MOS; two below 10 (a 0-1 score, a 0-5 MOS): "0.5" hid 0.54 vs 0.46
                txt = f"{headline.upper()} {v:.1f}" if abs(v) >= 10 else f"{headline.upper()} {v:.2f}"
                if headline_range:
                    txt += f"  (range {headline_range[0]:.0f}-{headline_range[1]:.0f})"
            draw.text((x0, y), "".join(fit_lines(draw, txt, big, thumb, 1)), fill="black", font=big)
            y += text_h
        bar_w = thumb - label_w
        for j, name in enumerate(bars):
            v = float(row.get(name, float("nan")))
            label = "".join(fit_lines(draw, labels[j], small, label_w - 4, 1))
            draw.text((x0, y + 1), label, fill="#333333", font=small)
            bx = x0 + label_w
            draw.rectangle([bx, y, bx + bar_w, y + bar_h], fill="#EEEEEE")
            if not math.isnan(v):
                draw.rectangle(
                    [bx, y, bx + round(bar_w * min(max(v, 0.0), 1.0)), y + bar_h],
                    fill=BAR_COLOURS[j % len(BAR_COLOURS)],
                )
                draw.text((bx + bar_w - 30, y + 1), f"{v:.2f}", fill="black", font=small)
            y += bar_h + 4
    out = Path(out)
    mark = PngImagePlugin.PngInfo()
    mark.add_text(*SHEET_MARK)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG", pnginfo=mark)
    return out


def bar_labels(
    draw: ImageDraw.ImageDraw, bars: Sequence[str], small: Font, thumb: int
) -> tuple[list[str], int]:
    """The bars' labels and the width they get: the attributes' display names in 92 px, as ever; names that
    share a prefix (ExIQA's 25 ``kadid_…`` distortions) without it, and up to 60 % of the cell for the
    longest (in 92 px they read "kadid_color_..." four times over)."""
    names = [display_name(b) for b in bars]
    cut = os.path.commonprefix(names).rfind("_") + 1 if len(names) > 1 else 0
    labels = [name[cut:] for name in names]
    widest = max((text_right(draw, label, small) for label in labels), default=0.0)
    return labels, int(min(max(92, widest + 6), 0.6 * thumb))


def is_contact_sheet(path: str | Path) -> bool:
    """Whether ``path`` is a sheet :func:`contact_sheet` wrote (its text chunk), not a photo of that name."""
    try:
        with Image.open(path) as img:
            return bool(img.format == "PNG" and img.info.get(SHEET_MARK[0]) == SHEET_MARK[1])
    except (OSError, ValueError, SyntaxError):
        return False


def sheet_for_scores(
    rows: Sequence[dict],
    columns: Sequence[str],
    path: str | Path,
    score_range: tuple[float, float] | None = None,
    limit: int = 48,
) -> Path:
    """Sheet of the first ``limit`` scored rows: headline = the first column, bars = the others
    (``score_range`` is printed beside a ``mos`` headline)."""
    head, bars = columns[0], list(columns[1:])
    return contact_sheet(
        list(rows)[:limit], path, bars, headline=head, headline_range=score_range if head == "mos" else None
    )
