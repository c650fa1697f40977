"""`genbench score` resumes a metric's ``scores/<metric>.csv`` exactly when `attiqa score -o` would resume its
file (:func:`attiqa.evaluation.cache.resume_identity`), also after a SIGKILL mid-metric or between metrics
(docs/robustness.md)."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pytest
from genbench_helpers import make_photo_run
from helpers import run_attiqa, run_genbench, signal_after
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from genbench.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()


def _retrain(weights):
    """The same CLIP trained again in place: another logit scale, the same file name."""
    state = load_file(str(weights))
    state["logit_scale"] = state["logit_scale"] + 1.0
    save_file(state, str(weights))


def _said(res) -> str:
    return " ".join(res.output.split())


def _rows(path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture()
def clip_run(tmp_path, photos, tiny_dir, monkeypatch):
    """A run of 10 real images and a tiny random CLIP in ``clip/`` beside it (the working folder)."""
    shutil.copytree(tiny_dir, tmp_path / "clip")
    monkeypatch.chdir(tmp_path)
    return make_photo_run(tmp_path / "run", photos)


def test_a_clip_metric_whose_weights_were_replaced_is_scored_again(clip_run, tmp_path, cli):
    """**Was**: `genbench score RUN -m clipiqa:clip` after clip/'s weights were replaced in place said
    "0 scored, 10 already scored" — the metric was known by its name alone (no weights file of its own to
    hash), so agree measured the old weights' scores as the new ones'. Now the file is resumed by `attiqa
    score -o`'s record of its scorer (the same key) and scored again when it changed."""
    args = ["score", str(clip_run), "-m", "clipiqa:clip", "--workers", "0"]
    assert "clipiqa:clip: 10 scored, 0 already scored" in _said(runner.invoke(app, args))
    scores = clip_run / "scores" / "clipiqa_clip.csv"
    first = _rows(scores)
    assert "0 scored, 10 already scored" in _said(runner.invoke(app, args))  # the same weights: resumed
    # the same rule as `attiqa score -o`: the key it records beside its own file
    images = sorted((clip_run / "images").glob("*.png"))
    assert cli("score", *images, "-m", "clipiqa:clip", "-o", tmp_path / "s.csv", "-q").returncode == 0
    record = json.loads((tmp_path / ".s.csv.scorer.json").read_text())
    assert json.loads(scores.with_suffix(".json").read_text())["identity"]["key"] == record["key"]

    _retrain(tmp_path / "clip" / "open_clip_model.safetensors")
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "clipiqa:clip: 10 scored, 0 already scored" in _said(res), res.output
    again = _rows(scores)
    assert [r[0] for r in again] == [r[0] for r in first] and again != first  # every score the new weights'
    assert "0 scored, 10 already scored" in _said(runner.invoke(app, args))


def test_an_exiqa_run_retrained_in_place_is_scored_again(exiqa_set, tiny_dir, tmp_path, photos):
    """**Was**: `genbench score RUN -m exiqa:EXRUN` after EXRUN was trained again in place (its prompts)
    kept the old checkpoint's scores: the metric's record held no hash of the run's checkpoint. Now its
    record holds eval's score-cache key (the checkpoint and regressor by their hashes)."""
    from attiqa.exiqa.regressor import train_regressor
    from attiqa.exiqa.train import ExiqaTrainConfig, train_exiqa
    from attiqa.io.checkpoints import load_checkpoint, save_checkpoint

    data, mos = exiqa_set
    ex = tmp_path / "ex"
    cfg = ExiqaTrainConfig(clip=str(tiny_dir), epochs=1, warmup_epochs=0, batch_size=8, n_prompts=2)
    train_exiqa(data, ex, cfg)
    train_regressor(ex, mos, epochs=3)  # its overall score (eq. 9)
    run = make_photo_run(tmp_path / "run", photos)
    args = ["score", str(run), "-m", f"exiqa:{ex}", "--workers", "0"]
    assert "10 scored, 0 already scored" in _said(runner.invoke(app, args))
    assert "0 scored, 10 already scored" in _said(runner.invoke(app, args))
    tensors, card = load_checkpoint(ex / "exiqa.safetensors")
    tensors["prompts"] = tensors["prompts"] + 0.5  # trained again: other prompts, the same path and CLIP
    save_checkpoint(ex / "exiqa.safetensors", tensors, card)
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "10 scored, 0 already scored" in _said(res), res.output
    assert "0 scored, 10 already scored" in _said(runner.invoke(app, args))
    train_regressor(ex, mos, epochs=3, seed=1)  # its regressor fitted again in place
    assert "10 scored, 0 already scored" in _said(runner.invoke(app, args))


