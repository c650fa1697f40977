"""``--group-by`` (and ``finetune.group_by``) read a folder CSV's column by its name in any case, as every
other column is read."""

from __future__ import annotations

import pytest
from PIL import Image

from attiqa.bench_setup import bench_dataset
from attiqa.bench_splits import plan_splits
from attiqa.datasets import get_dataset
from attiqa.errors import AttiqaError


def folder(root):
    root.mkdir()
    for i in range(12):
        Image.new("RGB", (16, 16), (20 * i, 90, 30)).save(root / f"p{i}.png")
    rows = "".join(f"p{i}.png,{i % 5 + 1},{i % 3}\n" for i in range(12))
    (root / "mos.csv").write_text("image,mos,Scene\n" + rows)
    return get_dataset("folder", root)


def test_group_by_mos_in_capitals_is_refused_as_the_score(tmp_path):
    """**Was**: `--group-by MOS` on a `mos` column: "12 of 12 items have no 'MOS' to group by (their
    metadata: Scene, mos)", no hint (a hint is matched by case). Now the column is read: the score being
    learned, refused as `--group-by mos` is."""
    ds = folder(tmp_path / "set")
    b = bench_dataset(ds, "set")
    with pytest.raises(AttiqaError, match="'mos' is the score the model learns"):
        plan_splits("single", [b], 3, 0, None, "MOS", []).splits(b)


def test_group_by_a_column_in_another_case_groups_by_it(tmp_path):
    """`--group-by scene` on a `Scene` column: was "no 'scene' to group by (did you mean 'Scene'?)"; now
    group splits with no scene on both sides."""
    ds = folder(tmp_path / "set")
    b = bench_dataset(ds, "set")
    for sp in plan_splits("single", [b], 3, 0, None, "scene", []).splits(b):
        train = {ds.items[i].meta["Scene"] for i in sp.train}
        test = {ds.items[i].meta["Scene"] for i in sp.test}
        assert sp.kind == "group" and test and not train & test
