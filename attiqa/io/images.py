"""The one image loader used by every command (and :func:`save_image`, the one writer by suffix).

Why one place: decoding is where real-world files go wrong (rotated phone photos, palette PNGs with
transparency, CMYK JPEGs, 16-bit scans, truncated downloads, decompression bombs). Every command gets
the same behaviour and the same one-line errors from here.

Policy (our choices, documented):
- EXIF orientation is applied, so a portrait phone photo is scored upright.
- Transparency (LA, RGBA, P with a transparent index) is composited over white.
- 16-bit and 32-bit single-channel / multi-channel data are scaled by their type's full range to 8 bits.
- Images larger than ``max_pixels`` (default 200 MP) are refused before decoding (bomb guard). PIL's own
  guard (89.5 MP) is raised to the same 200 MP so that ours is the one that applies.
- When the caller resizes to a shorter edge (``min_shorter``), an image whose resized area would exceed
  ``MAX_RESIZED_PIXELS`` is refused before decoding: a 50000x8 strip scaled to a 340-px shorter edge would
  be 722 MP (7 GB of memory). Ordinary aspect ratios are far below it (~430:1 passes at 340 px,
  ~200:1 at 500 px).

Unreadable inputs, one rule for every command (ours): each file or folder that cannot be read is
skipped and reported with what is wrong and the fix — a broken file, a file or a sub-folder without read
permission, a broken link, found in a folder or named on the command line alike. A command fails only
when nothing could be done (see ``attiqa score``). A path that does not exist on the command line is a
typo and stops the command at once (nothing has run yet).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from attiqa.errors import AttiqaError, ConfigError, ImageLoadError
from attiqa.io.atomic import SYMLINK_LOOP, atomic_path
from attiqa.io.formats import RAW_DEVELOP, RAW_EXTENSIONS, RAW_FIX, SAVE_FORMATS, SAVE_OPTIONS, format_list

# What a folder search takes: every format Pillow reads that photos come in (JPEG under its other names:
# a browser's .jfif download; JPEG 2000, AVIF), and HEIC / HEIF — which Pillow cannot decode — so a phone's
# photos are listed as skipped with the fix instead of left out without a word.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}
    | {".pnm", ".jp2", ".j2k", ".avif", ".heic", ".heif"}
)
DEFAULT_MAX_PIXELS = 200_000_000
# the fix an image over max_pixels is skipped with: no command has an option to raise the limit
PIXELS_FIX = "downscale it below the limit first (the limit guards memory: no command option raises it)"
MAX_RESIZED_PIXELS = 50_000_000

# Never let PIL decode a partially downloaded file silently: truncated files are errors.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# PIL warns from 89.5 MP and refuses from twice that; ours (max_pixels) is the documented limit.
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < DEFAULT_MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS

_FIX_DECODE = "the file is damaged or not really an image: re-export or re-download it, or leave it out"
_FIX_PERMISSION = "give yourself read permission (chmod u+r on the file, u+rx on its folders) or leave it out"
_FIX_LOOP = "point the link at the real file or folder (ln -sfn TARGET LINK) or delete it"
_FIX_IO = (
    "the disk or network share failed to deliver it: check the drive, copy the file again, or leave it out"
)


def read_error(path: str | Path, exc: OSError) -> ImageLoadError:
    """A one-line error for a file that could not be *read* (as opposed to decoded): its reason and fix,
    also for readers of other files (raws: :mod:`isp_env.raw`), so an ``OSError`` reads the same anywhere."""
    path = Path(path)
    if exc.errno == errno.ELOOP:  # `a.png -> a.png`: was "the disk … failed to deliver it"
        return ImageLoadError(path, SYMLINK_LOOP, _FIX_LOOP)
    if isinstance(exc, FileNotFoundError):
        broken = path.is_symlink()
        return ImageLoadError(
            path, "broken link (its target is missing)" if broken else "file not found", "check the path"
        )
    if isinstance(exc, PermissionError):
        return ImageLoadError(path, "permission denied", _FIX_PERMISSION)
    return ImageLoadError(path, f"cannot read the file ({exc.strerror or type(exc).__name__})", _FIX_IO)


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


def _load_with_tifffile(path: Path, max_pixels: int) -> Image.Image:
    """Fallback for TIFFs PIL can't decode (e.g. 16-bit RGB): scale by the dtype's range to 8 bits."""
    import tifffile

    with tifffile.TiffFile(str(path)) as tif:
        shape = tif.series[0].shape
        pixels = int(np.prod([d for d in shape if d not in (1, 3, 4)] or [1]))
        if pixels > max_pixels:  # the same bomb guard as for PIL, before reading the data
            raise ImageLoadError(
                path,
                f"{pixels / 1e6:.0f} MP exceeds the {max_pixels / 1e6:.0f} MP safety limit",
                PIXELS_FIX,
            )
        arr = np.asarray(tif.asarray())
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


def _tiff_fallback(path: Path, max_pixels: int) -> tuple[Image.Image | None, Exception | None]:
    """For a file PIL could not decode: the image from :func:`_load_with_tifffile` when it is named
    ``.tif``/``.tiff``, else None and tifffile's error (None when not a TIFF). Its size refusal is raised."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None, None
    try:
        return _load_with_tifffile(path, max_pixels), None
    except ImageLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any tifffile failure is a decode failure
        return None, exc


