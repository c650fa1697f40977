"""Session 51: `attiqa export`, `models`, `bench`, `demo`, `degrade` / `make-distorted` run as a user would,
with hostile and edge inputs (docs/robustness.md, rows marked session 51)."""

from __future__ import annotations

import torch
from helpers import tiny_attiqa_checkpoint
from safetensors.torch import save_file

import attiqa
from attiqa.io.checkpoints import load_checkpoint, save_checkpoint


def test_export_refuses_a_safetensors_file_that_is_not_an_attiqa_model(tmp_path, cli):
    """**Was**: `attiqa export other.safetensors m.safetensors` of a safetensors file without an ATTIQA card
    (another program's weights), or of one whose card does not describe its tensors, wrote the copy and
    printed its SHA-256 as a model's; `attiqa score -m` of the copy then refused it. Now one line, nothing
    written."""
    foreign = tmp_path / "foreign.safetensors"
    save_file({"layer.weight": torch.ones(4, 4)}, str(foreign))
    tensors, card = load_checkpoint(tiny_attiqa_checkpoint(tmp_path))
    del tensors["heads.sharpness.fc1.weight"]
    cut = save_checkpoint(tmp_path / "cut.safetensors", tensors, card)
    for src, why in (
        (foreign, "checkpoint has no ATTIQA model card"),
        (cut, "tensor heads.sharpness.fc1.weight is missing"),
    ):
        dst = tmp_path / f"copy_{src.stem}.safetensors"
        res = cli("export", src, dst)
        assert res.returncode == 2, res.stdout
        assert res.stderr.startswith(f"error: {src}: ") and why in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not dst.exists() and not dst.with_suffix(".json").exists()
    good = tmp_path / "copy.safetensors"
    assert cli("export", tmp_path / "tiny.safetensors", good).returncode == 0
    assert attiqa.load_scorer(good).columns[0] == "mos"  # a model is still exported
