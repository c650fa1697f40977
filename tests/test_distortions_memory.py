"""Memory of the distortions on a big photo: `attiqa degrade` on a 24 MP photo peaked at 1.79 GB resident
(a 108 MP one passed 5.9 GB), from whole-image float temporaries — and the same numbers as before."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import skimage.data
from PIL import Image
from scipy import ndimage

from attiqa.distortions import apply_distortion, basic
from attiqa.distortions.basic import RGB_TO_YCBCR, YCBCR_TO_RGB, to_float, to_uint8
from attiqa.distortions.defaults import DEFAULT_GRADED

PEAK_PER_BYTE = 15
"""Bound on a distortion's traced peak per byte of the decoded uint8 image: about three float32 copies
(input, output, a third for iso_noise's noise planes). The old code made four (16x), iso_noise more."""


@pytest.fixture(scope="module")
def big_photo() -> Image.Image:
    """A ~3 MP photo-like image: a real photo enlarged, with grain, so no distortion meets a flat image."""
    img = Image.fromarray(skimage.data.astronaut()).resize((2000, 1500), Image.Resampling.BICUBIC)
    grain = np.random.default_rng(0).integers(-6, 7, (1500, 2000, 3))
    return Image.fromarray(np.clip(np.asarray(img) + grain, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("name", DEFAULT_GRADED)
def test_a_distortion_of_a_big_photo_peaks_at_a_few_copies_of_it(big_photo, name):
    nbytes = big_photo.width * big_photo.height * 3
    tracemalloc.start()
    try:
        apply_distortion(big_photo, name, 5, seed=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_PER_BYTE * nbytes, f"{name}: peak {peak / nbytes:.1f}x the image"


def test_the_strip_conversions_are_the_whole_image_formulas():
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (700, 513, 3), dtype=np.uint8)  # several strips, the last one short
    got = to_float(Image.fromarray(u8))
    assert got.dtype == np.float32
    assert np.array_equal(got, np.asarray(u8, dtype=np.float32) / np.float32(255.0))
    x = rng.normal(0.5, 0.6, (700, 513, 3)).astype(np.float32)  # unclipped, as a distortion returns it
    x[0, 0] = [0.5 / 255, 1.5 / 255, 254.5 / 255]  # halves: rint rounds them to even
    assert np.array_equal(to_uint8(x), np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("strip_pixels", [1 << 18, 10_000])
def test_iso_noise_is_the_whole_image_computation(strip_pixels: int, monkeypatch: pytest.MonkeyPatch):
    """The noise drawn and the colour transforms made in row strips, the chroma filtered a plane at a time:
    the numbers of the same recipe computed on whole images — in one strip (the photo is below
    ``STRIP_PIXELS``) and in 25 (strips of 16 rows, as a big photo's)."""
    monkeypatch.setattr(basic, "STRIP_PIXELS", strip_pixels)
    img = Image.fromarray(skimage.data.coffee())
    gain = 8.0
    rgb = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    a, b = 2.5e-4 * gain, 2.5e-5 * gain
    ycc = rgb @ RGB_TO_YCBCR.T
    normal = np.random.default_rng(4).standard_normal(rgb.shape, dtype=np.float32)
    y = ycc[..., 0]
    ycc[..., 0] = y + np.sqrt(a * np.clip(y, 0.0, 1.0) + b).astype(np.float32) * normal[..., 0]
    chroma = ndimage.gaussian_filter(normal[..., 1:], sigma=(1.0, 1.0, 0.0), mode="reflect")
    chroma /= max(float(chroma.std()), 1e-8)
    ycc[..., 1:] += np.float32(0.5 * np.sqrt(a)) * chroma
    want = np.clip(np.rint((ycc @ YCBCR_TO_RGB.T) * 255.0), 0, 255).astype(np.uint8)
    assert np.array_equal(np.asarray(apply_distortion(img, "iso_noise", 4, seed=4)), want)
