"""`attiqa eval` / `bench` on hostile score files (session 65): a header in another case (``Prompt``), a group
column of numbers, a split column empty for some rows, and the fit the eval table's PLCC / RMSE are after."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest
from dataset_layouts import flive
from PIL import Image
from typer.testing import CliRunner, Result

from attiqa.bench_setup import bench_dataset
from attiqa.bench_splits import plan_splits
from attiqa.cli.app import app
from attiqa.datasets import get_dataset
from attiqa.datasets.base import IQADataset
from attiqa.errors import AttiqaError


def agiqa3k_copy(root: Path, header: str) -> Path:
    """12 generated images of 4 prompts with an AGIQA-3k ``data.csv`` under ``header``."""
    root.mkdir()
    rows = []
    for i in range(12):
        Image.new("RGB", (24, 24), (20 * i, 100, 200 - 10 * i)).save(root / f"g{i}.jpg")
        rows.append(f"g{i}.jpg,prompt {i % 4},,,,{i * 0.3:.2f},0.5,{(11 - i) * 0.3:.2f},0.5")
    (root / "data.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return root


def folder_set(root: Path, header: str, cells: list[str]) -> IQADataset:
    """A folder dataset of 12 small images ``p0.png`` .. and a ``mos.csv`` of ``header`` and, per image,
    its ``cells`` after the name."""
    root.mkdir()
    for i in range(12):
        Image.new("RGB", (24, 24), (20 * i, 90, 30)).save(root / f"p{i}.png")
    (root / "mos.csv").write_text(header + "\n" + "".join(f"p{i}.png,{c}\n" for i, c in enumerate(cells)))
    return get_dataset("folder", root)


def assert_groups_apart(ds: IQADataset, group_by: str, key: str) -> None:
    """Three of ``bench single``'s splits of ``ds`` by ``group_by``: each a group split, no ``key`` on both
    sides."""
    b = bench_dataset(ds, "set")
    plan = plan_splits("single", [b], 3, 0, None, group_by, [])
    for sp in plan.splits(b):
        assert sp.kind == "group"
        train = {ds.items[i].meta[key] for i in sp.train}
        test = {ds.items[i].meta[key] for i in sp.test}
        assert test and not train & test


def eval_classical(root: Path, out: Path) -> Result:
    """``attiqa eval folder --root ROOT -m classical`` in this process (the classical scorer: no weights)."""
    args = ["eval", "folder", "--root", str(root), "-m", "classical", "-w", "0", "-q", "-o", str(out)]
    return CliRunner().invoke(app, args)


def test_agiqa3k_prompts_under_a_capitalised_header_keep_each_prompt_on_one_side(tmp_path, capsys):
    """**Was**: the prompt, adjectives, style and stds were read only under their lower-case names: a
    ``data.csv`` headed ``Name,Prompt,...,MOS_Quality`` read its names and MOS (any case) but no prompt —
    ``bench``'s default split said "no item has a 'prompt' to group by" and split image-wise, one prompt's
    images on both sides of the split."""
    header = "Name,Prompt,Adj1,Adj2,Style,MOS_Quality,STD_Quality,MOS_Align,STD_Align"
    ds = get_dataset("agiqa3k", agiqa3k_copy(tmp_path / "ag", header))
    assert ds.items[5].meta["prompt"] == "prompt 1"
    assert ds.items[5].meta["std_quality"] == "0.5"
    assert_groups_apart(ds, "auto", "prompt")
    assert "no item has a 'prompt'" not in capsys.readouterr().out


def test_a_folder_csv_group_column_of_numbers_groups_the_split(tmp_path):
    """**Was**: a folder CSV's column of numbers (a scene or reference id: ``scene`` 0, 1, 2) became an extra
    target only, so ``bench --group-by scene`` said "12 of 12 items have no 'scene' to group by (their
    metadata: none)" of a file that has the column; now every column but the image and split is a group a
    split can keep on one side (numbers too)."""
    ds = folder_set(tmp_path / "set", "image,mos,scene", [f"{i + 1},{i % 3}" for i in range(12)])
    assert "scene" in ds.info.targets  # still an extra target too
    assert_groups_apart(ds, "scene", "scene")


def test_rows_of_a_split_column_on_neither_side_are_said_before_the_runs(tmp_path, capsys):
    """**Was**: a folder CSV whose split column names train / test for some rows and is empty (or
    ``holdout``) for the rest was benched on the labelled rows alone, without a word: 3 trained on and 2
    tested of 12 images, the table's "12 images" and the other 7 never used; now one line names how many
    rows are on neither side, their lines, and the fix."""
    root = tmp_path / "set"
    root.mkdir()
    sides = ["train", "train", "train", "test", "test", "", "", "", "", "", "holdout", ""]
    for i in range(12):
        Image.new("RGB", (24, 24), (20 * i, 90, 30)).save(root / f"p{i}.png")
    rows = "".join(f"p{i}.png,{i + 1},{sides[i]}\n" for i in range(12))
    (root / "mos.csv").write_text("image,mos,split\n" + rows)
    b = bench_dataset(get_dataset("folder", root), "set")
    plan = plan_splits("single", [b], 3, 0, None, "auto", [])
    [sp] = plan.splits(b)
    assert (len(sp.train), len(sp.test)) == (3, 2)
    said = [ln for ln in capsys.readouterr().err.splitlines() if "neither side" in ln]
    assert len(said) == 1, said
    assert "7 of its 12 images" in said[0] and "mos.csv lines 7, 8, 9, 10, 11, ..." in said[0]
    assert "fill in their split cells" in said[0]


def test_eval_names_the_fit_its_plcc_and_rmse_are_after(tmp_path, monkeypatch):
    """**Was**: the table's columns read "PLCC (logistic)" and "RMSE (logistic)" also when the logistic was
    not kept (it failed, lost to a line by AICc, or had under 7 points) and the figures were a linear fit's
    — said only in summary.json; now the columns name the linear fit and a line says why."""
    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path / "cache"))  # not the user's
    root = tmp_path / "six"
    root.mkdir()
    for i in range(6):
        Image.new("RGB", (32, 32), (40 * i, 60 + 20 * i, 90)).save(root / f"p{i}.png")
    (root / "mos.csv").write_text("image,mos\n" + "".join(f"p{i}.png,{i + 1}\n" for i in range(6)))
    res = eval_classical(root, tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "PLCC (linear fit)" in res.output and "RMSE (linear fit)" in res.output
    assert "PLCC (logistic)" not in res.output and "RMSE (logistic)" not in res.output
    assert "fewer than 7 points: linear fit" in res.output


def test_eval_of_only_damaged_images_names_them_and_the_fix(tmp_path, monkeypatch):
    """**Was**: a table whose every image passes the header check but cannot be decoded (cut short) ended
    "folder: no image could be scored — nothing to evaluate", naming no file and no fix; now the error names
    how many, the first file with its reason and the fix."""
    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path / "cache"))  # not the user's
    root = tmp_path / "cut"
    root.mkdir()
    for i in range(2):
        Image.new("RGB", (64, 64), (40 * i, 60, 90)).save(tmp_path / "whole.png")
        (root / f"p{i}.png").write_bytes((tmp_path / "whole.png").read_bytes()[:120])
    (root / "mos.csv").write_text("image,mos\np0.png,1\np1.png,2\n")
    res = eval_classical(root, tmp_path / "o")
    said = f"{res.output}{res.exception}"
    assert res.exit_code != 0 and "none of its 2 images could be decoded" in said, said
    assert f"{root / 'p0.png'}: cannot decode image" in said and "re-export" in said


def test_eval_left_with_one_image_by_damaged_ones_says_to_repair_them(tmp_path, monkeypatch):
    """**Was**: 3 images listed, 2 cut short: "1 image scored: correlations need at least 2 — evaluate a
    table of more images", though the table had 3; now the fix says first to repair the 2 that could not be
    decoded."""
    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path / "cache"))  # not the user's
    root = tmp_path / "cut"
    root.mkdir()
    Image.new("RGB", (64, 64), (40, 60, 90)).save(root / "p0.png")
    for i in (1, 2):
        (root / f"p{i}.png").write_bytes((root / "p0.png").read_bytes()[:120])
    (root / "mos.csv").write_text("image,mos\np0.png,1\np1.png,2\np2.png,3\n")
    res = eval_classical(root, tmp_path / "o")
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "1 image scored: correlations need at least 2 — repair the 2 that could not be decoded" in said


def test_a_group_column_that_groups_nothing_is_refused(tmp_path):
    """**Was** (review of session 65): with every folder-CSV column a group, ``--group-by mos`` (the score
    being learned: images of equal scores kept together) and ``--group-by std`` (another value in every row:
    every image its own group) were taken without a word, as "group" splits; now both are refused naming
    the fix, and a shared id column still groups."""
    cells = [f"{i % 5 + 1},{i % 3},{0.1 + i / 97:.4f}" for i in range(12)]
    ds = folder_set(tmp_path / "set", "image,MOS,scene,std", cells)
    own = "each of its 12 items has its own 'std' ('0.1000', '0.1103', '0.1206', ...)"
    for group_by, said in (("MOS", "'MOS' is the score the model learns"), ("std", own)):
        b = bench_dataset(ds, "set")
        with pytest.raises(AttiqaError) as err:
            plan_splits("single", [b], 3, 0, None, group_by, []).splits(b)
        assert said in str(err.value) and "use --group-by none for image-wise splits" in str(err.value)
    assert_groups_apart(ds, "scene", "scene")


def test_eval_says_logistic_where_the_logistic_is_kept(tmp_path, monkeypatch):
    """The other side of the fit's column label (review of session 65: the label "(logistic)" was asserted
    nowhere once the 16-image eval test took either): MOS a logistic of the scorer's own predictions, so
    the logistic beats the line by AICc — the columns say "(logistic)" and no fit line is printed."""
    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path / "cache"))  # not the user's
    root = tmp_path / "set"
    root.mkdir()
    for i in range(16):
        Image.new("RGB", (32, 32), (15 * i, 200 - 11 * i, 40 + 7 * i)).save(root / f"p{i}.png")
    (root / "mos.csv").write_text("image,mos\n" + "".join(f"p{i}.png,{i}\n" for i in range(16)))
    assert eval_classical(root, tmp_path / "first").exit_code == 0
    pred = {
        Path(r["image"]).name: float(r["prediction"])
        for r in csv.DictReader((tmp_path / "first" / "predictions.csv").open())
    }
    mid, spread = statistics.median(pred.values()), statistics.pstdev(pred.values())
    mos = {n: 1 + 4 / (1 + math.exp(-(p - mid) / (spread / 4))) for n, p in pred.items()}
    (root / "mos.csv").write_text("image,mos\n" + "".join(f"{n},{m:.6f}\n" for n, m in mos.items()))
    res = eval_classical(root, tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["logistic_fit"]["method"] == "logistic"
    assert "PLCC (logistic)" in res.output and "RMSE (logistic)" in res.output
    assert "linear fit" not in res.output and "PLCC and RMSE after the fit" not in res.output


def test_a_flive_image_in_neither_split_file_is_said_as_such(tmp_path, capsys):
    """**Was** (review of session 65): a FLIVE image listed in neither of the release's split files was said
    as "1 of its 7 images are on neither side of its split (e.g. rq59.jpg: no train or test in their split
    cell)" — FLIVE has no split cell, and the folder the image is in was cut; now its path under the root
    and the split's files."""
    root = tmp_path / "flive"
    flive(root)  # EE371R/rq59.jpg is in neither split file
    b = bench_dataset(get_dataset("flive", root), "flive")
    with pytest.raises(AttiqaError, match="gives 4 to train on and 1 to test on"):  # 7 images: too few
        plan_splits("single", [b], 1, 0, None, "auto", []).splits(b)
    said = " ".join(capsys.readouterr().err.split())  # rich wraps the line
    assert said.count("neither side") == 1, said
    assert (
        "1 of its 7 images is on neither side of its split (e.g. database/EE371R/rq59.jpg: on no side" in said
    )
    assert "labels640.csv (test)" in said and "split cell" not in said
