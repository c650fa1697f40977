"""`attiqa train` stopped while degrading says the graded copies are kept (the documented commands as a
newcomer types them)."""

from __future__ import annotations

from pathlib import Path

from attiqa.config import load_config
from attiqa.runner import interrupted_words


def test_train_stopped_while_degrading_says_the_graded_copies_are_kept(tmp_path: Path) -> None:
    """`attiqa train --config configs/default_model.yaml` stopped by Ctrl-C in its first minute (its
    `degrade:` stage, "degrading: 101/1004"). **Was**: "interrupted before an epoch finished (the images
    labelled so far are kept)" — nothing had been labelled; the graded copies are what is kept."""
    (tmp_path / "photos").mkdir()
    yaml = tmp_path / "run.yaml"
    yaml.write_text(
        f"out_dir: {tmp_path / 'run'}\n"
        f"degrade:\n  sources: [{tmp_path / 'photos'}]\n"
        f"label:\n  images: [{tmp_path / 'photos'}]\n  teacher: classical\n",
        encoding="utf-8",
    )
    said = interrupted_words(load_config(yaml))
    assert said == (
        "interrupted before an epoch finished (the graded copies and labels made so far are kept); "
        "rerun the same command to continue"
    )
    label_only = interrupted_words(load_config(yaml, ["degrade=null"]))
    assert label_only == (
        "interrupted before an epoch finished (the labels made so far are kept); "
        "rerun the same command to continue"
    )
