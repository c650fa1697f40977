"""Score files as users hand them to `attiqa eval` (session 40): an absurd MOS, a header naming a column
twice or in two cases, a spreadsheet's ``Image,MOS`` header, and errors that name the line an editor shows
(blank lines, the header and cells quoted over several lines count). The real command, in a fresh process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import run_attiqa


@pytest.fixture()
def folder(tmp_path: Path, photos) -> Path:
    """Six real photos (small) in a folder; the tests write its score CSV."""
    d = tmp_path / "imgs"
    d.mkdir()
    for name, img in list(photos.items())[:3]:
        for k in (1, 2):
            img.resize((40 * k, 40 * k)).save(d / f"{name}{k}.png")
    return d


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def eval_csv(folder: Path, text: str, *extra: str) -> subprocess.CompletedProcess:
    (folder / "mos.csv").write_text(text)
    return run_attiqa(
        "eval", "folder", "--root", folder, "-m", "classical", "-o", folder.parent / "out", "-w", "0", "-q",
        "--no-cache", *extra, env={"COLUMNS": "250"},
    )  # fmt: skip


def one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    return " ".join(res.stderr.split())


def test_csv_option_naming_a_folder_or_a_link_loop(folder, tmp_path):
    rows = [f"{n},{v}" for n, v in zip(names(folder), (40, 55, 60, 70, 20, 65), strict=True)]
    (folder / "mos.csv").write_text("image,mos\n" + "\n".join(rows) + "\n")
    base = ("eval", "folder", "--root", folder, "-m", "classical", "--csv")
    err = one_line_error(run_attiqa(*base, folder))
    # was: "score CSV not found" for a folder that is there
    assert f"{folder}: a folder, not a CSV — pass the score file itself, e.g. {folder / 'mos.csv'}" in err
    os.symlink(tmp_path / "b.csv", tmp_path / "a.csv")
    os.symlink(tmp_path / "a.csv", tmp_path / "b.csv")
    err = one_line_error(run_attiqa(*base, tmp_path / "a.csv"))
    assert f"{tmp_path / 'a.csv'}: a symbolic-link loop" in err and "point it at the score CSV itself" in err
