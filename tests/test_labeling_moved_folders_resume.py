"""A moved images folder: one rule for "the folder moved" (`labeling.moved_rows`) in the label stage and in
`train --resume`'s check before it; a stopped run's part files follow the move; one of several `label.images`
folders moved; the check's decoding of added images bounded."""

from __future__ import annotations

import os
import shutil

import pyarrow.parquet as pq
import pytest
from helpers import (
    LABEL_AND_PRETRAIN,
    LABEL_MARK,
    degrade_config,
    mark_labels,
    run_attiqa,
    signal_after,
    tiny_train_config,
)

from attiqa.io.images import discover_images
from attiqa.labeling import label_images, label_paths, parts_dir
from attiqa.teachers import create_teacher


def train(cli, cfg, table, *folders, more=()):
    images = ",".join(map(str, folders))
    sets = ("--set", f"label.images=[{images}]", "--set", f"label.out={table}")
    return cli("train", "--config", cfg, *LABEL_AND_PRETRAIN, *sets, *more)


def test_same_names_of_other_sizes_are_refused_before_the_label_stage(tmp_path, cli):
    """`train --resume` with label.images at a copy whose names are the table's but one file is another
    size (the old one still there): **was** let through by the runner's own rule (names only), then the
    label stage (names and sizes) labelled every image again into the table and pretraining refused it;
    now the check asks labeling's rule and refuses first, the table untouched."""
    cfg = tiny_train_config(tmp_path)
    images, copy, table = tmp_path / "set" / "images", tmp_path / "copy", tmp_path / "labels.parquet"
    assert train(cli, cfg, table, images).returncode == 0
    shutil.copytree(images, copy)
    victim = copy / "img03.png"
    victim.write_bytes(victim.read_bytes() + b"\0")  # still a readable PNG, of another size
    before = table.read_bytes()
    res = train(cli, cfg, table, copy, more=("--resume", "--set", "pretrain.epochs=2"))
    assert res.returncode != 0
    assert "label.images: other images than the run in" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert table.read_bytes() == before  # was: relabelled (then refused by pretraining)


def test_a_stopped_runs_parts_follow_the_moved_folder(photo_dir, tmp_path):
    """Ctrl-C to `attiqa label` after its first part file, the folder moved, the same command on the new
    place: the images the stopped run labelled **were** labelled again (only the finished table was
    followed); now its part files are rewritten too and only the others are labelled."""
    out = tmp_path / "labels.parquet"
    ctrl_c = signal_after(tmp_path, "replace", ".parquet", 1, "SIGINT", "attiqa.cli")
    stopped = run_attiqa("label", photo_dir, "-o", out, "--workers", "0", "--batch-size", "2", **ctrl_c)
    assert stopped.returncode != 0 and not out.exists()
    parts = sorted(parts_dir(out).glob("*.parquet"))
    assert len(parts) == 1
    for part in parts:
        mark_labels(part)
    kept = pq.read_metadata(parts[0]).num_rows
    moved = tmp_path / "elsewhere" / "photos"
    moved.parent.mkdir()
    photo_dir.rename(moved)
    res = label_images(discover_images([moved]), create_teacher("classical"), out, 2, 0, roots=[moved])
    assert (res.labelled, res.skipped_done) == (len(discover_images([moved])) - kept, kept)  # was: 0 kept
    table = pq.read_table(out)
    assert all(p.is_relative_to(moved) for p in label_paths(table))
    assert table.column(1).to_pylist().count(LABEL_MARK) == kept


def test_one_of_several_folders_moved_resumes(tmp_path, cli):
    """label.images of two folders, one moved elsewhere (same files): `train --resume` **was** refused
    ("other images than the run … was pretrained on": the common folder changed); now the label stage
    follows the moved one (the labels kept) and pretraining resumes (its record names rows under each
    folder given)."""
    cfg = tiny_train_config(tmp_path)
    images, table = tmp_path / "set" / "images", tmp_path / "labels.parquet"
    more = tmp_path / "more"
    shutil.copytree(images, more)
    for i, p in enumerate(sorted(more.iterdir())):
        p.rename(more / f"m{i}.png")
    label_images(
        discover_images([images, more]), create_teacher("classical"), table, 4, 0, roots=[images, more]
    )
    mark_labels(table)  # before the run: the labels it pretrains on
    assert train(cli, cfg, table, images, more).returncode == 0
    moved = tmp_path / "new" / "elsewhere"
    moved.parent.mkdir()
    more.rename(moved)
    res = train(cli, cfg, table, images, moved, more=("--resume", "--set", "pretrain.epochs=2"))
    assert res.returncode == 0, res.stderr
    assert '"epoch": 2' in (tmp_path / "run" / "pretrain" / "last.json").read_text()
    assert f"pretrain: the dataset moved: {more} -> {moved}, same rows" in " ".join(res.stderr.split())
    t = pq.read_table(table)
    assert t.column(1).to_pylist() == [LABEL_MARK] * 16  # nothing labelled again
    assert sum(p.is_relative_to(moved) for p in label_paths(t)) == 8


