"""A run copied, the original still there: the copy's degrade stage keeps its graded set (a source's name is
handed over to a file of the same name and bytes, as to a moved one), its label stage follows the copied
images, and `train --resume` continues in the copy; the original is not touched."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import LABEL_MARK, degrade_config, mark_labels, tiny_train_config
from PIL import Image

from attiqa.distortions.graded import new_sources, write_graded_set
from attiqa.io.images import discover_images
from attiqa.labeling import label_images, label_paths
from attiqa.teachers import create_teacher


def noise_png(path, seed):
    arr = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def snapshot(folder):
    """Every file under ``folder``: its bytes and modification time."""
    return {
        p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_a_copied_collection_keeps_its_graded_names_and_files(tmp_path):
    """Sources and graded set copied together, the copy graded again from the copied sources: **was** every
    source graded again under ``_1`` names (their recorded paths still there, so not "moved") — a set of
    duplicates; now a file of the same name and bytes takes the recorded name and its files are kept. A
    file of the same name and other bytes is still a source of its own."""
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "src").mkdir(parents=True)
    for i in range(3):
        noise_png(a / "src" / f"s{i}.png", i)
    first = write_graded_set(discover_images([a / "src"]), a / "graded", ["gaussian_blur"], [1])
    assert len(first.written) == 6
    shutil.copytree(a, b)
    before = snapshot(a)
    noise_png(b / "src" / "s2.png", 9)  # another photo under the name of one
    sources = discover_images([b / "src"])
    assert new_sources(sources, b / "graded") == [b / "src" / "s2.png"]  # was: all three
    res = write_graded_set(sources, b / "graded", ["gaussian_blur"], [1])
    assert sorted(p.name for p in res.written) == ["s2_1.png", "s2_1__gaussian_blur_1.png"]
    assert len(res.existing) == 4
    names = json.loads((b / "graded" / "sources.json").read_text())["names"]
    assert names["s0"] == str(b / "src" / "s0.png") and names["s1"] == str(b / "src" / "s1.png")
    assert names["s2"] == str(a / "src" / "s2.png") and names["s2_1"] == str(b / "src" / "s2.png")
    assert snapshot(a) == before


def labelled(folder, table):
    """``folder``'s images labelled (classical) into ``table`` and marked: labels a run keeps are told from
    labels it makes again."""
    label_images(discover_images([folder]), create_teacher("classical"), table, 4, 0, roots=[folder])
    mark_labels(table)


@pytest.mark.slow  # whole train runs in subprocesses (~25 s)
def test_a_copied_degrade_run_resumes_in_the_copy_without_grading_or_labelling_again(tmp_path, cli):
    """A degrade -> label -> pretrain run copied with its sources (`cp -r`), the copy resumed with a longer
    pretraining: **was** refused in one line ("degrade.sources: 4 image(s) the graded set … was not made
    from"); now resumed, nothing graded or labelled again, the original untouched."""
    a = tmp_path / "a"
    cfg = degrade_config(a)
    write_graded_set(discover_images([a / "src"]), a / "run" / "graded", ["gaussian_blur"], [1, 3])
    labelled(a / "run" / "graded", a / "run" / "labels.parquet")
    assert cli("train", "-c", cfg).returncode == 0
    b = tmp_path / "b"
    shutil.copytree(a, b)
    before = snapshot(a)
    sets = ("--set", f"out_dir={b / 'run'}", "--set", f"degrade.sources=[{b / 'src'}]")
    res = cli("train", "-c", cfg, *sets, "--resume", "--set", "pretrain.epochs=3")
    assert res.returncode == 0, res.stderr
    assert '"epoch": 3' in (b / "run" / "pretrain" / "last.json").read_text()
    graded = sorted(p.name for p in (a / "run" / "graded").iterdir())
    assert sorted(p.name for p in (b / "run" / "graded").iterdir()) == graded
    table = pq.read_table(b / "run" / "labels.parquet")
    assert table.column(1).to_pylist() == [LABEL_MARK] * 12  # nothing labelled again
    assert all(p.is_relative_to(b / "run" / "graded") for p in label_paths(table))
    assert snapshot(a) == before


@pytest.mark.slow  # whole train runs in subprocesses (~25 s)
def test_a_copied_run_without_a_degrade_stage_resumes_in_the_copy(tmp_path, cli):
    """label -> pretrain -> finetune, the folder holding the images, the MOS table and the run copied, the
    copy resumed with a longer fine-tuning: resumed there, nothing labelled again, the original
    untouched (held: it was so before session 52's check)."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    cfg = tiny_train_config(a)
    labelled(a / "set" / "images", a / "run" / "labels.parquet")
    pretrain = (
        "pretrain={epochs: 1, batch_size: 4, resize_shorter: 40, crop_size: 32, num_workers: 0, device: cpu}"
    )
    stages = ("--set", pretrain, "--set", "label={teacher: classical, num_workers: 0}")

    def sets(root):
        return ("--set", f"out_dir={root / 'run'}", "--set", f"label.images=[{root / 'set' / 'images'}]",
                "--set", f"finetune.csv={root / 'set' / 'mos.csv'}")  # fmt: skip

    assert cli("train", "-c", cfg, *stages, *sets(a)).returncode == 0
    shutil.copytree(a, b)
    before = snapshot(a)
    res = cli("train", "-c", cfg, *stages, *sets(b), "--resume", "--set", "finetune.epochs=2")
    assert res.returncode == 0, res.stderr
    assert '"epoch": 2' in (b / "run" / "finetune" / "last.json").read_text()
    table = pq.read_table(b / "run" / "labels.parquet")
    assert table.column(1).to_pylist() == [LABEL_MARK] * 8
    assert all(p.is_relative_to(b / "set" / "images") for p in label_paths(table))
    assert snapshot(a) == before
