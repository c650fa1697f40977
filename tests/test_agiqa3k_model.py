"""The shipped AGIQA-3k model `attiqa-agiqa3k`, what is particular to it: trained on every agiqa3k-dev
prompt, ridge statistics kept exact in its fp16 file, `genbench score` scores a run with it. The checks every
bundled model passes (verified, small, listed, scores on its scale from the API and `attiqa score`) are in
tests/test_bundled_models.py."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from genbench_helpers import make_photo_run
from safetensors import safe_open
from typer.testing import CliRunner

from attiqa.io.checkpoints import read_card
from attiqa.scorers.zoo import named_models, resolve_weights
from genbench.cli import app as genbench_app

NAME = "attiqa-agiqa3k"
pytestmark = pytest.mark.skipif(NAME not in named_models(), reason=f"no {NAME} in models.json")
runner = CliRunner()


def test_trained_on_every_agiqa3k_dev_prompt():
    card = read_card(resolve_weights(NAME))
    assert card["dataset"]["n_train"] == 1491  # all 150 agiqa3k-dev prompts


def test_the_fp16_file_keeps_the_ridge_statistics_exact():
    """fp16 flushed a ridge spread of 1.5e-8 to 0 and rounded the centres enough to shift every MOS by a
    constant 7.9 (caught by experiments/agiqa3k/check_export.py): the export keeps statistics fp32."""
    with safe_open(str(resolve_weights(NAME)), framework="pt") as fh:
        ridge = {k: fh.get_tensor(k) for k in ("ridge.center", "ridge.scale", "ridge.coef")}
    assert all(t.dtype == torch.float32 for t in ridge.values())


def test_genbench_scores_a_run_with_it(tmp_path, photos):
    run = make_photo_run(tmp_path / "run", dict(list(photos.items())[:2]))
    r = runner.invoke(genbench_app, ["score", str(run), "-m", NAME, "--workers", "0"])
    assert r.exit_code == 0, r.output
    with open(run / "scores" / f"{NAME}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and all(np.isfinite(float(row["mos"])) for row in rows)
