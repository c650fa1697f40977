"""Session 48's pass over the scoring path, the process group and the scorers (docs/robustness.md). Every
fixture is generated here (real photos of scikit-image, the tiny backbone); each test failed before its
fix."""

from __future__ import annotations

import pytest
from helpers import run_attiqa

UNREADABLE_SCRIPT = """
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
        print(f"rank {D.rank()}: stage{int(meets)} gathered {len(gathers) - before}", flush=True)
"""


@pytest.mark.slow
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
