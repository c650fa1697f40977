"""A photo replaced under the same path (``cp other.jpg photos/a.jpg``, a folder exported again) between two
runs: its labels, scores and graded copies are made again, said once in one line; the others are kept.
Real files replaced in place, the real commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
from conftest import photo_folder

from attiqa.io.file_identity import file_identity
from attiqa.labeling import FILES_KEY


def replace(photo: Path, other: Path) -> None:
    """``cp other photo``: another image's bytes under the same path."""
    before = file_identity(photo)
    shutil.copyfile(other, photo)
    assert file_identity(photo) != before


def test_degrade_remakes_the_graded_copies_of_a_replaced_photo(tmp_path, photos, cli):
    """**Was**: "0 written, 4 already there" — the graded copies of the old photo kept for good; now the
    replaced photo's copies are made again (the others kept) and the rerun says so."""
    src = photo_folder(tmp_path / "photos", photos, n=2)
    other = photo_folder(tmp_path / "other", photos, n=3) / "chelsea.png"
    out = tmp_path / "graded"
    args = ("degrade", src, "-o", out, "--distortions", "gaussian_blur", "--levels", "1")
    assert cli(*args).returncode == 0
    kept = (out / "coffee__gaussian_blur_1.png").read_bytes()
    replace(src / "astronaut.png", other)
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert "1 photo changed since the earlier run: graded again" in res.stderr
    assert "2 written, 2 already there" in res.stderr
    assert (out / "astronaut.png").read_bytes() == other.read_bytes()  # the original copied is the new one
    assert (out / "coffee__gaussian_blur_1.png").read_bytes() == kept
    again = cli(*args)  # the new photo's copies recorded: kept from now on
    assert "0 written, 4 already there" in again.stderr and "changed" not in again.stderr


def test_degrade_folder_of_an_earlier_version_is_kept_as_it_is(tmp_path, photos, cli):
    """A graded folder made before the record (no ``source_files.jsonl``): resumed as before, nothing made
    again; its sources are recorded as they are now, so a later replacement is seen."""
    src = photo_folder(tmp_path / "photos", photos, n=2)
    other = photo_folder(tmp_path / "other", photos, n=3) / "chelsea.png"
    out = tmp_path / "graded"
    args = ("degrade", src, "-o", out, "--distortions", "gaussian_blur", "--levels", "1")
    assert cli(*args).returncode == 0
    (out / "source_files.jsonl").unlink(missing_ok=True)  # as an earlier version left it
    res = cli(*args)
    assert "0 written, 4 already there" in res.stderr and "changed" not in res.stderr
    replace(src / "astronaut.png", other)
    assert "2 written, 2 already there" in cli(*args).stderr


def label_rows(table: Path) -> dict[str, list[float]]:
    t = pq.read_table(table)
    cols = [c for c in t.column_names if c != "image"]
    return {
        Path(im).name: [t.column(c)[i].as_py() for c in cols]
        for i, im in enumerate(t.column("image").to_pylist())
    }


def test_label_labels_a_replaced_photo_again(tmp_path, photos, cli):
    """**Was**: "none done now, 3 kept from an earlier run" — the old photo's labels kept under the new
    photo's path; now that photo is labelled again (its row the new photo's labels), said once."""
    src = photo_folder(tmp_path / "photos", photos, n=2)
    other = photo_folder(tmp_path / "other", photos, n=3) / "chelsea.png"
    table = tmp_path / "labels.parquet"
    args = ("label", src, "-o", table, "-w", "0")
    assert cli(*args).returncode == 0
    fresh = tmp_path / "fresh.parquet"
    assert cli("label", other, "-o", fresh, "-w", "0").returncode == 0
    before = label_rows(table)
    replace(src / "astronaut.png", other)
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert "1 photo changed since the earlier run: labelled again" in res.stderr
    after = label_rows(table)
    assert after["astronaut.png"] == label_rows(fresh)["chelsea.png"] != before["astronaut.png"]
    assert after["coffee.png"] == before["coffee.png"]
    assert "changed" not in cli(*args).stderr  # the new labels are recorded with the new photo's identity


