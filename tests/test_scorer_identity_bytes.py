"""A scorer's identity is of the bytes it loaded: a checkpoint saved again after the scorer read it (a
training run's ``last.safetensors``) is not recorded for the scores of the weights loaded before, by `attiqa
score -o`, eval's score cache or `genbench score`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import attiqa_env, separate_hashes, tiny_attiqa_checkpoint
from PIL import Image

import attiqa
from attiqa.evaluation.cache import resume_identity, score_cache_key
from attiqa.io.checkpoints import load_checkpoint, save_checkpoint
from attiqa.scorers.zoo import weights_identity


def _save_again(ckpt: Path) -> None:
    """What a training run does to ``last.safetensors`` at its next epoch: the same names and shapes, other
    values, written over the file (atomically, as :func:`save_checkpoint` writes)."""
    tensors, card = load_checkpoint(ckpt)
    save_checkpoint(ckpt, {k: v + 0.5 if v.is_floating_point() else v for k, v in tensors.items()}, card)


def test_a_checkpoint_saved_again_after_loading_keeps_the_identity_of_the_weights_loaded(tmp_path):
    """**Was**: the scorer loaded its weights, then its identity read the file again — saved again in
    between, the record named the new version against the old one's scores (and a rerun resumed them as
    the new weights'). Now the identity is the hashes of the bytes loaded, whatever the file holds since;
    a scorer loaded from the new file has another identity."""
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    loaded = separate_hashes(ckpt)
    scorer = attiqa.load_scorer(ckpt)
    image = Image.fromarray((np.random.default_rng(0).random((48, 56, 3)) * 255).astype("uint8"))
    before = scorer(image)
    _save_again(ckpt)
    now = separate_hashes(ckpt)
    assert now["file"] != loaded["file"]

    identity = resume_identity(str(ckpt), scorer, {})
    assert identity["sha256"] == loaded["file"]
    assert identity["hashes"] == {"weights": loaded["file"], "tensors": loaded["values"]}
    assert score_cache_key(scorer)[0] == identity["key"]  # eval's cache key: the same scorer
    assert weights_identity(scorer)["sha256"] == loaded["file"]
    assert weights_identity(scorer)["tensors_sha256"] == loaded["tensors"]
    assert scorer(image) == before  # the weights it holds are the ones it names

    fresh = attiqa.load_scorer(ckpt)
    again = resume_identity(str(ckpt), fresh, {})
    assert again["sha256"] == now["file"] and again["key"] != identity["key"]
    assert weights_identity(fresh)["tensors_sha256"] == now["tensors"]


def test_a_headerless_checkpoints_card_beside_it_is_the_one_loaded(tmp_path):
    """A checkpoint whose card is the ``.json`` beside it: the card's hash in the identity is of the card
    the scorer was built from, not of one edited after it loaded."""
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    tensors, card = load_checkpoint(ckpt, as_stored=True)
    bare = tmp_path / "bare.safetensors"
    from attiqa.io.checkpoints import save_safetensors

    save_safetensors({k: v.contiguous() for k, v in tensors.items()}, bare, {})
    bare.with_suffix(".json").write_text(json.dumps(card))
    loaded = separate_hashes(bare)
    scorer = attiqa.load_scorer(bare)
    bare.with_suffix(".json").write_text(json.dumps({**card, "name": "edited"}))
    identity = resume_identity(str(bare), scorer, {})
    assert identity["hashes"]["card"] == loaded["card"]
    assert scorer.info.name == card["name"]


OPENS = """
import sys
from pathlib import Path

from genbench.manifest import load_pairs
from genbench.metric_scoring import open_metric

run, ckpt, mark = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
pairs = load_pairs(run)
mark.read_bytes()
with open_metric(run, pairs, ckpt) as job:
    mark.read_bytes()
    print(job.report.error or "")