# (path, size, mtime) -> key, per process; least recently used first. Bounded so a long-lived process that
# walks millions of files (a service, a big `attiqa eval`) does not grow without limit.
_CONTENT_KEYS: OrderedDict[tuple[str, int, int], str] = OrderedDict()
CONTENT_KEY_MEMO = 65_536


def content_key(path: str | Path) -> str:
    """An image's identity for every cache (features, scores): ``sha256:<hex>`` of the file's bytes, so a
    copied, moved or re-extracted dataset keeps its caches and a changed file never hits a stale entry.
    Hashing is cheap next to a forward pass; the digest is remembered per (path, size, mtime) so a run
    reads each file once. Raises OSError for an unreadable file."""
    from attiqa.io.hashes import sha256_of

    p = Path(path)
    st = p.stat()
    stamp = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    key = _CONTENT_KEYS.get(stamp)
    if key is None:
        key = f"sha256:{sha256_of(p)}"
        _CONTENT_KEYS[stamp] = key
        if len(_CONTENT_KEYS) > CONTENT_KEY_MEMO:
            _CONTENT_KEYS.popitem(last=False)
    else:
        _CONTENT_KEYS.move_to_end(stamp)
    return key


def load_image(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, min_shorter: int | None = None
) -> Image.Image:
    """Decode ``path`` into an upright 8-bit RGB PIL image, or raise :class:`ImageLoadError`.

    ``min_shorter``: the caller will resize to this shorter edge anyway, so a JPEG may be decoded at
    a reduced scale (1/2, 1/4 or 1/8, in the DCT domain) as long as its shorter edge stays >= it. A
    24-megapixel photo scored at 340 px then decodes at 1/8 scale: in ~1/64 of the memory, and much faster
    (docs/default_model.md, "Implementation speed notes"). It also bounds
    the work: an image whose resized area would exceed ``MAX_RESIZED_PIXELS`` is refused.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise read_error(path, exc) from None
    if stat.S_ISDIR(st.st_mode):
        try:
            with os.scandir(path):
                pass
        except OSError as exc:  # listed by discover_images because it could not be searched
            fix = _FIX_IO if not isinstance(exc, PermissionError) else "chmod u+rx it, or leave it out"
            reason = read_error(path, exc).reason
            raise ImageLoadError(
                path, f"folder cannot be searched ({reason}): its images were skipped", fix
            ) from None
        raise ImageLoadError(path, "is a folder, not an image file", "pass image files or use a folder input")
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the reader; both said "empty file (0 bytes)"
        raise ImageLoadError(path, "not a regular file (a pipe, socket or device)", "pass image files")
    if st.st_size == 0:
        raise ImageLoadError(path, "empty file (0 bytes)", _FIX_DECODE)
    if (raw := _camera_raw(path)) is not None:
        raise raw
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; opened here so read errors are told apart
    except OSError as exc:
        raise read_error(path, exc) from None
    try:
        with fh, warnings.catch_warnings():
            # PIL's bomb warning is ours to judge: the limit is max_pixels, checked right below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fh) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise _too_large(path, w, h, max_pixels)
                if min_shorter and min(w, h) > 0:
                    s = min_shorter / min(w, h)
                    if w * h * s * s > MAX_RESIZED_PIXELS:
                        raise ImageLoadError(
                            path,
                            f"{w}x{h} is too elongated ({max(w, h) / min(w, h):.0f}:1): scaled to a "
                            f"{min_shorter}-px shorter side it would be {w * h * s * s / 1e6:.0f} MP, over "
                            f"the {MAX_RESIZED_PIXELS / 1e6:.0f} MP limit",
                            "crop it into parts of a usual aspect ratio, or leave it out",
                        )
                if min_shorter and img.format == "JPEG" and min(w, h) > 2 * min_shorter:
                    s = min_shorter / min(w, h)
                    img.draft("RGB", (max(1, round(w * s)), max(1, round(h * s))))
                img.load()
                img = ImageOps.exif_transpose(img) or img
                return _to_rgb(img)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:  # beyond twice PIL's guard: refused inside Image.open
        size = re.search(r"\((\d+) pixels\)", str(exc))
        mp = f"{int(size.group(1)) / 1e6:.0f} MP " if size else ""
        raise ImageLoadError(
            path,
            f"{mp}exceeds the {min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or 0)) / 1e6:.0f} MP safety limit",
            "downscale it first",
        ) from None
    except UnidentifiedImageError:
        tiff, tiff_error = _tiff_fallback(path, max_pixels)
        if tiff is not None:
            return tiff
        if tiff_error is not None:
            raise ImageLoadError(path, f"not a readable TIFF ({tiff_error})", _FIX_DECODE) from None
        raise _unrecognised(path) from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # the disk failed, not the data
            raise read_error(path, exc) from None
        tiff, _ = _tiff_fallback(path, max_pixels)
        if tiff is not None:
            return tiff
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageLoadError(path, f"cannot decode image ({reason})", _FIX_DECODE) from None


def _too_large(path: Path, w: int, h: int, max_pixels: int) -> ImageLoadError:
    return ImageLoadError(
        path, f"{w}x{h} = {w * h / 1e6:.0f} MP exceeds the {max_pixels / 1e6:.0f} MP safety limit", PIXELS_FIX
    )


def _camera_raw(path: str | Path) -> ImageLoadError | None:
    """A camera raw, known by its suffix, as the error that refuses it (None for any other file): Pillow
    reads a NEF's first IFD, a thumbnail, or fails on a DNG as "not an image", so it is refused unread."""
    suffix = Path(path).suffix
    if suffix.lower() not in RAW_EXTENSIONS:
        return None
    return ImageLoadError(path, f"a camera raw ({suffix}), not a rendered image", RAW_FIX)


