"""The 25 KADID-10k types and the supplement §A blur proxies: registry, determinism, sizes, monotone
strength on real photos (scikit-image), the gallery sheet and the `distort` / `gallery` commands."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import resized
from PIL import Image
from scipy import ndimage

from attiqa.distortions import DISTORTIONS, KADID_NAMES, NUM_LEVELS, apply_distortion, get_distortion
from attiqa.distortions.basic import disk_kernel
from attiqa.distortions.gallery import gallery_sheet
from attiqa.distortions.kadid import motion_kernel

PROXY_BLURS = ("zoom_blur", "lens_blur")
ALL_NEW = (*KADID_NAMES, *PROXY_BLURS)
REGISTERED = tuple(n for n in sorted(DISTORTIONS) if not n.startswith("test_"))  # every registered type


@pytest.fixture(scope="module")
def small_photos(photos) -> list[Image.Image]:
    """Three real photos at 192 px (fast) — KADID's parameters act in pixels, so sizes stay moderate —
    spanning the full 0..255 range, so the KADID generator's input ``mapmm`` leaves them as they are and
    level 0 -> 1 measures the distortion alone (the stretch itself is tested separately)."""
    out = []
    for n in ("astronaut", "coffee", "chelsea"):
        a = np.asarray(resized(photos[n], longer=192), dtype=np.float64)
        a = np.rint((a - a.min()) / (a.max() - a.min()) * 255.0).astype(np.uint8)
        out.append(Image.fromarray(a))
    return out


def _f(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


# --- simple, independent measures (numpy/scipy on the output image, not the library's own code) --------


def _laplacian_energy(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ndimage.laplace(a.mean(axis=2))).mean())


def _mae(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).mean())


def _mean(a: np.ndarray, ref: np.ndarray) -> float:
    return float(a.mean())


def _grey_std(a: np.ndarray, ref: np.ndarray) -> float:
    return float(a.mean(axis=2).std())


def _distinct_values(a: np.ndarray, ref: np.ndarray) -> float:
    return float(len(np.unique(a)))


def _distinct_colours(a: np.ndarray, ref: np.ndarray) -> float:
    return float(len(np.unique(a.reshape(-1, 3), axis=0)))


# name -> (measure, sign over levels, first level from which it must be strictly monotone); before that
# level it must not move the wrong way. None: level 0 (the original) is not on the scale at all.
MEASURES = {
    "kadid_gaussian_blur": (_laplacian_energy, -1, 1),  # level 1 (sigma 0.1) ~ identity, as in KADID
    "kadid_lens_blur": (_laplacian_energy, -1, 0),
    "kadid_motion_blur": (_laplacian_energy, -1, 1),  # level 1 (length 1) = identity, as in KADID
    "lens_blur": (_laplacian_energy, -1, 0),
    "zoom_blur": (_laplacian_energy, -1, 0),
    "kadid_brighten": (_mean, +1, 0),
    "kadid_darken": (_mean, -1, 0),
    "kadid_contrast_change": (_grey_std, -1, None),  # more contrast (1-3) .. less contrast (4-5)
    "kadid_quantization": (_distinct_values, -1, 1),
    "kadid_color_quantization": (_distinct_colours, -1, 1),
    "kadid_color_saturation_2": (_mae, +1, 1),  # level 1 = factor 1, as in KADID
}
# everything else: mean absolute difference from the original grows with the level
DEFAULT_MEASURE = (_mae, +1, 0)


def _chroma(a: np.ndarray, ref: np.ndarray) -> float:
    return float((a.max(axis=2) - a.min(axis=2)).mean())


def _cleanliness(a: np.ndarray, ref: np.ndarray) -> float:
    """Minus the fine-scale residual (image minus a 1-px Gaussian blur), which noise of any kind raises."""
    return -float(np.abs(a - ndimage.gaussian_filter(a, sigma=(1, 1, 0))).mean())


# attribute -> an independent measure that rises with the attribute's "good" pole (attiqa.attributes)
ATTRIBUTE_MEASURES = {
    "sharpness": _laplacian_energy,
    "contrast": _grey_std,
    "brightness": _mean,
    "colorfulness": _chroma,
    "noisiness": _cleanliness,
}


def test_all_25_kadid_types_registered_in_order_with_documented_levels():
    assert len(KADID_NAMES) == 25
    assert [DISTORTIONS[n].kadid_id for n in KADID_NAMES] == list(range(1, 26))
    for name in ALL_NEW:
        d = get_distortion(name)
        assert len(d.levels) == NUM_LEVELS and d.parameter and d.source
        assert "KADID" in d.source or "ImageNet-C" in d.source
    # spot checks against KADID's imdist_generator.m level vectors
    assert DISTORTIONS["kadid_gaussian_blur"].levels == (0.1, 0.5, 1.0, 2.0, 5.0)
    assert DISTORTIONS["kadid_jpeg"].levels == (43.0, 36.0, 24.0, 7.0, 4.0)
    assert DISTORTIONS["kadid_jpeg2000"].levels == (16.0, 32.0, 45.0, 120.0, 400.0)
    assert DISTORTIONS["kadid_color_saturation_1"].levels == (0.4, 0.2, 0.1, 0.05, 0.0)  # ours at 4-5 (#7)
    assert DISTORTIONS["kadid_contrast_change"].levels == (0.3, 0.15, 0.0, -0.4, -0.6)
    assert DISTORTIONS["kadid_white_noise"].levels[-1] == pytest.approx(0.1)
    # supplement §A: three sharpness proxies
    assert {DISTORTIONS[n].attribute for n in ("gaussian_blur", *PROXY_BLURS)} == {"sharpness"}


@pytest.mark.parametrize("name", REGISTERED)
def test_strength_is_monotone_in_a_simple_measure_on_real_photos(small_photos, name):
    measure, sign, strict_from = MEASURES.get(name, DEFAULT_MEASURE)
    for img in small_photos:
        ref = _f(img)
        values = np.array([measure(_f(apply_distortion(img, name, lv, seed=5)), ref) for lv in range(6)])
        steps = np.diff(values) * sign
        start = 1 if strict_from is None else strict_from
        assert np.all(steps[start:] > 0), (name, values.round(3))
        if strict_from is not None:
            assert np.all(steps[:start] >= -1e-9), (name, values.round(3))


@pytest.mark.parametrize("name", [n for n in REGISTERED if DISTORTIONS[n].attribute])
def test_registered_attribute_moves_its_own_way_at_every_level(small_photos, name):
    """A type registered as moving an attribute does so strictly at every step (after a documented
    near-identity first level), in its registered direction: e.g. KADID #7 must keep losing colour."""
    d = DISTORTIONS[name]
    measure = ATTRIBUTE_MEASURES[d.attribute]
    strict_from = MEASURES.get(name, DEFAULT_MEASURE)[2] or 0
    for img in small_photos:
        ref = _f(img)
        values = np.array([measure(_f(apply_distortion(img, name, lv, seed=5)), ref) for lv in range(6)])
        steps = np.diff(values) * d.direction
        assert np.all(steps[strict_from:] > 0), (name, d.attribute, values.round(4))
        assert np.all(steps[:strict_from] >= -1e-9), (name, d.attribute, values.round(4))


