"""Session 51's second round of `attiqa train` items (docs/robustness.md): a file standing in for a stage
without the stage that reads it, `train exiqa --prompts` beyond its bound, a moved images folder said on a
resumed pretraining, eval naming the rows it leaves out, and the label rows' order with a degrade stage.
The network is the tiny random one; each test of a fix failed before it."""

from __future__ import annotations

import pytest
from helpers import tiny_train_config


@pytest.mark.parametrize(("key", "reader"), [("labels", "pretrain"), ("pretrained_checkpoint", "finetune")])
def test_a_file_standing_in_for_a_stage_without_its_reader_is_refused(tmp_path, cli, key, reader):
    """`labels: mine.parquet` without a `pretrain:` section (or `pretrained_checkpoint:` without a
    `finetune:` one) **was** never read without a word: the run did its other stages and exited 0; now one
    line naming the key and the fix, before anything is written."""
    from helpers import label_table

    cfg = tiny_train_config(tmp_path)
    given = label_table(tmp_path / "mine.parquet") if key == "labels" else tmp_path / "set" / "mos.csv"
    label = f"label={{images: [{tmp_path / 'set' / 'images'}]}}"
    drop = ["--set", "finetune=null", "--set", label] if reader == "finetune" else []
    res = cli("train", "--config", cfg, "--set", f"{key}={given}", *drop)
    assert res.returncode == 2, res.stdout + res.stderr
    line = res.stderr.strip()
    assert line.startswith(
        f"error: {cfg}: {key}: {given} would not be read — it is "
        + ("the label table pretraining reads" if key == "labels" else "the network fine-tuning starts from")
        + f", and the run has no {reader}: section; add one, or drop {key} (--set {key}=null)"
    ), line
    assert len(line.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_train_exiqa_refuses_more_prompts_than_its_bound_before_clip_loads(tmp_path, cli, exiqa_set):
    """`attiqa train exiqa DATA -o RUN --prompts 100000` **was** taken: CLIP loaded, then a prompt tensor and
    an attention of (197 + 100000)^2 values a head a photo were allocated (out of memory, or hours a step);
    now one line naming the bound, before CLIP loads (a CLIP folder that is not there is not reached) and
    before RUN is made. The bound itself still trains (held by the warmup test's 2 prompts below it)."""
    from attiqa.limits import MAX_PROMPTS

    data, _ = exiqa_set
    run = tmp_path / "run"
    no_clip = tmp_path / "no_clip"
    res = cli("train", "exiqa", data, "-o", run, "--clip", no_clip, "--prompts", MAX_PROMPTS + 1)
    assert res.returncode == 2, res.stdout + res.stderr
    line = res.stderr.strip()
    assert line.startswith(f"error: --prompts {MAX_PROMPTS + 1} is more than {MAX_PROMPTS}: the attention")
    assert line.endswith(f"give at most {MAX_PROMPTS} (the paper: 15 to 100)") and len(line.splitlines()) == 1
    assert not run.exists()
    res = cli("train", "exiqa", data, "-o", run, "--clip", no_clip, "--prompts", MAX_PROMPTS)
    assert res.returncode == 2 and "no_clip" in res.stderr and "--prompts" not in res.stderr  # CLIP's turn


def test_a_resumed_pretraining_says_its_images_folder_moved(tmp_path, cli):
    """`label.images` moved elsewhere (same files), the config pointed there, `attiqa train --resume`: the
    pretraining resumed (ok) **without** the "the dataset moved: OLD -> NEW, same rows" line a resumed
    fine-tuning prints; now it says it alike, naming the folders."""
    import shutil

    from helpers import LABEL_AND_PRETRAIN

    cfg = tiny_train_config(tmp_path)
    images, new = tmp_path / "set" / "images", tmp_path / "new" / "photos"

    def train(folder, *more):
        return cli("train", "--config", cfg, *LABEL_AND_PRETRAIN, "--set", f"label.images=[{folder}]", *more)

    assert train(images).returncode == 0
    shutil.copytree(images, new)
    shutil.rmtree(images)
    res = train(new, "--resume", "--set", "pretrain.epochs=2")
    assert res.returncode == 0, res.stderr
    said = " ".join((res.stdout + res.stderr).split())
    assert f"pretrain: the dataset moved: {images} -> {new}, same rows" in said, said
    res = train(new, "--resume", "--set", "pretrain.epochs=3")  # not moved since: no such line
    assert res.returncode == 0 and "moved" not in res.stdout + res.stderr
