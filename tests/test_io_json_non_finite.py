"""Reports are JSON every parser reads: a metric with no value is null, never the bare NaN / Infinity token
json.dumps writes by default (browsers', jq's and strict parsers refuse it)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from PIL import Image, ImageFilter, PngImagePlugin

from attiqa.bench_setup import BenchDataset, bench_dataset
from attiqa.datasets import get_dataset
from attiqa.errors import AttiqaError
from attiqa.io.atomic import json_text
from attiqa.protocols import run_protocol


def strict(text: str) -> object:
    """``text`` as a strict JSON parser reads it: a NaN / Infinity token fails."""

    def refuse(token: str) -> object:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_json_text_writes_null_for_non_finite_floats_and_keeps_finite_ones() -> None:
    doc = {"a": math.nan, "b": [math.inf, -math.inf, 0.1 + 0.2], "c": (1, {"d": math.nan}), "e": "NaN"}
    assert strict(json_text(doc)) == {"a": None, "b": [None, None, 0.1 + 0.2], "c": [1, {"d": None}],
                                      "e": "NaN"}  # fmt: skip


def _folder_set(
    root: Path, label: str, images: list[Image.Image], mos: list[float], pnginfo: bool = False
) -> BenchDataset:
    root.mkdir(parents=True)
    with open(root / "mos.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "mos"])
        for i, (im, m) in enumerate(zip(images, mos, strict=True)):
            info = PngImagePlugin.PngInfo()
            if pnginfo:
                info.add_text("n", str(i))  # other bytes, the same pixels: not merged as a copy
            im.save(root / f"i{i}.png", pnginfo=info)
            w.writerow([f"i{i}.png", m])
    return bench_dataset(get_dataset("folder", root=root), label)


def test_a_cross_bench_tested_on_constant_predictions_writes_null_not_nan(tmp_path: Path, photos) -> None:
    """bench cross tested on a set whose 10 files hold the same pixels (one photo, a text chunk each): the
    model's predictions there are all equal, its SROCC and PLCC undefined — run.json said ``NaN``."""
    base = photos["astronaut"].resize((64, 64))
    blurred = [base.filter(ImageFilter.GaussianBlur(0.4 * i)) for i in range(10)]
    graded = _folder_set(tmp_path / "blur", "g", blurred, [90.0 - 7 * i for i in range(10)])
    same = _folder_set(tmp_path / "same", "s", [base] * 10, [10.0 + 5 * i for i in range(10)], pnginfo=True)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "out_dir: ignored\nfinetune:\n  backbone: tiny\n  pretrained_backbone: false\n  head_hidden: 16\n"
        "  mos_hidden: 16\n  epochs: 1\n  batch_size: 8\n  lr: 0.003\n  resize_shorter: 48\n  crop_size: 40\n"
        "  num_workers: 0\n  device: cpu\n"
    )
    out = tmp_path / "out"
    # training on the constant set is refused (its held-out SROCC is NaN) after the first direction's run
    with pytest.raises(AttiqaError, match="held-out SROCC is NaN"):
        run_protocol("cross", [graded, same], cfg, out, repeats=1, progress=False, cache=False)
    record = strict((out / "cross" / "g" / "split00" / "run.json").read_text())
    assert isinstance(record, dict)
    assert record["cross"]["s"]["srocc"] is None and record["cross"]["s"]["plcc"] is None
    assert record["cross"]["s"]["n"] == 10
    assert math.isfinite(record["srocc"])  # the finite numbers as they were
