"""Whether a file is a label table pretraining can read, from its Parquet footer: here, with pyarrow and
no torch, so a run config's ``labels:`` is checked before the model stack loads (:mod:`attiqa.labeling`
writes and reads the tables)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

FILES_KEY = b"attiqa_files"
"""The schema metadata key of a label table's rows' file identities (a JSON list in row order, one per
row: :mod:`attiqa.labeling`). Only the labelling's resume reads it: pretraining leaves it out of the
table's metadata it keeps for the model card (a 1M-row table's list is ~33 MB)."""


def label_table_problem(path: Path) -> str | None:
    """Why pretraining cannot read ``path`` as its label table — not Parquet, no ``image`` column, no label
    column, fewer than 2 rows — or None; from the footer alone, so a run config is checked before any work."""
    try:
        meta = pq.read_metadata(path)
    except Exception as exc:  # noqa: BLE001
        return f"not Parquet: {exc}"
    names = meta.schema.to_arrow_schema().names
    if "image" not in names:
        return f"a Parquet table without an 'image' column: {names[:6]}"
    if len(names) < 2:
        return "a Parquet table with no label column besides 'image'"
    if meta.num_rows < 2:
        return f"{meta.num_rows} row(s) — ranking needs at least 2 images"
    return None
