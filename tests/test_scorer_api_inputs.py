"""The Python API (README "Python", `attiqa.create_scorer`): a scorer called on numpy images, image tensors,
an empty list. Real scorers (the shipped `attiqa-default`, `classical`) on real photos of scikit-image; each
test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import attiqa
from attiqa.errors import AttiqaError


@pytest.fixture(scope="module")
def default_scorer():
    return attiqa.create_scorer("attiqa-default")


@pytest.fixture(scope="module")
def photo(photos) -> Image.Image:
    img = photos["coffee"]
    return img.resize((300, round(300 * img.height / img.width)), Image.BICUBIC)


def test_numpy_images_score_as_their_pil_images(default_scorer, photo):
    """**Was**: "TypeError: expected str, bytes or os.PathLike object, not ndarray" for every numpy image
    (skimage, OpenCV after BGR->RGB, matplotlib's imread), alone, in a list or as an (N, H, W, 3) batch.
    Now a numpy image is an image: uint8, uint16, bool or float in [0, 1]; (H, W), (H, W, 1 | 3 | 4)."""
    rgb = np.asarray(photo)
    by_pil = default_scorer(photo)
    for arr in (
        rgb,
        rgb / 255.0,
        rgb.astype(np.uint16) * 257,
        np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
    ):
        got = default_scorer(arr)
        assert got == pytest.approx(by_pil, abs=1e-4), arr.dtype
    grey = photo.convert("L")
    assert default_scorer(np.asarray(grey)) == pytest.approx(default_scorer(grey), abs=1e-4)
    batch = default_scorer(np.stack([rgb, rgb[::-1]]))
    listed = default_scorer([photo, photo.transpose(Image.Transpose.FLIP_TOP_BOTTOM)])
    for c in default_scorer.columns:
        np.testing.assert_allclose(batch[c], listed[c], atol=1e-4)


def test_what_is_not_an_image_is_one_line_saying_what_to_pass(default_scorer, photo):
    rgb = np.asarray(photo)
    with pytest.raises(AttiqaError, match=r"\[0, 1\], this one 0\.\.255 — divide by 255"):
        default_scorer(rgb.astype(np.float32))
    with pytest.raises(AttiqaError, match=r"channels first: pass a.transpose\(1, 2, 0\)"):
        default_scorer(rgb.transpose(2, 0, 1).copy())
    with pytest.raises(TypeError, match="cannot score an object of type int: pass a path, a PIL image"):
        default_scorer(3)
    empty = default_scorer([])  # was torch.cat's "expected a non-empty list of Tensors"
    assert set(empty) == set(default_scorer.columns) and all(len(v) == 0 for v in empty.values())


def test_an_image_tensor_is_refused_not_scored_as_the_models_view(default_scorer, photo):
    """**Was**: a photo as a (3, H, W) tensor in [0, 1] (torchvision's to_tensor) was scored as if it were
    the model's view — not resized, cropped or normalised — a plausible, wrong MOS (42.4 for a clive-dev
    photo that scores 57.3 as a PIL image or a path); a uint8 tensor (torchvision's read_image) was torch's
    "Input type (unsigned char) and bias type (float) should be the same"; and one transform output of the
    five-crop view was scored as five images. Now image tensors are refused with what to pass instead, and
    one view gives one score."""
    as_tensor = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1)
    for t in (as_tensor.float() / 255, as_tensor):
        with pytest.raises(
            AttiqaError, match=r"is not this scorer's view: a tensor must be scorer\.transform"
        ):
            default_scorer(t)
    view = default_scorer.transform(photo)
    assert tuple(view.shape) == (5, 3, 320, 320)
    one = default_scorer(view)
    assert isinstance(one["mos"], float) and one == pytest.approx(default_scorer(photo), abs=1e-4)
    two = default_scorer(torch.stack([view, view]))  # a batch of views, as before
    # a batch of two sums in another order than one view alone (without the native kernel: 2e-4 apart)
    np.testing.assert_allclose(two["mos"], [one["mos"]] * 2, atol=1e-3)


def test_a_missing_device_a_stage_folder_a_card_and_a_path_to_create_scorer(tmp_path):
    """**Was**: `create_scorer("attiqa-default", device="cuda")` on a machine without CUDA was torch's "Found
    no NVIDIA driver on your system …" (`device="gpu"`: torch's list of every device type);
    `load_scorer("RUN/finetune")` — the folder holding last.safetensors — "folder holds no ATTIQA checkpoint
    (finetune/last.safetensors, ...)"; `load_scorer("RUN/finetune/last.json")` (the card) "not a readable
    safetensors checkpoint (… header too large)"; `create_scorer(PATH)` "unknown scorer '…' (known names:
    …)". Now the device rule of `--device`, the stage folder's checkpoint, and one line saying what to
    pass."""
    from attiqa.models import AttiqaModel, create_backbone, save_model

    if not torch.cuda.is_available():
        with pytest.raises(AttiqaError, match="device 'cuda' requested but CUDA is not available"):
            attiqa.create_scorer("classical", device="cuda")
    with pytest.raises(AttiqaError, match="unknown device 'gpu' — use auto, cpu, cuda or cuda:N"):
        attiqa.create_scorer("classical", device="gpu")
    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny"), head_hidden=8, mos_hidden=8)
    model.set_mos_range(1.0, 5.0)
    ckpt = save_model(model, tmp_path / "run" / "finetune" / "last.safetensors", card={"name": "t"})
    assert attiqa.load_scorer(tmp_path / "run" / "finetune").checkpoint == ckpt
    card = ckpt.with_suffix(".json")
    with pytest.raises(AttiqaError, match=f"{card}: a model card — pass the checkpoint beside it, {ckpt}"):
        attiqa.load_scorer(card)
    with pytest.raises(
        AttiqaError, match="a checkpoint, not a scorer name — load it with attiqa.load_scorer"
    ):
        attiqa.create_scorer(str(ckpt))
