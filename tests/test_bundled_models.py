"""Every model models.json bundles, the same checks: verified and small, a valid card whose ridge fits its
backbone, listed by the API and `attiqa models`, loads offline as fp32 from an fp16 file, and scores photos
deterministically on its own scale from the Python API and `attiqa score --model`. Checks particular to one
model (its training set, its documented behaviour) stay in that model's test file."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

import attiqa
from attiqa.cli.app import app as attiqa_app
from attiqa.demo import DEMO_PHOTOS, skimage_photo
from attiqa.io.checkpoints import load_checkpoint, read_card
from attiqa.io.hashes import sha256_of
from attiqa.models import create_backbone
from attiqa.models.attiqa_model import validate_model_card
from attiqa.scorers.zoo import named_models, resolve_weights

BUNDLED = sorted(name for name, row in named_models().items() if row.get("file"))
runner = CliRunner()
pytestmark = pytest.mark.skipif(not BUNDLED, reason="no bundled model in models.json")


def _score_range(name: str) -> tuple[float, float]:
    lo, hi = named_models()[name]["score_range"]
    return float(lo), float(hi)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_is_verified_small_and_validly_carded(name):
    path = resolve_weights(name)
    assert sha256_of(path) == named_models()[name]["sha256"]
    assert path.stat().st_size < 20 * 2**20
    tensors, card = load_checkpoint(path)
    assert read_card(path) == card
    cfg = validate_model_card(path, card, tensors)
    assert card["stage"] == "finetune"
    lo, hi = _score_range(name)
    assert lo <= cfg["mos_range"][0] < cfg["mos_range"][1] <= hi  # the MOS range lies on its stated scale
    ridge = cfg.get("ridge")
    if ridge:  # one value per statistic of the backbone's tap set
        backbone = create_backbone(cfg["backbone"], pretrained=False)
        assert ridge["dim"] == backbone.tap_view(ridge["taps"]).feature_dim
        assert bool((tensors["ridge.scale"] > 0).all())


def test_every_bundled_model_is_listed():
    listed = {info.name for info in attiqa.list_scorers()}
    r = runner.invoke(attiqa_app, ["models"])
    assert r.exit_code == 0, r.output
    for name in BUNDLED:
        assert name in listed
        assert name[:11] in r.output  # the narrow test terminal may elide the end


@pytest.mark.parametrize("name", BUNDLED)
def test_the_fp16_file_loads_as_fp32(name):
    """Weights are stored fp16 (half the size); the loaded model computes in fp32."""
    with safe_open(str(resolve_weights(name)), framework="pt") as fh:
        keys = list(fh.keys())  # noqa: SIM118 (a safetensors handle, not a dict)
        heads = [fh.get_tensor(k) for k in keys if k.startswith("heads.") and k.endswith(".weight")]
    assert heads and all(t.dtype == torch.float16 for t in heads)
    scorer = attiqa.load_scorer(name)
    floats = [t for t in scorer.model.state_dict().values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float32 for t in floats)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_scores_photos_deterministically_on_its_scale(tmp_path, name):
    scorer = attiqa.load_scorer(name)
    photos = [skimage_photo(n) for n in DEMO_PHOTOS[:5]]
    out = scorer(photos)
    assert set(out) == {"mos", *attiqa.ATTRIBUTES}
    lo, hi = _score_range(name)
    margin = 0.2 * (hi - lo)  # a photo may score a little past the training MOS range, not far
    assert np.all(np.isfinite(out["mos"])) and np.all((out["mos"] > lo - margin) & (out["mos"] < hi + margin))
    for a in attiqa.ATTRIBUTES:
        assert np.all((out[a] >= 0) & (out[a] <= 1)), a
    again = scorer(photos)
    for k in out:
        np.testing.assert_array_equal(out[k], again[k])
    files = []
    for i, img in enumerate(photos[:3]):
        files.append(tmp_path / f"p{i}.png")
        img.save(files[-1])
    args = ["score", *map(str, files), "--model", name, "--out", str(tmp_path / "s.csv")]
    r = runner.invoke(attiqa_app, args)
    assert r.exit_code == 0, r.output
    with open(tmp_path / "s.csv", newline="") as fh:
        cli = {row["image"]: float(row["mos"]) for row in csv.DictReader(fh)}
    np.testing.assert_allclose([cli[str(f)] for f in files], out["mos"][:3], atol=1e-3)
