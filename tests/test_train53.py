"""Session 53's audit of `attiqa train`, `attiqa bench` and `attiqa eval folder` as a user runs them."""

from __future__ import annotations

from helpers import LABEL_AND_PRETRAIN, tiny_train_config

from attiqa.io.checkpoints import training_state_extra


def test_a_moved_folder_of_files_given_one_by_one_is_named_once(tmp_path, cli):
    """`label.images` as the folder's files one by one, the folder moved, `train --resume` with the files at
    the new place: **was** "pretrain: the dataset moved: OLD/img00.png -> NEW/img00.png, … (every file)"
    and the record held every path again beside the folder holding them (two records of one place); now
    one record of where the rows are — the folders given (a file: its folder) — and "OLD -> NEW" once."""
    cfg = tiny_train_config(tmp_path)
    images, new = tmp_path / "set" / "images", tmp_path / "new" / "photos"

    def train(folder, *more):
        files = ",".join(str(p) for p in sorted(folder.glob("*.png")))
        return cli("train", "--config", cfg, *LABEL_AND_PRETRAIN, "--set", f"label.images=[{files}]", *more)

    assert train(images).returncode == 0
    new.parent.mkdir()
    images.rename(new)
    res = train(new, "--resume", "--set", "pretrain.epochs=2")
    assert res.returncode == 0, res.stderr
    said = " ".join((res.stdout + res.stderr).split())
    assert f"pretrain: the dataset moved: {images} -> {new}, same rows" in said, said
    assert "img00.png" not in said
    record = training_state_extra(tmp_path / "run" / "pretrain" / "last.state.safetensors")["config"]["data"]
    assert record["roots"] == [str(new)] and "root" not in record
