"""The neutral front end against LibRaw's own render (rawpy.postprocess) on real cameras: matrices, levels,
white balance, highlights and orientation must agree with LibRaw's, camera by camera."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rawpy
from conftest import SHARED_DATA

from isp_env.dng import demo_photo, unprocess, write_dng
from isp_env.isp import develop
from isp_env.raw import open_raw, read_raw

REAL = SHARED_DATA / "raw" / "real"


def real_raw(name: str) -> Path:
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def rawpy_linear(path: Path, gains: np.ndarray) -> np.ndarray:
    """LibRaw's half-size linear sRGB with our white-balance gains (R, G, B)."""
    with open_raw(path) as r:
        out = r.postprocess(
            half_size=True,
            user_wb=[float(gains[0]), 1.0, float(gains[2]), 1.0],
            gamma=(1, 1),
            no_auto_bright=True,
            output_bps=16,
        )
    return out.astype(np.float64) / 65535.0


def mean_angle(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    x, y = a[mask].astype(np.float64), b[mask].astype(np.float64)
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1) + 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean())


@pytest.mark.shared_data
def test_camera_without_a_file_matrix_gets_libraws_colours():
    """The Kodak DC50 has neither a file nor an XYZ matrix in rawpy, but LibRaw renders it with its own table:
    we used the identity (IT8 chart washed out, 9.5 degrees off LibRaw's colours); now LibRaw's matrix."""
    path = real_raw("a2tools__DC0010S.KDC")
    raw = read_raw(path)
    dev = develop(raw, max(raw.shape) // 2)
    ref = rawpy_linear(path, raw.wb_gains)
    assert ref.shape == dev.linear.shape
    y = ref @ [0.2126, 0.7152, 0.0722]
    ok = (y > np.percentile(y, 5)) & (y < 0.95 * y.max())
    assert mean_angle(dev.linear, ref, ok) < 1.0
    assert np.abs(raw.cam_to_srgb - np.eye(3)).max() > 0.3  # a real matrix, not the identity


def highlight_angle(path: Path) -> float:
    """Mean angle between our front end and LibRaw's (same white balance) on LibRaw's brightest pixels."""
    raw = read_raw(path)
    dev = develop(raw, max(raw.shape) // 2)
    ref = rawpy_linear(path, raw.wb_gains)
    y = ref @ [0.2126, 0.7152, 0.0722]
    clipped = y >= 0.98 * y.max()
    assert clipped.mean() > 0.01  # the raw has clipped highlights
    return mean_angle(dev.linear, ref, clipped)


@pytest.mark.shared_data
def test_clipped_highlights_stay_white_when_a_gain_is_below_one():
    """A QuickTake 100 has no as-shot white balance; its daylight gains are R 0.89, G 1, B 0.94. With G = 1,
    a clipped highlight stayed at 0.89 / 0.94 in R / B: green, 7.4 degrees off LibRaw's white. Now the
    smallest gain is 1, as in dcraw: every channel reaches 1 at saturation."""
    path = real_raw("a2tools__Image__1.qtk")
    assert read_raw(path).wb_gains.min() < 0.95
    assert highlight_angle(path) < 1.0


def libraw_range(path: Path) -> float:
    """The range (white - black) LibRaw develops the R sites with, read off its output: out = value * 65535 /
    range on unclipped pixels of an unbalanced raw-colour half-size render."""
    raw = read_raw(path)
    with open_raw(path) as r:
        out = r.postprocess(
            half_size=True,
            user_wb=[1.0, 1.0, 1.0, 1.0],
            output_color=rawpy.ColorSpace.raw,
            gamma=(1, 1),
            no_auto_bright=True,
            output_bps=16,
        )
    ((py, px),) = np.argwhere(raw.cfa == 0)
    sites = raw.mosaic[py::2, px::2].astype(np.float64) - raw.black[py, px]
    lib = out[: sites.shape[0], : sites.shape[1], 0].astype(np.float64)
    ok = (lib > 2000) & (lib < 60000)
    return float(np.median(sites[ok] * 65535.0 / lib[ok]))


@pytest.mark.shared_data
def test_white_level_is_where_the_sensor_saturates():
    """The Canon D30 saturates near 3860 of its format's 4095 (15,000 R sites within 2 % of 3857): at 4095 a
    clipped highlight stayed at 0.94 in G and B while R (gain 2.1) clipped at 1 — pink. LibRaw develops with
    the brightest value when it is above 75 % of the range; so do we."""
    path = real_raw("imagemeta__CRW.CRW")
    raw = read_raw(path)
    ((py, px),) = np.argwhere(raw.cfa == 0)
    ours = raw.white - raw.black[py, px]
    assert abs(ours / libraw_range(path) - 1) < 0.005


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_turned_photo_renders_as_libraw_shows_it(tmp_path, orientation):
    """A DNG whose Orientation tag says the camera was turned (6, 8: a portrait; 3: upside down): we rendered
    the sensor's landscape frame as it lay, and the guard squeezed rawpy's portrait render into it. Now the
    mosaic is turned first (its Bayer layout with it): the render has LibRaw's shape, content and colours."""
    photo = demo_photo("astronaut", 96)[:, :80]
    path = write_dng(tmp_path / "turned.dng", unprocess(photo, "GBRG"), "GBRG", 64, orientation=orientation)
    raw = read_raw(path)
    dev = develop(raw)
    ref = rawpy_linear(path, raw.wb_gains)  # half size
    with open_raw(path) as r:
        assert r.sizes.flip in (3, 5, 6)
        full = r.postprocess(use_camera_wb=True)
    assert dev.linear.shape == full.shape
    half = develop(raw, max(raw.shape) // 2).linear  # binned, as LibRaw's half size
    assert half.shape == ref.shape
    assert np.corrcoef(half.sum(2).ravel(), ref.sum(2).ravel())[0, 1] > 0.99
    assert mean_angle(half, ref, (ref.min(2) > 0.01) & (ref.max(2) < 0.99)) < 2.0  # 1.2 upright too


@pytest.mark.parametrize("orientation", [1, 6])
def test_non_square_pixels_are_stretched_as_libraw_does(tmp_path, orientation):
    """A DNG with DefaultScale (2, 1) (pixels twice as wide as tall; LibRaw's pixel_aspect 2, as a Nikon
    D1X's 0.5): LibRaw stretches the picture, we rendered the sensor grid as it is — half as wide, and the
    guard's rawpy reference squeezed. Now the same shape, turned or not, and the same picture."""
    photo = demo_photo("astronaut", 96)[:, :80]
    mosaic = unprocess(photo, "RGGB")
    path = write_dng(tmp_path / "wide.dng", mosaic, "RGGB", 64, orientation=orientation, pixel_aspect=2.0)
    raw = read_raw(path)
    with open_raw(path) as r:
        assert r.sizes.pixel_aspect == 2.0
        full = r.postprocess(use_camera_wb=True)
    assert raw.shape == full.shape[:2] == develop(raw).linear.shape[:2]
    half = develop(raw, max(raw.shape) // 2).linear
    ref = rawpy_linear(path, raw.wb_gains)
    assert half.shape == ref.shape
    # LibRaw's half size repeats each stretched sample (its full size interpolates, as we do): the samples
    # themselves, every 2nd row or column along the stretch, must agree
    along = (slice(None), slice(None, None, 2)) if orientation == 1 else (slice(None, None, 2), slice(None))
    assert np.corrcoef(half[along].sum(2).ravel(), ref[along].sum(2).ravel())[0, 1] > 0.98


@pytest.mark.parametrize("layout", ["RGGB", "GBRG"])
def test_black_levels_that_differ_by_channel_keep_the_colours(tmp_path, layout):
    """A DNG whose four Bayer positions have their own black level (BlackLevelRepeatDim 2x2: 40, 90, 140,
    200 of 1023): each channel was divided by its own range (white - its black), scaling channels with a
    higher black up — 2-5 degrees off LibRaw's colours, 4-17 % brighter. Now one range for all, as LibRaw."""
    blacks = np.array([[40, 90], [140, 200]])
    signal = unprocess(demo_photo("coffee", 160), layout, black_level=0).astype(np.int64)
    mosaic = np.clip(signal + np.tile(blacks, (signal.shape[0] // 2, signal.shape[1] // 2)), 0, 1023)
    path = write_dng(tmp_path / "blacks.dng", mosaic, layout, tuple(blacks.ravel().tolist()))
    raw = read_raw(path)
    np.testing.assert_array_equal(raw.black, blacks)  # by position
    half = develop(raw, max(raw.shape) // 2).linear
    ref = rawpy_linear(path, raw.wb_gains)
    unclipped = (ref.min(2) > 0.01) & (ref.max(2) < 0.99)
    assert mean_angle(half, ref, unclipped) < 1.0
    assert abs(np.median(half.sum(2)[unclipped] / ref.sum(2)[unclipped]) - 1) < 0.01


@pytest.mark.parametrize("layout", ["RGGB", "GBRG"])
def test_a_black_level_pattern_larger_than_2x2_is_subtracted(tmp_path, layout):
    """A DNG whose black level repeats over 4x4 pixels (BlackLevelRepeatDim 4x4: 16 levels, 20-170 of
    1023, four per position of the Bayer tile): rawpy gives one level a colour — the pattern's smallest, 20
    — so the rest stayed in our render: **was** up to 150 levels left in a 4x4 pattern (the front end
    45-49 % brighter than the same scene's); now the pattern is read from the file's tags
    (`isp_env.raw.dng_black`) and subtracted: the same front end as the scene written with one
    black level of 20. (LibRaw subtracts the pattern at full size, but its half-size render indexes it by
    half-size rows: no reference here.)"""
    pattern = (np.arange(16).reshape(4, 4) * 10 + 20)[[0, 2, 1, 3]]  # no two rows of a position alike
    signal = unprocess(demo_photo("coffee", 160)[:104], layout, black_level=0).astype(np.int64)
    signal = np.minimum(signal, 1023 - pattern.max())  # every value within the white level
    reps = (signal.shape[0] // 4, signal.shape[1] // 4)
    raw = read_raw(write_dng(tmp_path / "pattern.dng", signal + np.tile(pattern, reps), layout, pattern))
    plain = read_raw(write_dng(tmp_path / "plain.dng", signal + 20, layout, 20))
    np.testing.assert_array_equal(raw.mosaic, plain.mosaic)
    assert raw.white == plain.white and (raw.black == plain.black).all()
    np.testing.assert_array_equal(develop(raw).linear, develop(plain).linear)


@pytest.mark.parametrize(("layout", "pattern"), [("RGGB", 64), ("GBRG", "4x4")])
def test_black_levels_by_row_and_column_are_subtracted(tmp_path, layout, pattern):
    """A DNG with a black offset for each row and each column (BlackLevelDeltaV / H: a sensor's row
    noise and column stripes, -20 to +39 levels here): LibRaw adds the means of both to its black level,
    rawpy's (88 here), so **was** the rest left in our render — stripes of up to ±30 levels of 1023 across
    the picture; now the DNG's level at each pixel is subtracted (`isp_env.raw.dng_black`): the same mosaic
    and front end as the scene written with one black level of 88, the mean LibRaw gives. With a 4x4
    BlackLevel pattern too (both at once). None of the 43 real raws has these tags."""
    rng = np.random.default_rng(1)
    signal = unprocess(demo_photo("coffee", 160)[:104], layout, black_level=0).astype(np.int64)
    h, w = signal.shape
    rows, cols = rng.integers(0, 30, h), rng.integers(-20, 40, w)
    if pattern == "4x4":
        levels = (np.arange(16).reshape(4, 4) * 10 + 20)[[0, 2, 1, 3]]
        base, plain_black = np.tile(levels, (h // 4, w // 4)), 20
    else:
        levels, base, plain_black = 64, 64, 64
    mean = round(rows.mean()) + round(cols.mean())  # LibRaw's black: each mean rounded, added
    signal = np.minimum(signal, 1023 - 170 - 30 - 40)  # every value within the white level
    mosaic = signal + base + rows[:, None] + cols[None, :]
    path = write_dng(tmp_path / "deltas.dng", mosaic, layout, levels, black_rows=rows.tolist(),
                     black_cols=cols.tolist())  # fmt: skip
    raw = read_raw(path)
    plain = read_raw(
        write_dng(tmp_path / "plain.dng", signal + plain_black + mean, layout, plain_black + mean)
    )
    np.testing.assert_array_equal(raw.black, plain.black)  # LibRaw's mean, as rawpy gives it
    np.testing.assert_array_equal(raw.mosaic, plain.mosaic)
    assert raw.white == plain.white
    np.testing.assert_array_equal(develop(raw).linear, develop(plain).linear)