def _unrecognised(path: Path) -> ImageLoadError:
    """A file Pillow did not recognise (and no TIFF): a photo format this installation cannot decode, named
    with the fix, or "not a recognised image format"."""
    kind = _undecodable_kind(path)
    if kind is not None:
        example = " (e.g. heif-convert IMG.heic IMG.jpg)" if kind.startswith("HEIC") else ""
        fix = f"convert it to JPEG or PNG{example}, or leave it out"
        return ImageLoadError(path, f"a {kind} image, which this installation cannot decode", fix)
    return ImageLoadError(path, "not a recognised image format", _FIX_DECODE)


def header_problem(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, read_header: bool = True
) -> str | None:
    """What stops ``path`` from loading that shows without decoding it — its file and (``read_header``) its
    header — said as :func:`load_image` says it, with the fix ("permission denied — give yourself read
    permission …"), or None: the check of a whole dataset before a long job (`attiqa eval`). A missing file
    is "not found". Damage after a valid header shows only when decoded."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return "broken link (its target is missing)" if path.is_symlink() else "not found"
    except OSError as exc:
        return str(read_error(path, exc))[len(str(path)) + 2 :]
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not an image file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a pipe, socket or device)"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    if (raw := _camera_raw(path)) is not None:
        return f"{raw.reason} — {raw.fix}"
    if not read_header:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with open(path, "rb") as fh, Image.open(fh) as img:
                w, h = img.size
        err = _too_large(path, w, h, max_pixels) if w * h > max_pixels else None
    except UnidentifiedImageError:  # a TIFF Pillow cannot identify: the loader's tifffile reads it
        err = None if path.suffix.lower() in (".tif", ".tiff") else _unrecognised(path)
    except OSError as exc:  # the disk or the permissions, not the data (Pillow's own errors have no errno)
        err = read_error(path, exc) if exc.errno is not None else _header_error(path, exc)
    except Image.DecompressionBombError:
        err = ImageLoadError(path, f"exceeds the {max_pixels / 1e6:.0f} MP safety limit", PIXELS_FIX)
    except Exception as exc:  # noqa: BLE001 - any other failure to read the header
        err = _header_error(path, exc)
    return None if err is None else str(err)[len(err.path) + 2 :]


def _header_error(path: Path, exc: Exception) -> ImageLoadError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ImageLoadError(path, f"cannot read its header ({reason})", _FIX_DECODE)


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}


def _undecodable_kind(path: Path) -> str | None:
    """The format a file Pillow did not recognise says it is in its first bytes, when that is a photo format
    this Pillow lacks a decoder for (HEIC always; AVIF, JPEG 2000 where Pillow was built without them):
    "damaged or not really an image" would send the user to re-download a good file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    if head[4:8] == b"ftyp":  # ISO base media file: the major brand names the format
        brand = head[8:12]
        return "HEIC / HEIF" if brand in _HEIF_BRANDS else "AVIF" if brand in (b"avif", b"avis") else None
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "JPEG 2000"
    return None


