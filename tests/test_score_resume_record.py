"""What `attiqa score -o` records of its scorer to resume a score file by — the files the scores depend on by
their hashes, the scorer's settings, not the spelling of a path (docs/robustness.md)."""

from __future__ import annotations

import shutil

import pytest
from safetensors.torch import load_file, save_file

from attiqa.io.checkpoints import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _other_weights(weights):
    """The same CLIP retrained: another logit scale, in place."""
    state = load_file(str(weights))
    state["logit_scale"] = state["logit_scale"] + 1.0
    save_file(state, str(weights))


def test_a_clip_score_file_resumes_under_any_spelling_of_its_weights_and_says_when_they_changed(
    tiny_dir, photo_dir, tmp_path, cli, monkeypatch
):
    """**Was**: a score file of `clipiqa:clip` resumed under `temu-multilayer:clip` or `temu-layer:1:clip`
    under `temu-layer:2:clip` — another scorer on the same weights (the record held the weights' hash only):
    "3 already in s.csv, 0 to score", one file of two scorers' scores; and weights replaced under another
    spelling were "holds scores of clipiqa:clip, not of clipiqa:/…/clip", as if only the spelling differed.
    Now a spelling of the same weights resumes, other settings are refused, other weights are said."""
    clip = tmp_path / "clip"
    shutil.copytree(tiny_dir, clip)
    monkeypatch.chdir(tmp_path)
    images = sorted(p for p in photo_dir.rglob("*") if p.is_file())
    out = tmp_path / "s.csv"
    assert cli("score", images[0], "-m", "clipiqa:clip", "-o", out, "-q").returncode == 0
    for spelling, left in ((f"clipiqa:{clip}", 4), (f"clipiqa:{clip}/open_clip_model.safetensors", 0)):
        res = cli("score", *images, "-m", spelling, "-o", out, "-q")
        assert res.returncode == 0 and f"{5 - left} image(s) already in {out}, {left} to score" in res.stderr
    for other in ("temu-multilayer:clip", "clipiqa-attributes:clip"):
        res = cli("score", *images, "-m", other, "-o", out, "-q")
        assert res.returncode == 2 and "holds scores of clipiqa:" in res.stderr, res.stderr
    assert "(the same weights with other settings)" in cli("score", images[0], "-m", "temu-multilayer:clip",
                                                           "-o", out).stderr  # fmt: skip
    layers = tmp_path / "layers.csv"
    assert cli("score", *images, "-m", "temu-layer:1:clip", "-o", layers, "-q").returncode == 0
    res = cli("score", *images, "-m", "temu-layer:2:clip", "-o", layers, "-q")
    assert res.returncode == 2, res.stderr  # was resumed: "5 image(s) already in layers.csv, 0 to score"
    assert "holds scores of temu-layer:1:clip, not of temu-layer:2:clip (the same weights" in res.stderr

    before = load_file(str(clip / "open_clip_model.safetensors"))
    _other_weights(clip / "open_clip_model.safetensors")
    res = cli("score", *images, "-m", f"clipiqa:{clip}", "-o", out, "-q")
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert (
        f"holds scores of clipiqa:{clip}/open_clip_model.safetensors, not of clipiqa:{clip}: the weights "
        "changed (SHA-256 " in res.stderr
    ), res.stderr
    save_file(before, str(clip / "open_clip_model.safetensors"))  # the same weights again: resumed
    assert "5 image(s) already" in cli("score", *images, "-m", "clipiqa:clip", "-o", out).stderr


def test_an_exiqa_run_retrained_in_place_is_not_resumed(exiqa_set, tiny_dir, tmp_path, cli):
    """**Was**: `score -m exiqa:RUN -o s.csv` recorded only the CLIP weights' hash: after the run was trained
    again in place (its prompts and weights, or its eq. 9 regressor) the rerun said "resuming: N image(s)
    already in s.csv" and added the new checkpoint's scores to the old one's. Now the record holds eval's
    score-cache key (the run's checkpoint and regressor by their hashes): refused, naming what changed."""
    from attiqa.evaluation.cache import score_cache_key
    from attiqa.exiqa.regressor import train_regressor
    from attiqa.exiqa.train import ExiqaTrainConfig, train_exiqa
    from attiqa.scorers import create_scorer

    data, mos = exiqa_set
    run = tmp_path / "run"
    cfg = ExiqaTrainConfig(clip=str(tiny_dir), epochs=1, warmup_epochs=0, batch_size=8, n_prompts=2)
    train_exiqa(data, run, cfg)
    images = sorted((data / "images").rglob("*.png"))[:3]
    out = tmp_path / "s.csv"
    assert cli("score", images[0], "-m", f"exiqa:{run}", "-o", out, "-q").returncode == 0
    res = cli("score", *images, "-m", f"exiqa:{run}/exiqa.safetensors", "-o", out, "-q")
    assert res.returncode == 0 and f"1 image(s) already in {out}, 2 to score" in res.stderr, res.stderr

    ckpt = run / "exiqa.safetensors"
    tensors, card = load_checkpoint(ckpt)
    tensors["prompts"] = tensors["prompts"] + 0.5  # trained again: other prompts, the same path and CLIP
    save_checkpoint(ckpt, tensors, card)
    res = cli("score", *images, "-m", f"exiqa:{run}", "-o", out, "-q")
    # one error line (session 53: beside the note that this run has no regressor yet)
    said = [line for line in res.stderr.splitlines() if not line.startswith("note: ")]
    assert res.returncode == 2 and len(said) == 1, res.stderr
    assert f"holds scores of exiqa:{run}/exiqa.safetensors, not of exiqa:{run}: the checkpoint changed" in (
        res.stderr
    ), res.stderr

    reg = tmp_path / "reg.csv"
    train_regressor(run, mos, epochs=3)
    assert cli("score", *images, "-m", f"exiqa:{run}", "-o", reg, "-q").returncode == 0
    key = score_cache_key(create_scorer(f"exiqa:{run}"))[0]
    train_regressor(run, mos, epochs=3, seed=1)  # fitted again in place: other weights
    assert score_cache_key(create_scorer(f"exiqa:{run}"))[0] != key  # eval's cache: was the old scores
    res = cli("score", *images, "-m", f"exiqa:{run}", "-o", reg, "-q")
    assert res.returncode == 2, res.stderr
    assert f"holds scores of exiqa:{run} as it was before its regressor changed (SHA-256 " in res.stderr
