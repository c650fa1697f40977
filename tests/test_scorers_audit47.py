"""Session 47: the scorers and the model registry — one resolver for "a checkpoint, else a named model's
file", one meaning of a score range, the views entry point, and a new user's pass over `attiqa models`,
`attiqa demo`, `attiqa score` on odd files and the ExIQA / TeMu-IQA scorers. Real scorers (the shipped
models, `classical`, tiny random-weight networks for the machinery) on real photos; each test failed
before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tiny_attiqa_checkpoint
from typer.testing import CliRunner

from attiqa.cli.app import app
from attiqa.errors import AttiqaError

runner = CliRunner()


def _run_folder(root: Path) -> Path:
    """A run folder of `attiqa train` holding a (tiny, random-weight) RUN/finetune/last.safetensors."""
    stage = root / "finetune"
    stage.mkdir(parents=True)
    ckpt = tiny_attiqa_checkpoint(stage)
    ckpt.rename(stage / "last.safetensors")
    ckpt.with_suffix(".json").rename(stage / "last.json")
    return root


def test_export_and_bench_init_resolve_a_checkpoint_or_a_named_model_alike(tmp_path):
    """**Was**: two resolvers of "a checkpoint path, else a named model's file" — `attiqa export RUN out`
    (a run folder, as `--model RUN` takes) was "RUN: not a readable safetensors checkpoint (No such device
    …)", and `attiqa bench --init RUN` "RUN: initial checkpoint not found". Now both are
    `attiqa.scorers.zoo.checkpoint_file`: a file, a run folder's checkpoint, or a named model's file."""
    from attiqa.protocols import init_path
    from attiqa.scorers.zoo import checkpoint_file, resolve_weights

    run = _run_folder(tmp_path / "run")
    ckpt = run / "finetune" / "last.safetensors"
    assert checkpoint_file(run) == ckpt == init_path(str(run)) == checkpoint_file(ckpt)
    assert (
        checkpoint_file("attiqa-default") == resolve_weights("attiqa-default") == init_path("attiqa-default")
    )
    res = runner.invoke(app, ["export", str(run), str(tmp_path / "out.safetensors")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out.safetensors").is_file()
    for bad in (tmp_path / "missing.safetensors", tmp_path / "empty_run"):
        if bad.suffix != ".safetensors":
            bad.mkdir()
        with pytest.raises(AttiqaError, match="pass a .safetensors file of `attiqa train`|holds no ATTIQA"):
            init_path(str(bad))
    with pytest.raises(AttiqaError, match="unknown model name 'attiqa-defualt' \\(did you mean"):
        checkpoint_file("attiqa-defualt")
    assert init_path(None) is None