"""


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to count the opens")
def test_genbench_open_metric_loads_and_identifies_a_checkpoint_from_one_reading(tmp_path):
    """**Was**: `genbench score RUN -m CKPT` loaded the checkpoint, then read it for the record's identity
    (resume_identity), then again for its tensors' hash when the file had changed meanwhile
    (weights_identity): a file saved in between gave a record mixing versions. Now one opening of the file
    gives the weights and every hash of the record: counted in a real process (strace)."""
    from genbench.files import SCORES_DIR
    from genbench.manifest import write_manifest
    from genbench.run_scores import metric_slug

    ckpt = tiny_attiqa_checkpoint(tmp_path)
    run = tmp_path / "run"
    (run / "images").mkdir(parents=True)
    pixels = (np.random.default_rng(1).random((40, 48, 3)) * 255).astype("uint8")
    for side in "ab":
        Image.fromarray(pixels).save(run / "images" / f"p0{side}.png")
    write_manifest(run, [{"pair_id": "p0", "image_a": "images/p0a.png", "image_b": "images/p0b.png"}])
    mark, log = tmp_path / "mark", tmp_path / "strace.log"
    mark.write_text("")
    cmd = ["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", str(log)]
    cmd += [sys.executable, "-c", OPENS, str(run), str(ckpt), str(mark)]
    res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout + res.stderr[-2000:]
    lines = [ln for ln in log.read_text().splitlines() if "= -1" not in ln]
    marks = [i for i, ln in enumerate(lines) if f'"{mark}"' in ln]
    between = [ln for ln in lines[marks[0] : marks[1]] if f'"{ckpt}"' in ln]
    assert len(between) == 1, between  # was 3: the loading (2), then the identity's reading
    record = json.loads((run / SCORES_DIR / f"{metric_slug(str(ckpt), run)}.json").read_text())["identity"]
    want = separate_hashes(ckpt)
    assert (record["sha256"], record["tensors_sha256"]) == (want["file"], want["tensors"])
    assert record["hashes"]["tensors"] == want["values"]


def _every_dtype(folder: Path) -> Path:
    """A checkpoint of every dtype the reader takes itself (fp16, bf16, ints, bool), a scalar, an empty
    tensor, with its card in the header."""
    torch.manual_seed(0)
    tensors = {
        "a.weight": torch.randn(3, 4).half(),
        "b.weight": torch.randn(5).bfloat16(),
        "c": torch.randn(2, 2, dtype=torch.float64),
        "d": torch.arange(7, dtype=torch.int64),
        "e": torch.arange(6, dtype=torch.int16).reshape(2, 3),
        "f": torch.tensor([True, False, True]),
        "g": torch.tensor(1.5),
        "h": torch.zeros(0, 3),
        "i": torch.arange(4, dtype=torch.uint8),
    }
    return save_checkpoint(folder / "every.safetensors", tensors, {"name": "every"})


def test_the_scorers_one_reading_gives_what_the_loader_and_the_separate_hashes_give(tmp_path):
    """The tensors of the one reading (views of the bytes read, fp16 / bf16 as float32) are
    :func:`load_checkpoint`'s, dtype for dtype, and their hashes the separate readers' (records resume)."""
    from attiqa.io.checkpoints import load_checkpoint_hashed

    for ckpt in (tiny_attiqa_checkpoint(tmp_path), _every_dtype(tmp_path)):
        tensors, card = load_checkpoint(ckpt)
        read, card_read, hashes = load_checkpoint_hashed(ckpt)
        assert card_read == card and sorted(read) == sorted(tensors)
        for k in tensors:
            assert read[k].dtype == tensors[k].dtype and torch.equal(read[k], tensors[k]), k
        want = separate_hashes(ckpt)
        assert (hashes.sha256, hashes.tensors, hashes.values) == (
            want["file"],
            want["tensors"],
            want["values"],
        )


@pytest.mark.parametrize(
    ("case", "damage"),
    [
        ("cut short", lambda data: data[:-100]),
        ("not safetensors", lambda data: b"a text file, not a checkpoint"),
        ("5 bytes", lambda data: data[:5]),
        ("a header that is not a table", lambda data: (2).to_bytes(8, "little") + b"[]"),
    ],
)
def test_a_damaged_checkpoint_is_one_line_naming_it_with_the_fix(tmp_path, case, damage):
    """`attiqa score -m BAD.safetensors` (the scorer's one reading) says what safetensors finds wrong, in
    one line naming the file, with what to pass instead."""
    from attiqa.errors import ModelLoadError

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(damage(tiny_attiqa_checkpoint(tmp_path).read_bytes()))
    with pytest.raises(ModelLoadError) as err:
        attiqa.load_scorer(bad)
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"{bad}: not a readable safetensors checkpoint ("), case
    assert line.endswith("— pass a .safetensors file written by attiqa (train, export) or isp-tune, whole (a "
                         "copy may be truncated)"), case  # fmt: skip


PEAK = """
import sys

import torch
import attiqa.io.checkpoints as ck

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) / 1024 for ln in fh if ln.startswith(key + ":"))

