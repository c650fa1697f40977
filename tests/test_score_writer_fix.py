"""``ScoreWriter``'s messages end with their caller's fix: ``attiqa score``'s "choose another --out" (with "or
delete it" where deleting helps), or genbench's "delete it to score METRIC again" (genbench has no ``--out``).
**Was**: genbench cut ``attiqa score``'s message at " — " to replace its advice."""

from __future__ import annotations

import json
import os
import sys

import pytest
from genbench_helpers import make_photo_run

from attiqa.errors import AttiqaError
from attiqa.scoring import ScoreWriter
from genbench.manifest import load_pairs
from genbench.metric_scoring import score_run

COLS = ("mos", "sharpness")


def _damage(out, case: str) -> dict:
    """Leave ``out`` (and its hidden files) in the state ``case`` names; the writer's arguments for it."""
    kwargs: dict = {}
    if case == "other scorer":
        out.write_text("image,score\nx.png,1\n")
    elif case == "not a score file":
        out.write_text("name,mos\nx.png,1\n")
    elif case == "bad row":
        out.write_text("image,mos,sharpness\nx.png,oops,1\n")
    elif case == "bad json":
        out = out.with_suffix(".json")
        out.write_text("{oops")
    elif case == "other weights":
        out.write_text("image,mos,sharpness\nx.png,1,2\n")
        out.with_name(f".{out.name}.scorer.json").write_text(json.dumps({"name": "a", "crops": None}))
        kwargs["identity"] = {"name": "b", "crops": None}
    elif case == "unreadable journal":  # another rank's journal that cannot be read
        out.write_text("image,mos,sharpness\n")
        out.with_name(f".{out.name}.rank1.partial.csv").mkdir()
        kwargs.update(rank=0, world_size=2)
    return {"out": out, **kwargs}


CASES = {
    "other scorer": "{out}: exists with columns ['score'], not this scorer's ['mos', 'sharpness'] — {fix}",
    "not a score file": "{out}: exists but is not a score file of `attiqa score` — {fix}",
    "bad row": "{out}: line 2 is not a row of scores — {fix}",
    "bad json": "{out}: exists but is not a score file of `attiqa score` (JSONDecodeError) — {fix}",
    "other weights": "{out}: holds scores of a, not of b — {fix}",
    "unreadable journal": "{journal}: cannot be read (Is a directory) — {fix}",
}
ATTIQA_FIX = {  # `attiqa score`'s texts, as they were before the fix became an argument
    "other scorer": "choose another --out or delete it",
    "not a score file": "choose another --out",
    "bad row": "choose another --out, or delete it to score again",
    "bad json": "choose another --out or delete it",
    "other weights": "choose another --out, or delete it to score again",
    "unreadable journal": "choose another --out",
}


@pytest.mark.parametrize("case", CASES)
def test_each_caller_names_its_own_fix(tmp_path, case):
    for fix in (None, "delete it to score classical again"):
        folder = tmp_path / ("attiqa" if fix is None else "genbench")
        folder.mkdir(exist_ok=True)
        kwargs = _damage(folder / "s.csv", case)
        out = kwargs["out"]
        before = out.read_bytes()
        with pytest.raises(AttiqaError) as err:
            ScoreWriter(columns=COLS, **kwargs, **({} if fix is None else {"fix": fix}))
        journal = out.with_name(f".{out.name}.rank1.partial.csv")
        want = CASES[case].format(out=out, journal=journal, fix=fix or ATTIQA_FIX[case])
        assert str(err.value) == want
        assert out.read_bytes() == before  # refused, not rewritten


def test_genbench_score_names_its_fix_and_scores_the_other_metrics(tmp_path, photos):
    run = make_photo_run(tmp_path / "run", photos)
    pairs = load_pairs(run)
    assert score_run(run, pairs, "classical", num_workers=0).scored == 10
    scores = run / "scores" / "classical.csv"
    lines = scores.read_text().splitlines(keepends=True)
    scores.write_text("".join([lines[0], lines[1].split(",")[0] + ",x\n", *lines[2:]]))
    report = score_run(run, pairs, "classical", num_workers=0)
    assert report.error == f"{scores}: line 2 is not a row of scores — delete it to score classical again"
    assert report.scored == 0 and scores.read_text().splitlines()[1].endswith(",x")  # nothing overwritten


