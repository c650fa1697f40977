"""An ExIQA run folder is written by two commands, `attiqa train exiqa -o RUN` (its state, checkpoint and
history) and `attiqa train exiqa-regressor RUN` (its regressor, fitted on that checkpoint): one lock for the
folder both write (docs/robustness.md, "Kill -9 and the same command again"). Each race is two real
processes: a first one paused inside its work (:func:`helpers.paused_after`) or a real holder
(:func:`helpers.holding`), and the second command meanwhile."""

from __future__ import annotations

from pathlib import Path

from helpers import attiqa_cmd, holding, one_line_error, paused_after

TRAIN = ("--warmup-epochs", "0", "--batch-size", "8", "--prompts", "2")
REFIT = "let it finish, then run this fit again"


def _files(folder: Path) -> dict[str, bytes]:
    """What ``folder`` holds, to compare before and after a refused command."""
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_regressor_fit_into_a_held_run_is_refused_before_its_scorer_loads(exiqa_set, tmp_path, cli):
    """**Was**: `attiqa train exiqa-regressor RUN` while another process held RUN loaded the run's CLIP and
    checkpoint (seconds to minutes with real weights) before it was told; a checkpoint that cannot be read
    was said instead. Now the folder is probed first, torch-free: the checkpoint is not reached."""
    _, mos = exiqa_set
    run = tmp_path / "run"
    run.mkdir()
    (run / "exiqa.safetensors").write_bytes(b"cut short")  # read only when the scorer loads
    first = holding(run, "folder_held(T, 'training in', resumed_busy_fix(), command=Command.TRAIN_EXIQA)")
    try:
        second = cli("train", "exiqa-regressor", run, "--mos", mos, "--epochs", "2")
    finally:
        first.communicate(b"", timeout=60)
    assert one_line_error(second) == f"error: {run}: another process is training in it now — {REFIT}"
    assert sorted(p.name for p in run.iterdir()) == ["exiqa.safetensors"]


def test_a_regressor_fit_while_its_run_trains_is_one_line_naming_the_training(
    exiqa_set, tiny_dir, tmp_path, cli
):
    """**Was**: the two commands held two locks (the run folder; regressor.safetensors beside it): a fit on a
    run still training read its first epoch's checkpoint and said "its training stopped after epoch 1 of 2 —
    finish it first (rerun the same `attiqa train exiqa` command …)", a rerun that would be refused. Now the
    fit meets the training's lock: one line naming RUN, the holder and the fix; no regressor is written."""
    data, mos = exiqa_set
    run = tmp_path / "run"
    train = ("train", "exiqa", data, "-o", run, "--clip", tiny_dir, "--epochs", "2", *TRAIN)
    with paused_after(tmp_path, "attiqa.exiqa.train:save_checkpoint", attiqa_cmd(*train)):
        second = cli("train", "exiqa-regressor", run, "--mos", mos, "--epochs", "2")
        assert one_line_error(second) == f"error: {run}: another process is training in it now — {REFIT}"
    assert not (run / "regressor.safetensors").exists()
    assert not (run / ".attiqa.lock").exists()
    fitted = cli("train", "exiqa-regressor", run, "--mos", mos, "--epochs", "2")  # the training done: fits
    assert fitted.returncode == 0, fitted.stderr


def test_a_training_into_a_run_whose_regressor_is_being_fitted_is_one_line(
    exiqa_set, tiny_dir, tmp_path, cli
):
    """**Was**: `attiqa train exiqa -o RUN` started while a regressor was being fitted on RUN's checkpoint
    went ahead and wrote RUN's state, checkpoint and history under it (the two held other locks). Now it is
    one line naming RUN and what holds it; the regressor is the fit's, whole."""
    data, mos = exiqa_set
    run = tmp_path / "run"
    train = ("train", "exiqa", data, "-o", run, "--clip", tiny_dir, "--epochs", "1", *TRAIN)
    assert cli(*train).returncode == 0
    fit = attiqa_cmd("train", "exiqa-regressor", run, "--mos", mos, "--epochs", "3")
    with paused_after(tmp_path, "attiqa.exiqa.regressor:attribute_features", fit):
        before = _files(run)
        second = cli(*train)
        busy = "another process is fitting a regressor in it now — let it finish (rerunning it then resumes "
        busy += "what it left), or choose another --out"
        assert one_line_error(second) == f"error: {run}: {busy}"
        assert _files(run) == before
    assert (run / "regressor.safetensors").is_file()
    assert not (run / ".attiqa.lock").exists()


def test_a_training_into_a_held_run_is_refused_before_its_clip_loads(exiqa_set, tiny_dir, tmp_path, cli):
    """**Was**: a second `attiqa train exiqa -o RUN` (a rerun to resume while the first trains) loaded its
    CLIP (minutes for real weights) before it met RUN's lock; CLIP weights that cannot be read were said
    instead. Now RUN is probed before CLIP loads, making nothing."""
    import shutil

    data, _ = exiqa_set
    clip = tmp_path / "clip"
    shutil.copytree(tiny_dir, clip)
    for weights in clip.glob("*.safetensors"):
        weights.write_bytes(b"cut short")  # read only when CLIP loads
    run = tmp_path / "run"
    run.mkdir()
    first = holding(run, "folder_held(T, 'training in', resumed_busy_fix(), command=Command.TRAIN_EXIQA)")
    try:
        second = cli("train", "exiqa", data, "-o", run, "--clip", clip, "--epochs", "1", *TRAIN)
    finally:
        first.communicate(b"", timeout=60)
    busy = "another process is training in it now (the same command still running?) — let it finish "
    busy += "(rerunning it then resumes what it left), or choose another --out"
    assert one_line_error(second) == f"error: {run}: {busy}"
    assert list(run.iterdir()) == []
