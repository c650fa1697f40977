"""`attiqa train` on a hostile MOS file and a diverging learning rate (docs/robustness.md): the fine-tuning
CSV goes through the one CSV reader, rows without a finite MOS are left out and reported, a split too small to
train says so, and a stage stops on a NaN loss or NaN held-out SROCC without saving over its last good files.
Every fixture is generated here; each test failed before its fix."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from helpers import run_attiqa, tiny_train_config
from typer.testing import CliRunner

from attiqa.errors import AttiqaError

runner = CliRunner()


def _train(cfg: Path, *sets: str, resume: bool = False):
    from attiqa.cli.app import app

    args = ["train", "-c", str(cfg), *(a for s in sets for a in ("--set", s))]
    return runner.invoke(app, args + (["--resume"] if resume else []))


def test_a_semicolon_mos_csv_with_decimal_commas_trains(tmp_path):
    """**Was**: "missing column 'image' (found: image;mos)" — training had its own CSV reader."""
    cfg = tiny_train_config(
        tmp_path, "\ufeffimage;mos\n" + "".join(f"img{i:02d}.png;{1 + i},{i}5\n" for i in range(8))
    )
    r = _train(cfg)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "finetune" / "last.safetensors").is_file()


def test_rows_without_a_finite_mos_are_left_out_and_named(tmp_path):
    """**Was**: a `nan` cell ended in "all training MOS values are equal (nan)" (an empty one: "not a
    number"). Now the row is left out, as `attiqa bench` / `eval` do, in one line naming the file and row."""
    from attiqa.training.data import read_mos_csv

    cells = ["1.0", "nan", "1.6", "", "2.2", "inf", "2.8", "3.1"]
    cfg = tiny_train_config(
        tmp_path, "image,mos\n" + "".join(f"img{i:02d}.png,{c}\n" for i, c in enumerate(cells))
    )
    csv_path = tmp_path / "set" / "mos.csv"
    rows = read_mos_csv(csv_path)
    assert [r["image"] for r in rows] == ["img00.png", "img02.png", "img04.png", "img06.png", "img07.png"]
    r = _train(cfg, "finetune.val_fraction=0.4")
    assert r.exit_code == 0, r.output
    assert "3 row(s) without a finite mos (empty, NaN or inf) left out (row 3, 5, 7)" in " ".join(
        r.output.split()
    )
    (tmp_path / "set" / "mos.csv").write_text("image,mos\nimg00.png,nan\nimg01.png,\n")
    with pytest.raises(AttiqaError, match=r"mos.csv: no rows with a finite mos"):
        read_mos_csv(csv_path)
    (tmp_path / "set" / "mos.csv").write_text("image,mos\nimg00.png,good\n")
    with pytest.raises(AttiqaError, match=r"mos.csv:2: mos 'good' is not a number"):
        read_mos_csv(csv_path)


def test_too_small_a_split_says_how_many_rows_and_the_minimum(tmp_path):
    """**Was**: a two-row set (one train, one test row) said "all training MOS values are equal
    (1.2000000476837158)"."""
    cfg = tiny_train_config(tmp_path, "image,mos,split\nimg00.png,1.2,train\nimg01.png,3.4,test\n")
    r = _train(cfg)
    assert isinstance(r.exception, AttiqaError), r.output
    assert str(r.exception).endswith(
        "mos.csv: its split column gives 1 'train' and 1 val/valid/validation/test rows — fine-tuning needs "
        "at least 2 on each side (add rows, or a split column)"
    )
    (tmp_path / "set" / "mos.csv").write_text(
        "image,mos\n" + "".join(f"img{i:02d}.png,{i}\n" for i in range(4))
    )
    r = _train(cfg)
    assert (
        "4 rows split random 80%/20% seed 0 give 3 to train on and 1 held out — fine-tuning needs at least 2"
        in (str(r.exception))
    )
    rows = "".join(f"img{i:02d}.png,2.5,train\n" for i in range(4)) + "img04.png,1,test\nimg05.png,2,test\n"
    (tmp_path / "set" / "mos.csv").write_text("image,mos,split\n" + rows)
    r = _train(cfg)
    assert str(r.exception).endswith("mos.csv: all 4 training MOS values are 2.5 — nothing to regress (give "
                                     "images of different quality)")  # fmt: skip


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_diverging_learning_rate_stops_and_keeps_the_last_good_files(tmp_path):
    """**Was**: `lr: 1e5` finished, wrote NaN-metric checkpoints and reported srocc=nan."""
    mos = "image,mos\n" + "".join(f"img{i:02d}.png,{1 + 0.3 * i:.1f}\n" for i in range(8))
    cfg = tiny_train_config(tmp_path, mos, epochs=2, feature_cache="false")
    r = _train(cfg, "finetune.epochs=1")  # one good epoch
    assert r.exit_code == 0, r.output
    stage = tmp_path / "run" / "finetune"
    before = {p.name: _sha(p) for p in stage.iterdir()}
    r = _train(
        cfg, "finetune.lr=1e5", "finetune.head_lr=1e5", resume=True
    )  # epoch 2 resumes at a diverging rate
    assert isinstance(r.exception, AttiqaError), r.output
    msg = str(r.exception)
    assert (
        "finetune: held-out SROCC is NaN after epoch 2" in msg
        or "finetune: loss became NaN at epoch 2" in msg
    )
    assert "lower the learning rate (finetune.lr or finetune.head_lr in the config; now 100000)" in msg
    assert msg.endswith(f"{stage / 'last.safetensors'} (epoch 1) is kept")
    assert {
        p.name: _sha(p) for p in stage.iterdir()
    } == before  # best, last and the resume state as they were
    # a NaN loss itself: stopped at its step, before the optimizer step
    cfg = tiny_train_config(
        tmp_path / "inf", mos, batch_size=2, lr="1e30", head_lr="1e30", feature_cache="false"
    )
    r = _train(cfg)
    assert isinstance(r.exception, AttiqaError), r.output
    assert "finetune: loss became " in str(r.exception) and " at epoch 1 step " in str(r.exception)
    assert not (tmp_path / "inf" / "run" / "finetune" / "best.safetensors").exists()


DDP_SCRIPT = """
import os, sys
import torch
from attiqa.errors import AttiqaError
from attiqa.sharding import process_group
from attiqa.training.distributed import wrap_ddp
from attiqa.training.trainer import Trainer

class Batches:
    def epoch(self, e):
        g = torch.Generator().manual_seed(e)
        return [(torch.randn(4, 3, generator=g), torch.randn(4, generator=g)) for _ in range(4)], 4

with process_group():
    rank, calls = int(os.environ["RANK"]), [0]
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)

    def step_loss(net, x, y):
        calls[0] += 1
        loss = ((net(x).squeeze(1) - y) ** 2).mean()
        return loss * float("nan") if rank == 1 and calls[0] == 7 else loss  # epoch 2 step 3, rank 1 only

    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    try:
        Trainer("pretrain", model, Batches(), step_loss, opt, epochs=3, progress=False,
                wrap=lambda m: wrap_ddp(m, torch.device("cpu"))).fit()
    except AttiqaError as exc:
        # one write: print() writes the text and its newline apart, and the two ranks share one pipe
        sys.stderr.write(f"rank {rank}: {exc}\\n")
        sys.stderr.flush()
        sys.exit(3)
"""


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_a_nan_loss_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    script = tmp_path / "nan_rank.py"
    script.write_text(DDP_SCRIPT)
    proc = run_attiqa(ranks=2, script=script, env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("rank ")]
    assert sorted(lines) == [
        "rank 0: pretrain: loss became NaN/inf on another process at epoch 2 step 3 — lower the learning "
        "rate (pretrain.lr in the config; now 0.01)",
        "rank 1: pretrain: loss became NaN at epoch 2 step 3 — lower the learning rate (pretrain.lr in the "
        "config; now 0.01)",
    ], proc.stderr[-4000:]


@pytest.mark.parametrize("kind", ["folder", "missing", "binary"])
def test_exiqa_regressor_refuses_a_bad_mos_path_before_the_model_loads(tmp_path, kind):
    """**Was**: `train-exiqa-regressor RUN --mos X` loaded RUN's CLIP first, then said "X: MOS CSV not
    found" (for a folder too); with RUN empty the only line was about RUN's checkpoint. Now X is read
    first, with `attiqa eval --csv`'s words (:func:`attiqa.datasets.readers.not_a_file`)."""
    from attiqa.cli.app import app

    run = tmp_path / "run"  # no checkpoint: a line about it means the model was tried first
    run.mkdir()
    mos = tmp_path / {"folder": "scores", "missing": "nope.csv", "binary": "x.csv"}[kind]
    if kind == "folder":
        mos.mkdir()
    elif kind == "binary":
        mos.write_bytes(bytes(range(128, 256)) * 8)
    r = runner.invoke(app, ["train-exiqa-regressor", str(run), "--mos", str(mos)])
    assert isinstance(r.exception, AttiqaError), r.output
    fix = {
        "folder": "a folder, not a CSV — pass the score file itself, e.g. ",
        "missing": "MOS CSV not found — check the path",
        "binary": "not a UTF-8 text file — save it as UTF-8",
    }[kind]
    assert str(r.exception).startswith(f"{mos}: {fix}") and "\n" not in str(r.exception), r.exception


@pytest.mark.parametrize("teacher", ["classical", "clip:NoSuchModel/x"])
@pytest.mark.parametrize("images", ["no_images", "empty_list"])
def test_train_finds_the_label_images_before_the_teacher_loads_or_out_dir_is_made(tmp_path, teacher, images):
    """Session 44: **was** `train` whose label stage names a folder without images (or no images at all):
    the teacher loaded first (a CLIP model: seconds), out_dir made with its config.json, then "no images
    found"; with a CLIP model that is not there too, the model's error hid the images'. Now the images are
    found first, as `attiqa label` does: their line, no model loaded for it, no folder."""
    from attiqa.cli.app import app

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    listed = f"[{folder}]" if images == "no_images" else "[]"
    config = tmp_path / "run.yaml"
    config.write_text(f"out_dir: {tmp_path / 'run'}\nlabel:\n  images: {listed}\n  teacher: {teacher}\n")
    r = runner.invoke(app, ["train", "-c", str(config)])
    said = f"no images found in {folder}" if images == "no_images" else "label.images is empty"
    assert isinstance(r.exception, AttiqaError) and said in str(r.exception), (r.output, r.exception)
    assert not (tmp_path / "run").exists(), sorted((tmp_path / "run").rglob("*"))


def test_a_label_stage_of_one_image_before_pretraining_is_refused_before_any_work(tmp_path):
    """**Was**: `label.images: [one.png]` with a pretrain stage labelled it, made the run folder, then
    stopped at "labels.parquet: 1 rows — ranking needs at least 2 images"; now one line naming
    label.images before the teacher loads, nothing written."""
    from PIL import Image

    from attiqa.cli.app import app

    one = tmp_path / "one.png"
    Image.new("RGB", (48, 40), (90, 120, 30)).save(one)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"out_dir: {tmp_path / 'run'}\nmodel:\n  backbone: tiny\n  pretrained_backbone: false\n"
        f"label:\n  images: [{one}]\n  num_workers: 0\n"
        "pretrain:\n  epochs: 1\n  batch_size: 2\n  resize_shorter: 40\n  crop_size: 32\n  device: cpu\n"
    )
    r = runner.invoke(app, ["train", "-c", str(config)])
    assert isinstance(r.exception, AttiqaError), r.output
    assert str(r.exception) == (
        f"label.images: only one image found ({one}) — pretraining ranks pairs of images: list at least 2 "
        "(the more photos, the better the attribute heads)"
    )
    assert not (tmp_path / "run").exists()
