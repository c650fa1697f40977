"""BIQ2021 with one of its two official score files: ``attiqa bench`` falls back to random 80/20 splits, and
now says so once, naming the missing file (it said nothing: the official split was silently not followed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dataset_layouts import biq2021, pic

ROOT = Path(__file__).resolve().parents[1]


def bench(root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    argv = [sys.executable, "-m", "attiqa.cli", "bench", "single", "-d", f"biq2021={root}", "-o", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_biq2021_without_its_test_file_says_it_splits_at_random(tmp_path: Path) -> None:
    root = tmp_path / "BIQ2021-main"
    biq2021(root)
    (root / "Test (Images and MOS).csv").unlink()
    done = bench(root, tmp_path / "out")  # 3 photos at random 80/20: refused, after the warning
    said = " ".join(done.stderr.split())  # the console's lines go to stderr
    assert said.count("warning") == 1, done.stderr
    assert said.startswith(
        f"warning biq2021 ({root}): no test images (Test (Images and MOS).csv not found) — random 80/20 "
        "splits instead of the official split"
    ), done.stderr
    assert done.returncode == 2 and "split split00 (random, seed 0)" in said


def test_biq2021_with_both_files_says_no_such_thing(tmp_path: Path) -> None:
    root = tmp_path / "BIQ2021-main"
    biq2021(root)
    test_csv = root / "Test (Images and MOS).csv"  # one test photo: the official split is refused
    test_csv.write_text("\n".join(test_csv.read_text().splitlines()[:2]) + "\n")
    done = bench(root, tmp_path / "out")
    assert done.stderr.startswith("error:") and "warning" not in done.stderr, done.stderr


@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_attiqa_train_under_torchrun_says_the_fallback_once(tmp_path: Path, dataset_config) -> None:
    """``finetune.dataset: biq2021`` without its test file under `torchrun --nproc_per_node 2`: **was** the
    warning once per process (every rank plans the split); now rank 0 says it, as the other split lines."""
    from helpers import run_attiqa

    root = tmp_path / "BIQ2021-main"
    biq2021(root)
    (root / "Test (Images and MOS).csv").unlink()
    rows = [f"ss04 ({k}).jpg,0.{k}5,," for k in range(1, 8)]  # 10 photos: a random split trains
    with open(root / "Train (Images and MOS).csv", "a") as fh:
        fh.write("".join(r + "\n" for r in rows))
    for k in range(1, 8):
        pic(root / "Images" / f"ss04 ({k}).jpg", 10 + k)
    cfg = dataset_config(tmp_path, dataset="biq2021", root=root)
    res = run_attiqa("train", "--config", cfg, ranks=2, env={"OMP_NUM_THREADS": "1", "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr[-3000:]
    said = res.stdout + res.stderr
    assert said.count("random 80/20 splits instead of the official split") == 1, said[-3000:]
