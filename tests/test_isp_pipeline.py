"""The raw pipeline on real DNGs read back by rawpy (LibRaw): all four Bayer layouts, metadata, modules."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rawpy
from conftest import SHARED_DATA
from PIL import Image

from isp_env.dng import BAYER_LAYOUTS, demo_photo, rationals, write_dng
from isp_env.isp import MODULES, demosaic_mhc, develop, finish, render
from isp_env.params import NAMES, PARAMS, from_normalized, neutral, to_normalized
from isp_env.raw import RawReadError, find_raws, read_raw


def _photo(path: Path) -> np.ndarray:
    """The sRGB photo a test DNG was made from (same resize as ``demo_raws``)."""
    return demo_photo(path.stem.split("_")[0], 192)


def test_paper_module_and_parameter_counts():
    assert len(MODULES) == 14
    counts = Counter(p.module for p in PARAMS)
    # ATTIQA supplement §D.3: 16 parameters in 7 modules
    assert dict(counts) == {
        "tone_mapping": 3,
        "uv_denoise": 3,
        "y_denoise": 2,
        "brightness_contrast": 2,
        "hue_saturation": 2,
        "sharpening": 3,
        "texture": 1,
    }
    assert len(NAMES) == len(set(NAMES)) == 16
    for p in PARAMS:
        assert p.low <= p.default <= p.high and p.doc


def test_normalised_round_trip_and_clipping():
    v = neutral()
    back = from_normalized(to_normalized(v))
    assert all(abs(back[k] - v[k]) < 1e-5 for k in NAMES)
    wild = from_normalized(np.array([5.0, -7.0, np.nan] + [0.0] * 13))
    assert wild["tone_exposure"] == PARAMS[0].high and wild["tone_gamma"] == PARAMS[1].low
    assert wild["tone_curve"] == PARAMS[2].default  # NaN -> neutral
    with pytest.raises(ValueError, match="unknown ISP parameter"):
        to_normalized({"gama": 1.0})


def test_rawpy_reads_all_four_layouts(isp_raws):
    layouts = set()
    for path in isp_raws:
        raw = read_raw(path)
        layouts.add(raw.layout)
        assert raw.layout == path.stem.split("_")[1].upper()
        top = int(raw.mosaic.max())  # white: LibRaw's, the brightest value when above 75 % of the range
        assert raw.white == (top if top - 64 > 0.75 * (1023 - 64) else 1023) and np.all(raw.black == 64)
        np.testing.assert_allclose(raw.wb_gains, [2.0, 1.0, 1 / 0.7], rtol=1e-3)
        np.testing.assert_allclose(raw.cam_to_srgb.sum(axis=1), 1.0, atol=1e-6)
    assert layouts == set(BAYER_LAYOUTS)


def test_black_level_is_taken_per_colour_index(tmp_path):
    for layout in BAYER_LAYOUTS:
        p = write_dng(
            tmp_path / f"b_{layout}.dng",
            np.full((64, 64), 500, np.uint16),
            layout,
            black_level=(60, 64, 68, 72),
        )
        np.testing.assert_array_equal(read_raw(p).black, [[60, 64], [68, 72]])


def _render_at_photo_exposure(raw) -> np.ndarray:
    """Full-resolution render with the exposure the DNG was unprocessed at (0.8), auto-exposure undone."""
    dev = develop(raw)
    return finish(dev, {"tone_exposure": float(np.log2(1.0 / (0.8 * dev.ae_gain)))})


def test_render_recovers_the_photo_in_every_layout(isp_raws):
    for path in isp_raws:
        raw = read_raw(path)
        out = _render_at_photo_exposure(raw)
        photo = _photo(path)[: out.shape[0], : out.shape[1]].astype(np.float64)
        assert out.shape == photo.shape and out.dtype == np.uint8
        err = np.abs(out[4:-4, 4:-4] - photo[4:-4, 4:-4]).mean()  # what remains: gamma 1/2.2 vs sRGB, noise
        # the same pipeline with the colour filter read wrongly (R and B swapped) must be clearly worse
        raw.cfa = 2 - raw.cfa
        swapped = np.abs(_render_at_photo_exposure(raw)[4:-4, 4:-4] - photo[4:-4, 4:-4]).mean()
        assert err < 16, (path.name, err)
        assert swapped > err + 3, (path.name, err, swapped)


def test_malvar_demosaic_is_exact_on_linear_ramps():
    yy, xx = np.mgrid[0:40, 0:48].astype(np.float32)
    rgb = np.stack([0.01 * xx + 0.1, 0.005 * yy + 0.3, 0.004 * (xx + yy) + 0.05], axis=-1)
    for pattern in BAYER_LAYOUTS.values():
        cfa = np.array(pattern).reshape(2, 2)
        mosaic = np.empty(rgb.shape[:2], np.float32)
        for py in range(2):
            for px in range(2):
                mosaic[py::2, px::2] = rgb[py::2, px::2, cfa[py, px]]
        np.testing.assert_allclose(demosaic_mhc(mosaic, cfa)[3:-3, 3:-3], rgb[3:-3, 3:-3], atol=1e-4)


def test_preview_is_binned_and_matches_full_resolution(isp_raws):
    raw = read_raw(isp_raws[0])
    pv = develop(raw, 96)
    assert max(pv.linear.shape[:2]) == 96
    full = finish(develop(raw), neutral())
    small = np.asarray(Image.fromarray(full).resize(pv.linear.shape[1::-1], Image.BOX)).astype(float)
    preview = finish(pv, neutral()).astype(float)
    assert np.corrcoef(preview.ravel(), small.ravel())[0, 1] > 0.95
    assert abs(preview.mean() - small.mean()) < 10


def _lap_energy(img: np.ndarray) -> float:
    y = img.astype(np.float64).mean(axis=2)
    return float(np.abs(4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]).mean())


def test_parameters_act_as_documented(isp_raws):
    dev = develop(read_raw(isp_raws[1]), 192)
    base = finish(dev, neutral()).astype(np.float64)

    def with_(**kw):
        return finish(dev, {**neutral(), **kw}).astype(np.float64)

    assert with_(tone_exposure=1.0).mean() > base.mean() + 5
    assert with_(brightness=-0.2).mean() < base.mean() - 20
    assert with_(contrast=1.5).std() > base.std() * 1.1
    grey = with_(saturation=0.0)
    assert np.abs(grey - grey.mean(axis=2, keepdims=True)).max() <= 1.0
    assert with_(tone_curve=1.0).std() > base.std()
    assert _lap_energy(with_(sharpen_amount=2.0, sharpen_threshold=0.0)) > 1.3 * _lap_energy(base)
    assert _lap_energy(with_(y_nr_threshold=0.08, y_nr_sigma=2.0)) < 0.8 * _lap_energy(base)
    uv = with_(uv_nr_strength=1.0, uv_nr_threshold=0.1, uv_nr_sigma=6.0)
    chroma = lambda im: np.abs(np.diff(im[..., 0] - im[..., 1], axis=1)).mean()  # noqa: E731
    assert chroma(uv) < chroma(base)
    assert np.abs(with_(texture_gain=2.0) - base).mean() > 1.0
    hue = with_(hue=30.0)
    assert np.abs(hue - base).mean() > 1.0
    assert np.isfinite(base).all()


def test_non_finite_metadata_never_reaches_the_output(isp_raws):
    raw = read_raw(isp_raws[2])
    raw.cam_to_srgb = np.full((3, 3), np.nan)
    out = render(raw, long_side=64)
    assert out.dtype == np.uint8 and out.shape[2] == 3


def test_unreadable_and_non_bayer_files_get_one_line_errors(tmp_path):
    import tifffile

    bad = tmp_path / "broken.dng"
    bad.write_text("not a raw")
    with pytest.raises(RawReadError, match="broken.dng: LibRaw can't read it") as e:
        read_raw(bad)
    assert "\n" not in str(e.value)
    stripes = tmp_path / "stripes.dng"  # a 6x6 colour filter, which LibRaw reads, of neither Bayer's nor
    pat = [0, 1, 2, 0, 1, 2] * 6  # X-Trans's colours (X-Trans is read: test_isp_kill_resume_and_xtrans.py)
    tags = [
        (33421, 3, 2, (6, 6), True),
        (33422, 1, 36, tuple(pat), True),
        (50706, 1, 4, (1, 4, 0, 0), True),
        (50708, 2, 0, "test stripes", True),
        (50717, 4, 1, 1023, True),
    ]
    tifffile.imwrite(stripes, np.full((36, 36), 500, np.uint16), photometric=32803, extratags=tags)
    with rawpy.imread(str(stripes)) as r:
        assert r.raw_pattern.shape == (6, 6)
    with pytest.raises(
        RawReadError, match=r"stripes.dng: unsupported colour filter layout \(6x6: 12 R, 12 G"
    ):
        read_raw(stripes)
    linear = tmp_path / "linear.dng"  # LinearRaw: already demosaiced, no mosaic
    tags = [
        (50706, 1, 4, (1, 4, 0, 0), True),
        (50708, 2, 0, "test linear", True),
        (50717, 4, 1, 1023, True),
        (50721, 10, 9, rationals(np.eye(3), 10000), True),
    ]
    tifffile.imwrite(linear, np.full((64, 64, 3), 500, np.uint16), photometric=34892, extratags=tags)
    with pytest.raises(RawReadError, match="linear.dng: not a Bayer raw"):
        read_raw(linear)
    with pytest.raises(RawReadError, match="missing.dng: file not found"):
        read_raw(tmp_path / "missing.dng")


def test_find_raws_fivek_layout(tmp_path, isp_raws):
    d = tmp_path / "fivek" / "raw_photos" / "HQa1to700" / "photos"
    d.mkdir(parents=True)
    (d / "a0001.dng").write_bytes(isp_raws[0].read_bytes())
    (d / "notes.txt").write_text("x")
    assert [p.name for p in find_raws(tmp_path / "fivek")] == ["a0001.dng"]


@pytest.mark.shared_data
def test_shared_sensor_raws_wrapped_in_dng(tmp_path):
    """The real 10-bit RGGB frame and the 16-bit GRBG Nokia N900 mosaic, wrapped as DNGs (crops)."""
    raw_dir = SHARED_DATA / "raw"
    if not raw_dir.is_dir():
        pytest.skip("../shared/data/raw not available")
    frame = np.fromfile(raw_dir / "openisp_test_1920x1080_10bit_rggb.raw", dtype="<u2").reshape(1080, 1920)
    p = write_dng(
        tmp_path / "openisp.dng",
        frame[:512, :768],
        "RGGB",
        black_level=0,
        white_level=1023,
        as_shot_neutral=(1024 / 1860, 1.0, 1024 / 1280),
    )
    raw = read_raw(p)
    np.testing.assert_allclose(raw.wb_gains, [1860 / 1024, 1.0, 1280 / 1024], rtol=1e-3)
    out = render(raw)
    assert out.shape == (512, 768, 3) and 20 < out.mean() < 235 and out.std() > 10
    n900 = np.asarray(Image.open(raw_dir / "halide_bayer_small_grbg.png")).astype(np.uint16)
    p2 = write_dng(tmp_path / "n900.dng", n900, "GRBG", black_level=25, white_level=1023)
    raw2 = read_raw(p2)
    assert raw2.layout == "GRBG" and np.all(raw2.black == 25)
    out2 = render(raw2)
    assert out2.shape[:2] == n900.shape and out2.std() > 5


def test_pyramid_blur_matches_a_direct_gaussian():
    from scipy.ndimage import gaussian_filter

    from isp_env.isp import band, blur

    x = gaussian_filter(np.random.default_rng(0).random((300, 401)).astype(np.float32), 2)
    for sigma in (3.0, 6.0, 12.0):
        ref = gaussian_filter(x, sigma, mode="reflect", truncate=4)
        assert np.abs(blur(x, sigma) - ref)[20:-20, 20:-20].max() < 0.005
    planes = blur(np.stack([x, 1 - x]), 6.0)
    np.testing.assert_allclose(planes[0], blur(x, 6.0), atol=1e-6)
    dog = gaussian_filter(x, 4.0, mode="reflect", truncate=4) - gaussian_filter(
        x, 12.0, mode="reflect", truncate=4
    )
    assert np.abs(band(x, 4.0, 12.0) - dog)[30:-30, 30:-30].max() < 0.005  # texture's mid band


def test_pyramid_rows_read_in_strips_equal_the_whole_upsampled_plane():
    from isp_env.isp import Smooth, upsample_axis

    x = np.random.default_rng(0).random((2, 203, 150)).astype(np.float32)
    for sigma in (3.0, 7.0, 20.0):  # f = 2, 4, 13 (203 and 150 not multiples: edge-replicated blocks)
        s = Smooth(x, sigma)
        whole = upsample_axis(s.small, s.f, 203, x.ndim - 2)
        parts = np.concatenate([s.rows(lo, min(lo + 16, 203)) for lo in range(0, 203, 16)], axis=-2)
        np.testing.assert_array_equal(parts, whole)