def _genbench_killed(tmp_path, seam: str, suffix: str, after: int, *args: object) -> None:
    """`genbench score ARGS` (in ``tmp_path``) SIGKILLed as the ``after``-th commit of ``suffix`` returns."""
    hook = signal_after(tmp_path, seam, suffix, after, "SIGKILL", "genbench.cli")
    res = run_attiqa(*args, cwd=tmp_path, **hook)
    assert res.returncode == -9, res.stderr[-2000:]


@pytest.mark.slow
def test_a_kill_mid_metric_then_replaced_weights_keeps_no_old_score(clip_run, tmp_path):
    """**Was**: `genbench score RUN -m classical,clipiqa:clip` killed (kill -9) after clipiqa's first
    batches, clip/'s weights replaced, the same command: "6 scored, 4 already scored" — the metric's record
    was written when it finished, so the killed run's rows had none and were kept as the new weights'. Now
    the record is written before the first row: all 10 scored again."""
    args = ["score", clip_run, "-m", "classical,clipiqa:clip", "--workers", "0", "--batch-size", "2"]
    _genbench_killed(tmp_path, "fsync", "clipiqa_clip.csv", 2, *args)
    assert len(_rows(clip_run / "scores" / "clipiqa_clip.csv")) == 1 + 4  # two batches kept
    _retrain(tmp_path / "clip" / "open_clip_model.safetensors")
    res = run_genbench(*args, cwd=tmp_path)
    said = " ".join(res.stdout.split() + res.stderr.split())
    assert res.returncode == 0, res.stderr[-2000:]
    assert "classical: 0 scored, 10 already scored" in said
    assert "clipiqa:clip: 10 scored, 0 already scored" in said


def _close(got: list[list[str]], want: list[list[str]]) -> bool:
    """The same images in the same order, each score equal to 5 significant digits."""
    return [r[0] for r in got] == [r[0] for r in want] and all(
        math.isclose(float(a), float(b), rel_tol=1e-5, abs_tol=1e-6)
        for g, w in zip(got[1:], want[1:], strict=True)
        for a, b in zip(g[1:], w[1:], strict=True)
    )


