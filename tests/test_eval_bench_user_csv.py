"""`attiqa eval` / `attiqa bench` as a researcher with their own folder + CSV: group splits of few groups, the
score CSV's shapes, image names off by case, and eval's output folder. Small generated fixtures (flat-colour
PNGs of graded brightness), the weight-free classical scorer, the tiny backbone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from attiqa.bench_setup import bench_dataset
from attiqa.config import FinetuneConfig
from attiqa.datasets import get_dataset
from attiqa.errors import AttiqaError
from attiqa.protocols import dataset_split, run_protocol

ROOT = Path(__file__).resolve().parents[1]
BASE = {
    "backbone": "tiny", "pretrained_backbone": False, "head_hidden": 8, "mos_hidden": 8, "epochs": 1,
    "batch_size": 8, "lr": 0.003, "resize_shorter": 40, "crop_size": 32, "num_workers": 0, "device": "cpu",
}  # fmt: skip


def make_set(folder: Path, n: int, prompts: list[str] | None = None, ext: str = "png") -> Path:
    """``n`` small images under folder/images with a mos.csv (image,mos[,prompt]); returns the CSV."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = ["image,mos" + (",prompt" if prompts else "")]
    for i in range(n):
        name = f"img{i:02d}.{ext}"
        Image.new("RGB", (48, 40), (20 + 15 * i, 60 + 7 * i, 200 - 9 * i)).save(folder / "images" / name)
        lines.append(f"{name},{10 + 5 * i + (i % 3)}" + (f",{prompts[i % len(prompts)]}" if prompts else ""))
    (folder / "mos.csv").write_text("\n".join(lines) + "\n")
    return folder / "mos.csv"


def test_a_group_split_of_two_groups_says_its_real_share_once_and_one_group_is_refused(tmp_path, capsys):
    """Two prompts: every split holds out one of the two — 50/50, not 80/20 — said in one line per run (not
    per split); one prompt: no split has both sides, refused before anything is written, by `bench` and by
    `attiqa train`'s named dataset alike."""
    ds = get_dataset("folder", make_set(tmp_path / "two", 12, ["a cat", "a dog"]))
    out = tmp_path / "out"
    run_protocol("single", [bench_dataset(ds, "two")], BASE, out, repeats=3, group_by="prompt")
    said = [ln for ln in capsys.readouterr().err.splitlines() if "groups and a split holds out" in ln]
    assert len(said) == 1, said
    assert "12 images fall in 2 groups" in said[0] and "(1 of 2)" in said[0]
    assert "train/test is 50/50 on average, not the 80/20 asked" in said[0] and "--group-by none" in said[0]

    # enough groups for 80/20: no word
    many = get_dataset("folder", make_set(tmp_path / "ten", 20, [f"p{i}" for i in range(10)]))
    run_protocol("single", [bench_dataset(many, "ten")], BASE, tmp_path / "o10", repeats=2, group_by="prompt")
    assert "groups and a split holds out" not in capsys.readouterr().err

    one = get_dataset("folder", make_set(tmp_path / "one", 6, ["a cat"]))
    with pytest.raises(AttiqaError, match=r"all 6 items share one 'prompt' \('a cat'\).*--group-by none"):
        run_protocol(
            "single", [bench_dataset(one, "one")], BASE, tmp_path / "o1", repeats=2, group_by="prompt"
        )
    assert not (tmp_path / "o1").exists()

    cfg = FinetuneConfig(**{**BASE, "dataset": "folder", "root": str(tmp_path / "one"), "group_by": "prompt"})
    with pytest.raises(AttiqaError) as err:
        dataset_split(cfg)
    assert "finetune.dataset folder" in str(err.value) and "finetune.group_by: none" in str(err.value)
    cfg = FinetuneConfig(**{**BASE, "dataset": "folder", "root": str(tmp_path / "two"), "group_by": "prompt"})
    dataset_split(cfg)
    said = [ln for ln in capsys.readouterr().err.splitlines() if "groups and a split holds out" in ln]
    assert len(said) == 1 and "train/test is 50/50, not the 80/20 asked" in said[0]
    assert "finetune.group_by: none" in said[0]


def test_bench_checks_its_splits_before_it_builds_the_network(tmp_path):
    """A --group-by naming no column (or a set too small to split) was said only after the backbone was
    built: offline, with ImageNet weights asked for, the user got "cannot download" instead."""
    ds = get_dataset("folder", make_set(tmp_path / "d", 12))
    gone = str(tmp_path / "imagenet.safetensors")  # ImageNet weights it cannot get (as offline)
    offline = {**BASE, "backbone": "resnet50", "pretrained_backbone": True, "backbone_weights": gone}
    with pytest.raises(AttiqaError, match="no item has a 'prompt' to group by|no 'prompt' to group by"):
        run_protocol(
            "single", [bench_dataset(ds, "d")], offline, tmp_path / "o", repeats=2, group_by="prompt"
        )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "attiqa.cli", *args], capture_output=True, text=True, env=env
    )


