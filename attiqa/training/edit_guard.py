"""Fit the edit guard (:class:`attiqa.models.edit_stats.EditGuard`) onto a fine-tuned ATTIQA model (ours,
issue 20; docs/default_model.md "Stop 27").

The detector is fitted to -1 on the crops of clean photos (the model's own training photos and a pair
table's originals) and +1 on the crops of the table's edits, each crop as the scorer sees it (the model's
five-crop test view, decoded as ``attiqa score`` decodes). Only the pair table's edits whose file name ends
in one of ``kinds`` count (default: every edit), so a table made for the ridge (with degradations and
hue rotations, which no edit statistic can see) can be reused.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import torch

from attiqa.errors import AttiqaError
from attiqa.io.batching import iter_image_batches
from attiqa.models.attiqa_model import AttiqaModel
from attiqa.models.edit_stats import EditGuard, edit_stats
from attiqa.models.transforms import FiveCropTest
from attiqa.training.ridge import fit_edit_guard


def crop_edit_stats(
    model: AttiqaModel, paths: Sequence[Path], workers: int = 0
) -> tuple[torch.Tensor, list[Path]]:
    """(N, crops, 8) edit statistics of the readable ``paths`` on ``model``'s five-crop test view, and the
    files that could not be read (skipped)."""
    sizes = model.input_sizes
    shorter, crop = sizes.get("test_resize_shorter"), int(sizes.get("test_crop") or 320)
    view = FiveCropTest((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), shorter, crop)  # pixels in [0, 1], not normalised
    out: list[torch.Tensor] = []
    bad: list[Path] = []
    for batch in iter_image_batches(paths, view, batch_size=8, num_workers=workers, min_shorter=shorter):
        bad += [Path(e.path) for e in batch.errors]
        if batch.tensor is not None:
            out.append(
                edit_stats(batch.tensor.flatten(0, 1)).view(len(batch.indices), batch.tensor.shape[1], -1)
            )
    if not out:
        raise AttiqaError(f"none of {len(paths)} images could be read for the edit guard")
    return torch.cat(out), bad


def pair_table_images(table: str | Path, kinds: Sequence[str] = ()) -> tuple[list[Path], list[Path]]:
    """The originals (``better`` side) and the edits (``worse`` side, only those named ``*__<kind>.<ext>``
    when ``kinds`` is given) of a ranking-pair CSV; relative paths are taken from the CSV's folder."""
    table = Path(table)
    if not table.is_file():
        raise AttiqaError(
            f"{table}: pair table not found — make one with experiments/generalisation/make_variants.py"
        )
    root = table.resolve().parent
    better: dict[Path, None] = {}
    worse: dict[Path, None] = {}
    with open(table, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not {"better", "worse"} <= set(reader.fieldnames or []):
            raise AttiqaError(f"{table}: a pair table needs columns better,worse")
        for row in reader:
            b, w = (
                Path(row[c]) if Path(row[c]).is_absolute() else root / row[c] for c in ("better", "worse")
            )
            better[b] = None
            if not kinds or any(w.stem.endswith(f"__{k}") for k in kinds):
                worse[w] = None
    if not worse:
        raise AttiqaError(f"{table}: no edits of kinds {', '.join(kinds)} (file names end in __<kind>)")
    return list(better), list(worse)


def add_edit_guard(model: AttiqaModel, clean: Sequence[Path], table: str | Path, lam: float,
                   kinds: Sequence[str] = (), workers: int = 0) -> tuple[EditGuard, dict]:  # fmt: skip
    """Fit the guard on ``clean`` photos + ``table`` and attach it to ``model``; returns it and its card
    entry (counts, and the share of crops where it opens on each side)."""
    if model.mos_head is None:
        raise AttiqaError("the edit guard lowers the MOS: give it a fine-tuned model (with a MOS head)")
    originals, edits = pair_table_images(table, kinds)
    xc, bad_c = crop_edit_stats(model, [*clean, *originals], workers)
    xe, bad_e = crop_edit_stats(model, edits, workers)
    guard = fit_edit_guard(xc.flatten(0, 1), xe.flatten(0, 1), lam)
    model.attach_edit_guard(guard)

    def opened(x: torch.Tensor) -> float:
        return float((guard.detector(x.flatten(0, 1)) > 0).double().mean())

    info = {**guard.card(), "clean_images": len(xc), "edited_images": len(xe), "pairs": str(table),
            "kinds": list(kinds), "unreadable": len(bad_c) + len(bad_e), "open_clean": opened(xc),
            "open_edited": opened(xe)}  # fmt: skip
    return guard, info