def test_kadid_7_desaturates_without_recolouring(small_photos):
    """No level flips a pixel's channel order (KADID's factor -0.4 would turn every hue into its complement):
    channels only move toward the max channel, up to rounding and the final ``mapmm`` stretch."""
    img = small_photos[1]
    a = _f(img)
    order = np.argsort(a, axis=2, kind="stable")
    for lv in range(1, NUM_LEVELS + 1):
        out = _f(apply_distortion(img, "kadid_color_saturation_1", lv))
        assert np.all(np.diff(np.take_along_axis(out, order, axis=2), axis=2) >= -1.0), lv
    grey = _f(apply_distortion(img, "kadid_color_saturation_1", NUM_LEVELS))
    assert (grey.max(axis=2) - grey.min(axis=2)).max() <= 1.0


def test_kadid_types_run_between_two_mapmm_calls():
    """KADID's generator min-max rescales the input and the result (``mapmm``): a low-contrast photo comes
    out full-range at level 1 of any type; a mean shift is stretched back to the full range."""
    from attiqa.distortions.kadid import mapmm

    rng = np.random.default_rng(0)
    flat = Image.fromarray(rng.integers(60, 181, (48, 64, 3), dtype=np.uint8))  # values 60..180
    for name in ("kadid_gaussian_blur", "kadid_mean_shift", "kadid_jpeg"):
        out = _f(apply_distortion(flat, name, 1, seed=3))
        assert out.min() == 0.0 and out.max() == 255.0, name
    # level 0 stays the identity copy (no stretch)
    assert apply_distortion(flat, "kadid_gaussian_blur", 0).tobytes() == flat.tobytes()
    # mapmm itself: whole-array min-max, constant arrays unchanged
    x = np.array([[0.2, 0.4], [0.6, 0.3]], dtype=np.float32)
    np.testing.assert_allclose(mapmm(x), (x - 0.2) / 0.4, atol=1e-6)
    const = np.full((3, 3), 0.5, dtype=np.float32)
    assert np.array_equal(mapmm(const), const)
    # a shift that clips nothing is undone entirely by the final mapmm (KADID's #18 on an unclipped range)
    from attiqa.distortions import get_distortion

    shift = get_distortion("kadid_mean_shift")
    ramp = np.repeat(np.linspace(0.25, 0.75, 16, dtype=np.float32).reshape(4, 4, 1), 3, axis=2)
    y = shift.fn(ramp, 0.04, np.random.default_rng(1))
    assert y.min() == pytest.approx(0.0) and y.max() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ALL_NEW)
