"""The edit guard (ours, issue 20): statistics of the edit itself (clipping, saturated chroma, boosted fine
detail) measured on the crop's pixels, a detector fitted on them, and a penalty on the MOS; kept through
save/load, refused in one line when malformed, fitted by ``attiqa train guard``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageFilter
from typer.testing import CliRunner

from attiqa.cli.app import app
from attiqa.errors import ModelLoadError
from attiqa.models import AttiqaModel, create_backbone, load_model, save_model
from attiqa.models.edit_stats import GUARD_NAMES, NAMES, EditGuard, edit_stats, hue_histogram
from attiqa.scorers import load_scorer
from attiqa.training.ridge import fit_edit_guard

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _t(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]


def _edits(img: Image.Image) -> dict[str, Image.Image]:
    """The issue's strong over-processings (as experiments/generalisation/make_variants.py writes them) and a
    blur."""
    arr = np.asarray(img, dtype=np.float32) / 255
    bright = Image.fromarray((np.clip(arr * 2.8, 0, 1) * 255 + 0.5).astype(np.uint8))  # ~ +1.5 EV
    return {
        "sharpen": img.filter(ImageFilter.UnsharpMask(radius=3, percent=300, threshold=0)),
        "saturation": ImageEnhance.Color(img).enhance(2.0),
        "contrast": ImageEnhance.Contrast(img).enhance(1.8),
        "exposure": bright,
        "blur": img.filter(ImageFilter.GaussianBlur(2)),
    }


@pytest.fixture(scope="module")
def photo(photos) -> Image.Image:
    img = photos["coffee"]
    return img.resize((img.width // 2, img.height // 2), Image.LANCZOS)


def test_each_over_processing_moves_the_statistics_that_describe_it(photo):
    base = dict(zip(NAMES, edit_stats(_t(photo))[0].tolist(), strict=True))
    got = {k: dict(zip(NAMES, edit_stats(_t(v))[0].tolist(), strict=True)) for k, v in _edits(photo).items()}
    assert got["exposure"]["clip_hi"] > base["clip_hi"] + 1 and got["exposure"]["y_hi"] > base["y_hi"] + 1
    assert got["saturation"]["sat_hi"] > base["sat_hi"] + 0.5
    assert got["saturation"]["chroma_p99"] > base["chroma_p99"] + 0.05
    assert got["contrast"]["clip_lo"] > base["clip_lo"] + 0.5 and got["contrast"]["clip_hi"] > base["clip_hi"]
    assert got["sharpen"]["overshoot"] > base["overshoot"] + 0.5
    assert got["blur"]["band_ratio"] < base["band_ratio"] - 0.5  # detail removed, not boosted
    assert got["blur"]["overshoot"] < base["overshoot"]


def test_statistics_are_per_image_and_refuse_a_wrong_shape(photo):
    one = _t(photo)
    two = torch.cat([one, _t(_edits(photo)["saturation"])])
    torch.testing.assert_close(edit_stats(two)[:1], edit_stats(one))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        edit_stats(one[:, :2])


def _clean_crops(photos: dict[str, Image.Image]) -> torch.Tensor:
    """Crops of real photos, each also mirrored and a little darker / brighter: the clean range."""
    out = []
    for img in photos.values():
        img = img.resize((img.width // 2, img.height // 2), Image.LANCZOS)
        for v in (
            img,
            img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            ImageEnhance.Brightness(img).enhance(0.9),
        ):
            x = _t(v)
            h, w = x.shape[-2:]
            out += [x[..., i : i + 96, j : j + 96] for i in (0, (h - 96) // 2, h - 96) for j in (0, w - 96)]
    return torch.cat(out)


def _guard(photos: dict[str, Image.Image], lam: float = 0.5) -> EditGuard:
    clean = _clean_crops(photos)
    return fit_edit_guard(edit_stats(clean), hue_histogram(clean), 96 * 96, lam)


def test_the_guard_is_shut_on_the_clean_range_and_penalises_strong_edits_beyond_it(photos, photo):
    guard = _guard(photos)
    clean = _clean_crops(photos)
    pen = guard(clean)
    assert (
        float((pen == 0).double().mean()) >= 0.85
    )  # a quantile 0.99 per statistic: shut on most clean crops
    x = _t(photo)
    crop = x[..., :96, :96]
    for kind in ("saturation", "contrast", "exposure", "sharpen"):
        edit = _t(_edits(photo)[kind])[..., :96, :96]
        assert float(guard(edit)) > float(guard(crop)), kind
    # exactly lam * the summed excess in clean standard deviations
    stats = guard.statistics(clean)
    want = lam_excess = 0.5 * ((stats - guard.threshold) / guard.scale).clamp(min=0).sum(1)
    torch.testing.assert_close(pen, want)
    assert lam_excess.max() > 0


def test_a_hue_rotation_makes_hues_unusual_for_photos(photos, photo):
    guard = _guard(photos)
    arr = np.asarray(photo.convert("HSV")).copy()
    arr[..., 0] = (arr[..., 0].astype(int) + round(40 / 360 * 256)) % 256
    rotated = Image.fromarray(arr, "HSV").convert("RGB")
    col = list(guard.names).index("hue_nll")
    before = guard.statistics(_t(photo))[0, col]
    after = guard.statistics(_t(rotated))[0, col]
    assert after > before + 0.3


def _model_with_guard(photos: dict[str, Image.Image]) -> AttiqaModel:
    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny"), head_hidden=8, mos_hidden=8).eval()
    model.set_mos_range(0.0, 100.0)
    model.attach_edit_guard(_guard(photos))
    return model


def test_the_model_subtracts_the_penalty_from_its_mos_and_round_trips_through_save_and_load(
    photos, photo, tmp_path
):
    model = _model_with_guard(photos)
    guard = model.edit_guard
    assert guard is not None
    mean = torch.tensor(model.backbone.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.backbone.std).view(1, 3, 1, 1)
    rgb = torch.cat([_t(photo.resize((64, 64))), _t(_edits(photo)["saturation"].resize((64, 64)))])
    x = (rgb - mean) / std
    with torch.no_grad():
        guarded = model(x).mos
        model.edit_guard = None
        plain = model(x).mos
        model.edit_guard = guard
        torch.testing.assert_close(guarded, plain - guard(rgb), atol=1e-5, rtol=0)
    path = save_model(model, tmp_path / "m.safetensors", {"stage": "test"})
    back, card = load_model(path)
    assert card["model"]["edit_guard"] == {"lambda": 0.5, "version": 1, "names": list(GUARD_NAMES)}
    with torch.no_grad():
        torch.testing.assert_close(back(x).mos, guarded, atol=1e-6, rtol=0)
    model.edit_guard = None
    assert "edit_guard" not in model.card_config()  # a model without it: the card as before it existed


@pytest.mark.parametrize("change, why", [
    (lambda c, t: c["model"]["edit_guard"].update({"lambda": -1}), "lambda must be a finite number > 0"),
    (lambda c, t: c["model"]["edit_guard"].update({"version": 99}), r"\(version 99\) are not this attiqa.s"),
    (lambda c, t: t.pop("edit_guard.threshold"), "edit_guard.threshold"),
    (lambda c, t: c["model"]["edit_guard"].update({"names": ["clip_hi", "glow"]}), "statistics .* are not"),
    (lambda c, t: c["model"].update({"edit_guard": "yes"}), "edit_guard must be a table"),
])  # fmt: skip
def test_a_malformed_edit_guard_is_refused_in_one_line(photos, tmp_path, change, why):
    from safetensors.torch import load_file, save_file

    path = save_model(_model_with_guard(photos), tmp_path / "m.safetensors", {"stage": "test"})
    tensors = load_file(str(path))
    card = json.loads(path.with_suffix(".json").read_text())
    change(card, tensors)
    save_file(tensors, str(path), metadata={"attiqa_card": json.dumps(card)})
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match=why) as err:
        load_model(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_attiqa_train_guard_fits_a_guard_onto_a_checkpoint_that_then_scores_edits_lower(photos, tmp_path):
    """End to end on real photos: a table of originals and their edits (file names end in __KIND), the CLI,
    and the scorer: every edit of a kind the guard was fitted on loses MOS against the unguarded model,
    the originals lose (almost) nothing."""
    pics = tmp_path / "pics"
    pics.mkdir()
    rows = []
    for name, img in photos.items():
        img = img.resize((img.width // 2, img.height // 2), Image.LANCZOS)
        img.save(pics / f"{name}__original.png")
        for kind, edit in _edits(img).items():
            edit.save(pics / f"{name}__{kind}.png")
            rows.append({"better": f"pics/{name}__original.png", "worse": f"pics/{name}__{kind}.png"})
    table = tmp_path / "pairs.csv"
    with open(table, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["better", "worse"])
        w.writeheader()
        w.writerows(rows)
    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny"), head_hidden=8, mos_hidden=8).eval()
    model.set_mos_range(0.0, 100.0)
    model.input_sizes.update(test_resize_shorter=160, test_crop=128)
    card = {"stage": "finetune", "mos_range": [0.0, 100.0]}
    plain = save_model(model, tmp_path / "plain.safetensors", card)
    out = tmp_path / "out" / "guarded.safetensors"
    res = CliRunner().invoke(app, ["train", "guard", str(plain), "--pairs", str(table), "-o", str(out),
                                   "--lambda", "0.3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    card = json.loads(out.with_suffix(".json").read_text())
    info = card["edit_guard"]
    assert info["edited_images"] == 25 and info["clean_images"] == 5 and info["names"] == list(GUARD_NAMES)
    # the clean range of 25 crops: a quantile 0.99 leaves at most the top crop of each of the 9 statistics out
    assert info["penalised_clean_crops"] <= 9 / 25 and info["penalised_edited_crops"] > 0.6
    files = sorted(pics.glob("*.png"))
    a, b = load_scorer(str(plain)), load_scorer(str(out))
    drop = {f.stem: float(a([Image.open(f)])["mos"][0] - b([Image.open(f)])["mos"][0]) for f in files}
    by_kind: dict[str, list[float]] = {}
    for stem, d in drop.items():
        by_kind.setdefault(stem.split("__")[1], []).append(d)
    assert min(min(v) for v in by_kind.values()) >= 0  # a penalty only ever lowers the MOS
    for kind in ("sharpen", "saturation", "contrast", "exposure"):
        assert np.mean(by_kind[kind]) > max(1.0, 3 * np.mean(by_kind["original"])), (kind, by_kind)


def test_attiqa_train_guard_names_a_missing_table_in_one_line(tmp_path, photo):
    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny"), head_hidden=8, mos_hidden=8).eval()
    plain = save_model(model, tmp_path / "plain.safetensors", {"stage": "finetune"})
    res = CliRunner().invoke(app, ["train", "guard", str(plain), "--pairs", str(tmp_path / "nope.csv"),
                                   "-o", str(tmp_path / "g.safetensors"), "--lambda", "0.1"])  # fmt: skip
    assert res.exit_code != 0
    assert "nope.csv: pair table not found" in str(res.exception) + res.output
