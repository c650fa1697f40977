"""The shipped AGIQA-3k model `attiqa-agiqa3k`: listed, verified, small, loads offline by name, scores images
on AGIQA-3k's 0-5 scale from the Python API, `attiqa score` and `genbench score` (no /work/shared needed)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from genbench_helpers import make_photo_run
from safetensors import safe_open
from typer.testing import CliRunner

import attiqa
from attiqa.cli.app import app as attiqa_app
from attiqa.demo import DEMO_PHOTOS, skimage_photo
from attiqa.io.checkpoints import read_card, sha256_of
from attiqa.models import create_backbone
from attiqa.scorers.zoo import named_models, resolve_weights
from genbench.cli import app as genbench_app

NAME = "attiqa-agiqa3k"
pytestmark = pytest.mark.skipif(NAME not in named_models(), reason=f"no {NAME} in models.json")
runner = CliRunner()


def test_named_model_is_listed_small_verified_and_carded():
    entry = named_models()[NAME]
    path = resolve_weights(NAME)
    assert sha256_of(path) == entry["sha256"]
    assert path.stat().st_size < 20 * 2**20
    card = read_card(path)
    assert card["stage"] == "finetune" and card["dataset"]["n_train"] == 1491  # all 150 agiqa3k-dev prompts
    lo, hi = card["model"]["mos_range"]
    assert 0.0 <= lo < hi <= 5.0  # AGIQA-3k's quality MOS scale
    assert NAME in {info.name for info in attiqa.list_scorers()}
    r = runner.invoke(attiqa_app, ["models"])
    assert r.exit_code == 0 and NAME[:11] in r.output  # the narrow test terminal may elide the end


def test_the_fp16_file_keeps_the_ridge_statistics_exact():
    """fp16 flushed a ridge spread of 1.5e-8 to 0 and rounded the centres enough to shift every MOS by a
    constant 7.9 (caught by experiments/agiqa3k/check_export.py): the export keeps statistics fp32."""
    with safe_open(str(resolve_weights(NAME)), framework="pt") as fh:
        ridge = {k: fh.get_tensor(k) for k in ("ridge.center", "ridge.scale", "ridge.coef")}
        assert fh.get_tensor("heads.contrast.fc1.weight").dtype == torch.float16  # the bulk stays small
    assert all(t.dtype == torch.float32 for t in ridge.values())
    # one value per depthwise statistic of the card's backbone (Lite1 since session 24: 24,576)
    backbone = create_backbone(read_card(resolve_weights(NAME))["model"]["backbone"], pretrained=False)
    assert ridge["ridge.scale"].numel() == backbone.tap_view("depthwise").feature_dim
    assert bool((ridge["ridge.scale"] > 0).all())


def test_scores_photos_by_name_deterministically_on_the_agiqa_scale(tmp_path):
    scorer = attiqa.load_scorer(NAME)
    photos = [skimage_photo(n) for n in DEMO_PHOTOS[:3]]
    out = scorer(photos)
    assert np.all(np.isfinite(out["mos"])) and np.all((out["mos"] > -1) & (out["mos"] < 6))
    np.testing.assert_array_equal(out["mos"], scorer(photos)["mos"])
    files = []
    for i, img in enumerate(photos):
        files.append(tmp_path / f"p{i}.png")
        img.save(files[-1])
    args = ["score", *map(str, files), "--model", NAME, "--out", str(tmp_path / "s.csv")]
    r = runner.invoke(attiqa_app, args)
    assert r.exit_code == 0, r.output
    with open(tmp_path / "s.csv", newline="") as fh:
        cli = {row["image"]: float(row["mos"]) for row in csv.DictReader(fh)}
    np.testing.assert_allclose([cli[str(f)] for f in files], out["mos"], atol=1e-3)


def test_genbench_scores_a_run_with_it(tmp_path, photos):
    run = make_photo_run(tmp_path / "run", dict(list(photos.items())[:2]))
    r = runner.invoke(genbench_app, ["score", str(run), "-m", NAME, "--workers", "0"])
    assert r.exit_code == 0, r.output
    with open(run / "scores" / f"{NAME}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and all(np.isfinite(float(row["mos"])) for row in rows)
