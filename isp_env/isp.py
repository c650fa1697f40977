"""The 14-module raw pipeline (ATTIQA supplement §D.3 counts 14 modules; the choice of modules is ours).

Order (front end: fixed per raw; back end: the 16 tuned parameters of :mod:`isp_env.params`):

====  ==========================  ======================================================================
 #    module                      what it does
====  ==========================  ======================================================================
 1    defective pixel correction  a pixel beyond all four same-colour neighbours (±2 px) by more than
                                  10 % of the range is replaced by their mean (openISP's DPC idea)
 2    black level + normalise     subtract the black level of each pixel's colour index, divide by
                                  (white - the smallest black) — one range for every channel, as
                                  LibRaw — clip to [0, 1]
 3    white balance               camera as-shot gains (the smallest 1), highlights clipped at 1
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

Speed (issue 6: a 12 MP render within 2x of ``rawpy.postprocess()``, which uses every core): each pass runs
in cache-sized horizontal strips on a thread pool (:mod:`isp_env.strips`); the front end is one pass, the
back end four, each fusing the element-wise modules between two blurs. Renders are bit-identical for any
thread count and match the earlier whole-image pipeline (``tests/isp_reference.py``) to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from isp_env.params import check_values
from isp_env.raw import RawImage, stretched
from isp_env.strips import run_strips, strip_rows

REF_LONG_SIDE = 512
"""Spatial parameters are in pixels of an image with this long side."""
DPC_THRESHOLD = 0.1
AE_PERCENTILE = 99.0
AE_GAIN_RANGE = (0.25, 64.0)
MODULES: tuple[str, ...] = (
    "defective_pixel_correction",
    "black_level",
    "white_balance",
    "demosaic",
    "color_correction",
    "tone_mapping",
    "rgb_to_yuv",
    "y_denoise",
    "uv_denoise",
    "brightness_contrast",
    "hue_saturation",
    "sharpening",
    "texture",
    "yuv_to_rgb",
)

# --- Malvar-He-Cutler kernels as (dy, dx, weight) taps, weights / 8 (ICASSP 2004, Fig. 2) -------------------
# (kept one row a kernel, as in the paper's figure)
# fmt: off
_G_AT_RB = [(0, 0, 4), (-1, 0, 2), (1, 0, 2), (0, -1, 2), (0, 1, 2), (-2, 0, -1), (2, 0, -1), (0, -2, -1),
            (0, 2, -1)]
_ROW = [(0, 0, 5), (0, -1, 4), (0, 1, 4), (0, -2, -1), (0, 2, -1), (-1, -1, -1), (-1, 1, -1), (1, -1, -1),
        (1, 1, -1), (-2, 0, 0.5), (2, 0, 0.5)]  # value of the channel found left/right of a G pixel
_COL = [(dx, dy, w) for dy, dx, w in _ROW]  # ... found above/below
_DIAG = [(0, 0, 6), (-1, -1, 2), (-1, 1, 2), (1, -1, 2), (1, 1, 2), (-2, 0, -1.5), (2, 0, -1.5),
         (0, -2, -1.5), (0, 2, -1.5)]  # R at B and B at R
# fmt: on


def _taps(
    padded: np.ndarray, py: int, px: int, taps: Sequence[tuple[int, int, float]], h2: int, w2: int
) -> np.ndarray:
    """Sum of weighted shifted samples; taps of equal weight are added first and multiplied once."""
    groups: dict[float, list[tuple[int, int]]] = {}
    for dy, dx, w in taps:
        groups.setdefault(w, []).append((dy, dx))
    out: np.ndarray | None = None
    acc = np.empty((h2, w2), dtype=np.float32)
    for w, offsets in groups.items():
        views = [
            padded[2 + py + dy : 2 + py + dy + 2 * h2 : 2, 2 + px + dx : 2 + px + dx + 2 * w2 : 2]
            for dy, dx in offsets
        ]
        total = views[0] if len(views) == 1 else np.add(views[0], views[1], out=acc)
        for view in views[2:]:
            np.add(acc, view, out=acc)
        if out is None:
            out = np.multiply(total, np.float32(w / 8.0))
        else:
            out += np.multiply(total, np.float32(w / 8.0), out=acc)
    assert out is not None, "no taps"
    return out


def _mhc(padded: np.ndarray, cfa: np.ndarray, h: int, w: int) -> np.ndarray:
    """Malvar–He–Cutler demosaic of an (h, w) mosaic given padded by 2 px (reflected) -> (h, w, 3)."""
    h2, w2 = h // 2, w // 2
    rgb = np.empty((h, w, 3), dtype=np.float32)
    for py in range(2):
        for px in range(2):
            c = int(cfa[py, px])
            rgb[py::2, px::2, c] = padded[2 + py : 2 + py + h : 2, 2 + px : 2 + px + w : 2]
            if c != 1:
                rgb[py::2, px::2, 1] = _taps(padded, py, px, _G_AT_RB, h2, w2)
                rgb[py::2, px::2, 2 - c] = _taps(padded, py, px, _DIAG, h2, w2)
            else:
                horizontal = int(cfa[py, 1 - px])
                rgb[py::2, px::2, horizontal] = _taps(padded, py, px, _ROW, h2, w2)
                rgb[py::2, px::2, 2 - horizontal] = _taps(padded, py, px, _COL, h2, w2)
    return rgb


def demosaic_mhc(cfa_img: np.ndarray, cfa: np.ndarray) -> np.ndarray:
    """Malvar–He–Cutler demosaic of an (H, W) mosaic (even H, W) with 2x2 layout ``cfa`` -> (H, W, 3)."""
    return _mhc(np.pad(cfa_img, 2, mode="reflect"), cfa, *cfa_img.shape)  # reflect keeps the Bayer phase


def _normalised(src: np.ndarray, threshold: np.uint16, black: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Modules 1-3 on a uint16 mosaic window (even offsets): the window without its 2-px border, float32.

    1: a pixel beyond all four same-colour axial neighbours (±2 px) by more than ``threshold`` becomes their
    rounded mean (compared in uint16: half the memory traffic of float32; only flagged pixels are recomputed).
    2 + 3: minus the black level of the pixel's colour index, times white balance / range, clip to
    [0, 1] (highlights clip at sensor saturation).
    """
    m = src[2:-2, 2:-2]
    n = [src[:-4, 2:-2], src[4:, 2:-2], src[2:-2, :-4], src[2:-2, 4:]]
    hi = np.maximum(np.maximum(n[0], n[1]), np.maximum(n[2], n[3]))
    lo = np.minimum(np.minimum(n[0], n[1]), np.minimum(n[2], n[3]))
    # unsigned differences are only read where they can't wrap (m > hi, resp. m < lo)
    bad = ((m > hi) & (m - hi > threshold)) | ((m < lo) & (lo - m > threshold))
    out = m.astype(np.float32)
    ys, xs = np.nonzero(bad)
    if ys.size:
        out[ys, xs] = np.round(sum(nb[ys, xs].astype(np.float64) for nb in n) / 4.0).astype(np.uint16)
    pairs = out.reshape(out.shape[0] // 2, 2, out.shape[1])  # [row pair, py, column]
    reps = (1, out.shape[1] // 2)
    pairs -= np.tile(black, reps)  # (2, columns): each pixel's value for its Bayer phase
    pairs *= np.tile(scale, reps)
    return np.clip(out, 0.0, 1.0, out=out)


GEMM_ROWS = 16384
"""Rows per colour-correction matmul: m*n*k = 16384*3*3 stays under OpenBLAS's threading threshold (262144),
so BLAS never starts threads inside ours (threaded calls were much slower on a busy machine: docs/isp.md)."""


def _matmul_rows(src: np.ndarray, mat: np.ndarray, dst: np.ndarray) -> None:
    """``dst = src @ mat`` for (N, 3) rows, in matmuls of at most :data:`GEMM_ROWS` rows (``src`` may be a
    transposed view of planar data: BLAS reads it in place)."""
    for i in range(0, len(src), GEMM_ROWS):
        np.matmul(src[i : i + GEMM_ROWS], mat, out=dst[i : i + GEMM_ROWS])


def _color_correct(dst: np.ndarray, cam: np.ndarray, ccm: np.ndarray) -> None:
    """Module 5: ``dst = max(cam @ ccm, 0)`` for (n, w, 3) camera RGB (``dst`` contiguous). Matmuls of at most
    :data:`GEMM_ROWS` rows: per element the same arithmetic as the matmul of the whole image (tested)."""
    _matmul_rows(cam.reshape(-1, 3), ccm, dst.reshape(-1, 3))
    np.maximum(dst, 0.0, out=dst)  # finite: uint16 data times a finite matrix


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
    when the preview is at most half the sensor size); ``None``: full resolution.

    Runs in strips of mosaic rows (:mod:`isp_env.strips`): a strip reads its rows plus a 4-row halo of the
    mosaic reflect-padded once by 4 px (2 px for defect correction, 2 more for the demosaic's 5x5 kernels;
    reflection commutes with the symmetric defect test, so this equals padding each module's output).
    """
    if raw.cfa.shape != (2, 2):  # X-Trans: no 2x2 tile for the defect test, the MHC kernels or binning
        return develop_any_cfa(raw, long_side)
    h, w = (raw.mosaic.shape[0] // 2) * 2, (raw.mosaic.shape[1] // 2) * 2
    rng = max(raw.white - float(raw.black.min()), 1.0)
    threshold = np.uint16(min(max(DPC_THRESHOLD * np.float32(rng), 0), 65535))
    black = np.asarray(raw.black, dtype=np.float32)
    scale = wb_scale(raw)[raw.cfa]  # (2, 2): each Bayer position's factor
    ccm = np.nan_to_num(raw.cam_to_srgb, nan=0.0, posinf=0.0, neginf=0.0).T.astype(np.float32)
    padded = np.pad(raw.mosaic[:h, :w], 4, mode="reflect")  # reflect keeps the Bayer phase
    binned = long_side is not None and 2 * long_side <= max(stretched(h, w, raw.pixel_aspect))
    rgb = np.empty((h // 2, w // 2, 3) if binned else (h, w, 3), dtype=np.float32)

    def strip(lo: int, hi: int) -> None:  # mosaic rows [lo, hi), lo and hi even
        n = hi - lo
        m = _normalised(padded[lo : hi + 8], threshold, black, scale)  # rows lo-2 .. hi+2 (padded by 2)
        if binned:  # preview: each 2x2 tile -> one RGB pixel (G = mean of the two greens)
            cam = np.zeros((n // 2, w // 2, 3), dtype=np.float32)
            for py in range(2):
                for px in range(2):
                    c = int(raw.cfa[py, px])
                    cam[..., c] += m[2 + py : -2 : 2, 2 + px : -2 : 2] * np.float32(0.5 if c == 1 else 1.0)
            _color_correct(rgb[lo // 2 : hi // 2], cam, ccm)
        else:
            _color_correct(rgb[lo:hi], _mhc(m, raw.cfa, n, w), ccm)  # 4, 5

    run_strips(strip, h, strip_rows(w), h * w)
    if raw.pixel_aspect != 1.0:  # non-square pixels (a D1X rendered half as wide)
        rgb = stretch(rgb, raw.pixel_aspect)
    return resized_with_exposure(rgb, long_side, raw.name)


def wb_scale(raw: RawImage) -> np.ndarray:
    """Modules 2-3's factor per colour: white-balance gain over the range, one range for all (a range per
    channel shifted colours)."""
    rng = max(raw.white - float(raw.black.min()), 1.0)
    gains = np.asarray(raw.wb_gains, dtype=np.float64)
    if gains.min() > 0:  # smallest gain 1: all channels reach 1 at saturation, clipped highlights stay white
        gains = gains / gains.min()  # (dcraw's highlight clipping; with G = 1 a gain < 1 tinted them)
    return (gains / rng).astype(np.float32)


def demosaic_any(m: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """Demosaic of a mosaic under any colour filter (``channel``: each pixel's colour, same shape): each
    missing colour is the mean of that colour's pixels in the 5x5 neighbourhood weighted by a separable
    (1, 2, 3, 2, 1) tent (normalised convolution; X-Trans has every colour in each 5x5 window), a pixel's
    own colour kept. Edges reflected with their colours."""
    h, w = m.shape
    mp = np.pad(m, 2, mode="reflect")
    cp = np.pad(channel, 2, mode="reflect")
    taps = np.array([1.0, 2.0, 3.0, 2.0, 1.0], dtype=np.float32)

    def tent(a: np.ndarray) -> np.ndarray:  # (h+4, w+4) -> (h, w)
        rows = sum(t * a[:, k : k + w] for k, t in enumerate(taps))
        return sum(t * rows[k : k + h] for k, t in enumerate(taps))

    out = np.empty((h, w, 3), dtype=np.float32)
    for c in range(3):
        mask = (cp == c).astype(np.float32)
        out[..., c] = np.where(channel == c, m, tent(mp * mask) / np.maximum(tent(mask), 1e-6))
    return out


def develop_any_cfa(raw: RawImage, long_side: int | None = None) -> Developed:
    """:func:`develop` of a raw whose colour filter repeats over more than 2x2 (X-Trans, 6x6): black,
    white balance and range per pixel (modules 2-3), :func:`demosaic_any` (4), colour correction (5); at
    full resolution, a preview resized from it. No defect correction: its test compares a pixel with
    same-colour pixels 2 px away, which X-Trans does not have."""
    h, w = raw.mosaic.shape
    n = raw.cfa.shape[0]
    reps = (-(-h // n), -(-w // raw.cfa.shape[1]))
    channel = np.tile(raw.cfa, reps)[:h, :w]
    black = np.tile(np.asarray(raw.black, dtype=np.float32), reps)[:h, :w]
    m = (raw.mosaic.astype(np.float32) - black) * wb_scale(raw)[channel]
    np.clip(m, 0.0, 1.0, out=m)
    ccm = np.nan_to_num(raw.cam_to_srgb, nan=0.0, posinf=0.0, neginf=0.0).T.astype(np.float32)
    rgb = np.empty((h, w, 3), dtype=np.float32)
    _color_correct(rgb, demosaic_any(m, channel), ccm)
    if raw.pixel_aspect != 1.0:
        rgb = stretch(rgb, raw.pixel_aspect)
    return resized_with_exposure(rgb, long_side, raw.name)


def stretch(rgb: np.ndarray, pixel_aspect: float) -> np.ndarray:
    """LibRaw's ``stretch()``: rows (aspect < 1) or columns (> 1) resampled linearly at steps of the aspect
    (or its inverse) from the first one, the last one repeated past the end."""
    h, w = rgb.shape[:2]
    axis, n = (0, h) if pixel_aspect < 1.0 else (1, w)
    new = stretched(h, w, pixel_aspect)[axis]
    pos = np.arange(new, dtype=np.float64) * (pixel_aspect if pixel_aspect < 1.0 else 1.0 / pixel_aspect)
    i0 = np.minimum(pos.astype(np.intp), n - 1)
    frac = (pos - i0).astype(np.float32)
    a, b = np.take(rgb, i0, axis=axis), np.take(rgb, np.minimum(i0 + 1, n - 1), axis=axis)
    shape = (-1, 1, 1) if axis == 0 else (1, -1, 1)
    return np.ascontiguousarray(a + (b - a) * frac.reshape(shape))


def resized_with_exposure(rgb: np.ndarray, long_side: int | None, name: str) -> Developed:
    """Resize linear sRGB to the preview size (area / bilinear) and measure the auto-exposure gain."""
    if long_side is not None and max(rgb.shape[:2]) != long_side:
        mode = "area" if max(rgb.shape[:2]) > long_side else "bilinear"
        h, w = rgb.shape[:2]
        rgb = _resize(rgb, preview_size(h, w, long_side), mode)
    y = rgb[::4, ::4] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    p = float(np.percentile(y, AE_PERCENTILE)) if y.size else 1.0
    gain = float(np.clip(1.0 / p, *AE_GAIN_RANGE)) if p > 0 and np.isfinite(p) else 1.0
    return Developed(rgb.astype(np.float32, copy=False), gain, name)


class Smooth:
    """A Gaussian blur (or difference of two) of planar (H, W) or (C, H, W) float32 data, read by rows.

    Sigmas of 3 px and more run on a copy downsampled by an integer factor f (box average), blurred by the
    remaining sigma and upsampled bilinearly (one Gaussian-pyramid step; ours, for speed at 12 MP): columns
    are upsampled once (on the small copy's rows), rows only when a strip asks for them, so the full-size
    blur is never stored. Smaller sigmas (and images under 64 px) are blurred directly.
    """

    def __init__(self, x: np.ndarray, sigma: float, sigma2: float | None = None) -> None:
        h, w = x.shape[-2:]
        if sigma < 3.0 or min(h, w) < 64:
            self.f, self.small = 1, gauss(x, sigma)
            if sigma2 is not None:
                self.small -= gauss(x, sigma2)
            return
        f = self.f = int(sigma // 1.5)
        small = _box_down(x, f)

        def rest(s: float) -> float:  # the Gaussian left after the box filter (minus its variance), small px
            return float(np.sqrt(max(s**2 - (f**2 - 1) / 12.0, 1e-6)) / f)

        out = gauss(small, rest(sigma))
        if sigma2 is not None:
            out -= gauss(small, rest(sigma2))
        self.small = upsample_axis(out, f, w, x.ndim - 1)

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) of the full-size result (a read-only view when no upsampling is needed)."""
        if self.f == 1:
            return self.small[..., lo:hi, :]
        hs = self.small.shape[-2]
        src = (np.arange(lo, hi, dtype=np.float32) + np.float32(0.5)) / np.float32(self.f) - np.float32(0.5)
        np.clip(src, 0.0, hs - 1, out=src)  # pixel centres; the first and last rows clamp
        i0 = src.astype(np.intp)
        base = self.small[..., i0, :]
        out = self.small[..., np.minimum(i0 + 1, hs - 1), :]
        out -= base
        out *= (src - i0).astype(np.float32)[:, None]
        out += base
        return out


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of planar (H, W) or (C, H, W) float32 data (see :class:`Smooth`)."""
    return band(x, sigma, None)


def band(x: np.ndarray, sigma: float, sigma2: float | None) -> np.ndarray:
    """``blur(x, sigma) - blur(x, sigma2)`` (``sigma2=None``: just the blur), both on one downsampled copy."""
    return np.array(Smooth(x, sigma, sigma2).rows(0, x.shape[-2]), dtype=np.float32)


def gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian over the last two axes."""
    return gaussian_filter(x, (0.0,) * (x.ndim - 2) + (sigma, sigma), mode="reflect", truncate=3.0)


def _box_down(x: np.ndarray, f: int) -> np.ndarray:
    """Mean of each f x f block over the last two axes (edge-replicated to a multiple of f), in strips."""
    h, w = x.shape[-2:]
    hs, ws, wf = -(-h // f), -(-w // f), w // f
    small = np.empty((*x.shape[:-2], hs, ws), dtype=np.float32)
    inv = np.float32(1.0 / (f * f))

    def strip(a: int, b: int) -> None:  # small rows [a, b)
        acc = None
        for j in range(f):
            if (b - 1) * f + j < h:
                rows = x[..., a * f + j : b * f : f, :]
            else:  # the last block row: rows past the end repeat the last one
                rows = x[..., np.minimum(np.arange(a * f + j, b * f, f), h - 1), :]
            acc = rows.copy() if acc is None else np.add(acc, rows, out=acc)
        assert acc is not None  # f >= 1
        dst = small[..., a:b, :]
        acc[..., : wf * f].reshape(*acc.shape[:-1], wf, f).sum(axis=-1, out=dst[..., :wf])
        if wf < ws:  # the last block column, edge-replicated
            dst[..., wf] = acc[..., wf * f :].sum(axis=-1) + acc[..., -1] * np.float32(ws * f - w)
        dst *= inv

    run_strips(strip, hs, max(1, -(-strip_rows(w, 1) // f)), h * w)
    return small


def upsample_axis(a: np.ndarray, f: int, n: int, axis: int) -> np.ndarray:
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


TONE_LUT_SIZE = 16384


def tone_lut(gamma: float, curve: float) -> np.ndarray:
    """Gamma and S-curve of module 6 sampled on [0, 1] (16384 entries; finer than the 8-bit output)."""
    x = np.linspace(0.0, 1.0, TONE_LUT_SIZE, dtype=np.float64) ** gamma
    return (x - curve / (2 * np.pi) * np.sin(2 * np.pi * x)).astype(np.float32)


# BT.601 full range: modules 7 (RGB -> YUV) and 14 (back)
RGB2YUV = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32
)
YUV2RGB = np.linalg.inv(RGB2YUV.astype(np.float64)).astype(np.float32)


def _denoise(x: np.ndarray, low: np.ndarray, t: float, strength: float | None = None) -> None:
    """``x -= strength * clip(x - low, -t, t)`` in place: low + shrink(x - low, t) blended by strength."""
    d = np.subtract(x, low)
    np.clip(d, -np.float32(t), np.float32(t), out=d)
    if strength is not None:
        d *= np.float32(strength)
    x -= d


def finish(dev: Developed, values: dict[str, float]) -> np.ndarray:
    """Back end (modules 6-14) with the 16 parameters -> (H, W, 3) uint8 sRGB.

    Four passes of strips (:mod:`isp_env.strips`), each fusing the element-wise work between two blurs:
    6-7 tone map to YUV; 8 + 10 Y denoise, brightness/contrast; 12 sharpening; 13 texture, 9 UV denoise
    (moved here: chroma doesn't interact with luma) and 11 + 14 to 8-bit RGB. Passes of disabled modules
    are skipped.
    """
    v = check_values(values)
    s = dev.scale
    px = lambda sigma: max(sigma * s, 0.5)  # noqa: E731  (sigmas in px @ 512 -> px here, at least 0.5)
    h, w = dev.linear.shape[:2]

    def run(fn: Callable[[int, int], None]) -> None:
        run_strips(fn, h, strip_rows(w, 1), h * w)

    # 6 tone mapping (LUT), 7 RGB -> YUV (planar from here on)
    lut = tone_lut(v["tone_gamma"], v["tone_curve"])
    gain = np.float32(dev.ae_gain * 2.0 ** v["tone_exposure"] * (TONE_LUT_SIZE - 1))
    yuv = np.empty((3, h, w), dtype=np.float32)  # planar: one array, so module 14 can read it as (N, 3)
    y, uv = yuv[0], yuv[1:]

    def to_yuv(lo: int, hi: int) -> None:
        idx = np.multiply(dev.linear[lo:hi], gain)
        idx += np.float32(0.5)  # round to the nearest LUT entry (>= 0.5: linear >= 0)
        np.minimum(idx, TONE_LUT_SIZE - 1, out=idx)  # (before the int conversion: no overflow)
        x = np.take(lut, idx.astype(np.int32), mode="clip")  # take: faster than fancy indexing
        tmp = np.empty((hi - lo, w), dtype=np.float32)
        for row, dst in zip(RGB2YUV, yuv[:, lo:hi], strict=True):  # (matmul writes planar output slowly)
            np.multiply(x[..., 0], row[0], out=dst)
            dst += np.multiply(x[..., 1], row[1], out=tmp)
            dst += np.multiply(x[..., 2], row[2], out=tmp)

    run(to_yuv)
    # 8 Y denoise: low + shrink(y - low, t) == y - clip(y - low, -t, t); 10 brightness / contrast
    y_low = Smooth(y, px(v["y_nr_sigma"])) if v["y_nr_threshold"] > 0 else None
    contrast = v["contrast"] != 1.0 or v["brightness"] != 0.0

    def y_denoise_contrast(lo: int, hi: int) -> None:
        yy = y[lo:hi]
        if y_low is not None:
            _denoise(yy, y_low.rows(lo, hi), v["y_nr_threshold"])
        if contrast:
            yy -= np.float32(0.5)
            yy *= np.float32(v["contrast"])
            yy += np.float32(0.5 + v["brightness"])

    if y_low is not None or contrast:
        run(y_denoise_contrast)
    # 12 sharpening: y += amount * shrink(y - blur(y), threshold)
    if v["sharpen_amount"] > 0:
        sharp_low = Smooth(y, px(v["sharpen_sigma"]))
        t = np.float32(v["sharpen_threshold"])

        def sharpen(lo: int, hi: int) -> None:
            detail = np.subtract(y[lo:hi], sharp_low.rows(lo, hi))
            detail -= np.clip(detail, -t, t)
            detail *= np.float32(v["sharpen_amount"])
            y[lo:hi] += detail

        run(sharpen)
    # 13 texture, 9 UV denoise: uv + s * (denoised - uv) == uv - s * clip(uv - low, -t, t)
    mid = Smooth(y, px(2.0), px(6.0)) if v["texture_gain"] != 0.0 else None
    uv_low = Smooth(uv, px(v["uv_nr_sigma"])) if v["uv_nr_strength"] > 0 else None
    # 11 hue / saturation: rotate the (U, V) plane and scale it; folded into module 14's matrix
    a = np.deg2rad(v["hue"])
    rot = v["saturation"] * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = YUV2RGB.astype(np.float64) * 255.0
    m[:, 1:] = m[:, 1:] @ rot
    to_rgb8 = m.T.astype(np.float32)  # [y, u, v] rows @ this -> 8-bit-scaled RGB
    out = np.empty((h, w, 3), dtype=np.uint8)

    def to_rgb(lo: int, hi: int) -> None:  # 13, 9, then 14 YUV -> RGB and quantise
        yy, u = y[lo:hi], uv[:, lo:hi]
        if mid is not None:
            yy += np.multiply(mid.rows(lo, hi), np.float32(v["texture_gain"]))
        if uv_low is not None:
            _denoise(u, uv_low.rows(lo, hi), v["uv_nr_threshold"], v["uv_nr_strength"])
        rgb = np.empty((hi - lo, w, 3), dtype=np.float32)
        _matmul_rows(yuv[:, lo:hi].reshape(3, -1).T, to_rgb8, rgb.reshape(-1, 3))
        rgb += np.float32(0.5)
        np.clip(rgb, 0.0, 255.0, out=rgb)  # no NaN: finite inputs (develop), checked parameters
        out[lo:hi] = rgb

    run(to_rgb)
    return out


def render(raw: RawImage, values: dict[str, float] | None = None, long_side: int | None = None) -> np.ndarray:
    """Raw -> 8-bit sRGB (H, W, 3): full resolution when ``long_side`` is None, else a preview."""
    return finish(develop(raw, long_side), values or {})
