"""Read a camera raw with rawpy (LibRaw) into a :class:`RawImage`: Bayer mosaic plus the ISP's metadata.

Black levels are looked up per *colour index* (``raw_colors_visible`` -> ``black_level_per_channel``), never
by position, so any of the four 2x2 Bayer layouts is handled the same way; a DNG whose black level repeats
in a larger pattern, or varies by row and column (BlackLevelDeltaV / H), neither of which rawpy gives, has
the rest of it subtracted from its tags (:func:`dng_black`). Fujifilm's 6x6 X-Trans filter is read as such
(:data:`isp_env.dng.XTRANS`); other sensors (Foveon, CMYG) and
files LibRaw can't read raise :class:`RawReadError`, a one-line error naming the file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from attiqa.errors import AttiqaError
from attiqa.io.formats import RAW_EXTENSIONS  # one list: attiqa's loader names raws too

if TYPE_CHECKING:
    from rawpy import RawPy
    from tifffile import TiffTag

_CHANNEL = {"R": 0, "G": 1, "B": 2}


class RawReadError(AttiqaError):
    """A raw file can't be read or is not a Bayer raw."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")

    # survive SubprocVecEnv pickling
    def __reduce__(self) -> tuple[type[RawReadError], tuple[str, str]]:
        return (type(self), (self.path, self.reason))


@dataclass
class RawImage:
    """A raw frame (2x2 Bayer or 6x6 X-Trans colour filter) and its metadata.

    Attributes:
        mosaic: (H, W) uint16 sensor values (visible area).
        cfa: (n, n) RGB channel (0 = R, 1 = G, 2 = B) of each position of the repeating tile (n = 2: Bayer,
            6: X-Trans).
        black: (n, n) black level of each tile position (from its colour index).
        white: white (saturation) level.
        wb_gains: (3,) camera white-balance gains for R, G, B with G = 1.
        cam_to_srgb: (3, 3) white-balanced camera RGB -> linear sRGB (rows sum to 1).
        name: file name, for reports.
        pixel_aspect: LibRaw's pixel aspect in the upright frame (> 1: stretch the width, < 1: the height;
            a few cameras, e.g. the Nikon D1X, and DNGs with a DefaultScale).
    """

    mosaic: np.ndarray
    cfa: np.ndarray
    black: np.ndarray
    white: float
    wb_gains: np.ndarray
    cam_to_srgb: np.ndarray
    name: str = ""
    pixel_aspect: float = 1.0

    @property
    def layout(self) -> str:
        return "".join("RGB"[c] for c in self.cfa.ravel())

    @property
    def shape(self) -> tuple[int, int]:
        """The picture's (H, W): the mosaic's, stretched by the pixel aspect as LibRaw does."""
        return stretched(self.mosaic.shape[0], self.mosaic.shape[1], self.pixel_aspect)


def stretched(h: int, w: int, pixel_aspect: float) -> tuple[int, int]:
    """(H, W) after LibRaw's ``stretch()``: rows times 1 / aspect when it is < 1, else columns times it."""
    if pixel_aspect < 1.0:
        return max(1, round(h / pixel_aspect)), w
    return h, max(1, round(w * pixel_aspect))


def _srgb_xyz() -> np.ndarray:
    from isp_env.dng import SRGB_TO_XYZ

    return SRGB_TO_XYZ


def _cam_to_srgb(raw: RawPy, channel_of_index: list[int]) -> np.ndarray:
    """rawpy's ``color_matrix`` (the file's camera -> sRGB) when set, else from ``rgb_xyz_matrix``, else
    LibRaw's own matrix measured (:func:`_measured_rgb_cam`). Overwrites ``raw``'s raw image: call last."""
    cm = np.asarray(raw.color_matrix, dtype=np.float64)[:3, :3]
    if np.isfinite(cm).all() and np.abs(cm).sum() > 0:
        return cm / cm.sum(axis=1, keepdims=True)
    xyz2cam = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3, :3]
    if np.isfinite(xyz2cam).all() and np.abs(xyz2cam).sum() > 0:
        cam_from_srgb = xyz2cam @ _srgb_xyz()
        cam_from_srgb /= cam_from_srgb.sum(axis=1, keepdims=True)
        try:
            return np.linalg.inv(cam_from_srgb)
        except np.linalg.LinAlgError:
            pass
    return _measured_rgb_cam(raw, channel_of_index)


