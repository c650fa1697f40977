"""Synthetic raws (unprocessing, Brooks et al. 2019): real DNGs through real rawpy, re-rendered neutrally."""

from __future__ import annotations

import numpy as np
import pytest

from isp_env.dng import BAYER_LAYOUTS, demo_photo
from isp_env.isp import render
from isp_env.raw import read_raw
from isp_env.synth import inverse_smoothstep, sample_camera, synth_dng, synth_raws


def _luma(x: np.ndarray) -> np.ndarray:
    return x[..., :3].astype(np.float64) @ [0.299, 0.587, 0.114]


def test_inverse_smoothstep_inverts_smoothstep():
    x = np.linspace(0, 1, 101)
    y = 3 * x**2 - 2 * x**3
    np.testing.assert_allclose(inverse_smoothstep(y), x, atol=1e-6)


def test_cameras_are_random_and_within_brooks_ranges():
    cams = [sample_camera(np.random.default_rng(s)) for s in range(40)]
    assert {c["layout"] for c in cams} == set(BAYER_LAYOUTS)
    r_gain = np.array([1 / c["as_shot_neutral"][0] for c in cams])
    b_gain = np.array([1 / c["as_shot_neutral"][2] for c in cams])
    assert r_gain.min() >= 1.9 and r_gain.max() <= 2.4 and b_gain.min() >= 1.5 and b_gain.max() <= 1.9
    shot = np.array([c["shot_noise"] for c in cams])
    assert shot.min() >= 1e-4 and shot.max() <= 1.2e-2 and shot.max() / shot.min() > 10  # many ISOs


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_synthesised_raw_rendered_neutrally_matches_its_photo(tmp_path, seed):
    """Statistics of the neutral re-render match the source photo: the random white balance and colour
    matrix are undone by the metadata written to the DNG (colour balance within a few percent), and the
    scene survives mosaicking and noise (luma correlation)."""
    photo = demo_photo(["astronaut", "coffee", "chelsea", "rocket"][seed], 192)
    raw = read_raw(synth_dng(tmp_path / "s.dng", photo, seed))
    assert raw.layout in BAYER_LAYOUTS and raw.white in (4095, raw.mosaic.max())  # LibRaw's white level rule
    out = render(raw)
    src = photo[: out.shape[0], : out.shape[1]]
    corr = np.corrcoef(_luma(src).ravel(), _luma(out).ravel())[0, 1]
    assert corr > 0.9
    cast_src = src.reshape(-1, 3).mean(0) / src.mean() - 1.0  # the photo's colour balance
    cast_out = out.reshape(-1, 3).mean(0) / out.mean() - 1.0
    # the same colour balance; the neutral render has no tone curve, so strong colours come out a little
    # weaker (a shorter cast vector in the same direction), never in another direction
    cos = cast_src @ cast_out / (np.linalg.norm(cast_src) * np.linalg.norm(cast_out) + 1e-9)
    ratio = np.linalg.norm(cast_out) / (np.linalg.norm(cast_src) + 1e-9)
    assert np.abs(cast_src - cast_out).max() < 0.12 or (cos > 0.95 and 0.5 < ratio < 1.5)
    # and the raw itself is not white balanced: the gains are in the metadata, not in the data
    assert abs(raw.wb_gains[0] - 1.0) > 0.5 and abs(raw.wb_gains[2] - 1.0) > 0.3


def test_synth_raws_writes_one_dng_per_photo_and_is_rerunnable(tmp_path):
    from PIL import Image

    photos = []
    for i, name in enumerate(["astronaut", "coffee"]):
        p = tmp_path / "photos" / f"{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(demo_photo(name, 96)).save(p)
        photos.append(p)
    first = synth_raws(photos, tmp_path / "synth", seed=0)
    stamps = [p.stat().st_mtime_ns for p in first]
    again = synth_raws(photos, tmp_path / "synth", seed=0)
    assert first == again and [p.stat().st_mtime_ns for p in again] == stamps
    assert all(read_raw(p).shape[0] >= 64 for p in first)


def test_synth_raws_skips_an_unreadable_photo_and_keeps_the_rest(tmp_path):
    from PIL import Image

    good = tmp_path / "photos" / "good.png"
    good.parent.mkdir()
    Image.fromarray(demo_photo("coffee", 96)).save(good)
    bad = tmp_path / "photos" / "bad.png"
    bad.write_bytes(good.read_bytes()[:200])  # truncated
    skipped: dict[str, str] = {}
    out = synth_raws([bad, good], tmp_path / "synth", seed=0, skipped=skipped)
    assert [p.name for p in out] == ["synth_photos_good.dng"] and read_raw(out[0]).shape[0] >= 64
    assert list(skipped) == [str(bad)] and "bad.png" in skipped[str(bad)]


def test_synth_photos_in_a_linked_folder_are_found(tmp_path, photos):
    """**Was** (session 35): ``--synth-photos photos`` where ``photos/set`` links to a folder of photos
    found none ("no photos found"), as ``--raw-dir`` did raws (``Path.rglob`` does not enter linked
    folders); now found as `attiqa` finds images, each real folder once; one photo named on its own is
    used as it is."""
    from isp_env.synth import find_photos

    real = tmp_path / "store"
    real.mkdir()
    for name, img in list(photos.items())[:2]:
        img.save(real / f"{name}.png")
    (real / "up").symlink_to(tmp_path)  # a cycle
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "set").symlink_to(real)
    found = find_photos(tmp_path / "photos")
    assert [p.name for p in found] == sorted(f"{n}.png" for n in list(photos)[:2])
    assert find_photos(found[0]) == [found[0]]