def test_a_move_two_earlier_folders_fit_is_refused_naming_the_folder(photo_dir, tmp_path, cli):
    """Two copies of one folder labelled together, both moved to folders of other names: which one went
    where is not known — one line naming the folder, nothing labelled."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(photo_dir, a)
    shutil.copytree(photo_dir, b)
    out = tmp_path / "labels.parquet"
    assert cli("label", a, b, "-o", out, "--workers", "0").returncode == 0
    x, y = tmp_path / "x", tmp_path / "y"
    a.rename(x)
    b.rename(y)
    before = out.read_bytes()
    res = cli("label", x, y, "-o", out, "--workers", "0")
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert str(x) in line and "more than one earlier folder" in line and "label.images" in line
    assert out.read_bytes() == before


def test_the_resume_check_decodes_a_bounded_number_of_added_images(tmp_path, cli):
    """A folder of unreadable files added to label.images on --resume: **was** each decoded in turn before
    the teacher loaded (thousands: minutes); now the first ``ADDED_PROBED`` are, and the line says the rest
    is left to the label stage."""
    from attiqa.runner import ADDED_PROBED

    n_junk = ADDED_PROBED + 8
    cfg = tiny_train_config(tmp_path)
    images, table = tmp_path / "set" / "images", tmp_path / "labels.parquet"
    assert train(cli, cfg, table, images).returncode == 0
    junk = tmp_path / "junk"
    junk.mkdir()
    for i in range(n_junk):
        (junk / f"j{i:03d}.png").write_bytes(b"not a png")
    res = train(cli, cfg, table, images, junk, more=("--resume", "--set", "pretrain.epochs=2"))
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert f"{n_junk} images not in labels.parquet, the first {ADDED_PROBED} unreadable" in said, said


def add_source(root):
    from PIL import Image

    Image.new("RGB", (48, 40), (200, 30, 30)).save(root / "src" / "s9.png")


def stopped_in_pretraining(tmp_path):
    """:func:`degrade_config`'s run stopped by a real Ctrl-C after pretraining's first epoch: (cfg, run)."""
    cfg = degrade_config(tmp_path)
    ctrl_c = signal_after(tmp_path, "replace", "last.state.safetensors", 1, "SIGINT", "attiqa.cli")
    stopped = run_attiqa("train", "-c", cfg, **ctrl_c)
    assert stopped.returncode != 0 and "interrupted: pretrain" in stopped.stderr, stopped.stderr
    return cfg, tmp_path / "run"


def refused_before_writing(cli, cfg, run, line):
    """``train -c cfg --resume`` refused in ``line`` alone, the graded set and the label table untouched."""
    graded = {p: p.read_bytes() for p in (run / "graded").iterdir()}
    table = (run / "labels.parquet").read_bytes()
    res = cli("train", "-c", cfg, "--resume")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [line]
    assert {p: p.read_bytes() for p in (run / "graded").iterdir()} == graded
    assert (run / "labels.parquet").read_bytes() == table


@pytest.mark.slow  # whole train runs in subprocesses
def test_a_degrade_run_stopped_in_pretraining_refuses_an_added_source_first(tmp_path, cli):
    """Ctrl-C to `attiqa train` (degrade -> label -> pretrain) after pretraining's first epoch, a source
    added, the same command with --resume: **was** the source's graded copies made and labelled, then
    pretraining refused the table; now one line before anything is written. The same after Ctrl-C in the
    degrade stage (no pretraining yet): the resume takes the new source in and finishes. The Ctrl-C is a
    real signal to a real process; the reruns run the entry point in this process."""
    cfg, run = stopped_in_pretraining(tmp_path)
    add_source(tmp_path)
    refused_before_writing(
        cli, cfg, run,  # was: its graded copies made, then labelled
        f"error: degrade.sources: 1 image(s) the graded set in {run / 'graded'} was not made from, e.g. "
        f"{tmp_path / 'src' / 's9.png'} (their graded copies: other images than the run in "
        f"{run / 'pretrain'} was pretrained on) — --resume continues that run: set degrade.sources back, or "
        "train over it with --no-resume (or choose another out_dir)",
    )  # fmt: skip
    res = cli("train", "-c", cfg, "--resume", "--set", "degrade.levels=[1,3,5]")
    assert res.returncode != 0 and res.stderr.strip().startswith("error: degrade.levels: [1, 3, 5] differs")
    (tmp_path / "src" / "s9.png").unlink()
    same_files = ("--set", "degrade.levels=[3,1]", "--set", "degrade.seed=7")  # no draw: the same files
    res = cli("train", "-c", cfg, "--resume", *same_files)
    assert res.returncode == 0, res.stderr


@pytest.mark.slow  # whole train runs in subprocesses
def test_a_degrade_run_stopped_in_its_degrade_stage_takes_an_added_source(tmp_path, cli):
    cfg = degrade_config(tmp_path)
    ctrl_c = signal_after(tmp_path, "replace", ".png", 2, "SIGINT", "attiqa.cli")
    stopped = run_attiqa("train", "-c", cfg, **ctrl_c)
    assert stopped.returncode != 0 and "Traceback" not in stopped.stderr
    add_source(tmp_path)
    res = cli("train", "-c", cfg, "--resume")
    assert res.returncode == 0, res.stderr
    names = {p.name for p in label_paths(pq.read_table(tmp_path / "run" / "labels.parquet"))}
    assert {"s9.png", "s9__gaussian_blur_3.png"} <= names


def test_files_given_one_by_one_are_followed_when_their_folder_moved(photo_dir, tmp_path):
    """label.images listing files (the folders given are those files): matched by the folder holding them,
    as a folder given is."""
    teacher = create_teacher("classical")
    out = tmp_path / "labels.parquet"
    files = discover_images([photo_dir])
    first = label_images(files, teacher, out, num_workers=0, roots=files)
    moved = tmp_path / "elsewhere"
    photo_dir.rename(moved)
    files = discover_images([moved])
    again = label_images(files, teacher, out, num_workers=0, roots=files)
    assert (again.labelled, again.skipped_done) == (0, first.labelled)


@pytest.mark.slow  # whole train runs in subprocesses
def test_a_degrade_run_stopped_in_pretraining_refuses_a_replaced_source_first(tmp_path, cli):
    """Ctrl-C to `attiqa train` after pretraining's first epoch, a source replaced in place (another
    image's bytes under its path), the same command with --resume: **was** its graded copies made again
    over those pretrained on and labelled again, the pretraining's data then another (review of session
    66); now one line before anything is written, as for a source added. Put back, the run resumes."""
    from PIL import Image

    cfg, run = stopped_in_pretraining(tmp_path)
    photo = tmp_path / "src" / "s1.png"
    kept, stat = photo.read_bytes(), photo.stat()
    Image.new("RGB", (48, 40), (200, 30, 30)).save(photo)
    refused_before_writing(
        cli, cfg, run,  # was: its graded copies made again over those pretrained on
        f"error: degrade.sources: 1 image(s) replaced since the graded set in {run / 'graded'} was made "
        f"from them, e.g. {photo} (their graded copies made again: other images than the run in "
        f"{run / 'pretrain'} was pretrained on) — --resume continues that run: put them back, or train over "
        "it with --no-resume (or choose another out_dir)",
    )  # fmt: skip
    photo.write_bytes(kept)
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # put back as it was
    res = cli("train", "-c", cfg, "--resume")
    assert res.returncode == 0, res.stderr


def test_an_image_replaced_in_place_is_refused_before_the_label_stage(tmp_path, cli):
    """`train --resume` past pretraining after `cp other.png images/img03.png` (review of session 66):
    **was** img03 labelled again into the table ("1 photo changed since the earlier run: labelled again"),
    then pretraining refused the table it no longer was; now one line first, the table untouched."""
    cfg = tiny_train_config(tmp_path)
    images, table = tmp_path / "set" / "images", tmp_path / "labels.parquet"
    assert train(cli, cfg, table, images).returncode == 0
    victim = images / "img03.png"
    victim.write_bytes((images / "img05.png").read_bytes())
    before = table.read_bytes()
    res = train(cli, cfg, table, images, more=("--resume", "--set", "pretrain.epochs=2"))
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"error: label.images: 1 image(s) replaced since they were labelled into labels.parquet, e.g. "
        f"{victim} (labelled again: another table than the run in {tmp_path / 'run' / 'pretrain'} was "
        "pretrained on) — --resume continues that run: put them back, or train over it with --no-resume (or "
        "choose another out_dir)"
    ]
    assert table.read_bytes() == before
