"""The 25 distortion types of KADID-10k at five levels each (our implementation).

Sources of the level values, per type (the ``source`` of each :class:`Distortion` says which):

- KADID-10k: Lin, Hosu & Saupe, "KADID-10k: A Large-scale Artificially Distorted IQA Database",
  QoMEX 2019 (the type list and what each type does) and the database's MATLAB generator
  ``imdist_generator.m`` (one ``levels = [...]`` vector per type) as reproduced in public repositories;
- where the MATLAB helper of a type was not at hand, its semantics follow the published Python/PyTorch
  re-implementations' reading of it (ARNIQA, Agnolucci et al., WACV 2024, ``utils/distortions.py``).

Every function here is written from those descriptions, not copied. Like the generator, every type
runs between two calls of KADID's ``mapmm`` (:func:`mapmm`): the input is min-max rescaled to [0, 1]
before the distortion and the result again after it, over the whole image (all channels together). Ours:
values outside [0, 1] are clipped just before the final ``mapmm`` (MATLAB's ``imnoise`` and the tone-curve
helpers clip; where a helper does not, the generator's ``mapmm`` would compress the range instead). So a
type that only moves the value range is largely undone: #18's shift survives only as its clipped end,
stretched back to the full range; #16 / #17 keep their curves (which fix 0 and 1). Where we depart from KADID
the ``source`` string starts with or contains "ours"; the main departures:

- #4 colour diffusion: the chroma is blurred but not amplified (see :func:`_color_diffusion`);
- #7 colour saturation 1: KADID scales HSV saturation by [0.4, 0.2, 0.1, 0, -0.4]; a negative factor
  does not desaturate further, it turns every hue into its complement at 40 % saturation (a re-coloured
  image, more colourful than level 4). Ours: [0.4, 0.2, 0.1, 0.05, 0], so the type lowers colourfulness
  at every step and never re-colours (it is registered as a colourfulness distortion);
- #15 denoise: KADID denoises with a learned network; we use a classical adaptive Wiener filter, and
  read the level as the standard deviation of the added noise;
- #18 mean shift: KADID's vector [0.15, 0.08, 0, -0.08, -0.15] puts the identity (shift 0) at level 3
  and orders by sign, not strength; ours grows in strength, |shift| = 0.04 .. 0.2 with KADID's 0.08
  and 0.15 among them, and the sign drawn from the seed;
- #20 non-eccentricity patch and #23 colour block: KADID uses fixed 16 / 32 px patches on 512x384
  images; we scale the patch size with sqrt(image area / 512x384) so any image size gets the same look;
- #22 quantization: uniform thresholds instead of MATLAB's multi-level Otsu ``multithresh``.

Kept as in KADID although they look odd: #1 level 1 (sigma 0.1), #3 level 1 (length 1) and #8 level 1
(factor 1) are (nearly) the identity; #25 contrast change runs from more contrast (levels 1-3: its
curve is the identity at a = -0.2, not at 0) to less contrast (levels 4-5), the order of KADID's
subjective scores rather than of one measurable quantity.
"""

from __future__ import annotations

import dataclasses
import io
import math
import warnings

import numpy as np
from PIL import Image
from scipy import interpolate, ndimage
from skimage import color

from attiqa.distortions.basic import (
    RGB_TO_YCBCR,
    YCBCR_TO_RGB,
    Distortion,
    DistortionFn,
    by_row_strips,
    convolve_rgb,
    gaussian_blur,
    gaussian_noise,
    lens_blur_in_place,
    register_distortion,
    row_strips,
    scale_saturation,
    to_float,
    to_uint8,
)

KADID_AREA = 512 * 384
"""Pixel count of a KADID-10k image: the scale at which its patch-based distortions were defined."""

# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def _lab(rgb: np.ndarray) -> np.ndarray:
    return color.rgb2lab(np.clip(rgb, 0.0, 1.0))


def _lab_by_strips(rgb: np.ndarray) -> np.ndarray:
    """:func:`_lab` of a whole image, converted a row strip at a time (the conversion is per pixel) into
    ``rgb``'s own array (the first ``mapmm``'s)."""
    return by_row_strips(_lab, rgb, out=rgb)