def test_identity_at_zero_and_deterministic_for_a_seed(small_photos, name):
    img = small_photos[1]
    assert apply_distortion(img, name, 0, seed=3).tobytes() == img.tobytes()
    a = apply_distortion(img, name, 4, seed=7).tobytes()
    assert a == apply_distortion(img, name, 4, seed=7).tobytes()
    other = apply_distortion(img, name, 4, seed=8).tobytes()
    if DISTORTIONS[name].stochastic:
        assert a != other
    else:
        assert a == other


@pytest.mark.parametrize("name", ALL_NEW)
@pytest.mark.parametrize("size", [(1, 1), (7, 300), (61, 45)])
def test_any_image_size(name, size):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    for level in (1, NUM_LEVELS):
        out = apply_distortion(img, name, level, seed=1)
        assert out.size == img.size and out.mode == "RGB"


def test_kernels_are_normalised_and_shaped():
    for r in (1.0, 2.0, 8.0):
        k = disk_kernel(r)
        assert k.shape == (2 * int(np.ceil(r - 0.5)) + 1,) * 2 and k.sum() == pytest.approx(1.0)
        assert k[k.shape[0] // 2, k.shape[1] // 2] == k.max()
    assert motion_kernel(1, 30.0).shape == (1, 1)
    horiz = motion_kernel(10, 0.0)
    assert horiz.sum() == pytest.approx(1.0)
    rows = np.nonzero(horiz.sum(axis=1) > 1e-6)[0]
    assert len(rows) == 1  # a horizontal line stays on one row
    assert np.count_nonzero(horiz.sum(axis=0) > 1e-6) >= 10


def test_noise_types_have_their_tabled_strength():
    # mid-grey under a first row of black and white pixels: already full-range (and staying so under noise),
    # so KADID's two mapmm calls leave the noise as it is; on a flat grey they would stretch it to 0..255
    a = np.full((201, 200, 3), 128, dtype=np.uint8)
    a[0, :100], a[0, 100:] = 0, 255
    grey = Image.fromarray(a)
    out = _f(apply_distortion(grey, "kadid_white_noise", 5, seed=0))[1:]
    assert out.std() == pytest.approx(0.1 * 255, rel=0.05)
    imp = _f(apply_distortion(grey, "kadid_impulse_noise", 5, seed=0))[1:]
    frac = np.mean((imp == 0) | (imp == 255))
    assert frac == pytest.approx(0.03, rel=0.15)  # density of salt & pepper samples
    mul = _f(apply_distortion(grey, "kadid_multiplicative_noise", 5, seed=0))[1:]
    assert (mul / 128.0 - 1.0).std() == pytest.approx(np.sqrt(0.05), rel=0.05)
    flat = Image.new("RGB", (200, 200), (128, 128, 128))
    stretched = _f(apply_distortion(flat, "kadid_white_noise", 5, seed=0))
    assert stretched.min() == 0 and stretched.max() == 255  # mapmm on a flat image: noise fills the range


def test_gallery_sheet_has_one_row_per_type_and_six_levels(small_photos):
    names = ["gaussian_blur", "kadid_jpeg", "kadid_color_block"]
    sheet = gallery_sheet(small_photos[0], names, thumb=64)
    cell_w = 64 + 4
    assert sheet.width > 6 * cell_w and sheet.height > 3 * 64
    a = np.asarray(sheet)
    # the level-0 cell of the first row is the thumbnail itself (not blank)
    assert a[30:60, 240:290].std() > 5


def test_distort_and_gallery_commands(tmp_path, small_photos, cli):
    src = tmp_path / "photo.png"
    small_photos[0].save(src)
    out = tmp_path / "out.png"
    r = cli("distort", src, "--type", "kadid_jpeg", "--level", "3", "-o", out)
    assert r.returncode == 0, r.stderr
    expected = apply_distortion(small_photos[0], "kadid_jpeg", 3)
    assert Image.open(out).tobytes() == expected.tobytes()
    bad = cli("distort", src, "--type", "kadid_jpg", "--level", "3", "-o", out)
    assert bad.returncode == 2 and "did you mean 'kadid_jpeg'" in bad.stderr and "Traceback" not in bad.stderr
    missing = cli("distort", tmp_path / "nope.png", "--type", "kadid_jpeg", "--level", "1", "-o", out)
    assert missing.returncode == 2 and "nope.png" in missing.stderr and "Traceback" not in missing.stderr
    sheet = tmp_path / "sheet.png"
    r = cli("gallery", src, "-o", sheet, "--kadid", "--thumb", "48")
    assert r.returncode == 0, r.stderr
    with Image.open(sheet) as im:
        assert im.height > 25 * 48


def test_docs_table_lists_every_distortion_with_its_levels():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "distortions.md").read_text(encoding="utf-8")
    for d in DISTORTIONS.values():
        if d.name.startswith("test_"):
            continue
        levels = ", ".join(f"{v:.4g}" for v in d.levels)
        assert f"| `{d.name}` |" in doc and levels in doc, f"docs/distortions.md is stale for {d.name}"


