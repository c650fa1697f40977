"""A run config's ``epochs`` / ``batch_size`` bounded before they size anything (attiqa.limits says why)."""

from __future__ import annotations

import pytest
from helpers import tiny_train_config

from attiqa.config import load_config
from attiqa.errors import ConfigError
from attiqa.limits import MAX_BATCH, MAX_EPOCHS

PRETRAIN = "pretrain={epochs: 1, batch_size: 4, resize_shorter: 40, crop_size: 32, num_workers: 0}"


@pytest.mark.parametrize(
    "override",
    [
        "finetune.epochs=1000000000000",
        "finetune.batch_size=1000000000",
        "pretrain.epochs=1000000000",
        "pretrain.batch_size=1000000000000",
        "label.batch_size=1000000000",
        "finetune.polish_epochs=1000000000",
    ],
)
def test_huge_epochs_and_batches_are_refused_with_the_bound(tmp_path, override):
    """**Was**: `--set finetune.epochs=1000000000000` trained on (a run that never finishes, its schedule
    sized by it), `finetune.batch_size=1000000000` was taken as a batch size. Now one line naming the key,
    the bound and why."""
    cfg = tiny_train_config(tmp_path)
    key, _, value = override.partition("=")
    extra = [PRETRAIN, "label={images: [x], teacher: classical}"] if not key.startswith("finetune") else []
    with pytest.raises(ConfigError) as err:
        load_config(cfg, [*extra, override])
    bound = MAX_BATCH if "batch" in key else MAX_EPOCHS
    assert f"{key}: must be <= {bound} (" in str(err.value), err.value
    assert f"got {value}" in str(err.value)


def test_the_bounds_themselves_are_taken(tmp_path):
    """At the bound a config is read as written (the paper's 100 epochs and 256 / 16 batches far below)."""
    cfg = load_config(
        tiny_train_config(tmp_path), [f"finetune.epochs={MAX_EPOCHS}", f"finetune.batch_size={MAX_BATCH}"]
    )
    assert cfg.finetune is not None
    assert (cfg.finetune.epochs, cfg.finetune.batch_size) == (MAX_EPOCHS, MAX_BATCH)
