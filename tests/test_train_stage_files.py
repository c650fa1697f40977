"""`attiqa train` items (docs/robustness.md): a file standing in for a stage without the stage that reads it,
`train exiqa --prompts` beyond its bound, a moved images folder said on a resumed pretraining, eval naming the
rows it leaves out, and the label rows' order with a degrade stage. The network is the tiny random one; each
test of a fix failed before it."""

from __future__ import annotations

import pytest
import torch
from helpers import LABEL_AND_PRETRAIN, tiny_train_config


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


def test_eval_names_the_score_file_and_the_rows_it_leaves_out(tmp_path, cli, photos):
    """`attiqa eval folder --root SET --csv mos.csv` with empty / NaN MOS cells **was** "2 row(s) without a
    finite mos (empty, NaN or inf) left out": neither the file nor the rows, where `attiqa train`'s
    `finetune.csv` names both; now "SET/mos.csv: 2 row(s) … left out (row 3, 5)" (lines of the file, the
    header line 1, as training counts them), in the printed warning and summary.json."""
    import json

    root = tmp_path / "set"
    root.mkdir()
    lines = ["image,mos"]
    for i, (name, img) in enumerate(photos.items()):
        img.resize((img.width // 4, img.height // 4)).save(root / f"{name}.jpg")
        lines.append(f"{name}.jpg,{'' if i == 1 else 'nan' if i == 3 else 30 + 10 * i}")
    (root / "mos.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "ev"
    res = cli("eval", "folder", "--root", root, "--csv", root / "mos.csv", "-m", "classical", "-o", out, "-q")
    assert res.returncode == 0, res.stderr
    said = f"{root / 'mos.csv'}: 2 row(s) without a finite mos (empty, NaN or inf) left out (row 3, 5)"
    assert said in " ".join((res.stdout + res.stderr).split())
    assert said in json.loads((out / "summary.json").read_text())["warnings"]


def test_a_named_datasets_rows_left_out_are_named_by_their_images(tmp_path, layout):
    """An official score file read without line numbers (KonIQ-10k's, an empty MOS cell in both of its
    files): the row is named by its image under the root, after the dataset and root `bench` and `train`
    name (was a count alone, in `eval` without the dataset either)."""
    import csv

    from attiqa.datasets import get_dataset

    root = layout(tmp_path, "koniq10k")
    for file in ("koniq10k_distributions_sets.csv", "koniq10k_scores_and_distributions.csv"):
        with open(root / file, newline="") as fh:
            rows = list(csv.reader(fh))
        rows[2][7] = ""  # MOS
        if file.endswith("distributions.csv"):
            rows[2][9] = ""  # MOS_zscore
        with open(root / file, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    ds = get_dataset("koniq10k", root)
    assert len(ds.items) == 5
    assert ds.rows_left_out() == (
        f"koniq10k ({root}): 1 row(s) without a finite mos (empty, NaN or inf) left out "
        f"(e.g. 1024x768/{rows[2][0]})"
    )


def test_a_degrade_run_trains_alike_wherever_its_run_folder_is(tmp_path, cli):
    """The same config with a degrade stage run in two run folders, one sorting before the source photos'
    folder and one after: the label table's rows follow their absolute paths, so the graded set came before
    the sources in one and after them in the other, and the pretrained weights **were** not the same. Now
    pretraining takes the rows under `label.images` in order (the sources, then the graded set), by their
    names there: the same weights bit for bit. A run an earlier version started (its resume record without
    the order) resumes in the table's order it began with, instead of being refused as other data."""
    from helpers import LABEL_AND_PRETRAIN
    from safetensors.torch import load_file

    from attiqa.io.checkpoints import load_training_state, save_training_state
    from attiqa.training.data import PseudoLabelDataset
    from attiqa.training.trainer import state_path_for

    cfg = tiny_train_config(tmp_path)
    images = tmp_path / "set" / "images"  # between the two run folders: tmp/a/... < tmp/set/... < tmp/z/...
    stages = [*LABEL_AND_PRETRAIN, "--set", f"label.images=[{images}]", "--set",
              f"degrade={{sources: [{images}], distortions: [gaussian_blur], levels: [3]}}"]  # fmt: skip
    weights = []
    for where in ("a", "z"):
        res = cli("train", "--config", cfg, *stages, "--out-dir", tmp_path / where / "run")
        assert res.returncode == 0, res.stderr
        weights.append(load_file(str(tmp_path / where / "run" / "pretrain" / "model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])

    run = tmp_path / "a" / "run"  # as an earlier version left it (graded first): the table's order
    state = state_path_for(run / "pretrain" / "last.safetensors")
    opt, extra, model_state = load_training_state(state, with_model=True)
    assert extra["config"]["data"]["order"] == "label.images"
    extra["config"]["data"] = dict(PseudoLabelDataset(run / "labels.parquet", lambda im: None).fingerprint())
    save_training_state(state, opt, extra, model_state=model_state)
    more = ["--out-dir", run, "--resume", "--set", "pretrain.epochs=2"]
    res = cli("train", "--config", cfg, *stages, *more)
    assert res.returncode == 0, res.stderr
    assert "order" not in load_training_state(state)[1]["config"]["data"]  # went on in the table's order


def test_a_label_stage_without_pretraining_is_skipped_with_a_line(tmp_path, cli):
    """`attiqa train -c configs/paper_resnet50.yaml --set pretrain=null` (a fine-tuning from the ImageNet
    backbone) **was** run with its label stage first: every image of `label.images` labelled by CLIP (the
    paper's ImageNet: days), and a degrade stage's copies made, for a table nothing reads — only pretraining
    does. Now both stages are skipped, in one line that says how to label only."""
    cfg = tiny_train_config(tmp_path)  # fine-tuning only
    images = tmp_path / "set" / "images"
    label = f"label={{teacher: classical, num_workers: 0, images: [{images}]}}"
    degrade = f"degrade={{sources: [{images / 'img00.png'}], distortions: [contrast], levels: [1]}}"
    res = cli("train", "--config", cfg, "--set", label, "--set", degrade)
    assert res.returncode == 0, res.stderr
    run = tmp_path / "run"
    assert not (run / "labels.parquet").exists() and not (run / "graded").exists(), sorted(run.iterdir())
    assert (run / "finetune" / "last.safetensors").is_file()
    assert (
        "degrade, label: skipped — their labels are read by pretraining only, and the run has no pretrain: "
        "section (to make the labels alone: --set finetune=null)"
    ) in " ".join(res.stderr.split()), res.stderr


def test_a_ctrl_c_of_a_run_that_skipped_its_label_stage_does_not_say_labels_are_kept(
    tmp_path, cli, monkeypatch
):
    """A fine-tuning without pretraining skips its label and degrade stages, but a Ctrl-C in it **was** told
    "interrupted before an epoch finished (the graded copies and labels made so far are kept)": `attiqa
    train` handed the words the config before the stages were dropped. Now the same config as the run."""
    import attiqa.training.finetune

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(attiqa.training.finetune, "finetune", stopped)
    cfg = tiny_train_config(tmp_path)
    images = tmp_path / "set" / "images"
    label = f"label={{teacher: classical, num_workers: 0, images: [{images}]}}"
    degrade = f"degrade={{sources: [{images / 'img00.png'}], distortions: [contrast], levels: [1]}}"
    res = cli("train", "--config", cfg, "--set", label, "--set", degrade)
    said = " ".join(res.stderr.split())
    assert res.returncode == 130, res.stderr
    assert "interrupted before an epoch finished; rerun the same command to continue" in said, said
    assert said.count("skipped —") == 1, said


def test_a_train_degrade_stage_leaves_out_a_graded_set_below_its_sources(tmp_path, cli):
    """`degrade.sources: [photos]` where photos/degraded holds an earlier `attiqa degrade photos -o
    photos/degraded`: the stage **was** given the graded set's images as photos (6 sources for 2 photos:
    `img00_1.png`, `img00_contrast_1__contrast_1.png`, all labelled and pretrained on), while `attiqa degrade`
    left them out. Now the same rule and line (`attiqa.distortions.graded.without_graded_sets`)."""
    tiny_train_config(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        (photos / f"img{i:02d}.png").write_bytes(
            (tmp_path / "set" / "images" / f"img{i:02d}.png").read_bytes()
        )
    res = cli("degrade", photos, "-o", photos / "degraded", "--levels", "1", "--distortions", "contrast")
    assert res.returncode == 0, res.stderr
    degrade = f"degrade={{sources: [{photos}], distortions: [contrast], levels: [1]}}"
    stages = [*LABEL_AND_PRETRAIN, "--set", degrade]
    res = cli("train", "--config", tmp_path / "run.yaml", *stages)
    assert res.returncode == 0, res.stderr
    graded = sorted(p.name for p in (tmp_path / "run" / "graded").glob("*.png"))
    assert graded == ["img00.png", "img00__contrast_1.png", "img01.png", "img01__contrast_1.png"], graded
    assert "left out 4 image(s) of the graded set" in " ".join(res.stderr.split()), res.stderr
    # a resume's check of the stage takes its sources alike (the set's images are no sources "added")
    res = cli("train", "--config", tmp_path / "run.yaml", "--resume", *stages, "--set", "pretrain.epochs=2")
    assert res.returncode == 0, res.stderr


def test_the_inputs_of_a_skipped_label_stage_are_not_required(tmp_path):
    """`attiqa train -c configs/paper_resnet50.yaml --set pretrain=null` skips its label stage, but **was**
    refused when the config was read: "label.images: data/imagenet/train not found" — the ImageNet folder of
    a stage it does not run (likewise a degrade stage's sources). A label-only run still needs them."""
    from attiqa.config import load_config
    from attiqa.errors import ConfigError

    cfg = tiny_train_config(tmp_path)
    gone = tmp_path / "imagenet" / "train"
    stages = [f"label={{teacher: clip, images: [{gone}]}}", f"degrade={{sources: [{gone}], out: ''}}"]
    loaded = load_config(cfg, stages)
    assert loaded.label is not None and loaded.degrade is not None  # skipped by the run, in its one line
    with pytest.raises(ConfigError, match="degrade.out: empty"):
        load_config(cfg, [*stages, "finetune=null"])
    with pytest.raises(ConfigError, match="label.images: .* not found"):
        load_config(cfg, [*stages, "finetune=null", "degrade=null"])
