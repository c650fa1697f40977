"""Label tables and moved folders: a moved images folder is followed, not labelled again (`attiqa label` and
the runner's label stage); merged rows in their order under the folders given."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attiqa.io.images import discover_images
from attiqa.io.names import order_under
from attiqa.labeling import label_images, label_paths
from attiqa.teachers import create_teacher


def test_a_moved_images_folder_is_followed_not_labelled_again(photo_dir, tmp_path):
    teacher = create_teacher("classical")
    out = tmp_path / "labels.parquet"
    first = label_images(discover_images([photo_dir]), teacher, out, num_workers=0, roots=[photo_dir])
    before = pq.read_table(out)
    moved = tmp_path / "elsewhere" / "photos"
    moved.parent.mkdir()
    photo_dir.rename(moved)
    again = label_images(discover_images([moved]), teacher, out, num_workers=0, roots=[moved])
    assert (again.labelled, again.skipped_done) == (0, first.labelled)  # was: every image labelled again
    after = pq.read_table(out)
    assert all(p.is_relative_to(moved) for p in label_paths(after))
    assert [p.relative_to(moved) for p in label_paths(after)] == [
        p.relative_to(photo_dir) for p in label_paths(before)
    ]
    assert after.drop(["image"]).equals(before.drop(["image"]))  # the very labels, same rows in order
    assert after.schema.metadata == before.schema.metadata


def test_a_moved_folder_of_other_sizes_is_labelled_again(photo_dir, tmp_path):
    """Same names but another file's size under the old place: not the same images."""
    teacher = create_teacher("classical")
    out = tmp_path / "labels.parquet"
    n = label_images(discover_images([photo_dir]), teacher, out, num_workers=0).labelled
    copy = tmp_path / "copy"
    shutil.copytree(photo_dir, copy)
    victim = discover_images([copy])[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    again = label_images(discover_images([copy]), teacher, out, num_workers=0, roots=[copy])
    assert again.labelled == n


def test_label_command_resumes_after_its_folder_moved(photo_dir, tmp_path, cli):
    out = tmp_path / "labels.parquet"
    assert cli("label", photo_dir, "-o", out, "--workers", "0").returncode == 0
    table = pq.read_table(out)
    marked = table.set_column(1, table.schema.field(1), pa.array([0.125] * table.num_rows, pa.float32()))
    pq.write_table(marked, out)  # a value no relabelling gives back: the rows kept are the ones it had
    moved = tmp_path / "moved"
    photo_dir.rename(moved)
    res = cli("label", moved, "-o", out, "--workers", "0")
    assert res.returncode == 0, res.stderr
    table = pq.read_table(out)
    assert all(p.is_relative_to(moved) and p.is_file() for p in label_paths(table))
    assert table.num_rows == len(discover_images([moved]))
    assert table.column(1).to_pylist() == [0.125] * table.num_rows  # was: labelled again


def test_merged_rows_follow_their_roots_not_where_the_folders_are(photo_dir, tmp_path):
    """Two roots whose paths sort the other way round: the rows follow the roots given (the order
    pretraining's order_under expects), as they would wherever the folders were."""
    teacher = create_teacher("classical")
    graded = tmp_path / "a_graded"  # sorts before photos/ by absolute path
    shutil.copytree(photo_dir, graded)
    roots = [photo_dir, graded]
    out = tmp_path / "labels.parquet"
    label_images(discover_images(roots), teacher, out, num_workers=0, roots=roots)
    paths = label_paths(pq.read_table(out))
    assert order_under(paths, roots) == list(range(len(paths)))  # was: graded rows first
    assert paths[0].is_relative_to(photo_dir)


def test_a_rerun_with_nothing_new_keeps_an_earlier_tables_order(photo_dir, tmp_path):
    """A run an earlier version started pretrains in its table's order: a rerun labelling nothing new
    leaves the table as it is."""
    teacher = create_teacher("classical")
    graded = tmp_path / "a_graded"
    shutil.copytree(photo_dir, graded)
    roots = [photo_dir, graded]
    out = tmp_path / "labels.parquet"
    label_images(discover_images(roots), teacher, out, num_workers=0)  # by path: as earlier versions
    before = pq.read_table(out)
    label_images(discover_images(roots), teacher, out, num_workers=0, roots=roots)
    assert pq.read_table(out).equals(before)


def test_a_table_of_the_earlier_version_is_left_as_it_was_by_a_rerun(photo_dir, tmp_path, tiny_dir):
    """A table labelled before the CLIP teacher's weights were hashed (session 51): a rerun with nothing
    new leaves it as it is (was: rewritten with the new hash entries, the rows the earlier version made
    now said to come from weights it never hashed); one adding rows is taken (same teacher by its spec)."""
    import json

    teacher = create_teacher(f"clip:{tiny_dir}", device="cpu")
    paths = discover_images([photo_dir])
    out = tmp_path / "labels.parquet"
    label_images(paths[:3], teacher, out, num_workers=0, roots=[photo_dir])
    table = pq.read_table(out)
    meta = json.loads(table.schema.metadata[b"attiqa_labels"])
    for key in ("weights_sha256", "architecture_sha256", "preprocess"):  # as the earlier version wrote it
        meta["teacher"].pop(key, None)
    old = {b"attiqa_labels": json.dumps(meta).encode()}
    pq.write_table(table.replace_schema_metadata(old), out)
    before = out.read_bytes()
    again = label_images(paths[:3], teacher, out, num_workers=0, roots=[photo_dir])
    assert again.labelled == 0 and out.read_bytes() == before
    more = label_images(paths, teacher, out, num_workers=0, roots=[photo_dir])
    assert more.labelled == len(paths) - 3 and pq.read_table(out).num_rows == len(paths)


def test_train_resume_after_the_images_folder_moved_keeps_the_labels(tmp_path, cli):
    """`attiqa train --resume` after `label.images` moved: the label stage **was** labelling every image
    again (hours with CLIP; labels that differ in a bit made pretraining refuse the table as changed); now it
    rewrites the table's paths and pretraining resumes on the very labels. Labels no teacher run gives back
    (set by hand) tell the two apart."""
    from helpers import LABEL_AND_PRETRAIN, tiny_train_config

    cfg = tiny_train_config(tmp_path)
    images, new = tmp_path / "set" / "images", tmp_path / "new" / "photos"
    table_path = tmp_path / "labels.parquet"
    label_images(discover_images([images]), create_teacher("classical"), table_path, num_workers=0)
    table = pq.read_table(table_path)
    marked = [0.01 * (i + 1) for i in range(table.num_rows)]
    pq.write_table(table.set_column(1, table.schema.field(1), pa.array(marked, pa.float32())), table_path)

    def train(folder, *more):
        sets = ("--set", f"label.images=[{folder}]", "--set", f"label.out={table_path}")
        return cli("train", "--config", cfg, *LABEL_AND_PRETRAIN, *sets, *more)

    assert train(images).returncode == 0
    shutil.copytree(images, new)
    shutil.rmtree(images)
    res = train(new, "--resume", "--set", "pretrain.epochs=2")
    assert res.returncode == 0, res.stderr  # was: refused, the labels changed
    table = pq.read_table(table_path)
    assert table.column(1).to_pylist() == pytest.approx(marked)
    assert all(p.is_relative_to(new) for p in label_paths(table))
