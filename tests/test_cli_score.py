"""`attiqa score` as a user runs it: folders, bad files, CSV/JSON output, exit codes, one-line errors."""

from __future__ import annotations

import csv
import json

from helpers import run_attiqa

from attiqa.attributes import ATTRIBUTES


def test_help_explains_commands(cli):
    res = cli("--help")
    assert res.returncode == 0
    for cmd in ("label", "train", "score", "models"):
        assert cmd in res.stdout
    assert "five attribute" in cli("score", "--help").stdout


def test_score_folder_with_a_bad_file(photo_dir, tmp_path):
    (photo_dir / "sub" / "zero.png").write_bytes(b"")
    out, sheet = tmp_path / "scores.csv", tmp_path / "sheet.png"
    res = run_attiqa(
        "score", photo_dir, "--model", "classical", "--out", out, "--workers", "0", "--sheet", sheet
    )
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5 and list(rows[0]) == ["image", "score", *ATTRIBUTES]
    assert all(0 <= float(r[a]) <= 1 for r in rows for a in ATTRIBUTES)
    assert "zero.png" in res.stderr and "skipped 1" in res.stderr and "Traceback" not in res.stderr
    assert "5 image(s) scored" in res.stdout
    from PIL import Image

    with Image.open(sheet) as im:  # 4 photos per row, 2 rows
        assert im.format == "PNG" and im.width > im.height > 0


def test_score_json(photo_dir, tmp_path, cli):
    out = tmp_path / "s.json"
    assert cli("score", photo_dir, "-m", "classical", "-o", out, "-q").returncode == 0
    doc = json.loads(out.read_text())
    assert doc["columns"][0] == "image" and len(doc["results"]) == 5 and doc["failed"] == []


def test_errors_are_one_line(tmp_path, cli):
    bad = tmp_path / "x.txt"
    bad.write_text("no")
    res = cli("score", bad, "-m", "classical")
    assert res.returncode == 2 and "no image could be scored" in res.stderr and "Traceback" not in res.stderr
    res = cli("score", tmp_path / "missing.jpg", "-m", "classical")
    assert res.returncode == 2 and "missing.jpg" in res.stderr and "Traceback" not in res.stderr
    res = cli("score", bad, "-m", "clasical")
    assert res.returncode == 2 and "did you mean 'classical'" in res.stderr
    res = cli("score", bad, "-m", "classical", "-o", tmp_path / "out.xlsx")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_models_lists_metadata(cli):
    res = cli("models")
    assert res.returncode == 0 and "classical" in res.stdout and "range" in res.stdout
