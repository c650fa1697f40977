"""Session 56's small command-line defects that are not about torch: ``attiqa datasets`` piped at 80
columns, and ``attiqa bench``'s official split of BIQ2021."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    wide = attiqa("datasets", columns=160)  # a wide terminal keeps the table
    assert wide.returncode == 0 and "┃ name" in wide.stdout, wide.stdout[:500]
