"""The 14-module raw pipeline (ATTIQA supplement §D.3 counts 14 modules; the choice of modules is ours).

Order (front end: fixed per raw; back end: the 16 tuned parameters of :mod:`isp_env.params`):

====  ==========================  ======================================================================
 #    module                      what it does
====  ==========================  ======================================================================
 1    defective pixel correction  a pixel beyond all four same-colour neighbours (±2 px) by more than
                                  10 % of the range is replaced by their mean (openISP's DPC idea)
 2    black level + normalise     subtract the black level of each pixel's colour index, divide by
                                  (white - black), clip to [0, 1]
 3    white balance               camera as-shot gains (G = 1), highlights clipped at 1
 4    demosaic                    Malvar–He–Cutler (ICASSP 2004) 5x5 gradient-corrected bilinear,
                                  any 2x2 layout; previews use 2x2 binning instead (LibRaw's half_size)
 5    colour correction           camera RGB -> linear sRGB (LibRaw's rgb_cam from the file's matrices)
 6    tone mapping (3)            auto-exposure (99th luma percentile -> 1, like dcraw's auto-bright) x
                                  2^exposure, power-law gamma, global S-curve
 7    RGB -> YUV                  BT.601 full range
 8    Y denoise (2)               Gaussian low-pass + soft-thresholded detail (coring)
 9    UV denoise (3)              Gaussian low-pass + soft-thresholded chroma detail, blended by strength
 10   brightness / contrast (2)   Y offset, Y gain around 0.5
 11   hue / saturation (2)        rotation and gain of the UV plane
 12   sharpening (3)              unsharp mask on Y with a coring threshold
 13   texture enhancement (1)     gain of Y's mid band (difference of Gaussians, sigma 2 and 6 px @ 512)
 14   YUV -> RGB + output         BT.601 inverse, clip, 8-bit quantisation
====  ==========================  ======================================================================

Everything is vectorised numpy/scipy (float32); large blurs run on a downsampled copy (a Gaussian pyramid
step) and are upsampled bilinearly — ours, for speed at 12 MP. Non-finite values can't leave the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from isp_env.params import check_values
from isp_env.raw import RawImage

REF_LONG_SIDE = 512
"""Spatial parameters are in pixels of an image with this long side."""
DPC_THRESHOLD = 0.1
AE_PERCENTILE = 99.0
AE_GAIN_RANGE = (0.25, 64.0)
MODULES: tuple[str, ...] = (
    "defective_pixel_correction", "black_level", "white_balance", "demosaic", "color_correction",
    "tone_mapping", "rgb_to_yuv", "y_denoise", "uv_denoise", "brightness_contrast", "hue_saturation",
    "sharpening", "texture", "yuv_to_rgb",
)

# --- Malvar-He-Cutler kernels as (dy, dx, weight) taps, weights / 8 (ICASSP 2004, Fig. 2) -------------------
_G_AT_RB = [(0, 0, 4), (-1, 0, 2), (1, 0, 2), (0, -1, 2), (0, 1, 2), (-2, 0, -1), (2, 0, -1), (0, -2, -1),
            (0, 2, -1)]
_ROW = [(0, 0, 5), (0, -1, 4), (0, 1, 4), (0, -2, -1), (0, 2, -1), (-1, -1, -1), (-1, 1, -1), (1, -1, -1),
        (1, 1, -1), (-2, 0, 0.5), (2, 0, 0.5)]  # value of the channel found left/right of a G pixel
_COL = [(dx, dy, w) for dy, dx, w in _ROW]  # ... found above/below
_DIAG = [(0, 0, 6), (-1, -1, 2), (-1, 1, 2), (1, -1, 2), (1, 1, 2), (-2, 0, -1.5), (2, 0, -1.5),
         (0, -2, -1.5), (0, 2, -1.5)]  # R at B and B at R


def _taps(padded: np.ndarray, py: int, px: int, taps, h2: int, w2: int) -> np.ndarray:
    """Sum of weighted shifted samples; taps of equal weight are added first and multiplied once."""
    groups: dict[float, list[tuple[int, int]]] = {}
    for dy, dx, w in taps:
        groups.setdefault(w, []).append((dy, dx))
    out = np.zeros((h2, w2), dtype=np.float32)
    acc = np.empty((h2, w2), dtype=np.float32)
    for w, offsets in groups.items():
        for i, (dy, dx) in enumerate(offsets):
            y0, x0 = 2 + py + dy, 2 + px + dx
            view = padded[y0 : y0 + 2 * h2 : 2, x0 : x0 + 2 * w2 : 2]
            if i == 0:
                np.copyto(acc, view)
            else:
                np.add(acc, view, out=acc)
        acc *= np.float32(w / 8.0)
        out += acc
    return out


def demosaic_mhc(cfa_img: np.ndarray, cfa: np.ndarray) -> np.ndarray:
    """Malvar–He–Cutler demosaic of an (H, W) mosaic (even H, W) with 2x2 layout ``cfa`` -> (H, W, 3)."""
    h, w = cfa_img.shape
    h2, w2 = h // 2, w // 2
    padded = np.pad(cfa_img, 2, mode="reflect")  # reflect keeps the Bayer parity
    rgb = np.empty((h, w, 3), dtype=np.float32)
    for py in range(2):
        for px in range(2):
            c = int(cfa[py, px])
            rgb[py::2, px::2, c] = cfa_img[py::2, px::2]
            if c != 1:
                rgb[py::2, px::2, 1] = _taps(padded, py, px, _G_AT_RB, h2, w2)
                rgb[py::2, px::2, 2 - c] = _taps(padded, py, px, _DIAG, h2, w2)
            else:
                horizontal = int(cfa[py, 1 - px])
                rgb[py::2, px::2, horizontal] = _taps(padded, py, px, _ROW, h2, w2)
                rgb[py::2, px::2, 2 - horizontal] = _taps(padded, py, px, _COL, h2, w2)
    return rgb


def defective_pixel_correction(mosaic: np.ndarray, threshold: float) -> np.ndarray:
    """Replace pixels beyond all four same-colour axial neighbours (±2 px) by more than ``threshold``.

    Works on the uint16 mosaic (half the memory traffic of float32); only flagged pixels are recomputed.
    """
    h, w = mosaic.shape
    p = np.pad(mosaic, 2, mode="reflect")
    n = [p[0:h, 2 : 2 + w], p[4 : 4 + h, 2 : 2 + w], p[2 : 2 + h, 0:w], p[2 : 2 + h, 4 : 4 + w]]
    hi = np.maximum(np.maximum(n[0], n[1]), np.maximum(n[2], n[3]))
    lo = np.minimum(np.minimum(n[0], n[1]), np.minimum(n[2], n[3]))
    t = np.uint16(min(max(threshold, 0), 65535))
    # unsigned differences are only read where they can't wrap (m > hi, resp. m < lo)
    bad = ((mosaic > hi) & (mosaic - hi > t)) | ((mosaic < lo) & (lo - mosaic > t))
    ys, xs = np.nonzero(bad)
    if ys.size == 0:
        return mosaic
    out = mosaic.copy()
    out[ys, xs] = np.round(sum(nb[ys, xs].astype(np.float64) for nb in n) / 4.0).astype(np.uint16)
    return out


@dataclass
class Developed:
    """Output of the front end (modules 1-5): linear sRGB and the auto-exposure gain, cached per raw."""

    linear: np.ndarray  # (H, W, 3) float32, >= 0
    ae_gain: float
    name: str = ""

    @property
    def scale(self) -> float:
        return max(self.linear.shape[:2]) / REF_LONG_SIDE


def _resize(x: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t, size=size, mode=mode, **kw)[0].permute(1, 2, 0).contiguous().numpy()


def preview_size(h: int, w: int, long_side: int) -> tuple[int, int]:
    s = long_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def develop(raw: RawImage, long_side: int | None = None) -> Developed:
    """Front end (modules 1-5). ``long_side``: a preview of that long side (2x2 binning instead of demosaic
    when the preview is at most half the sensor size); ``None``: full resolution."""
    h, w = (raw.mosaic.shape[0] // 2) * 2, (raw.mosaic.shape[1] // 2) * 2
    rng = np.float32(max(raw.white - float(raw.black.min()), 1.0))
    m = defective_pixel_correction(raw.mosaic[:h, :w], DPC_THRESHOLD * rng).astype(np.float32)  # 1
    scale = np.empty((2, 2), dtype=np.float32)
    for py in range(2):
        for px in range(2):
            den = max(raw.white - raw.black[py, px], 1.0)
            scale[py, px] = raw.wb_gains[raw.cfa[py, px]] / den
            m[py::2, px::2] -= np.float32(raw.black[py, px])  # 2
            m[py::2, px::2] *= scale[py, px]  # 2 + 3 (normalise and white-balance in one multiply)
    np.clip(m, 0.0, 1.0, out=m)  # highlights clip at sensor saturation
    binned = long_side is not None and 2 * long_side <= max(h, w)
    if binned:  # preview: each 2x2 tile -> one RGB pixel (G = mean of the two greens)
        rgb = np.zeros((h // 2, w // 2, 3), dtype=np.float32)
        for py in range(2):
            for px in range(2):
                c = int(raw.cfa[py, px])
                rgb[..., c] += m[py::2, px::2] * (0.5 if c == 1 else 1.0)
    else:
        rgb = demosaic_mhc(m, raw.cfa)  # 4
    ccm = np.nan_to_num(raw.cam_to_srgb, nan=0.0, posinf=0.0, neginf=0.0).T.astype(np.float32)
    rgb = rgb @ ccm  # 5 (finite: uint16 data times a finite matrix)
    np.maximum(rgb, 0.0, out=rgb)
    if long_side is not None and max(rgb.shape[:2]) != long_side:
        mode = "area" if max(rgb.shape[:2]) > long_side else "bilinear"
        rgb = _resize(rgb, preview_size(*rgb.shape[:2], long_side), mode)
    y = rgb[::4, ::4] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    p = float(np.percentile(y, AE_PERCENTILE)) if y.size else 1.0
    gain = float(np.clip(1.0 / p, *AE_GAIN_RANGE)) if p > 0 and np.isfinite(p) else 1.0
    return Developed(rgb.astype(np.float32, copy=False), gain, raw.name)


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of planar (H, W) or (C, H, W) float32 data.

    Sigmas of 3 px and more run on a copy downsampled by an integer factor f (box average), blurred by the
    remaining sigma and upsampled bilinearly (one Gaussian-pyramid step; ours, for speed at 12 MP).
    """
    return band(x, sigma, None)


