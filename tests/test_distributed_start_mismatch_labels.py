"""A fresh torchrun pretraining whose processes read different label tables (each machine its own copy of the
labels file) — one line per process, naming the file, before any training. Real torchrun, 2 processes, gloo;
each process in its own folder, as if on another machine."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dist_helpers import equal_columns, labelled, per_rank_run


def one_column_less(path) -> None:
    """The table at ``path`` without its noisiness column (a teacher run with four attributes)."""
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["noisiness"]), path)


def other_value(path) -> None:
    """The table at ``path`` with one image's sharpness label changed (a copy labelled again elsewhere)."""
    table = pq.read_table(path)
    col = table.column_names.index("sharpness")
    values = table.column("sharpness").to_pylist()
    values[0] = values[0] + 0.25
    pq.write_table(table.set_column(col, "sharpness", pa.array(values, table.schema.field(col).type)), path)


@pytest.mark.slow
@pytest.mark.parametrize("change", ["heads", "labels", "fewer heads, not cached"])
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_a_fresh_pretraining_on_different_label_tables_is_one_line_per_rank(tmp_path, photos, change):
    """`torchrun --nproc_per_node 2 -m attiqa.cli train -c run.yaml` (fresh: no run folder) where rank 1's
    `labels/labels.parquet` holds two columns in the other order (its heads differ) or one other label.
    **Was**: the heads' case a DDP traceback (the processes' models differ), the labels' case trained on
    without a word, each process on its own targets. Now each process says, as itself, that its table is
    not the other's, naming the file; both end before any training."""
    two = dict(sorted(photos.items())[:2])
    for r in (0, 1):
        labelled(tmp_path / f"rank{r}", two, readable=4)  # the same table on both machines
        table = tmp_path / f"rank{r}" / "labels" / "labels.parquet"
        if change == "heads":
            equal_columns(table, swap=r == 1)
        elif change == "labels" and r == 1:
            other_value(table)
        elif r == 1:  # the network's own pretraining under DDP, its models of other shapes on the two
            one_column_less(table)
            run_yaml = tmp_path / f"rank{r}" / "run.yaml"
            run_yaml.write_text(run_yaml.read_text().replace(", feature_cache: true", ""))
        if r == 0 and change.endswith("not cached"):
            run_yaml = tmp_path / f"rank{r}" / "run.yaml"
            run_yaml.write_text(run_yaml.read_text().replace(", feature_cache: true", ""))
    res, ours, errors = per_rank_run(tmp_path, "train", "-c", "run.yaml")
    assert res.returncode != 0, res.stderr[-3000:]
    assert sorted(e[: len("error: rank 0 of 2: ")] for e in errors) == [
        "error: rank 0 of 2: ",
        "error: rank 1 of 2: ",
    ], res.stderr[-3000:]
    for e in errors:
        assert "labels/labels.parquet" in e and "the same" in e, e
    assert "Traceback" not in ours, ours
    for r in (0, 1):
        assert not (tmp_path / f"rank{r}" / "run" / "pretrain" / "last.safetensors").exists()
