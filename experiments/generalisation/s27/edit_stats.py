"""Statistics of an edit itself, measured on the pixels a model scores (stop 27, issue 20; refuted as a
guard and not in the package: experiments/generalisation/decision_rule_s27.txt, docs/default_model.md).

Why: the ISP agent's black-box search gamed the MOS by pushing saturation, contrast and sharpening far
past taste (channels clipped, halos around every edge). A detector on the backbone's statistics learned the
photo's domain instead of the edit (docs/default_model.md, "Stop 25", "Stop 26"). These eight numbers
describe only what over-processing does to pixels — clipping, saturated chroma, bright highlights, boosted
fine detail — so an unedited photo of any kind shows them only when it really is clipped or haloed.

All on an sRGB batch in [0, 1] (B, 3, H, W) at the scorer's scale; Y is Rec. 709 luma.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

NAMES = ("clip_hi", "clip_lo", "chroma_clip", "sat_hi", "chroma_p99", "y_hi", "band_ratio", "overshoot")
_SHARES = (0, 1, 2, 3, 5, 7)  # entered as log(1e-3 + share)
_LUMA = (0.2126, 0.7152, 0.0722)


def _blurs(y: torch.Tensor, sigmas: Sequence[float]) -> list[torch.Tensor]:
    """Gaussian blurs of (B, 1, H, W) (kernel radius ceil(3 sigma), reflect padding), all from one FFT of
    the padded image: separable convolutions' numbers (to ~1e-6) at a fraction of their CPU cost."""
    radii = [max(1, math.ceil(3 * s)) for s in sigmas]
    pad = max(radii)
    h, w = y.shape[-2:]
    p = F.pad(y.float(), (pad, pad, pad, pad), mode="reflect")
    size = p.shape[-2:]
    spec = torch.fft.rfft2(p)
    out = []
    for sigma, r in zip(sigmas, radii, strict=True):
        x = torch.arange(-r, r + 1, dtype=torch.float32, device=y.device)
        k = torch.exp(-0.5 * (x / sigma) ** 2)
        k = k / k.sum()
        kernel = torch.zeros(size, dtype=torch.float32, device=y.device)
        kernel[: 2 * r + 1, : 2 * r + 1] = torch.outer(k, k)
        kernel = torch.roll(kernel, (-r, -r), (0, 1))  # centred at (0, 0): circular = linear inside the pad
        blurred = torch.fft.irfft2(spec * torch.fft.rfft2(kernel), s=size)
        out.append(blurred[..., pad : pad + h, pad : pad + w])
    return out


def edit_stats(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 8) statistics, :data:`NAMES` order (shares: log(1e-3 + share))."""
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"edit_stats needs a (B, 3, H, W) batch, got {tuple(rgb.shape)}")
    x = rgb.float().clamp(0, 1)
    hi, lo = x.amax(1), x.amin(1)  # (B, H, W)
    chroma = hi - lo
    clip_hi = hi >= 254.5 / 255
    clip_lo = lo <= 0.5 / 255
    sat = chroma / hi.clamp(min=1e-6)
    y = (x * torch.tensor(_LUMA, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    g1, g2, g4 = _blurs(y, (1.0, 2.0, 4.0))
    fine = (y - g1).abs().mean((1, 2, 3))
    mid = (g1 - g4).abs().mean((1, 2, 3))

    def share(m: torch.Tensor) -> torch.Tensor:
        return m.float().flatten(1).mean(1)

    cols = [
        share(clip_hi),
        share(clip_lo),
        share((clip_hi | clip_lo) & (chroma > 0.25)),
        share((sat >= 0.9) & (hi >= 0.25)),
        torch.quantile(chroma.flatten(1), 0.99, dim=1),
        share(y[:, 0] >= 0.95),
        torch.log((fine + 1e-4) / (mid + 1e-4)),
        share((y - g2).abs()[:, 0] > 0.12),
    ]
    out = torch.stack(cols, 1)
    out[:, list(_SHARES)] = torch.log(1e-3 + out[:, list(_SHARES)])
    return out


HUE_BINS = 36


def hue_histogram(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 36): the share of the crop's pixels that are chromatic (max - min
    channel > 0.15, max > 0.2) in each 10-degree HSV hue bin (the row sums to the chromatic share)."""
    x = rgb.float().clamp(0, 1)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    hi, lo = x.amax(1), x.amin(1)
    c = (hi - lo).clamp(min=1e-6)
    hue = torch.where(hi == r, ((g - b) / c) % 6, torch.where(hi == g, (b - r) / c + 2, (r - g) / c + 4)) * 60
    chromatic = ((hi - lo) > 0.15) & (hi > 0.2)
    bins = (hue / (360 / HUE_BINS)).long().clamp(0, HUE_BINS - 1)
    bins = torch.where(chromatic, bins, torch.full_like(bins, HUE_BINS)).flatten(
        1
    )  # the extra bin: not chromatic
    counts = torch.zeros(bins.shape[0], HUE_BINS + 1, device=x.device).scatter_add_(
        1, bins, torch.ones_like(bins, dtype=torch.float32)
    )
    return counts[:, :HUE_BINS] / bins.shape[1]
