"""What a scorer is, decided once: one rule of "is this record the same scorer" for `attiqa score -o` and
`genbench score`, one reading of a checkpoint for its identity, and `attiqa export` keeping the shipped
model's tensors as they are stored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import separate_hashes, tiny_attiqa_checkpoint
from PIL import Image

import attiqa
from attiqa.errors import AttiqaError
from attiqa.evaluation.cache import resume_identity
from attiqa.scoring import ScoreWriter, same_scorer
from genbench.files import SCORES_DIR
from genbench.manifest import load_pairs, write_manifest
from genbench.metric_scoring import open_metric
from genbench.run_scores import metric_slug


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


def _checkpoints(folder: Path) -> dict[str, Path]:
    """The shipped default model (its card in the header, BatchNorm statistics fp16) copied, and a copy of
    it whose header holds no card (read with the ``.json`` beside it)."""
    from attiqa.io.checkpoints import load_checkpoint, save_safetensors
    from attiqa.scorers.zoo import resolve_weights

    shipped = folder / "shipped.safetensors"
    shutil.copy(resolve_weights("attiqa-default"), shipped)
    tensors, card = load_checkpoint(shipped)
    bare = folder / "bare.safetensors"
    save_safetensors({k: v.contiguous() for k, v in tensors.items()}, bare, {})
    bare.with_suffix(".json").write_text(json.dumps(card))
    return {"shipped": shipped, "bare": bare}


def test_a_checkpoints_identity_is_the_hashes_its_separate_readers_gave(tmp_path):
    """The identity `score -o` records (and eval's cache key) from one reading holds the same hashes the
    separate readers gave: the file's, the tensors' values, the card beside a headerless file — records
    written before keep resuming."""
    from attiqa.io.checkpoints import tensors_sha256
    from attiqa.scorers.zoo import weights_identity

    for case, ckpt in _checkpoints(tmp_path).items():
        want = separate_hashes(ckpt)
        scorer = attiqa.load_scorer(ckpt)
        identity = resume_identity(str(ckpt), scorer, {})
        assert identity["sha256"] == want["file"], case
        assert identity["hashes"] == {
            "weights": want["file"],
            "tensors": want["values"],
            **({"card": want["card"]} if want["card"] else {}),
        }, case
        assert tensors_sha256(ckpt) == want["tensors"], case
        assert weights_identity(scorer)["tensors_sha256"] == want["tensors"], case


OPENS = """
import sys
from pathlib import Path

import attiqa
from attiqa.evaluation.cache import resume_identity

ckpt, mark = sys.argv[1], Path(sys.argv[2])
mark.read_bytes()
scorer = attiqa.load_scorer(ckpt)
identity = resume_identity(ckpt, scorer, {})
mark.read_bytes()
print(identity["key"])
"""


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to count the opens")
def test_resume_identity_reads_the_checkpoint_once(tmp_path):
    """**Was**: `attiqa score -m CKPT -o s.csv`'s record opened the checkpoint three times — its file hash,
    its header (is a card there?), every tensor (the values' hash) — so a file rewritten between two
    readings (a training run's ``last.safetensors`` being saved) gave an identity half of each version.
    Now one opening of the file gives them all, and the weights the scorer loads too (session 53, round 2:
    a file saved again between its loading and its identity was recorded as the new version): counted
    between two marks around both in a real process (strace)."""
    import subprocess
    import sys

    from helpers import attiqa_env

    ckpt = _checkpoints(tmp_path)["shipped"]
    mark, log = tmp_path / "mark", tmp_path / "strace.log"
    mark.write_text("")
    cmd = ["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", str(log)]
    cmd += [sys.executable, "-c", OPENS, str(ckpt), str(mark)]
    res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [ln for ln in log.read_text().splitlines() if "= -1" not in ln]
    marks = [i for i, ln in enumerate(lines) if f'"{mark}"' in ln]
    between = [ln for ln in lines[marks[0] : marks[1]] if f'"{ckpt}"' in ln]
    assert len(between) == 1, between  # was 6: the loading, then 5 for the identity; 3 after the first fix
    assert res.stdout.strip() == resume_identity(str(ckpt), attiqa.load_scorer(ckpt), {})["key"]


def test_export_of_the_shipped_model_keeps_its_tensors_as_stored(tmp_path, cli):
    """**Was**: `attiqa export attiqa-default mine.safetensors --name mine` wrote the BatchNorm statistics and
    the ridge head the shipped file stores as fp16 as fp32 (the same values, other tensors): the copy's
    tensors' hash differed, so it was not the shipped model to the one test of that (`shipped_model`) —
    `attiqa eval clive -m mine.safetensors` gave its training fit with no "trained on CLIVE" note, and
    `genbench agree` none either. Now export keeps each tensor's stored dtype (``--half``; ``--no-half``
    still writes fp32): the same tensors, the same scores, known as attiqa-default."""
    from safetensors import safe_open

    from attiqa.io.checkpoints import tensors_sha256
    from attiqa.scorers.zoo import resolve_weights, trained_on, weights_identity

    shipped = resolve_weights("attiqa-default")
    mine, full = tmp_path / "mine.safetensors", tmp_path / "full.safetensors"
    assert cli("export", "attiqa-default", mine, "--name", "mine").returncode == 0
    assert cli("export", "attiqa-default", full, "--no-half").returncode == 0

    def dtypes(path: Path) -> dict[str, str]:
        with safe_open(str(path), "pt") as f:
            return {k: f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118

    source = dtypes(shipped)
    assert "F16" in {source[k] for k in source if k.endswith("running_mean")}  # what the test is about
    assert dtypes(mine) == source
    assert {d for d in dtypes(full).values()} <= {"F32", "I64", "BOOL"}
    assert tensors_sha256(mine) == tensors_sha256(shipped)
    copy = attiqa.load_scorer(mine)
    assert copy.info.name == "mine" and trained_on(weights_identity(copy)) == ("clive",)
    rng = np.random.default_rng(1)
    image = (rng.random((300, 360, 3)) * 255).astype("uint8")
    assert copy(image) == attiqa.load_scorer("attiqa-default")(image)
