"""A folder CSV whose split column holds val rows beside train and test: bench says they are used by no
run (the paper's protocol, §4.1: train on train, test on test, no epoch picked on a validation set)."""

from __future__ import annotations

from PIL import Image

from attiqa.bench_setup import bench_dataset
from attiqa.bench_splits import plan_splits
from attiqa.datasets import get_dataset


def folder(root, sides):
    root.mkdir()
    rows = []
    for i, side in enumerate(sides):
        Image.new("RGB", (16, 16), (20 * i, 90, 30)).save(root / f"p{i}.png")
        rows.append(f"p{i}.png,{i % 5 + 1},{side}\n")
    (root / "mos.csv").write_text("image,mos,split\n" + "".join(rows))
    return bench_dataset(get_dataset("folder", root), "set")


def test_val_rows_beside_a_test_side_are_said_once(tmp_path, capsys):
    """**Was**: a CSV of 14 train, 4 val and 6 test rows: the runs trained on 14 and tested on 6, the 4
    val rows in neither, without a word. Now one line saying so, with the fix; the split as before."""
    b = folder(tmp_path / "set", ["train"] * 14 + ["val"] * 4 + ["test"] * 6)
    plan = plan_splits("single", [b], 3, 0, None, "auto", [])
    (split,) = plan.splits(b)
    plan.splits(b)
    assert (len(split.train), len(split.test)) == (14, 6)
    said = " ".join(capsys.readouterr().err.split())
    assert said.count("val row(s)") == 1, said
    assert "its 4 val row(s) (mos.csv) are used by no run" in said and "mark them train or test" in said


def test_val_rows_without_a_test_side_are_the_test_side_and_not_said(tmp_path, capsys):
    """Train and val alone: val is the test side (as before), nothing said of it."""
    b = folder(tmp_path / "set", ["train"] * 14 + ["val"] * 6)
    (split,) = plan_splits("single", [b], 3, 0, None, "auto", []).splits(b)
    assert (len(split.train), len(split.test)) == (14, 6)
    assert "val row(s)" not in capsys.readouterr().err
