"""`attiqa eval` on hostile score tables (docs/robustness.md). Each test failed before its fix."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attiqa.errors import AttiqaError
from attiqa.training.data import read_mos_split


@pytest.fixture()
def table_dir(tmp_path: Path) -> Path:
    """Six small noise images of rising brightness in ``tmp/set`` (names with a space, with unicode)."""
    root = tmp_path / "set"
    root.mkdir()
    for i, name in enumerate(["a.jpg", "b c.jpg", "ü 名.png", "d.jpg", "e.jpg", "f.jpg"]):
        arr = np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray((arr * (0.3 + 0.12 * i)).astype(np.uint8)).save(root / name)
    return root


def _eval(cli, root: Path, csv: Path, out: Path):
    return cli("eval", "folder", "--root", root, "--csv", csv, "-m", "classical", "-o", out, "-w", "0", "-q",
               "--no-cache")  # fmt: skip


ROWS = "image,mos\na.jpg,1\nb c.jpg,2\nü 名.png,3\nd.jpg,4\ne.jpg,5\nf.jpg,6\n"


def test_one_image_named_two_ways_is_one_image(table_dir, tmp_path, cli):
    """**Was**: a score table naming one image twice by two paths (``a.jpg`` and ``../set/a.jpg``) counted it
    as two images: `eval` scored it twice into the metrics (n = 7 of 6 images), and with two different
    scores it was not refused; a `finetune.csv` so made could hold the image on both sides of the split.
    Now a row's image is the file its path leads to: the repeat is counted once (said), two scores refused."""
    same = table_dir / "same.csv"
    same.write_text(ROWS + "../set/a.jpg,1\n")
    res = _eval(cli, table_dir, same, tmp_path / "out")
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (
        summary["n"] == 6
        and f"{same}: 1 repeated row(s) (same image, same score) counted once (row 8)" in summary["warnings"]
    )
    other = table_dir / "other.csv"
    other.write_text(ROWS + "../set/a.jpg,5\n")
    res = _eval(cli, table_dir, other, tmp_path / "out2")
    assert res.returncode != 0 and "1 image(s) have two different scores" in res.stderr, res.stderr
    with pytest.raises(AttiqaError, match="listed twice with another MOS"):
        read_mos_split(str(other), "", 0.2, 0)


def test_an_eval_of_one_image_says_why_it_has_no_metrics(table_dir, tmp_path, cli):
    """**Was**: `attiqa eval folder` of a table with one scored image printed a row of "–" and wrote null
    metrics without a word; now a warning says correlations need at least 2 images."""
    one = table_dir / "one.csv"
    one.write_text("image,mos\na.jpg,1\nb c.jpg,\n")
    res = _eval(cli, table_dir, one, tmp_path / "out")
    assert res.returncode == 0, res.stderr
    warned = json.loads((tmp_path / "out" / "summary.json").read_text())["warnings"]
    assert "1 image scored: correlations need at least 2 — evaluate a table of more images" in warned
    assert "correlations need at least 2" in " ".join(res.stderr.split())


def test_an_empty_image_name_says_the_fix(table_dir, tmp_path, cli):
    """**Was**: "t.csv:3: empty image name" — the row named, the way out not; now "— fill it in, or delete the
    row"."""
    bad = table_dir / "t.csv"
    bad.write_text("image,mos\na.jpg,1\n,2\nd.jpg,3\n")
    res = _eval(cli, table_dir, bad, tmp_path / "out")
    assert res.returncode != 0
    assert [x for x in res.stderr.splitlines() if x.startswith("error:")] == [
        f"error: {bad}:3: empty image name — fill it in, or delete the row"
    ]


def test_two_scores_for_one_image_name_the_score_file(table_dir, tmp_path, cli):
    """**Was**: "error: folder (mos): 1 image(s) have two different scores, e.g. …/a.jpg (1 and 5) — fix the
    score file": which file (`--csv` names any) unsaid; now the line starts with it."""
    other = table_dir / "other.csv"
    other.write_text(ROWS + "a.jpg,5\n")
    res = _eval(cli, table_dir, other, tmp_path / "out")
    assert res.returncode != 0
    assert [x for x in res.stderr.splitlines() if x.startswith("error:")] == [
        f"error: {other} (mos): 1 image(s) have two different scores, e.g. {table_dir / 'a.jpg'} "
        "(1 on line 2 and 5 on line 8) — "
        "fix the score file (one row per image)"
    ]


def test_a_name_in_another_unicode_form_finds_its_file(table_dir, tmp_path, cli):
    """**Was**: a table made on macOS (names in NFD: ``u`` + a combining diaeresis) naming ``ü 名.png``, a
    file named in NFC: "ü 名.png: not found", the name shown the file's letter for letter; `eval` stopped,
    and so did `attiqa train` on it as `finetune.csv`. Now the name is read as the disk holds it."""
    nfd = unicodedata.normalize("NFD", ROWS)
    assert nfd != ROWS
    table = table_dir / "mac.csv"
    table.write_text(nfd, encoding="utf-8")
    res = _eval(cli, table_dir, table, tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["n"] == 6
    split = read_mos_split(str(table), str(table_dir), 0.4, 0)
    assert table_dir / "ü 名.png" in split.paths