def test_label_table_of_an_earlier_version_resumes_as_before(tmp_path, photos, cli):
    """A table written before identities were recorded (no ``attiqa_files`` metadata): every row kept on a
    rerun, nothing labelled again, no crash."""
    src = photo_folder(tmp_path / "photos", photos, n=2)
    other = photo_folder(tmp_path / "other", photos, n=3) / "chelsea.png"
    table = tmp_path / "labels.parquet"
    args = ("label", src, "-o", table, "-w", "0")
    assert cli(*args).returncode == 0
    t = pq.read_table(table)
    meta = {k: v for k, v in t.schema.metadata.items() if k != FILES_KEY}
    pq.write_table(t.replace_schema_metadata(meta), table)  # as an earlier version wrote it
    before = label_rows(table)
    replace(src / "astronaut.png", other)
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert "none done now, 2 kept" in res.stderr and "changed" not in res.stderr
    assert label_rows(table) == before


def score_rows(out: Path) -> dict[str, str]:
    return {line.split(",", 1)[0]: line.split(",", 1)[1] for line in out.read_text().splitlines()[1:]}


def test_score_scores_a_replaced_photo_again(tmp_path, photos, cli):
    """**Was**: "resuming: 2 image(s) already in s.csv, 0 to score" — the old photo's row kept under the
    new photo's path; now that row is dropped and the photo scored again, said once; the file's columns
    are as before (the identities are in a hidden record beside it)."""
    src = photo_folder(tmp_path / "photos", photos, n=2)
    other = photo_folder(tmp_path / "other", photos, n=3) / "chelsea.png"
    out = tmp_path / "s.csv"
    args = ("score", src, "-m", "classical", "-o", out, "-w", "0", "--quiet")
    assert cli(*args).returncode == 0
    fresh = tmp_path / "fresh.csv"
    assert cli("score", other, "-m", "classical", "-o", fresh, "-w", "0", "--quiet").returncode == 0
    before = score_rows(out)
    header = out.read_text().splitlines()[0]
    replace(src / "astronaut.png", other)
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert "1 photo changed since the earlier run: scored again" in res.stderr
    after = score_rows(out)
    assert len(after) == 2 and out.read_text().splitlines()[0] == header
    assert after[str(src / "astronaut.png")] == next(iter(score_rows(fresh).values()))
    assert after[str(src / "coffee.png")] == before[str(src / "coffee.png")]
    assert "changed" not in cli(*args).stderr


def test_score_file_of_an_earlier_version_resumes_as_before(tmp_path, photos, cli):
    """A score file written before identities were recorded (no hidden ``.s.csv.files``): resumed as
    before, every row kept, no crash."""
    src = photo_folder(tmp_path / "photos", photos, n=2)
    other = photo_folder(tmp_path / "other", photos, n=3) / "chelsea.png"
    out = tmp_path / "s.csv"
    args = ("score", src, "-m", "classical", "-o", out, "-w", "0", "--quiet")
    assert cli(*args).returncode == 0
    (tmp_path / ".s.csv.files").unlink(missing_ok=True)  # as an earlier version left it
    before = out.read_text()
    replace(src / "astronaut.png", other)
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert "2 image(s) already in" in res.stderr and "changed" not in res.stderr
    assert out.read_text() == before


def test_make_distorted_remakes_the_images_of_a_replaced_photo(tmp_path, photos, cli):
    """**Was**: "0 written, 4 already there" — every round's mix of the old photo kept, labelled as the
    new photo's; now that photo's images are made again (the other's kept), said once."""
    src = photo_folder(tmp_path / "photos", photos, n=2)
    other = photo_folder(tmp_path / "other", photos, n=3) / "chelsea.png"
    out = tmp_path / "md"
    args = ("make-distorted", src, "-o", out, "--rounds", "2", "--distortions", "gaussian_blur")
    assert cli(*args).returncode == 0
    images = sorted((out / "images").rglob("*.png"))
    before = {p: p.read_bytes() for p in images}
    replace(src / "astronaut.png", other)
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert "1 photo changed since the earlier run: distorted again" in res.stderr
    assert "2 written, 2 already there" in res.stderr
    remade = {p for p in images if p.read_bytes() != before[p]}
    assert remade == {p for p in images if "astronaut" in p.name} and len(remade) == 2
    assert "0 written, 4 already there" in cli(*args).stderr
