"""Basic graded distortions: registry, determinism, identity, sizes, monotone effects on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image

from attiqa.attributes import ATTRIBUTES
from attiqa.distortions import (
    DISTORTIONS,
    NUM_LEVELS,
    Distortion,
    DistortionError,
    apply_distortion,
    get_distortion,
    list_distortions,
    register_distortion,
)

BASIC = (
    "gaussian_blur",
    "contrast",
    "brightness_down",
    "brightness_up",
    "saturation_down",
    "saturation_up",
    "gaussian_noise",
    "iso_noise",
)
NOISY = ("gaussian_noise", "iso_noise")
LEVELS = range(NUM_LEVELS + 1)


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [Image.fromarray(getattr(skimage.data, n)()) for n in ("astronaut", "coffee", "rocket")]


def _f(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


# Simple, independent measures of what each distortion should change (numpy, not the teacher).
def _gradient_energy(a: np.ndarray) -> float:
    g = a.mean(axis=2)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def _grey_std(a: np.ndarray) -> float:
    return float(a.mean(axis=2).std())


def _mean(a: np.ndarray) -> float:
    return float(a.mean())


def _chroma(a: np.ndarray) -> float:
    return float((a.max(axis=2) - a.min(axis=2)).mean())


MEASURE = {
    "gaussian_blur": _gradient_energy,
    "contrast": _grey_std,
    "brightness_down": _mean,
    "brightness_up": _mean,
    "saturation_down": _chroma,
    "saturation_up": _chroma,
}


def test_registry_holds_the_basic_kinds_with_five_levels():
    assert set(BASIC) <= set(list_distortions())
    assert list_distortions() == sorted(list_distortions())
    for name in BASIC:
        d = DISTORTIONS[name]
        assert d.name == name and d.attribute in ATTRIBUTES and d.direction in (-1, 1)
        assert len(d.levels) == NUM_LEVELS and d.parameter and d.source
        assert d.parameter_at(0) is None and d.parameter_at(NUM_LEVELS) == d.levels[-1]
    assert DISTORTIONS["brightness_up"].direction == 1
    assert DISTORTIONS["saturation_up"].direction == 1  # supp. §A "saturation adjustment", both ways
    assert DISTORTIONS["gaussian_noise"].attribute == "noisiness"


@pytest.mark.parametrize("name", BASIC)
def test_level_zero_is_an_identity_copy(photos, name):
    img = photos[0]
    out = apply_distortion(img, name, 0, seed=3)
    assert out is not img
    assert np.array_equal(np.asarray(out), np.asarray(img))


@pytest.mark.parametrize("name", BASIC)
def test_deterministic_for_a_seed(photos, name):
    img = photos[1]
    a = apply_distortion(img, name, 3, seed=7)
    b = apply_distortion(img, name, 3, seed=7)
    c = apply_distortion(img, name, 3, seed=8)
    assert a.tobytes() == b.tobytes()
    if name in NOISY:
        assert a.tobytes() != c.tobytes()
    else:  # seed-free distortions ignore the seed
        assert a.tobytes() == c.tobytes()


@pytest.mark.parametrize("name", BASIC)
@pytest.mark.parametrize("size", [(37, 53), (1, 1), (640, 9)])
def test_size_and_mode_preserved(name, size):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    out = apply_distortion(img, name, NUM_LEVELS)
    assert out.size == img.size and out.mode == "RGB"


def test_non_rgb_input_is_converted():
    grey = Image.fromarray(skimage.data.camera())
    out = apply_distortion(grey, "gaussian_noise", 2)
    assert out.mode == "RGB" and out.size == grey.size
    assert apply_distortion(grey, "contrast", 0).mode == "RGB"


@pytest.mark.parametrize("name", [n for n in BASIC if n not in NOISY])
def test_monotone_effect_on_a_simple_measure(photos, name):
    measure = MEASURE[name]
    sign = DISTORTIONS[name].direction
    for img in photos:
        values = np.array([measure(_f(apply_distortion(img, name, lv))) for lv in LEVELS])
        assert np.all(np.diff(values) * sign > 0), (name, values.round(3))


@pytest.mark.parametrize("name", NOISY)
def test_noise_grows_with_level(photos, name):
    for img in photos:
        ref = _f(img)
        resid = np.array([(_f(apply_distortion(img, name, lv, seed=1)) - ref).std() for lv in LEVELS])
        assert resid[0] == 0.0
        assert np.all(np.diff(resid) > 0), (name, resid.round(3))


def test_gaussian_noise_has_the_tabled_std():
    grey = Image.new("RGB", (256, 256), (128, 128, 128))  # mid-grey: no clipping at these levels
    for level in (1, 5):
        out = _f(apply_distortion(grey, "gaussian_noise", level, seed=0))
        expected = DISTORTIONS["gaussian_noise"].levels[level - 1] * 255.0
        assert out.std() == pytest.approx(expected, rel=0.05)


def test_iso_noise_is_signal_dependent_and_coloured():
    dark = Image.new("RGB", (128, 128), (20, 20, 20))
    bright = Image.new("RGB", (128, 128), (200, 200, 200))
    d, b = (_f(apply_distortion(im, "iso_noise", 5, seed=0)) for im in (dark, bright))
    assert b.mean(axis=2).std() > 1.5 * d.mean(axis=2).std()  # shot noise grows with the signal
    assert _chroma(b) > 1.0  # chroma noise: channels no longer equal on a grey input


def test_hsv_edits_have_their_closed_form(photos):
    a = _f(photos[0])
    # Saturation 0: every pixel becomes grey at its HSV value V = max channel.
    grey = _f(apply_distortion(photos[0], "saturation_down", NUM_LEVELS))
    assert np.abs(grey - a.max(axis=2, keepdims=True)).max() <= 0.5
    # Value scaling: the max channel is scaled by the factor (up to rounding).
    f = DISTORTIONS["brightness_down"].levels[2]
    dark = _f(apply_distortion(photos[0], "brightness_down", 3))
    assert np.abs(dark.max(axis=2) - f * a.max(axis=2)).max() <= 0.51
    # Contrast keeps every channel's mean (up to rounding and a little clipping).
    low = _f(apply_distortion(photos[0], "contrast", NUM_LEVELS))
    np.testing.assert_allclose(low.mean(axis=(0, 1)), a.mean(axis=(0, 1)), atol=0.5)


@pytest.mark.parametrize(("grey", "shape"), [(200, (1000, 1500)), (77, (2000, 3000))])
def test_contrast_leaves_a_flat_photo_as_it_is(grey: int, shape: tuple[int, int]):
    """A flat photo is its own channel mean: every level keeps it. The means were float32 sums, which drift
    with the pixel count (these came out 201 and 73 at level 5)."""
    flat = Image.fromarray(np.full((*shape, 3), grey, np.uint8))
    for level in (1, NUM_LEVELS):
        assert np.unique(np.asarray(apply_distortion(flat, "contrast", level))).tolist() == [grey], level


@pytest.mark.parametrize("level", [-1, NUM_LEVELS + 1, 1.5, True])
def test_bad_level_is_refused(photos, level):
    with pytest.raises(DistortionError, match="level"):
        apply_distortion(photos[0], "contrast", level)


def test_unknown_name_suggests_close_matches(photos):
    with pytest.raises(DistortionError, match="gaussian_blur"):
        apply_distortion(photos[0], "gausian_blur", 1)
    with pytest.raises(DistortionError):
        get_distortion("nope")


def test_registry_is_extensible():
    def invert(rgb, param, rng):
        return (1.0 - rgb) * param + rgb * (1.0 - param)

    d = Distortion("test_invert", "contrast", -1, invert, (0.1, 0.2, 0.3, 0.4, 0.5), "mix", "test")
    try:
        register_distortion(d)
        assert "test_invert" in list_distortions()
        with pytest.raises(ValueError, match="already registered"):
            register_distortion(d)
        out = apply_distortion(Image.new("RGB", (4, 4), (0, 0, 0)), "test_invert", 5)
        assert np.asarray(out).max() in (127, 128)
    finally:
        DISTORTIONS.pop("test_invert", None)
    with pytest.raises(ValueError, match="levels"):
        Distortion("bad", "contrast", -1, invert, (0.1,), "x", "test")
    with pytest.raises(ValueError, match="attribute"):
        Distortion("bad", "loudness", -1, invert, (0.1,) * 5, "x", "test")
