"""A photo replaced under the same path (``cp other.jpg photos/a.jpg``, a folder exported again) between two
runs: its labels, scores and graded copies are made again, said once in one line; the others are kept.
Real files replaced in place, the real commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
from conftest import photo_folder
from helpers import attiqa_cmd, paused_after, run_attiqa

from attiqa.io.file_identity import file_identity
from attiqa.io.label_tables import FILES_KEY


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


def test_score_of_other_photos_keeps_the_row_of_a_replaced_photo_it_does_not_score(tmp_path, photos, cli):
    """**Was**: `score photos/coffee.png -o s.csv` after `astronaut.png` was replaced dropped astronaut's row
    (every recorded row was checked, not the run's inputs) and said "1 photo changed since the earlier run:
    scored again" — but scored nothing: the row lost. Now only the run's own images are checked; the
    replaced photo is scored again by the run that names it."""
    src = photo_folder(tmp_path / "photos", photos, n=2)
    other = photo_folder(tmp_path / "other", photos, n=3) / "chelsea.png"
    out = tmp_path / "s.csv"
    assert cli("score", src, "-m", "classical", "-o", out, "-w", "0", "--quiet").returncode == 0
    before = score_rows(out)
    replace(src / "astronaut.png", other)
    res = cli("score", src / "coffee.png", "-m", "classical", "-o", out, "-w", "0", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "changed" not in res.stderr and score_rows(out) == before
    res = cli("score", src, "-m", "classical", "-o", out, "-w", "0", "--quiet")
    assert "1 photo changed since the earlier run: scored again" in res.stderr
    assert score_rows(out)[str(src / "astronaut.png")] != before[str(src / "astronaut.png")]


def test_score_records_a_photo_replaced_while_it_is_scored_as_it_was_read(tmp_path, photos):
    """**Was**: the identity recorded was taken after scoring: a photo replaced between its reading and its
    row's write had the new file's identity recorded beside the old file's scores, kept for good. Now it
    is taken before any image is read (as `label` does): the next run scores it again. A real process
    paused once it has read the photo."""
    src = photo_folder(tmp_path / "photos", photos, n=1)
    other = photo_folder(tmp_path / "other", photos, n=3) / "chelsea.png"
    out = tmp_path / "s.csv"
    args = ("score", src, "-m", "classical", "-o", out, "-w", "0", "--quiet")
    with paused_after(tmp_path, "attiqa.io.batching:load_image", attiqa_cmd(*args)):
        replace(src / "astronaut.png", other)
    res = run_attiqa(*args)
    assert res.returncode == 0, res.stderr
    assert "1 photo changed since the earlier run: scored again" in res.stderr


def test_genbench_score_records_no_identities_of_its_manifest_names(tmp_path, photos):
    """**Was**: `genbench score` (its rows keyed by the manifest's names, relative to the run folder) had
    each name's identity taken relative to the working directory: a hidden ``scores/.NAME.csv.files``
    of whatever file that was, if any. Its writer is given no inputs now: no record, nothing checked."""
    from attiqa.scoring import ScoreWriter

    out = tmp_path / "scores" / "m.csv"
    out.parent.mkdir()
    writer = ScoreWriter(out, ["score"])
    writer.add([{"image": str(photo_folder(tmp_path / "p", photos, n=1) / "astronaut.png"), "score": 0.5}])
    writer.close()
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.csv"]


def test_pretraining_keeps_no_file_identities_in_its_card_metadata(tmp_path, photos, cli):
    """**Was**: the label table's dataset kept every schema metadata key for the model card, the rows'
    identities too (``attiqa_files``: ~33 MB of JSON in each checkpoint's card at 1M rows). Now left out;
    the teacher's record stays."""
    from attiqa.training.data import PseudoLabelDataset

    src = photo_folder(tmp_path / "photos", photos, n=2)
    table = tmp_path / "labels.parquet"
    assert cli("label", src, "-o", table, "-w", "0").returncode == 0
    assert FILES_KEY in pq.read_schema(table).metadata
    meta = PseudoLabelDataset(table, lambda im: None).metadata
    assert FILES_KEY.decode() not in meta and "attiqa_labels" in meta