def _rgb(lab: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # out-of-gamut Lab (over-saturation) is clipped, as intended
        warnings.simplefilter("ignore", UserWarning)
        return color.lab2rgb(lab).astype(np.float32)


def mapmm(x: np.ndarray, in_place: bool = False) -> np.ndarray:
    """KADID-10k's ``mapmm``: min-max rescale of the whole array to [0, 1] (a constant array is kept).

    A new array, made without a temporary beside it (for float32: the numbers of
    ``((x - lo) / (hi - lo)).astype(np.float32)``); ``in_place``: a float32 ``x`` itself, rescaled."""
    lo, hi = float(x.min()), float(x.max())
    own = in_place and x.dtype == np.float32 and x.flags.writeable
    if hi <= lo:
        return x if own else x.copy()
    if x.dtype != np.float32:
        return ((x - np.float32(lo)) / np.float32(hi - lo)).astype(np.float32)
    return _rescale(x, lo, hi, out=x if own else np.empty_like(x))


def _rescale(x: np.ndarray, lo: float, hi: float, out: np.ndarray) -> np.ndarray:
    np.subtract(x, np.float32(lo), out=out)
    return np.divide(out, np.float32(hi - lo), out=out)


def _between_mapmm(fn: DistortionFn, in_place: bool = False) -> DistortionFn:
    """``fn`` as the generator runs it: ``mapmm(fn(mapmm(x)))``, with the clip to [0, 1] before the final
    ``mapmm`` (ours, see the module docstring). ``fn`` gets the first ``mapmm``'s array, which is ours: a
    per-pixel type writes its result into it. The clip and the final ``mapmm`` edit ``fn``'s output in place
    (it is a new array, or the first ``mapmm``'s). ``in_place``: the first ``mapmm`` rescales ``x`` itself
    (:class:`Distortion`'s ``fn_in_place``, for a caller whose ``x`` is a copy of its own)."""

    def run(rgb: np.ndarray, parameter: float, rng: np.random.Generator) -> np.ndarray:
        out = fn(mapmm(rgb, in_place=in_place), parameter, rng)
        out = np.clip(out, 0.0, 1.0, out=out if out.flags.writeable else None).astype(np.float32, copy=False)
        lo, hi = float(out.min()), float(out.max())
        return out if hi <= lo else _rescale(out, lo, hi, out=out)

    run.__name__ = getattr(fn, "__name__", "kadid")
    run.__doc__ = fn.__doc__
    return run


def _patch_scale(rgb: np.ndarray) -> float:
    return math.sqrt(rgb.shape[0] * rgb.shape[1] / KADID_AREA)


def _spline_curve(x: np.ndarray, knots_x: list[float], knots_y: list[float]) -> np.ndarray:
    """Tone curve through control points: a not-a-knot cubic spline (MATLAB ``spline``), clipped to [0, 1].

    With three points the not-a-knot spline is the parabola through them.
    """
    kx, ky = np.asarray(knots_x, dtype=np.float64), np.asarray(knots_y, dtype=np.float64)
    if kx.size == 3:
        coef = np.polyfit(kx, ky, 2)
        y = np.polyval(coef, x)
    else:
        y = interpolate.CubicSpline(kx, ky, bc_type="not-a-knot")(x)
    return np.clip(y, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# the 25 types (float32 RGB in [0, 1] -> float32 RGB; the caller clips and rounds)
# ---------------------------------------------------------------------------------------------------


def motion_kernel(length: float, angle_deg: float, supersample: int = 8) -> np.ndarray:
    """A line of ``length`` pixels at ``angle_deg``, one pixel wide, anti-aliased (like MATLAB's
    ``fspecial('motion', len, theta)``: length 1 is the identity)."""
    if length <= 1:
        return np.ones((1, 1), dtype=np.float32)
    half = (length - 1) / 2.0
    r = int(math.ceil(half)) + 1
    n = 2 * r + 1
    t = np.linspace(-half, half, int(math.ceil(length)) * supersample)
    phi = math.radians(angle_deg)
    xs, ys = r + t * math.cos(phi), r - t * math.sin(phi)
    k = np.zeros((n, n), dtype=np.float64)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, wgt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(k, (y0 + dy, x0 + dx), wgt)
    return (k / k.sum()).astype(np.float32)


def _motion_blur(rgb: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
    """#3: linear motion of ``length`` pixels in a random direction (0-180 degrees, from the seed), written
    into the first ``mapmm``'s array."""
    return convolve_rgb(rgb, motion_kernel(length, float(rng.uniform(0.0, 180.0))), out=rgb)


def _color_diffusion(rgb: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """#4: the Lab chroma (a, b) is Gaussian-blurred with sigma = 1.5 * amount + 2; lightness is kept.

    Public ports of KADID's code also multiply the blurred chroma by ``amount`` (x12 at level 5), which
    turns whole photos into one saturated colour; we leave the chroma amplitude unchanged (ours)."""
    lab = _lab_by_strips(rgb)
    sigma = 1.5 * amount + 2.0
    for k in (1, 2):  # each plane filtered alone: the numbers of the (H, W, 2) filter with sigma 0 on axis 2
        lab[..., k] = ndimage.gaussian_filter(lab[..., k], sigma=sigma, mode="nearest")
    return by_row_strips(_rgb, lab, out=lab)  # back to RGB in the Lab image's place


def _color_shift(rgb: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """#5: the green channel shifted by ``amount`` pixels in a random direction, blended in where the
    image has edges (weight: gradient magnitude of grey, Gaussian-smoothed with sigma 4, normalised,
    clipped at its 1st / 99th percentiles)."""
    grey = rgb @ np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
    gy, gx = (np.gradient(grey, axis=a) if grey.shape[a] > 1 else np.zeros_like(grey) for a in (0, 1))
    del grey
    magnitude = np.hypot(gx, gy)
    del gx, gy
    e = ndimage.gaussian_filter(magnitude, 4.0, mode="nearest")
    del magnitude
    lo, hi = np.percentile(e, (1, 99))  # float64: the weights and the blend are float64, a strip at a time
    direction = rng.random(2)
    direction /= max(float(np.linalg.norm(direction)), 1e-12)
    dy, dx = np.round(direction * amount).astype(int)
    shifted = ndimage.shift(rgb[..., 1], (dy, dx), order=0, mode="nearest")
    for rows in row_strips(*rgb.shape[:2]):  # into rgb's green: each strip read before it is written
        weight = np.clip((e[rows] - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(e[rows])
        rgb[rows, :, 1] = shifted[rows] * weight + rgb[rows, :, 1] * (1.0 - weight)
    return rgb


def _color_quantization(rgb: np.ndarray, colors: float, rng: np.random.Generator) -> np.ndarray:
    """#6: a palette of ``colors`` colours with Floyd-Steinberg dithering (KADID: MATLAB ``rgb2ind`` with
    dither; here PIL's median-cut palette)."""
    img = Image.fromarray(to_uint8(rgb))
    q = img.quantize(colors=int(colors), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    del img
    return to_float(q.convert("RGB"))


def _color_saturation_hsv(rgb: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """#7: HSV saturation scaled by ``factor`` in [0, 1] (hue and value kept; see the module docstring),
    into the first ``mapmm``'s array a row strip at a time (it made a new image beside it)."""
    return by_row_strips(lambda part: scale_saturation(part, factor, rng), rgb, out=rgb)


def _color_saturation_lab(rgb: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """#8: Lab chroma (a, b) multiplied by ``factor`` (over-saturation)."""

    def saturate(part: np.ndarray) -> np.ndarray:
        lab = _lab(part)
        lab[..., 1:] *= factor
        return _rgb(lab)

    return by_row_strips(saturate, rgb, out=rgb)


def _encode_decode(rgb: np.ndarray, format: str, **params: object) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(to_uint8(rgb)).save(buf, format=format, **params)
    buf.seek(0)
    with Image.open(buf) as im:
        return to_float(im.convert("RGB"))


def _jpeg2000(rgb: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """#9: JPEG 2000 at compression ratio ``ratio`` (OpenJPEG through Pillow)."""
    side = min(rgb.shape[:2])
    resolutions = max(1, min(6, int(math.floor(math.log2(max(side, 1)))) + 1))
    return _encode_decode(
        rgb,
        format="JPEG2000",
        quality_mode="rates",
        quality_layers=[float(ratio)],
        num_resolutions=resolutions,
    )


JPEG_MAX_SIDE = 65500
"""libjpeg's ``JPEG_MAX_DIMENSION``: a side longer is refused ("broken data stream when writing")."""
JPEG_TILE = 65488
"""The longest tile under :data:`JPEG_MAX_SIDE` made of whole 16-px MCUs (4:2:0): a tile's 8x8 blocks are
quantised exactly as the one image's would be."""


def _jpeg(rgb: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    """#10: baseline JPEG at IJG ``quality`` (libjpeg through Pillow, 4:2:0 chroma). A photo with a side over
    :data:`JPEG_MAX_SIDE` (a panorama) is coded in tiles of :data:`JPEG_TILE` (ours: it stopped `attiqa
    degrade` with a disk-error line); only the decoder's chroma upsampling at a tile's edge can differ."""
    h, w = rgb.shape[:2]
    if max(h, w) <= JPEG_MAX_SIDE:
        return _encode_decode(rgb, format="JPEG", quality=int(quality), subsampling=2)
    out = np.empty(rgb.shape[:2] + (3,), np.float32)
    for y in range(0, h, JPEG_TILE):
        for x in range(0, w, JPEG_TILE):
            tile = rgb[y : y + JPEG_TILE, x : x + JPEG_TILE]
            out[y : y + JPEG_TILE, x : x + JPEG_TILE] = _jpeg(tile, quality, rng)
    return out


def _white_noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """#11: :func:`gaussian_noise` added into the first ``mapmm``'s array a row strip at a time (it drew the
    noise as a new image beside it), the draws of one whole-image draw."""
    return by_row_strips(lambda part: gaussian_noise(part, sigma, rng), rgb, out=rgb)


def _gaussian_blur(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """#1: :func:`gaussian_blur` written into the first ``mapmm``'s array (it made a new image beside it)."""
    return gaussian_blur(rgb, sigma, rng, out=rgb)


def _white_noise_ycbcr(rgb: np.ndarray, var: float, rng: np.random.Generator) -> np.ndarray:
    """#12: white Gaussian noise of variance ``var`` on Y, Cb and Cr (full-range YCbCr in [0, 1]; KADID's
    MATLAB ``rgb2ycbcr`` is studio-range, so its noise is ~1.16x stronger relative to the signal)."""

    def add_noise(part: np.ndarray) -> np.ndarray:
        ycc = part @ RGB_TO_YCBCR.T
        ycc += np.float32(math.sqrt(var)) * rng.standard_normal(part.shape, dtype=np.float32)
        return ycc @ YCBCR_TO_RGB.T

    return by_row_strips(add_noise, rgb, out=rgb)  # strips top to bottom: the noise of one whole-image draw


def _impulse_noise(rgb: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    """#13: salt & pepper: each sample (pixel and channel) is set to 0 or 1 with probability ``density``
    (MATLAB ``imnoise(..., 'salt & pepper', d)``)."""

    def salt_and_pepper(part: np.ndarray) -> np.ndarray:
        u = rng.random(part.shape, dtype=np.float32)
        out = part.copy()
        out[u < density / 2] = 0.0
        out[(u >= density / 2) & (u < density)] = 1.0
        return out

    return by_row_strips(salt_and_pepper, rgb, out=rgb)  # strips top to bottom: one whole-image draw's


def _multiplicative_noise(rgb: np.ndarray, var: float, rng: np.random.Generator) -> np.ndarray:
    """#14: speckle ``x + n * x`` with uniform zero-mean noise of variance ``var`` (MATLAB ``imnoise``
    'speckle')."""

    def speckle(part: np.ndarray) -> np.ndarray:
        n = (rng.random(part.shape, dtype=np.float32) - 0.5) * np.float32(math.sqrt(12.0 * var))
        return part + n * part

    return by_row_strips(speckle, rgb, out=rgb)  # strips top to bottom: the draws of one whole-image draw


def _wiener(x: np.ndarray, noise_var: float, size: int = 5) -> np.ndarray:
    """Adaptive (local-statistics) Wiener filter per channel, known noise variance: ``x`` is overwritten
    with the result. A channel at a time (the local statistics of one plane at once), then per pixel in
    row strips: the numbers of the (H, W, 3) filters of size 1 along the channels."""
    for k in range(x.shape[2]):
        plane = x[..., k]
        mean = ndimage.uniform_filter(plane, size=size, mode="reflect")
        sq = ndimage.uniform_filter(plane * plane, size=size, mode="reflect")
        for rows in row_strips(*x.shape[:2]):
            m = mean[rows]
            var = np.maximum(sq[rows] - m * m, 0.0)
            gain = np.maximum(var - noise_var, 0.0) / np.maximum(var, noise_var)
            plane[rows] = m + gain * (plane[rows] - m)
        del mean, sq
    return x


def _denoise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """#15: white Gaussian noise of std ``sigma``, then denoised: the residual smoothing and blotches of
    a denoiser are the distortion (ours: a 5x5 adaptive Wiener filter, not KADID's learned denoiser)."""

    def add_noise(part: np.ndarray) -> np.ndarray:
        noisy = part + np.float32(sigma) * rng.standard_normal(part.shape, dtype=np.float32)
        return np.clip(noisy, 0.0, 1.0, out=noisy)

    noisy = by_row_strips(add_noise, rgb, out=rgb)  # strips top to bottom: the noise of one whole-image draw
    return _wiener(noisy, sigma * sigma)


def _brighten(rgb: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """#16: tone curve through (0, 0), (0.5, 0.5 + amount / 2), (1, 1) applied to RGB and to Lab L; the
    result is (2 * RGB-curve + Lab-curve) / 3."""
    knots = ([0.0, 0.5, 1.0], [0.0, 0.5 + amount / 2.0, 1.0])

    def brighten(part: np.ndarray) -> np.ndarray:
        lab = _lab(part)
        lab[..., 0] = _spline_curve(lab[..., 0] / 100.0, *knots) * 100.0
        via_lab = np.clip(_rgb(lab), 0.0, 1.0)
        return (2.0 * _spline_curve(part, *knots) + via_lab) / 3.0

    return by_row_strips(brighten, rgb, out=rgb)  # per pixel: a strip at a time


def _darken(rgb: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """#17: tone curve through (0, 0), (0.5, 0.5 - amount / 2), (1, 1) on RGB."""
    knots = ([0.0, 0.5, 1.0], [0.0, 0.5 - amount / 2.0, 1.0])
    return by_row_strips(lambda part: _spline_curve(part, *knots), rgb, out=rgb)


def _mean_shift(rgb: np.ndarray, shift: float, rng: np.random.Generator) -> np.ndarray:
    """#18: every value shifted by +/- ``shift`` (sign from the seed), then clipped."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    rgb += np.float32(sign * shift)
    return rgb


def _jitter(rgb: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """#19: five rounds of warping by a random per-pixel displacement (normal, std ``amount`` pixels),
    bilinear resampling, replicated borders. Each round warps the first ``mapmm``'s array in place, a row
    strip at a time (:func:`_warp_rows`)."""
    for _ in range(5):
        _warp_rows(rgb, amount, rng)
    return rgb


def _warp_rows(rgb: np.ndarray, amount: float, rng: np.random.Generator) -> None:
    """One round of :func:`_jitter` into ``rgb``: the draws of one (2, H, W) draw (the row displacements as a
    whole plane first, then the column ones strip by strip: the same stream), each strip's output resampled
    from only the rows its sample positions reach (the positions less that first row, in float64: exact, so
    the bilinear weights and the borders are the whole image's) and written once no later strip reads them."""
    h, w = rgb.shape[:2]
    ys = rng.standard_normal((h, w), dtype=np.float32)
    ys *= np.float32(amount)  # the displacement, made the sample rows in place
    np.subtract(np.arange(h, dtype=np.float32)[:, None], ys, out=ys)
    xx = np.arange(w, dtype=np.float32)
    strips = row_strips(h, w)
    reach = [_rows_read(ys[rows], h) for rows in strips]
    first_read = [min(lo for lo, _ in reach[i:]) for i in range(len(strips))]  # by this strip or a later one
    held: list[tuple[slice, np.ndarray]] = []
    for i, (rows, (lo, hi)) in enumerate(zip(strips, reach, strict=True)):
        coords = np.empty((2, rows.stop - rows.start, w), np.float64)
        coords[0] = ys[rows]
        coords[0] -= lo
        dx = rng.standard_normal((rows.stop - rows.start, w), dtype=np.float32)
        dx *= np.float32(amount)
        coords[1] = np.subtract(xx, dx, out=dx)
        part = np.empty((rows.stop - rows.start, w, 3), np.float32)
        for k in range(3):
            part[..., k] = ndimage.map_coordinates(rgb[lo:hi, :, k], coords, order=1, mode="nearest")
        held.append((rows, part))
        later = first_read[i + 1] if i + 1 < len(strips) else h
        while held and held[0][0].stop <= later:  # no later strip reads these rows: written
            done, result = held.pop(0)
            rgb[done] = result
    for done, result in held:
        rgb[done] = result


def _rows_read(ys: np.ndarray, h: int) -> tuple[int, int]:
    """The input rows ``lo:hi`` the bilinear samples at rows ``ys`` read, clamped at the image's edges as
    mode "nearest" clamps them: never empty (every position above the image or below its last row reads the
    first or the last row; an empty slice had map_coordinates read outside the array)."""
    lo = min(max(0, int(np.floor(ys.min()))), h - 1)
    return lo, max(min(h, int(np.floor(ys.max())) + 2), lo + 1)


def _non_eccentricity_patch(rgb: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    """#20: ``count`` patches (16 px at KADID's 512x384 scale) each copied onto a random spot within
    +/- half a patch of where it was taken."""
    h, w = rgb.shape[:2]
    size = max(1, int(round(16 * _patch_scale(rgb))))
    radius = size
    out = rgb  # the first mapmm's: the patches moved in it (each copied out before it is pasted)
    if h < size or w < size:
        return out
    for _ in range(int(count)):
        y = int(rng.integers(0, h - size + 1))
        x = int(rng.integers(0, w - size + 1))
        ty = int(np.clip(y + round((rng.random() - 0.5) * radius), 0, h - size))
        tx = int(np.clip(x + round((rng.random() - 0.5) * radius), 0, w - size))
        out[ty : ty + size, tx : tx + size] = out[y : y + size, x : x + size].copy()
    return out


def _pixelate(rgb: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """#21: nearest-neighbour downscale by z = 0.95 - strength ** 0.6, then back up (nearest)."""
    h, w = rgb.shape[:2]
    z = 0.95 - strength**0.6
    small = Image.fromarray(to_uint8(rgb)).resize(
        (max(1, int(w * z)), max(1, int(h * z))), Image.Resampling.NEAREST
    )
    return to_float(small.resize((w, h), Image.Resampling.NEAREST))


def _quantization(rgb: np.ndarray, levels: float, rng: np.random.Generator) -> np.ndarray:
    """#22: every channel quantized to ``levels`` equally spaced values over [0, 1] (ours: uniform
    thresholds, where KADID uses multi-level Otsu)."""
    n = int(levels)

    def quantize(part: np.ndarray) -> np.ndarray:
        idx = np.clip(np.floor(part * n), 0, n - 1)
        return (idx / (n - 1)).astype(np.float32)

    return by_row_strips(quantize, rgb, out=rgb)


def _color_block(rgb: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    """#23: ``count`` uniformly coloured square patches (32 px at KADID's scale) at random positions."""
    h, w = rgb.shape[:2]
    size = max(1, int(round(32 * _patch_scale(rgb))))
    out = rgb  # the first mapmm's: the blocks painted on it
    for _ in range(int(count)):
        c = rng.random(3, dtype=np.float32)
        y = int(rng.integers(0, max(h - size, 0) + 1))
        x = int(rng.integers(0, max(w - size, 0) + 1))
        out[y : y + size, x : x + size] = c
    return out


def _high_sharpen(rgb: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """#24: over-sharpening: unsharp masking of Lab L, ``L + amount * (L - gauss(L, sigma=3))``
    (MATLAB ``imsharpen`` with radius 3)."""
    lab = _lab_by_strips(rgb)
    blurred = ndimage.gaussian_filter(lab[..., 0], 3.0, mode="nearest")
    for rows in row_strips(*rgb.shape[:2]):  # per pixel once the blur is made, back to RGB in Lab's place
        part = lab[rows]
        lum = part[..., 0]
        part[..., 0] = np.clip(lum + amount * (lum - blurred[rows]), 0, 100)
        part[...] = _rgb(part)
    return lab


def _contrast_change(rgb: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """#25: tone curve through (0, 0), (0.3, 0.25 - a/4), (0.5, 0.5), (0.7, 0.75 + a/4), (1, 1), a not-a-knot
    cubic spline (a < 0 flattens the mid-tones: less contrast)."""
    knots = ([0.0, 0.3, 0.5, 0.7, 1.0], [0.0, 0.25 - amount / 4, 0.5, 0.75 + amount / 4, 1.0])
    return by_row_strips(lambda part: _spline_curve(part, *knots), rgb, out=rgb)


# ---------------------------------------------------------------------------------------------------
# registry entries
# ---------------------------------------------------------------------------------------------------

_GEN = "KADID-10k imdist_generator.m"

_TYPES: tuple[Distortion, ...] = (
    Distortion(
        "kadid_gaussian_blur",
        "sharpness",
        -1,
        _gaussian_blur,
        (0.1, 0.5, 1.0, 2.0, 5.0),
        "sigma (pixels)",
        f"{_GEN} #1",
        kadid_id=1,
    ),
    Distortion(
        "kadid_lens_blur",
        "sharpness",
        -1,
        lens_blur_in_place,  # into the first mapmm's array
        (1.0, 2.0, 4.0, 6.0, 8.0),
        "disk radius (pixels)",
        f"{_GEN} #2",
        kadid_id=2,
        version=2,  # session 63: the FFT in row strips (a byte may differ by one)
    ),
    Distortion(
        "kadid_motion_blur",
        "sharpness",
        -1,
        _motion_blur,
        (1.0, 2.0, 4.0, 6.0, 10.0),
        "line length (pixels), random angle",
        f"{_GEN} #3",
        stochastic=True,
        kadid_id=3,
        version=2,  # session 63: the FFT in row strips (a byte may differ by one)
    ),
    Distortion(
        "kadid_color_diffusion",
        None,
        -1,
        _color_diffusion,
        (1.0, 3.0, 6.0, 8.0, 12.0),
        "amount a (Lab chroma blur sigma 1.5a+2)",
        f"{_GEN} #4; ours: no chroma gain",
        kadid_id=4,
    ),
    Distortion(
        "kadid_color_shift",
        None,
        -1,
        _color_shift,
        (1.0, 3.0, 6.0, 8.0, 12.0),
        "green-channel shift (pixels), random direction",
        f"{_GEN} #5",
        stochastic=True,
        kadid_id=5,
    ),
    Distortion(
        "kadid_color_quantization",
        None,
        -1,
        _color_quantization,
        (64.0, 48.0, 32.0, 16.0, 8.0),
        "palette colours (dithered)",
        f"{_GEN} #6",
        kadid_id=6,
    ),
    Distortion(
        "kadid_color_saturation_1",
        "colorfulness",
        -1,
        _color_saturation_hsv,
        (0.4, 0.2, 0.1, 0.05, 0.0),
        "factor on HSV S",
        f"{_GEN} #7 levels 1-3; ours: levels 4-5 = 0.05, 0 (KADID: 0, -0.4, which re-colours)",
        kadid_id=7,
    ),
    Distortion(
        "kadid_color_saturation_2",
        None,
        -1,
        _color_saturation_lab,
        (1.0, 2.0, 3.0, 6.0, 9.0),
        "factor on Lab a, b",
        f"{_GEN} #8 (level 1 = factor 1, as in KADID)",
        kadid_id=8,
    ),
    Distortion(
        "kadid_jpeg2000",
        None,
        -1,
        _jpeg2000,
        (16.0, 32.0, 45.0, 120.0, 400.0),
        "compression ratio",
        f"{_GEN} #9",
        kadid_id=9,
    ),
    Distortion(
        "kadid_jpeg",
        None,
        -1,
        _jpeg,
        (43.0, 36.0, 24.0, 7.0, 4.0),
        "JPEG quality (IJG scale)",
        f"{_GEN} #10",
        kadid_id=10,
    ),
    Distortion(
        "kadid_white_noise",
        "noisiness",
        -1,
        _white_noise,
        tuple(math.sqrt(v) for v in (0.001, 0.002, 0.003, 0.005, 0.01)),
        "noise std on [0, 1] RGB (variance 0.001..0.01)",
        f"{_GEN} #11",
        stochastic=True,
        kadid_id=11,
    ),
    Distortion(
        "kadid_white_noise_color",
        "noisiness",
        -1,
        _white_noise_ycbcr,
        (0.0001, 0.0005, 0.001, 0.002, 0.003),
        "noise variance on YCbCr in [0, 1]",
        f"{_GEN} #12",
        stochastic=True,
        kadid_id=12,
    ),
    Distortion(
        "kadid_impulse_noise",
        "noisiness",
        -1,
        _impulse_noise,
        (0.001, 0.005, 0.01, 0.02, 0.03),
        "salt & pepper density",
        f"{_GEN} #13",
        stochastic=True,
        kadid_id=13,
    ),
    Distortion(
        "kadid_multiplicative_noise",
        "noisiness",
        -1,
        _multiplicative_noise,
        (0.001, 0.005, 0.01, 0.02, 0.05),
        "speckle variance",
        f"{_GEN} #14",
        stochastic=True,
        kadid_id=14,
    ),
    Distortion(
        "kadid_denoise",
        None,
        -1,
        _denoise,
        (0.01, 0.03, 0.05, 0.1, 0.15),
        "std of the noise removed again (read as std: ours)",
        f"{_GEN} #15 values; ours: Wiener denoiser instead of KADID's learned one",
        stochastic=True,
        kadid_id=15,
    ),
    Distortion(
        "kadid_brighten",
        "brightness",
        1,
        _brighten,
        (0.1, 0.2, 0.4, 0.7, 1.1),
        "mid-tone lift of the tone curve",
        f"{_GEN} #16",
        kadid_id=16,
    ),
    Distortion(
        "kadid_darken",
        "brightness",
        -1,
        _darken,
        (0.05, 0.1, 0.2, 0.4, 0.8),
        "mid-tone drop of the tone curve",
        f"{_GEN} #17",
        kadid_id=17,
    ),
    Distortion(
        "kadid_mean_shift",
        None,
        -1,
        _mean_shift,
        (0.04, 0.08, 0.11, 0.15, 0.2),
        "|shift| on [0, 1] values, sign from the seed",
        "ours, after KADID #18 ([0.15, 0.08, 0, -0.08, -0.15]): magnitudes ordered by strength",
        stochastic=True,
        kadid_id=18,
    ),
    Distortion(
        "kadid_jitter",
        None,
        -1,
        _jitter,
        (0.05, 0.1, 0.2, 0.5, 1.0),
        "displacement std (pixels), 5 rounds",
        f"{_GEN} #19",
        stochastic=True,
        kadid_id=19,
    ),
    Distortion(
        "kadid_non_eccentricity_patch",
        None,
        -1,
        _non_eccentricity_patch,
        (20.0, 40.0, 60.0, 80.0, 100.0),
        "number of displaced patches",
        f"{_GEN} #20; ours: patch size scales with the image",
        stochastic=True,
        kadid_id=20,
    ),
    Distortion(
        "kadid_pixelate",
        None,
        -1,
        _pixelate,
        (0.01, 0.05, 0.1, 0.2, 0.5),
        "strength p (scale 0.95 - p^0.6)",
        f"{_GEN} #21",
        kadid_id=21,
    ),
    Distortion(
        "kadid_quantization",
        None,
        -1,
        _quantization,
        (20.0, 16.0, 13.0, 10.0, 7.0),
        "levels per channel",
        f"{_GEN} #22; ours: uniform thresholds",
        kadid_id=22,
    ),
    Distortion(
        "kadid_color_block",
        None,
        -1,
        _color_block,
        (2.0, 4.0, 6.0, 8.0, 10.0),
        "number of colour blocks",
        f"{_GEN} #23; ours: block size scales with the image",
        stochastic=True,
        kadid_id=23,
    ),
    Distortion(
        "kadid_high_sharpen",
        None,
        -1,
        _high_sharpen,
        (1.0, 2.0, 3.0, 6.0, 12.0),
        "unsharp-mask amount (sigma 3)",
        f"{_GEN} #24",
        kadid_id=24,
    ),
    Distortion(
        "kadid_contrast_change",
        None,
        -1,
        _contrast_change,
        (0.3, 0.15, 0.0, -0.4, -0.6),
        "curve amount a (a = -0.2 is the identity; levels 1-3 raise contrast, 4-5 lower it)",
        f"{_GEN} #25",
        kadid_id=25,
    ),
)

KADID_TYPES: tuple[Distortion, ...] = tuple(
    dataclasses.replace(d, fn=_between_mapmm(d.fn), fn_in_place=_between_mapmm(d.fn, in_place=True))
    for d in _TYPES
)
"""The 25 types as registered: each function runs between the generator's two ``mapmm`` calls (in place
of its input when :func:`attiqa.distortions.apply_distortion` calls it)."""

for _d in KADID_TYPES:
    register_distortion(_d)

KADID_NAMES: tuple[str, ...] = tuple(d.name for d in KADID_TYPES)
"""The 25 KADID-10k types in KADID's order (#1 .. #25)."""
