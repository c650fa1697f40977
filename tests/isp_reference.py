"""The ISP as it was before the strip-parallel rewrite (commit b7f55d1), kept as the reference output.

Whole-image numpy, single-threaded: :mod:`isp_env.isp` must render the same images to float rounding
(tests/test_isp_strips.py). Helpers the rewrite left unchanged (the Malvar–He–Cutler demosaic of a whole
mosaic, tone LUT, colour matrices, Gaussian, column upsampling, preview resize and auto-exposure) are
imported; what it restructured (defect correction, develop, the pyramid blur, finish) is frozen here.
"""

from __future__ import annotations

import numpy as np

from isp_env.isp import (
    DPC_THRESHOLD,
    RGB2YUV,
    TONE_LUT_SIZE,
    YUV2RGB,
    Developed,
    demosaic_mhc,
    gauss,
    resized_with_exposure,
    tone_lut,
    upsample_axis,
)
from isp_env.params import check_values
from isp_env.raw import RawImage


def defective_pixel_correction(mosaic: np.ndarray, threshold: float) -> np.ndarray:
    h, w = mosaic.shape
    p = np.pad(mosaic, 2, mode="reflect")
    n = [p[0:h, 2 : 2 + w], p[4 : 4 + h, 2 : 2 + w], p[2 : 2 + h, 0:w], p[2 : 2 + h, 4 : 4 + w]]
    hi = np.maximum(np.maximum(n[0], n[1]), np.maximum(n[2], n[3]))
    lo = np.minimum(np.minimum(n[0], n[1]), np.minimum(n[2], n[3]))
    t = np.uint16(min(max(threshold, 0), 65535))
    bad = ((mosaic > hi) & (mosaic - hi > t)) | ((mosaic < lo) & (lo - mosaic > t))
    ys, xs = np.nonzero(bad)
    if ys.size == 0:
        return mosaic
    out = mosaic.copy()
    out[ys, xs] = np.round(sum(nb[ys, xs].astype(np.float64) for nb in n) / 4.0).astype(np.uint16)
    return out


