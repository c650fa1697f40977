"""The scoring path, the process group and the scorers (docs/robustness.md). Every fixture is generated here
(real photos of scikit-image, the tiny backbone); each test failed before its fix."""

from __future__ import annotations

import pytest
from helpers import run_attiqa

UNREADABLE_SCRIPT = """
import os
import sys
from pathlib import Path

import torch

from attiqa import sharding
from attiqa.training import distributed as D
from attiqa.training.data import ImageTableDataset, unreadable_report

gathers = []  # calls of sharding.gather_objects, seen by a profile hook (nothing is replaced)
code = sharding.gather_objects.__code__
sys.setprofile(lambda f, e, a: gathers.append(1) if e == "call" and f.f_code is code else None)
with D.process_group():
    for meets in (False, True):
        before = len(gathers)
        with unreadable_report(f"stage{int(meets)}"):
            ds = ImageTableDataset([Path(sys.argv[1])], torch.zeros(1), lambda im: im, on_error="skip")
            if meets and D.rank() == 1:
                assert ds[0] is None
        # one write per line: two ranks' print()s (text, then its newline) met on one line under load
        os.write(1, f"rank {D.rank()}: stage{int(meets)} gathered {len(gathers) - before}\\n".encode())
"""


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_torchrun_unreadable_count_gathers_names_only_when_a_rank_met_one(tmp_path):
    """`UnreadableImages.finish` under torchrun (2 processes, gloo). **Was**: every rank's list of unreadable
    paths gathered at the end of every stage, also when no rank met one. Now the ranks agree on a flag
    first (one all-reduce) and gather names only when some rank has any; the count said is the same."""
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(b"\\xff\\xd8\\xff not a whole jpeg")
    script = tmp_path / "unreadable.py"
    script.write_text(UNREADABLE_SCRIPT)
    res = run_attiqa(bad, ranks=2, script=script, env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    said = [" ".join(x.split()) for x in (res.stdout + res.stderr).splitlines()]
    assert {x for x in said if "gathered" in x} == {
        "rank 0: stage0 gathered 0",
        "rank 1: stage0 gathered 0",
        "rank 0: stage1 gathered 1",
        "rank 1: stage1 gathered 1",
    }, said
    counts = [x for x in said if "unreadable image" in x]
    assert counts == ["stage1: 1 unreadable image skipped (listed above)"], said
    assert [x.split(": ")[0] for x in said if "skipped" in x and str(bad) in x] == ["rank 1"]


def test_eval_folder_says_a_training_fit_when_the_table_holds_the_models_training_ends(tmp_path, photos):
    """`attiqa eval folder --root ../shared/data/clive-dev --model attiqa-default` printed its SROCC as if
    held out, while `attiqa eval clive` says the model was trained on those images. Now a table holding both
    ends of the model's training MOS range (its card's ``mos_range``: 3.4976 and 91.4362, two clive-dev
    photos) gets the warning too, on screen and in summary.json; a table without them (one end off by 1e-4)
    does not."""
    import json

    from typer.testing import CliRunner

    from attiqa.cli.app import app

    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    for name, img in photos.items():
        img.resize((img.width // 4, img.height // 4)).save(root / "images" / f"{name}.png")
    names = sorted(photos)
    said = {}
    for low in ("3.4976", "3.4977"):
        mos = [low, "91.4362", "40.5", "55.25", "70.125"]
        rows = "".join(f"{n}.png,{m}\n" for n, m in zip(names, mos, strict=True))
        (root / "mos.csv").write_text("image,mos\n" + rows)
        out = tmp_path / f"ev{low}"
        res = CliRunner().invoke(
            app,
            ["eval", "folder", "--root", str(root), "-m", "attiqa-default", "-w", "0", "-q", "-o", str(out)],
        )
        assert res.exit_code == 0, res.output
        warnings = json.loads((out / "summary.json").read_text())["warnings"]
        said[low] = (" ".join(res.output.split()), [w for w in warnings if "trained on" in w])
    text, warned = said["3.4976"]
    assert warned == [
        "attiqa-default was trained on images of this table: it holds the two images that bound the MOS it "
        "was trained on (3.4976 and 91.4362) — on the images it was fitted to these metrics are its training "
        "fit, not a held-out figure"
    ]
    assert warned[0] in text
    assert said["3.4977"][1] == [] and "trained on" not in said["3.4977"][0]


def test_score_json_says_the_scale_of_its_scores_and_the_csv_is_unchanged(tmp_path, photos):
    """**Was**: `attiqa score photo.png --out scores.json` named the scorer but not the scale of its numbers
    (`attiqa-default`'s MOS 0–100; another model's 0–5 or 0–1): a consumer had to know the model. Now the
    JSON's ``scorer`` block holds ``score_range`` and ``higher_is_better``; the CSV keeps its columns."""
    import json

    from typer.testing import CliRunner

    from attiqa.cli.app import app

    img = tmp_path / "coffee.png"
    photos["coffee"].resize((200, 133)).save(img)
    for out in (tmp_path / "s.json", tmp_path / "s.csv"):
        res = CliRunner().invoke(
            app, ["score", str(img), "-m", "attiqa-default", "-w", "0", "-q", "-o", str(out)]
        )
        assert res.exit_code == 0, res.output
    scorer = json.loads((tmp_path / "s.json").read_text())["scorer"]
    assert scorer["name"] == "attiqa-default"
    assert (scorer["score_range"], scorer["higher_is_better"]) == ([0.0, 100.0], True)
    header = (tmp_path / "s.csv").read_text().splitlines()[0]
    assert header == "image,mos,sharpness,contrast,brightness,colorfulness,noisiness"