base = status("VmRSS")
ck.checkpoint_hashes(sys.argv[1])
print(status("VmHWM") - base)
"""


def test_a_checkpoints_identity_holds_no_more_than_the_file_in_memory(tmp_path):
    """**Was**: the identity of a 64 MiB fp32 checkpoint read the file into memory, then a copy of every
    tensor, then a copy of each tensor's bytes to hash them: a peak of about twice the file above what the
    process held before (2.1x a plain safetensors load of a 224 MiB file; benchmarks/
    checkpoint_identity_memory.py). Now the tensors are views of the bytes read, hashed where they lie: the
    file once. Measured in a real process (its peak resident memory)."""
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "big.safetensors", {f"w{i}.weight": torch.randn(2 << 20) for i in range(8)}, {}
    )
    size = ckpt.stat().st_size / 2**20
    res = subprocess.run(
        [sys.executable, "-c", PEAK, str(ckpt)], env=attiqa_env(), capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert float(res.stdout) < 1.4 * size, (res.stdout, size)  # was about 2 x size


def test_a_checkpoint_saved_again_within_one_clock_tick_is_hashed_again(tmp_path):
    """**Was**: a file's hashes were cached on its size and modification time, which move in clock ticks
    (~4 ms): a checkpoint saved again within one, of the same size (the next epoch's weights), was given
    the hashes of the one before. Here its time is set back to the first one's (as one tick gives it); now
    the cache knows a replaced file (another inode) and a changed one (its change time)."""
    import os

    from attiqa.io.checkpoints import checkpoint_hashes, weights_sha256

    ckpt = tiny_attiqa_checkpoint(tmp_path)
    first = ckpt.stat()
    before = (weights_sha256(ckpt), checkpoint_hashes(ckpt).tensors)
    _save_again(ckpt)
    os.utime(ckpt, ns=(first.st_atime_ns, first.st_mtime_ns))
    assert (ckpt.stat().st_size, ckpt.stat().st_mtime_ns) == (first.st_size, first.st_mtime_ns)
    want = separate_hashes(ckpt)
    assert (weights_sha256(ckpt), checkpoint_hashes(ckpt).tensors) == (want["file"], want["tensors"])
    assert want["file"] != before[0]


def test_the_torch_free_identity_is_the_loaders_for_the_shipped_models_and_fp16_and_fp32(tmp_path):
    """`genbench agree` knows a shipped model by its tensors' SHA-256 without torch
    (:func:`attiqa.io.hashes.safetensors_hashes`): the file's and the tensors' hashes equal those of the
    loader's reading (:func:`load_checkpoint_hashed`) — for both shipped models (attiqa-agiqa3k: fp16
    weights, fp32 statistics; attiqa-default: all fp16), a tiny checkpoint in fp32, its fp16 save, and one
    of every dtype; a file cut short is a ValueError (the shipped-model test takes it for none)."""
    from attiqa.io.checkpoints import load_checkpoint_hashed
    from attiqa.io.hashes import safetensors_hashes
    from attiqa.scorers.zoo import resolve_weights

    tiny = tiny_attiqa_checkpoint(tmp_path)
    tensors, card = load_checkpoint(tiny)
    half = save_checkpoint(tmp_path / "half.safetensors", tensors, card, half=True)
    shipped = [resolve_weights(name) for name in ("attiqa-default", "attiqa-agiqa3k")]
    for ckpt in (*shipped, tiny, half, _every_dtype(tmp_path)):
        read = load_checkpoint_hashed(ckpt)[2]
        assert safetensors_hashes(ckpt) == (read.sha256, read.tensors), ckpt

    def floats(ckpt: Path) -> set[torch.dtype]:
        return {t.dtype for t in load_checkpoint(ckpt, as_stored=True)[0].values() if t.is_floating_point()}

    fp16, fp32 = torch.float16, torch.float32
    assert [floats(c) for c in (*shipped, tiny)] == [{fp16}, {fp16, fp32}, {fp32}]
    assert fp16 in floats(half)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(half.read_bytes()[:-10])
    with pytest.raises(ValueError, match="not a whole safetensors file"):
        safetensors_hashes(cut)