_OPENS: list[tuple[str, str]] | None = None  # (path, mode) of every open() while a test listens


def _record_open(event: str, args: tuple) -> None:
    if event == "open" and _OPENS is not None and isinstance(args[0], str | bytes | os.PathLike):
        _OPENS.append((os.fsdecode(args[0]), str(args[1])))


sys.addaudithook(_record_open)  # an audit hook stays for the process; it records only while _OPENS is a list


def test_genbench_score_reads_a_metric_s_scores_once(tmp_path, photos):
    """**Was** (session 44's review): a rerun of ``genbench score`` read ``scores/METRIC.csv`` three times —
    its header, then the writer's resume, then the whole file again through the CSV reader. Now the writer
    reads it once and hands its rows over; a file of another scorer is still scored again from scratch, a
    row with an extra cell still refused. Counted with a real audit hook on ``open`` (Python's own event)."""
    global _OPENS
    run = make_photo_run(tmp_path / "run", photos)
    pairs = load_pairs(run)
    assert score_run(run, pairs, "classical", num_workers=0).scored == 10
    scores = run / "scores" / "classical.csv"
    lines = scores.read_text().splitlines(keepends=True)
    scores.write_text("".join(lines[:-2]))  # two images left to score
    _OPENS = []
    try:
        report = score_run(run, pairs, "classical", num_workers=0)
        reads = [mode for path, mode in _OPENS if path == str(scores) and "r" in mode]
    finally:
        _OPENS = None
    assert (report.scored, report.kept) == (2, 8)
    assert scores.read_text() == "".join(lines)  # the same file an uninterrupted run wrote
    assert len(reads) == 1, reads
    scores.write_text("image,mos\nimages/x.png,1\n")  # another scorer's columns: scored again
    assert score_run(run, pairs, "classical", num_workers=0).scored == 10
    assert scores.read_text() == "".join(lines)
    shifted = (
        "images/shot,2,0.5,0.4,0.6,0.5,0.7,0.9\n"  # `shot,2` unquoted: every cell a number, one too many
    )
    scores.write_text("".join([lines[0], shifted, *lines[1:]]))
    report = score_run(run, pairs, "classical", num_workers=0)
    assert report.error == (
        f"{scores}: line 2 is not a row of scores (8 cells under 7 columns: a name holding ',' must be "
        "quoted) — delete it to score classical again"
    )


def test_a_checkpoint_retrained_in_place_is_named_as_such(tmp_path):
    """Session 47: `attiqa score ... --model runs/cpu_small/finetune/last.safetensors -o scores.csv`, rerun
    after `attiqa train ... --no-resume` had replaced that checkpoint, said "holds scores of
    runs/cpu_small/finetune/last.safetensors (crops five), not of runs/cpu_small/finetune/last.safetensors
    (crops five)" — the same words twice. Now it says the weights behind the name changed."""
    out = tmp_path / "s.csv"
    out.write_text("image,mos,sharpness\nx.png,1,2\n")
    ckpt = "runs/cpu_small/finetune/last.safetensors"
    old = {"name": ckpt, "sha256": "ffd8ae45951e57ac" + "0" * 48, "crops": "five"}
    out.with_name(f".{out.name}.scorer.json").write_text(json.dumps(old))
    new = {**old, "sha256": "1234abcd5678ef90" + "0" * 48}
    with pytest.raises(AttiqaError) as err:
        ScoreWriter(columns=COLS, out=out, identity=new)
    assert str(err.value) == (
        f"{out}: holds scores of {ckpt} as it was before its weights changed (SHA-256 ffd8ae45951e… then, "
        "1234abcd5678… now) — choose another --out, or delete it to score again"
    )
    assert out.read_text() == "image,mos,sharpness\nx.png,1,2\n"