def _walk(folder: Path, recursive: bool, exts: set[str], found: dict[str, Path]) -> None:
    """Add ``folder``'s images to ``found``; a sub-folder that cannot be listed is added itself, so the
    command reports it (see :func:`load_image`) instead of skipping its images without a word. A linked
    sub-folder is searched like a real one (it was skipped without a word: a folder of linked dataset
    folders had "no images"), each real folder once, so a link cycle ends."""

    def unreadable(exc: OSError) -> None:
        p = Path(exc.filename) if exc.filename else folder
        found.setdefault(str(p), p)

    seen: set[str] = set()  # linked sub-folders are followed (a linked dataset folder), each real folder once
    for top, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a link back up (a cycle) or a second link to the same folder
            dirs.clear()
            continue
        seen.add(real)
        if not recursive:
            dirs.clear()
        for name in files:
            f = Path(top) / name
            if f.suffix.lower() not in exts or name.startswith("."):
                continue
            if f.is_file() or (f.is_symlink() and not f.exists()):  # a broken link is reported; a FIFO is not
                found.setdefault(os.path.join(real, name), f)


def discover_images(
    inputs: Iterable[str | Path], recursive: bool = True, extensions: Sequence[str] | None = None
) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of image paths: a file named twice —
    `photos/` and `photos/a.jpg`, or `/home/me/photos/a.jpg` from elsewhere — is listed once, as first
    found (its folder's real path and its own name: a link to a file keeps its own name and row).

    Files given explicitly are kept whatever their extension (so the loader can report a bad one);
    folders are searched (recursively by default) for files with an image extension. What cannot be
    read — a sub-folder that cannot be listed, a broken link — is kept too, so the command skips and
    reports it like any other bad item. A path that does not exist raises an :class:`ImageLoadError`
    naming it (a typo: better said before a long job starts).
    """
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in (extensions or IMAGE_EXTENSIONS)}
    found: dict[str, Path] = {}
    for item in inputs:
        p = Path(item)
        try:
            is_dir = p.is_dir()
            exists = is_dir or p.exists() or p.is_symlink()
        except OSError:  # e.g. inside a folder without search permission: the loader says what is wrong
            is_dir, exists = False, True
        if is_dir:
            _walk(p, recursive, exts, found)
        elif exists:
            found.setdefault(os.path.join(os.path.realpath(p.parent), p.name), p)
        else:
            raise ImageLoadError(p, "no such file or folder", "check the path")
    return sorted(found.values(), key=lambda q: str(q))


def require_images(inputs: Sequence[str | Path]) -> list[Path]:
    """:func:`discover_images` for a command that needs at least one image: none is one line naming the
    inputs (score, label and make-distorted say the same)."""
    files = discover_images(inputs)
    if not files:
        raise no_images(inputs)
    return files


def no_images(inputs: Sequence[str | Path]) -> AttiqaError:
    """The one line for inputs that hold no image: a folder of a camera's raws says so ("pass image files"
    alone does not say why none counted)."""
    where = ", ".join(map(str, inputs))
    raws = discover_images(inputs, extensions=sorted(RAW_EXTENSIONS))
    if raws:
        return AttiqaError(f"no images found in {where}, only {len(raws)} camera raw(s) (e.g. {raws[0].name})"
                           f" — develop them {RAW_DEVELOP}")  # fmt: skip
    return AttiqaError(f"no images found in {where} — pass image files or folders")


def save_format(path: str | Path) -> str:
    """The PIL format :func:`save_image` writes for ``path``'s suffix; an unknown suffix is a one-line
    :class:`ConfigError` naming the file — call it to check an output before the work that makes it."""
    fmt = SAVE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: unknown output format — end the file name in {format_list()}")
    return fmt


def shrink_longer(img: Image.Image, side: int, resample: Image.Resampling) -> Image.Image:
    """``img`` downscaled so its longer edge is ``side`` (aspect kept); returned as it is when it already
    fits. The one rule behind ``degrade`` / ``make-distorted``'s ``--max-side`` and the gallery thumbnails;
    each keeps its own ``resample``, so their files do not change."""
    s = side / max(img.size)
    if s >= 1:
        return img
    return img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), resample)


_END_MARKERS = {".png": b"IEND\xaeB`\x82", ".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9"}


def output_damage(path: str | Path) -> str | None:
    """Why an image an earlier run wrote cannot be kept by a rerun, else None (whole, or not there): empty,
    or cut short — a copy stopped midway, a full disk. PNG and JPEG by their end marker (a few bytes read, so
    a rerun over thousands of outputs stays fast), other formats by a decode."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return "an empty file"
    marker = _END_MARKERS.get(path.suffix.lower())
    if marker is None:
        try:
            load_image(path)
        except ImageLoadError as exc:
            return str(exc).removeprefix(f"{path}: ")
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, size - len(marker)))
            tail = fh.read()
    except OSError:  # no read permission: kept, and the loader reports it where it is read
        return None
    return None if tail == marker else "cut short (its end is missing)"


def save_image(img: Image.Image, path: str | Path) -> Path:
    """Write ``img`` atomically in the format its suffix names, with :data:`SAVE_OPTIONS` (JPEG 95,
    lossless WebP). An unknown suffix is refused (:func:`save_format`) before anything is written."""
    path = Path(path)
    fmt = save_format(path)
    options = SAVE_OPTIONS.get(fmt, {})
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt, **options)
    return path