def test_eval_refuses_an_out_that_is_the_datasets_own_folder(tmp_path):
    """`eval folder --root DS -o DS` (or -o DS/images) wrote predictions.csv, summary.json and scatter.png
    among the photos; now one line before the scoring, nothing written; a folder of its own is fine."""
    from attiqa.evaluation.evaluate import evaluate
    from attiqa.scorers import load_scorer

    ds = tmp_path / "ds"
    make_set(ds, 6)
    before = sorted(p.name for p in ds.rglob("*"))
    r = run_cli("eval", "folder", "--root", str(ds), "-m", "classical", "-o", str(ds), "--no-cache")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert f"{ds}: is the dataset's own folder" in lines[0] and "choose another --out" in lines[0]
    data, scorer = get_dataset("folder", ds), load_scorer("classical")
    with pytest.raises(AttiqaError, match="is the dataset's own folder"):
        evaluate(data, scorer, ds / "images", cache=False, num_workers=0, progress=False)
    assert sorted(p.name for p in ds.rglob("*")) == before
    res = evaluate(data, scorer, tmp_path / "ev", cache=False, num_workers=0, progress=False)
    assert res.n == 6 and (tmp_path / "ev" / "scatter.png").is_file()


def test_image_names_off_by_case_are_read_and_another_extension_is_named(tmp_path):
    """A CSV whose names differ from the disk's by case only (`IMG00.png` listed, `img00.png` there) had
    every image "not found" — its first three rows chose the image folder by exact name, so the right ones
    were looked for in the wrong folder too; now they are read, and a name with another extension
    (`img04.jpg` listed, `img04.png` there) is named in its line with the file that is there."""
    csv_path = make_set(tmp_path / "ds", 8)
    lines = csv_path.read_text().splitlines()
    for i in (1, 2, 3):
        lines[i] = lines[i].replace("img", "IMG")
    lines[5] = lines[5].replace(".png", ".jpg")
    csv_path.write_text("\n".join(lines) + "\n")
    ds = get_dataset("folder", tmp_path / "ds")
    with pytest.raises(AttiqaError) as err:
        ds.check_images()
    msg = str(err.value)
    assert "1 of 8 images are missing" in msg, msg
    assert "img04.jpg: not found (mos.csv line 6) — img04.png is there: fix the name in the score file" in msg
    assert all(it.image.is_file() for it in ds.items if it.image.name != "img04.jpg")
    assert [it.image.name for it in ds.items][:3] == ["img00.png", "img01.png", "img02.png"]


def test_a_score_column_under_another_name_is_named_as_the_target_to_pass(tmp_path):
    """`image,original_name,MOS_score,std` (clive-dev's header, its mos renamed) said "missing column 'mos'
    … name the columns image,mos[,split]": the way that needs no edit of the file, naming the column as the
    target, was unsaid. Now the line names it, and that target reads the file."""
    csv_path = make_set(tmp_path / "ds", 4)
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(["image,MOS_score"] + lines[1:]) + "\n")
    with pytest.raises(AttiqaError) as err:
        get_dataset("folder", tmp_path / "ds")
    assert str(err.value).startswith(f"{csv_path}: missing column 'mos' (found: image, MOS_score)")
    assert "--target MOS_score (a run config: finetune.target: MOS_score)" in str(err.value)
    ds = get_dataset("folder", tmp_path / "ds", target="MOS_score")
    assert [it.raw for it in ds.items] == [10.0, 16.0, 22.0, 25.0]


def test_eval_on_a_few_images_says_its_figures_say_little(tmp_path):
    """`eval folder` of 3 images printed SROCC 1.0000 without a word (bench warns of small held-out sets);
    now a warning with the spread an SROCC has on so few, in summary.json too; 12 images: none."""
    from attiqa.evaluation.evaluate import evaluate
    from attiqa.scorers import load_scorer

    scorer = load_scorer("classical")
    make_set(tmp_path / "three", 3)
    res = evaluate(
        get_dataset("folder", tmp_path / "three"), scorer, tmp_path / "e3", cache=False, progress=False
    )
    said = [w for w in res.warnings if "images in the metrics" in w]
    assert res.n == 3 and len(said) == 1 and "about ±0.71" in said[0] and "at least 10" in said[0]
    make_set(tmp_path / "twelve", 12)
    res = evaluate(
        get_dataset("folder", tmp_path / "twelve"), scorer, tmp_path / "e12", cache=False, progress=False
    )
    assert res.n == 12 and not any("images in the metrics" in w for w in res.warnings)