def band(x: np.ndarray, sigma: float, sigma2: float | None) -> np.ndarray:
    """``blur(x, sigma) - blur(x, sigma2)`` (``sigma2=None``: just the blur), both on one downsampled copy."""
    if sigma < 3.0 or min(x.shape[-2:]) < 64:
        low = _gauss(x, sigma)
        return low if sigma2 is None else low - _gauss(x, sigma2)
    f = int(sigma // 1.5)
    h, w = x.shape[-2:]
    hp, wp = -(-h // f) * f, -(-w // f) * f
    pad = [(0, 0)] * (x.ndim - 2) + [(0, hp - h), (0, wp - w)]
    xp = np.pad(x, pad, mode="edge") if (hp, wp) != (h, w) else x
    small = xp.reshape(*x.shape[:-2], hp // f, f, wp // f, f).mean(axis=(-3, -1), dtype=np.float32)

    def rest(s: float) -> float:  # the Gaussian left after the box filter (minus its variance), in small px
        return float(np.sqrt(max(s**2 - (f**2 - 1) / 12.0, 1e-6)) / f)

    out = _gauss(small, rest(sigma))
    if sigma2 is not None:
        out -= _gauss(small, rest(sigma2))
    # columns first while the array is short, then rows
    return _upsample_rows(_upsample_axis(out, f, w, x.ndim - 1), f, h)


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian over the last two axes."""
    return gaussian_filter(x, (0.0,) * (x.ndim - 2) + (sigma, sigma), mode="reflect", truncate=3.0)


def _upsample_rows(a: np.ndarray, f: int, n: int) -> np.ndarray:
    """Linear interpolation by an integer factor ``f`` along axis -2 to ``n`` rows (pixel centres), by
    slicing: output row f*k + j mixes input rows k-1, k or k, k+1 with a weight that depends only on j."""
    hs = a.shape[-2]
    out = np.empty((*a.shape[:-2], hs * f, a.shape[-1]), dtype=np.float32)
    view = out.reshape(*a.shape[:-2], hs, f, a.shape[-1])
    d = a[..., 1:, :] - a[..., :-1, :] if hs > 1 else None
    for j in range(f):
        t = (j + 0.5) / f - 0.5
        dst = view[..., :, j, :]
        if d is None:
            dst[...] = a
        elif t < 0:  # between rows k-1 and k (row 0 clamps)
            np.multiply(d, np.float32(1.0 + t), out=dst[..., 1:, :])
            dst[..., 1:, :] += a[..., :-1, :]
            dst[..., 0, :] = a[..., 0, :]
        else:  # between rows k and k+1 (the last row clamps)
            np.multiply(d, np.float32(t), out=dst[..., :-1, :])
            dst[..., :-1, :] += a[..., :-1, :]
            dst[..., -1, :] = a[..., -1, :]
    return out[..., :n, :]


def _upsample_axis(a: np.ndarray, f: int, n: int, axis: int) -> np.ndarray:
    """Linear interpolation by an integer factor ``f`` along ``axis`` to length ``n`` (pixel centres)."""
    src = (np.arange(n, dtype=np.float32) + 0.5) / f - 0.5
    src = np.clip(src, 0.0, a.shape[axis] - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, a.shape[axis] - 1)
    shape = [1] * a.ndim
    shape[axis] = n
    wt = (src - i0).astype(np.float32).reshape(shape)
    lo = np.take(a, i0, axis=axis)
    out = np.take(a, i1, axis=axis)
    out -= lo
    out *= wt
    out += lo
    return out


def _clip_detail(x: np.ndarray, low: np.ndarray, t: float) -> np.ndarray:
    """clip(x - low, -t, t), in place in ``low``'s buffer: x - this = low + soft-threshold(x - low, t)."""
    np.subtract(x, low, out=low)
    t = np.float32(t)
    return np.clip(low, -t, t, out=low)


TONE_LUT_SIZE = 16384


def tone_lut(gamma: float, curve: float) -> np.ndarray:
    """Gamma and S-curve of module 6 sampled on [0, 1] (16384 entries; finer than the 8-bit output)."""
    x = np.linspace(0.0, 1.0, TONE_LUT_SIZE, dtype=np.float64) ** gamma
    return (x - curve / (2 * np.pi) * np.sin(2 * np.pi * x)).astype(np.float32)


_RGB2YUV = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
                    dtype=np.float32)
_YUV2RGB = np.linalg.inv(_RGB2YUV.astype(np.float64)).astype(np.float32)


def finish(dev: Developed, values: dict[str, float]) -> np.ndarray:
    """Back end (modules 6-14) with the 16 parameters -> (H, W, 3) uint8 sRGB."""
    v = check_values(values)
    s = dev.scale
    px = lambda sigma: max(sigma * s, 0.5)  # noqa: E731  (sigmas in px @ 512 -> px here, at least 0.5)
    # 6 tone mapping
    idx = dev.linear * np.float32(dev.ae_gain * 2.0 ** v["tone_exposure"] * (TONE_LUT_SIZE - 1))
    idx += np.float32(0.5)  # round to the nearest LUT entry
    np.clip(idx, 0.0, TONE_LUT_SIZE - 1, out=idx)
    x = tone_lut(v["tone_gamma"], v["tone_curve"])[idx.astype(np.int32)]
    del idx
    # 7 RGB -> YUV (planar from here on)
    y = x @ _RGB2YUV[0]
    uv = np.stack([x @ _RGB2YUV[1], x @ _RGB2YUV[2]])
    del x
    # 8 Y denoise
    # low + shrink(y - low, t) == y - clip(y - low, -t, t): fewer passes over the image
    if v["y_nr_threshold"] > 0:
        y -= _clip_detail(y, blur(y, px(v["y_nr_sigma"])), v["y_nr_threshold"])
    # 9 UV denoise: uv + s * (denoised - uv) == uv - s * clip(uv - low, -t, t)
    if v["uv_nr_strength"] > 0:
        d = _clip_detail(uv, blur(uv, px(v["uv_nr_sigma"])), v["uv_nr_threshold"])
        d *= np.float32(v["uv_nr_strength"])
        uv -= d
    # 10 brightness / contrast
    if v["contrast"] != 1.0 or v["brightness"] != 0.0:
        y = (y - np.float32(0.5)) * np.float32(v["contrast"]) + np.float32(0.5 + v["brightness"])
    # 11 hue / saturation: rotate the (U, V) plane and scale it
    a = np.deg2rad(v["hue"])
    rot = v["saturation"] * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    # 12 sharpening
    if v["sharpen_amount"] > 0:
        detail = y - blur(y, px(v["sharpen_sigma"]))
        detail -= np.clip(detail, -np.float32(v["sharpen_threshold"]), np.float32(v["sharpen_threshold"]))
        detail *= np.float32(v["sharpen_amount"])  # amount * shrink(detail, threshold)
        y += detail
    # 13 texture
    if v["texture_gain"] != 0.0:
        mid = band(y, px(2.0), px(6.0))
        mid *= np.float32(v["texture_gain"])
        y += mid
    # 14 YUV -> RGB (with module 11's rotation folded into the matrix), quantise
    m = _YUV2RGB.astype(np.float64) * 255.0
    m_uv = (m[:, 1:] @ rot).astype(np.float32)
    out = np.empty((*y.shape, 3), dtype=np.uint8)
    for c in range(3):
        plane = y * np.float32(m[c, 0])
        plane += m_uv[c, 0] * uv[0]
        plane += m_uv[c, 1] * uv[1]
        plane += np.float32(0.5)
        np.clip(plane, 0.0, 255.0, out=plane)  # NaN can't arise: finite inputs (develop), checked parameters
        out[..., c] = plane
    return out


def render(raw: RawImage, values: dict[str, float] | None = None, long_side: int | None = None) -> np.ndarray:
    """Raw -> 8-bit sRGB (H, W, 3): full resolution when ``long_side`` is None, else a preview."""
    return finish(develop(raw, long_side), values or {})
