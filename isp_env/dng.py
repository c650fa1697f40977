"""A minimal DNG writer (tifffile) and an "unprocess" step that turns an sRGB photo into a Bayer raw.

Why: raw test data must go through real rawpy/LibRaw, and the project may not depend on ../shared/data at run
time, so tests (and users without a camera) make DNGs from photos. The writer produces an uncompressed
single-IFD CFA DNG (DNG spec 1.4, §"CFA" tags) with the tags LibRaw needs: CFARepeatPatternDim/CFAPattern,
BlackLevelRepeatDim/BlackLevel, WhiteLevel, ColorMatrix1 (XYZ -> camera, D65) and AsShotNeutral.

Unprocessing follows the idea of Brooks et al., "Unprocessing Images for Learned Raw Denoising" (CVPR 2019,
§3): invert the sRGB transfer curve, invert the colour matrix, invert the white-balance gains, mosaic, add
shot/read noise, quantise. Our simplifications: no tone-curve inversion and fixed (not sampled) gains.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from attiqa.io.atomic import atomic_path

BAYER_LAYOUTS: dict[str, tuple[int, int, int, int]] = {
    # colour index (0 = R, 1 = G, 2 = B) at positions (0,0), (0,1), (1,0), (1,1)
    "RGGB": (0, 1, 1, 2),
    "BGGR": (2, 1, 1, 0),
    "GRBG": (1, 0, 2, 1),
    "GBRG": (1, 2, 0, 1),
}

# Fujifilm's X-Trans 6x6 colour filter (colour index at each position, row-major): every row and column holds
# all three colours, every 3x3 block five greens. ``layout="XTRANS"`` writes it (CFARepeatPatternDim 6 6).
XTRANS = np.array(
    [
        [1, 1, 0, 1, 1, 2],
        [1, 1, 2, 1, 1, 0],
        [2, 0, 1, 0, 2, 1],
        [1, 1, 2, 1, 1, 0],
        [1, 1, 0, 1, 1, 2],
        [0, 2, 1, 2, 0, 1],
    ]
)


def cfa_pattern(layout: str) -> np.ndarray:
    """The colour filter of a layout name: a 2x2 Bayer one of :data:`BAYER_LAYOUTS`, or ``XTRANS`` (6x6)."""
    if layout == "XTRANS":
        return XTRANS
    if layout not in BAYER_LAYOUTS:
        raise ValueError(f"unknown CFA layout {layout!r}; one of {', '.join(BAYER_LAYOUTS)}, XTRANS")
    return np.array(BAYER_LAYOUTS[layout]).reshape(2, 2)


# XYZ(D65) -> linear sRGB (IEC 61966-2-1) and its inverse.
SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)

# A plausible camera: ColorMatrix1 (XYZ -> camera RGB) with the structure of a real sensor's matrix (strong
# diagonal, negative cross-talk). Ours; any invertible matrix works for the tests.
DEFAULT_COLOR_MATRIX = np.array([[0.9, -0.3, -0.1], [-0.4, 1.3, 0.1], [-0.05, 0.2, 0.6]])
DEFAULT_NEUTRAL = (0.5, 1.0, 0.7)  # AsShotNeutral: camera RGB of a white object (R and B gains 2.0, 1.43)


def rationals(values: npt.ArrayLike, denominator: int = 1_000_000) -> tuple[int, ...]:
    """A TIFF RATIONAL/SRATIONAL tag's values: numerator, denominator pairs over a fixed denominator."""
    out: list[int] = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        out += [int(round(v * denominator)), denominator]
    return tuple(out)


