"""``attiqa datasets`` piped at 80 columns, and ``attiqa bench``'s official split of BIQ2021."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import attiqa_cmd, on_a_terminal

from attiqa.datasets import list_datasets

ROOT = Path(__file__).resolve().parents[1]


def attiqa(*args: str, columns: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "attiqa.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_datasets_table_piped_at_80_columns_keeps_its_words_whole() -> None:
    """**Was**: `attiqa datasets | cat` (80 columns) drew six columns of ~12 characters, folding words
    mid-way ("mos_qualit y", "AIGC_MOS_Zs core.xlsx", a score file over 6 lines). Now a block per dataset,
    wrapped at spaces: every line fits, every target and score file of every adapter is printed whole."""
    res = attiqa("datasets", columns=80)  # stdout a pipe, as `| cat`
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert all(len(line) <= 80 or " " not in line.strip() for line in lines), res.stdout
    words = set(res.stdout.replace(",", " ").replace(":", " ").split())
    for info in list_datasets():
        assert info.name in words
        for target in info.targets:
            assert target in words, (info.name, target)
        for file in info.score_files:  # a name with spaces ("MOS and Image attribute scores.xlsx") may wrap
            assert file in words or (" " in file and file in " ".join(res.stdout.split())), (info.name, file)
    wide = on_a_terminal(attiqa_cmd("datasets"), 160)  # a wide terminal keeps the table (a pipe never)
    assert "┃ name" in wide, wide[:500]
    assert "┃ name" not in attiqa("datasets", columns=160).stdout  # piped, whatever COLUMNS says


def test_bench_splits_biq2021_by_its_official_train_and_test_files(tmp_path: Path) -> None:
    """**Was**: `attiqa bench single -d biq2021=ROOT` drew 10 random 80/20 splits, ignoring the repository's
    train and test files that the adapter reads as the split (`attiqa datasets biq2021`: "official split");
    FLIVE's and AVA's official splits were followed. Now BIQ2021's too: one run, trained on the training
    file's photos, tested on the test file's (attiqa.bench_splits, torch-free; `attiqa train`'s
    ``finetune.dataset: biq2021`` splits the same way)."""
    from dataset_layouts import biq2021
    from early_checks import check

    from attiqa.bench_setup import bench_dataset
    from attiqa.bench_splits import plan_splits
    from attiqa.datasets import get_dataset

    root = tmp_path / "BIQ2021-main"
    biq2021(root)
    ds = get_dataset("biq2021", root)
    plan = plan_splits("single", [bench_dataset(ds, "biq")], 10, 0, None, "auto", ())
    (sp,) = plan.splits(bench_dataset(ds, "biq"))
    assert sp.kind == "official"
    assert [ds.items[i].split for i in sp.train] == ["train"] * 3
    assert [ds.items[i].split for i in sp.test] == ["test"] * 2
    # the command line plans the same split: a test file of one photo is refused as the official split's
    test_csv = root / "Test (Images and MOS).csv"
    test_csv.write_text("\n".join(test_csv.read_text().splitlines()[:2]) + "\n")
    out = ["-o", str(tmp_path / "bench")]
    check(
        [
            (
                "attiqa.cli",
                ["bench", "single", "-d", f"biq2021={root}", *out],
                "split official (official, seed None) of its 4 images gives 3 to train on and 1 to test on",
            )
        ]
    )