def _measured_rgb_cam(raw: RawPy, channel_of_index: list[int]) -> np.ndarray:
    """LibRaw's camera -> sRGB matrix (``rgb_cam``, which rawpy does not expose), measured: some cameras
    have neither a file matrix nor an XYZ one, yet LibRaw holds a table for them (the Kodak DC50's: an
    identity here rendered its IT8 chart grey-washed, 9-10 degrees off rawpy's colours). Four bands of flat
    camera RGB, grey plus a step on one channel each, go through rawpy's linear half-size sRGB render;
    each step's output is a column of the matrix. Identity when LibRaw has none (its own fallback)."""
    base, step = 16000.0, 4000.0
    img = raw.raw_image_visible  # rawpy documents writing here as changing what postprocess() renders
    colors = np.asarray(raw.raw_colors_visible)
    channel = np.asarray(channel_of_index)[colors]
    h = (img.shape[0] // 8) * 8
    if h < 8 or img.shape[1] < 2:
        return np.eye(3)
    img[...] = int(base)
    for k in range(3):
        band = slice(k * h // 4, (k + 1) * h // 4)
        img[band][channel[band] == k] = int(base + step)
    import rawpy

    try:
        out = raw.postprocess(
            half_size=True,
            user_wb=[1.0, 1.0, 1.0, 1.0],
            user_black=0,
            user_sat=65535,
            adjust_maximum_thr=0.0,
            no_auto_bright=True,
            gamma=(1, 1),
            output_bps=16,
            user_flip=0,
        ).astype(np.float64)
    except (rawpy.LibRawError, ValueError):  # LibRaw can't develop it: the mosaic alone still renders
        return np.eye(3)
    bands = [out[(2 * k + 1) * out.shape[0] // 8] for k in range(4)]  # the middle row of each band
    if any(b.min() <= 0 or b.max() >= 65535 for b in bands):  # clipped: not measurable
        return np.eye(3)
    grey = np.median(bands[3], axis=0)
    m = np.stack([np.median(bands[k], axis=0) - grey for k in range(3)], axis=1) / step
    sums = m.sum(axis=1, keepdims=True)
    if not np.isfinite(m).all() or (sums <= 0).any():
        return np.eye(3)
    return m / sums


def upright(mosaic: np.ndarray, flip: int) -> np.ndarray:
    """The mosaic as the photo is seen: LibRaw's ``sizes.flip`` (from the file's orientation; dcraw's
    ``flip_index``) — bit 2 reverses the rows, bit 1 the columns, then bit 4 transposes. A turned Bayer
    mosaic is a Bayer mosaic of another layout (read from the turned colour indices), so the pipeline runs
    on it unchanged; a portrait photo was rendered lying on its side, and its rawpy reference squeezed."""
    if flip & 2:
        mosaic = mosaic[::-1]
    if flip & 1:
        mosaic = mosaic[:, ::-1]
    return mosaic.T if flip & 4 else mosaic


ADJUST_MAXIMUM_THR = 0.75
"""LibRaw's default ``adjust_maximum_thr``."""


def _saturation(mosaic: np.ndarray, black: np.ndarray, white: float) -> float:
    """The white level LibRaw develops with: the file's, or the brightest visible value when that is above
    :data:`ADJUST_MAXIMUM_THR` of the range (black subtracted) but below the file's — many sensors saturate
    short of their format's maximum (the Canon D30 near 3860 of 4095), and at the file's level a clipped
    highlight stayed below 1 in a channel: a pink or green cast where LibRaw renders white."""
    common = float(black.min())
    span = white - common
    headroom = max(float(mosaic[y::2, x::2].max()) - float(black[y, x]) for y in range(2) for x in range(2))
    return common + headroom if span > headroom > ADJUST_MAXIMUM_THR * span else white


def _wb_gains(raw: RawPy, channel_of_index: list[int]) -> np.ndarray:
    """As-shot gains (camera WB), else daylight, else ones; normalised to G = 1."""
    for source in (raw.camera_whitebalance, raw.daylight_whitebalance):
        w = np.asarray(source, dtype=np.float64)
        gains = np.zeros(3)
        for idx, ch in enumerate(channel_of_index[: len(w)]):
            if w[idx] > 0 and gains[ch] == 0:
                gains[ch] = w[idx]
        if (gains > 0).all() and np.isfinite(gains).all():
            return gains / gains[1]
    return np.ones(3)


@contextlib.contextmanager
def libraw_quiet() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null while LibRaw reads: its C code prints "FILE: Unexpected end
    of file" to stderr itself (its default data callback) before raising the error our one line is made
    from. fd 2 is the process's: a line another thread writes to stderr meanwhile is lost too — raws are
    opened from one thread (a progress bar's refresh in between is redrawn by the next)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_raw(path: str | Path, unpack: bool = True) -> RawPy:
    """``rawpy.imread`` for any file name, then (``unpack``) LibRaw's decoding of the data, both with
    LibRaw's own stderr lines silenced (:func:`libraw_quiet`); ``unpack=False`` reads the header only.
    rawpy encodes a name as UTF-8, so a name holding a byte that is not UTF-8 (``caf\xe9.dng`` from an old
    camera card) raised UnicodeEncodeError ("LibRaw can't read it"); such a file is handed to LibRaw as its
    bytes instead (rawpy reads a file object whole)."""
    import rawpy

    name = str(path)
    with libraw_quiet():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            with open(path, "rb") as fh:
                raw = rawpy.imread(fh)
        else:
            raw = rawpy.imread(name)
        if unpack:
            try:
                raw.unpack()
            except BaseException:
                raw.close()
                raise
    return raw


def read_raw(path: str | Path) -> RawImage:
    """Read ``path`` with rawpy; raises :class:`RawReadError` with a one-line reason and fix."""
    import rawpy

    path = Path(path)
    if path.is_dir():
        raise RawReadError(
            path, "a folder, not a raw file — pass one raw (`isp-tune --raw-dir` takes folders)"
        )
    problem = unreadable(path)
    if problem is not None:
        raise problem
    try:
        with open_raw(path) as raw:
            desc = raw.color_desc.decode("ascii", "replace")
            pattern = raw.raw_pattern
            if raw.raw_type != rawpy.RawType.Flat or pattern is None or raw.num_colors != 3:
                raise RawReadError(
                    path,
                    "not a Bayer raw (Foveon/linear DNG or multi-shot) — only 2x2 Bayer "
                    "sensors are supported; remove it from the input",
                )
            n = np.asarray(pattern).shape[0]
            if np.asarray(pattern).shape not in ((2, 2), (6, 6)) or set(desc) - set("RGB"):
                raise RawReadError(
                    path,
                    f"not an RGB sensor of a 2x2 Bayer or 6x6 X-Trans filter (pattern "
                    f"{np.asarray(pattern).shape}, colours {desc!r}: CMYG?) — remove it from the input",
                )
            channel_of_index = [_CHANNEL[c] for c in desc]
            flip = int(raw.sizes.flip)
            colors = upright(np.asarray(raw.raw_colors_visible), flip)
            visible = np.array(raw.raw_image_visible, dtype=np.uint16)
            blacks = np.asarray(raw.black_level_per_channel, dtype=np.float64)
            levels = dng_black(path)
            if levels is not None:  # levels LibRaw subtracts or averages, and rawpy gives one a colour of
                subtract_black_excess(visible, levels, blacks[np.asarray(raw.raw_colors_visible)[:n, :n]])
            mosaic = np.ascontiguousarray(upright(visible, flip))
            if mosaic.shape[0] < 4 or mosaic.shape[1] < 4:
                raise RawReadError(path, f"image too small ({mosaic.shape[1]}x{mosaic.shape[0]})")
            idx = colors[:n, :n]
            black = blacks[idx]
            cfa = np.asarray(channel_of_index)[idx]
            white = _saturation(mosaic, black, float(raw.white_level))
            if not white > float(black.max()):  # no range between them: develop divides by white - black
                raise RawReadError(
                    path,
                    f"white level {white:g} is not above its black level {float(black.max()):g} (damaged "
                    "level tags) — remove it from the input",
                )
            counts = np.bincount(cfa.ravel(), minlength=3).tolist()
            if counts != ([1, 2, 1] if n == 2 else [8, 20, 8]):  # Bayer's, X-Trans's colours
                raise RawReadError(
                    path,
                    f"unsupported colour filter layout ({n}x{n}: {counts[0]} R, {counts[1]} G, "
                    f"{counts[2]} B; neither Bayer nor X-Trans) — remove it from the input",
                )
            aspect = float(raw.sizes.pixel_aspect)
            aspect = (1.0 / aspect if flip & 4 else aspect) if np.isfinite(aspect) and aspect > 0 else 1.0
            gains = _wb_gains(raw, channel_of_index)
            ccm = _cam_to_srgb(raw, channel_of_index)
            return RawImage(mosaic, cfa, black, white, gains, ccm, path.name, aspect)
    except RawReadError:
        raise
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise RawReadError(
            path, _libraw_problem(exc, path, "check the file is a complete camera raw or DNG")
        ) from None


@dataclass(frozen=True)
class DngBlack:
    """A DNG's black level at every pixel of its raw image, from the top left of the visible area: the
    BlackLevel ``pattern`` (BlackLevelRepeatDim rows x columns) plus ``rows[y]`` (BlackLevelDeltaV) plus
    ``cols[x]`` (BlackLevelDeltaH); no deltas: None."""

    pattern: np.ndarray
    rows: np.ndarray | None = None
    cols: np.ndarray | None = None


def _tag_values(tag: TiffTag) -> np.ndarray:
    """A TIFF tag's numbers (a RATIONAL / SRATIONAL one's as numerator / denominator)."""
    values = np.atleast_1d(np.asarray(tag.value, dtype=np.float64))
    return values[0::2] / values[1::2] if tag.dtype in (5, 10) else values


def dng_black(path: Path) -> DngBlack | None:
    """A DNG's black levels when rawpy's one level a colour does not say them (None otherwise): a pattern
    larger than 2x2 — LibRaw subtracts it when it renders, rawpy gives its smallest level a colour, which
    left bands of the rest in our renders — or levels by row or column (BlackLevelDeltaV / H: LibRaw adds
    their means to its black, which left the rest, a sensor's column stripes, in ours)."""
    if path.suffix.lower() != ".dng":
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            pages = list(tif.pages)
            while pages:
                page = pages.pop(0)
                tags = page.tags
                if page.photometric == 32803 and (50714 in tags or 50715 in tags or 50716 in tags):
                    rows, cols = (int(n) for n in tags[50713].value) if 50713 in tags else (1, 1)
                    values = _tag_values(tags[50714]) if 50714 in tags else np.zeros(1)
                    if values.size != rows * cols:
                        return None  # LibRaw reads what it can of it
                    deltas = [_tag_values(tags[t]) if t in tags else None for t in (50716, 50715)]
                    if rows <= 2 and cols <= 2 and all(d is None for d in deltas):
                        return None
                    return DngBlack(values.reshape(rows, cols), *deltas)
                pages += list(getattr(page, "pages", None) or [])  # SubIFDs: where DNGs keep the raw
    except (tifffile.TiffFileError, OSError, ValueError, ZeroDivisionError):
        return None  # LibRaw reads it or says why
    return None


# Makers as cameras write them (EXIF Make) -> as LibRaw names them (its make, the raw manifest's libraw_make):
# a camera named both ways was two cameras, one on each side of a split by camera (lower case: looked up so)
MAKER_ALIASES = {
    "nikon corporation": "Nikon",
    "olympus imaging corp.": "Olympus",
    "olympus corporation": "Olympus",
    "olympus optical co.,ltd": "Olympus",
    "eastman kodak company": "Kodak",
    "pentax corporation": "Pentax",
    "ricoh imaging company, ltd.": "Pentax",
    "leica camera ag": "Leica",
    "minolta co., ltd.": "Minolta",
    "konica minolta": "Minolta",
    "samsung techwin": "Samsung",
    "seiko epson corp.": "Epson",
}


def camera_name(make: str, model: str) -> str:
    """One camera's name, "MAKE MODEL", however its source spells it: the maker as LibRaw names it
    (:data:`MAKER_ALIASES`), a maker the model repeats stripped (LibRaw's model "EOS D30", a DNG's Model
    "Canon EOS D30"), spaces collapsed. Compare two names case-insensitively (``.casefold()``): LibRaw
    capitalises makers ("SONY" -> "Sony")."""
    make = " ".join(make.split())
    make = MAKER_ALIASES.get(make.casefold(), make)
    words = model.split()
    makers = {make.casefold(), *(w.casefold() for w in make.split()[:1])}
    while words and words[0].casefold() in makers:  # "NIKON D850" under "Nikon"
        words = words[1:]
    return " ".join(w for w in (make, " ".join(words)) if w)


def dng_camera(path: Path) -> str | None:
    """A DNG's camera (:func:`camera_name`) from its own Make and Model tags, else its UniqueCameraModel
    (where LibRaw reads them from: the Blackmagic DNG of the shared raws has only the latter; rawpy does not
    give LibRaw's make and model); None for another raw, a DNG without them or one that does not parse
    (:func:`isp_env.run_inputs.raw_cameras` says it)."""
    if path.suffix.lower() != ".dng":
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages.first.tags
            words = [str(tags[t].value).strip() if t in tags else "" for t in (271, 272, 50708)]
    except (tifffile.TiffFileError, OSError, ValueError, IndexError):
        return None
    make, model, unique = words  # Make, Model, UniqueCameraModel
    return camera_name(make, model) if make or model else camera_name("", unique) or None


BLACK_STRIP_ROWS = 256  # rows of the mosaic a black excess is built for at a time (memory: ~12 MB at 6000 px)


def subtract_black_excess(mosaic: np.ndarray, levels: DngBlack, black: np.ndarray) -> None:
    """Subtract in place from ``mosaic`` (the visible area, as the file lies) the part of a DNG's black
    ``levels`` above the level of each position of the colour filter's tile (``black``, rawpy's, which the
    ISP subtracts; below it, the difference is added): together, the DNG's level at every pixel, as the
    DNG specification subtracts it. Values clip at 0 and 65535. Deltas shorter than the visible area are
    left to LibRaw's mean."""
    h, w = mosaic.shape
    rows, cols = levels.pattern.shape
    by, bx = black.shape  # 2x2 (Bayer) or 6x6 (X-Trans)
    period_y, period_x = int(np.lcm(rows, by)), int(np.lcm(cols, bx))
    tile = np.tile(levels.pattern, (period_y // rows, period_x // cols)) - np.tile(
        black, (period_y // by, period_x // bx)
    )
    dv = levels.rows[:h] if levels.rows is not None and levels.rows.size >= h else np.zeros(h)
    dh = levels.cols[:w] if levels.cols is not None and levels.cols.size >= w else np.zeros(w)
    across = np.arange(w) % period_x
    for lo in range(0, h, BLACK_STRIP_ROWS):
        hi = min(lo + BLACK_STRIP_ROWS, h)
        excess = tile[np.arange(lo, hi) % period_y][:, across] + dv[lo:hi, None] + dh[None, :]
        cells = mosaic[lo:hi].astype(np.int64) - np.rint(excess).astype(np.int64)
        mosaic[lo:hi] = np.clip(cells, 0, 65535)


def unreadable(path: str | Path) -> RawReadError | None:
    """Why ``path`` cannot even be opened (missing, a symlink loop, no read permission, not a regular file)
    or holds nothing (empty), in :func:`attiqa.io.images.read_error`'s words, or None. LibRaw, handed such a
    path, names another cause: a symlink loop read as "Image too big for processing", an empty file as an
    I/O error."""
    from attiqa.io.images import read_error

    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):  # no permission: LibRaw said "the file ends early or is not a raw"
            os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        e = read_error(path, exc)
        return RawReadError(path, f"{e.reason} — {e.fix}")
    if not stat.S_ISREG(st.st_mode):
        return RawReadError(path, "not a regular file (a pipe, socket or device) — pass raw files")
    if st.st_size == 0:  # was LibRaw's "Input/output error: the file ends early or is not a raw"
        return RawReadError(path, "empty file (0 bytes): a copy cut short — copy the raw again")
    return None


def probe_raw(path: str | Path) -> RawReadError | None:
    """Why LibRaw can't open ``path``'s header (an empty, foreign or damaged file), or None: a few
    milliseconds a file, so a run can leave such files out before it splits its raws. A file damaged after
    its header is only found when decoded (:func:`read_raw`)."""
    import rawpy

    problem = unreadable(path)
    if problem is not None:
        return problem
    try:
        with open_raw(path, unpack=False) as raw:
            raw.sizes  # noqa: B018 - parses the header
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        return RawReadError(
            path,
            _libraw_problem(exc, path, "check the file is a complete camera raw or DNG", in_folder=True),
        )
    return None


# The first bytes of developed images a raw's name may be given by mistake (a JPEG renamed .dng)
DEVELOPED_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF8": "GIF", b"BM": "BMP"}


def developed_kind(path: str | Path) -> str | None:
    """The kind of developed image ``path`` is by its first bytes (JPEG, PNG, GIF, BMP, WebP), or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in DEVELOPED_MAGIC.items() if head.startswith(magic)), None)


def libraw_text(exc: Exception) -> str:
    """A LibRaw error as one line of text, its type first (rawpy gives the message as bytes)."""
    why = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
    return f"{type(exc).__name__}: {why}"


def _libraw_problem(exc: Exception, path: str | Path, fix: str, in_folder: bool = False) -> str:
    """LibRaw's error as text (rawpy gives bytes), then `` — fix``; its I/O error is running out of data,
    not a bad disk; a developed image under a raw's name is said to be one (it was LibRaw's "Unsupported
    file format"), and an XMP sidecar too, with its own fix (:func:`sidecar_fix`). ``in_folder``: met in a
    folder of raws, so every fix adds that it may be left out of it."""
    leave = ", or remove it from the folder" if in_folder else ""
    kind = developed_kind(path)
    if kind is not None:
        suffix = Path(path).suffix or "without an extension"
        return f"a {kind} image named {suffix}, not a camera raw — {fix}{leave}"
    sidecar = sidecar_fix(path)
    if sidecar is not None:
        return f"an XMP sidecar (a raw editor's settings beside a raw), not a camera raw — {sidecar}{leave}"
    said = f"LibRaw can't read it ({libraw_text(exc)})"
    ends = ": the file ends early or is not a raw" if type(exc).__name__ == "LibRawIOError" else ""
    return f"{said}{ends} — {fix}{leave}"


XMP_MAGIC = (b"<?xpacket", b"<x:xmpmeta")  # how an XMP packet begins (after a BOM or white space)


def sidecar_fix(path: str | Path) -> str | None:
    """For an XMP sidecar (``.xmp``, or a file that begins as one) passed where a raw goes: pass the raw it
    belongs to — named when it lies beside it (``IMG_1.CR2.xmp`` or ``IMG_1.xmp`` beside ``IMG_1.CR2``).
    None for any other file. LibRaw said "can't read it … check the file is a complete camera raw"."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return None
    if p.suffix.lower() != ".xmp" and not head.startswith(XMP_MAGIC):
        return None
    stem = p.with_suffix("")
    beside = [stem] if stem.suffix.lower() in RAW_EXTENSIONS else []
    with contextlib.suppress(OSError):
        beside += sorted(
            q for q in p.parent.iterdir() if q.stem == stem.name and q.suffix.lower() in RAW_EXTENSIONS
        )
    found = next((q for q in beside if q != p and q.is_file()), None)
    if found is None:
        return "pass the raw it belongs to (the camera file of the same name)"
    return f"pass the raw it belongs to: {found}"


def find_raws(root: str | Path) -> list[Path]:
    """Raw files under ``root``, recursively, sorted (FiveK's ``raw_photos/HQa*/photos/*.dng`` included)."""
    from attiqa.io.images import discover_images

    root = Path(root)
    if root.is_file():
        return [root]
    # attiqa's search: linked folders followed (rglob skipped them), each real folder once; ._NAME left out
    return sorted(discover_images([root], extensions=sorted(RAW_EXTENSIONS)))