def write_dng(
    path: str | Path,
    mosaic: np.ndarray,
    layout: str = "RGGB",
    black_level: float | tuple[float, float, float, float] | np.ndarray = 0,
    white_level: int = 1023,
    color_matrix: np.ndarray = DEFAULT_COLOR_MATRIX,
    as_shot_neutral: tuple[float, float, float] = DEFAULT_NEUTRAL,
    make: str = "attiqa",
    model: str = "synthetic",
    orientation: int = 1,
    pixel_aspect: float = 1.0,
    black_rows: Sequence[float] | None = None,
    black_cols: Sequence[float] | None = None,
) -> Path:
    """Write a uint16 Bayer ``mosaic`` (H, W) as an uncompressed DNG, atomically; ``layout``: a Bayer
    layout of :data:`BAYER_LAYOUTS` or ``XTRANS`` (:data:`XTRANS`, a 6x6 filter: LibRaw reads it).

    ``black_level`` is one value or four values for the 2x2 positions (row-major), as DNG's
    BlackLevelRepeatDim = (2, 2) stores them, or a 2-D array: a pattern of that shape (a sensor whose black
    level repeats over more than one Bayer tile). ``orientation``: the TIFF Orientation tag (1 upright, 6 the
    camera held rotated 90 degrees clockwise: display turned, 8 the other way, 3 upside down).
    ``pixel_aspect`` != 1 writes DefaultScale (aspect, 1): pixels that much wider than tall.
    ``black_rows`` / ``black_cols``: BlackLevelDeltaV / BlackLevelDeltaH, a black offset for each row /
    column (a sensor's row noise, column stripes), added to the BlackLevel pattern.
    """
    import tifffile

    pattern = cfa_pattern(layout)
    mosaic = np.ascontiguousarray(mosaic, dtype=np.uint16)
    blacks = np.asarray(black_level, dtype=np.float64)
    if blacks.ndim != 2:  # one value or the four of the 2x2 positions
        blacks = np.broadcast_to(blacks, (4,)).reshape(2, 2)
    extratags = [
        (254, 4, 1, 0, True),  # NewSubfileType: main image
        (271, 2, 0, make, True),  # Make
        (272, 2, 0, model, True),  # Model
        (274, 3, 1, int(orientation), True),  # Orientation
        (33421, 3, 2, pattern.shape, True),  # CFARepeatPatternDim
        (33422, 1, pattern.size, tuple(pattern.ravel().tolist()), True),  # CFAPattern
        (50706, 1, 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, 1, 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, 2, 0, f"{make} {model}", True),  # UniqueCameraModel
        (50710, 1, 3, (0, 1, 2), True),  # CFAPlaneColor
        (50711, 3, 1, 1, True),  # CFALayout: rectangular
        (50713, 3, 2, blacks.shape, True),  # BlackLevelRepeatDim
        (50714, 5, blacks.size, rationals(blacks, 1000), True),  # BlackLevel
        (50717, 4, 1, int(white_level), True),  # WhiteLevel
        (50721, 10, 9, rationals(color_matrix, 10000), True),  # ColorMatrix1 (XYZ -> camera)
        (50728, 5, 3, rationals(as_shot_neutral, 10000), True),  # AsShotNeutral
        (50778, 3, 1, 21, True),  # CalibrationIlluminant1: D65
    ]
    for tag, deltas in ((50715, black_cols), (50716, black_rows)):  # BlackLevelDeltaH, BlackLevelDeltaV
        if deltas is not None:
            extratags.append((tag, 10, len(deltas), rationals(deltas, 1000), True))
    if pixel_aspect != 1.0:
        extratags.append((50718, 5, 2, rationals([pixel_aspect, 1.0], 10000), True))  # DefaultScale
    path = Path(path)
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            mosaic,
            photometric=32803,
            planarconfig=None,
            extratags=extratags,
            metadata=None,
        )
    return path


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decoding of values in [0, 1]."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def camera_from_srgb(color_matrix: np.ndarray = DEFAULT_COLOR_MATRIX) -> np.ndarray:
    """Linear sRGB -> white-balanced camera RGB, rows normalised so white stays white (dcraw's convention)."""
    m = np.asarray(color_matrix, dtype=np.float64) @ SRGB_TO_XYZ
    return m / m.sum(axis=1, keepdims=True)


