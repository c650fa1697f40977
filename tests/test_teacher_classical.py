"""ClassicalTeacher: each measure follows graded degradations of its own kind on real photos."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from attiqa.attributes import ATTRIBUTES, attribute_index
from attiqa.distortions import DISTORTIONS, NUM_LEVELS, apply_distortion
from attiqa.teachers.classical import ClassicalTeacher, immerkaer_noise_sigma

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # These small batches gain nothing from intra-op threads, which spin badly on a busy 2-core box.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def teacher() -> ClassicalTeacher:
    return ClassicalTeacher()


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return {name: Image.fromarray(getattr(skimage.data, name)()) for name in PHOTOS}


def _graded_scores(teacher: ClassicalTeacher, img: Image.Image, distortion: str) -> np.ndarray:
    """(levels 0..5, 5 attributes) scores of one photo under one distortion."""
    batch = torch.stack(
        [teacher.transform(apply_distortion(img, distortion, level)) for level in range(NUM_LEVELS + 1)]
    )
    return teacher.score_tensors(batch).numpy()


@pytest.mark.parametrize(
    "distortion", ["gaussian_blur", "contrast", "brightness_down", "brightness_up", "saturation_down",
                   "saturation_up", "gaussian_noise", "iso_noise"]
)  # fmt: skip
def test_measure_moves_monotonically_with_its_own_distortion(teacher, photos, distortion):
    d = DISTORTIONS[distortion]
    col = attribute_index(d.attribute)
    for name, img in photos.items():
        scores = _graded_scores(teacher, img, distortion)[:, col]
        steps = np.diff(scores) * d.direction
        assert np.all(steps > 0), f"{distortion} on {name}: {d.attribute} scores {scores.round(4)}"


def test_sharpness_ignores_a_global_contrast_change(teacher, photos):
    # Documented normalisation: Laplacian energy is divided by RMS contrast.
    for img in photos.values():
        batch = torch.stack([teacher.transform(apply_distortion(img, "contrast", lv)) for lv in (0, 5)])
        raw = teacher.raw_measures(batch)["sharpness"]
        assert abs(float(raw[1] / raw[0]) - 1.0) < 0.03


def test_output_shape_range_and_dtype_on_varied_inputs(teacher, photos):
    rng = np.random.default_rng(0)
    extra = [
        Image.fromarray(skimage.data.camera()).convert("RGB"),  # greyscale photo
        Image.new("RGB", (300, 200), (0, 0, 0)),
        Image.new("RGB", (200, 300), (255, 255, 255)),
        Image.new("RGB", (64, 64), (128, 128, 128)),  # small: upsampled
        Image.fromarray(rng.integers(0, 256, (500, 400, 3), dtype=np.uint8)),
    ]
    scores = teacher.score_images([*photos.values(), *extra])
    assert scores.shape == (len(photos) + len(extra), len(ATTRIBUTES))
    assert scores.dtype == np.float32
    assert np.isfinite(scores).all()
    assert (scores >= 0).all() and (scores <= 1).all()
    assert teacher.columns == ATTRIBUTES


def test_extreme_images_hit_the_ends_of_the_scales(teacher):
    black, white, grey = (Image.new("RGB", (100, 100), (v, v, v)) for v in (0, 255, 128))
    s = teacher.score_images([black, white, grey])
    b, c, col, clean = (attribute_index(a) for a in ("brightness", "contrast", "colorfulness", "noisiness"))
    assert s[0, b] == pytest.approx(0.0, abs=1e-6) and s[1, b] == pytest.approx(1.0, abs=1e-5)
    assert 0.45 < s[2, b] < 0.6  # sRGB 128 is L* = 53.6
    assert s[2, c] == pytest.approx(0.0, abs=1e-6)  # flat: no contrast
    assert s[2, col] == pytest.approx(0.0, abs=1e-6)  # grey: no colour
    assert s[2, clean] == pytest.approx(1.0, abs=1e-6)  # flat: no noise


def test_noise_estimate_recovers_known_sigma_on_flat_images():
    g = torch.Generator().manual_seed(0)
    for sigma in (2.0, 5.0, 15.0):
        x = 128.0 + sigma * torch.randn(2, 3, 256, 256, generator=g)
        est = immerkaer_noise_sigma(x)
        assert torch.allclose(est, torch.full_like(est, sigma), rtol=0.05), (sigma, est)


def test_noisier_image_ranks_below_clean_one_across_photos(teacher, photos):
    # A heavily noised photo must be less clean than every clean photo (not only its own original).
    clean = teacher.score_images(list(photos.values()))[:, attribute_index("noisiness")]
    noisy = teacher.score_images([apply_distortion(im, "gaussian_noise", 5) for im in photos.values()])
    assert noisy[:, attribute_index("noisiness")].max() < clean.min()


def test_scores_do_not_depend_on_batch_companions(teacher, photos):
    imgs = list(photos.values())
    together = teacher.score_images(imgs)
    alone = np.concatenate([teacher.score_images([im]) for im in imgs])
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("size", [(512, 512), (640, 427), (300, 451), (50, 80)])
def test_transform_gives_fixed_size_uint8_and_scoring_takes_both_dtypes(size):
    t = ClassicalTeacher(size=128)
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    x = t.transform(img)
    assert x.shape == (3, 128, 128) and x.dtype == torch.uint8  # compact for worker -> main transfer
    as_u8 = t.score_tensors(x.unsqueeze(0))
    as_float = t.score_tensors(x.unsqueeze(0).float() / 255.0)
    torch.testing.assert_close(as_u8, as_float)


def test_transform_converts_non_rgb_and_is_picklable(teacher, photos):
    grey = Image.fromarray(skimage.data.camera())  # mode "L"
    assert teacher.transform(grey).shape == (3, 384, 384)
    fn = pickle.loads(pickle.dumps(teacher.transform))
    img = photos["coffee"]
    assert torch.equal(fn(img), teacher.transform(img))
    assert pickle.loads(pickle.dumps(teacher)).metadata() == teacher.metadata()


def test_raw_measures_are_the_unmapped_inputs_of_the_scores(teacher, photos):
    batch = torch.stack([teacher.transform(im) for im in photos.values()])
    raw = teacher.raw_measures(batch)
    assert set(raw) == {"sharpness", "contrast", "brightness", "colorfulness", "noise_sigma"}
    assert all(v.shape == (len(photos),) for v in raw.values())
    torch.testing.assert_close(ClassicalTeacher.map_measures(raw), teacher.score_tensors(batch))
    # Hasler-Süsstrunk M is on its published 0..~110 scale for colour photos.
    assert float(raw["colorfulness"].max()) > 30.0


def test_metadata_and_bad_input():
    t = ClassicalTeacher()
    meta = t.metadata()
    assert meta["teacher"] == "classical" and meta["size"] == 384
    assert set(meta["measures"]) == set(ATTRIBUTES)
    with pytest.raises(ValueError, match="expected a batch"):
        t.score_tensors(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError):
        ClassicalTeacher(size=4)


def test_label_command_says_the_default_teacher_is_not_clip(tmp_path, photos):
    """`attiqa label` defaults to the classical teacher, not the paper's CLIP: the help says so, the run's
    log names the teacher, and the label file's metadata (copied into the pretrain card) records it."""
    from helpers import run_attiqa

    from attiqa.labeling import read_label_metadata

    for name in ("coffee", "astronaut"):
        photos[name].resize((96, 96)).save(tmp_path / f"{name}.png")
    helped = run_attiqa("label", "--help", env={"COLUMNS": "200", "TERM": "dumb"})
    assert "NOT the paper's CLIP" in " ".join(helped.stdout.split())
    out = tmp_path / "labels.parquet"
    res = run_attiqa("label", tmp_path, "--out", out)
    assert res.returncode == 0, res.stderr
    assert "teacher: classical (not CLIP)" in res.stderr
    assert read_label_metadata(out)["teacher"]["teacher"] == "classical"