@pytest.mark.slow
def test_several_metrics_killed_between_metrics_and_mid_metric_resume_to_the_uninterrupted_files(
    clip_run, tmp_path, photos
):
    """`genbench score RUN -m classical,clipiqa:clip` killed (kill -9) just after the first metric's file
    was renamed into place, then in the middle of the second, then the same command: every image scored
    once, each file the uninterrupted run's, no temporary file left (ok: an audit, session 52)."""
    whole = make_photo_run(tmp_path / "whole", photos)
    opts = ["-m", "classical,clipiqa:clip", "--workers", "0", "--batch-size", "2"]
    assert runner.invoke(app, ["score", str(whole), *opts]).exit_code == 0
    want = {m: _rows(whole / "scores" / f"{m}.csv") for m in ("classical", "clipiqa_clip")}
    scores = clip_run / "scores"

    _genbench_killed(tmp_path, "replace", "classical.csv", 1, "score", clip_run, *opts)  # between metrics
    assert _close(_rows(scores / "classical.csv"), want["classical"])
    _genbench_killed(tmp_path, "fsync", "clipiqa_clip.csv", 2, "score", clip_run, *opts)  # mid-metric
    assert len(_rows(scores / "clipiqa_clip.csv")) == 1 + 4
    res = run_genbench("score", clip_run, *opts, cwd=tmp_path)
    said = " ".join(res.stdout.split() + res.stderr.split())
    assert res.returncode == 0, res.stderr[-2000:]
    assert "classical: 0 scored, 10 already scored" in said and "clipiqa:clip: 6 scored, 4 already" in said
    for m, rows in want.items():
        assert _close(_rows(scores / f"{m}.csv"), rows), m  # each image once, in manifest order
        meta, whole_meta = (json.loads((r / "scores" / f"{m}.json").read_text()) for r in (clip_run, whole))
        assert meta.pop("complete")["images"] == whole_meta.pop("complete")["images"]  # (each file's version)
        assert meta == whole_meta
    assert not [p.name for p in scores.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_damaged_record_scores_the_metric_again_and_a_missing_one_keeps_its_rows(tmp_path, photos):
    """**Was**: `genbench score RUN -m classical` after ``scores/classical.json`` was damaged (a cut write of
    a bad disk, a hand edit) said "0 scored, 10 already scored": rows tied to no scorer were kept as this
    one's. Now they are scored again; a missing record (a run of an earlier version killed before it wrote
    it at the end) still keeps its rows, as before (review of session 52), and is written again stamped
    ``complete`` (:func:`genbench.run_scores.scored_stamp`): the next rerun loads no scorer."""
    run = make_photo_run(tmp_path / "run", photos)
    args = ["score", str(run), "-m", "classical", "--workers", "0"]
    assert "classical: 10 scored, 0 already scored" in _said(runner.invoke(app, args))
    record = run / "scores" / "classical.json"
    for damaged in ('{"column": "sc', "[]"):
        record.write_text(damaged)
        res = runner.invoke(app, args)
        assert res.exit_code == 0 and "classical: 10 scored, 0 already scored" in _said(res), res.output
        assert json.loads(record.read_text())["identity"]["name"] == "classical"  # written again
    record.unlink()
    assert "classical: 0 scored, 10 already scored" in _said(runner.invoke(app, args))
    # the rerun wrote the record again, stamped complete: the next rerun proves it kept without loading
    from genbench.manifest import load_pairs
    from genbench.run_scores import run_images, scored_already, scored_stamp

    images = run_images(load_pairs(run))
    assert json.loads(record.read_text())["complete"] == scored_stamp(
        run / "scores" / "classical.csv", images
    )
    kept = scored_already(run, load_pairs(run), "classical")
    assert kept is not None and (kept.scored, kept.kept) == (0, 10)


def test_a_rerun_kept_whole_is_proved_without_loading_and_a_retrain_in_place_is_not(tmp_path, photos):
    """A rerun of `genbench score` on a metric that scored every image loaded the scorer (and torch) only to
    find nothing to do; now ``scores/<slug>.json`` proves it torch-free (``scored_already``: its source
    files by hash, the score file's version, the run's images). Never for weights retrained in place, the
    card a headerless checkpoint is read with edited, a score file edited by hand or a manifest that grew:
    those load the metric."""
    from helpers import tiny_attiqa_checkpoint

    from attiqa.io.checkpoints import load_checkpoint, save_safetensors
    from attiqa.models import AttiqaModel, create_backbone, save_model
    from genbench.manifest import load_pairs, write_manifest
    from genbench.metric_scoring import score_run
    from genbench.run_scores import scored_already

    run = make_photo_run(tmp_path / "run", photos)
    pairs = load_pairs(run)
    ckpt = str(tiny_attiqa_checkpoint(tmp_path))
    for metric in ("classical", ckpt):
        assert scored_already(run, pairs, metric) is None  # not scored yet
        assert score_run(run, pairs, metric, num_workers=0).scored == 10
        kept = scored_already(run, pairs, metric)
        assert kept is not None and (kept.scored, kept.kept) == (0, 10)
        assert score_run(run, pairs, metric, num_workers=0).kept == 10
    scores = run / "scores" / "tiny.csv"
    first = scores.read_bytes()

    import torch

    torch.manual_seed(1)  # "retrained": other weights under the same file name
    model = AttiqaModel(create_backbone("tiny"), head_hidden=16, mos_hidden=8)
    model.set_mos_range(0.0, 100.0)
    save_model(model, ckpt, card={"name": "tiny"})
    assert scored_already(run, pairs, ckpt) is None
    again = score_run(run, pairs, ckpt, num_workers=0)
    assert (again.scored, again.kept) == (10, 0) and scores.read_bytes() != first
    assert scored_already(run, pairs, ckpt) is not None

    card = tmp_path / "tiny.json"  # the copy beside a file whose header holds its card: not what loads
    card.write_text(card.read_text().replace('"tiny"', '"tiny-edited"', 1))
    assert scored_already(run, pairs, ckpt) is not None
    tensors, header_card = load_checkpoint(ckpt, as_stored=True)
    bare = tmp_path / "bare.safetensors"  # a headerless checkpoint: the card beside it is what loads
    save_safetensors({k: v.contiguous() for k, v in tensors.items()}, bare, {})
    bare.with_suffix(".json").write_text(json.dumps(header_card))
    assert score_run(run, pairs, str(bare), num_workers=0).scored == 10
    assert scored_already(run, pairs, str(bare)) is not None
    bare.with_suffix(".json").write_text(json.dumps({**header_card, "name": "edited"}))
    assert scored_already(run, pairs, str(bare)) is None
    assert score_run(run, pairs, str(bare), num_workers=0).scored == 10  # another card: scored again

    lines = scores.read_text().splitlines(keepends=True)
    scores.write_text("".join(lines[:-1]))  # a row removed by hand
    assert scored_already(run, pairs, ckpt) is None
    assert score_run(run, pairs, ckpt, num_workers=0).scored == 1
    assert scored_already(run, pairs, ckpt) is not None

    shutil.copy(run / "images" / "coffee_a.png", run / "images" / "extra_a.png")
    shutil.copy(run / "images" / "coffee_b.png", run / "images" / "extra_b.png")
    extra = {"pair_id": "extra", "image_a": "images/extra_a.png", "image_b": "images/extra_b.png"}
    records = [json.loads(line) for line in (run / "manifest.jsonl").read_text().splitlines()]
    write_manifest(run, [*records, extra])  # the run grew: its new images are scored
    grown = load_pairs(run)
    assert scored_already(run, grown, "classical") is None
    assert score_run(run, grown, "classical", num_workers=0).scored == 2


def test_a_rerun_after_a_retrain_in_place_hashes_the_weights_once_before_loading(
    tmp_path, photos, genbench_cli, monkeypatch
):
    """**Was**: `genbench score RUN -m CKPT` after CKPT was retrained in place (its record stamped
    ``complete``, other weights now) hashed the whole file twice before loading it: ``scored_already`` in
    the command, then again in ``open_metric``. Now the command says it asked (``not_kept``): once. The
    weights are scored again, as before."""
    from helpers import tiny_attiqa_checkpoint

    import attiqa.io.hashes
    from attiqa.models import AttiqaModel, create_backbone, save_model

    run = make_photo_run(tmp_path / "run", photos)
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    args = ["score", run, "-m", ckpt, "--workers", "0"]
    first = genbench_cli(*args)
    assert "10 scored, 0 already scored" in " ".join((first.stdout + first.stderr).split())
    import torch

    torch.manual_seed(1)  # retrained in place: other weights under the same file name
    model = AttiqaModel(create_backbone("tiny"), head_hidden=16, mos_hidden=8)
    model.set_mos_range(0.0, 100.0)
    save_model(model, ckpt, card={"name": "tiny"})
    hashed: list[str] = []
    whole_file = attiqa.io.hashes.safetensors_hashes

    def counted(path):
        hashed.append(str(path))
        return whole_file(path)

    monkeypatch.setattr(attiqa.io.hashes, "safetensors_hashes", counted)
    res = genbench_cli(*args)
    assert "10 scored, 0 already scored" in " ".join((res.stdout + res.stderr).split())
    assert hashed == [str(ckpt)]