def unprocess(
    rgb: np.ndarray,
    layout: str = "RGGB",
    white_level: int = 1023,
    black_level: int = 64,
    color_matrix: np.ndarray = DEFAULT_COLOR_MATRIX,
    as_shot_neutral: tuple[float, float, float] = DEFAULT_NEUTRAL,
    shot_noise: float = 2e-3,
    read_noise: float = 1e-3,
    exposure: float = 0.8,
    seed: int = 0,
) -> np.ndarray:
    """An 8-bit sRGB photo (H, W, 3) -> a uint16 mosaic with the given layout (:func:`cfa_pattern`) and
    levels.

    Steps (Brooks et al. 2019, §3, simplified): sRGB -> linear, linear sRGB -> camera RGB (inverse of the
    colour correction a renderer applies), divide by the white-balance gains (multiply by AsShotNeutral),
    mosaic, heteroscedastic Gaussian noise (variance ``shot * x + read^2``), scale to the levels, quantise.
    """
    rng = np.random.default_rng(seed)
    x = srgb_to_linear(np.asarray(rgb, dtype=np.float64)[..., :3] / 255.0) * exposure
    cam = x @ camera_from_srgb(color_matrix).T
    cam = cam * np.asarray(as_shot_neutral, dtype=np.float64)  # undo white balance: gains = 1 / neutral
    h, w = (cam.shape[0] // 2) * 2, (cam.shape[1] // 2) * 2
    cam = np.clip(cam[:h, :w], 0.0, 1.0)
    pattern = cfa_pattern(layout)
    py, px = pattern.shape
    channel = np.tile(pattern, (-(-h // py), -(-w // px)))[:h, :w]  # each pixel's colour
    mosaic = np.take_along_axis(cam, channel[..., None], axis=2)[..., 0]
    noise = rng.standard_normal(mosaic.shape) * np.sqrt(shot_noise * mosaic + read_noise**2)
    mosaic = np.clip(mosaic + noise, 0.0, 1.0)
    values = black_level + mosaic * (white_level - black_level)
    return np.clip(np.round(values), 0, white_level).astype(np.uint16)


def dng_from_photo(
    path: str | Path,
    rgb: np.ndarray,
    layout: str = "RGGB",
    seed: int = 0,
    *,
    white_level: int = 1023,
    black_level: int = 64,
    color_matrix: np.ndarray = DEFAULT_COLOR_MATRIX,
    as_shot_neutral: tuple[float, float, float] = DEFAULT_NEUTRAL,
    make: str = "attiqa",
    model: str = "synthetic",
    **noise: float,
) -> Path:
    """Unprocess an sRGB photo and write it as a DNG with matching metadata (one call for tests and demos);
    ``make`` / ``model``: the camera it names (``isp-tune --group-by camera`` holds cameras out); ``noise``:
    :func:`unprocess`'s ``shot_noise``, ``read_noise`` and ``exposure``."""
    white, black = int(white_level), int(black_level)
    mosaic = unprocess(rgb, layout, white, black, color_matrix, as_shot_neutral, seed=seed, **noise)
    return write_dng(path, mosaic, layout, black, white, color_matrix, as_shot_neutral, make, model)


DEMO_PHOTOS: tuple[tuple[str, str], ...] = (
    ("astronaut", "RGGB"),
    ("coffee", "BGGR"),
    ("chelsea", "GRBG"),
    ("rocket", "GBRG"),
)


def demo_raws(
    out_dir: str | Path, long_side: int = 256, photos: Sequence[tuple[str, str]] = DEMO_PHOTOS
) -> list[Path]:
    """DNGs of scikit-image's bundled photos, one per Bayer layout (for tests, demos and benchmarks)."""
    out_dir = Path(out_dir)
    paths = []
    for i, (name, layout) in enumerate(photos):
        img = demo_photo(name, long_side)
        paths.append(dng_from_photo(out_dir / f"{name}_{layout.lower()}.dng", img, layout, seed=i))
    return paths


def demo_photo(name: str, long_side: int) -> np.ndarray:
    """A scikit-image photo (RGB uint8) resized to ``long_side`` (Lanczos)."""
    from PIL import Image
    from skimage import data

    img = Image.fromarray(np.asarray(getattr(data, name)())[..., :3])
    s = long_side / max(img.size)
    size = (max(2, round(img.width * s)), max(2, round(img.height * s)))
    return np.asarray(img.resize(size, Image.Resampling.LANCZOS))