def develop(raw: RawImage, long_side: int | None = None) -> Developed:
    h, w = (raw.mosaic.shape[0] // 2) * 2, (raw.mosaic.shape[1] // 2) * 2
    rng = np.float32(max(raw.white - float(raw.black.min()), 1.0))
    m = defective_pixel_correction(raw.mosaic[:h, :w], DPC_THRESHOLD * rng).astype(np.float32)
    scale = np.empty((2, 2), dtype=np.float32)
    for py in range(2):
        for px in range(2):
            den = max(raw.white - raw.black[py, px], 1.0)
            scale[py, px] = raw.wb_gains[raw.cfa[py, px]] / den
            m[py::2, px::2] -= np.float32(raw.black[py, px])
            m[py::2, px::2] *= scale[py, px]
    np.clip(m, 0.0, 1.0, out=m)
    binned = long_side is not None and 2 * long_side <= max(h, w)
    if binned:
        rgb = np.zeros((h // 2, w // 2, 3), dtype=np.float32)
        for py in range(2):
            for px in range(2):
                c = int(raw.cfa[py, px])
                rgb[..., c] += m[py::2, px::2] * (0.5 if c == 1 else 1.0)
    else:
        rgb = demosaic_mhc(m, raw.cfa)
    ccm = np.nan_to_num(raw.cam_to_srgb, nan=0.0, posinf=0.0, neginf=0.0).T.astype(np.float32)
    rgb = rgb @ ccm
    np.maximum(rgb, 0.0, out=rgb)
    return resized_with_exposure(rgb, long_side, raw.name)


def band(x: np.ndarray, sigma: float, sigma2: float | None) -> np.ndarray:
    if sigma < 3.0 or min(x.shape[-2:]) < 64:
        low = gauss(x, sigma)
        return low if sigma2 is None else low - gauss(x, sigma2)
    f = int(sigma // 1.5)
    h, w = x.shape[-2:]
    hp, wp = -(-h // f) * f, -(-w // f) * f
    pad = [(0, 0)] * (x.ndim - 2) + [(0, hp - h), (0, wp - w)]
    xp = np.pad(x, pad, mode="edge") if (hp, wp) != (h, w) else x
    small = xp.reshape(*x.shape[:-2], hp // f, f, wp // f, f).mean(axis=(-3, -1), dtype=np.float32)

    def rest(s: float) -> float:
        return float(np.sqrt(max(s**2 - (f**2 - 1) / 12.0, 1e-6)) / f)

    out = gauss(small, rest(sigma))
    if sigma2 is not None:
        out -= gauss(small, rest(sigma2))
    return _upsample_rows(upsample_axis(out, f, w, x.ndim - 1), f, h)


def _upsample_rows(a: np.ndarray, f: int, n: int) -> np.ndarray:
    hs = a.shape[-2]
    out = np.empty((*a.shape[:-2], hs * f, a.shape[-1]), dtype=np.float32)
    view = out.reshape(*a.shape[:-2], hs, f, a.shape[-1])
    d = a[..., 1:, :] - a[..., :-1, :] if hs > 1 else None
    for j in range(f):
        t = (j + 0.5) / f - 0.5
        dst = view[..., :, j, :]
        if d is None:
            dst[...] = a
        elif t < 0:
            np.multiply(d, np.float32(1.0 + t), out=dst[..., 1:, :])
            dst[..., 1:, :] += a[..., :-1, :]
            dst[..., 0, :] = a[..., 0, :]
        else:
            np.multiply(d, np.float32(t), out=dst[..., :-1, :])
            dst[..., :-1, :] += a[..., :-1, :]
            dst[..., -1, :] = a[..., -1, :]
    return out[..., :n, :]


def _clip_detail(x: np.ndarray, low: np.ndarray, t: float) -> np.ndarray:
    np.subtract(x, low, out=low)
    t = np.float32(t)
    return np.clip(low, -t, t, out=low)


def finish(dev: Developed, values: dict[str, float]) -> np.ndarray:
    v = check_values(values)
    s = dev.scale
    px = lambda sigma: max(sigma * s, 0.5)  # noqa: E731
    idx = dev.linear * np.float32(dev.ae_gain * 2.0 ** v["tone_exposure"] * (TONE_LUT_SIZE - 1))
    idx += np.float32(0.5)
    np.clip(idx, 0.0, TONE_LUT_SIZE - 1, out=idx)
    x = tone_lut(v["tone_gamma"], v["tone_curve"])[idx.astype(np.int32)]
    del idx
    y = x @ RGB2YUV[0]
    uv = np.stack([x @ RGB2YUV[1], x @ RGB2YUV[2]])
    del x
    if v["y_nr_threshold"] > 0:
        y -= _clip_detail(y, band(y, px(v["y_nr_sigma"]), None), v["y_nr_threshold"])
    if v["uv_nr_strength"] > 0:
        d = _clip_detail(uv, band(uv, px(v["uv_nr_sigma"]), None), v["uv_nr_threshold"])
        d *= np.float32(v["uv_nr_strength"])
        uv -= d
    if v["contrast"] != 1.0 or v["brightness"] != 0.0:
        y = (y - np.float32(0.5)) * np.float32(v["contrast"]) + np.float32(0.5 + v["brightness"])
    a = np.deg2rad(v["hue"])
    rot = v["saturation"] * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    if v["sharpen_amount"] > 0:
        detail = y - band(y, px(v["sharpen_sigma"]), None)
        detail -= np.clip(detail, -np.float32(v["sharpen_threshold"]), np.float32(v["sharpen_threshold"]))
        detail *= np.float32(v["sharpen_amount"])
        y += detail
    if v["texture_gain"] != 0.0:
        mid = band(y, px(2.0), px(6.0))
        mid *= np.float32(v["texture_gain"])
        y += mid
    m = YUV2RGB.astype(np.float64) * 255.0
    m_uv = (m[:, 1:] @ rot).astype(np.float32)
    out = np.empty((*y.shape, 3), dtype=np.uint8)
    for c in range(3):
        plane = y * np.float32(m[c, 0])
        plane += m_uv[c, 0] * uv[0]
        plane += m_uv[c, 1] * uv[1]
        plane += np.float32(0.5)
        np.clip(plane, 0.0, 255.0, out=plane)
        out[..., c] = plane
    return out
