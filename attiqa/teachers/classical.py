"""A weight-free teacher: one interpretable image measure per attribute (ours, not in the paper).

ATTIQA (paper §3.2) labels images with CLIP. This teacher is for machines without CLIP weights and for
tests: each attribute gets a classical, documented measure, computed in torch on a whole batch, then a
fixed monotone map to [0, 1] (higher = better, as everywhere in :mod:`attiqa.attributes`). The maps
only change the spread of the numbers, not their order, and the ranking loss of paper §3.4 only uses
the order; the constants below were chosen so a typical natural photo lands mid-range, where the
numbers are easiest to read.

The measures are scale dependent (blur of 2 px is strong on a 384 px image and invisible on a 4000 px
one; resizing also averages noise away), so :meth:`ClassicalTeacher.transform` first brings every
image to the same size: shorter edge resized to ``size`` (default 384, KADID-10k's 512x384 image
height) and a centre ``size`` x ``size`` crop. Small images are upsampled, which adds some blur.

Luminance is CIE L* / 100 (perceptually uniform lightness of sRGB, D65), used for sharpness, contrast
and brightness; colorfulness and noise work on the 8-bit sRGB channels as their references define.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from attiqa.attributes import ATTRIBUTES
from attiqa.teachers.base import Teacher

DEFAULT_SIZE = 384

# Constants of the monotone maps (ours), from the measures' ranges on the scikit-image photos
# (astronaut, coffee, chelsea, rocket, camera, ...) at size 384:
SHARPNESS_C = 0.5
"""Sharpness ratio giving score 0.5 (``x / (x + c)``); in-focus photos measure ~0.5-0.8, textures ~2."""
CONTRAST_SCALE = 2.0
"""RMS contrast of L*/100 is at most 0.5 (half black, half white), so ``2 * rms`` spans [0, 1] exactly."""
COLORFULNESS_C = 45.0
"""Hasler-Süsstrunk M of an "averagely colourful" image (their Table 2 scale) -> score 0.5."""
NOISE_C = 3.0
"""Noise sigma (8-bit units) giving cleanliness 0.5 (``c / (c + sigma)``); clean photos measure ~0.3-2."""
NOISE_FLAT_QUANTILE = 0.5
"""Fraction of pixels (the flattest by Sobel gradient) the noise estimate is averaged over."""
SHARPNESS_SCALES: tuple[int, ...] = (1, 2, 4)
"""Downsampling factors of the multi-scale Laplacian (average pooling)."""


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 sRGB decoding."""
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def lightness(batch: torch.Tensor) -> torch.Tensor:
    """CIE L* / 100 in [0, 1] of sRGB images (N, 3, H, W) in [0, 1] -> (N, 1, H, W)."""
    lin = _srgb_to_linear(batch.clamp(0.0, 1.0))
    y = 0.2126 * lin[:, 0:1] + 0.7152 * lin[:, 1:2] + 0.0722 * lin[:, 2:3]
    eps = (6.0 / 29.0) ** 3
    f = torch.where(y > eps, y.clamp_min(eps) ** (1.0 / 3.0), y / (3.0 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    return (116.0 * f - 16.0) / 100.0


# 3x3 filters as separable slice arithmetic on (N, C, H, W), "valid" borders (output 2 px smaller):
# about twice as fast on CPU as grouped conv2d, same numbers.


def _d2x(x: torch.Tensor) -> torch.Tensor:
    return x[..., :, :-2] - 2.0 * x[..., :, 1:-1] + x[..., :, 2:]


def _d2y(x: torch.Tensor) -> torch.Tensor:
    return x[..., :-2, :] - 2.0 * x[..., 1:-1, :] + x[..., 2:, :]


def _laplacian(x: torch.Tensor) -> torch.Tensor:
    """[[0,1,0],[1,-4,1],[0,1,0]]."""
    return _d2x(x)[..., 1:-1, :] + _d2y(x)[..., :, 1:-1]


def _immerkaer(x: torch.Tensor) -> torch.Tensor:
    """[[1,-2,1],[-2,4,-2],[1,-2,1]] = outer([1,-2,1], [1,-2,1])."""
    return _d2y(_d2x(x))


def _sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude from the 3x3 Sobel pair."""
    dx = x[..., :, 2:] - x[..., :, :-2]
    dy = x[..., 2:, :] - x[..., :-2, :]
    gx = dx[..., :-2, :] + 2.0 * dx[..., 1:-1, :] + dx[..., 2:, :]
    gy = dy[..., :, :-2] + 2.0 * dy[..., :, 1:-1] + dy[..., :, 2:]
    return torch.sqrt(gx * gx + gy * gy)


def rms_contrast(lum: torch.Tensor) -> torch.Tensor:
    """RMS contrast: standard deviation of luminance over the image (Peli 1990, JOSA A 7(10)). -> (N,)"""
    return lum.flatten(1).std(dim=1, unbiased=False)


def mean_brightness(lum: torch.Tensor) -> torch.Tensor:
    """Mean CIE lightness L*/100 (CIE 15:2004), a perceptual brightness in [0, 1]. -> (N,)"""
    return lum.flatten(1).mean(dim=1)


def laplacian_sharpness(lum: torch.Tensor, scales: tuple[int, ...] = SHARPNESS_SCALES) -> torch.Tensor:
    """Multi-scale Laplacian energy relative to global contrast. -> (N,)

    At each scale s (average pooling by s) the RMS of the 3x3 Laplacian response — the "variance of
    Laplacian" focus measure (Pech-Pacheco et al., ICPR 2000; Pertuz et al., Pattern Recognition
    46(5), 2013, operator LAP) — is taken; the scales are averaged and divided by the RMS contrast, so
    the measure is blind to a global contrast change and only sees how much of the variation is fine
    detail (our normalisation, global rather than local so flat noisy regions do not dominate).
    Several scales keep it monotone from slight blur (finest scale) to heavy blur (coarse scales).
    Noise adds fine detail and so raises it; the noisiness column is there to tell those apart.
    """
    energies = []
    for s in scales:
        x = F.avg_pool2d(lum, s) if s > 1 else lum
        energies.append(_laplacian(x).flatten(1).pow(2).mean(dim=1).sqrt())
    detail = torch.stack(energies, dim=1).mean(dim=1)
    return detail / (rms_contrast(lum) + 1e-3)


def hasler_susstrunk_colorfulness(rgb255: torch.Tensor) -> torch.Tensor:
    """Colourfulness M of Hasler & Süsstrunk (SPIE Human Vision and Electronic Imaging, 2003). -> (N,)

    ``rg = R - G``, ``yb = (R + G) / 2 - B`` on 8-bit sRGB values;
    ``M = sqrt(std_rg^2 + std_yb^2) + 0.3 * sqrt(mean_rg^2 + mean_yb^2)``. Their scale: 0 not
    colourful, ~33 moderately, ~45 averagely, ~59 quite, ~82 highly, ~109 extremely colourful.
    """
    r, g, b = rgb255[:, 0].flatten(1), rgb255[:, 1].flatten(1), rgb255[:, 2].flatten(1)
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return std + 0.3 * mean


def immerkaer_noise_sigma(rgb255: torch.Tensor, flat_quantile: float = NOISE_FLAT_QUANTILE) -> torch.Tensor:
    """Noise standard deviation in 8-bit units, averaged over the R, G, B channels. -> (N,)

    Immerkær's fast estimate (CVIU 64(2), 1996): ``sigma = sqrt(pi/2) / 6 * mean|I * N|`` with the 3x3
    mask N = [[1,-2,1],[-2,4,-2],[1,-2,1]], which cancels locally planar image structure. As in Tai &
    Yang (ICALIP 2008, "A fast method for image noise estimation using Laplacian operator and adaptive
    edge detection"), the mean is taken only over flat pixels — here the ``flat_quantile`` fraction of
    pixels with the smallest Sobel gradient of the channel mean — so edges and texture inflate it less.
    Per-channel estimates also see chroma noise, which luminance-only estimates partly average away.
    """
    resp = _immerkaer(rgb255).abs()  # (N, 3, H-2, W-2)
    grad = _sobel_magnitude(rgb255.mean(dim=1, keepdim=True)).flatten(1)  # (N, P)
    k = min(grad.shape[1], max(1, round(flat_quantile * grad.shape[1])))
    thresh = grad.kthvalue(k, dim=1, keepdim=True).values
    flat = (grad <= thresh).to(resp.dtype).unsqueeze(1)  # (N, 1, P)
    mean_abs = (resp.flatten(2) * flat).sum(dim=2) / flat.sum(dim=2).clamp_min(1.0)  # (N, 3)
    return math.sqrt(math.pi / 2.0) / 6.0 * mean_abs.mean(dim=1)


class ClassicalTeacher(Teacher):
    """Weight-free pseudo-labels from classical measures (ours; CLIP-free stand-in for paper §3.2)."""

    name = "classical"
    columns = ATTRIBUTES

    def __init__(self, device: str | torch.device = "cpu", size: int = DEFAULT_SIZE) -> None:
        super().__init__(device)
        if size < 16:
            raise ValueError(f"size must be at least 16 pixels, got {size}")
        self.size = int(size)
        self.min_shorter = self.size  # big JPEGs may decode at a reduced scale (see load_image)

    def transform(self, img: Image.Image) -> torch.Tensor:
        """Shorter edge -> ``size`` (bicubic, antialiased), centre crop, uint8 (3, size, size).

        uint8, not float: 4x less data to pass from decode workers (this teacher's compute is as cheap
        as decoding, so the transfer showed in `benchmarks/label_throughput.py`); scoring accepts both.
        """
        if img.mode != "RGB":
            img = img.convert("RGB")
        w, h = img.size
        scale = self.size / min(w, h)
        nw, nh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
        if (nw, nh) != (w, h):
            img = img.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        img = img.crop((left, top, left + self.size, top + self.size))
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(self.size, self.size, 3)
        return t.permute(2, 0, 1).contiguous()

    def _prepare(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a batch (N, 3, H, W), got shape {tuple(batch.shape)}")
        if batch.dtype == torch.uint8:
            return batch.to(self.device).float().div_(255.0)
        return batch.to(self.device, torch.float32).clamp(0.0, 1.0)

    @torch.no_grad()
    def raw_measures(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unmapped measures, each (N,): sharpness ratio, RMS contrast of L*/100, mean L*/100,
        Hasler-Süsstrunk M, and noise sigma in 8-bit units (note: higher sigma = noisier)."""
        x = self._prepare(batch)
        lum = lightness(x)
        rgb255 = x * 255.0
        return {
            "sharpness": laplacian_sharpness(lum),
            "contrast": rms_contrast(lum),
            "brightness": mean_brightness(lum),
            "colorfulness": hasler_susstrunk_colorfulness(rgb255),
            "noise_sigma": immerkaer_noise_sigma(rgb255),
        }

    @staticmethod
    def map_measures(raw: dict[str, torch.Tensor]) -> torch.Tensor:
        """Fixed monotone maps of :meth:`raw_measures` to [0, 1], stacked in ATTRIBUTES order -> (N, 5)."""
        sharp = raw["sharpness"] / (raw["sharpness"] + SHARPNESS_C)
        contrast = (CONTRAST_SCALE * raw["contrast"]).clamp(0.0, 1.0)
        bright = raw["brightness"].clamp(0.0, 1.0)
        colour = raw["colorfulness"] / (raw["colorfulness"] + COLORFULNESS_C)
        clean = NOISE_C / (NOISE_C + raw["noise_sigma"])
        return torch.stack([sharp, contrast, bright, colour, clean], dim=1).clamp(0.0, 1.0)

    @torch.no_grad()
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        return self.map_measures(self.raw_measures(batch))

    def metadata(self) -> dict[str, Any]:
        return {
            "teacher": self.name,
            "size": self.size,
            "measures": {
                "sharpness": f"mean RMS Laplacian of L*/100 at scales {list(SHARPNESS_SCALES)} / RMS "
                f"contrast; x/(x+{SHARPNESS_C})",
                "contrast": f"RMS contrast of L*/100; min(1, {CONTRAST_SCALE}*x)",
                "brightness": "mean L*/100",
                "colorfulness": f"Hasler-Süsstrunk M; x/(x+{COLORFULNESS_C})",
                "noisiness": f"Immerkær sigma over the flattest {NOISE_FLAT_QUANTILE:.0%} pixels (8-bit); "
                f"{NOISE_C}/({NOISE_C}+x)",
            },
        }
