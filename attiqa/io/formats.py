"""The image formats the commands write, by file suffix: one table for :func:`attiqa.io.images.save_image`
and for every message and ``--help`` that lists them (plain data: ``--help`` reads it without PIL)."""

from __future__ import annotations

from attiqa.errors import ConfigError

# Output formats by suffix (what PIL writes without extra plugins).
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                ".tif": "TIFF", ".tiff": "TIFF"}  # fmt: skip
# JPEG at quality 95 (near-lossless) and lossless WebP: a written render or distortion is judged, not PIL's
# default compression (WebP's is lossy, below JPEG 95).
SAVE_OPTIONS: dict[str, dict[str, int]] = {"JPEG": {"quality": 95}, "WEBP": {"lossless": 1}}
# Camera raw files by suffix: what isp_env develops, and what attiqa's loader names as such (it reads
# rendered images only), so a raw is told "develop it first", not "damaged".
RAW_EXTENSIONS: frozenset[str] = frozenset(
    {".dng", ".cr2", ".cr3", ".crw", ".qtk", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf",
     ".pef", ".srw", ".raw", ".rwl", ".3fr", ".erf", ".kdc", ".dcr", ".mos", ".mrw", ".x3f", ".iiq"}
)  # fmt: skip
RAW_DEVELOP = "to JPEG, PNG or TIFF first (`isp-tune render RAW -o out.png`, or any raw converter)"
RAW_FIX = f"develop it {RAW_DEVELOP}, or leave it out"
_NOTES = {"PNG": "lossless", "JPEG": "quality 95", "WEBP": "lossless"}


def format_list(dot: str = ".") -> str:
    """The output formats as a message lists them: ``.png (lossless), .jpg/.jpeg (quality 95), ...``
    (``dot=""`` for an option that takes the bare name, ``--fmt png``)."""
    by_format: dict[str, list[str]] = {}
    for suffix, fmt in SAVE_FORMATS.items():
        by_format.setdefault(fmt, []).append(dot + suffix[1:])
    return ", ".join(
        "/".join(names) + (f" ({_NOTES[fmt]})" if fmt in _NOTES else "") for fmt, names in by_format.items()
    )


def format_name(fmt: str) -> str:
    """A format given by name (``degrade --fmt``: ``png``, ``.webp``) without its dot; an unknown one is a
    one-line :class:`ConfigError` listing the formats."""
    name = fmt.lstrip(".")
    if f".{name.lower()}" not in SAVE_FORMATS:
        raise ConfigError(f"--fmt {fmt!r}: not an output format — use {format_list(dot='')}")
    return name
