"""The command-line ``--epochs`` of training commands bounded as a run config's (``limits.MAX_EPOCHS``)."""

from __future__ import annotations

import pytest
from helpers import one_line_error, tiny_train_config

from attiqa.limits import MAX_EPOCHS


def test_bench_epochs_past_the_bound_names_the_option(cli, tmp_path):
    """**Was**: `attiqa bench … --epochs 1000000` told "finetune.epochs: must be <= 100000 …", a key its
    config file does not hold (the user typed --epochs). Now the option is named, before any dataset is
    read."""
    cfg = tiny_train_config(tmp_path)
    line = one_line_error(
        cli(
            "bench",
            "single",
            "-d",
            f"folder={tmp_path / 'set'}",
            "-c",
            cfg,
            "-o",
            tmp_path / "b",
            "--epochs",
            str(MAX_EPOCHS + 1),
        )  # fmt: skip
    )
    assert "'--epochs'" in line and f"less than or equal to {MAX_EPOCHS}" in line, line
    assert "finetune.epochs" not in line and not (tmp_path / "b").exists(), line


@pytest.mark.parametrize("regressor", [False, True], ids=["exiqa", "exiqa-regressor"])
def test_exiqa_epochs_past_the_bound_are_refused(cli, tmp_path, regressor):
    """**Was**: `attiqa train exiqa DATA -o OUT --epochs 1000000000000` (a real make-distorted set; and
    `exiqa-regressor OUT --mos mos.csv`) taken: a run that never ends, its cosine schedule sized by it (here,
    offline, the CLIP model's line came instead). Now refused as a run config's epochs are."""
    tiny_train_config(tmp_path)
    data = tmp_path / "data"
    assert cli("make-distorted", tmp_path / "set" / "images", "-o", data, "--rounds", "1").returncode == 0
    out = tmp_path / "out"
    args = (
        ["exiqa-regressor", out, "--mos", tmp_path / "set" / "mos.csv"]
        if regressor
        else ["exiqa", data, "-o", out]
    )
    line = one_line_error(cli("train", *args, "--epochs", "1000000000000"))
    assert "'--epochs'" in line and f"less than or equal to {MAX_EPOCHS}" in line, line
    assert not out.exists()
