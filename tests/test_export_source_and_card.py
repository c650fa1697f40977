"""`attiqa export` and the resume record of `attiqa score -o` (docs/robustness.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from helpers import attiqa_cmd, attiqa_env, tiny_attiqa_checkpoint
from PIL import Image
from safetensors.torch import save_file

import attiqa
from attiqa.io.checkpoints import load_checkpoint, save_checkpoint

READ_ONCE = (  # one reading of a checkpoint's tensors, as safetensors does it (its own opens of the file)
    "import sys; from safetensors import safe_open; f = safe_open(sys.argv[1], 'pt'); [f.get_tensor(k) for "
    "k in f.keys()]"
)


def _opens_of(src, *args, cmd=None):
    """``attiqa ARGS`` (or ``cmd``) run under strace: (its result, how many times it opened ``src``)."""
    log = src.parent / "strace.log"
    cmd = ["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", str(log), *(cmd or attiqa_cmd(*args))]
    res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=600)
    opened = [ln for ln in log.read_text().splitlines() if f'"{src}"' in ln and "= -1" not in ln]
    return res, len(opened)


@pytest.mark.slow  # four subprocesses under strace: ~25 s
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to count the opens")
def test_export_reads_its_source_once_and_refuses_a_non_model_as_before(tmp_path):
    """**Was**: `attiqa export` loaded the source as a model (to refuse a non-model), then read it again
    for its tensors: every byte read twice, and a checkpoint rewritten in between (a training run's
    last.safetensors) exported unchecked. Now read once (the same check on the tensors and card read),
    counted by the opens of the file (strace, a real subprocess); a non-model still gets its one line."""
    src = tiny_attiqa_checkpoint(tmp_path)
    once = _opens_of(src, cmd=[sys.executable, "-c", READ_ONCE, str(src)])[1]  # safetensors' own opens
    res, opens = _opens_of(src, "export", src, tmp_path / "copy.safetensors")
    assert res.returncode == 0, res.stderr
    assert opens == once, (opens, once)  # was 4 times as many: the card, then the tensors, twice
    assert attiqa.load_scorer(tmp_path / "copy.safetensors").columns[0] == "mos"
    foreign = tmp_path / "foreign.safetensors"
    save_file({"layer.weight": torch.ones(4, 4)}, str(foreign))
    tensors, card = load_checkpoint(src)
    card["model"]["head_hidden"] = 17  # a card that does not describe its tensors
    bad = save_checkpoint(tmp_path / "bad.safetensors", tensors, card)
    for source, why in (
        (foreign, "checkpoint has no ATTIQA model card — was it written by attiqa?"),
        (bad, "malformed model card — head_hidden 17 does not match tensor heads.sharpness.fc1.weight"),
    ):
        dst = tmp_path / f"copy_{source.stem}.safetensors"
        res, opens = _opens_of(source, "export", source, dst)
        assert res.returncode == 2 and res.stderr.startswith(f"error: {source}: {why}"), res.stderr
        assert len(res.stderr.splitlines()) == 1 and opens == once, (res.stderr, opens)
        assert not dst.exists() and not dst.with_suffix(".json").exists()


def test_export_refuses_to_write_its_card_over_a_json_file_of_the_users(tmp_path, cli):
    """**Was**: `attiqa export ckpt settings` (or `settings.safetensors`) where `settings.json` is a file of
    the user's and no `settings.safetensors` is there: the card was written over it without a word (the
    check for an earlier export looked at the .safetensors only). Now refused before the work, naming the
    file; a card an earlier export left there alone is replaced as before."""
    src = tiny_attiqa_checkpoint(tmp_path)
    mine = tmp_path / "settings.json"
    mine.write_text('{"threshold": 0.5}\n')
    for dst in ("settings", "settings.safetensors"):
        res = cli("export", src, tmp_path / dst)
        assert res.returncode == 2, res.stderr
        assert res.stderr == (
            f"error: {mine}: already there and not the card of an earlier `attiqa export` (export writes the "
            "copy's card beside it under this name) — export under another name, or move that file away "
            "first\n"
        ), res.stderr
        assert mine.read_text() == '{"threshold": 0.5}\n' and not (tmp_path / "settings.safetensors").exists()
    assert cli("export", src, tmp_path / "copy").returncode == 0
    (tmp_path / "copy.safetensors").unlink()  # the weights gone, their card left: replaced by a new export
    res = cli("export", src, tmp_path / "copy")
    assert res.returncode == 0 and "replacing an earlier export" in res.stderr, res.stderr
    assert attiqa.load_scorer(tmp_path / "copy.safetensors").columns[0] == "mos"


def test_an_unreadable_checkpoint_is_said_as_such(tmp_path):
    """**Was**: `attiqa score photo -m mine.safetensors` of a checkpoint without read permission: "not a
    readable safetensors checkpoint (No such file or directory: …) — pass a .safetensors file … whole (a
    copy may be truncated)" (safetensors' words: the file is there); `attiqa export` of it click's usage
    error ("Invalid value for 'src': path … is not readable", three lines). Now one line for both: "…:
    cannot be read (permission denied) — give yourself read permission (chmod u+r …)"."""
    from helpers import run_attiqa

    src = tiny_attiqa_checkpoint(tmp_path)
    photo = tmp_path / "p.png"
    Image.new("RGB", (40, 32), (90, 120, 150)).save(photo)
    src.chmod(0)
    try:
        for args in (("score", photo, "-m", src), ("export", src, tmp_path / "copy.safetensors")):
            res = run_attiqa(*args, unprivileged=True)
            assert res.returncode == 2, res.stderr
            assert res.stderr == (
                f"error: {src}: cannot be read (permission denied) — give yourself read permission "
                f"(chmod u+r {src})\n"
            ), res.stderr
    finally:
        src.chmod(0o644)
