"""The one image loader used by every command.

Why one place: decoding is where real-world files go wrong (rotated phone photos, palette PNGs with
transparency, CMYK JPEGs, 16-bit scans, truncated downloads, decompression bombs). Every command gets
the same behaviour and the same one-line errors from here.

Policy (our choices, documented):
- EXIF orientation is applied, so a portrait phone photo is scored upright.
- Transparency (LA, RGBA, P with a transparent index) is composited over white.
- 16-bit and 32-bit single-channel / multi-channel data are scaled by their type's full range to 8 bits.
- Images larger than ``max_pixels`` (default 200 MP) are refused before decoding (bomb guard).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from attiqa.errors import ImageLoadError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pnm"}
)
DEFAULT_MAX_PIXELS = 200_000_000

# Never let PIL decode a partially downloaded file silently: truncated files are errors.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_FIX_DECODE = "check the file is a complete image (re-download or re-export it), or remove it from the input"


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB following the policy in the module docstring."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img)
        if mode.startswith("I;16"):
            scale = 65535.0
        elif mode == "I":
            # 16-bit PNGs decode to mode "I"; values beyond 8 bits mean a 16-bit source.
            scale = 65535.0 if arr.max(initial=0) > 255 else 255.0
        else:  # float: assume [0, 1] when it fits, otherwise the data range
            hi = float(np.nanmax(arr)) if arr.size else 1.0
            scale = 1.0 if hi <= 1.0 else hi
        arr8 = np.clip(np.nan_to_num(arr.astype(np.float64) / scale) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    # L, 1, CMYK, YCbCr, LAB, HSV: PIL's own conversions are correct for these.
    return img.convert("RGB")


def _load_with_tifffile(path: Path) -> Image.Image:
    """Fallback for TIFFs PIL can't decode (e.g. 16-bit RGB): scale by the dtype's range to 8 bits."""
    import tifffile

    arr = np.asarray(tifffile.imread(str(path)))
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64) / float(np.iinfo(arr.dtype).max)
    else:
        arr = np.clip(arr.astype(np.float64), 0.0, 1.0)
    arr8 = (arr * 255.0 + 0.5).astype(np.uint8)
    if arr8.ndim == 2:
        arr8 = np.stack([arr8] * 3, axis=-1)
    if arr8.shape[-1] == 1:
        arr8 = np.repeat(arr8, 3, axis=-1)
    return Image.fromarray(arr8[..., :3], mode="RGB")


def load_image(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, min_shorter: int | None = None
) -> Image.Image:
    """Decode ``path`` into an upright 8-bit RGB PIL image, or raise :class:`ImageLoadError`.

    ``min_shorter``: the caller will downscale to this shorter edge anyway, so a JPEG may be decoded at
    a reduced scale (1/2, 1/4 or 1/8, in the DCT domain) as long as its shorter edge stays >= it. A
    24-megapixel photo scored at 340 px then decodes ~8x faster in ~1/64 of the memory.
    """
    path = Path(path)
    if not path.exists():
        raise ImageLoadError(path, "file not found", "check the path")
    if path.is_dir():
        raise ImageLoadError(path, "is a folder, not an image file", "pass image files or use a folder input")
    if path.stat().st_size == 0:
        raise ImageLoadError(path, "empty file (0 bytes)", _FIX_DECODE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageLoadError(
                        path,
                        f"{w}x{h} = {w * h / 1e6:.0f} MP exceeds the {max_pixels / 1e6:.0f} MP safety limit",
                        "downscale it first or raise max_pixels if you trust the file",
                    )
                if min_shorter and img.format == "JPEG" and min(w, h) > 2 * min_shorter:
                    s = min_shorter / min(w, h)
                    img.draft("RGB", (max(1, round(w * s)), max(1, round(h * s))))
                img.load()
                img = ImageOps.exif_transpose(img) or img
                return _to_rgb(img)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(path, f"refused as a decompression bomb ({exc})", "downscale it first") from None
    except UnidentifiedImageError:
        if path.suffix.lower() in (".tif", ".tiff"):
            try:
                return _load_with_tifffile(path)
            except Exception as exc:  # noqa: BLE001 - any tifffile failure is a decode failure
                raise ImageLoadError(path, f"not a readable TIFF ({exc})", _FIX_DECODE) from None
        raise ImageLoadError(path, "not a recognised image format", _FIX_DECODE) from None
    except (OSError, SyntaxError, ValueError) as exc:
        if path.suffix.lower() in (".tif", ".tiff"):
            try:
                return _load_with_tifffile(path)
            except Exception:  # noqa: BLE001
                pass
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageLoadError(path, f"cannot decode image ({reason})", _FIX_DECODE) from None


def discover_images(
    inputs: Iterable[str | Path], recursive: bool = True, extensions: Sequence[str] | None = None
) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of image paths.

    Files given explicitly are kept whatever their extension (so the loader can report a bad one);
    folders are searched (recursively by default) for files with an image extension. A missing input
    raises an :class:`ImageLoadError` naming it.
    """
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in (extensions or IMAGE_EXTENSIONS)}
    found: dict[str, Path] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            it = p.rglob("*") if recursive else p.glob("*")
            for f in it:
                if f.is_file() and f.suffix.lower() in exts and not f.name.startswith("."):
                    found.setdefault(str(f), f)
        elif p.exists():
            found.setdefault(str(p), p)
        else:
            raise ImageLoadError(p, "no such file or folder", "check the path")
    return sorted(found.values(), key=lambda q: str(q))