def test_gallery_left_hand_text_is_wrapped_inside_its_column(tmp_path, small_photos, cli):
    """The sheet cut each row's parameter at 36 characters ("factor on the deviation from the cha"); now it
    is wrapped to the column, every line inside its box (measured with textbbox), at a normal and a tiny
    --thumb, on a sheet rendered by the real command."""
    from PIL import ImageDraw

    from attiqa.distortions.gallery import HEADER_H, LABEL_PAD, LABEL_W, LINE_H, label_lines
    from attiqa.drawing import font

    src = tmp_path / "photo.png"
    small_photos[0].save(src)
    names = ["contrast", "kadid_contrast_change", "zoom_blur"]
    for thumb in (160, 24):
        sheet_path = tmp_path / f"sheet{thumb}.png"
        r = cli("gallery", src, "-o", sheet_path, "--types", ",".join(names), "--thumb", str(thumb))
        assert r.returncode == 0, r.stderr
        sheet = Image.open(sheet_path).convert("RGB")
        a = np.asarray(sheet)
        row_h = (sheet.height - HEADER_H) // len(names) - 4  # cells + their captions: the text's box
        draw, f = ImageDraw.Draw(sheet), font()
        for i, name in enumerate(names):
            top = HEADER_H + i * (row_h + 4)
            lines = label_lines(draw, get_distortion(name), f, row_h)
            for k, (line, _) in enumerate(lines):
                box = draw.textbbox((LABEL_PAD, top + 2 + k * LINE_H), line, font=f)
                assert box[0] >= 0 and box[2] <= LABEL_W - LABEL_PAD and box[3] <= top + row_h, (thumb, line)
            said = " ".join(line for line, _ in lines)
            if thumb == 160:  # room for all of it: nothing cut
                assert said == f"{name} attribute: {get_distortion(name).attribute or '-'} " + " ".join(
                    get_distortion(name).parameter.split()
                ), said
                last = top + 2 + (len(lines) - 1) * LINE_H  # the wrapped line is on the sheet
                assert (a[last : last + LINE_H, :LABEL_W] < 200).any()
            else:
                assert lines[0][0] == name and len(lines) * LINE_H <= row_h + LINE_H
        assert (a[HEADER_H:, LABEL_W - LABEL_PAD : LABEL_W] == 255).all()  # no text runs into the cells


def test_kadid_jpeg_of_a_panorama_wider_than_jpeg_allows_is_coded_in_tiles():
    """**Was** (review of session 62): `kadid_jpeg` of a photo with a side over 65,500 px (libjpeg's limit; a
    stitched panorama) raised "broken data stream when writing image file", which `attiqa degrade` took for a
    disk error and stopped. Now coded in tiles of whole 16-px MCUs, each compressed."""
    from attiqa.distortions.kadid import JPEG_MAX_SIDE, JPEG_TILE

    wide = np.random.default_rng(0).integers(0, 256, (9, JPEG_MAX_SIDE + 37, 3), dtype=np.uint8)
    out = np.asarray(apply_distortion(Image.fromarray(wide), "kadid_jpeg", 5))
    assert out.shape == wide.shape and out.dtype == np.uint8
    err = np.abs(out.astype(int) - wide.astype(int))
    assert err[:, :JPEG_TILE].mean() > 20 and err[:, JPEG_TILE:].mean() > 20  # both tiles at quality 4
