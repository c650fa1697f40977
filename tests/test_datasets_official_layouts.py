"""Each named dataset laid out as its OFFICIAL download is: file names, headers, sheets, .mat variables and
folders as the release (or, where noted, its authors' README) has them, with a few tiny generated images. The
adapter reads it, `attiqa eval NAME --root ROOT -m classical` runs on it end to end, and a copy whose images
are not unpacked is refused in one line saying which archive to unpack where.

Evidence for each layout is in the adapter's docstring."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
from dataset_layouts import LAYOUTS, agiqa3k, tid2013

from attiqa.bench_splits import group_keys, merge_copies
from attiqa.datasets import DATASETS, get_dataset


def test_every_named_dataset_has_an_official_layout_here():
    assert {name for name, _ in LAYOUTS.values()} == set(DATASETS) - {"folder"}


@pytest.mark.parametrize("case", list(LAYOUTS))
def test_the_adapter_reads_the_official_layout(case, tmp_path):
    """Item count, scale and direction, splits, and the groups of a content-disjoint split."""
    name, build = LAYOUTS[case]
    want = build(tmp_path)
    ds = get_dataset(name, tmp_path)
    assert len(ds) == want.n and ds.n_without_score == 0
    ds.check_images()  # every image of the score file is where the adapter looks
    lo, hi = ds.info.mos_range
    assert all(lo <= x.raw <= hi and lo <= x.mos <= hi for x in ds)
    assert Counter(x.split for x in ds) == Counter(want.splits or {None: want.n})
    keys = group_keys(ds, "auto")
    assert (None if keys is None else len(set(keys))) == want.groups
    if want.check is not None:
        want.check(ds)


@pytest.mark.parametrize("case", list(LAYOUTS))
def test_a_layouts_images_are_distinct_so_its_groups_split_apart(case, tmp_path):
    """No two listed images are the same bytes, so a content-disjoint split keeps every group apart
    (copies share a side: :func:`attiqa.bench_splits.merge_copies`). **Was**: KADID-10k's fixture repeated
    images across references (two of its three groups one) and PIPAL's every image of one reference as
    another's."""
    name, build = LAYOUTS[case]
    want = build(tmp_path)
    ds = get_dataset(name, tmp_path)
    assert len({x.image.read_bytes() for x in ds}) == len(ds)
    groups, copies = merge_copies(ds, group_keys(ds, "auto"))
    assert copies == 0 and (None if groups is None else len(set(groups))) == want.groups


@pytest.mark.parametrize("case", list(LAYOUTS))
def test_eval_runs_end_to_end_on_the_official_layout(case, tmp_path, cli):
    name, build = LAYOUTS[case]
    root = tmp_path / "data"
    root.mkdir()
    want = build(root)
    out = tmp_path / "out"
    res = cli("eval", name, "--root", root, "-m", "classical", "-o", out, "-w", "0", "-q", "--no-cache")
    assert res.returncode == 0, res.stderr
    with open(out / "predictions.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == want.n
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == want.n and summary["dataset"] == name
    assert (out / "scatter.png").stat().st_size > 0


@pytest.mark.parametrize("case", [c for c in LAYOUTS if LAYOUTS[c][1] not in (agiqa3k,)])
def test_a_half_downloaded_dataset_is_one_line_naming_the_archive(case, tmp_path, cli):
    """Score file present, image archive not unpacked: **was** "N of N images are missing or unreadable"
    with five paths and the whole layout (and "--skip-missing", which would leave nothing); now one line
    saying none is there and which archive goes where."""
    import shutil

    name, build = LAYOUTS[case]
    want = build(tmp_path)
    for d in want.image_dirs:
        shutil.rmtree(tmp_path / d)
    res = cli("eval", name, "--root", tmp_path, "-m", "classical", "-o", tmp_path / "out", "-w", "0", "-q")
    assert res.returncode == 2, res.stderr
    said = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(said) == 1 and f"none of the {want.n} images" in said[0] and want.fix in said[0], said
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_the_half_downloaded_line_in_a_real_process(tmp_path):
    """The same, as a user's shell gets it: exit code 2 and one line on stderr."""
    import shutil

    from helpers import run_attiqa

    want = tid2013(tmp_path)
    shutil.rmtree(tmp_path / "distorted_images")
    res = run_attiqa("eval", "tid2013", "--root", tmp_path, "-m", "classical", "-q", env={"COLUMNS": "200"})
    said = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(said) == 1, res.stderr
    assert f"none of the {want.n} images listed in mos_with_names.txt" in said[0] and "tid2013.rar" in said[0]
