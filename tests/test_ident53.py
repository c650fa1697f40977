"""What a scorer is, decided once (session 53): one rule of "is this record the same scorer" for `attiqa
score -o` and `genbench score`, one reading of a checkpoint for its identity, and `attiqa export` keeping
the shipped model's tensors as they are stored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_attiqa_checkpoint
from PIL import Image

import attiqa
from attiqa.errors import AttiqaError
from attiqa.evaluation.cache import resume_identity
from attiqa.scoring import ScoreWriter, same_scorer
from genbench.manifest import load_pairs, write_manifest
from genbench.run_scores import SCORES_DIR, metric_slug, open_metric


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> dict:
    """A tiny real checkpoint, a genbench run of 3 pairs scored with it (``scores/<slug>.csv`` and ``.json``
    kept aside as they were written), and the scorer's identity as both commands record it."""
    root = tmp_path_factory.mktemp("same")
    ckpt = tiny_attiqa_checkpoint(root)
    run = root / "run"
    (run / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(3):
        for side in "ab":
            pixels = (rng.random((40, 48, 3)) * 255).astype("uint8")
            Image.fromarray(pixels).save(run / "images" / f"p{i}{side}.png")
        records.append({"pair_id": f"p{i}", "image_a": f"images/p{i}a.png", "image_b": f"images/p{i}b.png"})
    write_manifest(run, records)
    with open_metric(run, load_pairs(run), str(ckpt)) as job:
        assert job.score(num_workers=0).scored == 6
    out = run / SCORES_DIR / f"{metric_slug(str(ckpt), run)}.csv"
    kept = root / "kept"
    kept.mkdir()
    for f in (out, out.with_suffix(".json")):
        shutil.copy(f, kept / f.name)
    identity = json.loads(out.with_suffix(".json").read_text())["identity"]
    return {"ckpt": ckpt, "run": run, "out": out, "kept": kept, "identity": identity}


OTHER = "f" * 64
CASES = {  # an earlier record -> the same scorer? (the record of `scored`'s checkpoint, as it is now)
    "the same key": (lambda now: now, True),
    "another key (other weights or settings)": (lambda now: {**now, "key": "0" * 32}, False),
    "before the key: the same weights under another spelling": (
        lambda now: {"name": "elsewhere/tiny.safetensors", "sha256": now["sha256"], "crops": None},
        True,
    ),
    "before the key: other weights under the same name": (
        lambda now: {"name": now["name"], "sha256": OTHER, "crops": None},
        False,
    ),
    "before the key: the same weights with other crops": (
        lambda now: {"name": now["name"], "sha256": now["sha256"], "crops": "center"},
        False,
    ),
    "before weights were hashed: the same name": (lambda now: {"name": now["name"], "sha256": None}, True),
    "before weights were hashed: another name": (lambda now: {"name": "other", "sha256": None}, False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_score_o_and_genbench_score_decide_the_same_scorer_by_one_rule(case, scored, tmp_path):
    """**Was**: two copies of the rule — ScoreWriter's (`attiqa score -o`) and genbench's ``_same_scorer`` —
    and they differed: a record from before the key with the same weights but other crops was another
    scorer to `score -o` (refused) and the same to `genbench score` (its rows kept). Now both call
    ``attiqa.scoring.same_scorer``: for each earlier record, `score -o` resumes its file exactly when
    `genbench score` keeps its rows."""
    make, same = CASES[case]
    now = scored["identity"]
    old = make(now)
    assert same_scorer(old, now) is same

    # genbench score: the run's score file with this record beside it
    out, kept = scored["out"], scored["kept"]
    shutil.copy(kept / out.name, out)
    record = json.loads((kept / out.with_suffix(".json").name).read_text())
    out.with_suffix(".json").write_text(json.dumps({**record, "identity": old}))
    run = scored["run"]
    with open_metric(run, load_pairs(run), str(scored["ckpt"])) as job:
        assert job.ready is not None and job.report.kept == (6 if same else 0), case

    # attiqa score -o: a file of one row with this record beside it
    scorer = attiqa.load_scorer(scored["ckpt"])
    identity = resume_identity(str(scored["ckpt"]), scorer, {})
    assert identity["key"] == now["key"]
    s = tmp_path / "s.csv"
    writer = ScoreWriter(s, scorer.columns, identity=identity)
    writer.add([{"image": "a.png", **dict.fromkeys(scorer.columns, 1.0)}])
    writer.close()
    Path(tmp_path / ".s.csv.scorer.json").write_text(json.dumps(old))
    if same:
        again = ScoreWriter(s, scorer.columns, identity=identity)
        assert again.done == {"a.png"}
        again.close()
    else:
        with pytest.raises(AttiqaError, match="holds scores of"):
            ScoreWriter(s, scorer.columns, identity=identity)
