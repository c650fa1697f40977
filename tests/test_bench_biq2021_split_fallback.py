"""BIQ2021 with one of its two official score files: ``attiqa bench`` falls back to random 80/20 splits, and
now says so once, naming the missing file (it said nothing: the official split was silently not followed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dataset_layouts import biq2021

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
