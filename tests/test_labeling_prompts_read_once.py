"""`attiqa label --prompts F` reads F once."""

from __future__ import annotations

import shutil

from helpers import opens_of


def test_label_reads_its_prompts_file_once(tmp_path, photo_dir, tiny_dir, cli):
    """**Was**: `attiqa label photos -t clip:FOLDER --prompts F` read F in the command's check (to say a bad
    file before torch loads) and again in the CLIP teacher; now the check's reading is handed to the
    teacher, and the labels are made with it."""
    from attiqa.teachers.prompts import default_prompts_path

    prompts = tmp_path / "mine.json"
    shutil.copy(default_prompts_path(), prompts)
    out = tmp_path / "labels.parquet"
    with opens_of(prompts) as opened:
        res = cli("label", photo_dir, "-t", f"clip:{tiny_dir}", "--prompts", prompts, "-o", out, "-b", "4")
    assert res.returncode == 0, res.stdout + res.stderr
    assert out.exists()
    assert len(opened) == 1, opened  # the check read it; the teacher was handed that reading

    from attiqa.labeling import read_label_metadata

    teacher = read_label_metadata(out)["teacher"]  # the table still names the file its prompts came from
    assert teacher["prompts_file"] == str(prompts) and teacher["prompts_sha256"], teacher
