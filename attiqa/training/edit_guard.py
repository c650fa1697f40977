"""Fit the edit guard (:class:`attiqa.models.edit_stats.EditGuard`) onto a fine-tuned ATTIQA model (ours,
issue 20; docs/default_model.md "Stop 27").

The guard is fitted on clean photos only — the model's own training photos and a pair table's originals —
each crop as the scorer sees it (the model's five-crop test view, decoded as ``attiqa score`` decodes): the
range of unedited photos per statistic. The table's edits are only measured (the share of their crops the
guard penalises), never fitted; ``lam`` is the user's (the shipped one was chosen on training pairs).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from attiqa.errors import AttiqaError
from attiqa.io.batching import iter_image_batches
from attiqa.models.attiqa_model import AttiqaModel
from attiqa.models.edit_stats import GUARD_NAMES, EditGuard, edit_stats, hue_histogram
from attiqa.models.transforms import FiveCropTest
from attiqa.training.ridge import fit_edit_guard


def crop_pixels(model: AttiqaModel) -> FiveCropTest:
    """``model``'s five-crop test view with pixels in [0, 1] (not normalised)."""
    sizes = model.input_sizes
    return FiveCropTest((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), sizes.get("test_resize_shorter"),
                        int(sizes.get("test_crop") or 320))  # fmt: skip


def crop_edit_stats(
    model: AttiqaModel, paths: Sequence[Path], workers: int = 0
) -> tuple[torch.Tensor, torch.Tensor, list[Path]]:
    """(N, crops, 8) edit statistics and (N, crops, 36) hue histograms of the readable ``paths`` on
    ``model``'s five-crop test view, and the files that could not be read (skipped)."""
    view = crop_pixels(model)
    stats: list[torch.Tensor] = []
    hues: list[torch.Tensor] = []
    bad: list[Path] = []
    for batch in iter_image_batches(paths, view, batch_size=8, num_workers=workers,
                                    min_shorter=view.resize_shorter):  # fmt: skip
        bad += [Path(e.path) for e in batch.errors]
        if batch.tensor is not None:
            n, crops = batch.tensor.shape[:2]
            flat = batch.tensor.flatten(0, 1)
            stats.append(edit_stats(flat).view(n, crops, -1))
            hues.append(hue_histogram(flat).view(n, crops, -1))
    if not stats:
        raise AttiqaError(f"none of {len(paths)} images could be read for the edit guard")
    return torch.cat(stats), torch.cat(hues), bad


def pair_table_images(table: str | Path) -> tuple[list[Path], list[Path]]:
    """The originals (``better`` side) and the edits (``worse`` side) of a ranking-pair CSV; relative paths
    are taken from the CSV's folder."""
    table = Path(table)
    if not table.is_file():
        raise AttiqaError(f"{table}: pair table not found (CSV better,worse; experiments/generalisation/"
                          "make_variants.py makes one)")  # fmt: skip
    root = table.resolve().parent
    better: dict[Path, None] = {}
    worse: dict[Path, None] = {}
    with open(table, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not {"better", "worse"} <= set(reader.fieldnames or []):
            raise AttiqaError(f"{table}: a pair table needs columns better,worse")
        for row in reader:
            better[root / row["better"]] = None  # an absolute path stays itself
            worse[root / row["worse"]] = None
    return list(better), list(worse)


def add_edit_guard(
    model: AttiqaModel, clean: Sequence[Path], lam: float, table: str | Path | None = None,
    names: Sequence[str] = GUARD_NAMES, workers: int = 0,
) -> tuple[EditGuard, dict[str, Any]]:  # fmt: skip
    """Fit the guard on ``clean`` photos (+ ``table``'s originals) and attach it to ``model``; returns it and
    its card entry (counts, and the share of crops and of images it penalises on each side)."""
    if model.mos_head is None:
        raise AttiqaError("the edit guard lowers the MOS: give it a fine-tuned model (with a MOS head)")
    originals, edits = pair_table_images(table) if table is not None else ([], [])
    photos = list(dict.fromkeys([*clean, *originals]))
    if not photos:
        raise AttiqaError("the edit guard needs clean photos: --clean-csv and/or --pairs (its originals)")
    sc, hc, bad = crop_edit_stats(model, photos, workers)
    view = crop_pixels(model)
    guard = fit_edit_guard(sc.flatten(0, 1), hc.flatten(0, 1), view.crop_size**2, lam, names)
    model.attach_edit_guard(guard)

    def penalised(stats: torch.Tensor, hue: torch.Tensor) -> float:
        return float((guard.excess(guard.combine(stats, hue).flatten(0, 1)) > 0).double().mean())

    info: dict[str, Any] = {**guard.card(), "clean_images": len(sc), "unreadable": len(bad),
                            "penalised_clean_crops": penalised(sc, hc)}  # fmt: skip
    if edits:
        se, he, bad_e = crop_edit_stats(model, edits, workers)
        info.update(edited_images=len(se), penalised_edited_crops=penalised(se, he))
        info["unreadable"] += len(bad_e)
    return guard, info
